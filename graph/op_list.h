/* op_list.h: THE list of ops. Every fact about an op is one row here, and every table about ops
 * (the zn_op enum, zn_ops[] in ops.c, the language's layer functions in lang/builtins.c, the
 * element-wise kernels and the runner tables of both backends) is an expansion of this list, so
 * none can drift. The order is free: fingerprints hash op names (graph/hash.c), never numbers.
 * Plain macros only, so C, CUDA and C++ files can all include it. */
#ifndef ZN_OP_LIST_H
#define ZN_OP_LIST_H

/* ZN_OP_LIST(OP, EW) has two kinds of rows.
 *
 * OP(E, name, kind, min_src, max_src, srcs, attrs, infer, macs, grad, in_place, recompute,
 *    lower, lang) is any op:
 *   E          ZN_OP_E in the enum
 *   name       the op's name in dumps, messages and fingerprints
 *   kind       FORWARD (the model's ops), BACKWARD (appended by autodiff; each node's shape is
 *              that of the gradient it produces, its attributes the forward op's) or INFERENCE
 *              (built by inference passes, never differentiated)
 *   min_src, max_src   arity (max -1: any number)
 *   srcs       the sources' roles, for messages
 *   attrs      the ZN_ATTR_* fields of zn_attrs it reads
 *   infer      shape rule (graph/ops.c)
 *   macs       multiply-add rule per example (graph/ops.c)
 *   grad       gradient rule (graph/grad_rules.c), NULL for all but differentiable forward ops
 *   in_place   true: the output may overwrite a source of its size that dies here (graph/plan.c):
 *              element-wise kernels read element i before writing it (k_eltwise.c), batch
 *              norm's backward takes a channel's sums before writing the channel (k_norm.c),
 *              global max pooling's backward finds a plane's arg-max before writing the plane
 *              (k_pool.c)
 *   recompute  NO, CHEAP (recomputed in the backward pass, graph/pass_recompute.c), BUDGET
 *              (recomputed while the recomputed multiply-adds stay within its budget) or SPLIT
 *              (recomputed only in a memory budget's split segments: pooling, whose copy in an
 *              unsplit chain would keep the copy of its full-size input alive with it)
 *   lower      the lowering in lang/builtins.c that turns a call into this op (lower_<lower>
 *              with parameters ARGS_<lower>), `none` for ops a model cannot call
 *   lang       the names a model calls it by: ZN_LANG0 (none), ZN_LANG1("name") or
 *              ZN_LANG2("name", "other name")
 *
 * EW(OP, E, fn, reads) is an element-wise function of one tensor, y = f(x), and makes two ops:
 * E (forward, called fn(x) in the language) and E_BWD (dx = dy * f'(x), reading x when reads is
 * INPUT or y when it is OUTPUT). Its math is zn_ew_<fn> and zn_ew_<fn>_bwd in
 * backends/eltwise_math.h, which the CPU and CUDA kernels share; the rest (shape rule, gradient
 * rule zn_grad_<fn>, runners, language entry) is generated from the row. Adding such an op is
 * this row and those two functions. */

#define ZN_ATTRS_WINDOW (ZN_ATTR_KERNEL | ZN_ATTR_STRIDE | ZN_ATTR_PAD)
#define ZN_ATTRS_CONV (ZN_ATTRS_WINDOW | ZN_ATTR_DILATION | ZN_ATTR_GROUPS | ZN_ATTR_OUT)
#define ZN_ATTRS_XENT (ZN_ATTR_SMOOTHING | ZN_ATTR_WEIGHT | ZN_ATTR_REDUCTION)
#define ZN_ATTRS_ZTOWER (ZN_ATTR_SIZE | ZN_ATTR_MODE | ZN_ATTRS_WINDOW | ZN_ATTR_DILATION | \
                         ZN_ATTR_EPS | ZN_ATTR_MOMENTUM)

/* clang-format off */
#define ZN_OP_LIST(OP, EW) \
    OP(INPUT, "input", FORWARD, 0, 0, "", ZN_ATTR_OUT, infer_leaf, macs_none, NULL, false, NO, \
       none, ZN_LANG0) \
    OP(PARAM, "param", FORWARD, 0, 0, "", ZN_ATTR_INIT, infer_leaf, macs_none, NULL, false, NO, \
       none, ZN_LANG0) \
    OP(CONV2D, "conv2d", FORWARD, 2, 3, "x, w[, b]", ZN_ATTRS_CONV, infer_conv2d, macs_conv2d, \
       zn_grad_conv2d, false, BUDGET, conv2d, ZN_LANG1("conv2d")) \
    OP(BATCHNORM, "batchnorm", FORWARD, 5, 5, "x, gamma, beta, running_mean, running_var", \
       ZN_ATTR_EPS | ZN_ATTR_MOMENTUM, infer_batchnorm, macs_none, zn_grad_batchnorm, false, \
       CHEAP, batchnorm, ZN_LANG1("batchnorm")) \
    EW(OP, RELU, relu, OUTPUT) \
    EW(OP, GELU, gelu, INPUT) \
    EW(OP, SILU, silu, INPUT) \
    EW(OP, SIGMOID, sigmoid, OUTPUT) \
    /* relu(batchnorm(x)) in one node: a stats pass, then y = max(a*x + b, 0) in one pass \
       (graph/pass_fuse_bn_relu.c; cuDNN's BN_ACTIVATION forward) */ \
    OP(BATCHNORM_RELU, "batchnorm_relu", FORWARD, 5, 5, \
       "x, gamma, beta, running_mean, running_var", ZN_ATTR_EPS | ZN_ATTR_MOMENTUM, \
       infer_batchnorm, macs_none, zn_grad_batchnorm_relu, false, CHEAP, none, ZN_LANG0) \
    OP(MAXPOOL, "maxpool", FORWARD, 1, 1, "x", ZN_ATTRS_WINDOW, infer_pool, macs_none, \
       zn_grad_maxpool, false, SPLIT, pool, ZN_LANG1("maxpool")) \
    OP(AVGPOOL, "avgpool", FORWARD, 1, 1, "x", ZN_ATTRS_WINDOW, infer_pool, macs_none, \
       zn_grad_avgpool, false, SPLIT, pool, ZN_LANG1("avgpool")) \
    OP(GLOBAL_MAXPOOL, "global_maxpool", FORWARD, 1, 1, "x", 0, infer_global_pool, macs_none, \
       zn_grad_global_maxpool, false, NO, unary_chw, ZN_LANG2("gmp", "global_maxpool")) \
    OP(GLOBAL_AVGPOOL, "global_avgpool", FORWARD, 1, 1, "x", 0, infer_global_pool, macs_none, \
       zn_grad_global_avgpool, false, NO, unary_chw, ZN_LANG2("gap", "global_avgpool")) \
    OP(LINEAR, "linear", FORWARD, 2, 3, "x, w[, b]", ZN_ATTR_OUT, infer_linear, macs_linear, \
       zn_grad_linear, false, NO, linear, ZN_LANG1("linear")) \
    OP(ADD, "add", FORWARD, 2, 2, "a, b", 0, infer_add, macs_none, zn_grad_add, true, NO, add, \
       ZN_LANG1("add")) \
    OP(SCALE, "scale", FORWARD, 1, 1, "x", ZN_ATTR_SCALE, infer_same, macs_none, zn_grad_scale, \
       true, CHEAP, scale, ZN_LANG1("scale")) \
    /* b of a's shape, or b [C] a gate over a [C, ...] (both per example or neither) */ \
    OP(MUL, "mul", FORWARD, 2, 2, "a, b", 0, infer_mul, macs_none, zn_grad_mul, true, NO, mul, \
       ZN_LANG1("mul")) \
    /* x / (1 - attr.drop) where the mask of attr.stream keeps it, else 0, in training; the \
       identity outside it (backends/dropout_mask.h) */ \
    OP(DROPOUT, "dropout", FORWARD, 1, 1, "x", ZN_ATTR_DROP, infer_dropout, macs_none, \
       zn_grad_dropout, false, NO, dropout, ZN_LANG1("dropout")) \
    OP(CONCAT, "concat", FORWARD, 1, -1, "inputs...", ZN_ATTR_AXIS, infer_concat, macs_none, \
       zn_grad_concat, false, NO, concat, ZN_LANG1("concat")) \
    OP(RESAMPLE, "resample", FORWARD, 1, 1, "x", ZN_ATTR_FACTOR | ZN_ATTR_SIZE | ZN_ATTR_MODE, \
       infer_resample, macs_none, zn_grad_resample, false, NO, resample, ZN_LANG1("resample")) \
    OP(TRANSPOSE, "transpose", FORWARD, 1, 1, "x", ZN_ATTR_PERM, infer_transpose, macs_none, \
       zn_grad_transpose, false, NO, transpose, ZN_LANG1("transpose")) \
    OP(FLATTEN, "flatten", FORWARD, 1, 1, "x", 0, infer_flatten, macs_none, zn_grad_flatten, \
       false, NO, unary, ZN_LANG1("flatten")) \
    OP(STITCH, "stitch", FORWARD, 1, -1, "inputs...", ZN_ATTR_SIZE | ZN_ATTR_MODE, infer_stitch, \
       macs_none, zn_grad_stitch, false, NO, stitch, ZN_LANG1("stitch")) \
    OP(XENT, "xent", FORWARD, 2, 2, "logits, label", ZN_ATTRS_XENT, infer_xent, macs_none, \
       zn_grad_xent, false, NO, xent, ZN_LANG1("xent")) \
    /* gmp(relu(batchnorm(conv2d(stitch(r), w)))) in one node that runs the batch in slices \
       (graph/pass_ztower.c) */ \
    OP(ZTOWER, "ztower", FORWARD, 6, -1, "inputs..., w, gamma, beta, running_mean, running_var", \
       ZN_ATTRS_ZTOWER, infer_ztower, macs_ztower, zn_grad_ztower, false, NO, none, ZN_LANG0) \
    OP(CONV2D_BWD_DATA, "conv2d_bwd_data", BACKWARD, 2, 2, "dy, w", ZN_ATTRS_CONV, \
       infer_conv2d_bwd_data, macs_conv2d_bwd_data, NULL, false, NO, none, ZN_LANG0) \
    OP(CONV2D_BWD_FILTER, "conv2d_bwd_filter", BACKWARD, 2, 2, "x, dy", ZN_ATTRS_CONV, \
       infer_conv2d_bwd_filter, macs_conv2d_bwd_filter, NULL, false, NO, none, ZN_LANG0) \
    /* dy [C, ...] -> [C]: the sum over batch and spatial axes (conv/linear bias, batch norm's \
       beta) */ \
    OP(BIAS_BWD, "bias_bwd", BACKWARD, 1, 1, "dy", 0, infer_channel_grad, macs_none, NULL, false, \
       NO, none, ZN_LANG0) \
    /* training-mode statistics recomputed; with dgamma and dbeta given, dy is not summed again */ \
    OP(BATCHNORM_BWD_DATA, "batchnorm_bwd_data", BACKWARD, 3, 5, "x, gamma, dy[, dgamma, dbeta]", \
       ZN_ATTR_EPS, infer_like_first, macs_none, NULL, true, NO, none, ZN_LANG0) \
    OP(BATCHNORM_BWD_GAMMA, "batchnorm_bwd_gamma", BACKWARD, 2, 2, "x, dy", ZN_ATTR_EPS, \
       infer_channel_grad, macs_none, NULL, false, NO, none, ZN_LANG0) \
    /* [7 * C], not batched: dgamma, dbeta, the backward affine kx, kb, ka of \
       dx = kx*x + kb + ka*dy*(a*x + b > 0) and the forward's a, b; a pass over x for the \
       statistics, then one over x and dy (the relu's mask from x: y is not read) */ \
    OP(BATCHNORM_RELU_BWD_COEF, "batchnorm_relu_bwd_coef", BACKWARD, 4, 4, \
       "x, gamma, beta, dy", ZN_ATTR_EPS, infer_bn_relu_coef, macs_none, NULL, false, NO, none, \
       ZN_LANG0) \
    /* dx in one pass over x and dy with the coefficients; element i read before written */ \
    OP(BATCHNORM_RELU_BWD_DATA, "batchnorm_relu_bwd_data", BACKWARD, 3, 3, "x, dy, coef", \
       ZN_ATTR_EPS, infer_bn_relu_bwd_data, macs_none, NULL, true, NO, none, ZN_LANG0) \
    /* dx to the arg-max, recomputed from x */ \
    OP(MAXPOOL_BWD, "maxpool_bwd", BACKWARD, 2, 2, "x, dy", ZN_ATTRS_WINDOW, infer_like_first, \
       macs_none, NULL, false, NO, none, ZN_LANG0) \
    OP(AVGPOOL_BWD, "avgpool_bwd", BACKWARD, 1, 1, "dy", ZN_ATTRS_WINDOW, infer_avgpool_bwd, \
       macs_none, NULL, false, NO, none, ZN_LANG0) \
    OP(GLOBAL_MAXPOOL_BWD, "global_maxpool_bwd", BACKWARD, 2, 2, "x, dy", 0, infer_like_first, \
       macs_none, NULL, true, NO, none, ZN_LANG0) \
    OP(GLOBAL_AVGPOOL_BWD, "global_avgpool_bwd", BACKWARD, 1, 1, "dy", 0, \
       infer_global_avgpool_bwd, macs_none, NULL, false, NO, none, ZN_LANG0) \
    OP(LINEAR_BWD_DATA, "linear_bwd_data", BACKWARD, 2, 2, "dy, w", 0, infer_linear_bwd_data, \
       macs_linear, NULL, false, NO, none, ZN_LANG0) \
    OP(LINEAR_BWD_WEIGHT, "linear_bwd_weight", BACKWARD, 2, 2, "x, dy", 0, \
       infer_linear_bwd_weight, macs_linear_bwd_weight, NULL, false, NO, none, ZN_LANG0) \
    /* the part of a concat's output that one input gave: attr.axis, offset attr.size[0], length \
       from the node's shape */ \
    OP(SLICE, "slice", BACKWARD, 1, 1, "dy", ZN_ATTR_AXIS | ZN_ATTR_SIZE, infer_slice, macs_none, \
       NULL, false, NO, none, ZN_LANG0) \
    OP(RESAMPLE_BWD, "resample_bwd", BACKWARD, 2, 2, "x, dy", ZN_ATTR_MODE, infer_like_first, \
       macs_none, NULL, false, NO, none, ZN_LANG0) \
    /* x -> the same elements under the node's shape (flatten's backward) */ \
    OP(RESHAPE, "reshape", BACKWARD, 1, 1, "x", 0, infer_reshape, macs_none, NULL, false, NO, \
       none, ZN_LANG0) \
    /* d r_k for k = attr.axis (one node per input; each reads only its own columns of dz) */ \
    OP(STITCH_BWD, "stitch_bwd", BACKWARD, 2, -1, "inputs..., dz", ZN_ATTR_AXIS | ZN_ATTR_MODE, \
       infer_stitch_bwd, macs_none, NULL, false, NO, none, ZN_LANG0) \
    /* dlogits, times attr.weight (and 1/N for the mean) */ \
    OP(XENT_BWD, "xent_bwd", BACKWARD, 2, 2, "logits, label", ZN_ATTRS_XENT, infer_like_first, \
       macs_none, NULL, false, NO, none, ZN_LANG0) \
    /* [7 * F], not batched: the batch norm's forward affine a, b, its backward affine kx, kb, ka \
       (dx = kx*x + kb + ka*dy), dgamma and dbeta (docs/passes.md) */ \
    OP(ZTOWER_COEF, "ztower_coef", BACKWARD, 5, -1, "inputs..., w, gamma, beta, dz", \
       ZN_ATTRS_ZTOWER, infer_ztower_coef, macs_ztower, NULL, false, NO, none, ZN_LANG0) \
    /* d r_k for k = attr.axis < K, dw for attr.axis = K */ \
    OP(ZTOWER_BWD, "ztower_bwd", BACKWARD, 4, -1, "inputs..., w, coef, dz", \
       ZN_ATTRS_ZTOWER | ZN_ATTR_AXIS, infer_ztower_bwd, macs_ztower, NULL, false, NO, none, \
       ZN_LANG0) \
    /* dy [C, ...], a [C, ...] -> [C]: per channel, the sum of dy * a (a MUL gate's gradient) */ \
    OP(MUL_SUM, "mul_sum", BACKWARD, 2, 2, "dy, a", 0, infer_mul_sum, macs_none, NULL, false, NO, \
       none, ZN_LANG0) \
    /* w * gamma/sqrt(var + eps) (graph/pass_fold_bn.c) */ \
    OP(BN_FOLD_WEIGHT, "bn_fold_weight", INFERENCE, 3, 3, "w, gamma, running_var", ZN_ATTR_EPS, \
       infer_bn_fold_weight, macs_none, NULL, false, NO, none, ZN_LANG0) \
    /* beta + (b - mean) * gamma/sqrt(var + eps), b = 0 when absent */ \
    OP(BN_FOLD_BIAS, "bn_fold_bias", INFERENCE, 4, 5, \
       "gamma, beta, running_mean, running_var[, b]", ZN_ATTR_EPS, infer_bn_fold_bias, \
       macs_none, NULL, false, NO, none, ZN_LANG0)
/* clang-format on */

/* An EW row as its two OP rows. An element-wise op works in place and is recomputed like relu. */
#define ZN_EW_AS_OPS(OP, E, fn, reads)                                                          \
    OP(E, #fn, FORWARD, 1, 1, "x", 0, infer_same, macs_none, zn_grad_##fn, true, CHEAP, unary,   \
       ZN_LANG1(#fn))                                                                            \
    OP(E##_BWD, #fn "_bwd", BACKWARD, 2, 2, ZN_EW_SRCS_##reads, 0, infer_like_first, macs_none, \
       NULL, true, NO, none, ZN_LANG0)
#define ZN_EW_SRCS_INPUT "x, dy"
#define ZN_EW_SRCS_OUTPUT "y, dy"

/* Every row as OP rows; an expansion that wants only the EW rows passes ZN_OP_SKIP as OP. */
#define ZN_OP_EACH(OP) ZN_OP_LIST(OP, ZN_EW_AS_OPS)
#define ZN_OP_SKIP(...)

/* The lang column as three values: how many names, then two names ("" when absent). */
#define ZN_LANG0 0, "", ""
#define ZN_LANG1(name) 1, name, ""
#define ZN_LANG2(name, alias) 2, name, alias

#define ZN_OP_ENUM_VALUE(E, ...) ZN_OP_##E,
typedef enum { ZN_OP_EACH(ZN_OP_ENUM_VALUE) ZN_OP_COUNT } zn_op;
#undef ZN_OP_ENUM_VALUE

#endif
