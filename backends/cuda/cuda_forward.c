/* cuda_forward.c: the CUDA backend's runners of the forward (and inference) ops: cuDNN for batch
 * norm and pooling, cuBLAS for linear, the own kernels of cuda_kernels.h for the rest;
 * convolution is in cuda_conv.c, the fused z-tower's slice walk in cuda_ztower.c. Each reads its
 * node's shapes and attributes like its CPU counterpart (backends/cpu/cpu_forward.c) and
 * enqueues on the backend's stream. */
#include "backends/cuda/cuda_backend.h"

static const float one = 1.0f, zero = 0.0f;

/* x [C, ...] as cuDNN's [N, C, HW, 1] in xd, and the per-channel descriptor in bd. */
static bool bn_descs(const zn_cuda_call *c, const zn_shape *x)
{
    zn_cuda *cu = c->cu;
    if (c->node->attr.eps < CUDNN_BN_MIN_EPSILON)
        return zn_cuda_fail(cu, "cuda backend: batch norm eps %g is below cuDNN's minimum %g",
                            (double)c->node->attr.eps, (double)CUDNN_BN_MIN_EPSILON);
    return ZN_DNN(c, cudnnSetTensor4dDescriptor, cu->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                  zn_cuda_batch(c, x), zn_arg_dim(x, 0), zn_arg_inner(x, 1), 1) &&
           ZN_DNN(c, cudnnDeriveBNTensorDescriptor, cu->bd, cu->xd, CUDNN_BATCHNORM_SPATIAL);
}

/* x, gamma, beta, running_mean, running_var. Our momentum is the share of the old running value
 * kept; cuDNN's factor is the share of the new one. Both normalise by the biased batch variance
 * and keep the unbiased one in running_var. Momentum 1 (a recomputed copy) leaves the running
 * statistics untouched, as on the CPU: cuDNN then gets no running tensors at all. */
static bool run_batchnorm(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    const zn_attrs *a = &c->node->attr;
    if (!bn_descs(c, zn_cuda_src_shape(c, 0))) return false;
    const float *x = zn_cuda_src(c, 0), *gamma = zn_cuda_src(c, 1), *beta = zn_cuda_src(c, 2);
    float *mean = zn_cuda_src(c, 3), *var = zn_cuda_src(c, 4);
    bool update = a->momentum < 1;
    if (cu->opts.training)
        return ZN_DNN(c, cudnnBatchNormalizationForwardTraining, cu->cudnn, CUDNN_BATCHNORM_SPATIAL,
                      &one, &zero, cu->xd, x, cu->xd, zn_cuda_out(c), cu->bd, gamma, beta,
                      1.0 - (double)a->momentum, update ? mean : NULL, update ? var : NULL,
                      (double)a->eps, NULL, NULL);
    return ZN_DNN(c, cudnnBatchNormalizationForwardInference, cu->cudnn, CUDNN_BATCHNORM_SPATIAL,
                  &one, &zero, cu->xd, x, cu->xd, zn_cuda_out(c), cu->bd, gamma, beta, mean, var,
                  (double)a->eps);
}

/* relu(batchnorm(x)) in one op (k_norm_relu.cu): x, gamma, beta, running_mean, running_var. The
 * training statistics are the own channel sums, not cuDNN's: the backward recomputes the
 * forward's relu mask from them, so both must give the same bits. */
static bool run_batchnorm_relu(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    zn_bn_dims d = zn_cuda_bn_dims(c);
    zn_cuda_ws ws = zn_cuda_ws_begin(c);
    double *scratch = zn_cuda_channel_scratch(c, &ws, d.c);
    float *ab = zn_cuda_ws_take(c, &ws, 2 * sizeof(float) * (size_t)d.c);
    return scratch && ab &&
           ZN_RT(c, zn_cuda_bn_relu_forward, &d, cu->opts.training, zn_cuda_src(c, 0),
                 zn_cuda_src(c, 1), zn_cuda_src(c, 2), zn_cuda_src(c, 3), zn_cuda_src(c, 4),
                 scratch, ab, zn_cuda_out(c), cu->stream);
}

/* Every element-wise op of the op list. */
static bool run_eltwise(const zn_cuda_call *c)
{
    return ZN_RT(c, zn_cuda_eltwise_forward, c->node->op, zn_cuda_numel(c, &c->node->shape),
                 zn_cuda_src(c, 0), zn_cuda_out(c), c->cu->stream);
}

/* cuDNN's max pooling ignores the padding and its average excludes it, as the CPU kernels do. */
static bool run_pool(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    const zn_shape *x = zn_cuda_src_shape(c, 0), *y = &c->node->shape;
    const zn_attrs *a = &c->node->attr;
    int n = zn_cuda_batch(c, x);
    cudnnPoolingMode_t mode = c->node->op == ZN_OP_MAXPOOL
                                  ? CUDNN_POOLING_MAX
                                  : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    return ZN_DNN(c, cudnnSetPooling2dDescriptor, cu->poold, mode, CUDNN_PROPAGATE_NAN,
                  a->kernel[0], a->kernel[1], a->pad[0], a->pad[1], a->stride[0], a->stride[1]) &&
           ZN_DNN(c, cudnnSetTensor4dDescriptor, cu->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
                  zn_arg_dim(x, 0), zn_arg_dim(x, 1), zn_arg_dim(x, 2)) &&
           ZN_DNN(c, cudnnSetTensor4dDescriptor, cu->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
                  zn_arg_dim(y, 0), zn_arg_dim(y, 1), zn_arg_dim(y, 2)) &&
           ZN_DNN(c, cudnnPoolingForward, cu->cudnn, cu->poold, &one, cu->xd, zn_cuda_src(c, 0),
                  &zero, cu->yd, zn_cuda_out(c));
}

static bool run_global_pool(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0);
    zn_window_reduce r = c->node->op == ZN_OP_GLOBAL_MAXPOOL ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    return ZN_RT(c, zn_cuda_global_pool_forward, r, zn_cuda_batch(c, x), zn_arg_dim(x, 0),
                 zn_arg_dim(x, 1), zn_arg_dim(x, 2), zn_cuda_src(c, 0), zn_cuda_out(c),
                 c->cu->stream);
}

/* y [N, O] = x [N, I] w[O, I]^T (+ b): in cuBLAS's column-major terms y^T = w x^T. */
static bool run_linear(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0);
    int n = zn_cuda_batch(c, x), in = zn_arg_dim(x, 0), out = zn_arg_dim(&c->node->shape, 0);
    if (!zn_cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, zn_cuda_src(c, 1), in, 1.0f,
                      zn_cuda_src(c, 0), in, 1.0f, zn_cuda_out(c), out))
        return false;
    return c->node->n_src < 3 || zn_cuda_add_bias(c, zn_cuda_src(c, 2), zn_cuda_out(c), n, out, 1);
}

static bool run_add(const zn_cuda_call *c)
{
    return ZN_RT(c, zn_cuda_add_forward, zn_cuda_numel(c, &c->node->shape), zn_cuda_src(c, 0),
                 zn_cuda_src(c, 1), zn_cuda_out(c), c->cu->stream);
}

/* As the CPU's: the identity outside training; the mask of dropout_mask.h within. */
static bool run_dropout(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    if (!cu->opts.training) return zn_cuda_run_copy(c);
    const zn_attrs *a = &c->node->attr;
    zn_dropout_mask m = zn_dropout_mask_of(cu->rng_seed, cu->rng_step, (uint32_t)a->stream,
                                           a->drop);
    return ZN_RT(c, zn_cuda_dropout_forward, &m, zn_cuda_numel(c, &c->node->shape),
                 zn_cuda_src(c, 0), zn_cuda_out(c), cu->stream);
}

/* a [rows, inner] times b, one value per row (inner 1: b has a's shape). */
static bool run_mul(const zn_cuda_call *c)
{
    size_t rows = zn_cuda_numel(c, zn_cuda_src_shape(c, 1));
    return ZN_RT(c, zn_cuda_mul_forward, rows, zn_cuda_numel(c, &c->node->shape) / rows,
                 zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_out(c), c->cu->stream);
}

static bool run_scale(const zn_cuda_call *c)
{
    return ZN_RT(c, zn_cuda_scale_forward, zn_cuda_numel(c, &c->node->shape), c->node->attr.scale,
                 zn_cuda_src(c, 0), zn_cuda_out(c), c->cu->stream);
}

static bool run_concat(const zn_cuda_call *c)
{
    const zn_shape *y = &c->node->shape;
    const int axis = c->node->attr.axis;
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(y, dims);
    size_t outer, inner;
    zn_concat_split(zn_cuda_batch(c, y), y->rank, dims, axis, &outer, &inner);
    for (int k = 0; k < c->node->n_src; k++) {
        c->cu->ptrs[k] = zn_cuda_src(c, k);
        c->cu->ints[k] = zn_arg_dim(zn_cuda_src_shape(c, k), axis);
    }
    return ZN_RT(c, zn_cuda_concat_forward, outer, inner, c->node->n_src, c->cu->ints, c->cu->ptrs,
                 zn_cuda_out(c), c->cu->stream);
}

static bool run_resample(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0), *y = &c->node->shape;
    return ZN_RT(c, zn_cuda_resample_forward, zn_arg_window(c->node->attr.mode),
                 zn_cuda_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(x, 1), zn_arg_dim(x, 2),
                 zn_arg_dim(y, 1), zn_arg_dim(y, 2), zn_cuda_src(c, 0), zn_cuda_out(c),
                 c->cu->stream);
}

static bool run_transpose(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0);
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(x, dims);
    return ZN_RT(c, zn_cuda_transpose_forward, zn_cuda_batch(c, x), x->rank, dims,
                 c->node->attr.perm, zn_cuda_src(c, 0), zn_cuda_out(c), c->cu->stream);
}

bool zn_cuda_run_copy(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0), *y = &c->node->shape;
    size_t n = zn_cuda_numel(c, y);
    if (zn_cuda_numel(c, x) != n) {
        char text[512];
        return zn_cuda_fail(c->cu, "cuda backend: %s: %zu elements from %zu",
                            zn_cuda_node_text(c->node, text, sizeof text), n, zn_cuda_numel(c, x));
    }
    const float *from = zn_cuda_src(c, 0);
    float *to = zn_cuda_out(c);
    return from == to || ZN_RT(c, zn_cuda_copy, n, from, to, c->cu->stream);
}

/* Z [S_h, sum C_k, S_w] */
static bool run_stitch(const zn_cuda_call *c)
{
    zn_stitch_dims d = zn_cuda_stitch_dims(c, c->node->n_src, &c->node->shape);
    for (int k = 0; k < d.count; k++) c->cu->ptrs[k] = zn_cuda_src(c, k);
    return ZN_RT(c, zn_cuda_stitch_forward, &d, c->cu->ptrs, zn_cuda_out(c), c->cu->stream);
}

/* r..., w, gamma, beta, running_mean, running_var -> z [F] (cuda_ztower.c) */
static bool run_ztower(const zn_cuda_call *c)
{
    const int w = zn_ztower_inputs(c->node);
    return zn_cuda_ztower_forward(c, zn_cuda_src(c, w), zn_cuda_src(c, w + 1),
                                  zn_cuda_src(c, w + 2), zn_cuda_src(c, w + 3),
                                  zn_cuda_src(c, w + 4), zn_cuda_out(c));
}

zn_xent_dims zn_cuda_xent_dims(const zn_cuda_call *c)
{
    const zn_shape *logits = zn_cuda_src_shape(c, 0);
    const zn_attrs *a = &c->node->attr;
    return (zn_xent_dims){zn_cuda_batch(c, logits), zn_arg_dim(logits, 0), a->smoothing,
                          a->reduction == ZN_REDUCE_MEAN};
}

/* The loss of the head, unweighted; a bad label is reported from bad_row (cuda_backend.c). */
static bool run_xent(const zn_cuda_call *c)
{
    zn_xent_dims d = zn_cuda_xent_dims(c);
    return ZN_RT(c, zn_cuda_xent_forward, &d, zn_cuda_src(c, 0),
                 zn_cuda_tensor(c, c->node->src[1]), zn_cuda_out(c), c->cu->bad_row + c->id,
                 c->cu->stream);
}

/* Inference ops: the parameters of a batch norm folded into the conv before it. */
static bool run_bn_fold_weight(const zn_cuda_call *c)
{
    const zn_shape *w = zn_cuda_src_shape(c, 0);
    return ZN_RT(c, zn_cuda_bn_fold_weight, zn_arg_dim(w, 0), (size_t)zn_arg_inner(w, 1),
                 c->node->attr.eps, zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_src(c, 2),
                 zn_cuda_out(c), c->cu->stream);
}

static bool run_bn_fold_bias(const zn_cuda_call *c)
{
    const float *b = c->node->n_src == 5 ? zn_cuda_src(c, 4) : NULL;
    return ZN_RT(c, zn_cuda_bn_fold_bias, zn_arg_dim(&c->node->shape, 0), c->node->attr.eps,
                 zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_src(c, 2), zn_cuda_src(c, 3), b,
                 zn_cuda_out(c), c->cu->stream);
}

const zn_cuda_runner zn_cuda_forward_runners[ZN_OP_COUNT] = {
    [ZN_OP_CONV2D] = zn_cuda_run_conv2d,
    [ZN_OP_BATCHNORM] = run_batchnorm,
    [ZN_OP_BATCHNORM_RELU] = run_batchnorm_relu,
    [ZN_OP_MAXPOOL] = run_pool,
    [ZN_OP_AVGPOOL] = run_pool,
    [ZN_OP_GLOBAL_MAXPOOL] = run_global_pool,
    [ZN_OP_GLOBAL_AVGPOOL] = run_global_pool,
    [ZN_OP_LINEAR] = run_linear,
    [ZN_OP_ADD] = run_add,
    [ZN_OP_SCALE] = run_scale,
    [ZN_OP_CONCAT] = run_concat,
    [ZN_OP_RESAMPLE] = run_resample,
    [ZN_OP_TRANSPOSE] = run_transpose,
    [ZN_OP_FLATTEN] = zn_cuda_run_copy,
    [ZN_OP_DROPOUT] = run_dropout,
    [ZN_OP_MUL] = run_mul,
    [ZN_OP_STITCH] = run_stitch,
    [ZN_OP_XENT] = run_xent,
    [ZN_OP_ZTOWER] = run_ztower,
    [ZN_OP_BN_FOLD_WEIGHT] = run_bn_fold_weight,
    [ZN_OP_BN_FOLD_BIAS] = run_bn_fold_bias,
#define EW_RUNNER(OP, E, fn, reads) [ZN_OP_##E] = run_eltwise,
    ZN_OP_LIST(ZN_OP_SKIP, EW_RUNNER)
#undef EW_RUNNER
};
