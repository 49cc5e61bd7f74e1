/* conv_direct.c: 3x3 stride-1 pad-1 convolution of one image without a column matrix. The image
 * is copied once into a zero-bordered buffer; each tile of up to 3 output channels x 32 output
 * pixels (4 AVX vectors, one to four rows) keeps its 12 sums in registers over all (c, tap), so
 * every input vector loaded feeds 3 FMAs and no im2col copy or GEMM packing is paid. The weight
 * gradient tiles the other way: up to 4 output channels x one kernel row (3 taps) of one input
 * channel, 12 sums kept in registers over all pixels. */
#include "backends/cpu/conv_direct.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ZN_DIRECT_X86 1
#endif

#define TILE_VECS 4           /* AVX vectors of output pixels per tile */
#define TILE_PIXELS (8 * TILE_VECS)
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

size_t zn_conv_direct_scratch_floats(int c, int h, int w) {
  return (size_t)c * (h + 2) * (w + 2);
}

/* scratch [c, h + 2, w + 2] = x with a zero border one pixel wide. */
static void pad_image(int c, int h, int w, const float *x, float *xp) {
  const int wp = w + 2;
  for (int ci = 0; ci < c; ci++) {
    float *plane = xp + (size_t)ci * (h + 2) * wp;
    memset(plane, 0, sizeof(float) * wp);
    memset(plane + (size_t)(h + 1) * wp, 0, sizeof(float) * wp);
    for (int r = 0; r < h; r++) {
      float *row = plane + (size_t)(r + 1) * wp;
      row[0] = 0.0f;
      memcpy(row + 1, x + ((size_t)ci * h + r) * w, sizeof(float) * w);
      row[w + 1] = 0.0f;
    }
  }
}

#ifdef ZN_DIRECT_X86
/* Output channels [o0, o0 + oc) x pixels [p0, p0 + TILE_PIXELS) of one image; oc is a constant
 * after inlining, so acc stays in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void tile(
    int oc, int c, int h, int w, const float *xp, const float *wt, const float *b, float *y,
    int o0, int p0) {
  const int wp = w + 2;
  const size_t plane = (size_t)(h + 2) * wp, ohw = (size_t)h * w, wrow = (size_t)c * 9;
  int off[TILE_VECS]; /* padded-buffer offset of each vector's first pixel at tap (0, 0) */
  for (int v = 0; v < TILE_VECS; v++) {
    int p = p0 + 8 * v;
    off[v] = (p / w) * wp + p % w;
  }
  __m256 acc[TILE_CHANNELS][TILE_VECS];
  for (int k = 0; k < oc; k++)
    for (int v = 0; v < TILE_VECS; v++) acc[k][v] = _mm256_setzero_ps();
  const float *wo = wt + (size_t)o0 * wrow;
  for (int ci = 0; ci < c; ci++) {
    const float *xc = xp + ci * plane, *wc = wo + ci * 9;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) {
        const float *xt = xc + i * wp + j;
        __m256 xv[TILE_VECS];
#pragma GCC unroll 4
        for (int v = 0; v < TILE_VECS; v++) xv[v] = _mm256_loadu_ps(xt + off[v]);
#pragma GCC unroll 3 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          __m256 wv = _mm256_broadcast_ss(wc + k * wrow + i * 3 + j);
#pragma GCC unroll 4
          for (int v = 0; v < TILE_VECS; v++) acc[k][v] = _mm256_fmadd_ps(wv, xv[v], acc[k][v]);
        }
      }
  }
  for (int k = 0; k < oc; k++) {
    __m256 bias = _mm256_set1_ps(b ? b[o0 + k] : 0.0f);
    float *yo = y + (o0 + k) * ohw + p0;
    for (int v = 0; v < TILE_VECS; v++) _mm256_storeu_ps(yo + 8 * v, _mm256_add_ps(acc[k][v], bias));
  }
}

__attribute__((target("avx2,fma"))) static void tiles(int c, int o, int h, int w,
                                                      const float *xp, const float *wt,
                                                      const float *b, float *y) {
  const int ohw = h * w;
  int o0 = 0;
  for (; o0 + TILE_CHANNELS <= o; o0 += TILE_CHANNELS)
    for (int p0 = 0; p0 < ohw; p0 += TILE_PIXELS) tile(TILE_CHANNELS, c, h, w, xp, wt, b, y, o0, p0);
  for (int p0 = 0; p0 < ohw && o0 < o; p0 += TILE_PIXELS) {
    if (o - o0 == 2)
      tile(2, c, h, w, xp, wt, b, y, o0, p0);
    else
      tile(1, c, h, w, xp, wt, b, y, o0, p0);
  }
}

/* The sums of a, b, c, d's eight lanes, in that order; one fixed association. */
__attribute__((target("avx2,fma"))) static inline __m128 sum4(__m256 a, __m256 b, __m256 c,
                                                               __m256 d) {
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* dw [o0 .. o0 + oc, ci, ky, 0..2] += sum over pixels of dy [o, p] * xp [ci, p + (ky, kx)];
 * oc is a constant after inlining, so acc stays in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void grad_tile(
    int oc, int images, int c, int o, int h, int w, const float *xp, const float *dy, float *dw,
    int o0, int ci, int ky) {
  const int wp = w + 2;
  const size_t ohw = (size_t)h * w, plane = (size_t)(h + 2) * wp;
  __m256 acc[GRAD_CHANNELS][3];
  for (int k = 0; k < oc; k++)
    for (int kx = 0; kx < 3; kx++) acc[k][kx] = _mm256_setzero_ps();
  for (int im = 0; im < images; im++) {
    const float *xr = xp + ((size_t)im * c + ci) * plane + (size_t)ky * wp;
    const float *dyo = dy + ((size_t)im * o + o0) * ohw;
    for (int r = 0; r < h; r++, xr += wp, dyo += w)
      for (int col = 0; col < w; col += 8) {
        __m256 xv[3];
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) xv[kx] = _mm256_loadu_ps(xr + col + kx);
#pragma GCC unroll 4 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          __m256 d = _mm256_loadu_ps(dyo + k * ohw + col);
#pragma GCC unroll 3
          for (int kx = 0; kx < 3; kx++) acc[k][kx] = _mm256_fmadd_ps(d, xv[kx], acc[k][kx]);
        }
      }
  }
  const __m256 zero = _mm256_setzero_ps();
  for (int k = 0; k < oc; k++) {
    float sums[4];
    _mm_storeu_ps(sums, sum4(acc[k][0], acc[k][1], acc[k][2], zero));
    float *d = dw + ((size_t)(o0 + k) * c + ci) * 9 + ky * 3;
    for (int kx = 0; kx < 3; kx++) d[kx] += sums[kx];
  }
}

__attribute__((target("avx2,fma"))) static void grad_tiles(int images, int c, int o, int h,
                                                           int w, const float *xp,
                                                           const float *dy, float *dw) {
  int o0 = 0;
  for (; o0 + GRAD_CHANNELS <= o; o0 += GRAD_CHANNELS)
    for (int ci = 0; ci < c; ci++)
      for (int ky = 0; ky < 3; ky++)
        grad_tile(GRAD_CHANNELS, images, c, o, h, w, xp, dy, dw, o0, ci, ky);
  if (o0 == o) return;
  for (int ci = 0; ci < c; ci++)
    for (int ky = 0; ky < 3; ky++) switch (o - o0) {
        case 3: grad_tile(3, images, c, o, h, w, xp, dy, dw, o0, ci, ky); break;
        case 2: grad_tile(2, images, c, o, h, w, xp, dy, dw, o0, ci, ky); break;
        default: grad_tile(1, images, c, o, h, w, xp, dy, dw, o0, ci, ky);
      }
}
#endif

int zn_conv_direct_filter_batch(int h, int w) {
  return (GRAD_PIXELS + h * w - 1) / (h * w);
}

void zn_conv_direct_filter_images(int images, int c, int o, int h, int w, const float *x,
                                  const float *dy, float *dw, float *scratch) {
  const size_t image_in = (size_t)c * h * w, image_pad = zn_conv_direct_scratch_floats(c, h, w);
  for (int im = 0; im < images; im++)
    pad_image(c, h, w, x + im * image_in, scratch + im * image_pad);
#ifdef ZN_DIRECT_X86
  grad_tiles(images, c, o, h, w, scratch, dy, dw);
#else
  (void)o, (void)dy, (void)dw;
#endif
}

void zn_conv_direct_image(int c, int o, int h, int w, const float *x, const float *wt,
                          const float *b, float *y, float *scratch) {
  pad_image(c, h, w, x, scratch);
#ifdef ZN_DIRECT_X86
  tiles(c, o, h, w, scratch, wt, b, y);
#else
  (void)o, (void)wt, (void)b, (void)y;
#endif
}
