/* metrics.h: accuracy of every head, of the vote between heads, and a confusion matrix,
 * accumulated batch by batch from the heads' logits. */
#ifndef ZN_METRICS_H
#define ZN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#define ZN_MAX_HEADS 64

typedef struct {
    int n_heads, classes;
    bool vote;              /* the model declares a vote metric */
    long total;
    long correct[ZN_MAX_HEADS];
    long vote_correct;
    long *confusion;        /* [classes][classes]: rows true class, columns prediction (the vote's,
                               or the last head's without a vote) */
} zn_metrics;

void zn_metrics_init(zn_metrics *m, int n_heads, int classes, bool vote);
void zn_metrics_free(zn_metrics *m);
/* logits[h] is head h's [n, classes] output for the n examples with these labels. */
void zn_metrics_add(zn_metrics *m, const float *const *logits, const int32_t *labels, int n);
/* The most common prediction among the heads; on a tie, the tied class the latest head chose. */
int zn_vote(const int *pred, int n_heads);
double zn_metrics_acc(const zn_metrics *m, int head); /* head -1: the vote */

#endif
