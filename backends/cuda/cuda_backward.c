/* cuda_backward.c: the CUDA backend's runners of the backward ops autodiff appends (convolution's
 * are in cuda_conv.c, the z-tower's slice walks in cuda_ztower.c). Each node's shape is the
 * gradient it produces and its attributes are the forward op's; each runner overwrites its
 * output, as backends/cpu/cpu_backward.c does. */
#include "backends/cuda/cuda_backend.h"

/* dy [C, ...] -> [C] */
static bool run_bias_bwd(const zn_cuda_call *c)
{
    const zn_shape *dy = zn_cuda_src_shape(c, 0);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    double *scratch = zn_cuda_channel_scratch(c, &ws, zn_arg_dim(dy, 0));
    return scratch && ZN_RT(c, zn_cuda_channel_sum, zn_cuda_batch(c, dy), zn_arg_dim(dy, 0),
                            zn_arg_inner(dy, 1), zn_cuda_src(c, 0), scratch, zn_cuda_out(c),
                            c->cu->stream);
}

/* x, gamma, dy[, dgamma, dbeta] -> dx. An own kernel, not cudnnBatchNormalizationBackward: the
 * plan may write dx over x or dy (graph/plan.c), which cuDNN does not promise to allow. */
static bool run_batchnorm_bwd_data(const zn_cuda_call *c)
{
    zn_bn_dims d = zn_cuda_bn_dims(c);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    double *scratch = zn_cuda_channel_scratch(c, &ws, d.c);
    float *coef = zn_cuda_ws_take(c, &ws, 3 * sizeof(float) * (size_t)d.c);
    const float *dgamma = c->node->n_src == 5 ? zn_cuda_src(c, 3) : NULL;
    const float *dbeta = c->node->n_src == 5 ? zn_cuda_src(c, 4) : NULL;
    return scratch && coef &&
           ZN_RT(c, zn_cuda_batchnorm_backward_data, &d, zn_cuda_src(c, 0), zn_cuda_src(c, 1),
                 zn_cuda_src(c, 2), dgamma, dbeta, scratch, coef, zn_cuda_out(c), c->cu->stream);
}

/* x, dy -> dgamma */
static bool run_batchnorm_bwd_gamma(const zn_cuda_call *c)
{
    zn_bn_dims d = zn_cuda_bn_dims(c);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    double *scratch = zn_cuda_channel_scratch(c, &ws, d.c);
    return scratch && ZN_RT(c, zn_cuda_batchnorm_dgamma, &d, zn_cuda_src(c, 0), zn_cuda_src(c, 1),
                            scratch, zn_cuda_out(c), c->cu->stream);
}

/* x, gamma, beta, dy -> coef [7, C] of the fused batch norm + relu (k_norm_relu.cu) */
static bool run_batchnorm_relu_bwd_coef(const zn_cuda_call *c)
{
    zn_bn_dims d = zn_cuda_bn_dims(c);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    double *scratch = zn_cuda_channel_scratch(c, &ws, d.c);
    return scratch && ZN_RT(c, zn_cuda_bn_relu_backward_coef, &d, zn_cuda_src(c, 0),
                            zn_cuda_src(c, 1), zn_cuda_src(c, 2), zn_cuda_src(c, 3), scratch,
                            zn_cuda_out(c), c->cu->stream);
}

/* x, dy, coef -> dx (may be x or dy: the plan runs it in place) */
static bool run_batchnorm_relu_bwd_data(const zn_cuda_call *c)
{
    zn_bn_dims d = zn_cuda_bn_dims(c);
    return ZN_RT(c, zn_cuda_bn_relu_backward_data, &d, zn_cuda_src(c, 0), zn_cuda_src(c, 1),
                 zn_cuda_src(c, 2), zn_cuda_out(c), c->cu->stream);
}

/* Every element-wise op's backward: x or y, dy -> dx */
static bool run_eltwise_bwd(const zn_cuda_call *c)
{
    return ZN_RT(c, zn_cuda_eltwise_backward, c->node->op, zn_cuda_numel(c, &c->node->shape),
                 zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_out(c), c->cu->stream);
}

/* Max: x, dy -> dx; average: dy -> dx (no x to read). */
static const float *pool_x(const zn_cuda_call *c, zn_window_reduce r)
{
    return r == ZN_WINDOW_MAX ? zn_cuda_src(c, 0) : NULL;
}

/* Own kernel rather than cudnnPoolingBackward: the gradient goes to the FIRST maximum of a
 * window, as on the CPU (cuDNN picks any), and cuDNN's would need the forward's output too. The
 * windows' arg-maxes go to the workspace first, so dx may overwrite x. */
static bool run_pool_bwd(const zn_cuda_call *c)
{
    const zn_shape *x = &c->node->shape;
    zn_pool_dims d = zn_arg_pool_dims(x, &c->node->attr, zn_cuda_batch(c, x));
    zn_window_reduce r = c->node->op == ZN_OP_MAXPOOL_BWD ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    const zn_shape *dy = zn_cuda_src_shape(c, c->node->n_src - 1);
    int *argmax = NULL;
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    if (r == ZN_WINDOW_MAX &&
        !(argmax = zn_cuda_ws_take(c, &ws, sizeof(int) * zn_cuda_numel(c, dy))))
        return false;
    return ZN_RT(c, zn_cuda_pool_backward, r, &d, pool_x(c, r), zn_cuda_src(c, c->node->n_src - 1),
                 argmax, zn_cuda_out(c), c->cu->stream);
}

static bool run_global_pool_bwd(const zn_cuda_call *c)
{
    const zn_shape *x = &c->node->shape;
    zn_window_reduce r =
        c->node->op == ZN_OP_GLOBAL_MAXPOOL_BWD ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    return ZN_RT(c, zn_cuda_global_pool_backward, r, zn_cuda_batch(c, x), zn_arg_dim(x, 0),
                 zn_arg_dim(x, 1), zn_arg_dim(x, 2), pool_x(c, r),
                 zn_cuda_src(c, c->node->n_src - 1), zn_cuda_out(c), c->cu->stream);
}

/* dy [N, O], w [O, I] -> dx [N, I] = dy w: column-major dx^T = w^T dy^T. */
static bool run_linear_bwd_data(const zn_cuda_call *c)
{
    const zn_shape *dx = &c->node->shape, *dy = zn_cuda_src_shape(c, 0);
    int n = zn_cuda_batch(c, dx), in = zn_arg_dim(dx, 0), out = zn_arg_dim(dy, 0);
    return zn_cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, zn_cuda_src(c, 1), in, 1.0f,
                        zn_cuda_src(c, 0), out, zn_cuda_grad_scale(c->cu), zn_cuda_out(c), in);
}

/* x [N, I], dy [N, O] -> dw [O, I] = dy^T x: column-major dw^T = x^T dy. */
static bool run_linear_bwd_weight(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0), *dy = zn_cuda_src_shape(c, 1);
    int n = zn_cuda_batch(c, x), in = zn_arg_dim(x, 0), out = zn_arg_dim(dy, 0);
    return zn_cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, zn_cuda_src(c, 0), in, 1.0f,
                        zn_cuda_src(c, 1), out, zn_cuda_grad_scale(c->cu), zn_cuda_out(c), in);
}

/* dy -> dy[..., size[0] .. size[0] + len, ...] along attr.axis, len from the node's shape. */
static bool run_slice(const zn_cuda_call *c)
{
    const zn_shape *dy = zn_cuda_src_shape(c, 0);
    const int axis = c->node->attr.axis;
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(dy, dims);
    size_t outer, inner;
    zn_concat_split(zn_cuda_batch(c, dy), dy->rank, dims, axis, &outer, &inner);
    return ZN_RT(c, zn_cuda_slice_forward, outer, inner, (size_t)dims[axis],
                 (size_t)c->node->attr.size[0], (size_t)zn_arg_dim(&c->node->shape, axis),
                 zn_cuda_src(c, 0), zn_cuda_out(c), c->cu->stream);
}

/* x, dy -> dx */
static bool run_resample_bwd(const zn_cuda_call *c)
{
    const zn_shape *x = &c->node->shape, *dy = zn_cuda_src_shape(c, 1);
    zn_window_reduce r = zn_arg_window(c->node->attr.mode);
    return ZN_RT(c, zn_cuda_resample_backward, r, zn_cuda_batch(c, x), zn_arg_dim(x, 0),
                 zn_arg_dim(x, 1), zn_arg_dim(x, 2), zn_arg_dim(dy, 1), zn_arg_dim(dy, 2),
                 pool_x(c, r), zn_cuda_src(c, 1), zn_cuda_out(c), c->cu->stream);
}

/* r_0 .. r_{K-1}, dz -> d r_k, k = attr.axis */
static bool run_stitch_bwd(const zn_cuda_call *c)
{
    const int count = c->node->n_src - 1, k = c->node->attr.axis;
    zn_stitch_dims d = zn_cuda_stitch_dims(c, count, zn_cuda_src_shape(c, count));
    const float *r_k = d.down == ZN_WINDOW_MAX ? zn_cuda_src(c, k) : NULL;
    return ZN_RT(c, zn_cuda_stitch_backward_one, &d, k, r_k, zn_cuda_src(c, count),
                 zn_cuda_out(c), c->cu->stream);
}

/* r..., w, gamma, beta, dz -> coef [7, F] (cuda_ztower.c) */
static bool run_ztower_coef(const zn_cuda_call *c)
{
    const int w = zn_ztower_inputs(c->node);
    return zn_cuda_ztower_coef(c, zn_cuda_src(c, w), zn_cuda_src(c, w + 1), zn_cuda_src(c, w + 2),
                               zn_cuda_src(c, w + 3), zn_cuda_out(c));
}

/* r..., w, coef, dz -> d r_k (k = attr.axis) or dw (attr.axis = K) */
static bool run_ztower_bwd(const zn_cuda_call *c)
{
    const int w = zn_ztower_inputs(c->node);
    return zn_cuda_ztower_backward(c, c->node->attr.axis, zn_cuda_src(c, w),
                                   zn_cuda_src(c, w + 1), zn_cuda_src(c, w + 2), zn_cuda_out(c));
}

/* dy [C, ...], a [C, ...] -> [C]: per row of the gate, the sum of dy * a */
static bool run_mul_sum(const zn_cuda_call *c)
{
    size_t rows = zn_cuda_numel(c, &c->node->shape);
    return ZN_RT(c, zn_cuda_mul_sum, rows, zn_cuda_numel(c, zn_cuda_src_shape(c, 0)) / rows,
                 zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_out(c), c->cu->stream);
}

/* logits, label -> dlogits = weight * (softmax - target) (/ N for the mean) */
static bool run_xent_bwd(const zn_cuda_call *c)
{
    zn_xent_dims d = zn_cuda_xent_dims(c);
    return ZN_RT(c, zn_cuda_xent_backward, &d, zn_cuda_src(c, 0),
                 zn_cuda_tensor(c, c->node->src[1]), c->node->attr.weight, zn_cuda_out(c),
                 c->cu->bad_row + c->id, c->cu->stream);
}

const zn_cuda_runner zn_cuda_backward_runners[ZN_OP_COUNT] = {
    [ZN_OP_CONV2D_BWD_DATA] = zn_cuda_run_conv2d_bwd_data,
    [ZN_OP_CONV2D_BWD_FILTER] = zn_cuda_run_conv2d_bwd_filter,
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
    [ZN_OP_RESHAPE] = zn_cuda_run_copy,
    [ZN_OP_STITCH_BWD] = run_stitch_bwd,
    [ZN_OP_XENT_BWD] = run_xent_bwd,
    [ZN_OP_ZTOWER_COEF] = run_ztower_coef,
    [ZN_OP_ZTOWER_BWD] = run_ztower_bwd,
    [ZN_OP_MUL_SUM] = run_mul_sum,
#define EW_RUNNER(OP, E, fn, reads) [ZN_OP_##E##_BWD] = run_eltwise_bwd,
    ZN_OP_LIST(ZN_OP_SKIP, EW_RUNNER)
#undef EW_RUNNER
};
