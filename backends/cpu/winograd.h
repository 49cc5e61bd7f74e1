/* winograd.h: Winograd F(4x4, 3x3) convolutions for 3x3 stride-1 "same" (pad 1, undilated,
 * ungrouped) layers: forward, backward-data (the same transform with the transposed, flipped
 * filter) and backward-filter, each element-wise product batched into 36 OpenBLAS sgemms. conv.c
 * picks it per layer (zn_winograd_chosen); the results are deterministic but not bitwise equal to
 * the im2col or direct kernels' (docs/performance.md, "Winograd"). */
#ifndef ZN_CPU_WINOGRAD_H
#define ZN_CPU_WINOGRAD_H

#include <stddef.h>

#include "backends/cpu/conv.h"

/* Whether the kernels below can run p: 3x3, stride 1, padding 1, dilation 1, one group. */
int zn_winograd_supported(const zn_conv_params *p);
/* Whether conv.c should run p with Winograd: supported, enabled, and the measured rule says it
 * wins (docs/performance.md, "Winograd"). */
int zn_winograd_chosen(const zn_conv_params *p);
/* Turns Winograd on or off for zn_winograd_chosen, overriding ZNET_WINOGRAD (0 or 1; unset: on;
 * anything else is refused with a message and exit status 2 at the first conv). Call it before
 * workspace sizes are asked for: they depend on the choice. */
void zn_winograd_enable(int on);
/* Block budgets in bytes (0: the default) of the forward directions' per-thread buffers and of
 * backward-filter's shared one; for bench_conv's measurements and the tests' multi-block cases. */
void zn_winograd_set_block_bytes(size_t forward, size_t filter);

/* Scratch bytes any of the three directions needs for p (query after zn_cpu_threads_init). */
size_t zn_winograd_workspace_bytes(const zn_conv_params *p);

/* The three directions, with conv.h's contracts (backward-filter computes dw only, no bias). */
void zn_winograd_forward(const zn_conv_params *p, const float *x, const float *w, const float *b,
                         float *y, float *workspace);
void zn_winograd_backward_data(const zn_conv_params *p, const float *dy, const float *w,
                               float *dx, float *workspace);
void zn_winograd_backward_filter(const zn_conv_params *p, const float *x, const float *dy,
                                 float *dw, float *workspace);

#endif
