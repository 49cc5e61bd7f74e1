/* conv_direct.h: the direct 3x3 convolution and its weight gradient, which conv.c uses instead
 * of im2col + GEMM on small channel counts (the rule is in conv.c): no column matrix. */
#ifndef ZN_CPU_CONV_DIRECT_H
#define ZN_CPU_CONV_DIRECT_H

#include <stddef.h>

/* 1 when this CPU runs the kernel (AVX2 + FMA) and an h x w plane fits its tiling: w a multiple
 * of 8 and h * w a multiple of 32 (32x32, 16x16, 8x8, ...). */
int zn_conv_direct_supported(int h, int w);

/* Scratch floats zn_conv_direct_image needs for c input channels of h x w. */
size_t zn_conv_direct_scratch_floats(int c, int h, int w);

/* y [o, h, w] = 3x3 stride-1 pad-1 conv of x [c, h, w] with w [o, c, 3, 3] (+ b[o] when not
 * NULL); overwrites y. Each output is summed over (c, tap) in one fixed order. */
void zn_conv_direct_image(int c, int o, int h, int w, const float *x, const float *wt,
                          const float *b, float *y, float *scratch);

/* Images zn_conv_direct_filter_images should take at once on h x w planes, so that each tile's
 * horizontal sums are paid over enough pixels (several images on planes of 8x8 and less). */
int zn_conv_direct_filter_batch(int h, int w);

/* dw [o, c, 3, 3] += the weight gradient of that conv over images consecutive images:
 * x [images, c, h, w], dy [images, o, h, w]; scratch holds images * zn_conv_direct_scratch_floats
 * (c, h, w). Each element adds one sum over the images, formed in one fixed order. */
void zn_conv_direct_filter_images(int images, int c, int o, int h, int w, const float *x,
                                  const float *dy, float *dw, float *scratch);

#endif
