/* profile.c: see profile.h. Every timed run ends with the session's synchronize, so a device that
 * runs asynchronously (cuda) is timed for the work done, not the work queued. */
#include "runtime/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/rng.h"

double zn_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

bool zn_profiler_init(zn_profiler *p, zn_session *s, uint64_t seed)
{
    size_t n_img = s->image >= 0 ? s->plan.bytes[s->image] / sizeof(float) : 0;
    *p = (zn_profiler){.s = s, .images = malloc(sizeof(float) * (n_img ? n_img : 1)),
                       .labels = malloc(sizeof(int32_t) * (size_t)s->batch)};
    if (!p->images || !p->labels) {
        snprintf(s->err, sizeof s->err, "out of memory for a random batch of %d", s->batch);
        return false;
    }
    zn_rng rng;
    zn_rng_init(&rng, seed);
    for (size_t i = 0; i < n_img; i++) p->images[i] = zn_rng_normal(&rng);
    int classes = s->label >= 0 ? s->graph.nodes[s->label].attr.out : 1;
    for (int i = 0; i < s->batch; i++) p->labels[i] = (int32_t)zn_rng_below(&rng, (uint32_t)classes);
    return true;
}

void zn_profiler_free(zn_profiler *p)
{
    free(p->images);
    free(p->labels);
    memset(p, 0, sizeof *p);
}

bool zn_profile_time(zn_profiler *p, bool training, int steps, double *seconds)
{
    zn_session *s = p->s;
    zn_optim_step step = {.kind = ZN_STEP_SGD, .lr = 1e-4f, .momentum = 0.9f, .nesterov = true, .weight_decay = 5e-4f};
    for (int i = 0; i <= steps; i++) {
        if (i == 1) *seconds = zn_seconds();
        bool ok = zn_session_feed(s, p->images, p->labels) &&
                  (training ? zn_session_train_step(s, &step) : zn_session_forward(s, false));
        if (!ok || !zn_session_synchronize(s)) return false;
    }
    *seconds = (zn_seconds() - *seconds) / steps;
    return true;
}

bool zn_profile_ops(zn_profiler *p, bool training, zn_op_profile *out)
{
    zn_session *s = p->s;
    memset(out, 0, sizeof *out);
    int last = training ? s->graph.n_nodes - 1 : s->n_forward - 1;
    if (!zn_session_feed(s, p->images, p->labels)) return false;
    for (int i = 0; i <= last; i++) {
        double t = zn_seconds();
        if (!zn_session_compute(s, i, i, training) || !zn_session_synchronize(s)) return false;
        t = zn_seconds() - t;
        out->seconds[s->graph.nodes[i].op] += t;
        out->nodes[s->graph.nodes[i].op]++;
        out->total += t;
    }
    return true;
}
