/* conv_direct.c: 3x3 stride-1 "same" (padding = dilation) convolution of one image without a
 * column matrix, group by group. The image is copied once into a zero-bordered buffer; each tile
 * of a few output channels x 4 vectors of output pixels (one to four rows) keeps its sums in
 * registers over its group's (c, tap), so every input vector loaded feeds several FMAs and no
 * im2col copy or GEMM packing is paid. The weight gradient tiles the other way: a few output
 * channels x one kernel row (3 taps) of one input channel, sums kept in registers over all
 * pixels. The tiles (conv_direct_kernels.h) are built once per instruction-set path; the active
 * path (cpu_features.h) picks them per call: AVX2 (8 floats, 16 registers), or AVX-512 (16
 * floats on planes whose rows hold whole 16-float vectors, else 8 floats with 32 registers). */
#include "backends/cpu/conv_direct.h"

#include <assert.h>
#include <string.h>

#include "backends/cpu/cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ZN_DIRECT_X86 1
#endif

/* Keeps v in a register from here on: without it GCC folds dy's load into each of the weight
 * gradient's three FMAs, 27 loads per 24 FMAs where 11 do, and the tile became load-bound
 * (perf annotate of grad_tiles_avx512). An empty asm: the same operations, the same bits. */
#define ZN_IN_REGISTER(v) __asm__("" : "+v"(v))

#define TILE_VECS 4     /* vectors of output pixels per forward tile */
#define WIDE_VECS 8     /* a lone output channel's tile: 8 sums hide the FMA latency */
#define GRAD_PIXELS 256 /* pixels a weight-gradient tile sums over before its horizontal sums */

/* One path's kernels over padded images (see conv_direct_kernels.h). */
typedef struct direct_kernels {
  int vec;  /* floats per vector: rows must hold whole vectors, tiles TILE_VECS of them */
  void (*image)(const zn_direct_shape *s, const float *xp, const float *wt, const float *b,
                float *y);
  void (*filter)(const zn_direct_shape *s, int images, const float *xp, const float *dy,
                 float *dw);
} direct_kernels;

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

/* The sums of a, b, c, d's eight lanes, in that order; one fixed association. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m128 sum4(__m256 a, __m256 b,
                                                                              __m256 c, __m256 d) {
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* 8 floats: AVX2 with its 16 registers (3 x 4 sums + 2 operands; 4 x 3 + 4 in the gradient). */
#define DK(name) name##_avx2
#define DK_TARGET __attribute__((target("avx2,fma")))
#define DK_VEC __m256
#define DK_W 8
#define DK_TILE_CH 3
#define DK_GRAD_CH 4
#define dk_load _mm256_loadu_ps
#define dk_store _mm256_storeu_ps
#define dk_zero _mm256_setzero_ps
#define dk_bcast _mm256_broadcast_ss
#define dk_fma _mm256_fmadd_ps
#define dk_add _mm256_add_ps
#define dk_half(a) (a)
#include "backends/cpu/conv_direct_kernels.h"

/* 8 floats with AVX-512VL's 32 registers: twice the channels per tile (6 x 4 + 5; 8 x 3 + 4). */
#undef DK
#undef DK_TARGET
#undef DK_TILE_CH
#undef DK_GRAD_CH
#define DK(name) name##_avx512_ymm
#define DK_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define DK_TILE_CH 6
#define DK_GRAD_CH 8
#include "backends/cpu/conv_direct_kernels.h"

/* 16 floats, 32 registers: the same tiles, each vector twice as wide. */
#undef DK
#undef DK_VEC
#undef DK_W
#undef dk_load
#undef dk_store
#undef dk_zero
#undef dk_bcast
#undef dk_fma
#undef dk_add
#undef dk_half
#define DK(name) name##_avx512
#define DK_VEC __m512
#define DK_W 16
#define dk_load _mm512_loadu_ps
#define dk_store _mm512_storeu_ps
#define dk_zero _mm512_setzero_ps
#define dk_bcast(p) _mm512_set1_ps(*(p))
#define dk_fma _mm512_fmadd_ps
#define dk_add _mm512_add_ps
#define dk_half(a)                                                                          \
  _mm256_add_ps(_mm512_castps512_ps256(a),                                                  \
                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)))
#include "backends/cpu/conv_direct_kernels.h"

static const direct_kernels AVX2 = {8, image_avx2, filter_avx2},
                            AVX512_YMM = {8, image_avx512_ymm, filter_avx512_ymm},
                            AVX512 = {16, image_avx512, filter_avx512};
#endif

/* The active path's kernels for h x w planes, or NULL where none fits (or on the portable path). */
static const direct_kernels *kernels_for(int h, int w) {
#ifdef ZN_DIRECT_X86
  static const direct_kernels *const by_path[ZN_CPU_PATH_COUNT][2] = {
      [ZN_CPU_AVX2] = {&AVX2}, [ZN_CPU_AVX512] = {&AVX512, &AVX512_YMM}};
  for (int i = 0; i < 2; i++) {
    const direct_kernels *k = by_path[zn_cpu_path_active()][i];
    if (k && w % k->vec == 0 && ((long)h * w) % (k->vec * TILE_VECS) == 0) return k;
  }
#else
  (void)h, (void)w;
#endif
  return NULL;
}

int zn_conv_direct_supported(int h, int w) {
  return kernels_for(h, w) != NULL;
}

int zn_conv_direct_filter_batch(int h, int w) {
  return (GRAD_PIXELS + h * w - 1) / (h * w);
}

void zn_conv_direct_filter_images(const zn_direct_shape *s, int images, const float *x,
                                  const float *dy, float *dw, float *scratch) {
#ifdef ZN_DIRECT_X86
  const direct_kernels *k = kernels_for(s->h, s->w);
  assert(k && "conv.c asks zn_conv_direct_supported first");
  const size_t image_in = (size_t)s->c * s->h * s->w,
               image_pad = zn_conv_direct_scratch_floats(s->c, s->h, s->w, s->dil);
  for (int im = 0; im < images; im++)
    pad_image(s->c, s->h, s->w, s->dil, x + im * image_in, scratch + im * image_pad);
  k->filter(s, images, scratch, dy, dw);
#else
  (void)s, (void)images, (void)x, (void)dy, (void)dw, (void)scratch;
#endif
}

void zn_conv_direct_image(const zn_direct_shape *s, const float *x, const float *wt,
                          const float *b, float *y, float *scratch) {
#ifdef ZN_DIRECT_X86
  const direct_kernels *k = kernels_for(s->h, s->w);
  assert(k && "conv.c asks zn_conv_direct_supported first");
  pad_image(s->c, s->h, s->w, s->dil, x, scratch);
  k->image(s, scratch, wt, b, y);
#else
  (void)s, (void)x, (void)wt, (void)b, (void)y, (void)scratch;
#endif
}
