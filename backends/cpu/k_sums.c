/* k_sums.c: zn_rows_sums_add, one loop compiled per kernel path. The loop is plain C with a
 * constant lane count, which the compiler turns into one vector per sum (portable: 8 lanes, as
 * SSE pairs; AVX2: 16 lanes, two ymm; AVX-512: 16 lanes, one zmm). The sums read every value
 * once and are bound by memory bandwidth on large planes, so the wider paths mostly save
 * instructions (docs/performance.md, "AVX-512"). */
#include "backends/cpu/sums.h"

#include "backends/cpu/cpu_features.h"

#define MAX_LANES 16

/* The loop; lanes is a constant after inlining into each path's function below. */
__attribute__((always_inline)) static inline void rows_sums(int lanes, const float *x,
                                                            const float *dy, int rows,
                                                            size_t stride, int n, bool squares,
                                                            zn_bn_sums *t)
{
    for (int r = 0; r < rows; r++) {
        const float *p = x + (size_t)r * stride, *g = dy ? dy + (size_t)r * stride : NULL;
        float s[MAX_LANES] = {0}, q[MAX_LANES] = {0}, sg[MAX_LANES] = {0}, sgx[MAX_LANES] = {0};
        int i = 0;
        if (g) {
            for (; i + lanes <= n; i += lanes)
                for (int k = 0; k < lanes; k++) {
                    s[k] += p[i + k], q[k] += p[i + k] * p[i + k];
                    sg[k] += g[i + k], sgx[k] += g[i + k] * p[i + k];
                }
        } else if (squares) {
            for (; i + lanes <= n; i += lanes)
                for (int k = 0; k < lanes; k++) s[k] += p[i + k], q[k] += p[i + k] * p[i + k];
        } else {
            for (; i + lanes <= n; i += lanes)
                for (int k = 0; k < lanes; k++) s[k] += p[i + k];
        }
        for (; i < n; i++) {
            s[0] += p[i], q[0] += p[i] * p[i];
            if (g) sg[0] += g[i], sgx[0] += g[i] * p[i];
        }
        for (int k = 0; k < lanes; k++) {
            t->x += s[k];
            if (squares || g) t->xx += q[k];
            if (g) t->dy += sg[k], t->dyx += sgx[k];
        }
    }
}

typedef void rows_fn(const float *x, const float *dy, int rows, size_t stride, int n,
                     bool squares, zn_bn_sums *t);

static void rows_portable(const float *x, const float *dy, int rows, size_t stride, int n,
                          bool squares, zn_bn_sums *t)
{
    rows_sums(8, x, dy, rows, stride, n, squares, t);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void rows_avx2(const float *x, const float *dy,
                                                          int rows, size_t stride, int n,
                                                          bool squares, zn_bn_sums *t)
{
    rows_sums(16, x, dy, rows, stride, n, squares, t);
}

__attribute__((target("avx512f,avx512vl,avx2,fma"))) static void
rows_avx512(const float *x, const float *dy, int rows, size_t stride, int n, bool squares,
            zn_bn_sums *t)
{
    rows_sums(16, x, dy, rows, stride, n, squares, t);
}
#else
#define rows_avx2 rows_portable
#define rows_avx512 rows_portable
#endif

void zn_rows_sums_add(const float *x, const float *dy, int rows, size_t stride, int n,
                      bool squares, zn_bn_sums *t)
{
    static rows_fn *const BY_PATH[ZN_CPU_PATH_COUNT] = {
        [ZN_CPU_PORTABLE] = rows_portable, [ZN_CPU_AVX2] = rows_avx2, [ZN_CPU_AVX512] = rows_avx512};
    BY_PATH[zn_cpu_path_active()](x, dy, rows, stride, n, squares, t);
}
