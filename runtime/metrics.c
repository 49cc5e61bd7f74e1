/* metrics.c: see metrics.h. */
#include "runtime/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

void zn_metrics_init(zn_metrics *m, int n_heads, int classes, bool vote)
{
    memset(m, 0, sizeof *m);
    m->n_heads = n_heads < ZN_MAX_HEADS ? n_heads : ZN_MAX_HEADS;
    m->classes = classes;
    m->vote = vote;
    m->confusion = zn_calloc((size_t)classes * classes, sizeof *m->confusion);
}

void zn_metrics_free(zn_metrics *m)
{
    free(m->confusion);
    m->confusion = NULL;
}

static int argmax(const float *v, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int zn_vote(const int *pred, int n_heads)
{
    int best = pred[n_heads - 1], best_count = 0;
    for (int h = n_heads - 1; h >= 0; h--) { /* from the last head, so ties go to the latest */
        int count = 0;
        for (int j = 0; j < n_heads; j++) count += pred[j] == pred[h];
        if (count > best_count) best_count = count, best = pred[h];
    }
    return best;
}

void zn_metrics_add(zn_metrics *m, const float *const *logits, const int32_t *labels, int n)
{
    int pred[ZN_MAX_HEADS];
    for (int i = 0; i < n; i++) {
        for (int h = 0; h < m->n_heads; h++) {
            pred[h] = argmax(logits[h] + (size_t)i * m->classes, m->classes);
            m->correct[h] += pred[h] == labels[i];
        }
        int final = m->vote ? zn_vote(pred, m->n_heads) : pred[m->n_heads - 1];
        m->vote_correct += final == labels[i];
        if (labels[i] >= 0 && labels[i] < m->classes) m->confusion[labels[i] * m->classes + final]++;
        m->total++;
    }
}

double zn_metrics_acc(const zn_metrics *m, int head)
{
    if (!m->total) return 0;
    return (double)(head < 0 ? m->vote_correct : m->correct[head]) / m->total;
}
