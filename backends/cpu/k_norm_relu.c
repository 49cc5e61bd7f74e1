/* k_norm_relu.c: batch norm followed by relu as one op (graph/pass_fuse_bn_relu.c), forward and
 * backward, so that neither the relu's output nor the gradient between the two is kept for the
 * backward: the forward reads x for the statistics, then reads x and writes y once; the backward
 * reads x for the statistics, then x and dy once for every sum, then x and dy once to write dx,
 * all per channel when one call writes the coefficients and dx (the passes after the first find
 * the channel in cache).
 * The relu's mask is recomputed as a*x + b > 0 from the forward's a and b (the same sums in the
 * same order give the same a, b; one float multiply and add, as the forward rounds them), so y
 * is never read. One channel per unit of work, as k_norm.c splits it, with k_norm.c's sums. */
#include "backends/cpu/kernels.h"

#include <math.h>

#include "backends/cpu/sums.h"
#include "backends/cpu/threads.h"

typedef struct {
    const zn_bn_dims *d;
    bool training;
    const float *x, *gamma, *beta, *dy, *coef;
    float *running_mean, *running_var, *out;
    float *dx; /* the coefficients' pass also writes dx (zn_bn_relu_backward) */
    const zn_bn_sums *planes; /* the training forward's x sums per plane, or NULL */
} job;

static void run(job *j, zn_cpu_range_fn fn)
{
    zn_cpu_parallel_for((size_t)j->d->c, 2, fn, j);
}

/* Row n of channel ch in a [N, C, HW] tensor: the offset of its HW values. */
static size_t row_at(const zn_bn_dims *d, int n, int ch)
{
    return ((size_t)n * d->c + ch) * d->hw;
}

/* Channel ch's batch statistics and affine; the running statistics updated unless d->momentum
 * is 1. */
static zn_bn_train batch_affine(const job *j, const zn_bn_dims *d, int ch, float *running_mean,
                                float *running_var)
{
    zn_bn_sums t = zn_bn_channel_sums(d, j->x, j->planes, ch);
    return zn_bn_train_stats(d, &t, j->gamma[ch], j->beta[ch], running_mean, running_var);
}

static void forward_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    const zn_bn_dims *d = j->d;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        float a, b;
        if (j->training) {
            zn_bn_train r = batch_affine(j, d, ch, &j->running_mean[ch], &j->running_var[ch]);
            a = r.a, b = r.b;
        } else {
            zn_bn_infer_affine(d->eps, j->gamma[ch], j->beta[ch], j->running_mean[ch],
                               j->running_var[ch], &a, &b);
        }
        for (int n = 0; n < d->n; n++) {
            const float *p = j->x + row_at(d, n, ch);
            float *q = j->out + row_at(d, n, ch);
            for (int i = 0; i < d->hw; i++) {
                const float v = zn_bn_pre_relu(a, p[i], b);
                q[i] = v > 0.0f ? v : 0.0f; /* zn_ew_relu */
            }
        }
    }
}

void zn_bn_relu_forward(const zn_bn_dims *d, bool training, const float *x, const float *gamma,
                        const float *beta, float *running_mean, float *running_var, float *y,
                        const zn_bn_sums *planes)
{
    job j = {.d = d, .training = training, .x = x, .gamma = gamma, .beta = beta,
             .running_mean = running_mean, .running_var = running_var, .out = y,
             .planes = planes};
    run(&j, forward_range);
}

/* Channel ch's sums of g and g*x with g = dy where a*x + b > 0 (the relu's gradient), in
 * t->dy and t->dyx (sums.h). */
static void masked_sums(const job *j, int ch, float a, float b, zn_bn_sums *t)
{
    const zn_bn_dims *d = j->d;
    zn_rows_masked_sums_add(j->x + row_at(d, 0, ch), j->dy + row_at(d, 0, ch), a, b, d->n,
                            (size_t)d->c * d->hw, d->hw, t);
}

/* Channel ch's dx from its coefficients k (k[r * C] is row r of the [7 * C] block). */
static void channel_dx(const job *j, int ch, const float *k, float *dx)
{
    const zn_bn_dims *d = j->d;
    const float kx = k[2 * d->c], kb = k[3 * d->c], ka = k[4 * d->c], a = k[5 * d->c],
                b = k[6 * d->c];
    for (int n = 0; n < d->n; n++) {
        const size_t at = row_at(d, n, ch);
        const float *p = j->x + at, *g = j->dy + at;
        float *q = dx + at;
        for (int i = 0; i < d->hw; i++)
            q[i] = kx * p[i] + kb + ka * zn_relu_masked(a, p[i], b, g[i]);
    }
}

static void coef_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    zn_bn_dims d = *j->d;
    d.momentum = 1.0f; /* the forward has updated the running statistics */
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        float unused_mean = 0, unused_var = 0;
        zn_bn_train s = batch_affine(j, &d, ch, &unused_mean, &unused_var);
        zn_bn_sums t = {0, 0, 0, 0};
        masked_sums(j, ch, s.a, s.b, &t);
        const float dgamma = (float)(s.invstd * (t.dyx - s.mean * t.dy)), dbeta = (float)t.dy;
        float k[3];
        zn_bn_backward_affine(&d, &s, j->gamma[ch], dgamma, dbeta, k);
        const float row[7] = {dgamma, dbeta, k[0], k[1], k[2], s.a, s.b};
        for (int r = 0; r < 7; r++) j->out[(size_t)r * d.c + ch] = row[r];
        if (j->dx) channel_dx(j, ch, j->out + ch, j->dx);
    }
}

void zn_bn_relu_backward(const zn_bn_dims *d, const float *x, const float *gamma,
                         const float *beta, const float *dy, float *coef, float *dx)
{
    job j = {.d = d, .x = x, .gamma = gamma, .beta = beta, .dy = dy, .out = coef, .dx = dx};
    run(&j, coef_range);
}

static void data_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    for (int ch = (int)c0; ch < (int)c1; ch++) channel_dx(j, ch, j->coef + ch, j->out);
}

void zn_bn_relu_backward_data(const zn_bn_dims *d, const float *x, const float *dy,
                              const float *coef, float *dx)
{
    job j = {.d = d, .x = x, .dy = dy, .coef = coef, .out = dx};
    run(&j, data_range);
}
