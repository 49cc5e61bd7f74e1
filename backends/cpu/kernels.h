/* kernels.h: the CPU reference kernels of every op except convolution and linear (conv.h),
 * forward and backward, plus the loss, optimizer and numerics helpers the runtime calls.
 * Pure functions over float32 arrays: batch first, NCHW, contiguous; no graph types (the
 * element-wise kernels take the zn_op of graph/op_list.h that names their function), no
 * allocation; large ones split their work over the pool of threads.h in fixed slices, so
 * results do not depend on thread timing. Every backward OVERWRITES its outputs unless its name says
 * accumulate. Sources by family: k_norm.c, k_eltwise.c, k_dropout.c, k_mul.c, k_pool.c (every
 * op that walks windows of an H×W plane: pooling, resample, stitch), k_layout.c, k_loss.c,
 * k_optim.c. */
#ifndef ZN_CPU_KERNELS_H
#define ZN_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/dropout_mask.h"
#include "backends/kernel_args.h"
#include "graph/op_list.h"

/* ---- batch norm (k_norm.c) ----------------------------------------------------------------
 * x, y: [N, C, HW] (HW = H*W; 1 for [N, C]); gamma, beta, running_*: [C].
 * Statistics per channel over N and HW; the batch variance is biased (divides by N*HW). */

/* Training forward; also updates running_mean/running_var (the variance with the UNBIASED batch
 * variance, as PyTorch does). saved: [2*C] receives the batch mean then 1/sqrt(var+eps) for the
 * backward, or NULL. planes: x's sums per image plane [N * C] (zn_plane_sums, as the conv
 * before it takes them in its epilogue), or NULL to sum x here; the same bits either way. */
void zn_batchnorm_forward_train(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, float *running_mean, float *running_var,
                                float *y, float *saved, const zn_bn_sums *planes);
/* Inference forward with the running statistics. */
void zn_batchnorm_forward_infer(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, float *y);
/* Batch norm folded into the layer before it (inference): a = gamma/sqrt(running_var + eps) per
 * channel; w' [C, per] = w * a, b' = beta + (b - running_mean) * a (b NULL: 0). */
void zn_bn_fold_weight(int c, size_t per, float eps, const float *w, const float *gamma,
                       const float *running_var, float *out);
void zn_bn_fold_bias(int c, float eps, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, const float *b,
                     float *out);
/* Backward of the training forward: dx [N,C,HW], dgamma [C], dbeta [C]; any of the three may be
 * NULL to skip it (gamma is read only for dx). saved is the buffer the forward filled, or NULL
 * to recompute the batch statistics from x. */
void zn_batchnorm_backward(const zn_bn_dims *d, const float *x, const float *gamma,
                           const float *dy, const float *saved, float *dx, float *dgamma,
                           float *dbeta);
/* dx alone, from the parameter gradients dgamma and dbeta already computed (as the two kernel
 * calls above give them): saves the sums over dy. */
void zn_batchnorm_backward_data(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *dy, const float *dgamma, const float *dbeta,
                                float *dx);
/* sum[C] = x [N, C, HW] summed over N and HW: the gradient of a conv or linear bias (HW = 1 for
 * [N, C]) and of batch-norm beta. */
void zn_channel_sum(int n, int c, int hw, const float *x, float *sum);

/* The training batch norm in pieces, for the fused z-tower (k_ztower.c), which runs a batch in
 * slices and must give the bits of the kernels above. A channel's sums: x, x^2, dy, dy*x. */
/* Adds x's rows [n, c, hw] (and dy's, when not NULL) to sums[c], row after row as the kernels
 * above add them: slices of a batch added in order give one call's bits. */
void zn_bn_sums_add(const zn_bn_dims *d, const float *x, const float *dy, zn_bn_sums *sums);
/* Channel ch's sums of x and x^2 over N and HW, as the training forward takes them: folded from
 * planes (x's plane sums, zn_plane_sums) when not NULL, else summed over x; the same bits. */
zn_bn_sums zn_bn_channel_sums(const zn_bn_dims *d, const float *x, const zn_bn_sums *planes,
                              int ch);
/* A channel's batch statistics and forward affine y = a*x + b. */
typedef struct {
    double mean, invstd;
    float a, b;
} zn_bn_train;
/* Training batch norm with statistics over every rank's batch (--sync-bn; k_norm_sync.c), sync
 * summing an array over the ranks: what zn_batchnorm_forward_train computes (without saved
 * statistics: the backward recomputes them), and what zn_batchnorm_backward (dgamma_in NULL) or zn_batchnorm_backward_data
 * (dgamma_in, dbeta_in: this rank's parameter gradients) compute; the parameter gradients stay
 * this rank's own (the gradient sum adds them up). */
typedef void (*zn_bn_sync_fn)(double *v, int n);
void zn_bn_forward_train_synced(const zn_bn_dims *d, zn_bn_sync_fn sync, const float *x, const float *gamma,
                                const float *beta, float *running_mean, float *running_var, float *y);
void zn_bn_backward_synced(const zn_bn_dims *d, zn_bn_sync_fn sync, const float *x, const float *gamma,
                           const float *dy, const float *dgamma_in, const float *dbeta_in, float *dx,
                           float *dgamma, float *dbeta);
/* From a channel's sums over the whole batch (d->n is the batch); updates the running
 * statistics as zn_batchnorm_forward_train does (not when d->momentum is 1). */
zn_bn_train zn_bn_train_stats(const zn_bn_dims *d, const zn_bn_sums *t, float gamma, float beta,
                              float *running_mean, float *running_var);
/* The inference forward's affine y = a*x + b of a channel, from its running statistics. */
void zn_bn_infer_affine(float eps, float gamma, float beta, float running_mean,
                        float running_var, float *a, float *b);
/* The backward's dx = k[0] * x + k[1] + k[2] * dy of a channel, from dgamma and dbeta as
 * zn_batchnorm_backward_data takes them. */
void zn_bn_backward_affine(const zn_bn_dims *d, const zn_bn_train *s, float gamma, float dgamma,
                           float dbeta, float k[3]);
/* y = a[c] * x + b[c] (+ k[c] * g when g is not NULL) on every channel; y may be x or g. */
void zn_bn_affine(const zn_bn_dims *d, const float *a, const float *b, const float *x,
                  const float *g, const float *k, float *y);

/* ---- batch norm + relu, fused (k_norm_relu.c) ----------------------------------------------
 * The forward y = max(a*x + b, 0) with batch norm's a, b (training: batch statistics, running
 * ones updated as zn_batchnorm_forward_train does, planes as there; inference: running ones). The training
 * backward without y: coef [7*C] = dgamma, dbeta, kx, kb, ka, a, b (dy counted where
 * a*x + b > 0), then dx = kx*x + kb + ka*dy*(a*x + b > 0), which may overwrite x or dy:
 * zn_bn_relu_backward writes coef and, when dx is not NULL, each channel's dx right after the
 * channel's coefficients, while its x and dy are still in cache (the same bits as writing coef,
 * then calling zn_bn_relu_backward_data). */
void zn_bn_relu_forward(const zn_bn_dims *d, bool training, const float *x, const float *gamma,
                        const float *beta, float *running_mean, float *running_var, float *y,
                        const zn_bn_sums *planes);
void zn_bn_relu_backward(const zn_bn_dims *d, const float *x, const float *gamma,
                         const float *beta, const float *dy, float *coef, float *dx);
void zn_bn_relu_backward_data(const zn_bn_dims *d, const float *x, const float *dy,
                              const float *coef, float *dx);

/* ---- elementwise (k_eltwise.c); outputs may alias inputs --------------------------------- */
/* y = f(x) for op, an element-wise op of graph/op_list.h (an EW row: relu, ...), with the math of
 * backends/eltwise_math.h; dx = f'(v) dy for its backward op (op's E_BWD), v being x or y as the
 * row says. */
void zn_eltwise_forward(zn_op op, size_t n, const float *x, float *y);
void zn_eltwise_backward(zn_op op, size_t n, const float *v, const float *dy, float *dx);
void zn_add_forward(size_t n, const float *a, const float *b, float *y); /* y = a + b */
void zn_accumulate(size_t n, const float *a, float *y);                  /* y += a */
void zn_scale_forward(size_t n, float s, const float *x, float *y);      /* y = s * x */
static inline void zn_scale_backward(size_t n, float s, const float *dy, float *dx)
{
    zn_scale_forward(n, s, dy, dx); /* linear and self-adjoint */
}
void zn_fill(size_t n, float v, float *y);
void zn_zero(size_t n, float *y);
/* True when x holds a NaN or an infinity; *where (if not NULL) gets the first such index. */
bool zn_find_nonfinite(const float *x, size_t n, size_t *where);

/* ---- dropout (k_dropout.c) and products of two tensors (k_mul.c); outputs may alias ------
 * Dropout: y[i] = x[i] / (1 - p) where mask m keeps element i, else 0, over the n elements of
 * the batched tensor (its backward is the same call on dy). Products: a is [rows, inner] and b
 * one value per row, y[r, i] = a[r, i] * b[r]; with inner 1 they are two tensors of one shape.
 * zn_mul_sum is the gradient of such a b: y[r] = sum over i of a[r, i] * b[r, i] (double sums). */
void zn_dropout_forward(const zn_dropout_mask *m, size_t n, const float *x, float *y);
void zn_mul_forward(size_t rows, size_t inner, const float *a, const float *b, float *y);
void zn_mul_sum(size_t rows, size_t inner, const float *a, const float *b, float *y);

/* ---- windows over H×W planes (k_pool.c) --------------------------------------------------
 * x: [N, C, H, W]. Pooling uses floor mode: out = (in + 2*pad - kernel) / stride + 1. Max
 * routes the gradient to the first maximum of each window (row-major order), recomputed from x.
 * Average divides by the number of in-image elements of the window (count_include_pad =
 * false). A window lying wholly in the padding yields 0 and gets no gradient. Backwards read x
 * only for MAX: with AVG it may be NULL (for stitch, r may be NULL). */

int zn_pool_out(int in, int kernel, int stride, int pad); /* output extent of one axis */
/* y: [N, C, OH, OW]. */
void zn_pool_forward(zn_window_reduce r, const zn_pool_dims *d, const float *x, float *y);
void zn_pool_backward(zn_window_reduce r, const zn_pool_dims *d, const float *x,
                      const float *dy, float *dx);
/* Global pooling [N, C, H, W] -> [N, C]. */
void zn_global_pool_forward(zn_window_reduce r, int n, int c, int h, int w, const float *x,
                            float *y);
void zn_global_pool_backward(zn_window_reduce r, int n, int c, int h, int w, const float *x,
                             const float *dy, float *dx);

/* Resample [N, C, H, W] -> [N, C, OH, OW], each axis on its own: a larger input is reduced by
 * r over windows of in/out (which must divide), a smaller one is repeated (nearest) out/in
 * times (which must divide), an equal one copied. */
void zn_resample_forward(zn_window_reduce r, int n, int c, int h, int w, int oh, int ow,
                         const float *x, float *y);
void zn_resample_backward(zn_window_reduce r, int n, int c, int h, int w, int oh, int ow,
                          const float *x, const float *dy, float *dx);

/* Stitch (spec/zconv.md): inputs R_k [N, C_k, H_k, W_k], k < count, each resampled as above to
 * S_h × S_w and written as Z[n, h, off_k + c, w], Z: [N, S_h, sum C_k, S_w]. The forward reads
 * each input once and writes Z once; the backward scatters dZ straight into every dR_k. */

void zn_stitch_forward(const zn_stitch_dims *d, const float *const *r, float *z);
void zn_stitch_backward(const zn_stitch_dims *d, const float *const *r, const float *dz,
                        float *const *dr);
/* The gradient of input k alone: dr_k [N, C_k, H_k, W_k] from its own columns of dz. */
void zn_stitch_backward_one(const zn_stitch_dims *d, int k, const float *r_k, const float *dz,
                            float *dr_k);

/* ---- layout (k_layout.c) -----------------------------------------------------------------
 * Concat of `count` tensors along one axis, seen as [outer, len_k, inner]: for N-batched
 * tensors of per-example shape dims[rank] joined along per-example `axis`, outer = N *
 * dims[0..axis) and inner = dims(axis..rank) (zn_concat_split of backends/node_args.h computes them). The output is
 * [outer, sum len_k, inner]. */
void zn_concat_forward(size_t outer, size_t inner, int count, const int *len,
                       const float *const *x, float *y);
void zn_concat_backward(size_t outer, size_t inner, int count, const int *len, const float *dy,
                        float *const *dx);
/* One part of the backward: y [outer, len, inner] = x [outer, offset .. offset + len, inner] of
 * x [outer, total, inner]. */
void zn_slice_forward(size_t outer, size_t inner, size_t total, size_t offset, size_t len,
                      const float *x, float *y);

/* Permutes per-example axes (rank <= 4, the batch axis stays first): output axis i takes input
 * axis perm[i]; x has per-example shape dims[rank], y has dims[perm[i]]. The backward applies
 * the inverse permutation to dy. */
void zn_transpose_forward(int n, int rank, const int *dims, const int *perm, const float *x,
                          float *y);
void zn_transpose_backward(int n, int rank, const int *dims, const int *perm, const float *dy,
                           float *dx);

/* ---- softmax cross-entropy (k_loss.c) ----------------------------------------------------
 * logits: [N, K]; labels: [N] class indices. Per example loss = -sum_j t_j log softmax_j with
 * target t = (1 - smoothing) * onehot(label) + smoothing / K; summed or averaged over N. */

/* *loss: the (unweighted) loss. A label outside [0, K) gives ZN_KSTATUS_BAD_LABEL with its row
 * in *bad_row (if not NULL) and leaves *loss unset. */
zn_kstatus zn_xent_forward(const zn_xent_dims *d, const float *logits, const int32_t *labels,
                           float *loss, int *bad_row);
/* dlogits = weight * (1/N if mean) * (softmax - target); same label check. */
zn_kstatus zn_xent_backward(const zn_xent_dims *d, const float *logits, const int32_t *labels,
                            float weight, float *dlogits, int *bad_row);
/* pred[i] = index of the first maximum of row i. */
void zn_argmax_rows(int n, int k, const float *logits, int32_t *pred);

/* ---- optimizer steps over a flat parameter array (k_optim.c), PyTorch semantics ---------- */
/* g' = g + wd*w; v = mu*v + g'; w -= lr * (nesterov ? g' + mu*v : v). v starts at zero. */
void zn_sgd_step(const zn_sgd *o, size_t n, float *w, const float *g, float *v);

/* step: 1 for the first step (bias correction); m, v start at zero. */
void zn_adam_step(const zn_adam *o, long step, size_t n, float *w, const float *g, float *m,
                  float *v);

#endif
