/* budget.h: training within a memory budget. From the training graph right before the recompute
 * pass, the planner makes a ladder of choices (nothing; the cheap segments after stitches and
 * concats; those after any kept node too, with the k convs they reach that cost the fewest
 * multiply-adds per freed value; the same in split segments, pooling recomputed; and those with
 * a copy per reader), plans each exactly as a session would (recompute, sink, zn_plan_make with
 * the backend's scratch), and takes, of the rungs whose whole plan fits, the one recomputing the
 * fewest multiply-adds. runtime/compile.c climbs a second ladder on the graph with the z-towers
 * fused (a memory lever that recomputes their convs) and takes the better of the two.
 * docs/memory.md says why. */
#ifndef ZN_BUDGET_H
#define ZN_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/graph.h"
#include "graph/plan.h"

typedef struct {
    int batch;
    zn_workspace_fn ws; /* the backend's scratch per node (NULL: none) */
    void *ws_ctx;
    bool recompute;     /* the recompute pass may run (else only rung -1 exists) */
    bool sink;          /* the sink pass runs after it, as in zn_passes_finish */
    bool levers;        /* the graph is the one with the memory-lever passes run (the z-towers
                           fused, graph/passes.h), which cost base_extra_macs per example more
                           than the graph without them: every rung counts them as recomputed */
    int64_t base_extra_macs;
} zn_budget_opts;

/* One rung of the ladder, planned. */
typedef struct {
    int rung;           /* -1: nothing recomputed; 0: the cheap segments after stitches and concats
                           (no multiply-adds); 1: and after any kept node; 1 + k: and the first k convs */
    size_t total;       /* zn_plan_total: arena, parameters and state, gradients, optimizer state, scratch */
    int64_t extra_macs; /* multiply-adds per example the recomputed copies add */
    int convs;          /* how many candidate convs it may recompute */
    bool split;         /* Chen et al.'s segments (zn_recompute_choice.split) */
    bool per_reader;    /* and a copy per reader (zn_recompute_choice.per_reader) */
    bool levers;        /* on the graph with the memory levers (zn_budget_opts.levers) */
} zn_budget_point;

typedef struct {
    zn_graph base;    /* the training graph before the recompute pass */
    zn_budget_opts o;
    int *convs;       /* candidate convs in the order they are added */
    int n_convs;
} zn_budget;

/* The training pass the budget starts after: the one before recompute (graph/passes.c). */
const char *zn_budget_start_pass(void);

void zn_budget_init(zn_budget *b, const zn_graph *g, const zn_budget_opts *o);
void zn_budget_free(zn_budget *b);

/* Rungs -1 .. zn_budget_top(b): -1 and 0, then three families of n_convs + 1 rungs each, k = 0 ..
 * n_convs convs recomputed: unsplit segments, split ones (Chen et al.'s, pooling recomputed) and
 * split ones with a copy per reader. */
int zn_budget_top(const zn_budget *b);

/* The graph and the plan of one rung into g and p (both initialised here), and its figures. */
bool zn_budget_make(const zn_budget *b, int rung, zn_graph *g, zn_plan *p, zn_budget_point *pt, char *err,
                    size_t errlen);

/* Of the rungs whose plan takes at most budget bytes, the one with the fewest extra multiply-adds
 * (the lowest on a tie), its graph and plan into g and p. false: none fits (err gives the smallest
 * total reached, what dominates it and the floor; *no_fit set) or a pass or the plan failed
 * (*no_fit clear). */
bool zn_budget_fit(const zn_budget *b, size_t budget, zn_graph *g, zn_plan *p, zn_budget_point *pt,
                   bool *no_fit, char *err, size_t errlen);

/* Whether rung pt is better than best for budget: one that fits beats one that does not; of two
 * that fit, the fewer recomputed multiply-adds; of two that do not, the smaller total (a tie keeps
 * best). best->rung < -1: none yet. */
bool zn_budget_better(const zn_budget_point *pt, const zn_budget_point *best, size_t budget);

/* The least any rung of the ladder can take, for the plan p of graph g of one of its rungs: the
 * fixed parts (parameters and state, gradients, optimizer state, scratch) and the most arena bytes
 * one node needs live at once (its arena sources and output; an in-place node shares its output
 * with a source of its size); *node gets that node. Every rung runs every node of the graph the
 * ladder starts from (copies only add nodes, of the same sizes), so no rung goes below it. */
size_t zn_budget_floor(const zn_graph *g, const zn_plan *p, int *node);

/* What a rung recomputes, in words ("nothing", "the cheap segments after concats and stitches", ...). */
const char *zn_budget_describe(const zn_budget_point *pt, char *buf, size_t len);

/* A size such as 1073741824, 512M, 1G, 1.5GiB or 64KB (K, M, G and T are powers of 1024, with or
 * without "iB" or "B") into *out (> 0). false for anything else. */
bool zn_budget_parse(const char *s, size_t *out);

#endif
