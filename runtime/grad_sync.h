/* grad_sync.h: the gradient sum of data-parallel training, as PyTorch DDP does it: the
 * parameters' final gradients (GRAD nodes, in the order backward makes them) are grouped into
 * buckets of about bucket_bytes, and each bucket's sum across ranks is started (dist.h) as soon
 * as backward has made its last gradient, while the rest of backward runs; before the optimizer
 * step every sum is waited for and written back, scaled for heads that average over the batch.
 * On the CUDA backend built with NCCL the buckets are summed on the GPU instead, in the order
 * of the same hook, on the stream that runs backward. */
#ifndef ZN_GRAD_SYNC_H
#define ZN_GRAD_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/session.h"

typedef struct {
    zn_session *s;
    int n_grads, *grads;  /* GRAD node ids, in node order */
    int n_buckets;
    int *points;          /* the last GRAD node of each bucket: where the step pauses */
    int *first;           /* bucket b holds grads[first[b] .. first[b + 1]) */
    size_t *at;           /* each grad's place in buf (floats) */
    float *buf;           /* every gradient, bucket after bucket */
    size_t floats;
    float scale;          /* applied to the sum: 1/ranks when the heads average over the batch */
    /* on the CUDA backend with NCCL (backends/cuda/cuda_nccl.c): sums on the device, in place */
    bool (*nccl_sum)(zn_backend *be, zn_region r, size_t offset, size_t floats, bool average);
    void (*nccl_leave)(void);
    zn_grad_hook hook;
    /* measured: steps, seconds from the first bucket's start to the last one's end, seconds the
     * step waited for them after backward */
    long steps;
    double t_first, in_flight_s, waited_s;
} zn_grad_sync;

/* Buckets for s's gradients (bucket_bytes > 0) and s->grad_hook set to them. false with the
 * reason in s->err (heads that mix summed and averaged losses cannot be scaled). */
bool zn_grad_sync_init(zn_grad_sync *g, zn_session *s, size_t bucket_bytes);
void zn_grad_sync_free(zn_grad_sync *g);

#endif
