/* k_norm_sync.c: synchronised batch norm (--sync-bn, docs/distributed.md): the per-channel sums
 * behind the statistics (x, x^2 and the count), and in the backward those behind dx (dy and
 * dy*xhat), are summed over every rank through sync before they are used, as PyTorch's
 * SyncBatchNorm does. The parameter gradients stay this rank's: the gradient sum adds them. */
#include "backends/cpu/kernels.h"

#include <stdlib.h>

#include "graph/util.h"

/* The sums of x and x^2 of every channel over every rank (into t), and d with the global batch. */
static zn_bn_dims global_x_sums(const zn_bn_dims *d, zn_bn_sync_fn sync, zn_bn_sums *t)
{
    double *v = zn_malloc(sizeof *v * (2 * (size_t)d->c + 1));
    for (int ch = 0; ch < d->c; ch++) v[2 * ch] = t[ch].x, v[2 * ch + 1] = t[ch].xx;
    v[2 * d->c] = d->n;
    sync(v, 2 * d->c + 1);
    for (int ch = 0; ch < d->c; ch++) t[ch].x = v[2 * ch], t[ch].xx = v[2 * ch + 1];
    zn_bn_dims g = *d;
    g.n = (int)v[2 * d->c];
    free(v);
    return g;
}

void zn_bn_forward_train_synced(const zn_bn_dims *d, zn_bn_sync_fn sync, const float *x, const float *gamma,
                                const float *beta, float *running_mean, float *running_var, float *y)
{
    zn_bn_sums *t = zn_calloc((size_t)d->c, sizeof *t);
    float *ab = zn_malloc(sizeof *ab * 2 * (size_t)d->c);
    zn_bn_sums_add(d, x, NULL, t);
    zn_bn_dims g = global_x_sums(d, sync, t);
    for (int ch = 0; ch < d->c; ch++) {
        zn_bn_train r = zn_bn_train_stats(&g, &t[ch], gamma[ch], beta[ch], &running_mean[ch], &running_var[ch]);
        ab[ch] = r.a, ab[d->c + ch] = r.b;
    }
    zn_bn_affine(d, ab, ab + d->c, x, NULL, NULL, y);
    free(ab);
    free(t);
}

void zn_bn_backward_synced(const zn_bn_dims *d, zn_bn_sync_fn sync, const float *x, const float *gamma,
                           const float *dy, const float *dgamma_in, const float *dbeta_in, float *dx,
                           float *dgamma, float *dbeta)
{
    int c = d->c;
    zn_bn_sums *t = zn_calloc((size_t)c, sizeof *t);
    zn_bn_train *st = zn_malloc(sizeof *st * (size_t)c);
    double *v = zn_malloc(sizeof *v * 2 * (size_t)c);
    zn_bn_sums_add(d, x, dgamma_in ? NULL : dy, t);
    zn_bn_dims g = global_x_sums(d, sync, t);
    for (int ch = 0; ch < c; ch++) {
        zn_bn_train *s = &st[ch];
        zn_bn_sums only_x = {t[ch].x, t[ch].xx, 0, 0};
        float keep_mean = 0, keep_var = 0;
        zn_bn_dims no_update = g;
        no_update.momentum = 1; /* the statistics only: the running ones are the forward's */
        *s = zn_bn_train_stats(&no_update, &only_x, 1.0f, 0.0f, &keep_mean, &keep_var);
        v[ch] = dbeta_in ? dbeta_in[ch] : t[ch].dy;
        v[c + ch] = dgamma_in ? dgamma_in[ch] : s->invstd * (t[ch].dyx - s->mean * t[ch].dy);
        if (dbeta) dbeta[ch] = (float)v[ch];
        if (dgamma) dgamma[ch] = (float)v[c + ch];
    }
    if (dx) {
        sync(v, 2 * c);
        float *k = zn_malloc(sizeof *k * 3 * (size_t)c);
        for (int ch = 0; ch < c; ch++) {
            float kc[3];
            zn_bn_backward_affine(&g, &st[ch], gamma[ch], (float)v[c + ch], (float)v[ch], kc);
            k[ch] = kc[0], k[c + ch] = kc[1], k[2 * c + ch] = kc[2];
        }
        zn_bn_affine(d, k, k + c, x, dy, k + 2 * c, dx);
        free(k);
    }
    free(v);
    free(st);
    free(t);
}
