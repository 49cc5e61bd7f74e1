/* k_extra.h: the CUDA backend's kernels that cuda_kernels.h does not cover (k_extra.cu): the
 * pooling backward and batch norm's backward (dx, dgamma), with the CPU kernels' semantics
 * (backends/cpu/kernels.h). Device tensors, host dims; each enqueues on `stream` and returns
 * cudaGetLastError(). Deterministic: a gather per output element, sums in a fixed order. */
#ifndef ZN_CUDA_K_EXTRA_H
#define ZN_CUDA_K_EXTRA_H

#include <cuda_runtime.h>

#include "backends/kernel_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dx [N, C, H, W] of max or average pooling (zn_pool_backward): max routes each dy to the
 * FIRST maximum of its window in row-major order (recomputed from x into argmax, device scratch
 * of one int per dy element); average spreads dy over the window's in-image elements. Each dx
 * element adds its windows' shares in row-major window order, as the CPU's scatter does. For AVG
 * x and argmax may be NULL. dx may be x itself. */
cudaError_t zn_cuda_pool_backward(zn_window_reduce r, const zn_pool_dims *d, const float *x,
                                  const float *dy, int *argmax, float *dx, cudaStream_t stream);

/* dx [N, C, HW] of the training forward (zn_batchnorm_backward_data, or zn_batchnorm_backward
 * when dgamma or dbeta is NULL: the sums over dy are then taken here), the batch statistics
 * recomputed from x. Device scratch: zn_cuda_channel_scratch_bytes(C) and coef, 3 * C floats.
 * dx may be x or dy itself. */
cudaError_t zn_cuda_batchnorm_backward_data(const zn_bn_dims *d, const float *x,
                                            const float *gamma, const float *dy,
                                            const float *dgamma, const float *dbeta,
                                            double *scratch, float *coef, float *dx,
                                            cudaStream_t stream);

/* dgamma [C] = sum over N and HW of dy * (x - mean) / sqrt(var + eps), the batch statistics
 * recomputed from x (biased variance), sums in double: zn_batchnorm_backward's dgamma alone.
 * scratch: zn_cuda_channel_scratch_bytes(C) of device memory. */
cudaError_t zn_cuda_batchnorm_dgamma(const zn_bn_dims *d, const float *x, const float *dy,
                                     double *scratch, float *dgamma, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
