/* k_ztower.c: the fused z-tower on the CPU (k_ztower.h). Every function walks the batch in
 * slices: stitch the slice, convolve it, then batch norm, relu and the global max pool or their
 * gradients on the slice, with the very kernels of the unfused ops. Batch statistics need the
 * whole batch, so the forward and the coefficients take two walks (sums first); the gradients
 * take one, reading the coefficients. */
#include "backends/cpu/k_ztower.h"

#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

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

size_t zn_ztower_scratch_floats(const zn_ztower_dims *d)
{
    return (size_t)d->conv.n * (z_floats(&d->conv) + 3 * y_floats(&d->conv)) +
           weight_floats(&d->conv);
}

/* One slice of the batch and its tensors in the scratch: zs, the stitch (later its gradient);
 * y, the conv's output; t, relu(batch norm(y)); g, a gradient over y's shape. */
typedef struct {
    const zn_ztower_dims *d;
    const float *const *r;
    const float **at; /* the inputs' rows of this slice */
    int n0, n;        /* first example, examples */
    float *zs, *y, *t, *g, *dw;
} slice;

static slice slice_begin(const zn_ztower_dims *d, const float *const *r, float *scratch)
{
    size_t b = (size_t)d->conv.n;
    slice s = {d, r, zn_calloc((size_t)d->st.count, sizeof(float *)), 0, 0, scratch, NULL, NULL,
               NULL, NULL};
    s.y = s.zs + b * z_floats(&d->conv);
    s.t = s.y + b * y_floats(&d->conv);
    s.g = s.t + b * y_floats(&d->conv);
    s.dw = s.g + b * y_floats(&d->conv);
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
    if (s->n0 >= d->st.n) {
        free(s->at);
        return false;
    }
    s->n = d->st.n - s->n0 < d->conv.n ? d->st.n - s->n0 : d->conv.n;
    zn_stitch_dims st = d->st;
    st.n = s->n;
    for (int k = 0; k < st.count; k++) s->at[k] = s->r[k] + (size_t)s->n0 * input_floats(&st, k);
    zn_stitch_forward(&st, s->at, s->zs);
    zn_conv_params p = d->conv;
    p.n = s->n;
    zn_conv2d_forward(&p, s->zs, w, NULL, s->y, conv_ws);
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
    zn_bn_affine(&bd, a, b, s->y, NULL, NULL, s->t);
    zn_relu_forward((size_t)s->n * y_floats(&s->d->conv), s->t, s->t);
}

/* g = the gradient that reaches batch norm's output from dz through the pool and the relu. */
static void slice_routed(const slice *s, const float *dz)
{
    const zn_conv_params *p = &s->d->conv;
    zn_global_pool_backward(ZN_WINDOW_MAX, s->n, p->o, zn_conv_out_h(p), zn_conv_out_w(p), s->t,
                            dz + (size_t)s->n0 * p->o, s->g);
    zn_relu_backward((size_t)s->n * y_floats(p), s->t, s->g, s->g);
}

/* The batch statistics: a walk summing y; the running statistics updated when given. */
static void batch_stats(const zn_ztower_dims *d, const float *const *r, const float *w,
                        const float *gamma, const float *beta, float *running_mean,
                        float *running_var, zn_bn_train *out, float *scratch, float *conv_ws)
{
    zn_bn_sums *sums = zn_calloc((size_t)d->conv.o, sizeof *sums);
    slice s = slice_begin(d, r, scratch);
    zn_bn_dims bd = bn_dims(&s, true);
    while (slice_next(&s, w, conv_ws)) {
        zn_bn_dims part = bn_dims(&s, false);
        zn_bn_sums_add(&part, s.y, NULL, sums);
    }
    float unused[2];
    if (!running_mean) bd.momentum = 1; /* the coefficients' walk: the forward updated them */
    for (int f = 0; f < bd.c; f++)
        out[f] = zn_bn_train_stats(&bd, &sums[f], gamma[f], beta[f],
                                   running_mean ? &running_mean[f] : &unused[0],
                                   running_var ? &running_var[f] : &unused[1]);
    free(sums);
}

void zn_ztower_forward(const zn_ztower_dims *d, bool training, const float *const *r,
                       const float *w, const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float *z, float *scratch, float *conv_ws)
{
    const int f = d->conv.o;
    float *ab = zn_calloc(2 * (size_t)f, sizeof *ab);
    if (training) {
        zn_bn_train *st = zn_calloc((size_t)f, sizeof *st);
        batch_stats(d, r, w, gamma, beta, running_mean, running_var, st, scratch, conv_ws);
        for (int c = 0; c < f; c++) ab[c] = st[c].a, ab[f + c] = st[c].b;
        free(st);
    } else {
        for (int c = 0; c < f; c++)
            zn_bn_infer_affine(d->eps, gamma[c], beta[c], running_mean[c], running_var[c], &ab[c],
                               &ab[f + c]);
    }
    const zn_conv_params *p = &d->conv;
    slice s = slice_begin(d, r, scratch);
    while (slice_next(&s, w, conv_ws)) {
        slice_activate(&s, ab, ab + f);
        zn_global_pool_forward(ZN_WINDOW_MAX, s.n, f, zn_conv_out_h(p), zn_conv_out_w(p), s.t,
                               z + (size_t)s.n0 * f);
    }
    free(ab);
}

void zn_ztower_coef(const zn_ztower_dims *d, const float *const *r, const float *w,
                    const float *gamma, const float *beta, const float *dz, float *coef,
                    float *scratch, float *conv_ws)
{
    const int f = d->conv.o;
    zn_bn_train *st = zn_calloc((size_t)f, sizeof *st);
    zn_bn_sums *sums = zn_calloc((size_t)f, sizeof *sums);
    batch_stats(d, r, w, gamma, beta, NULL, NULL, st, scratch, conv_ws);
    for (int c = 0; c < f; c++) coef[c] = st[c].a, coef[f + c] = st[c].b;
    slice s = slice_begin(d, r, scratch);
    zn_bn_dims bd = bn_dims(&s, true);
    while (slice_next(&s, w, conv_ws)) {
        slice_activate(&s, coef, coef + f);
        slice_routed(&s, dz);
        zn_bn_dims part = bn_dims(&s, false);
        zn_bn_sums_add(&part, s.y, s.g, sums);
    }
    for (int c = 0; c < f; c++) { /* as zn_batchnorm_backward's dgamma and zn_channel_sum's dbeta */
        float dgamma = (float)(st[c].invstd * (sums[c].dyx - st[c].mean * sums[c].dy));
        float dbeta = (float)sums[c].dy, k[3];
        zn_bn_backward_affine(&bd, &st[c], gamma[c], dgamma, dbeta, k);
        for (int row = 0; row < 3; row++) coef[(2 + row) * f + c] = k[row];
        coef[5 * f + c] = dgamma;
        coef[6 * f + c] = dbeta;
    }
    free(sums);
    free(st);
}

void zn_ztower_backward(const zn_ztower_dims *d, int k, const float *const *r, const float *w,
                        const float *coef, const float *dz, float *out, float *scratch,
                        float *conv_ws)
{
    const int f = d->conv.o;
    slice s = slice_begin(d, r, scratch);
    while (slice_next(&s, w, conv_ws)) {
        slice_activate(&s, coef, coef + f);
        slice_routed(&s, dz);
        zn_bn_dims part = bn_dims(&s, false);
        zn_bn_affine(&part, coef + 2 * f, coef + 3 * f, s.y, s.g, coef + 4 * f, s.g); /* dy */
        zn_conv_params p = d->conv;
        p.n = s.n;
        if (k == d->st.count) { /* the weight: the slices' parts added */
            zn_conv2d_backward_filter(&p, s.zs, s.g, s.n0 ? s.dw : out, NULL, conv_ws);
            if (s.n0) zn_accumulate(weight_floats(&p), s.dw, out);
            continue;
        }
        zn_conv2d_backward_data(&p, s.g, w, s.zs, conv_ws);
        zn_stitch_dims st = d->st;
        st.n = s.n;
        size_t at = (size_t)s.n0 * input_floats(&st, k);
        zn_stitch_backward_one(&st, k, s.at[k], s.zs, out + at);
    }
}
