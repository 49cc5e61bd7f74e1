/* plan.h: the memory plan of a graph for one batch size. Every tensor gets a region and a byte
 * offset in it: activations and temporary gradients share one arena, reused once a tensor is
 * dead (liveness from first definition to last use, in node order); parameters and batch-norm
 * state, final parameter gradients and kernel scratch each have a region of their own. An
 * element-wise op whose source dies at it may write in place, into that source's bytes. Tensors
 * carry plan offsets, never pointers, so one plan drives every backend. */
#ifndef ZN_PLAN_H
#define ZN_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "graph/graph.h"

typedef enum {
    ZN_REGION_ARENA,  /* activations, temporary gradients: reused */
    ZN_REGION_PARAMS, /* PARAM and STATE nodes: persistent across steps */
    ZN_REGION_GRADS,  /* GRAD nodes (each parameter's final gradient), read by the optimizer */
    ZN_REGION_OPTIM,  /* optimizer state: two floats per PARAMS float (momentum; Adam's m and v),
                         the first at the parameter's own offset, the second one region later;
                         empty in a plan without GRAD nodes (inference) */
    ZN_REGION_COUNT
} zn_region;

/* Scratch bytes a backend's kernel needs for node id at this batch (0 if none). */
typedef size_t (*zn_workspace_fn)(void *ctx, const zn_graph *g, int id, int batch);

typedef struct {
    int batch;
    int n_nodes;
    zn_region *region;  /* per node */
    size_t *offset;     /* per node: byte offset in its region (64-byte aligned) */
    size_t *bytes;      /* per node: bytes of its tensor at this batch */
    int *first, *last;  /* per node: index of the defining and of the last reading node */
    int *alias;         /* per node: the source whose bytes it overwrites in place, or -1 */
    size_t region_bytes[ZN_REGION_COUNT];
    size_t workspace_bytes; /* one scratch buffer, the largest any node needs */
    size_t naive_bytes;     /* what the arena would take without reuse (sum of its tensors) */
} zn_plan;

/* Plans g for batch. Tensors read by the caller after compute (losses, head logits, GRADs) stay
 * live to the end. A relu, scale, add or relu backward writes in place (alias) over a source that
 * is an arena tensor of its byte size, not an INPUT, not kept to the end, whose last reader it
 * is; the two then share one placement, live for the union of their lifetimes. ws may be NULL
 * (no scratch). false with a message when a size overflows. */
bool zn_plan_make(zn_plan *p, const zn_graph *g, int batch, zn_workspace_fn ws, void *ws_ctx,
                  char *err, size_t errlen);
void zn_plan_free(zn_plan *p);

/* Gives every arena tensor a place of its own, in node order, live for the whole step: no reuse
 * and no in-place writes (alias -1), so every node's value can still be read after compute
 * (znet check --backends). The arena then takes naive_bytes. */
void zn_plan_separate(zn_plan *p);

/* The peak over the steps (node indices) of the arena bytes live at once, an in-place chain
 * counted once (graph/plan_live.c): the least any placement could take. *step (may be NULL) gets
 * the step; until (may be NULL, n_nodes entries) gets, for each tensor holding bytes there (the
 * first of each in-place chain), the last step it holds them, and -1 for every other node. */
size_t zn_plan_live_peak(const zn_plan *p, int *step, int *until);

/* Total bytes of every region plus the workspace. */
size_t zn_plan_total(const zn_plan *p);

/* Checks the plan's invariant: no two arena tensors live at the same time overlap, except a node
 * and the source it aliases under the rule of zn_plan_make (same offset and size, the source's
 * last reader), and every tensor fits in its region. false with the first offending pair in err. */
bool zn_plan_verify(const zn_plan *p, const zn_graph *g, char *err, size_t errlen);

#endif
