/* cuda_kernels.h: the CUDA backend's own kernels (backends/cuda/k_*.cu): every op cuDNN and cuBLAS
 * do not cover, forward and backward, plus the loss, optimizer, cast and numerics helpers. Each
 * launcher mirrors the CPU kernel of the same name in backends/cpu/kernels.h (same layouts, same
 * formulas, same tie-breaking) and takes the same argument structs (backends/kernel_args.h): tensor pointers are DEVICE
 * pointers, every other pointer (dims arrays, lists of tensors) is a HOST pointer read by the
 * launcher before it returns. Each launcher enqueues on `stream` and returns cudaGetLastError()
 * (cudaSuccess for an empty tensor, with nothing launched; cudaErrorInvalidValue, with nothing
 * launched, for dims the CPU kernel would assert on). Every backward OVERWRITES its output
 * unless its name says accumulate. Reductions are deterministic: fixed per-thread slices and a
 * fixed tree, no float atomics, so a rerun gives the same bits. Callable from C. Build the .cu
 * files with nvcc --fmad=false: a*b + c then rounds twice, as on the CPU, and the elementwise,
 * optimizer and fold results match the CPU's bit for bit. */
#ifndef ZN_CUDA_KERNELS_H
#define ZN_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* inside the C linkage block: its argument structs are shared with the CPU kernels */
#include "backends/dropout_mask.h"
#include "backends/kernel_args.h"
#include "graph/op_list.h"

/* ---- elementwise (k_eltwise.cu); outputs may alias inputs -------------------------------- */
/* y = f(x) for op, an element-wise op of graph/op_list.h, with the math of
 * backends/eltwise_math.h; dx = f'(v) dy for its backward op (v: x or y, as the list's row says).
 * cudaErrorInvalidValue, with nothing launched, for any other op. */
cudaError_t zn_cuda_eltwise_forward(zn_op op, size_t n, const float *x, float *y,
                                    cudaStream_t stream);
cudaError_t zn_cuda_eltwise_backward(zn_op op, size_t n, const float *v, const float *dy,
                                     float *dx, cudaStream_t stream);
/* y = a + b */
cudaError_t zn_cuda_add_forward(size_t n, const float *a, const float *b, float *y,
                                cudaStream_t stream);
/* y += a */
cudaError_t zn_cuda_accumulate(size_t n, const float *a, float *y, cudaStream_t stream);
/* y = s * x (also the scale op's backward) */
cudaError_t zn_cuda_scale_forward(size_t n, float s, const float *x, float *y,
                                  cudaStream_t stream);
/* y[i] = v */
cudaError_t zn_cuda_fill(size_t n, float v, float *y, cudaStream_t stream);
/* y = x, n floats (flatten, reshape): cudaMemcpyAsync, whose status it returns; no overlap. */
cudaError_t zn_cuda_copy(size_t n, const float *x, float *y, cudaStream_t stream);

/* ---- dropout and products of two tensors (k_gate.cu); as k_dropout.c and k_mul.c -------- */
/* y = x / (1 - p) where m keeps the element, else 0 (also the backward, on dy). m is a HOST
 * pointer. */
cudaError_t zn_cuda_dropout_forward(const zn_dropout_mask *m, size_t n, const float *x, float *y,
                                    cudaStream_t stream);
/* y[r, i] = a[r, i] * b[r] over a [rows, inner] (inner 1: two tensors of one shape). */
cudaError_t zn_cuda_mul_forward(size_t rows, size_t inner, const float *a, const float *b,
                                float *y, cudaStream_t stream);
/* y[r] = sum over i of a[r, i] * b[r, i] (double sums; one warp per row). */
cudaError_t zn_cuda_mul_sum(size_t rows, size_t inner, const float *a, const float *b, float *y,
                            cudaStream_t stream);

/* ---- numerics and mixed precision (k_cast.cu) -------------------------------------------- */
/* *first = min(*first, i) over every i with x[i] NaN or infinite, so after the call it holds the
 * first such index, as zn_find_nonfinite gives it. Set *first to ~0 (cudaMemsetAsync with 0xFF)
 * before the first check; ~0 afterwards means every value was finite. Several checks may share
 * one word: it then holds the least index over all of them. */
cudaError_t zn_cuda_find_nonfinite(const float *x, size_t n, unsigned long long *first,
                                   cudaStream_t stream);

/* 16-bit floating formats, stored as raw 16-bit words (uint16_t on the C side). */
typedef enum { ZN_CUDA_F16, ZN_CUDA_BF16 } zn_cuda_half;
/* y[i] = (t) (s * x[i]), rounded to nearest even (overflow gives an infinity). */
cudaError_t zn_cuda_cast_to_half(zn_cuda_half t, size_t n, float s, const float *x, uint16_t *y,
                                 cudaStream_t stream);
/* y[i] = s * (float) x[i] (exact conversion, then one rounding of the product). */
cudaError_t zn_cuda_cast_from_half(zn_cuda_half t, size_t n, float s, const uint16_t *x,
                                   float *y, cudaStream_t stream);

/* ---- windows over H×W planes (k_pool.cu; max/avg pooling themselves are cuDNN's) ----------
 * Same rules as kernels.h: max takes the FIRST maximum of a window in row-major order (a later
 * equal value never wins; a NaN wins only as the window's first element); average sums in double
 * and divides by the window's element count. Backwards read x only for MAX (x may be NULL for
 * AVG). */

/* Global pooling x [N, C, H, W] -> y [N, C]; one warp per plane. */
cudaError_t zn_cuda_global_pool_forward(zn_window_reduce r, int n, int c, int h, int w,
                                        const float *x, float *y, cudaStream_t stream);
/* dx [N, C, H, W]: max puts dy at the plane's first maximum and 0 elsewhere; avg spreads
 * dy / (H*W) over the plane. */
cudaError_t zn_cuda_global_pool_backward(zn_window_reduce r, int n, int c, int h, int w,
                                         const float *x, const float *dy, float *dx,
                                         cudaStream_t stream);

/* Resample x [N, C, H, W] -> y [N, C, OH, OW] (by a factor or to a size: the caller gives OH,
 * OW), each axis on its own: a larger input reduced by r over windows of in/out (which must
 * divide), a smaller one repeated (nearest) out/in times (which must divide), an equal one copied.
 * Nearest mode is r = ZN_WINDOW_AVG, as zn_arg_window maps it. */
cudaError_t zn_cuda_resample_forward(zn_window_reduce r, int n, int c, int h, int w, int oh,
                                     int ow, const float *x, float *y, cudaStream_t stream);
/* dx [N, C, H, W] from dy [N, C, OH, OW]; an input repeated m times gets the sum of its m
 * gradients, added in row-major order of the outputs as the CPU does. */
cudaError_t zn_cuda_resample_backward(zn_window_reduce r, int n, int c, int h, int w, int oh,
                                      int ow, const float *x, const float *dy, float *dx,
                                      cudaStream_t stream);

/* Stitch: inputs R_k [N, C_k, H_k, W_k] each resampled (by d->down) to S_h × S_w and written as
 * Z[n, h, off_k + c, w], Z [N, S_h, sum C_k, S_w], off_k = C_0 + .. + C_{k-1}. d's arrays and r
 * (an array of d->count device pointers) are host memory; one launch per input. */
cudaError_t zn_cuda_stitch_forward(const zn_stitch_dims *d, const float *const *r, float *z,
                                   cudaStream_t stream);
/* dr_k [N, C_k, H_k, W_k] from input k's own columns of dz; r_k is read only for MAX (NULL
 * allowed for AVG). */
cudaError_t zn_cuda_stitch_backward_one(const zn_stitch_dims *d, int k, const float *r_k,
                                        const float *dz, float *dr_k, cudaStream_t stream);

/* ---- layout (k_layout.cu) ----------------------------------------------------------------
 * Concat along one axis seen as [outer, len_k, inner] (zn_concat_split, host side, computes outer
 * and inner); the output is [outer, sum len_k, inner]. len and x are host arrays of `count`
 * (x holding device pointers); one launch per input. */
cudaError_t zn_cuda_concat_forward(size_t outer, size_t inner, int count, const int *len,
                                   const float *const *x, float *y, cudaStream_t stream);
/* y [outer, len, inner] = x [outer, offset .. offset + len, inner] of x [outer, total, inner]:
 * the concat backward of one input (the SLICE op). */
cudaError_t zn_cuda_slice_forward(size_t outer, size_t inner, size_t total, size_t offset,
                                  size_t len, const float *x, float *y, cudaStream_t stream);

/* Permutes per-example axes (1 <= rank <= 4; the batch axis stays first): output axis i takes
 * input axis perm[i]; x has per-example shape dims[rank] (host array), y has dims[perm[i]]. */
cudaError_t zn_cuda_transpose_forward(int n, int rank, const int *dims, const int *perm,
                                      const float *x, float *y, cudaStream_t stream);
/* dx from dy by the inverse permutation; dims and perm are the FORWARD's. */
cudaError_t zn_cuda_transpose_backward(int n, int rank, const int *dims, const int *perm,
                                       const float *dy, float *dx, cudaStream_t stream);

/* ---- per-channel (k_channel.cu) ---------------------------------------------------------- */
/* The most batch slices a channel's sums are split into (k_channel_sums.cuh), and the device
 * scratch those sums need for C channels (also batch norm's backward, k_extra.h). */
#define ZN_CUDA_CHANNEL_SLICES 64
size_t zn_cuda_channel_scratch_bytes(int c);
/* sum[C] = x [N, C, HW] summed over N and HW, in double, rounded once (bias backward; HW = 1
 * for [N, C]); scratch: zn_cuda_channel_scratch_bytes(C) of device memory. */
cudaError_t zn_cuda_channel_sum(int n, int c, int hw, const float *x, double *scratch, float *sum,
                                cudaStream_t stream);
/* Batch norm folded into the layer before it (inference), as zn_bn_fold_weight/_bias:
 * a = gamma / sqrtf(running_var + eps) per channel; out [C, per] = w * a;
 * out_b [C] = beta + ((b ? b : 0) - running_mean) * a (b may be NULL). */
cudaError_t zn_cuda_bn_fold_weight(int c, size_t per, float eps, const float *w,
                                   const float *gamma, const float *running_var, float *out,
                                   cudaStream_t stream);
cudaError_t zn_cuda_bn_fold_bias(int c, float eps, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 const float *b, float *out, cudaStream_t stream);

/* ---- batch norm in pieces (k_ztower.cu) --------------------------------------------------
 * For the fused z-tower (cuda_ztower.c), which sees its batch one slice at a time: k_norm.c's
 * zn_bn_sums_add, zn_bn_train_stats, zn_bn_infer_affine, zn_bn_backward_affine and zn_bn_affine
 * over x [N, C, HW], every per-channel array (sums, coefficients, gamma, beta, the running
 * statistics) in device memory. */
/* sums[C] += the channel sums of x: x and x^2, and dy and dy*x when dy is not NULL (0 is added
 * to those otherwise). scratch: zn_cuda_channel_scratch_bytes(C). */
cudaError_t zn_cuda_bn_sums_add(const zn_bn_dims *d, const float *x, const float *dy,
                                double *scratch, zn_bn_sums *sums, cudaStream_t stream);
/* a, b [C] of the training forward y = a*x + b from the sums over the whole batch (d->n: the
 * batch); the running statistics updated as zn_bn_train_stats does, unless running_mean is NULL
 * or d->momentum is 1. */
cudaError_t zn_cuda_bn_train_stats(const zn_bn_dims *d, const zn_bn_sums *sums,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *a, float *b, cudaStream_t stream);
/* a, b [C] of the inference forward, from the running statistics. */
cudaError_t zn_cuda_bn_infer_affine(int c, float eps, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var,
                                    float *a, float *b, cudaStream_t stream);
/* k [5, C]: kx, kb, ka of the backward dx = kx*x + kb + ka*dy, then dgamma and dbeta, from the
 * whole batch's sums of x (stats) and of dy, dy*x (grads), as zn_ztower_coef computes them. */
cudaError_t zn_cuda_bn_backward_affine(const zn_bn_dims *d, const zn_bn_sums *stats,
                                       const zn_bn_sums *grads, const float *gamma, float *k,
                                       cudaStream_t stream);
/* y = a[c] * x + b[c] (+ k[c] * g when g is not NULL) on every channel; y may be x or g. */
cudaError_t zn_cuda_bn_affine(const zn_bn_dims *d, const float *a, const float *b, const float *x,
                              const float *g, const float *k, float *y, cudaStream_t stream);

/* ---- batch norm + relu, fused (k_norm_relu.cu), as zn_bn_relu_forward / _backward_coef /
 * _backward_data (backends/cpu/kernels.h) over x [N, C, HW], every per-channel array in device
 * memory. scratch: zn_cuda_channel_scratch_bytes(C) of device memory. */
/* y = max(a*x + b, 0): in training a, b from the batch statistics (the running ones updated
 * unless d->momentum is 1), otherwise from the running ones; ab: 2*C floats of device scratch. */
cudaError_t zn_cuda_bn_relu_forward(const zn_bn_dims *d, bool training, const float *x,
                                    const float *gamma, const float *beta, float *running_mean,
                                    float *running_var, double *scratch, float *ab, float *y,
                                    cudaStream_t stream);
/* coef [7, C] = dgamma, dbeta, kx, kb, ka, a, b of the training backward, dy counted where
 * a*x + b > 0 (the relu's mask, without y). */
cudaError_t zn_cuda_bn_relu_backward_coef(const zn_bn_dims *d, const float *x,
                                          const float *gamma, const float *beta, const float *dy,
                                          double *scratch, float *coef, cudaStream_t stream);
/* dx = kx*x + kb + ka*dy*(a*x + b > 0) with coef's rows; dx may be x or dy itself. */
cudaError_t zn_cuda_bn_relu_backward_data(const zn_bn_dims *d, const float *x, const float *dy,
                                          const float *coef, float *dx, cudaStream_t stream);

/* ---- softmax cross-entropy (k_loss.cu) ---------------------------------------------------
 * logits [N, K], labels int32 [N] (device); d is the CPU's struct (host). Per row, in double:
 * lse - (1 - eps) * z_label - (eps / K) * sum_j z_j; summed, or averaged when d->mean.
 * *bad_row (device int) is ALWAYS written: 0 when every label is in [0, K), else 1 + the first
 * row whose label is not (the host reads labels[row] to name it). */
/* *loss (device float) = the unweighted loss, written only when *bad_row is 0. One block. */
cudaError_t zn_cuda_xent_forward(const zn_xent_dims *d, const float *logits,
                                 const int32_t *labels, float *loss, int *bad_row,
                                 cudaStream_t stream);
/* dlogits = weight * (1/N if mean) * (softmax - target), target = (1 - eps) onehot + eps / K.
 * Rows with a bad label get 0 (the call fails through *bad_row). One warp per row. */
cudaError_t zn_cuda_xent_backward(const zn_xent_dims *d, const float *logits,
                                  const int32_t *labels, float weight, float *dlogits,
                                  int *bad_row, cudaStream_t stream);

/* ---- optimizer steps over a flat parameter array (k_optim.cu), as zn_sgd_step/zn_adam_step -
 * Called once per parameter, as the CPU backend's optimize does: w at the parameter's offset in
 * PARAMS, g at its gradient, the state (v; or m and v) at its offsets in the optimizer region. */
/* g' = g + wd*w; v = mu*v + g'; w -= lr * (nesterov ? g' + mu*v : v). */
cudaError_t zn_cuda_sgd_step(const zn_sgd *o, size_t n, float *w, const float *g, float *v,
                             cudaStream_t stream);
/* step >= 1; bias corrections computed on the host in double exactly as the CPU does. */
cudaError_t zn_cuda_adam_step(const zn_adam *o, long step, size_t n, float *w, const float *g,
                              float *m, float *v, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
