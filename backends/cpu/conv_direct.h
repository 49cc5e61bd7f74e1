/* conv_direct.h: the direct 3x3 convolution and its weight gradient, which conv.c uses instead
 * of im2col + GEMM on small channel counts per group (the rule is in conv.c): stride 1, "same"
 * zero padding (padding = dilation), any number of groups, no column matrix. */
#ifndef ZN_CPU_CONV_DIRECT_H
#define ZN_CPU_CONV_DIRECT_H

#include <stddef.h>

/* One conv the direct kernels run: x [c, h, w] -> y [o, h, w], weights [o, c / groups, 3, 3]
 * with dilation dil and padding dil on each side. */
typedef struct zn_direct_shape {
  int c, o, groups;  /* groups divides both c and o */
  int h, w;
  int dil;  /* >= 1 */
} zn_direct_shape;

/* 1 when the active kernel path (cpu_features.h: AVX2 or AVX-512, not portable) has kernels for
 * h x w planes: w a multiple of 8 and h * w a multiple of 32 (32x32, 16x16, 8x8, 224x8, ...).
 * The answer may change when the active path does; ask again per call. */
int zn_conv_direct_supported(int h, int w);

/* Scratch floats per image for c channels of h x w with a zero border dil wide. */
size_t zn_conv_direct_scratch_floats(int c, int h, int w, int dil);

/* y [o, h, w] = the conv of one image x [c, h, w] with wt (+ b[o] when not NULL); overwrites y.
 * scratch holds zn_conv_direct_scratch_floats(s->c, ...). Each output is summed over its
 * group's (c, tap) in one fixed order. */
void zn_conv_direct_image(const zn_direct_shape *s, const float *x, const float *wt,
                          const float *b, float *y, float *scratch);

/* Images zn_conv_direct_filter_images should take at once on h x w planes, so that each tile's
 * horizontal sums are paid over enough pixels (several images on planes of 8x8 and less). */
int zn_conv_direct_filter_batch(int h, int w);

/* dw [o, c / groups, 3, 3] += the weight gradient of that conv over images consecutive images:
 * x [images, c, h, w], dy [images, o, h, w]; scratch holds images * zn_conv_direct_scratch_floats
 * (s->c, ...). Each element adds one sum over the images, formed in one fixed order. */
void zn_conv_direct_filter_images(const zn_direct_shape *s, int images, const float *x,
                                  const float *dy, float *dw, float *scratch);

#endif
