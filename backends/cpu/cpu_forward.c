/* cpu_forward.c: the CPU backend's runners of the forward ops: each reads its node's shapes and
 * attributes, finds its tensors through the plan and calls one kernel of kernels.h or conv.h.
 * Per-example dims come from the node shapes; the batch extent from the plan. */
#include "backends/cpu/cpu_backend.h"

#include <string.h>

#include "graph/inspect.h"

/* x [N, C, ...]: statistics per channel over N and the remaining axes (x's sums per plane from
 * the conv before it when planes is not NULL); BATCHNORM_RELU is relu(batchnorm(x)). */
static bool run_norm(const zn_cpu_call *c, const zn_bn_sums *planes)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    const zn_attrs *a = &c->node->attr;
    zn_bn_dims d = {zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_inner(x, 1), a->eps,
                    a->momentum};
    const float *gamma = zn_cpu_src(c, 1), *beta = zn_cpu_src(c, 2);
    float *mean = zn_cpu_src(c, 3), *var = zn_cpu_src(c, 4);
    const bool training = c->cpu->opts.training;
    if (c->node->op == ZN_OP_BATCHNORM_RELU)
        zn_bn_relu_forward(&d, training, zn_cpu_src(c, 0), gamma, beta, mean, var,
                           zn_cpu_out(c), planes);
    else if (training && c->cpu->opts.bn_sync)
        zn_bn_forward_train_synced(&d, c->cpu->opts.bn_sync, zn_cpu_src(c, 0), gamma, beta, mean, var,
                                   zn_cpu_out(c));
    else if (training)
        zn_batchnorm_forward_train(&d, zn_cpu_src(c, 0), gamma, beta, mean, var, zn_cpu_out(c),
                                   NULL, planes);
    else
        zn_batchnorm_forward_infer(&d, zn_cpu_src(c, 0), gamma, beta, mean, var, zn_cpu_out(c));
    return true;
}

/* The batch norm (plain or with relu) that runs with conv node c, its statistics summed in the
 * conv's epilogue as each image's output is written (docs/performance.md, "Session 29"): the
 * next node of this compute call when it is a training batch norm of c's output over this
 * rank's batch alone (--sync-bn sums over the ranks); -1 when there is none, or under
 * --check-numerics, which must stop at a conv's NaN before the batch norm folds it into the
 * running statistics. */
static int paired_norm(const zn_cpu_call *c)
{
    const int next = zn_cpu_next_node(c);
    const zn_backend_opts *o = &c->cpu->opts;
    if (next < 0 || !o->training || o->bn_sync || o->check_numerics) return -1;
    const zn_node *n = &c->g->nodes[next];
    const bool norm = n->op == ZN_OP_BATCHNORM || n->op == ZN_OP_BATCHNORM_RELU;
    return norm && n->src[0] == c->id ? next : -1;
}

/* x, w[, b] -> y, and with its paired batch norm that node's output */
static bool run_conv2d(const zn_cpu_call *c)
{
    zn_conv_params p = zn_cpu_conv_params(c->g, c->id, c->p->batch);
    const float *bias = c->node->n_src == 3 ? zn_cpu_src(c, 2) : NULL;
    const int norm = paired_norm(c);
    zn_bn_sums *planes = norm < 0 ? NULL : zn_cpu_planes(c->cpu, (size_t)p.n * p.o);
    zn_conv2d_forward(&p, zn_cpu_src(c, 0), zn_cpu_src(c, 1), bias, zn_cpu_out(c),
                      c->cpu->workspace, planes);
    if (!planes) return true;
    zn_cpu_ran_pair(c, norm);
    return run_norm(&(zn_cpu_call){c->cpu, c->g, c->p, norm, &c->g->nodes[norm], c->last, NULL},
                    planes);
}

static bool run_batchnorm(const zn_cpu_call *c)
{
    return run_norm(c, NULL);
}

/* Every element-wise op of the op list. */
static bool run_eltwise(const zn_cpu_call *c)
{
    zn_eltwise_forward(c->node->op, zn_cpu_numel(c, &c->node->shape), zn_cpu_src(c, 0),
                       zn_cpu_out(c));
    return true;
}

static bool run_pool(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    zn_pool_dims d = zn_arg_pool_dims(x, &c->node->attr, zn_cpu_batch(c, x));
    zn_window_reduce r = c->node->op == ZN_OP_MAXPOOL ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    zn_pool_forward(r, &d, zn_cpu_src(c, 0), zn_cpu_out(c));
    return true;
}

static bool run_global_pool(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    zn_window_reduce r = c->node->op == ZN_OP_GLOBAL_MAXPOOL ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
    zn_global_pool_forward(r, zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(x, 1),
                           zn_arg_dim(x, 2), zn_cpu_src(c, 0), zn_cpu_out(c));
    return true;
}

static bool run_linear(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    const float *bias = c->node->n_src == 3 ? zn_cpu_src(c, 2) : NULL;
    zn_linear_forward(zn_cpu_batch(c, x), zn_arg_dim(x, 0), zn_arg_dim(&c->node->shape, 0),
                      zn_cpu_src(c, 0), zn_cpu_src(c, 1), bias, zn_cpu_out(c));
    return true;
}

static bool run_add(const zn_cpu_call *c)
{
    zn_add_forward(zn_cpu_numel(c, &c->node->shape), zn_cpu_src(c, 0), zn_cpu_src(c, 1),
                   zn_cpu_out(c));
    return true;
}

static bool run_scale(const zn_cpu_call *c)
{
    zn_scale_forward(zn_cpu_numel(c, &c->node->shape), c->node->attr.scale, zn_cpu_src(c, 0),
                     zn_cpu_out(c));
    return true;
}

/* Outside training the identity; the backward (a DROPOUT on dy) runs only in training. */
static bool run_dropout(const zn_cpu_call *c)
{
    if (!c->cpu->opts.training) return zn_cpu_run_copy(c);
    const zn_attrs *a = &c->node->attr;
    zn_dropout_mask m = zn_dropout_mask_of(c->cpu->rng_seed, c->cpu->rng_step,
                                           (uint32_t)a->stream, a->drop);
    zn_dropout_forward(&m, zn_cpu_numel(c, &c->node->shape), zn_cpu_src(c, 0), zn_cpu_out(c));
    return true;
}

/* a [rows, inner] times b, one value per row (inner 1: b has a's shape). */
static bool run_mul(const zn_cpu_call *c)
{
    size_t rows = zn_cpu_numel(c, zn_cpu_src_shape(c, 1));
    zn_mul_forward(rows, zn_cpu_numel(c, &c->node->shape) / rows, zn_cpu_src(c, 0),
                   zn_cpu_src(c, 1), zn_cpu_out(c));
    return true;
}

static bool run_concat(const zn_cpu_call *c)
{
    const zn_shape *y = &c->node->shape;
    const int axis = c->node->attr.axis;
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(y, dims);
    size_t outer, inner;
    zn_concat_split(zn_cpu_batch(c, y), y->rank, dims, axis, &outer, &inner);
    for (int k = 0; k < c->node->n_src; k++) {
        c->cpu->ptrs[k] = zn_cpu_src(c, k);
        c->cpu->ints[k] = zn_arg_dim(zn_cpu_src_shape(c, k), axis);
    }
    zn_concat_forward(outer, inner, c->node->n_src, c->cpu->ints, c->cpu->ptrs, zn_cpu_out(c));
    return true;
}

static bool run_resample(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0), *y = &c->node->shape;
    zn_resample_forward(zn_arg_window(c->node->attr.mode), zn_cpu_batch(c, x), zn_arg_dim(x, 0),
                        zn_arg_dim(x, 1), zn_arg_dim(x, 2), zn_arg_dim(y, 1), zn_arg_dim(y, 2),
                        zn_cpu_src(c, 0), zn_cpu_out(c));
    return true;
}

static bool run_transpose(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0);
    int dims[ZN_MAX_RANK];
    zn_arg_int_dims(x, dims);
    zn_transpose_forward(zn_cpu_batch(c, x), x->rank, dims, c->node->attr.perm, zn_cpu_src(c, 0),
                         zn_cpu_out(c));
    return true;
}

bool zn_cpu_run_copy(const zn_cpu_call *c)
{
    const zn_shape *x = zn_cpu_src_shape(c, 0), *y = &c->node->shape;
    size_t n = zn_cpu_numel(c, y);
    if (zn_cpu_numel(c, x) != n) {
        char where[256];
        return zn_cpu_fail(c->cpu, "node '%s' (%s): %s of %zu elements from %zu", c->node->name,
                           zn_node_where(c->node, where, sizeof where),
                           zn_ops[c->node->op].name, n, zn_cpu_numel(c, x));
    }
    memcpy(zn_cpu_out(c), zn_cpu_src(c, 0), n * sizeof(float));
    return true;
}

/* r..., w, gamma, beta, running_mean, running_var -> z [F] */
static bool run_ztower(const zn_cpu_call *c)
{
    zn_cpu_ztower z = zn_cpu_ztower_call(c);
    const int w = z.d.st.count;
    zn_ztower_forward(&z.d, c->cpu->opts.training, c->cpu->ptrs, zn_cpu_src(c, w),
                      zn_cpu_src(c, w + 1), zn_cpu_src(c, w + 2), zn_cpu_src(c, w + 3),
                      zn_cpu_src(c, w + 4), zn_cpu_out(c), z.scratch, z.conv_ws);
    return true;
}

/* Z [S_h, sum C_k, S_w] */
static bool run_stitch(const zn_cpu_call *c)
{
    zn_stitch_dims d = zn_cpu_stitch_dims(c, c->node->n_src, &c->node->shape);
    for (int k = 0; k < d.count; k++) c->cpu->ptrs[k] = zn_cpu_src(c, k);
    zn_stitch_forward(&d, c->cpu->ptrs, zn_cpu_out(c));
    return true;
}

/* The loss of the head, unweighted (the caller weights the heads' losses by attr.weight). */
static bool run_xent(const zn_cpu_call *c)
{
    const zn_shape *logits = zn_cpu_src_shape(c, 0);
    const zn_attrs *a = &c->node->attr;
    zn_xent_dims d = {zn_cpu_batch(c, logits), zn_arg_dim(logits, 0), a->smoothing,
                      a->reduction == ZN_REDUCE_MEAN};
    int row;
    if (zn_xent_forward(&d, zn_cpu_src(c, 0), zn_cpu_tensor(c, c->node->src[1]), zn_cpu_out(c),
                        &row) != ZN_KSTATUS_OK)
        return zn_cpu_bad_label(c, row, d.k);
    return true;
}

/* Inference ops: the parameters of a batch norm folded into the conv before it. */
static bool run_bn_fold_weight(const zn_cpu_call *c)
{
    const zn_shape *w = zn_cpu_src_shape(c, 0);
    zn_bn_fold_weight(zn_arg_dim(w, 0), (size_t)zn_arg_inner(w, 1), c->node->attr.eps,
                      zn_cpu_src(c, 0), zn_cpu_src(c, 1), zn_cpu_src(c, 2), zn_cpu_out(c));
    return true;
}

static bool run_bn_fold_bias(const zn_cpu_call *c)
{
    const float *b = c->node->n_src == 5 ? zn_cpu_src(c, 4) : NULL;
    zn_bn_fold_bias(zn_arg_dim(&c->node->shape, 0), c->node->attr.eps, zn_cpu_src(c, 0),
                    zn_cpu_src(c, 1), zn_cpu_src(c, 2), zn_cpu_src(c, 3), b, zn_cpu_out(c));
    return true;
}

const zn_cpu_runner zn_cpu_forward_runners[ZN_OP_COUNT] = {
    [ZN_OP_CONV2D] = run_conv2d,
    [ZN_OP_BATCHNORM] = run_batchnorm,
    [ZN_OP_BATCHNORM_RELU] = run_batchnorm,
    [ZN_OP_MAXPOOL] = run_pool,
    [ZN_OP_AVGPOOL] = run_pool,
    [ZN_OP_GLOBAL_MAXPOOL] = run_global_pool,
    [ZN_OP_GLOBAL_AVGPOOL] = run_global_pool,
    [ZN_OP_LINEAR] = run_linear,
    [ZN_OP_ADD] = run_add,
    [ZN_OP_SCALE] = run_scale,
    [ZN_OP_DROPOUT] = run_dropout,
    [ZN_OP_MUL] = run_mul,
    [ZN_OP_CONCAT] = run_concat,
    [ZN_OP_RESAMPLE] = run_resample,
    [ZN_OP_TRANSPOSE] = run_transpose,
    [ZN_OP_FLATTEN] = zn_cpu_run_copy,
    [ZN_OP_STITCH] = run_stitch,
    [ZN_OP_ZTOWER] = run_ztower,
    [ZN_OP_XENT] = run_xent,
    [ZN_OP_BN_FOLD_WEIGHT] = run_bn_fold_weight,
    [ZN_OP_BN_FOLD_BIAS] = run_bn_fold_bias,
#define EW_RUNNER(OP, E, fn, reads) [ZN_OP_##E] = run_eltwise,
    ZN_OP_LIST(ZN_OP_SKIP, EW_RUNNER)
#undef EW_RUNNER
};
