/* k_loss.c: softmax cross-entropy with label smoothing (forward, backward) and the row arg-max
 * used for accuracy. Each row is shifted by its maximum, and sums run in double. With
 * lse = log sum_j exp z_j, the loss of a row is lse - (1-eps)*z_label - (eps/K)*sum_j z_j. */
#include "backends/cpu/kernels.h"

#include <math.h>

static zn_kstatus check_labels(const zn_xent_dims *d, const int32_t *labels, int *bad_row)
{
    for (int i = 0; i < d->n; i++)
        if (labels[i] < 0 || labels[i] >= d->k) {
            if (bad_row) *bad_row = i;
            return ZN_KSTATUS_BAD_LABEL;
        }
    return ZN_KSTATUS_OK;
}

static double row_logsumexp(int k, const float *z)
{
    float m = z[0];
    for (int j = 1; j < k; j++)
        if (z[j] > m) m = z[j];
    double s = 0.0;
    for (int j = 0; j < k; j++) s += exp((double)z[j] - m);
    return m + log(s);
}

zn_kstatus zn_xent_forward(const zn_xent_dims *d, const float *logits, const int32_t *labels,
                           float *loss, int *bad_row)
{
    zn_kstatus st = check_labels(d, labels, bad_row);
    if (st != ZN_KSTATUS_OK) return st;
    double eps = d->smoothing, total = 0.0;
    for (int i = 0; i < d->n; i++) {
        const float *z = logits + (size_t)i * d->k;
        double sum = 0.0;
        for (int j = 0; j < d->k; j++) sum += z[j];
        total += row_logsumexp(d->k, z) - (1.0 - eps) * z[labels[i]] - eps / d->k * sum;
    }
    *loss = (float)(d->mean ? total / d->n : total);
    return ZN_KSTATUS_OK;
}

zn_kstatus zn_xent_backward(const zn_xent_dims *d, const float *logits, const int32_t *labels,
                            float weight, float *dlogits, int *bad_row)
{
    zn_kstatus st = check_labels(d, labels, bad_row);
    if (st != ZN_KSTATUS_OK) return st;
    double scale = d->mean ? (double)weight / d->n : weight;
    double off = (double)d->smoothing / d->k, on = 1.0 - d->smoothing + off;
    for (int i = 0; i < d->n; i++) {
        const float *z = logits + (size_t)i * d->k;
        float *g = dlogits + (size_t)i * d->k;
        double lse = row_logsumexp(d->k, z);
        for (int j = 0; j < d->k; j++)
            g[j] = (float)(scale * (exp(z[j] - lse) - (j == labels[i] ? on : off)));
    }
    return ZN_KSTATUS_OK;
}

void zn_argmax_rows(int n, int k, const float *logits, int32_t *pred)
{
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[best]) best = j;
        pred[i] = best;
    }
}
