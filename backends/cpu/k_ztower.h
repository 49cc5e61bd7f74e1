/* k_ztower.h: the fused z-tower on the CPU (op ztower, docs/passes.md): z [N, F] =
 * gmp(relu(batchnorm(conv(stitch(r), w)))) with training-mode batch statistics, its batch-norm
 * coefficients and its gradients, each computed slice by slice of the batch with the kernels of
 * the unfused ops, so no tensor of the tower exists for the whole batch and the results have the
 * unfused ops' bits (the weight gradient adds the slices' parts: float rounding). */
#ifndef ZN_CPU_K_ZTOWER_H
#define ZN_CPU_K_ZTOWER_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/cpu/conv.h"
#include "backends/cpu/kernels.h"

typedef struct {
    zn_stitch_dims st;   /* st.n: the batch */
    zn_conv_params conv; /* over the stitch, conv.n: examples per slice (zn_ztower_slice) */
    float eps, momentum; /* the batch norm's */
} zn_ztower_dims;

/* Examples per slice for a batch of n: each slice tensor stays near 4 MiB. */
int zn_ztower_slice(const zn_conv_params *conv, int n);
/* Scratch floats of a walk (the slice tensors, small per-filter and per-input arrays and one
 * float per example and filter: the kernels allocate nothing), beside the conv's workspace
 * (zn_conv2d_workspace_bytes of d->conv); the scratch must be 8-byte aligned. */
size_t zn_ztower_scratch_floats(const zn_ztower_dims *d);

/* z [N, F]. Training: batch statistics, running statistics updated (not with momentum 1);
 * otherwise the running statistics. */
void zn_ztower_forward(const zn_ztower_dims *d, bool training, const float *const *r,
                       const float *w, const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float *z, float *scratch, float *conv_ws);
/* coef [7, F] from dz [N, F]: the forward affine a, b; the backward affine kx, kb, ka of
 * dY = kx*Y + kb + ka*dBN; dgamma; dbeta. */
void zn_ztower_coef(const zn_ztower_dims *d, const float *const *r, const float *w,
                    const float *gamma, const float *beta, const float *dz, float *coef,
                    float *scratch, float *conv_ws);
/* The gradient of input k < st.count (dr_k [N, C_k, H_k, W_k]) or, for k = st.count, of the
 * weight (dw), from coef and dz. */
void zn_ztower_backward(const zn_ztower_dims *d, int k, const float *const *r, const float *w,
                        const float *coef, const float *dz, float *out, float *scratch,
                        float *conv_ws);

#endif
