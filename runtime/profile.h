/* profile.h: what `znet bench` measures on a session: one random batch fed before every run (as
 * training feeds one), the mean time of runs of a training step or of inference, and one run
 * node by node with the time summed per op. The CLI only formats these figures. */
#ifndef ZN_PROFILE_H
#define ZN_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/graph.h"
#include "runtime/session.h"

typedef struct {
    zn_session *s;
    float *images;   /* [batch, C, H, W] normal values */
    int32_t *labels; /* [batch] below the label's class count */
} zn_profiler;

/* A monotonic clock in seconds: the profiler's and the training loop's timings. */
double zn_seconds(void);

/* One random batch for s from seed. false (s->err says why) when out of memory. */
bool zn_profiler_init(zn_profiler *p, zn_session *s, uint64_t seed);
void zn_profiler_free(zn_profiler *p);

/* Mean seconds of `steps` runs (after one warm-up) of a training step or a forward pass, the batch
 * fed every time: the plan reuses input memory once a step no longer needs it. */
bool zn_profile_time(zn_profiler *p, bool training, int steps, double *seconds);

typedef struct {
    double seconds[ZN_OP_COUNT]; /* per op: the sum over its nodes */
    int nodes[ZN_OP_COUNT];      /* per op: how many nodes ran */
    double total;                /* seconds of the whole run */
} zn_op_profile;

/* One training step (without the optimizer) or forward pass, node by node, each synchronized and
 * timed. */
bool zn_profile_ops(zn_profiler *p, bool training, zn_op_profile *out);

#endif
