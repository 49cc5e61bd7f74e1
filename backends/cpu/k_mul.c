/* k_mul.c: the element-wise product of two tensors, the second either of the first's shape or
 * one value per row of it (a [C] gate over [C, H, W]), and the gate's gradient: per row, the sum
 * of a product. Rows are independent, so the fixed thread split cannot change a result. */
#include "backends/cpu/kernels.h"

#include "backends/cpu/threads.h"

#define SERIAL_BELOW 32768

typedef struct {
    size_t inner;
    const float *a, *b;
    float *y;
} mul_job;

static void mul_range(void *ctx, size_t begin, size_t end)
{
    const mul_job *j = ctx;
    size_t r = begin / j->inner, k = begin % j->inner;
    for (size_t i = begin; i < end; i++) {
        j->y[i] = j->a[i] * j->b[r];
        if (++k == j->inner) k = 0, r++;
    }
}

void zn_mul_forward(size_t rows, size_t inner, const float *a, const float *b, float *y)
{
    mul_job j = {inner, a, b, y};
    zn_cpu_parallel_for(rows * inner, SERIAL_BELOW, mul_range, &j);
}

/* y[r] over rows [begin, end): double sums in index order. */
static void mul_sum_range(void *ctx, size_t begin, size_t end)
{
    const mul_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *a = j->a + r * j->inner, *b = j->b + r * j->inner;
        double s = 0.0;
        for (size_t i = 0; i < j->inner; i++) s += (double)a[i] * b[i];
        j->y[r] = (float)s;
    }
}

void zn_mul_sum(size_t rows, size_t inner, const float *a, const float *b, float *y)
{
    mul_job j = {inner, a, b, y};
    zn_cpu_parallel_for(rows, inner ? SERIAL_BELOW / inner + 1 : rows + 1, mul_sum_range, &j);
}
