/* backend.h: the interface every backend implements (CPU, CUDA): a small vtable over a graph and
 * its memory plan. Tensors are addressed by (region, offset) from the plan; the backend owns the
 * memory. A registry (backend.c) lists the compiled-in backends for --backend NAME. */
#ifndef ZN_BACKEND_H
#define ZN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/graph.h"
#include "graph/plan.h"

typedef struct zn_backend zn_backend;

/* What convolutions and matrix products compute in (--precision); storage, batch norm and the
 * master weights stay float32. Only the CUDA backend offers the 16-bit ones (docs/cuda.md). */
typedef enum { ZN_PRECISION_FP32, ZN_PRECISION_FP16, ZN_PRECISION_BF16 } zn_precision;

typedef struct {
    bool check_numerics; /* stop at the first NaN/Inf a node writes, naming the node */
    bool training;       /* batch norm uses batch statistics and updates running ones */
    int threads;         /* 0: every core */
    zn_precision precision;
    bool deterministic;  /* only algorithms that give the same bits every run (--deterministic) */
    const char *const *no_pass; /* optimizer passes the session skips when it makes its training or */
    int n_no_pass;              /* inference graph (--no-pass; graph/passes.h) */
    /* --sync-bn on several ranks: sums v[0..n) over the ranks, in place (runtime/dist.h), so that
     * training batch norm takes its statistics over the global batch (CPU backend only); NULL:
     * each process its own batch's */
    void (*bn_sync)(double *v, int n);
    size_t memory_budget;       /* bytes its training step may take (0: none; graph/budget.h) */
} zn_backend_opts;

/* One optimizer step over every parameter (ZN_NODE_PARAM) with its GRAD node. */
typedef struct {
    enum { ZN_STEP_SGD, ZN_STEP_ADAM } kind;
    float lr;            /* this step's learning rate */
    float momentum;      /* sgd */
    bool nesterov;       /* sgd */
    float weight_decay;  /* as applied to the gradient: g += weight_decay * w */
    float beta1, beta2, eps; /* adam */
    long t;              /* adam: 1-based step count */
} zn_optim_step;

typedef struct {
    const char *name;
    /* false (with the reason) when the backend cannot run here (no GPU, no driver). */
    bool (*available)(char *why, size_t len);
    zn_backend *(*create)(const zn_backend_opts *opts, char *err, size_t errlen);
    void (*destroy)(zn_backend *be);
    bool (*supports)(zn_backend *be, const zn_graph *g, int id);
    size_t (*workspace_bytes)(zn_backend *be, const zn_graph *g, int id, int batch);
    /* Allocates every region of the plan (and optimizer state for the PARAMS region). */
    bool (*alloc)(zn_backend *be, const zn_plan *p);
    bool (*set)(zn_backend *be, zn_region r, size_t offset, const void *host, size_t bytes);
    bool (*get)(zn_backend *be, zn_region r, size_t offset, void *host, size_t bytes);
    /* Called once per (graph, plan) before compute: per-node setup (algorithm choice...). */
    bool (*prepare)(zn_backend *be, const zn_graph *g, const zn_plan *p);
    /* Runs nodes first..last (inclusive, node order); INPUT and PARAM nodes are skipped. */
    bool (*compute)(zn_backend *be, const zn_graph *g, const zn_plan *p, int first, int last);
    bool (*optimize)(zn_backend *be, const zn_graph *g, const zn_plan *p, const zn_optim_step *s);
    bool (*synchronize)(zn_backend *be);
    /* Switches batch norm between training (batch statistics, running ones updated) and
     * inference (running statistics) for the following compute calls. */
    void (*set_training)(zn_backend *be, bool training);
    /* The key of the random masks (dropout) the following compute calls draw: the run's seed and
     * the step, (0, 0) until set. The same key gives the same masks on every backend. */
    void (*set_rng)(zn_backend *be, uint64_t seed, uint64_t step);
    /* The message of the last failure: names the failed call or the node (name, file:line). */
    const char *(*last_error)(zn_backend *be);
    /* Highest arena byte written since alloc (the measured high-water mark). */
    size_t (*arena_high_water)(zn_backend *be);
    /* Bytes a plan may take on the backend's device (0: unknown); NULL: the host's memory. */
    size_t (*memory_available)(zn_backend *be);
} zn_backend_ops;

/* Callers reach a backend's functions through be->ops, the vtable create() put there: a registry
 * entry that only loads another backend (cuda_loader.c) has just name, available and create. */
struct zn_backend {
    const zn_backend_ops *ops;
};

/* The compiled-in backends, NULL-terminated. */
const zn_backend_ops *const *zn_backends(void);
/* By name; NULL (and a message listing the names) when unknown. */
const zn_backend_ops *zn_backend_find(const char *name, char *err, size_t errlen);

static inline const char *zn_precision_name(zn_precision p)
{
    return p == ZN_PRECISION_FP16 ? "fp16" : p == ZN_PRECISION_BF16 ? "bf16" : "fp32";
}
/* The precision named "fp32", "fp16" or "bf16"; false for another name. */
bool zn_precision_parse(const char *name, zn_precision *out);

extern const zn_backend_ops zn_cpu_backend;
/* The CUDA backend's registry entry (cuda_loader.c): it loads the module libznet_cuda.so on
 * first use, so znet itself never links a CUDA library (docs/cuda.md). */
extern const zn_backend_ops zn_cuda_backend;
/* A symbol of the CUDA module (loading it on first use), or NULL with the reason in err. */
void *zn_cuda_module_symbol(const char *symbol, char *err, size_t errlen);

#endif
