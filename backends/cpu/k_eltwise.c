/* k_eltwise.c: elementwise kernels (the element-wise ops of graph/op_list.h, whose math is
 * backends/eltwise_math.h; add, accumulate, scale, fill) and the non-finite scan behind
 * --check-numerics. Outputs may alias inputs. The pool's threads take fixed slices of large
 * tensors (each element is computed alone, so the split cannot change a result). */
#include "backends/cpu/kernels.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "backends/cpu/threads.h"
#include "backends/eltwise_math.h"

/* Below this many elements one thread is faster than waking the pool. */
#define SERIAL_BELOW 32768

typedef enum { EW_ADD, EW_ACCUMULATE, EW_SCALE } eltwise_op;

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

/* Each EW row of the op list gives two slices: y = f(a) and dx = f'(a) b. */
#define EW_RANGES(OP, E, fn, reads)                                                               \
    static void fn##_range(void *ctx, size_t begin, size_t end)                                   \
    {                                                                                             \
        const eltwise_job *j = ctx;                                                               \
        const float *a = j->a;                                                                    \
        float *y = j->y;                                                                          \
        for (size_t i = begin; i < end; i++) y[i] = zn_ew_##fn(a[i]);                             \
    }                                                                                             \
    static void fn##_bwd_range(void *ctx, size_t begin, size_t end)                               \
    {                                                                                             \
        const eltwise_job *j = ctx;                                                               \
        const float *a = j->a, *b = j->b;                                                         \
        float *y = j->y;                                                                          \
        for (size_t i = begin; i < end; i++) y[i] = zn_ew_##fn##_bwd(a[i], b[i]);                 \
    }
ZN_OP_LIST(ZN_OP_SKIP, EW_RANGES)
#undef EW_RANGES

#define EW_TABLE(OP, E, fn, reads) [ZN_OP_##E] = fn##_range, [ZN_OP_##E##_BWD] = fn##_bwd_range,
static const zn_cpu_range_fn ew_ranges[ZN_OP_COUNT] = {ZN_OP_LIST(ZN_OP_SKIP, EW_TABLE)};
#undef EW_TABLE

static void ew_map(zn_op op, size_t n, const float *a, const float *b, float *y)
{
    assert(op < ZN_OP_COUNT && ew_ranges[op]);
    eltwise_job j = {.a = a, .b = b, .y = y};
    zn_cpu_parallel_for(n, SERIAL_BELOW, ew_ranges[op], &j);
}

void zn_eltwise_forward(zn_op op, size_t n, const float *x, float *y)
{
    ew_map(op, n, x, NULL, y);
}

void zn_eltwise_backward(zn_op op, size_t n, const float *v, const float *dy, float *dx)
{
    ew_map(op, n, v, dy, dx);
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
