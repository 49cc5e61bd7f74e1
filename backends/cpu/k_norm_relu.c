/* k_norm_relu.c: batch norm followed by relu as one op (graph/pass_fuse_bn_relu.c), forward and
 * backward, so that the relu's output and the gradient between the two are never written out:
 * the forward reads x twice (statistics, then y) and writes y once; the backward reads x, y and
 * dy once for every sum and once more to write dx. One channel per unit of work, as k_norm.c
 * splits it; its sums are k_norm.c's, and the masked ones below add in the same order. */
#include "backends/cpu/kernels.h"

#include <math.h>

#include "backends/cpu/threads.h"

#define LANES 8 /* float partial sums per row, as k_norm.c */

typedef struct {
    const zn_bn_dims *d;
    bool training;
    const float *x, *gamma, *beta, *y, *dy, *coef;
    float *running_mean, *running_var, *out;
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

static void forward_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    const zn_bn_dims *d = j->d;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        float a, b;
        if (j->training) {
            zn_bn_sums t = zn_bn_channel_sums(d, j->x, ch);
            zn_bn_train r = zn_bn_train_stats(d, &t, j->gamma[ch], j->beta[ch],
                                              &j->running_mean[ch], &j->running_var[ch]);
            a = r.a, b = r.b;
        } else {
            zn_bn_infer_affine(d->eps, j->gamma[ch], j->beta[ch], j->running_mean[ch],
                               j->running_var[ch], &a, &b);
        }
        for (int n = 0; n < d->n; n++) {
            const float *p = j->x + row_at(d, n, ch);
            float *q = j->out + row_at(d, n, ch);
            for (int i = 0; i < d->hw; i++) {
                float v = a * p[i] + b;
                q[i] = v > 0.0f ? v : 0.0f; /* zn_ew_relu */
            }
        }
    }
}

void zn_bn_relu_forward(const zn_bn_dims *d, bool training, const float *x, const float *gamma,
                        const float *beta, float *running_mean, float *running_var, float *y)
{
    job j = {.d = d, .training = training, .x = x, .gamma = gamma, .beta = beta,
             .running_mean = running_mean, .running_var = running_var, .out = y};
    run(&j, forward_range);
}

/* Channel ch's sums of x, x^2, g and g*x with g = dy where y > 0 (the relu's gradient). */
static zn_bn_sums masked_sums(const job *j, int ch)
{
    const zn_bn_dims *d = j->d;
    zn_bn_sums t = {0, 0, 0, 0};
    for (int n = 0; n < d->n; n++) {
        const size_t at = row_at(d, n, ch);
        const float *p = j->x + at, *m = j->y + at, *g = j->dy + at;
        float s[LANES] = {0}, q[LANES] = {0}, sg[LANES] = {0}, sgx[LANES] = {0};
        int i = 0;
        for (; i + LANES <= d->hw; i += LANES)
            for (int k = 0; k < LANES; k++) {
                const float gi = m[i + k] > 0.0f ? g[i + k] : 0.0f;
                s[k] += p[i + k], q[k] += p[i + k] * p[i + k];
                sg[k] += gi, sgx[k] += gi * p[i + k];
            }
        for (; i < d->hw; i++) { /* the tail in lane 0, as k_norm.c adds it */
            const float gi = m[i] > 0.0f ? g[i] : 0.0f;
            s[0] += p[i], q[0] += p[i] * p[i], sg[0] += gi, sgx[0] += gi * p[i];
        }
        for (int k = 0; k < LANES; k++) t.x += s[k], t.xx += q[k], t.dy += sg[k], t.dyx += sgx[k];
    }
    return t;
}

static void coef_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    const zn_bn_dims *d = j->d;
    const double m = (double)d->n * d->hw;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        zn_bn_sums t = masked_sums(j, ch);
        zn_bn_train s;
        s.mean = t.x / m;
        s.invstd = 1.0 / sqrt(fmax(t.xx / m - s.mean * s.mean, 0.0) + d->eps);
        const float dgamma = (float)(s.invstd * (t.dyx - s.mean * t.dy)), dbeta = (float)t.dy;
        float k[3];
        zn_bn_backward_affine(d, &s, j->gamma[ch], dgamma, dbeta, k);
        const float row[5] = {dgamma, dbeta, k[0], k[1], k[2]};
        for (int r = 0; r < 5; r++) j->out[(size_t)r * d->c + ch] = row[r];
    }
}

void zn_bn_relu_backward_coef(const zn_bn_dims *d, const float *x, const float *gamma,
                              const float *y, const float *dy, float *coef)
{
    job j = {.d = d, .x = x, .gamma = gamma, .y = y, .dy = dy, .out = coef};
    run(&j, coef_range);
}

static void data_range(void *ctx, size_t c0, size_t c1)
{
    const job *j = ctx;
    const zn_bn_dims *d = j->d;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        const float kx = j->coef[2 * d->c + ch], kb = j->coef[3 * d->c + ch],
                    ka = j->coef[4 * d->c + ch];
        for (int n = 0; n < d->n; n++) {
            const size_t at = row_at(d, n, ch);
            const float *p = j->x + at, *m = j->y + at, *g = j->dy + at;
            float *q = j->out + at;
            for (int i = 0; i < d->hw; i++) q[i] = kx * p[i] + kb + ka * (m[i] > 0.0f ? g[i] : 0.0f);
        }
    }
}

void zn_bn_relu_backward_data(const zn_bn_dims *d, const float *x, const float *y,
                              const float *dy, const float *coef, float *dx)
{
    job j = {.d = d, .x = x, .y = y, .dy = dy, .coef = coef, .out = dx};
    run(&j, data_range);
}
