/* k_sums.c: zn_rows_sums_add, one loop compiled per kernel path, with a constant lane count
 * (portable: 8 lanes, as SSE pairs; AVX2 and AVX-512: 16 lanes, two ymm). The sums read every value
 * once and are bound by memory bandwidth on large planes, so the wider paths mostly save
 * instructions (docs/performance.md, "AVX-512"). */
#include "backends/cpu/sums.h"

#include "backends/cpu/cpu_features.h"

#include <stdint.h>
#include <string.h>

#define MAX_LANES 16

/* Eight float lanes: one ymm, or two SSE registers on the portable path. 16 lanes are two of
 * them side by side, lane k of the pair being lane k of the sum; written with GCC's vector types
 * because the plain loop over k became a tangle of shuffles when vectorised for AVX-512. */
typedef float v8 __attribute__((vector_size(32)));

__attribute__((always_inline)) static inline void load8(v8 *v, const float *p)
{
    memcpy(v, p, sizeof *v);
}

/* One call's rows and what to sum over them. */
typedef struct {
    const float *x, *dy; /* dy NULL: sums of x only */
    int rows, n;
    size_t stride;
    bool squares;
    bool masked; /* sums of dy and dy*x only, dy masked where a*x + b <= 0 (zn_relu_masked) */
    float a, b;
    zn_bn_sums *each; /* zn_plane_sums: row r's sums in each[r], not added to the totals */
} rows_args;

/* g's lanes kept where a*x + b > 0, else +0: the vector form of zn_relu_masked. */
__attribute__((always_inline)) static inline void relu_mask8(float a, const v8 *x, float b, v8 *g)
{
    typedef int32_t i8 __attribute__((vector_size(32)));
    const i8 keep = *x * a + b > 0.0f;
    *g = (v8)((i8)*g & keep);
}

/* A channel's rows lie a whole image apart (C * H * W floats), each in a page of its own, so on
 * small planes (8x8, 4x4: rows of 256 and 64 bytes) the hardware prefetchers never get going
 * and every row waited for memory (the 8x8 and 4x4 batch norms ran at 2-4 GB/s where 32x32 ran
 * at 12, docs/performance.md "Session 27"). The loop asks for the row PREFETCH_ROWS ahead, its
 * first PREFETCH_FLOATS at most (longer rows stream by themselves). Loads only: the same bits. */
#define PREFETCH_ROWS 8
#define PREFETCH_FLOATS 256

__attribute__((always_inline)) static inline void prefetch_row(const float *row, int n)
{
    for (int i = 0; i < n && i < PREFETCH_FLOATS; i += 16) __builtin_prefetch(row + i);
}

/* The loop; halves (1: 8 lanes, 2: 16) is a constant after inlining into each path's function
 * below (masked sums take 8 lanes on every path, as they always have). Products and sums round
 * apart (the file is built with -ffp-contract=off): each lane's sum is the same on every path
 * that has its lane count. A row's lanes are added in double from zero, then the row to the
 * totals, so that sums taken row by row (zn_plane_sums) and added later give the same bits. */
__attribute__((always_inline)) static inline void rows_sums(int halves, const rows_args *c,
                                                            zn_bn_sums *t)
{
    if (c->masked) halves = 1;
    const int lanes = 8 * halves, n = c->n;
    const bool squares = c->squares || c->dy, plain = !c->masked;
    for (int r = 0; r < c->rows; r++) {
        const float *p = c->x + (size_t)r * c->stride;
        const float *g = c->dy ? c->dy + (size_t)r * c->stride : NULL;
        if (r + PREFETCH_ROWS < c->rows) {
            prefetch_row(p + PREFETCH_ROWS * c->stride, n);
            if (g) prefetch_row(g + PREFETCH_ROWS * c->stride, n);
        }
        v8 vs[2] = {{0}}, vq[2] = {{0}}, vg[2] = {{0}}, vgx[2] = {{0}};
        int i = 0;
        for (; i + lanes <= n; i += lanes)
            for (int h = 0; h < halves; h++) {
                v8 a, b;
                load8(&a, p + i + 8 * h);
                if (plain) vs[h] += a;
                if (plain && squares) vq[h] += a * a;
                if (g) {
                    load8(&b, g + i + 8 * h);
                    if (c->masked) relu_mask8(c->a, &a, c->b, &b);
                    vg[h] += b, vgx[h] += b * a;
                }
            }
        float s[MAX_LANES], q[MAX_LANES], sg[MAX_LANES], sgx[MAX_LANES];
        memcpy(s, vs, sizeof s), memcpy(q, vq, sizeof q), memcpy(sg, vg, sizeof sg);
        memcpy(sgx, vgx, sizeof sgx);
        for (; i < n; i++) { /* the tail in lane 0 */
            s[0] += p[i], q[0] += p[i] * p[i];
            if (g) {
                const float gi = c->masked ? zn_relu_masked(c->a, p[i], c->b, g[i]) : g[i];
                sg[0] += gi, sgx[0] += gi * p[i];
            }
        }
        zn_bn_sums row = {0, 0, 0, 0};
        for (int k = 0; k < lanes; k++) {
            if (plain) row.x += s[k];
            if (plain && squares) row.xx += q[k];
            if (g) row.dy += sg[k], row.dyx += sgx[k];
        }
        if (c->each)
            c->each[r] = row;
        else
            zn_bn_sums_fold(t, &row);
    }
}

typedef void rows_fn(const rows_args *c, zn_bn_sums *t);

static void rows_portable(const rows_args *c, zn_bn_sums *t)
{
    rows_sums(1, c, t);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void rows_avx2(const rows_args *c, zn_bn_sums *t)
{
    rows_sums(2, c, t);
}

__attribute__((target("avx512f,avx512vl,avx2,fma"))) static void rows_avx512(const rows_args *c,
                                                                             zn_bn_sums *t)
{
    rows_sums(2, c, t);
}
#else
#define rows_avx2 rows_portable
#define rows_avx512 rows_portable
#endif

static void rows_run(const rows_args *c, zn_bn_sums *t)
{
    static rows_fn *const BY_PATH[ZN_CPU_PATH_COUNT] = {
        [ZN_CPU_PORTABLE] = rows_portable, [ZN_CPU_AVX2] = rows_avx2, [ZN_CPU_AVX512] = rows_avx512};
    BY_PATH[zn_cpu_path_active()](c, t);
}

void zn_rows_sums_add(const float *x, const float *dy, int rows, size_t stride, int n,
                      bool squares, zn_bn_sums *t)
{
    rows_run(&(rows_args){.x = x, .dy = dy, .rows = rows, .n = n, .stride = stride,
                          .squares = squares},
             t);
}

void zn_rows_masked_sums_add(const float *x, const float *dy, float a, float b, int rows,
                             size_t stride, int n, zn_bn_sums *t)
{
    rows_run(&(rows_args){.x = x, .dy = dy, .rows = rows, .n = n, .stride = stride,
                          .masked = true, .a = a, .b = b},
             t);
}

void zn_plane_sums(const float *x, int planes, int hw, bool squares, zn_bn_sums *out)
{
    rows_run(&(rows_args){.x = x, .rows = planes, .n = hw, .stride = (size_t)hw,
                          .squares = squares, .each = out},
             NULL);
}
