/* conv_direct.c: 3x3 stride-1 "same" (padding = dilation) convolution of one image without a
 * column matrix, group by group. The image is copied once into a zero-bordered buffer; each tile
 * of up to 3 output channels x 32 output pixels (4 AVX vectors, one to four rows) keeps its 12
 * sums in registers over its group's (c, tap), so every input vector loaded feeds 3 FMAs and no
 * im2col copy or GEMM packing is paid. The weight gradient tiles the other way: up to 4 output
 * channels x one kernel row (3 taps) of one input channel, 12 sums kept in registers over all
 * pixels. */
#include "backends/cpu/conv_direct.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ZN_DIRECT_X86 1
#endif

#define TILE_VECS 4           /* AVX vectors of output pixels per tile */
#define TILE_PIXELS (8 * TILE_VECS)
#define WIDE_VECS 8           /* a lone output channel's tile: 8 sums hide the FMA latency */
#define TILE_CHANNELS 3       /* output channels per tile: 3 x 4 sums + 2 operands fit 16 ymm */
#define GRAD_CHANNELS 4       /* weight gradient: 4 channels x 3 taps sums + 3 inputs fit 16 ymm */
#define GRAD_PIXELS 256       /* pixels a weight-gradient tile sums over before its horizontal sums */

int zn_conv_direct_supported(int h, int w) {
#ifdef ZN_DIRECT_X86
  if (w % 8 != 0 || ((long)h * w) % TILE_PIXELS != 0) return 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  (void)h, (void)w;
  return 0;
#endif
}

size_t zn_conv_direct_scratch_floats(int c, int h, int w, int dil) {
  return (size_t)c * (h + 2 * dil) * (w + 2 * dil);
}

#ifdef ZN_DIRECT_X86
/* xp [c, h + 2d, w + 2d] = x [c, h, w] with a zero border d pixels wide. Rows are short (8
 * floats in the z-tower), so each plane is zeroed in one call and its rows copied by vectors
 * (w % 8 == 0): per-row memset/memcpy calls took ~half of the 8->64 grouped conv's bwd_data. */
__attribute__((target("avx2"))) static void pad_image(int c, int h, int w, int d, const float *x,
                                                      float *xp) {
  const int wp = w + 2 * d;
  const size_t plane = (size_t)(h + 2 * d) * wp;
  for (int ci = 0; ci < c; ci++, x += (size_t)h * w) {
    float *xc = xp + ci * plane;
    memset(xc, 0, sizeof(float) * plane);
    for (int r = 0; r < h; r++)
      for (int q = 0; q < w; q += 8)
        _mm256_storeu_ps(xc + (size_t)(r + d) * wp + d + q, _mm256_loadu_ps(x + r * w + q));
  }
}

/* Output channels [o0, o0 + oc) x pixels [p0, p0 + 8 vecs) of one image and group: c is the
 * group's input channels, xp, wt, b (or NULL) and y point at the group's first channel; oc and
 * vecs are constants after inlining, so acc stays in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void tile(
    int oc, int vecs, int c, int h, int w, int d, const float *xp, const float *wt, const float *b,
    float *y, int o0, int p0) {
  const int wp = w + 2 * d;
  const size_t plane = (size_t)(h + 2 * d) * wp, ohw = (size_t)h * w, wrow = (size_t)c * 9;
  int off[WIDE_VECS]; /* padded-buffer offset of each vector's first pixel at tap (0, 0) */
  for (int v = 0; v < vecs; v++) {
    int p = p0 + 8 * v;
    off[v] = (p / w) * wp + p % w;
  }
  __m256 acc[TILE_CHANNELS][WIDE_VECS];
  for (int k = 0; k < oc; k++)
    for (int v = 0; v < vecs; v++) acc[k][v] = _mm256_setzero_ps();
  const float *wo = wt + (size_t)o0 * wrow;
  for (int ci = 0; ci < c; ci++) {
    const float *xc = xp + ci * plane, *wc = wo + ci * 9;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) {
        const float *xt = xc + (i * wp + j) * d;
        __m256 xv[WIDE_VECS];
#pragma GCC unroll 8
        for (int v = 0; v < vecs; v++) xv[v] = _mm256_loadu_ps(xt + off[v]);
#pragma GCC unroll 3 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          __m256 wv = _mm256_broadcast_ss(wc + k * wrow + i * 3 + j);
#pragma GCC unroll 8
          for (int v = 0; v < vecs; v++) acc[k][v] = _mm256_fmadd_ps(wv, xv[v], acc[k][v]);
        }
      }
  }
  for (int k = 0; k < oc; k++) {
    __m256 bias = _mm256_set1_ps(b ? b[o0 + k] : 0.0f);
    float *yo = y + (o0 + k) * ohw + p0;
    for (int v = 0; v < vecs; v++) _mm256_storeu_ps(yo + 8 * v, _mm256_add_ps(acc[k][v], bias));
  }
}

/* One group: c input channels -> o output channels, pointers as for tile. */
__attribute__((target("avx2,fma"))) static void tiles(int c, int o, int h, int w, int d,
                                                      const float *xp, const float *wt,
                                                      const float *b, float *y) {
  const int ohw = h * w;
  int o0 = 0;
  for (; o0 + TILE_CHANNELS <= o; o0 += TILE_CHANNELS)
    for (int p0 = 0; p0 < ohw; p0 += TILE_PIXELS)
      tile(TILE_CHANNELS, TILE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
  if (o0 == o) return;
  if (o - o0 == 1 && ohw % (8 * WIDE_VECS) == 0) { /* e.g. backward-data of 1 channel per group */
    for (int p0 = 0; p0 < ohw; p0 += 8 * WIDE_VECS)
      tile(1, WIDE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
    return;
  }
  for (int p0 = 0; p0 < ohw; p0 += TILE_PIXELS) {
    if (o - o0 == 2)
      tile(2, TILE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
    else
      tile(1, TILE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
  }
}

/* The sums of a, b, c, d's eight lanes, in that order; one fixed association. */
__attribute__((target("avx2,fma"))) static inline __m128 sum4(__m256 a, __m256 b, __m256 c,
                                                               __m256 d) {
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* dw [o0 .. o0 + oc, ci, ky, 0..2] += sum over pixels of dy [o, p] * xp [ci, p + d (ky, kx)]
 * within one group: xp, dy and dw point at the group's first channel, images are s->c and s->o
 * channels apart; oc is a constant after inlining, so acc stays in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void grad_tile(
    int oc, const zn_direct_shape *s, int images, const float *xp, const float *dy, float *dw,
    int o0, int ci, int ky) {
  const int h = s->h, w = s->w, d = s->dil, wp = w + 2 * d, cg = s->c / s->groups;
  const size_t ohw = (size_t)h * w, plane = (size_t)(h + 2 * d) * wp;
  __m256 acc[GRAD_CHANNELS][3];
  for (int k = 0; k < oc; k++)
    for (int kx = 0; kx < 3; kx++) acc[k][kx] = _mm256_setzero_ps();
  for (int im = 0; im < images; im++) {
    const float *xr = xp + ((size_t)im * s->c + ci) * plane + (size_t)ky * d * wp;
    const float *dyo = dy + ((size_t)im * s->o + o0) * ohw;
    for (int r = 0; r < h; r++, xr += wp, dyo += w)
      for (int col = 0; col < w; col += 8) {
        __m256 xv[3];
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) xv[kx] = _mm256_loadu_ps(xr + col + kx * d);
#pragma GCC unroll 4 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          __m256 dyv = _mm256_loadu_ps(dyo + k * ohw + col);
#pragma GCC unroll 3
          for (int kx = 0; kx < 3; kx++) acc[k][kx] = _mm256_fmadd_ps(dyv, xv[kx], acc[k][kx]);
        }
      }
  }
  const __m256 zero = _mm256_setzero_ps();
  for (int k = 0; k < oc; k++) {
    float sums[4];
    _mm_storeu_ps(sums, sum4(acc[k][0], acc[k][1], acc[k][2], zero));
    float *dwk = dw + ((size_t)(o0 + k) * cg + ci) * 9 + ky * 3;
    for (int kx = 0; kx < 3; kx++) dwk[kx] += sums[kx];
  }
}

/* One group, pointers as for grad_tile. */
__attribute__((target("avx2,fma"))) static void grad_tiles(const zn_direct_shape *s, int images,
                                                           const float *xp, const float *dy,
                                                           float *dw) {
  const int c = s->c / s->groups, o = s->o / s->groups;
  int o0 = 0;
  for (; o0 + GRAD_CHANNELS <= o; o0 += GRAD_CHANNELS)
    for (int ci = 0; ci < c; ci++)
      for (int ky = 0; ky < 3; ky++) grad_tile(GRAD_CHANNELS, s, images, xp, dy, dw, o0, ci, ky);
  if (o0 == o) return;
  for (int ci = 0; ci < c; ci++)
    for (int ky = 0; ky < 3; ky++) switch (o - o0) {
        case 3: grad_tile(3, s, images, xp, dy, dw, o0, ci, ky); break;
        case 2: grad_tile(2, s, images, xp, dy, dw, o0, ci, ky); break;
        default: grad_tile(1, s, images, xp, dy, dw, o0, ci, ky);
      }
}
#endif

int zn_conv_direct_filter_batch(int h, int w) {
  return (GRAD_PIXELS + h * w - 1) / (h * w);
}

void zn_conv_direct_filter_images(const zn_direct_shape *s, int images, const float *x,
                                  const float *dy, float *dw, float *scratch) {
#ifdef ZN_DIRECT_X86
  const size_t image_in = (size_t)s->c * s->h * s->w,
               image_pad = zn_conv_direct_scratch_floats(s->c, s->h, s->w, s->dil);
  for (int im = 0; im < images; im++)
    pad_image(s->c, s->h, s->w, s->dil, x + im * image_in, scratch + im * image_pad);
  const int cg = s->c / s->groups, og = s->o / s->groups;
  const size_t plane = image_pad / s->c, ohw = (size_t)s->h * s->w;
  for (int g = 0; g < s->groups; g++)
    grad_tiles(s, images, scratch + g * cg * plane, dy + g * og * ohw,
               dw + (size_t)g * og * cg * 9);
#else
  (void)s, (void)images, (void)x, (void)dy, (void)dw, (void)scratch;
#endif
}

void zn_conv_direct_image(const zn_direct_shape *s, const float *x, const float *wt,
                          const float *b, float *y, float *scratch) {
#ifdef ZN_DIRECT_X86
  pad_image(s->c, s->h, s->w, s->dil, x, scratch);
  const int cg = s->c / s->groups, og = s->o / s->groups;
  const size_t plane = zn_conv_direct_scratch_floats(1, s->h, s->w, s->dil),
               ohw = (size_t)s->h * s->w;
  for (int g = 0; g < s->groups; g++)
    tiles(cg, og, s->h, s->w, s->dil, scratch + g * cg * plane, wt + (size_t)g * og * cg * 9,
          b ? b + g * og : NULL, y + g * og * ohw);
#else
  (void)s, (void)x, (void)wt, (void)b, (void)y, (void)scratch;
#endif
}
