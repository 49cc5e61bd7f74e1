/* k_ztower.c: the fused z-tower on the CPU (k_ztower.h). Every function walks the batch in
 * slices: stitch the slice, convolve it, then batch norm, relu and the global max pool or their
 * gradients on the slice, with the very kernels of the unfused ops. The forward takes one walk
 * (each plane's extremes, see zn_ztower_forward); the coefficients need the batch statistics
 * before they can route dz, so they take two (sums first); the gradients take one, reading the
 * coefficients. */
#include "backends/cpu/k_ztower.h"

#include <string.h>

static size_t z_floats(const zn_conv_params *p) /* one example's stitch */
{
    return (size_t)p->c * p->h * p->w;
}

static size_t y_floats(const zn_conv_params *p) /* one example's conv output */
{
    return (size_t)p->o * zn_conv_out_h(p) * zn_conv_out_w(p);
}

int zn_ztower_slice(const zn_conv_params *conv, int n)
{
    size_t per = z_floats(conv) > y_floats(conv) ? z_floats(conv) : y_floats(conv);
    size_t b = ((size_t)1 << 20) / per;
    return b < 1 ? 1 : b > (size_t)n ? n : (int)b;
}

static size_t weight_floats(const zn_conv_params *p)
{
    return (size_t)p->o * p->c * p->kh * p->kw;
}

/* The scratch of a walk, all of it in the caller's workspace (kernels allocate nothing): per
 * filter two sets of batch-norm sums and the statistics (doubles first, for alignment), the
 * inputs' row pointers of the slice, the forward affine a, b, a slice's weight-gradient part,
 * the whole batch's plane minima of y (the forward's), then the slice tensors: zs, the stitch
 * (later its gradient); y, the conv's output; t, relu(batch norm(y)); g, a gradient over y's
 * shape. */
typedef struct {
    zn_bn_sums *sums, *grads;
    zn_bn_train *stats;
    const float **at;
    float *ab, *dw, *lo, *zs, *y, *t, *g;
} parts;

/* Floats of n items of `bytes` each, kept a multiple of 8 bytes. */
static size_t floats_of(size_t n, size_t bytes)
{
    return (n * bytes + 7) / 8 * 2;
}

/* Lays the parts out from base (NULL: only counts); returns the floats they take. */
static size_t layout(const zn_ztower_dims *d, float *base, parts *p)
{
    const size_t f = (size_t)d->conv.o, b = (size_t)d->conv.n;
    const size_t size[] = {floats_of(f, sizeof(zn_bn_sums)), floats_of(f, sizeof(zn_bn_sums)),
                           floats_of(f, sizeof(zn_bn_train)),
                           floats_of((size_t)d->st.count, sizeof(float *)), floats_of(2 * f, 4),
                           floats_of(weight_floats(&d->conv), 4), floats_of((size_t)d->st.n * f, 4),
                           b * z_floats(&d->conv),
                           b * y_floats(&d->conv), b * y_floats(&d->conv), b * y_floats(&d->conv)};
    void *at[sizeof size / sizeof size[0]];
    size_t used = 0;
    for (size_t i = 0; i < sizeof size / sizeof size[0]; i++) {
        at[i] = base ? base + used : NULL;
        used += size[i];
    }
    *p = (parts){at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7], at[8], at[9], at[10]};
    return used;
}

size_t zn_ztower_scratch_floats(const zn_ztower_dims *d)
{
    parts p;
    return layout(d, NULL, &p);
}

/* One slice of the batch, with the walk's scratch. */
typedef struct {
    const zn_ztower_dims *d;
    const float *const *r;
    parts s;
    int n0, n; /* first example, examples */
} slice;

static slice slice_begin(const zn_ztower_dims *d, const float *const *r, float *scratch)
{
    slice s = {d, r, {0}, 0, 0};
    layout(d, scratch, &s.s);
    return s;
}

static size_t input_floats(const zn_stitch_dims *st, int k) /* one example of input k */
{
    return (size_t)st->c[k] * st->h[k] * st->w[k];
}

/* Moves s to the next slice and computes its stitch and conv; false after the last. */
static bool slice_next(slice *s, const float *w, float *conv_ws)
{
    const zn_ztower_dims *d = s->d;
    s->n0 += s->n;
    if (s->n0 >= d->st.n) return false;
    s->n = d->st.n - s->n0 < d->conv.n ? d->st.n - s->n0 : d->conv.n;
    zn_stitch_dims st = d->st;
    st.n = s->n;
    for (int k = 0; k < st.count; k++)
        s->s.at[k] = s->r[k] + (size_t)s->n0 * input_floats(&st, k);
    zn_stitch_forward(&st, s->s.at, s->s.zs);
    zn_conv_params p = d->conv;
    p.n = s->n;
    zn_conv2d_forward(&p, s->s.zs, w, NULL, s->s.y, conv_ws, NULL);
    return true;
}

/* The slice's batch-norm dims; the batch's when whole. */
static zn_bn_dims bn_dims(const slice *s, bool whole)
{
    const zn_conv_params *p = &s->d->conv;
    return (zn_bn_dims){whole ? s->d->st.n : s->n, p->o, zn_conv_out_h(p) * zn_conv_out_w(p),
                        s->d->eps, s->d->momentum};
}

/* t = relu(a*y + b) on the slice. */
static void slice_activate(const slice *s, const float *a, const float *b)
{
    zn_bn_dims bd = bn_dims(s, false);
    zn_bn_affine(&bd, a, b, s->s.y, NULL, NULL, s->s.t);
    zn_eltwise_forward(ZN_OP_RELU, (size_t)s->n * y_floats(&s->d->conv), s->s.t, s->s.t);
}

/* g = the gradient that reaches batch norm's output from dz through the pool and the relu. */
static void slice_routed(const slice *s, const float *dz)
{
    const zn_conv_params *p = &s->d->conv;
    zn_global_pool_backward(ZN_WINDOW_MAX, s->n, p->o, zn_conv_out_h(p), zn_conv_out_w(p), s->s.t,
                            dz + (size_t)s->n0 * p->o, s->s.g);
    zn_eltwise_backward(ZN_OP_RELU_BWD, (size_t)s->n * y_floats(p), s->s.t, s->s.g, s->s.g);
}

/* The batch statistics into s->s.stats from the sums of y in s->s.sums; the running statistics
 * updated when given. */
static void stats_of_sums(const slice *s, const float *gamma, const float *beta, float *running_mean,
                          float *running_var)
{
    zn_bn_dims bd = bn_dims(s, true);
    float unused[2];
    if (!running_mean) bd.momentum = 1; /* the coefficients' walk: the forward updated them */
    for (int f = 0; f < bd.c; f++)
        s->s.stats[f] = zn_bn_train_stats(&bd, &s->s.sums[f], gamma[f], beta[f],
                                          running_mean ? &running_mean[f] : &unused[0],
                                          running_var ? &running_var[f] : &unused[1]);
}

/* Adds the slice's y to the batch-norm sums. */
static void slice_sum(slice *s)
{
    zn_bn_dims part = bn_dims(s, false);
    zn_bn_sums_add(&part, s->s.y, NULL, s->s.sums);
}

/* lo[i] = the minimum of plane i of x [planes, hw]. */
static void plane_minima(size_t planes, int hw, const float *x, float *lo)
{
    for (size_t i = 0; i < planes; i++, x += hw) {
        float m = x[0];
        for (int j = 1; j < hw; j++) m = x[j] < m ? x[j] : m;
        lo[i] = m;
    }
}

/* One walk: y's plane maxima go to z, its minima to lo (and its sums to the batch statistics
 * when training); then z = relu(a*e + b), e the plane's maximum where a >= 0, else its minimum.
 * Float multiplication by a fixed a, adding b and relu keep (or, a < 0, reverse) the order of
 * their arguments, rounding included, so that is the maximum of relu(a*y + b) over the plane in
 * the unfused ops' bits, with one conv per slice where a separate statistics walk took two. */
void zn_ztower_forward(const zn_ztower_dims *d, bool training, const float *const *r,
                       const float *w, const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float *z, float *scratch, float *conv_ws)
{
    const int f = d->conv.o, oh = zn_conv_out_h(&d->conv), ow = zn_conv_out_w(&d->conv);
    slice s = slice_begin(d, r, scratch);
    float *ab = s.s.ab, *lo = s.s.lo;
    if (training) memset(s.s.sums, 0, sizeof *s.s.sums * (size_t)f);
    while (slice_next(&s, w, conv_ws)) {
        if (training) slice_sum(&s);
        zn_global_pool_forward(ZN_WINDOW_MAX, s.n, f, oh, ow, s.s.y, z + (size_t)s.n0 * f);
        plane_minima((size_t)s.n * f, oh * ow, s.s.y, lo + (size_t)s.n0 * f);
    }
    if (training) stats_of_sums(&s, gamma, beta, running_mean, running_var);
    for (int c = 0; c < f; c++)
        if (training)
            ab[c] = s.s.stats[c].a, ab[f + c] = s.s.stats[c].b;
        else
            zn_bn_infer_affine(d->eps, gamma[c], beta[c], running_mean[c], running_var[c], &ab[c],
                               &ab[f + c]);
    const size_t nf = (size_t)d->st.n * f;
    for (size_t i = 0; i < nf; i++)
        if (ab[i % f] < 0) z[i] = lo[i];
    zn_bn_dims planes = {d->st.n, f, 1, d->eps, d->momentum};
    zn_bn_affine(&planes, ab, ab + f, z, NULL, NULL, z);
    zn_eltwise_forward(ZN_OP_RELU, nf, z, z);
}

void zn_ztower_coef(const zn_ztower_dims *d, const float *const *r, const float *w,
                    const float *gamma, const float *beta, const float *dz, float *coef,
                    float *scratch, float *conv_ws)
{
    const int f = d->conv.o;
    slice s = slice_begin(d, r, scratch);
    memset(s.s.sums, 0, sizeof *s.s.sums * (size_t)f);
    while (slice_next(&s, w, conv_ws)) slice_sum(&s);
    stats_of_sums(&s, gamma, beta, NULL, NULL);
    s = slice_begin(d, r, scratch);
    const zn_bn_train *st = s.s.stats;
    zn_bn_sums *sums = s.s.grads;
    for (int c = 0; c < f; c++) coef[c] = st[c].a, coef[f + c] = st[c].b;
    memset(sums, 0, sizeof *sums * (size_t)f);
    zn_bn_dims bd = bn_dims(&s, true);
    while (slice_next(&s, w, conv_ws)) {
        slice_activate(&s, coef, coef + f);
        slice_routed(&s, dz);
        zn_bn_dims part = bn_dims(&s, false);
        zn_bn_sums_add(&part, s.s.y, s.s.g, sums);
    }
    for (int c = 0; c < f; c++) { /* as zn_batchnorm_backward's dgamma and zn_channel_sum's dbeta */
        float dgamma = (float)(st[c].invstd * (sums[c].dyx - st[c].mean * sums[c].dy));
        float dbeta = (float)sums[c].dy, k[3];
        zn_bn_backward_affine(&bd, &st[c], gamma[c], dgamma, dbeta, k);
        for (int row = 0; row < 3; row++) coef[(2 + row) * f + c] = k[row];
        coef[5 * f + c] = dgamma;
        coef[6 * f + c] = dbeta;
    }
}

/* Copies rows [from, from + rows) of every plane of src [planes, src_h, w] to rows [to, to +
 * rows) of dst [planes, dst_h, w]; a source row outside [0, src_h) gives zeros. */
static void copy_rows(size_t planes, int src_h, int dst_h, int w, const float *src, int from, int to,
                      int rows, float *dst)
{
    for (size_t i = 0; i < planes; i++)
        for (int r = 0; r < rows; r++) {
            float *q = dst + (i * dst_h + to + r) * w;
            if (from + r < 0 || from + r >= src_h)
                memset(q, 0, sizeof *q * (size_t)w);
            else
                memcpy(q, src + (i * src_h + from + r) * w, sizeof *q * (size_t)w);
        }
}

/* Input k's part of the stitch's gradient alone, into its rows of s->s.zs: the stitch gives
 * input k the rows [r0, r0 + c_k) of each plane, and a "same" stride-1 conv's data gradient of
 * those rows reads only dy's rows [r0 - pad, r0 + c_k + pad). So the conv runs on that band
 * (zeros beyond dy's edge) instead of the whole stitched height: the gradients of the three
 * inputs of z3 cost about one full data gradient instead of three. Its buffers are t and y,
 * free once dy is computed. False, having done nothing, when the conv is not of that kind, the
 * band is not smaller than the whole, or it needs more than those buffers or the workspace. */
static bool band_backward_data(const slice *s, int k, const float *w, const float *dy, float *conv_ws)
{
    const zn_conv_params *p = &s->d->conv;
    const int halo = p->pad_h, oh = zn_conv_out_h(p), ow = zn_conv_out_w(p);
    int r0 = 0;
    for (int j = 0; j < k; j++) r0 += s->d->st.c[j];
    zn_conv_params b = *p;
    b.n = s->n;
    b.h = s->d->st.c[k] + 2 * halo;
    const size_t in_band = (size_t)b.n * b.c * b.h * b.w, dy_band = (size_t)b.n * b.o * b.h * ow;
    const size_t room = (size_t)s->n * y_floats(p);
    if (p->stride_h != 1 || oh != p->h || b.h >= p->h || in_band > room || dy_band > room ||
        zn_conv2d_workspace_bytes(&b) > zn_conv2d_workspace_bytes(p)) /* what conv_ws holds */
        return false;
    copy_rows((size_t)b.n * b.o, oh, b.h, ow, dy, r0 - halo, 0, b.h, s->s.t);
    zn_conv2d_backward_data(&b, s->s.t, w, s->s.y, conv_ws);
    copy_rows((size_t)b.n * b.c, b.h, p->h, p->w, s->s.y, halo, r0, s->d->st.c[k], s->s.zs);
    return true;
}

void zn_ztower_backward(const zn_ztower_dims *d, int k, const float *const *r, const float *w,
                        const float *coef, const float *dz, float *out, float *scratch,
                        float *conv_ws)
{
    const int f = d->conv.o;
    slice s = slice_begin(d, r, scratch);
    float *g = s.s.g;
    while (slice_next(&s, w, conv_ws)) {
        slice_activate(&s, coef, coef + f);
        slice_routed(&s, dz);
        zn_bn_dims part = bn_dims(&s, false);
        zn_bn_affine(&part, coef + 2 * f, coef + 3 * f, s.s.y, g, coef + 4 * f, g); /* dy */
        zn_conv_params p = d->conv;
        p.n = s.n;
        if (k == d->st.count) { /* the weight: the slices' parts added */
            zn_conv2d_backward_filter(&p, s.s.zs, g, s.n0 ? s.s.dw : out, NULL, conv_ws, NULL);
            if (s.n0) zn_accumulate(weight_floats(&p), s.s.dw, out);
            continue;
        }
        if (!band_backward_data(&s, k, w, g, conv_ws)) zn_conv2d_backward_data(&p, g, w, s.s.zs, conv_ws);
        zn_stitch_dims st = d->st;
        st.n = s.n;
        size_t at = (size_t)s.n0 * input_floats(&st, k);
        zn_stitch_backward_one(&st, k, s.s.at[k], s.s.zs, out + at);
    }
}
