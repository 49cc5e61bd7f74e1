/* k_eltwise.c: elementwise kernels (relu, add, accumulate, scale, fill) and the non-finite scan
 * behind --check-numerics. Outputs may alias inputs. The pool's threads take fixed slices of
 * large tensors (each element is computed alone, so the split cannot change a result). */
#include "backends/cpu/kernels.h"

#include <math.h>
#include <string.h>

#include "backends/cpu/threads.h"

/* Below this many elements one thread is faster than waking the pool. */
#define SERIAL_BELOW 32768

typedef enum { EW_RELU, EW_RELU_BWD, EW_ADD, EW_ACCUMULATE, EW_SCALE } eltwise_op;

typedef struct eltwise_job {
    eltwise_op op;
    const float *a, *b; /* b: the second operand of the binary ops */
    float s;            /* EW_SCALE's factor */
    float *y;
} eltwise_job;

static void eltwise_range(void *ctx, size_t begin, size_t end)
{
    const eltwise_job *j = ctx;
    const float *a = j->a, *b = j->b;
    float *y = j->y;
    switch (j->op) {
    case EW_RELU:
        for (size_t i = begin; i < end; i++) y[i] = a[i] > 0.0f ? a[i] : 0.0f;
        break;
    case EW_RELU_BWD:
        /* b[i] is loaded whether or not it is kept: a conditional load cannot be vectorized
         * (the compiler must not read b[i] the source skips) and mispredicts on random signs */
        for (size_t i = begin; i < end; i++) {
            float g = b[i];
            y[i] = a[i] > 0.0f ? g : 0.0f;
        }
        break;
    case EW_ADD:
        for (size_t i = begin; i < end; i++) y[i] = a[i] + b[i];
        break;
    case EW_ACCUMULATE:
        for (size_t i = begin; i < end; i++) y[i] += a[i];
        break;
    case EW_SCALE:
        for (size_t i = begin; i < end; i++) y[i] = j->s * a[i];
        break;
    }
}

static void eltwise(size_t n, eltwise_job j)
{
    zn_cpu_parallel_for(n, SERIAL_BELOW, eltwise_range, &j);
}

void zn_relu_forward(size_t n, const float *x, float *y)
{
    eltwise(n, (eltwise_job){.op = EW_RELU, .a = x, .y = y});
}

void zn_relu_backward(size_t n, const float *xy, const float *dy, float *dx)
{
    eltwise(n, (eltwise_job){.op = EW_RELU_BWD, .a = xy, .b = dy, .y = dx});
}

void zn_add_forward(size_t n, const float *a, const float *b, float *y)
{
    eltwise(n, (eltwise_job){.op = EW_ADD, .a = a, .b = b, .y = y});
}

void zn_accumulate(size_t n, const float *a, float *y)
{
    eltwise(n, (eltwise_job){.op = EW_ACCUMULATE, .a = a, .y = y});
}

void zn_scale_forward(size_t n, float s, const float *x, float *y)
{
    eltwise(n, (eltwise_job){.op = EW_SCALE, .a = x, .s = s, .y = y});
}

void zn_fill(size_t n, float v, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = v;
}

void zn_zero(size_t n, float *y)
{
    memset(y, 0, n * sizeof *y);
}

bool zn_find_nonfinite(const float *x, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            if (where) *where = i;
            return true;
        }
    return false;
}
