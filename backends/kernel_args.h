/* kernel_args.h: the argument structs every backend's kernels take, whatever the device: batch
 * norm's extents and per-channel sums, pooling windows, stitch geometry, the loss's extents and
 * status, the optimizers' settings. Plain C, no graph types: the CPU kernels (cpu/kernels.h) and
 * the CUDA launchers (cuda/cuda_kernels.h) include it, and neither backend includes the other. */
#ifndef ZN_KERNEL_ARGS_H
#define ZN_KERNEL_ARGS_H

#include <stdbool.h>

/* Batch norm: x, y [N, C, HW] (HW = H*W; 1 for [N, C]); statistics per channel over N and HW. */
typedef struct {
    int n, c, hw;   /* batch, channels, H*W */
    float eps;      /* added to the variance */
    float momentum; /* share of the OLD running value kept (0.9 in the spec; 1: not updated) */
} zn_bn_dims;

/* A channel's sums for batch norm in pieces (the fused z-tower): x, x^2, dy, dy*x. */
typedef struct {
    double x, xx, dy, dyx;
} zn_bn_sums;

/* Windows over H x W planes: how a window reduces (pooling, resample, stitch) and a pooling. */
typedef enum { ZN_WINDOW_MAX, ZN_WINDOW_AVG } zn_window_reduce;

typedef struct {
    int n, c, h, w;                   /* input [N, C, H, W] */
    int kernel[2], stride[2], pad[2]; /* {h, w} */
} zn_pool_dims;

/* A stitch of inputs R_k [N, C_k, H_k, W_k] into Z [N, S_h, sum C_k, S_w] (cpu/kernels.h). */
typedef struct {
    int n, count;             /* batch, number of inputs */
    const int *c, *h, *w;     /* [count] per-input C_k, H_k, W_k */
    int sh, sw;               /* target S_h, S_w */
    zn_window_reduce down;    /* how larger inputs are reduced */
} zn_stitch_dims;

/* Softmax cross-entropy over logits [N, K]: extents, label smoothing, mean or sum; a bad label's
 * status. */
typedef struct {
    int n, k;
    float smoothing;
    bool mean;      /* average over the batch instead of summing */
} zn_xent_dims;

typedef enum { ZN_KSTATUS_OK, ZN_KSTATUS_BAD_LABEL } zn_kstatus;

/* Optimizer steps over a flat parameter array, PyTorch semantics (cpu/kernels.h). */
typedef struct {
    float lr, momentum, weight_decay;
    bool nesterov;
} zn_sgd;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay; /* weight decay as L2 added to the gradient */
} zn_adam;

#endif
