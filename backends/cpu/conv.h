/* conv.h: the CPU backend's convolution and fully-connected kernels: pure functions over NCHW
 * float32 arrays (batch first, contiguous), no graph dependency. Convolutions lower to
 * im2col + OpenBLAS sgemm over chunks of images (or, for small-channel 3x3 convs, a direct
 * kernel), run on the worker pool of threads.h; the caller supplies scratch memory sized by
 * zn_conv2d_workspace_bytes. */
#ifndef ZN_CPU_CONV_H
#define ZN_CPU_CONV_H

#include <stddef.h>

#include "backends/kernel_args.h"

typedef struct zn_conv_params {
  int n, c, h, w;          /* input x: [n, c, h, w] */
  int o;                   /* output channels; weight: [o, c / groups, kh, kw] */
  int kh, kw;              /* kernel height, width */
  int stride_h, stride_w;  /* >= 1 */
  int pad_h, pad_w;        /* zero padding on each side, >= 0 */
  int dil_h, dil_w;        /* dilation, >= 1 (1 = dense kernel) */
  int groups;              /* >= 1, divides both c and o */
} zn_conv_params;

/* Output height and width: y is [n, o, zn_conv_out_h(p), zn_conv_out_w(p)]. */
static inline int zn_conv_out_h(const zn_conv_params *p)
{
    return (p->h + 2 * p->pad_h - p->dil_h * (p->kh - 1) - 1) / p->stride_h + 1;
}
static inline int zn_conv_out_w(const zn_conv_params *p)
{
    return (p->w + 2 * p->pad_w - p->dil_w * (p->kw - 1) - 1) / p->stride_w + 1;
}

/* Scratch bytes any of the three directions needs for p with the thread count configured by
 * zn_cpu_threads_init (query after it). The workspace needs no alignment or initial value. */
size_t zn_conv2d_workspace_bytes(const zn_conv_params *p);

/* y = conv(x, w) (+ b[o] broadcast when b is not NULL); overwrites y. planes, when not NULL,
 * [n * o]: the sums (x and x^2) of each of y's image planes, as zn_plane_sums gives them; taken
 * as each image is written (the batch-norm statistics epilogue), or after Winograd. */
void zn_conv2d_forward(const zn_conv_params *p, const float *x, const float *w, const float *b,
                       float *y, float *workspace, zn_bn_sums *planes);
/* dx = d(loss)/dx given dy = d(loss)/dy; overwrites dx [n, c, h, w]. */
void zn_conv2d_backward_data(const zn_conv_params *p, const float *dy, const float *w, float *dx,
                             float *workspace);
/* dw [o, c / groups, kh, kw] and, when db is not NULL, db [o]; both overwritten. With db,
 * planes (when not NULL) is scratch of n * o sums in which the bias gradient is summed while
 * each chunk of dy is in cache (the bias-gradient epilogue); without, db sums dy afterwards. */
void zn_conv2d_backward_filter(const zn_conv_params *p, const float *x, const float *dy,
                               float *dw, float *db, float *workspace, zn_bn_sums *planes);

/* Fully connected: x [n, in], w [out, in] (PyTorch's layout), b [out] or NULL, y [n, out]. */
void zn_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y);
/* dx [n, in] = dy [n, out] * w; overwrites dx. */
void zn_linear_backward_data(int n, int in, int out, const float *dy, const float *w, float *dx);
/* dw [out, in] = dy^T x and, when db is not NULL, db [out] = column sums of dy; overwritten. */
void zn_linear_backward_weight(int n, int in, int out, const float *x, const float *dy, float *dw,
                               float *db);

#endif
