/* winograd.c: Winograd F(4x4, 3x3) convolutions (Lavin & Gray 2015). Every 4x4 output tile comes
 * from a 6x6 input tile: transformed (B^T d B), multiplied element-wise with the transformed filter
 * (G g G^T), transformed back (A^T m A). Over a block of tiles the element-wise products are 36
 * sgemms, [out, in] x [in, tiles]. The transforms run on 8 tiles (or 8 filters) at a time, one
 * vector lane each; blocks keep a thread's transformed data near its cache. */
#include "backends/cpu/winograd.h"

#include <assert.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <cblas.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/threads.h"

typedef float v8 __attribute__((vector_size(32)));
#define LANES 8
#define PAIR 2 /* groups of LANES tiles transformed together per channel: see windows_at */
#define XI 36 /* entries of a transformed 6x6 tile: one sgemm each */

/* The F(4x4, 3x3) matrices: input B^T, filter G, output A^T, and for backward-filter A (dy tile to
 * its transformed gradient) and G^T (transformed filter gradient back to the 3x3 filter). */
static const float BT[6 * 6] = {4, 0, -5, 0,  1, 0, 0, -4, -4, 1,  1, 0, 0, 4, -4, -1, 1, 0,
                                0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0, 0, 4, 0,  -5, 0, 1};
static const float G[6 * 3] = {1 / 4.f,  0,        0,        -1 / 6.f, -1 / 6.f, -1 / 6.f,
                               -1 / 6.f, 1 / 6.f,  -1 / 6.f, 1 / 24.f, 1 / 12.f, 1 / 6.f,
                               1 / 24.f, -1 / 12.f, 1 / 6.f, 0,        0,        1};
static const float GT[3 * 6] = {1 / 4.f, -1 / 6.f, -1 / 6.f, 1 / 24.f, 1 / 24.f,  0,
                                0,       -1 / 6.f, 1 / 6.f,  1 / 12.f, -1 / 12.f, 0,
                                0,       -1 / 6.f, -1 / 6.f, 1 / 6.f,  1 / 6.f,   1};
static const float AT[4 * 6] = {1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0,
                                0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1};
static const float A[6 * 4] = {1, 0, 0, 0, 1, 1,  1, 1,  1, -1, 1, -1,
                               1, 2, 4, 8, 1, -2, 4, -8, 0, 0,  0, 1};

/* Per-thread transformed input and products of the forward directions: a block's size is chosen
 * so both stay within about this many bytes, up to a thread's share of the tiles. Larger blocks
 * make wider sgemms: 2 MiB (8 tiles at 512 channels) ran 512x512 on 4x4 at half the speed of
 * 8 or 32 MiB (docs/performance.md, "Winograd"). */
#define ZN_WINO_BLOCK_BYTES (16u << 20)
/* Backward-filter's block (shared by the threads): the sgemms' inner dimension. */
#define ZN_WINO_FILTER_BLOCK_BYTES (16u << 20)
static size_t block_bytes = ZN_WINO_BLOCK_BYTES, filter_block_bytes = ZN_WINO_FILTER_BLOCK_BYTES;

/* out[a * out_a + b * out_b] = sum over m of L[a][m] in[m * in_m + b * in_b], for the r x k
 * matrix L and b < cols: L times in, or (with the strides swapped) in times L^T. Inlined with a
 * constant table, the zero entries of L cost nothing. */
__attribute__((always_inline)) static inline void left_multiply(const float *L, int r, int k,
                                                                int cols, const v8 *in, int in_m,
                                                                int in_b, v8 *out, int out_a,
                                                                int out_b) {
#pragma GCC unroll 6
  for (int a = 0; a < r; a++)
#pragma GCC unroll 6
    for (int b = 0; b < cols; b++) {
      v8 s = {0};
#pragma GCC unroll 6
      for (int m = 0; m < k; m++)
        if (L[a * k + m] != 0.0f) s += L[a * k + m] * in[m * in_m + b * in_b];
      out[a * out_a + b * out_b] = s;
    }
}

/* out = L in L^T for the r x k matrix L; in is k x k, out r x r, every entry 8 lanes. */
__attribute__((always_inline)) static inline void sandwich(const float *L, int r, int k,
                                                           const v8 *in, v8 *out) {
  v8 tmp[6 * 6]; /* L in, r x k */
  left_multiply(L, r, k, k, in, k, 1, tmp, k, 1);
  left_multiply(L, r, k, r, tmp, 1, k, out, 1, r); /* out[b][a] = sum L[a][m] tmp[b][m] */
}

/* Tiles and blocks of one call. Tiles are numbered image by image, row by row. */
typedef struct wg_geom {
  int tw, tpi;        /* tiles per row, per image */
  int tiles;          /* n * tpi */
  int block;          /* tiles per block, a multiple of LANES */
  int ld;             /* row stride of the block buffers: block rounded up to PAIR * LANES
                       * floats, so that every row starts a 64-byte line (windows_at) */
  size_t v_xi, m_xi;  /* floats from one entry's matrix to the next in the block buffers
                       * v [XI, cin, ld] and m [XI, cout, ld]: SKEW more than the matrix */
  int cin, cout;      /* channels in and out of the conv being run (backward-data: o, c) */
  size_t u_xi;        /* floats from one entry's matrix to the next in u: SKEW more than one */
  size_t u_floats;    /* transformed filter (or its gradient) [XI, cout, cin] */
  size_t part_floats; /* a thread's (forward) or the call's (backward-filter) block buffers */
} wg_geom;

static int round_up(int v, int to) { return (v + to - 1) / to * to; }

/* One 64-byte line between the 36 matrices of the block buffers and of u. A transform writes (or
 * reads) the same row of all 36; at 128 channels and 256 tiles the matrices are 128 KiB apart (u's
 * are 1 MiB at 512 x 512), so those 36 lines fell in one set of the L1 and L2 caches (8 ways on
 * Zen 3) and evicted each other before the next group filled their other halves. */
#define SKEW 16

/* Tiles per block so that XI * (cin + cout) * block floats fit bytes, at least lo, at most hi. */
static int block_tiles(int cin, int cout, size_t bytes, int lo, int hi) {
  int b = (int)(bytes / (sizeof(float) * XI * (size_t)(cin + cout))) / LANES * LANES;
  return b < lo ? lo : b > hi ? hi : b;
}

static wg_geom geom_of(const zn_conv_params *p, int transposed, int filter) {
  wg_geom g;
  const int threads = filter ? 1 : zn_cpu_threads_count();
  g.tw = (p->w + 3) / 4;
  g.tpi = (p->h + 3) / 4 * g.tw;
  g.tiles = p->n * g.tpi;
  g.cin = transposed ? p->o : p->c;
  g.cout = transposed ? p->c : p->o;
  g.block = filter ? block_tiles(p->c, p->o, filter_block_bytes, LANES, 512)
                   : block_tiles(p->c, p->o, block_bytes, LANES, 256);
  int share = round_up((g.tiles + threads - 1) / threads, LANES);
  if (g.block > share) g.block = share;
  g.u_xi = (size_t)p->c * p->o + SKEW;
  g.u_floats = XI * g.u_xi;
  g.ld = round_up(g.block, PAIR * LANES);
  g.v_xi = (size_t)g.cin * g.ld + SKEW;
  g.m_xi = (size_t)g.cout * g.ld + SKEW;
  g.part_floats = XI * (g.v_xi + g.m_xi);
  return g;
}

/* Eight (or fewer) consecutive tiles, one per lane, each seen through a size x size window at
 * (4 * tile row + off, 4 * tile column + off) of its image's channel 0 in a tensor [n, channels,
 * h, w]: where the window's part inside the plane starts and which rows and columns it spans. */
typedef struct window {
  int count, size, w;
  size_t hw;
  int inside; /* every lane used and wholly inside its plane: nothing to zero */
  size_t at[LANES];
  int i0[LANES], i1[LANES], j0[LANES], j1[LANES];
} window;

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static window window_at(const zn_conv_params *p, const wg_geom *g, int channels, int first,
                        int count, int size, int off) {
  window W = {.count = count, .size = size, .w = p->w, .hw = (size_t)p->h * p->w,
              .inside = count == LANES};
  for (int l = 0; l < count; l++) {
    int tile = first + l, in_image = tile % g->tpi;
    int y = in_image / g->tw * 4 + off, x = in_image % g->tw * 4 + off;
    W.i0[l] = clamp(-y, 0, size), W.i1[l] = clamp(p->h - y, 0, size);
    W.j0[l] = clamp(-x, 0, size), W.j1[l] = clamp(p->w - x, 0, size);
    W.at[l] = (size_t)tile / g->tpi * channels * W.hw + (size_t)(y + W.i0[l]) * p->w + x + W.j0[l];
    W.inside &= W.i1[l] - W.i0[l] == size && W.j1[l] - W.j0[l] == size;
  }
  return W;
}

/* f[i][j][lane] = each lane's window on plane (a tensor's channel c: t + c * hw), zero outside
 * the plane and in unused lanes. */
static void gather(const float *plane, const window *W, float *f) {
  if (!W->inside) memset(f, 0, sizeof(float) * W->size * W->size * LANES);
  for (int l = 0; l < W->count; l++) {
    const float *s = plane + W->at[l];
    for (int i = W->i0[l]; i < W->i1[l]; i++, s += W->w)
      for (int j = W->j0[l]; j < W->j1[l]; j++) f[(i * W->size + j) * LANES + l] = s[j - W->j0[l]];
  }
}

/* Writes each lane's 4x4 tile f[i][j][lane] (+ add) into its window on plane, clipped to it. */
static void scatter(float *plane, const window *W, const float *f, float add) {
  for (int l = 0; l < W->count; l++) {
    float *s = plane + W->at[l];
    for (int i = W->i0[l]; i < W->i1[l]; i++, s += W->w)
      for (int j = W->j0[l]; j < W->j1[l]; j++) s[j - W->j0[l]] = f[(i * 4 + j) * LANES + l] + add;
  }
}

/* Where lane l's whole window (unclipped) starts, as an offset from its plane's start. */
__attribute__((always_inline)) static inline ptrdiff_t window_start(const window *W, int l) {
  return (ptrdiff_t)W->at[l] - (ptrdiff_t)W->i0[l] * W->w - W->j0[l];
}

/* 1 when W's eight lanes are two runs of four tiles side by side, each run on one row of tiles
 * (planes 16 and more wide): gather_runs' case. */
__attribute__((always_inline)) static inline int runs_of_four(const window *W) {
  if (W->count != LANES) return 0;
  for (int l = 0; l < LANES; l++)
    if (window_start(W, l) != window_start(W, l / 4 * 4) + (l % 4) * 4 || W->i0[l] != W->i0[0] ||
        W->i1[l] != W->i1[l / 4 * 4])
      return 0;
  return 1;
}

typedef float v4 __attribute__((vector_size(16)));
typedef int i4 __attribute__((vector_size(16)));

/* The 4x4 transpose: out[j][l] = in[l][j]. */
__attribute__((always_inline)) static inline void transpose4(const v4 in[4], v4 out[4]) {
  const v4 lo01 = __builtin_shufflevector(in[0], in[1], 0, 4, 1, 5);
  const v4 hi01 = __builtin_shufflevector(in[0], in[1], 2, 6, 3, 7);
  const v4 lo23 = __builtin_shufflevector(in[2], in[3], 0, 4, 1, 5);
  const v4 hi23 = __builtin_shufflevector(in[2], in[3], 2, 6, 3, 7);
  out[0] = __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5);
  out[1] = __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7);
  out[2] = __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5);
  out[3] = __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7);
}

/* Elements m0..m0+3 of row (an offset into plane), +0 where m is outside [lo, hi). */
__attribute__((always_inline)) static inline v4 load_clipped(const float *plane, ptrdiff_t row,
                                                             int m0, int lo, int hi) {
  v4 q = {0, 0, 0, 0};
  if (m0 >= lo && m0 + 4 <= hi) {
    memcpy(&q, plane + row + m0, sizeof q);
  } else {
    for (int k = 0; k < 4; k++)
      if (m0 + k >= lo && m0 + k < hi) q[k] = plane[row + m0 + k];
  }
  return q;
}

/* gather for runs_of_four lanes, straight into d[i * size + j]: per row, a 4x4 transpose of a
 * run's 16 floats gives columns 0-3, and (6x6 windows) columns 4-5 are 0-1 moved on by one
 * tile; the two runs' halves join in registers. The scalar gather's stores, read back at once
 * as vectors, stalled store forwarding. */
__attribute__((always_inline)) static inline void gather_runs(const float *plane, const window *W,
                                                              v8 *d) {
  const int size = W->size;
  for (int i = 0; i < size; i++) {
    v4 c[2][6]; /* zeroed only for rows outside the plane: `= {0}` here compiled to a
                 * `rep stos` per row, a sixth of input_avx2's cycles at width 64 */
    for (int run = 0; run < 2; run++) {
      const int first = 4 * run, last = first + 3;
      const int lo = W->j0[first], hi = 12 + W->j1[last]; /* the run's columns in the plane */
      if (i < W->i0[first] || i >= W->i1[first]) {
        for (int j = 0; j < size; j++) c[run][j] = (v4){0, 0, 0, 0};
        continue;
      }
      const ptrdiff_t row = window_start(W, first) + (ptrdiff_t)i * W->w;
      v4 q[4];
      for (int k = 0; k < 4; k++) q[k] = load_clipped(plane, row, 4 * k, lo, hi);
      transpose4(q, c[run]);
      if (size == 6) {
        const v4 next = {16 < hi ? plane[row + 16] : 0, 17 < hi ? plane[row + 17] : 0, 0, 0};
        c[run][4] = __builtin_shufflevector(c[run][0], next, 1, 2, 3, 4);
        c[run][5] = __builtin_shufflevector(c[run][1], next, 1, 2, 3, 5);
      }
    }
    for (int j = 0; j < size; j++)
      d[i * size + j] = __builtin_shufflevector(c[0][j], c[1][j], 0, 1, 2, 3, 4, 5, 6, 7);
  }
}

/* gather into d's layout, copied out as vectors: the portable path's gather where gather_runs'
 * case does not hold. */
__attribute__((always_inline)) static inline void gather_scalar(const float *plane,
                                                                const window *W, v8 *d, int size) {
  (void)size;
  float f[XI * LANES];
  gather(plane, W, f);
  memcpy(d, f, sizeof(float) * W->size * W->size * LANES);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The 4x4 transposes of four vectors' 128-bit halves: half h of u[j] = column j of the block
 * that halves h of in[0..3] make. */
__attribute__((always_inline)) static inline void transpose4_halves(const v8 in[4], v8 u[4]) {
  v8 t[4];
  for (int k = 0; k < 4; k += 2) {
    t[k] = __builtin_shufflevector(in[k], in[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[k + 1] = __builtin_shufflevector(in[k], in[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int h = 0; h < 2; h++) {
    u[2 * h] = __builtin_shufflevector(t[h], t[2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
    u[2 * h + 1] = __builtin_shufflevector(t[h], t[2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
  }
}

/* The 8x8 transpose: out[j][l] = in[l][j]. */
__attribute__((always_inline)) static inline void transpose8(const v8 in[8], v8 out[8]) {
  v8 u[8];
  transpose4_halves(in, u);
  transpose4_halves(in + 4, u + 4);
  for (int j = 0; j < 4; j++) {
    out[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    out[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

/* gather on the AVX2 path where gather_runs' case does not hold (planes under 16 wide: 8x8 and
 * 4x4 windows, whose scalar gather took 8 % of width-16 DavidNet's step in stores and
 * store-forwarding stalls): each lane's window row is one masked load of its columns inside the
 * plane (moved right past the columns clipped on the left; rows outside the plane stay 0), and
 * an 8x8 transpose per row turns the lanes' rows into d's columns. Moves only: the same bits. */
__attribute__((target("avx2"), always_inline)) static inline void gather_rows_avx2(
    const float *plane, const window *W, v8 *d, int size) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int i = 0; i < size; i++) {
    v8 r[LANES], c[LANES];
    for (int l = 0; l < LANES; l++) {
      r[l] = (v8){0};
      if (l >= W->count || i < W->i0[l] || i >= W->i1[l]) continue;
      const int j0 = W->j0[l];
      const float *s = plane + W->at[l] + (size_t)(i - W->i0[l]) * W->w;
      __m256 v = _mm256_maskload_ps(s, _mm256_cmpgt_epi32(_mm256_set1_epi32(W->j1[l] - j0), iota));
      if (j0) {
        const __m256i shifted = _mm256_sub_epi32(iota, _mm256_set1_epi32(j0));
        v = _mm256_and_ps(_mm256_permutevar8x32_ps(v, shifted),
                          _mm256_castsi256_ps(_mm256_cmpgt_epi32(shifted, _mm256_set1_epi32(-1))));
      }
      r[l] = (v8)v;
    }
    transpose8(r, c);
    for (int j = 0; j < size; j++) d[i * size + j] = c[j];
  }
}
#endif

/* d[i * size + j] = each lane's window on plane (gather's layout), by gather_runs where it can,
 * else by the path's other gather; size (W->size) a constant, so that the copies stay moves. */
#define WG_GATHER_TILES(path, attr, other)                                                    \
  attr __attribute__((always_inline)) static inline void gather_tiles_##path(                 \
      const float *plane, const window *W, v8 *d, int size) {                                \
    assert(W->size == size);                                                                  \
    if (runs_of_four(W))                                                                      \
      gather_runs(plane, W, d);                                                               \
    else                                                                                      \
      other(plane, W, d, size);                                                               \
  }

/* scatter for 4x4 windows of runs_of_four lanes wholly inside the plane: the transpose back. */
__attribute__((always_inline)) static inline void scatter_runs(float *plane, const window *W,
                                                               const v8 *y, float add) {
  for (int run = 0; run < 2; run++)
    for (int i = 0; i < 4; i++) {
      v4 c[4], q[4];
      for (int j = 0; j < 4; j++)
        c[j] = run ? __builtin_shufflevector(y[i * 4 + j], y[i * 4 + j], 4, 5, 6, 7)
                   : __builtin_shufflevector(y[i * 4 + j], y[i * 4 + j], 0, 1, 2, 3);
      transpose4(c, q);
      float *row = plane + window_start(W, 4 * run) + (ptrdiff_t)i * W->w;
      for (int k = 0; k < 4; k++) {
        const v4 v = q[k] + add;
        memcpy(row + 4 * k, &v, sizeof v);
      }
    }
}

/* scatter from y's layout: the portable path's where scatter_runs' case does not hold. */
__attribute__((always_inline)) static inline void scatter_scalar(float *plane, const window *W,
                                                                 const v8 *y, float add) {
  float f[16 * LANES];
  memcpy(f, y, sizeof f);
  scatter(plane, W, f, add);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* scatter on the AVX2 path where scatter_runs' case does not hold (planes under 16 wide, and
 * windows the plane's edge cuts): per row, a 4 x 8 transpose gives each lane its row of the
 * tile, stored (+ add) by one masked store clipped to the plane's columns. Output windows start
 * inside the plane (offset 0), so only their ends are clipped. The same sums: the same bits. */
__attribute__((target("avx2"), always_inline)) static inline void scatter_rows_avx2(
    float *plane, const window *W, const v8 *y, float add) {
  const __m128i iota = _mm_setr_epi32(0, 1, 2, 3);
  for (int i = 0; i < 4; i++) {
    v8 u[4];
    transpose4_halves(y + i * 4, u);
    for (int l = 0; l < W->count; l++) {
      assert(W->i0[l] == 0 && W->j0[l] == 0);
      if (i >= W->i1[l]) continue;
      const v4 v = (l < 4 ? __builtin_shufflevector(u[l], u[l], 0, 1, 2, 3)
                          : __builtin_shufflevector(u[l - 4], u[l - 4], 4, 5, 6, 7)) +
                   add;
      _mm_maskstore_ps(plane + W->at[l] + (size_t)i * W->w,
                       _mm_cmpgt_epi32(_mm_set1_epi32(W->j1[l]), iota), (__m128)v);
    }
  }
}
#endif

/* Writes each lane's 4x4 tile y[i * 4 + j] (+ add) into its window on plane, by scatter_runs
 * where it can, else by the path's other scatter. */
#define WG_SCATTER_TILES(path, attr, other)                                                   \
  attr __attribute__((always_inline)) static inline void scatter_tiles_##path(                \
      float *plane, const window *W, const v8 *y, float add) {                               \
    if (W->inside && runs_of_four(W))                                                         \
      scatter_runs(plane, W, y, add);                                                         \
    else                                                                                      \
      other(plane, W, y, add);                                                                \
  }

/* The 36 entries of a transformed tile (or group of filters), entry xi's first count (<= LANES)
 * lanes at t + xi * stride: one 32-byte move each when all lanes are used. Copied by memcpy, a v8
 * moved in two 16-byte halves (GCC's generic tuning), and these stores are where the transforms
 * wait: a block's buffers are megabytes, so every line they write misses the cache. A memcpy of
 * a variable count is a libc call (2 % of width 64's step in the filter transforms). */
typedef float v8u __attribute__((vector_size(32), aligned(4))); /* a v8 at any float */
__attribute__((always_inline)) static inline void put_entries(const v8 r[XI], float *t,
                                                              size_t stride, int count) {
  for (int xi = 0; xi < XI; xi++)
    if (count == LANES)
      *(v8u *)(t + xi * stride) = r[xi];
    else
      memcpy(t + xi * stride, &r[xi], sizeof(float) * count);
}
__attribute__((always_inline)) static inline void get_entries(const float *t, size_t stride,
                                                              int count, v8 r[XI]) {
  for (int xi = 0; xi < XI; xi++)
    if (count == LANES)
      r[xi] = *(const v8u *)(t + xi * stride);
    else
      memcpy(&r[xi], t + xi * stride, sizeof(float) * count);
}

/* The transforms, each compiled for the portable path (SSE2: a v8 is two registers) and for
 * AVX2 (one ymm; the AVX2 and AVX-512 paths) with the gathers and scatters around them (a
 * vector built in one form and read in the other would stall store forwarding), picked per call
 * by the active kernel path (cpu_features.h). The file is built with -ffp-contract=off: every
 * form rounds each product and sum apart, so all give the same bits. */
typedef struct wg_transforms {
  /* B^T d B of 6x6 windows, A d A^T of 4x4 windows: entry xi's 8 lanes to t + xi * stride */
  void (*input)(const float *plane, const window *W, float *t, size_t stride);
  void (*dy)(const float *plane, const window *W, float *t, size_t stride);
  /* A^T m A (+ add), entry xi's 8 lanes read from m + xi * stride */
  void (*output)(const float *m, size_t stride, float *plane, const window *W, float add);
  void (*filter)(const v8 *g, v8 *u);                                     /* G g G^T */
  void (*filter_back)(const v8 *u, v8 *g);                                /* G^T u G */
} wg_transforms;

#define WG_TRANSFORMS(path, attr, other_gather, other_scatter)                                 \
  WG_GATHER_TILES(path, attr, other_gather)                                                    \
  WG_SCATTER_TILES(path, attr, other_scatter)                                                  \
  attr static void input_##path(const float *plane, const window *W, float *t,                 \
                                size_t stride) {                                               \
    v8 d[XI], r[XI];                                                                           \
    gather_tiles_##path(plane, W, d, 6);                                                       \
    sandwich(BT, 6, 6, d, r);                                                                  \
    put_entries(r, t, stride, LANES);                                                          \
  }                                                                                            \
  attr static void dy_##path(const float *plane, const window *W, float *t,                    \
                             size_t stride) {                                                  \
    v8 d[16], r[XI];                                                                           \
    gather_tiles_##path(plane, W, d, 4);                                                       \
    sandwich(A, 6, 4, d, r);                                                                   \
    put_entries(r, t, stride, LANES);                                                          \
  }                                                                                            \
  attr static void output_##path(const float *m, size_t stride, float *plane,                  \
                                 const window *W, float add) {                                 \
    v8 in[XI], y[16];                                                                          \
    get_entries(m, stride, LANES, in);                                                         \
    sandwich(AT, 4, 6, in, y);                                                                 \
    scatter_tiles_##path(plane, W, y, add);                                                    \
  }                                                                                            \
  attr static void filter_##path(const v8 *g, v8 *u) { sandwich(G, 6, 3, g, u); }              \
  attr static void filter_back_##path(const v8 *u, v8 *g) { sandwich(GT, 3, 6, u, g); }        \
  static const wg_transforms transforms_##path = {input_##path, dy_##path, output_##path,      \
                                                  filter_##path, filter_back_##path};

WG_TRANSFORMS(portable, , gather_scalar, scatter_scalar)
#if defined(__x86_64__) && defined(__GNUC__)
WG_TRANSFORMS(avx2, __attribute__((target("avx2"))), gather_rows_avx2, scatter_rows_avx2)
#else
#define transforms_avx2 transforms_portable
#endif

static const wg_transforms *transforms(void) {
  return zn_cpu_path_active() == ZN_CPU_PORTABLE ? &transforms_portable : &transforms_avx2;
}

/* Transforms channel c's 6x6 input tiles (window W on x) into column col of v [XI, cin, ld]. */
static void input_tiles(const float *x, int c, const window *W, const wg_geom *g, float *v,
                        int col) {
  transforms()->input(x + c * W->hw, W, v + (size_t)c * g->ld + col, g->v_xi);
}

/* One call's arguments, shared read-only by the pool's threads. */
typedef struct wg_job {
  const zn_conv_params *p;
  wg_geom g;
  const float *src, *w, *b, *dy;
  float *dst;
  int transposed; /* the filter as backward-data sees it: [c, o] pairs, taps flipped */
  float *u;       /* [XI, cout, cin]: the transformed filter, or backward-filter's gradient */
  float *parts;   /* after u: per-thread block buffers (backward-filter: one, shared) */
  int first, count; /* backward-filter: the block being run */
} wg_job;

/* u = G g G^T for filters [begin, end) * LANES of the [cout, cin] pairs. */
static void filter_range(void *ctx, size_t begin, size_t end) {
  const wg_job *j = ctx;
  const int cin = j->g.cin, pairs = j->g.cin * j->g.cout;
  for (size_t grp = begin; grp < end; grp++) {
    int first = (int)grp * LANES, count = pairs - first < LANES ? pairs - first : LANES;
    v8 g[9] = {{0}}, t[XI];
    for (int l = 0; l < count; l++) {
      int out = (first + l) / cin, in = (first + l) % cin;
      for (int k = 0; k < 9; k++)
        g[k][l] = j->transposed ? j->w[((size_t)in * j->g.cout + out) * 9 + 8 - k]
                                : j->w[(size_t)(first + l) * 9 + k];
    }
    transforms()->filter(g, t);
    put_entries(t, j->u + first, j->g.u_xi, count);
  }
}

/* Windows of up to PAIR groups of LANES tiles, the first at tile `first`, tiles in all (> 0):
 * the transforms write (and read) a channel's PAIR groups together, so that each 64-byte line of
 * the [XI, channels, ld] buffers is filled or read whole while it is in cache. One group at a
 * time left half of each line to the next group, a whole channel sweep later (megabytes at width
 * 64), and every line came in twice. Returns the number of groups. */
static int windows_at(const zn_conv_params *p, const wg_geom *g, int channels, int first,
                      int tiles, int size, int off, window W[PAIR]) {
  int n = 0;
  for (; n < PAIR && n * LANES < tiles; n++) {
    int left = tiles - n * LANES;
    W[n] = window_at(p, g, channels, first + n * LANES, left < LANES ? left : LANES, size, off);
  }
  return n;
}

/* Thread t's slice of the tiles, block by block: input transform, 36 sgemms, output transform. */
static void forward_slice(void *ctx, int t, int count) {
  const wg_job *j = ctx;
  const wg_geom *g = &j->g;
  const zn_conv_params *p = j->p;
  float *v = j->parts + (size_t)t * g->part_floats, *m = v + XI * g->v_xi;
  int begin, end;
  zn_cpu_split(g->tiles, t, count, &begin, &end);
  for (int b0 = begin; b0 < end; b0 += g->block) {
    int tiles = end - b0 < g->block ? end - b0 : g->block, cols = round_up(tiles, LANES);
    for (int g0 = 0; g0 < tiles; g0 += PAIR * LANES) {
      window W[PAIR];
      int n = windows_at(p, g, g->cin, b0 + g0, tiles - g0, 6, -1, W);
      for (int c = 0; c < g->cin; c++)
        for (int k = 0; k < n; k++)
          input_tiles(j->src, c, &W[k], g, v, g0 + k * LANES);
    }
    for (int xi = 0; xi < XI; xi++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->cout, cols, g->cin, 1.0f,
                  j->u + xi * g->u_xi, g->cin, v + xi * g->v_xi, g->ld, 0.0f, m + xi * g->m_xi,
                  g->ld);
    for (int g0 = 0; g0 < tiles; g0 += PAIR * LANES) {
      window W[PAIR];
      int n = windows_at(p, g, g->cout, b0 + g0, tiles - g0, 4, 0, W);
      for (int o = 0; o < g->cout; o++)
        for (int k = 0; k < n; k++)
          transforms()->output(m + (size_t)o * g->ld + g0 + k * LANES, g->m_xi,
                               j->dst + o * W[k].hw, &W[k], j->b ? j->b[o] : 0.0f);
    }
  }
}

/* Forward (src = x) or backward-data (src = dy, transposed filter): both are a "same" 3x3 conv. */
static void run_forward(const zn_conv_params *p, int transposed, const float *src,
                        const float *w, const float *b, float *dst, float *workspace) {
  wg_job j = {.p = p, .g = geom_of(p, transposed, 0), .src = src, .w = w, .b = b, .dst = dst,
              .transposed = transposed, .u = workspace};
  j.parts = workspace + j.g.u_floats;
  zn_cpu_parallel_for(((size_t)p->c * p->o + LANES - 1) / LANES, 1, filter_range, &j);
  zn_cpu_parallel_run(forward_slice, &j);
}

void zn_winograd_forward(const zn_conv_params *p, const float *x, const float *w, const float *b,
                         float *y, float *workspace) {
  assert(zn_winograd_supported(p));
  run_forward(p, 0, x, w, b, y, workspace);
}

void zn_winograd_backward_data(const zn_conv_params *p, const float *dy, const float *w,
                               float *dx, float *workspace) {
  assert(zn_winograd_supported(p));
  run_forward(p, 1, dy, w, NULL, dx, workspace);
}

/* Backward-filter's buffers for the current block: v [XI, c, ld] and dm [XI, o, ld]. */
static float *filter_v(const wg_job *j) { return j->parts; }
static float *filter_dm(const wg_job *j) {
  return j->parts + XI * j->g.v_xi;
}

/* Transforms thread t's share of the block's tiles: x's 6x6 tiles into v, dy's 4x4 tiles into dm
 * (A dy A^T, the gradient of the products that made them). The threads share out groups of LANES
 * tiles (a block can be a few groups: sharing out PAIRs would leave one thread a PAIR more); each
 * takes them PAIR at a time from a multiple of PAIR on, as forward does. */
static void filter_transform_slice(void *ctx, int t, int count) {
  const wg_job *j = ctx;
  const zn_conv_params *p = j->p;
  int begin, end;
  zn_cpu_split((j->count + LANES - 1) / LANES, t, count, &begin, &end);
  for (int grp = begin, take; grp < end; grp += take) {
    take = PAIR - grp % PAIR < end - grp ? PAIR - grp % PAIR : end - grp;
    int g0 = grp * LANES, tiles = take * LANES < j->count - g0 ? take * LANES : j->count - g0;
    window W[PAIR], D[PAIR];
    int n = windows_at(p, &j->g, p->c, j->first + g0, tiles, 6, -1, W);
    windows_at(p, &j->g, p->o, j->first + g0, tiles, 4, 0, D);
    for (int c = 0; c < p->c; c++)
      for (int k = 0; k < n; k++)
        input_tiles(j->src, c, &W[k], &j->g, filter_v(j), g0 + k * LANES);
    for (int o = 0; o < p->o; o++)
      for (int k = 0; k < n; k++)
        transforms()->dy(j->dy + o * D[k].hw, &D[k],
                         filter_dm(j) + (size_t)o * j->g.ld + g0 + k * LANES, j->g.m_xi);
  }
}

/* u[xi] (+)= dm[xi] v[xi]^T for thread t's share of the 36 entries; a block's first call writes. */
static void filter_gemm_slice(void *ctx, int t, int count) {
  const wg_job *j = ctx;
  const zn_conv_params *p = j->p;
  int begin, end;
  zn_cpu_split(XI, t, count, &begin, &end);
  for (int xi = begin; xi < end; xi++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->o, p->c, round_up(j->count, LANES),
                1.0f, filter_dm(j) + xi * j->g.m_xi, j->g.ld, filter_v(j) + xi * j->g.v_xi,
                j->g.ld, j->first ? 1.0f : 0.0f, j->u + xi * j->g.u_xi, p->c);
}

/* dw = G^T u G for filters [begin, end) * LANES. */
static void filter_back_range(void *ctx, size_t begin, size_t end) {
  const wg_job *j = ctx;
  const int pairs = j->p->o * j->p->c;
  for (size_t grp = begin; grp < end; grp++) {
    int first = (int)grp * LANES, count = pairs - first < LANES ? pairs - first : LANES;
    v8 u[XI] = {{0}}, d[9];
    get_entries(j->u + first, j->g.u_xi, count, u);
    transforms()->filter_back(u, d);
    for (int l = 0; l < count; l++)
      for (int k = 0; k < 9; k++) j->dst[(size_t)(first + l) * 9 + k] = d[k][l];
  }
}

/* The blocks run in order over the whole batch and each entry's sgemms on one thread, so the
 * result does not depend on the thread count. */
void zn_winograd_backward_filter(const zn_conv_params *p, const float *x, const float *dy,
                                 float *dw, float *workspace) {
  assert(zn_winograd_supported(p));
  wg_job j = {.p = p, .g = geom_of(p, 0, 1), .src = x, .dy = dy, .dst = dw, .u = workspace};
  j.parts = workspace + j.g.u_floats;
  for (j.first = 0; j.first < j.g.tiles; j.first += j.g.block) {
    j.count = j.g.tiles - j.first < j.g.block ? j.g.tiles - j.first : j.g.block;
    zn_cpu_parallel_run(filter_transform_slice, &j);
    zn_cpu_parallel_run(filter_gemm_slice, &j);
  }
  zn_cpu_parallel_for(((size_t)p->o * p->c + LANES - 1) / LANES, 1, filter_back_range, &j);
}

size_t zn_winograd_workspace_bytes(const zn_conv_params *p) {
  wg_geom f = geom_of(p, 0, 0), b = geom_of(p, 0, 1);
  size_t fwd = f.u_floats + (size_t)zn_cpu_threads_count() * f.part_floats;
  size_t bwd = b.u_floats + b.part_floats;
  return sizeof(float) * (fwd > bwd ? fwd : bwd);
}

int zn_winograd_supported(const zn_conv_params *p) {
  return p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 1 &&
         p->pad_w == 1 && p->dil_h == 1 && p->dil_w == 1 && p->groups == 1;
}

static int forced = -1;  /* zn_winograd_enable's choice; -1: ZNET_WINOGRAD's */
static int from_env;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void) {
  const char *e = getenv("ZNET_WINOGRAD");
  from_env = 1;
  if (!e || !strcmp(e, "1")) return;
  if (!strcmp(e, "0")) {
    from_env = 0;
    return;
  }
  fprintf(stderr, "znet: ZNET_WINOGRAD=%s: expected 0 (Winograd off) or 1 (on)\n", e);
  exit(2);
}

void zn_winograd_enable(int on) { forced = on != 0; }

void zn_winograd_set_block_bytes(size_t forward, size_t filter) {
  block_bytes = forward ? forward : ZN_WINO_BLOCK_BYTES;
  filter_block_bytes = filter ? filter : ZN_WINO_FILTER_BLOCK_BYTES;
}

int zn_winograd_chosen(const zn_conv_params *p) {
  if (forced < 0) pthread_once(&env_once, read_env); /* a bad value stops any model with a conv */
  if (!(forced < 0 ? from_env : forced) || !zn_winograd_supported(p)) return 0;
  /* docs/performance.md, "Winograd": it won on every DavidNet shape with 64 or more channels each
   * side on planes of 8x8 and more (64 -> 128 on 8x8 too, once OpenBLAS ran its AVX-512 kernels)
   * and with 128 on 4x4; it lost badly with 3. Against the AVX2 direct kernels it also won with
   * 32 on planes of 16x16 and more ("The avx2 path's rule"); against AVX-512's, not measured. */
  int fewest = p->c < p->o ? p->c : p->o;
  long pixels = (long)p->h * p->w;
  if (fewest >= 128 || (fewest >= 64 && pixels >= 64)) return 1;
  return zn_cpu_path_active() == ZN_CPU_AVX2 && fewest >= 32 && pixels >= 256;
}
