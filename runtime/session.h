/* session.h: a model made runnable: its training or inference graph, the memory plan for one
 * batch size and a backend holding the tensors, as zn_compile makes them (runtime/compile.h), and
 * the calls a training loop or benchmark makes: initialise parameters, feed a batch, run forward
 * (evaluation) or forward + backward + optimizer step (training), read losses and logits. */
#ifndef ZN_SESSION_H
#define ZN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "graph/graph.h"
#include "graph/plan.h"
#include "runtime/checkpoint.h"
#include "runtime/compile.h"

/* Where a training step pauses in its backward nodes: after node points[k] (ascending) it calls
 * ready(ctx, k), the gradients final by then may be sent off while the rest of backward runs;
 * after the last node, finish(ctx), before the optimizer step reads them (data-parallel
 * training: runtime/grad_sync.h). A callback returns false after filling ctx's error. */
typedef struct {
    const int *points;
    int n_points;
    bool (*ready)(void *ctx, int k);
    bool (*finish)(void *ctx);
    void *ctx;
} zn_grad_hook;

typedef struct {
    zn_graph graph;       /* forward nodes [0, n_forward), then backward nodes when training */
    int n_forward;
    uint64_t fingerprint; /* the model's fingerprint (zn_graph.model_hash, before any pass; of
                             the graph given when no pass ran): what checkpoints are matched
                             against */
    uint64_t fingerprint_v1; /* the same as checkpoint format version 1 computed it (0: none) */
    bool training;        /* graph has backward nodes and the plan covers them */
    int batch;
    zn_plan plan;
    zn_backend *be;
    int image;            /* INPUT node fed with images (-1 if none) */
    int label;            /* label INPUT node (-1 if none) */
    uint64_t seed;        /* of zn_session_init_params: with a step's t, the key of its dropout
                             masks */
    int heads[64];        /* XENT nodes, in graph order */
    int n_heads;
    const zn_grad_hook *grad_hook; /* NULL: a step runs its nodes at one go */
    char err[1024];       /* the last failure */
} zn_session;

/* zn_compile from the optimized forward graph g to the backend: the training graph (autodiff and
 * the training passes) or the inference graph (opts->no_pass skips some passes), planned for
 * batch and allocated on the backend. Refuses, before allocating, a plan larger than the
 * available memory. s->err says why it failed (zn_session_free frees what was made). */
bool zn_session_init(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                     const zn_backend_opts *opts, int batch, bool training);
/* zn_session_init with every arena tensor in a place of its own for the whole step
 * (zn_plan_separate), so every node's value can be read after it (runtime/parity.h). */
bool zn_session_init_separate(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                              const zn_backend_opts *opts, int batch, bool training);
void zn_session_free(zn_session *s);
/* Among g's first n nodes: the image input (the first unlabelled INPUT), the label input (the
 * last labelled one), -1 where there is none, and the XENT heads in order (at most 64): what
 * zn_session_init finds in its graph's forward nodes. */
void zn_session_find_io(const zn_graph *g, int n, int *image, int *label, int heads[64], int *n_heads);

/* Fills parameters as the model says (uniform +-1/sqrt(fan_in), ones, zeros) from seed. */
bool zn_session_init_params(zn_session *s, uint64_t seed);
/* Feeds batch images [batch, C, H, W] (normalised floats) and labels [batch]. */
bool zn_session_feed(zn_session *s, const float *images, const int32_t *labels);
/* Forward only (batch norm with running statistics unless training is true). */
bool zn_session_forward(zn_session *s, bool training);
/* Nodes first..last only (node order), batch norm in training or inference mode: what a
 * profile times one node at a time. */
bool zn_session_compute(zn_session *s, int first, int last, bool training);
/* Waits until the backend has done the work it was given (a device runs asynchronously). */
bool zn_session_synchronize(zn_session *s);
/* Forward, backward (paused at grad_hook's points) and one optimizer step; dropout masks are
 * keyed by (seed, step->t). */
bool zn_session_train_step(zn_session *s, const zn_optim_step *step);
/* The weighted sum of the head losses of the last run, each summed over the batch (a head with
 * reduction "mean" counts batch times), so that a sum of these over an epoch divided by the
 * examples seen is the loss per example whatever the heads' reductions. */
bool zn_session_loss(zn_session *s, double *total);
/* Logits [batch, K] of head h (an index into heads[]) into out. */
bool zn_session_logits(zn_session *s, int h, float *out);

/* Every PARAM and STATE tensor, in node order, as one host array (for checkpoints and tests). */
size_t zn_session_param_floats(const zn_session *s);
/* Loads checkpoint path into s (with optim, the optimizer state too), checking that it was saved
 * from this model (fingerprint, parameter count; a version-1 file by its old fingerprint); m gets
 * its header. false with the reason in err. */
bool zn_session_restore(zn_session *s, const char *path, bool optim, zn_ckpt_meta *m, char *err, size_t len);
bool zn_session_get_params(zn_session *s, float *out);
bool zn_session_set_params(zn_session *s, const float *in);

/* Forward multiply-adds per example, and those of a whole training step (forward + backward). */
int64_t zn_session_macs(const zn_session *s, bool training);

#endif
