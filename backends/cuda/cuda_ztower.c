/* cuda_ztower.c: the fused z-tower on the GPU (ZTOWER, ZTOWER_COEF, ZTOWER_BWD), computed as
 * backends/cpu/k_ztower.c computes it: the batch in slices, each stitched (k_resample.cu) and
 * convolved (cuDNN through cuda_conv.c, in 16 bits under --precision fp16|bf16 like every conv),
 * then batch norm, relu and the global max pool or their gradients with the own kernels. Batch
 * statistics need the whole batch, so the forward and the coefficients walk it twice; the
 * per-filter sums go to double accumulators slice by slice, in order, so they are deterministic. */
#include "backends/cuda/cuda_backend.h"

/* A slice of the batch holds at most this much of its stitch or of its conv's output (at least
 * one example): enough work per cuDNN call, little memory beside the plan. */
#define ZN_CUDA_ZTOWER_SLICE_BYTES ((size_t)16 << 20)

/* What the scratch sizing and the runners both read off a tower node at a batch. */
typedef struct {
    int count;         /* inputs stitched; the weight is source count */
    zn_shape z;        /* per example: the stitch [S_h, sum C_k, S_w] */
    zn_shape y;        /* per example: the conv's output [F, OH, OW] */
    const zn_shape *w; /* [F, S_h, kh, kw] */
    int batch, per;    /* examples in the batch, in a full slice */
} tower_dims;

/* The conv's output extent along one axis (graph/ops.c's window rule). */
static int64_t out_extent(int64_t in, int64_t kernel, int stride, int pad, int dilation)
{
    return (in + 2 * (int64_t)pad - dilation * (kernel - 1) - 1) / stride + 1;
}

static tower_dims dims_of(const zn_graph *g, const zn_node *n, int batch)
{
    tower_dims d = {.count = zn_ztower_inputs(n), .z = zn_arg_ztower_stitch(g, n),
                    .batch = batch};
    d.w = &g->nodes[n->src[d.count]].shape;
    const zn_attrs *a = &n->attr;
    d.y = d.z;
    d.y.dim[0] = d.w->dim[0];
    for (int i = 0; i < 2; i++)
        d.y.dim[1 + i] = out_extent(d.z.dim[1 + i], d.w->dim[2 + i], a->stride[i], a->pad[i],
                                    a->dilation[i]);
    size_t z = zn_arg_numel(&d.z, 1), y = zn_arg_numel(&d.y, 1);
    size_t most = ZN_CUDA_ZTOWER_SLICE_BYTES / (sizeof(float) * (z > y ? z : y));
    if (most < 1) most = 1;
    /* as many slices as that needs, evened out: 512 at 73 a slice runs as 8 of 64, not 7 and 1 */
    size_t slices = ((size_t)batch + most - 1) / most;
    d.per = slices ? (int)(((size_t)batch + slices - 1) / slices) : 1;
    return d;
}

/* The node's scratch, in this order: the slice's stitch (later its gradient), the conv's output
 * y, t = relu(a*y + b), a gradient g over y's shape, a slice's part of dw, the forward's a and
 * b, the sums of y (stats) and of g (grads) per filter, the channel sums' partials; then the
 * convolutions'. */
enum { ZS, Y, T, G, DW, AB, STATS, GRADS, PARTS, PIECES };

static void piece_bytes(const tower_dims *d, size_t b[PIECES])
{
    const size_t f = (size_t)zn_arg_dim(&d->y, 0), per = (size_t)d->per;
    b[ZS] = per * zn_arg_numel(&d->z, 1) * sizeof(float);
    b[Y] = b[T] = b[G] = per * zn_arg_numel(&d->y, 1) * sizeof(float);
    b[DW] = zn_arg_numel(d->w, 1) * sizeof(float);
    b[AB] = 2 * f * sizeof(float);
    b[STATS] = b[GRADS] = f * sizeof(zn_bn_sums);
    b[PARTS] = zn_cuda_channel_scratch_bytes((int)f);
}

/* The convolutions node n runs: the forward, and for ZTOWER_BWD the gradient it produces. */
static int conv_ops(const zn_node *n, int count, int ops[2])
{
    ops[0] = ZN_OP_CONV2D;
    if (n->op != ZN_OP_ZTOWER_BWD) return 1;
    ops[1] = n->attr.axis == count ? ZN_OP_CONV2D_BWD_FILTER : ZN_OP_CONV2D_BWD_DATA;
    return 2;
}

/* The key of the tower's conv `op` on a slice of n examples (one group, no bias). */
static zn_cuda_conv_key slice_key(const zn_cuda *cu, const zn_node *node, const tower_dims *d,
                                  int op, int n)
{
    return zn_cuda_conv_key_make(cu, op, n, &d->z, d->w, &d->y, &node->attr, 1, 1);
}

size_t zn_cuda_ztower_workspace(zn_cuda *cu, const zn_graph *g, int id, int batch)
{
    const zn_node *n = &g->nodes[id];
    tower_dims d = dims_of(g, n, batch);
    size_t b[PIECES], total = 0, conv = 0;
    piece_bytes(&d, b);
    for (int i = 0; i < PIECES; i++) total += zn_cuda_align(b[i]);
    /* a full slice and, when the batch does not divide, the last one: each its own algorithm */
    const int sizes[2] = {d.per, d.batch % d.per};
    int ops[2];
    for (int i = 0, k = conv_ops(n, d.count, ops); i < k; i++)
        for (int s = 0; s < 2; s++) {
            if (!sizes[s]) continue;
            zn_cuda_conv_key key = slice_key(cu, n, &d, ops[i], sizes[s]);
            size_t need = zn_cuda_conv_bytes(cu, &key, n);
            if (need > conv) conv = need;
        }
    return total + conv;
}

/* A node's walk over the batch: its scratch, and the slice at hand. */
typedef struct {
    const zn_cuda_call *c;
    tower_dims d;
    zn_stitch_dims st; /* the whole batch's */
    const float *w;
    float *zs, *y, *t, *g, *dw, *ab;
    zn_bn_sums *stats, *grads;
    double *parts;
    zn_cuda_ws conv_ws; /* the scratch left to the convolutions */
    int n0, n;          /* the slice: its first example, its examples */
} tower;

static bool tower_begin(const zn_cuda_call *c, const float *w, tower *t)
{
    t->c = c;
    t->d = dims_of(c->g, c->node, c->p->batch);
    t->st = zn_cuda_stitch_dims(c, t->d.count, &t->d.z);
    t->w = w;
    t->n0 = t->n = 0;
    size_t b[PIECES];
    void *at[PIECES];
    piece_bytes(&t->d, b);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    for (int i = 0; i < PIECES; i++)
        if (!(at[i] = zn_cuda_ws_take(c, &ws, b[i]))) return false;
    t->zs = at[ZS], t->y = at[Y], t->t = at[T], t->g = at[G], t->dw = at[DW], t->ab = at[AB];
    t->stats = at[STATS], t->grads = at[GRADS], t->parts = at[PARTS];
    t->conv_ws = ws;
    return true;
}

static int filters(const tower *t)
{
    return zn_arg_dim(&t->d.y, 0);
}

static size_t slice_floats(const tower *t) /* of y, t and g */
{
    return (size_t)t->n * zn_arg_numel(&t->d.y, 1);
}

/* Batch norm over n examples of y's shape (n: the slice's, or the batch's for the statistics). */
static zn_bn_dims bn_dims(const tower *t, int n)
{
    const zn_attrs *a = &t->c->node->attr;
    return (zn_bn_dims){n, filters(t), zn_arg_inner(&t->d.y, 1), a->eps, a->momentum};
}

static zn_stitch_dims slice_stitch(const tower *t)
{
    zn_stitch_dims st = t->st;
    st.n = t->n;
    return st;
}

/* Input k's rows of the slice. */
static size_t input_offset(const tower *t, int k)
{
    return (size_t)t->n0 * t->st.c[k] * t->st.h[k] * t->st.w[k];
}

static const float *slice_input(const tower *t, int k)
{
    return zn_cuda_src(t->c, k) + input_offset(t, k);
}

static bool conv(const tower *t, int op, const float *in0, const float *in1, float *out)
{
    zn_cuda_conv_key k = slice_key(t->c->cu, t->c->node, &t->d, op, t->n);
    return zn_cuda_conv_run(t->c, &k, in0, in1, out, t->conv_ws);
}

/* Makes examples n0.. (a full slice, or the rest) the slice: its stitch in zs, its conv in y. */
static bool slice_at(tower *t, int n0)
{
    const zn_cuda_call *c = t->c;
    t->n0 = n0;
    t->n = t->d.batch - n0 < t->d.per ? t->d.batch - n0 : t->d.per;
    zn_stitch_dims st = slice_stitch(t);
    for (int k = 0; k < st.count; k++) c->cu->ptrs[k] = slice_input(t, k);
    return ZN_RT(c, zn_cuda_stitch_forward, &st, c->cu->ptrs, t->zs, c->cu->stream) &&
           conv(t, ZN_OP_CONV2D, t->zs, t->w, t->y);
}

/* t = relu(a*y + b) on the slice. */
static bool activate(const tower *t, const float *a, const float *b)
{
    zn_bn_dims d = bn_dims(t, t->n);
    cudaStream_t s = t->c->cu->stream;
    return ZN_RT(t->c, zn_cuda_bn_affine, &d, a, b, t->y, NULL, NULL, t->t, s) &&
           ZN_RT(t->c, zn_cuda_eltwise_forward, ZN_OP_RELU, slice_floats(t), t->t, t->t, s);
}

/* g = the gradient that reaches batch norm's output from dz [N, F] through the pool (the
 * plane's first maximum) and the relu. */
static bool route(const tower *t, const float *dz)
{
    const int f = filters(t);
    cudaStream_t s = t->c->cu->stream;
    return ZN_RT(t->c, zn_cuda_global_pool_backward, ZN_WINDOW_MAX, t->n, f,
                 zn_arg_dim(&t->d.y, 1), zn_arg_dim(&t->d.y, 2), t->t, dz + (size_t)t->n0 * f,
                 t->g, s) &&
           ZN_RT(t->c, zn_cuda_eltwise_backward, ZN_OP_RELU_BWD, slice_floats(t), t->t, t->g, t->g, s);
}

/* sums += the slice's sums of y (and of dy, dy*y when dy is given). */
static bool sums_add(const tower *t, const float *dy, zn_bn_sums *sums)
{
    zn_bn_dims d = bn_dims(t, t->n);
    return ZN_RT(t->c, zn_cuda_bn_sums_add, &d, t->y, dy, t->parts, sums, t->c->cu->stream);
}

static bool zero_sums(const tower *t, zn_bn_sums *sums)
{
    return ZN_RT(t->c, cudaMemsetAsync, sums, 0, sizeof *sums * (size_t)filters(t),
                 t->c->cu->stream);
}

/* The batch statistics as a, b [F]: a walk summing y; the running statistics updated when
 * given. */
static bool batch_stats(tower *t, const float *gamma, const float *beta, float *running_mean,
                        float *running_var, float *a, float *b)
{
    if (!zero_sums(t, t->stats)) return false;
    for (int n0 = 0; n0 < t->d.batch; n0 += t->d.per)
        if (!slice_at(t, n0) || !sums_add(t, NULL, t->stats)) return false;
    zn_bn_dims whole = bn_dims(t, t->d.batch);
    return ZN_RT(t->c, zn_cuda_bn_train_stats, &whole, t->stats, gamma, beta, running_mean,
                 running_var, a, b, t->c->cu->stream);
}

bool zn_cuda_ztower_forward(const zn_cuda_call *c, const float *w, const float *gamma,
                            const float *beta, float *running_mean, float *running_var, float *z)
{
    tower t;
    if (!tower_begin(c, w, &t)) return false;
    const int f = filters(&t);
    float *a = t.ab, *b = t.ab + f;
    bool ok = c->cu->opts.training
                  ? batch_stats(&t, gamma, beta, running_mean, running_var, a, b)
                  : ZN_RT(c, zn_cuda_bn_infer_affine, f, c->node->attr.eps, gamma, beta,
                          running_mean, running_var, a, b, c->cu->stream);
    if (!ok) return false;
    for (int n0 = 0; n0 < t.d.batch; n0 += t.d.per)
        if (!slice_at(&t, n0) || !activate(&t, a, b) ||
            !ZN_RT(c, zn_cuda_global_pool_forward, ZN_WINDOW_MAX, t.n, f, zn_arg_dim(&t.d.y, 1),
                   zn_arg_dim(&t.d.y, 2), t.t, z + (size_t)n0 * f, c->cu->stream))
            return false;
    return true;
}

bool zn_cuda_ztower_coef(const zn_cuda_call *c, const float *w, const float *gamma,
                         const float *beta, const float *dz, float *coef)
{
    tower t;
    if (!tower_begin(c, w, &t)) return false;
    const int f = filters(&t);
    if (!batch_stats(&t, gamma, beta, NULL, NULL, coef, coef + f) || !zero_sums(&t, t.grads))
        return false;
    for (int n0 = 0; n0 < t.d.batch; n0 += t.d.per)
        if (!slice_at(&t, n0) || !activate(&t, coef, coef + f) || !route(&t, dz) ||
            !sums_add(&t, t.g, t.grads))
            return false;
    zn_bn_dims whole = bn_dims(&t, t.d.batch);
    return ZN_RT(c, zn_cuda_bn_backward_affine, &whole, t.stats, t.grads, gamma, coef + 2 * f,
                 c->cu->stream);
}

/* The slice's part of dw from dy in g: the first slice writes dw, the others add theirs, as the
 * CPU does (a cuDNN beta of 1 would need a float output, which the 16-bit path has not). */
static bool weight_part(const tower *t, float *dw)
{
    if (t->n0 == 0) return conv(t, ZN_OP_CONV2D_BWD_FILTER, t->zs, t->g, dw);
    return conv(t, ZN_OP_CONV2D_BWD_FILTER, t->zs, t->g, t->dw) &&
           ZN_RT(t->c, zn_cuda_accumulate, zn_arg_numel(t->d.w, 1), t->dw, dw, t->c->cu->stream);
}

/* The slice's rows of input k's gradient from dy in g, through the stitch's gradient in zs. */
static bool input_part(const tower *t, int k, float *dr)
{
    zn_stitch_dims st = slice_stitch(t);
    return conv(t, ZN_OP_CONV2D_BWD_DATA, t->g, t->w, t->zs) &&
           ZN_RT(t->c, zn_cuda_stitch_backward_one, &st, k, slice_input(t, k), t->zs,
                 dr + input_offset(t, k), t->c->cu->stream);
}

bool zn_cuda_ztower_backward(const zn_cuda_call *c, int k, const float *w, const float *coef,
                             const float *dz, float *out)
{
    tower t;
    if (!tower_begin(c, w, &t)) return false;
    const int f = filters(&t);
    for (int n0 = 0; n0 < t.d.batch; n0 += t.d.per) {
        if (!slice_at(&t, n0) || !activate(&t, coef, coef + f) || !route(&t, dz)) return false;
        zn_bn_dims d = bn_dims(&t, t.n); /* dy = kx*y + kb + ka*g, written over g */
        if (!ZN_RT(c, zn_cuda_bn_affine, &d, coef + 2 * f, coef + 3 * f, t.y, t.g, coef + 4 * f,
                   t.g, c->cu->stream) ||
            !(k == t.d.count ? weight_part(&t, out) : input_part(&t, k, out)))
            return false;
    }
    return true;
}

/* The operands of the tower's conv `op` on the slice, in the roles of zn_cuda_conv_run, over the
 * tower's scratch (only out is written): forward zs, w -> y; data g, w -> zs; filter zs, g -> dw. */
static void slice_operands(const tower *t, int op, const float *in[2], float **out)
{
    in[0] = op == ZN_OP_CONV2D_BWD_DATA ? t->g : t->zs;
    in[1] = op == ZN_OP_CONV2D_BWD_FILTER ? t->g : t->w;
    *out = op == ZN_OP_CONV2D ? t->y : op == ZN_OP_CONV2D_BWD_DATA ? t->zs : t->dw;
}

bool zn_cuda_ztower_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p)
{
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op != ZN_OP_ZTOWER && n->op != ZN_OP_ZTOWER_COEF && n->op != ZN_OP_ZTOWER_BWD)
            continue;
        zn_cuda_call c = {cu, g, p, id, n};
        tower t;
        if (!tower_begin(&c, zn_cuda_src(&c, zn_ztower_inputs(n)), &t)) return false;
        /* a full slice and, when the batch does not divide, the last one (as the sizing does) */
        const int sizes[2] = {t.d.per, t.d.batch % t.d.per};
        int ops[2];
        for (int i = 0, k = conv_ops(n, t.d.count, ops); i < k; i++)
            for (int s = 0; s < 2; s++) {
                if (!sizes[s]) continue;
                const float *in[2];
                float *out;
                t.n = sizes[s];
                slice_operands(&t, ops[i], in, &out);
                zn_cuda_conv_key key = slice_key(cu, n, &t.d, ops[i], t.n);
                if (!zn_cuda_conv_time(&c, &key, in[0], in[1], out, t.conv_ws)) return false;
            }
    }
    return true;
}
