/* k_norm.c: batch normalisation over N and H*W per channel: training forward (batch statistics,
 * running-average update), inference forward (running statistics), the training backward and
 * the per-channel sum (bias gradients). Each channel is one unit of work for the pool's threads
 * (a fixed split: a channel's sums never depend on the thread count). Sums (sums.h) take rows
 * of HW values in float lanes and add the rows in double: a channel holds up to 512*32*32 values. */
#include "backends/cpu/kernels.h"

#include <math.h>

#include "backends/cpu/sums.h"
#include "backends/cpu/threads.h"

/* Row n of channel ch: HW contiguous values. */
static const float *channel_row(const zn_bn_dims *d, const float *x, int n, int ch)
{
    return x + ((size_t)n * d->c + ch) * d->hw;
}

static size_t channel_count(const zn_bn_dims *d)
{
    return (size_t)d->n * d->hw;
}

/* Adds channel ch's rows of x (and dy, when given) to t, row after row (sums.h): a batch summed
 * in consecutive slices gets the same bits as in one call. squares: x^2 too (always with dy). */
static void channel_rows_add(const zn_bn_dims *d, const float *x, const float *dy, int ch,
                             bool squares, zn_bn_sums *t)
{
    const float *p = channel_row(d, x, 0, ch);
    zn_rows_sums_add(p, dy ? dy + (p - x) : NULL, d->n, (size_t)d->c * d->hw, d->hw, squares, t);
}

static void channel_sums_add(const zn_bn_dims *d, const float *x, const float *dy, int ch,
                             zn_bn_sums *t)
{
    channel_rows_add(d, x, dy, ch, true, t);
}

/* One channel's sums over N and HW; the dy ones only when dy was given. */
static zn_bn_sums channel_sum_of(const zn_bn_dims *d, const float *x, const float *dy, int ch)
{
    zn_bn_sums t = {0, 0, 0, 0};
    channel_sums_add(d, x, dy, ch, &t);
    return t;
}

zn_bn_sums zn_bn_channel_sums(const zn_bn_dims *d, const float *x, const zn_bn_sums *planes,
                              int ch)
{
    if (planes) return zn_planes_channel_sums(planes, d->n, d->c, ch);
    return channel_sum_of(d, x, NULL, ch);
}

/* Mean and biased variance from the sums. */
static void channel_stats(const zn_bn_dims *d, const zn_bn_sums *t, double *mean, double *var)
{
    double m = (double)channel_count(d);
    *mean = t->x / m;
    *var = fmax(t->xx / m - *mean * *mean, 0.0);
}

/* y = a*x + b (+ c*g when g is not NULL) over channel ch. */
static void channel_affine(const zn_bn_dims *d, const float *x, int ch, float a, float b,
                           const float *g, float c, float *y)
{
    for (int n = 0; n < d->n; n++) {
        const float *p = channel_row(d, x, n, ch);
        float *q = y + (p - x);
        if (g) {
            const float *r = g + (p - x);
            for (int i = 0; i < d->hw; i++) q[i] = a * p[i] + b + c * r[i];
        } else {
            for (int i = 0; i < d->hw; i++) q[i] = a * p[i] + b;
        }
    }
}

/* Every kernel's arguments; each reads the ones it needs. */
typedef struct bn_job {
    const zn_bn_dims *d;
    const float *x, *gamma, *beta, *dy, *saved;
    const float *dgamma_in, *dbeta_in; /* the backward's sums, when already computed */
    float *running_mean, *running_var, *y, *saved_out, *dx, *dgamma, *dbeta;
    const float *a, *b, *k; /* zn_bn_affine's per-channel coefficients */
    zn_bn_sums *sums;       /* zn_bn_sums_add's */
    const zn_bn_sums *planes; /* the training forward's x sums per plane, or NULL */
} bn_job;

static void bn_run(bn_job *j, zn_cpu_range_fn fn)
{
    zn_cpu_parallel_for((size_t)j->d->c, 2, fn, j);
}

zn_bn_train zn_bn_train_stats(const zn_bn_dims *d, const zn_bn_sums *t, float gamma, float beta,
                              float *running_mean, float *running_var)
{
    zn_bn_train r;
    double var, m = (double)channel_count(d);
    channel_stats(d, t, &r.mean, &var);
    r.invstd = 1.0 / sqrt(var + d->eps);
    r.a = (float)(gamma * r.invstd);
    r.b = (float)(beta - r.mean * r.a);
    float keep = d->momentum;
    if (keep < 1) { /* momentum 1 keeps all of the old value: a recomputed copy's (passes.md) */
        double unbias = m > 1 ? m / (m - 1) : 1.0;
        *running_mean = keep * *running_mean + (1 - keep) * (float)r.mean;
        *running_var = keep * *running_var + (1 - keep) * (float)(var * unbias);
    }
    return r;
}

static void forward_train_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    const zn_bn_dims *d = j->d;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        zn_bn_sums t = zn_bn_channel_sums(d, j->x, j->planes, ch);
        zn_bn_train r = zn_bn_train_stats(d, &t, j->gamma[ch], j->beta[ch], &j->running_mean[ch],
                                          &j->running_var[ch]);
        channel_affine(d, j->x, ch, r.a, r.b, NULL, 0.0f, j->y);
        if (j->saved_out) {
            j->saved_out[ch] = (float)r.mean;
            j->saved_out[d->c + ch] = (float)r.invstd;
        }
    }
}

void zn_batchnorm_forward_train(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, float *running_mean, float *running_var,
                                float *y, float *saved, const zn_bn_sums *planes)
{
    bn_job j = {.d = d, .x = x, .gamma = gamma, .beta = beta, .running_mean = running_mean,
                .running_var = running_var, .y = y, .saved_out = saved, .planes = planes};
    bn_run(&j, forward_train_range);
}

void zn_bn_infer_affine(float eps, float gamma, float beta, float running_mean,
                        float running_var, float *a, float *b)
{
    *a = gamma / sqrtf(running_var + eps);
    *b = beta - running_mean * *a;
}

static void forward_infer_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        float a, b;
        zn_bn_infer_affine(j->d->eps, j->gamma[ch], j->beta[ch], j->running_mean[ch],
                           j->running_var[ch], &a, &b);
        channel_affine(j->d, j->x, ch, a, b, NULL, 0.0f, j->y);
    }
}

void zn_batchnorm_forward_infer(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, float *y)
{
    bn_job j = {.d = d, .x = x, .gamma = gamma, .beta = beta,
                .running_mean = (float *)running_mean, .running_var = (float *)running_var,
                .y = y}; /* read only */
    bn_run(&j, forward_infer_range);
}

void zn_bn_fold_weight(int c, size_t per, float eps, const float *w, const float *gamma,
                       const float *running_var, float *out)
{
    for (int ch = 0; ch < c; ch++) {
        float a = gamma[ch] / sqrtf(running_var[ch] + eps);
        for (size_t i = (size_t)ch * per; i < (size_t)(ch + 1) * per; i++) out[i] = w[i] * a;
    }
}

void zn_bn_fold_bias(int c, float eps, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, const float *b,
                     float *out)
{
    for (int ch = 0; ch < c; ch++) {
        float a = gamma[ch] / sqrtf(running_var[ch] + eps);
        out[ch] = beta[ch] + ((b ? b[ch] : 0.0f) - running_mean[ch]) * a;
    }
}

/* dx = k[0] * x + k[1] + k[2] * dy over a channel of m values, from the sums over dy. */
static void backward_affine(double m, double mean, double invstd, float gamma, double sdy,
                            double sdyx, float k[3])
{
    double a = gamma * invstd, kx = -a * invstd * sdyx / m;
    k[0] = (float)kx;
    k[1] = (float)(-a * sdy / m - kx * mean);
    k[2] = (float)a;
}

/* With xhat = (x - mean) * invstd and M = N*HW values per channel:
 * dbeta = sum dy, dgamma = sum dy*xhat = invstd * (sum dy*x - mean * sum dy),
 * dx = gamma*invstd * (dy - dbeta/M - xhat*dgamma/M), one fused multiply-add per term. */
static void backward_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    const zn_bn_dims *d = j->d;
    double m = (double)channel_count(d);
    bool have_sums = j->dgamma_in != NULL;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
        zn_bn_sums t = channel_sum_of(d, j->x, have_sums ? NULL : j->dy, ch);
        double mean, invstd;
        if (j->saved) {
            mean = j->saved[ch];
            invstd = j->saved[d->c + ch];
        } else {
            double var;
            channel_stats(d, &t, &mean, &var);
            invstd = 1.0 / sqrt(var + d->eps);
        }
        double sdy = have_sums ? j->dbeta_in[ch] : t.dy;
        double sdyx = have_sums ? j->dgamma_in[ch] : invstd * (t.dyx - mean * t.dy);
        if (j->dbeta) j->dbeta[ch] = (float)sdy;
        if (j->dgamma) j->dgamma[ch] = (float)sdyx;
        if (!j->dx) continue;
        float k[3];
        backward_affine(m, mean, invstd, j->gamma[ch], sdy, sdyx, k);
        channel_affine(d, j->x, ch, k[0], k[1], j->dy, k[2], j->dx);
    }
}

void zn_bn_backward_affine(const zn_bn_dims *d, const zn_bn_train *s, float gamma, float dgamma,
                           float dbeta, float k[3])
{
    backward_affine((double)channel_count(d), s->mean, s->invstd, gamma, dbeta, dgamma, k);
}

static void sums_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    for (size_t ch = c0; ch < c1; ch++) channel_sums_add(j->d, j->x, j->dy, (int)ch, &j->sums[ch]);
}

void zn_bn_sums_add(const zn_bn_dims *d, const float *x, const float *dy, zn_bn_sums *sums)
{
    bn_job j = {.d = d, .x = x, .dy = dy, .sums = sums};
    bn_run(&j, sums_range);
}

static void affine_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    for (size_t ch = c0; ch < c1; ch++)
        channel_affine(j->d, j->x, (int)ch, j->a[ch], j->b[ch], j->dy, j->dy ? j->k[ch] : 0.0f,
                       j->y);
}

void zn_bn_affine(const zn_bn_dims *d, const float *a, const float *b, const float *x,
                  const float *g, const float *k, float *y)
{
    bn_job j = {.d = d, .x = x, .dy = g, .y = y, .a = a, .b = b, .k = k};
    bn_run(&j, affine_range);
}

void zn_batchnorm_backward(const zn_bn_dims *d, const float *x, const float *gamma,
                           const float *dy, const float *saved, float *dx, float *dgamma,
                           float *dbeta)
{
    bn_job j = {.d = d, .x = x, .gamma = gamma, .dy = dy, .saved = saved, .dx = dx,
                .dgamma = dgamma, .dbeta = dbeta};
    bn_run(&j, backward_range);
}

void zn_batchnorm_backward_data(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *dy, const float *dgamma, const float *dbeta,
                                float *dx)
{
    bn_job j = {.d = d, .x = x, .gamma = gamma, .dy = dy, .dgamma_in = dgamma,
                .dbeta_in = dbeta, .dx = dx};
    bn_run(&j, backward_range);
}

static void channel_sum_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    for (size_t ch = c0; ch < c1; ch++) {
        zn_bn_sums t = {0, 0, 0, 0};
        channel_rows_add(j->d, j->x, NULL, (int)ch, false, &t);
        j->y[ch] = (float)t.x;
    }
}

void zn_channel_sum(int n, int c, int hw, const float *x, float *sum)
{
    const zn_bn_dims d = {.n = n, .c = c, .hw = hw};
    bn_job j = {.d = &d, .x = x, .y = sum};
    bn_run(&j, channel_sum_range);
}
