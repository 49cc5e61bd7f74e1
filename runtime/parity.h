/* parity.h: backend parity checking (`znet check --backends A,B`, tests/test_parity.c): one
 * training step (or one forward pass) of a graph on two backends from the same weights and the
 * same random batch, every node's tensor read back from both and compared against a per-op
 * tolerance, naming the first node over it. Written against the backend vtable only, so any two
 * backends compare (cpu with cpu, cpu with cuda). docs/parity.md explains the metric. */
#ifndef ZN_PARITY_H
#define ZN_PARITY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/backend.h"
#include "graph/graph.h"
#include "lang/recipe.h"

typedef struct {
    int batch;
    uint64_t seed;        /* weights (as zn_session_init_params) and the batch derive from it */
    bool training;        /* forward, backward and the optimizer step; false: one forward pass
                             with batch norm in inference mode */
    bool propagate;       /* backend B runs on its own values; false (lockstep): each node runs on
                             B from A's values of its sources, so its difference is its op's own */
    double tolerance;     /* > 0: this tolerance for every tensor instead of the per-op table */
    zn_optim_step step;   /* the optimizer step of a training check */
    zn_backend_opts backend[2]; /* each backend's (training is set from the field above) */
} zn_parity_opts;

/* One compared tensor: a computed node, or a parameter (or batch-norm state) after the step. */
typedef struct {
    int node;
    double diff;      /* max |a - b| over the tensor / the node's scale (docs/parity.md) */
    double tolerance;
} zn_parity_entry;

typedef struct {
    zn_graph graph;          /* the graph that ran (forward and backward nodes) */
    const char *name[2];     /* the two backends */
    zn_parity_opts opts;
    zn_parity_entry *entry;  /* computed nodes in node order, then parameters and state */
    int n_entry;
    int first_fail;          /* index into entry of the first tensor over its tolerance, or -1 */
    int n_fail;
} zn_parity_report;

/* One step of recipe r's optimizer at its peak learning rate (schedules often start at 0), for
 * forward graph g at batch: the step a training check applies. */
zn_optim_step zn_parity_recipe_step(const zn_recipe *r, const zn_graph *g, int batch);

/* The default tolerance of node id of g: its op's from the table in parity.c (a batch-norm
 * state tensor takes its batch norm's; a parameter, its optimizer step's), raised for the
 * convolutions and matrix products when either side computes them in 16 bits. */
double zn_parity_tolerance(const zn_graph *g, int id, zn_precision p);

/* Runs g (a forward graph: autodiff adds the backward pass when training) on backends a and b
 * and fills r. false with a message naming the backend when either fails; r is then empty. */
bool zn_parity_run(const zn_graph *g, const zn_backend_ops *a, const zn_backend_ops *b,
                   const zn_parity_opts *o, zn_parity_report *r, char *err, size_t errlen);
void zn_parity_free(zn_parity_report *r);

/* The table (every tensor with verbose; otherwise those over tolerance and the 10 closest to
 * it) and the verdict: "first difference over tolerance: NAME (OP) at FILE:LINE:COL: D > T" or
 * "every tensor within tolerance: ...". */
void zn_parity_print(const zn_parity_report *r, bool verbose, FILE *f);

#endif
