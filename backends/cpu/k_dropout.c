/* k_dropout.c: dropout's CPU kernel. The mask is backends/dropout_mask.h's hash of each element's
 * index, so any split over threads gives the same bits, and the backward is this same kernel on
 * dy with the forward's mask (the mask is linear and self-adjoint). */
#include "backends/cpu/kernels.h"

#include "backends/cpu/threads.h"

#define SERIAL_BELOW 32768

typedef struct {
    const zn_dropout_mask *m;
    const float *x;
    float *y;
} dropout_job;

static void dropout_range(void *ctx, size_t begin, size_t end)
{
    const dropout_job *j = ctx;
    for (size_t i = begin; i < end; i++) j->y[i] = zn_dropout_apply(j->m, i, j->x[i]);
}

void zn_dropout_forward(const zn_dropout_mask *m, size_t n, const float *x, float *y)
{
    dropout_job j = {m, x, y};
    zn_cpu_parallel_for(n, SERIAL_BELOW, dropout_range, &j);
}
