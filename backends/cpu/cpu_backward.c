/* cpu_backward.c: the CPU backend's runners of the backward ops autodiff appends. Each node's
 * shape is the gradient it produces and its attributes are the forward op's (graph/ops.h lists
 * every op's sources); each runner overwrites its output with one kernel call. */
#include "backends/cpu/cpu_backend.h"

/* dy, w -> dx */
static bool run_conv2d_bwd_data(const zn_cpu_call *c)
{
    zn_conv_params p = zn_cpu_conv_params(c->g, c->id, c->p->batch);
    zn_conv2d_backward_data(&p, zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_out(c),
                            c->cpu->workspace);
    return true;
}

/* The bias gradient that runs with filter-gradient node c, summed in the conv's epilogue while
 * each chunk of dy is in cache: the next node of this compute call when it is a BIAS_BWD of the
 * same dy whose output is clear of c's sources and output (it is written last, but Winograd's
 * sums read dy at the end); -1 when there is none. */
static int paired_bias(const zn_cpu_call *c)
{
    const int next = zn_cpu_next_node(c), *s = c->node->src;
    if (next < 0 || c->g->nodes[next].op != ZN_OP_BIAS_BWD || c->g->nodes[next].src[0] != s[1])
        return -1;
    if (zn_cpu_overlaps(c->p, next, c->id) || zn_cpu_overlaps(c->p, next, s[0]) ||
        zn_cpu_overlaps(c->p, next, s[1]))
        return -1;
    return next;
}

/* x, dy -> dw, and with its paired BIAS_BWD node that node's db */
static bool run_conv2d_bwd_filter(const zn_cpu_call *c)
{
    zn_conv_params p = zn_cpu_conv_params(c->g, c->id, c->p->batch);
    const int bias = paired_bias(c);
    zn_bn_sums *planes = bias < 0 ? NULL : zn_cpu_planes(c->cpu, (size_t)p.n * p.o);
    zn_conv2d_backward_filter(&p, zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_out(c),
                              planes ? zn_cpu_tensor(c, bias) : NULL, c->cpu->workspace, planes);
    if (planes) zn_cpu_ran_pair(c, bias);
    return true;
}

/* dy [C, ...] -> [C] */
static bool run_bias_bwd(const zn_cpu_call *c)
{
    const zn_shape *dy = zn_cpu_src_shape(c, 0);
    zn_channel_sum(zn_cpu_batch(c, dy), zn_arg_dim(dy, 0), zn_arg_inner(dy, 1), zn_cpu_src(c, 0),
                   zn_cpu_out(c));
    return true;
}

static zn_bn_dims bn_dims(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    return (zn_bn_dims){zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_inner(x, 1),
                        c->node->attr.eps, c->node->attr.momentum};
}

/* x, gamma, dy[, dgamma, dbeta] -> dx */
static bool run_batchnorm_bwd_data(const zn_cpu_call *c)
{
    zn_bn_dims d = bn_dims(c);
    const float *x = zn_cpu_src(c, 0), *gamma = zn_cpu_src(c, 1), *dy = zn_cpu_src(c, 2);
    bool sums = c->node->n_src == 5;
    if (c->cpu->opts.bn_sync)
        zn_bn_backward_synced(&d, c->cpu->opts.bn_sync, x, gamma, dy, sums ? zn_cpu_src(c, 3) : NULL,
                              sums ? zn_cpu_src(c, 4) : NULL, zn_cpu_out(c), NULL, NULL);
    else if (sums)
        zn_batchnorm_backward_data(&d, x, gamma, dy, zn_cpu_src(c, 3), zn_cpu_src(c, 4),
                                   zn_cpu_out(c));
    else
        zn_batchnorm_backward(&d, x, gamma, dy, NULL, zn_cpu_out(c), NULL, NULL);
    return true;
}

/* The batchnorm_relu_bwd_data node that runs with coefficient node c, each channel's dx written
 * right after the channel's sums while its x and dy are still in cache (one read of each from
 * memory instead of two; docs/performance.md "Session 28"): the next node when this compute
 * call runs it, reading c's output, x and dy, with its output clear of c's other sources (the
 * plan guarantees that; checked, as the pairing relies on it); -1 when there is none. */
static int paired_data(const zn_cpu_call *c)
{
    const int id = c->id, next = id + 1;
    if (next > c->last) return -1;
    const zn_node *d = &c->g->nodes[next];
    const int *s = c->node->src;
    if (d->op != ZN_OP_BATCHNORM_RELU_BWD_DATA || d->src[0] != s[0] || d->src[1] != s[3] ||
        d->src[2] != id)
        return -1;
    if (zn_cpu_overlaps(c->p, next, id) || zn_cpu_overlaps(c->p, next, s[1]) ||
        zn_cpu_overlaps(c->p, next, s[2]))
        return -1;
    return next;
}

/* x, gamma, beta, dy -> [7 * C] coefficients, and with its paired node that node's dx */
static bool run_batchnorm_relu_bwd_coef(const zn_cpu_call *c)
{
    zn_bn_dims d = bn_dims(c);
    const int data = paired_data(c);
    zn_bn_relu_backward(&d, zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_src(c, 2),
                        zn_cpu_src(c, 3), zn_cpu_out(c),
                        data < 0 ? NULL : zn_cpu_tensor(c, data));
    if (data >= 0) zn_cpu_ran_pair(c, data);
    return true;
}

/* x, dy, coef -> dx */
static bool run_batchnorm_relu_bwd_data(const zn_cpu_call *c)
{
    zn_bn_dims d = bn_dims(c);
    zn_bn_relu_backward_data(&d, zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_src(c, 2),
                             zn_cpu_out(c));
    return true;
}

/* x, dy -> dgamma */
static bool run_batchnorm_bwd_gamma(const zn_cpu_call *c)
{
    zn_bn_dims d = bn_dims(c);
    if (c->cpu->opts.bn_sync)
        zn_bn_backward_synced(&d, c->cpu->opts.bn_sync, zn_cpu_src(c, 0), NULL, zn_cpu_src(c, 1), NULL, NULL,
                              NULL, zn_cpu_out(c), NULL);
    else
        zn_batchnorm_backward(&d, zn_cpu_src(c, 0), NULL, zn_cpu_src(c, 1), NULL, NULL,
                              zn_cpu_out(c), NULL);
    return true;
}

/* Every element-wise op's backward: x or y, dy -> dx */
static bool run_eltwise_bwd(const zn_cpu_call *c)
{
    zn_eltwise_backward(c->node->op, zn_cpu_numel(c, &c->node->shape), zn_cpu_src(c, 0),
                        zn_cpu_src(c, 1), zn_cpu_out(c));
    return true;
}

/* Max: x, dy -> dx; average: dy -> dx (no x to read). */
static const float *pool_x(const zn_cpu_call *c, zn_window_reduce r)
{
    return r == ZN_WINDOW_MAX ? zn_cpu_src(c, 0) : NULL;
}

static bool run_pool_bwd(const zn_cpu_call *c)
{
    const zn_shape *x = &c->node->shape;
    zn_pool_dims d = zn_arg_pool_dims(x, &c->node->attr, zn_cpu_batch(c, x));
    zn_window_reduce r = c->node->op == ZN_OP_MAXPOOL_BWD ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    zn_pool_backward(r, &d, pool_x(c, r), zn_cpu_src(c, c->node->n_src - 1), zn_cpu_out(c));
    return true;
}

static bool run_global_pool_bwd(const zn_cpu_call *c)
{
    const zn_shape *x = &c->node->shape;
    zn_window_reduce r =
        c->node->op == ZN_OP_GLOBAL_MAXPOOL_BWD ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    zn_global_pool_backward(r, zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(x, 1),
                            zn_arg_dim(x, 2), pool_x(c, r), zn_cpu_src(c, c->node->n_src - 1),
                            zn_cpu_out(c));
    return true;
}

/* dy [O], w [O, I] -> dx [I] */
static bool run_linear_bwd_data(const zn_cpu_call *c)
{
    const zn_shape *dx = &c->node->shape, *dy = zn_cpu_src_shape(c, 0);
    zn_linear_backward_data(zn_cpu_batch(c, dx), zn_arg_dim(dx, 0), zn_arg_dim(dy, 0),
                            zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_out(c));
    return true;
}

/* x [I], dy [O] -> dw [O, I] */
static bool run_linear_bwd_weight(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0), *dy = zn_cpu_src_shape(c, 1);
    zn_linear_backward_weight(zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(dy, 0),
                              zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_out(c), NULL);
    return true;
}

/* dy -> dy[..., size[0] .. size[0] + len, ...] along attr.axis, len from the node's shape. */
static bool run_slice(const zn_cpu_call *c)
{
    const zn_shape *dy = zn_cpu_src_shape(c, 0);
    const int axis = c->node->attr.axis;
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(dy, dims);
    size_t outer, inner;
    zn_concat_split(zn_cpu_batch(c, dy), dy->rank, dims, axis, &outer, &inner);
    zn_slice_forward(outer, inner, (size_t)dims[axis], (size_t)c->node->attr.size[0],
                     (size_t)zn_arg_dim(&c->node->shape, axis), zn_cpu_src(c, 0), zn_cpu_out(c));
    return true;
}

/* x, dy -> dx */
static bool run_resample_bwd(const zn_cpu_call *c)
{
    const zn_shape *x = &c->node->shape, *dy = zn_cpu_src_shape(c, 1);
    zn_window_reduce r = zn_arg_window(c->node->attr.mode);
    zn_resample_backward(r, zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(x, 1),
                         zn_arg_dim(x, 2), zn_arg_dim(dy, 1), zn_arg_dim(dy, 2), pool_x(c, r),
                         zn_cpu_src(c, 1), zn_cpu_out(c));
    return true;
}

/* r_0 .. r_{K-1}, dz -> d r_k, k = attr.axis */
static bool run_stitch_bwd(const zn_cpu_call *c)
{
    const int count = c->node->n_src - 1, k = c->node->attr.axis;
    zn_stitch_dims d = zn_cpu_stitch_dims(c, count, zn_cpu_src_shape(c, count));
    const float *r_k = d.down == ZN_WINDOW_MAX ? zn_cpu_src(c, k) : NULL;
    zn_stitch_backward_one(&d, k, r_k, zn_cpu_src(c, count), zn_cpu_out(c));
    return true;
}

/* r..., w, gamma, beta, dz -> coef [7, F] */
static bool run_ztower_coef(const zn_cpu_call *c)
{
    zn_cpu_ztower z = zn_cpu_ztower_call(c);
    const int w = z.d.st.count;
    zn_ztower_coef(&z.d, c->cpu->ptrs, zn_cpu_src(c, w), zn_cpu_src(c, w + 1),
                   zn_cpu_src(c, w + 2), zn_cpu_src(c, w + 3), zn_cpu_out(c), z.scratch,
                   z.conv_ws);
    return true;
}

/* r..., w, coef, dz -> d r_k (k = attr.axis) or dw (attr.axis = K) */
static bool run_ztower_bwd(const zn_cpu_call *c)
{
    zn_cpu_ztower z = zn_cpu_ztower_call(c);
    const int w = z.d.st.count;
    zn_ztower_backward(&z.d, c->node->attr.axis, c->cpu->ptrs, zn_cpu_src(c, w),
                       zn_cpu_src(c, w + 1), zn_cpu_src(c, w + 2), zn_cpu_out(c), z.scratch,
                       z.conv_ws);
    return true;
}

/* dy [C, ...], a [C, ...] -> [C]: per row of the gate, the sum of dy * a */
static bool run_mul_sum(const zn_cpu_call *c)
{
    size_t rows = zn_cpu_numel(c, &c->node->shape);
    zn_mul_sum(rows, zn_cpu_numel(c, zn_cpu_src_shape(c, 0)) / rows, zn_cpu_src(c, 0),
               zn_cpu_src(c, 1), zn_cpu_out(c));
    return true;
}

/* logits, label -> dlogits = weight * (softmax - target) (/ N for the mean) */
static bool run_xent_bwd(const zn_cpu_call *c)
{
    const zn_shape *logits = zn_cpu_src_shape(c, 0);
    const zn_attrs *a = &c->node->attr;
    zn_xent_dims d = {zn_cpu_batch(c, logits), zn_arg_dim(logits, 0), a->smoothing,
                      a->reduction == ZN_REDUCE_MEAN};
    int row;
    if (zn_xent_backward(&d, zn_cpu_src(c, 0), zn_cpu_tensor(c, c->node->src[1]), a->weight,
                         zn_cpu_out(c), &row) != ZN_KSTATUS_OK)
        return zn_cpu_bad_label(c, row, d.k);
    return true;
}

const zn_cpu_runner zn_cpu_backward_runners[ZN_OP_COUNT] = {
    [ZN_OP_CONV2D_BWD_DATA] = run_conv2d_bwd_data,
    [ZN_OP_CONV2D_BWD_FILTER] = run_conv2d_bwd_filter,
    [ZN_OP_BIAS_BWD] = run_bias_bwd,
    [ZN_OP_BATCHNORM_BWD_DATA] = run_batchnorm_bwd_data,
    [ZN_OP_BATCHNORM_BWD_GAMMA] = run_batchnorm_bwd_gamma,
    [ZN_OP_BATCHNORM_RELU_BWD_COEF] = run_batchnorm_relu_bwd_coef,
    [ZN_OP_BATCHNORM_RELU_BWD_DATA] = run_batchnorm_relu_bwd_data,
    [ZN_OP_MAXPOOL_BWD] = run_pool_bwd,
    [ZN_OP_AVGPOOL_BWD] = run_pool_bwd,
    [ZN_OP_GLOBAL_MAXPOOL_BWD] = run_global_pool_bwd,
    [ZN_OP_GLOBAL_AVGPOOL_BWD] = run_global_pool_bwd,
    [ZN_OP_LINEAR_BWD_DATA] = run_linear_bwd_data,
    [ZN_OP_LINEAR_BWD_WEIGHT] = run_linear_bwd_weight,
    [ZN_OP_SLICE] = run_slice,
    [ZN_OP_RESAMPLE_BWD] = run_resample_bwd,
    [ZN_OP_RESHAPE] = zn_cpu_run_copy,
    [ZN_OP_STITCH_BWD] = run_stitch_bwd,
    [ZN_OP_XENT_BWD] = run_xent_bwd,
    [ZN_OP_ZTOWER_COEF] = run_ztower_coef,
    [ZN_OP_ZTOWER_BWD] = run_ztower_bwd,
    [ZN_OP_MUL_SUM] = run_mul_sum,
#define EW_RUNNER(OP, E, fn, reads) [ZN_OP_##E##_BWD] = run_eltwise_bwd,
    ZN_OP_LIST(ZN_OP_SKIP, EW_RUNNER)
#undef EW_RUNNER
};
