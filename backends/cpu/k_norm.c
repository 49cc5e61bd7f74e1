/* k_norm.c: batch normalisation over N and H*W per channel: training forward (batch statistics,
 * running-average update), inference forward (running statistics), the training backward and
 * the per-channel sum (bias gradients). Sums run in double: a channel holds up to
 * N*H*W = 512*32*32 values. */
#include "backends/cpu/kernels.h"

#include <math.h>

/* Row n of channel ch: HW contiguous values. */
static const float *channel_row(const zn_bn_dims *d, const float *x, int n, int ch)
{
    return x + ((size_t)n * d->c + ch) * d->hw;
}

static size_t channel_count(const zn_bn_dims *d)
{
    return (size_t)d->n * d->hw;
}

/* Mean and biased variance of channel ch (two passes, for accuracy). */
static void channel_stats(const zn_bn_dims *d, const float *x, int ch, double *mean, double *var)
{
    double s = 0.0, q = 0.0;
    for (int n = 0; n < d->n; n++) {
        const float *p = channel_row(d, x, n, ch);
        for (int i = 0; i < d->hw; i++) s += p[i];
    }
    double m = s / (double)channel_count(d);
    for (int n = 0; n < d->n; n++) {
        const float *p = channel_row(d, x, n, ch);
        for (int i = 0; i < d->hw; i++) q += (p[i] - m) * (p[i] - m);
    }
    *mean = m;
    *var = q / (double)channel_count(d);
}

/* y = a*x + b over channel ch. */
static void channel_affine(const zn_bn_dims *d, const float *x, int ch, float a, float b, float *y)
{
    for (int n = 0; n < d->n; n++) {
        const float *p = channel_row(d, x, n, ch);
        float *q = y + (p - x);
        for (int i = 0; i < d->hw; i++) q[i] = a * p[i] + b;
    }
}

void zn_batchnorm_forward_train(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, float *running_mean, float *running_var,
                                float *y, float *saved)
{
    double m = (double)channel_count(d);
    double unbias = m > 1 ? m / (m - 1) : 1.0;
    float keep = d->momentum;
    for (int ch = 0; ch < d->c; ch++) {
        double mean, var;
        channel_stats(d, x, ch, &mean, &var);
        double invstd = 1.0 / sqrt(var + d->eps);
        float a = (float)(gamma[ch] * invstd);
        channel_affine(d, x, ch, a, (float)(beta[ch] - mean * a), y);
        running_mean[ch] = keep * running_mean[ch] + (1 - keep) * (float)mean;
        running_var[ch] = keep * running_var[ch] + (1 - keep) * (float)(var * unbias);
        if (saved) {
            saved[ch] = (float)mean;
            saved[d->c + ch] = (float)invstd;
        }
    }
}

void zn_batchnorm_forward_infer(const zn_bn_dims *d, const float *x, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, float *y)
{
    for (int ch = 0; ch < d->c; ch++) {
        float a = gamma[ch] / sqrtf(running_var[ch] + d->eps);
        channel_affine(d, x, ch, a, beta[ch] - running_mean[ch] * a, y);
    }
}

/* With xhat = (x - mean) * invstd and M = N*HW values per channel:
 * dbeta = sum dy, dgamma = sum dy*xhat, dx = gamma*invstd * (dy - dbeta/M - xhat*dgamma/M). */
void zn_batchnorm_backward(const zn_bn_dims *d, const float *x, const float *gamma,
                           const float *dy, const float *saved, float *dx, float *dgamma,
                           float *dbeta)
{
    double m = (double)channel_count(d);
    for (int ch = 0; ch < d->c; ch++) {
        double mean, invstd;
        if (saved) {
            mean = saved[ch];
            invstd = saved[d->c + ch];
        } else {
            double var;
            channel_stats(d, x, ch, &mean, &var);
            invstd = 1.0 / sqrt(var + d->eps);
        }
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < d->n; n++) {
            const float *p = channel_row(d, x, n, ch), *g = dy + (p - x);
            for (int i = 0; i < d->hw; i++) {
                sdy += g[i];
                sdyx += g[i] * ((p[i] - mean) * invstd);
            }
        }
        if (dbeta) dbeta[ch] = (float)sdy;
        if (dgamma) dgamma[ch] = (float)sdyx;
        if (!dx) continue;
        float a = (float)(gamma[ch] * invstd), fm = (float)mean, fi = (float)invstd;
        float mb = (float)(sdy / m), mg = (float)(sdyx / m);
        for (int n = 0; n < d->n; n++) {
            const float *p = channel_row(d, x, n, ch), *g = dy + (p - x);
            float *q = dx + (p - x);
            for (int i = 0; i < d->hw; i++) q[i] = a * (g[i] - mb - (p[i] - fm) * fi * mg);
        }
    }
}

void zn_channel_sum(int n, int c, int hw, const float *x, float *sum)
{
    const zn_bn_dims d = {.n = n, .c = c, .hw = hw};
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = channel_row(&d, x, i, ch);
            for (int j = 0; j < hw; j++) s += p[j];
        }
        sum[ch] = (float)s;
    }
}
