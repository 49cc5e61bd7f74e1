/* passes.h: the graph's named passes, run in the fixed order of zn_passes[] at one of three
 * stages: forward passes on every model graph (so the backward pass differentiates the optimized
 * graph), inference passes on graphs that only run inference, and on the training graph autodiff
 * (a row of the table like the rest, which makes the backward pass) and then the training passes.
 * Any optimizer pass may be switched off by name, and the drivers can stop right after any pass
 * (`znet graph --dump-after NAME`). docs/passes.md describes each pass and what it saves. */
#ifndef ZN_PASSES_H
#define ZN_PASSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "graph/graph.h"

/* A pass: rewrites g in place into an equivalent graph (same heads, metrics, parameters in the
 * same order, same values); false with a message in err when it cannot (g is then unchanged).
 * autodiff, the one required row, appends the backward pass instead (graph/autodiff.h). */
typedef bool (*zn_pass_fn)(zn_graph *g, char *err, size_t errlen);

typedef enum {
    ZN_STAGE_FORWARD,   /* every model graph, before autodiff (zn_passes_run) */
    ZN_STAGE_INFERENCE, /* a graph that only runs inference: never one that is differentiated */
    ZN_STAGE_TRAINING,  /* the training graph: fusions for the session's backend, autodiff, then
                           passes that keep the forward nodes first, in order and unchanged (a
                           session runs them alone to evaluate) */
} zn_pass_stage;

typedef struct {
    const char *name; /* what --no-pass and --dump-after take */
    const char *help; /* one line */
    zn_pass_stage stage;
    zn_pass_fn run;
    bool required;    /* not an optimization: --no-pass refuses it (autodiff) */
    bool backend;     /* makes ops a backend may lack: kept only when the driver's accepts (if
                         any) takes every node of the result, else the graph stays as it was */
    bool memory;      /* a memory lever that costs time: runs only when the driver's trace asks
                         for the memory levers (a memory budget that needs them, graph/budget.h) */
} zn_pass;

extern const zn_pass zn_passes[]; /* in the order they run within a stage */
extern const int zn_n_passes;
extern const char *const zn_pass_stage_names[]; /* "forward", "inference", "training" */

/* The pass called name, or NULL. */
const zn_pass *zn_pass_find(const char *name);

/* What the drivers are told besides the skipped names; every field may be 0/NULL. */
typedef struct {
    const char *stop_after; /* the stage's passes after this one (run or skipped) do not run */
    FILE *report;           /* one line per pass: its name and the node count before and after */
    /* whether the backend that will run g runs node id (its supports()); NULL: no backend is
       known, and the backend passes keep what they make */
    bool (*accepts)(void *ctx, const zn_graph *g, int id);
    void *accepts_ctx;
    bool memory_levers; /* run the passes marked memory (else they are off, as if skipped) */
} zn_pass_trace;

/* Whether the passes named in disabled[0..n_disabled) may be skipped: each names a pass that is
 * not required. false with a message naming the first that is not. */
bool zn_passes_check_disabled(const char *const *disabled, int n_disabled, char *err, size_t errlen);

/* Runs every forward pass not named in disabled[0..n_disabled), in order, on the forward graph g.
 * false with a message when a disabled name is unknown or required, when g already has backward
 * nodes, or when a pass fails (g then holds the result of the passes before it). trace may be
 * NULL. */
bool zn_passes_run(zn_graph *g, const char *const *disabled, int n_disabled, const zn_pass_trace *trace,
                   char *err, size_t errlen);

/* Makes the graph a session runs from a forward graph g that zn_passes_run optimized: for
 * training, the training stage (autodiff's backward nodes, then the training passes); for
 * inference, the inference passes. Same disabled names, trace and failures as zn_passes_run. */
bool zn_passes_finish(zn_graph *g, bool training, const char *const *disabled, int n_disabled,
                      const zn_pass_trace *trace, char *err, size_t errlen);

/* For passes. Replaces g by the graph of the nodes order[0..n) in that order (each id at most
 * once; a node left out is dropped), every source, state_of, grad_of and metric head renumbered,
 * and every shape inferred again (a pass may first edit a node's op, attributes and sources in
 * place, or append nodes to g and list them; src may then point at the pass's own array, which
 * it frees after this returns). Sources come before their readers in order. false with the
 * failing node's name and the shape rule's message (g unchanged). */
bool zn_pass_rebuild_order(zn_graph *g, const int *order, int n, char *err, size_t errlen);

/* Runs fn on a copy of g and keeps the copy only when fn succeeds, so that a pass that edits
 * nodes before zn_pass_rebuild_order leaves g unchanged when it fails. */
bool zn_pass_on_copy(zn_graph *g, zn_pass_fn fn, char *err, size_t errlen);

/* zn_pass_rebuild_order of the nodes i with keep[i], in their order. */
bool zn_pass_rebuild(zn_graph *g, const bool *keep, char *err, size_t errlen);

/* A fusion: when node i ends a chain it fuses, edits i in place into the fused node, clears
 * keep[] for the nodes it replaces and returns true. Its new sources go to src, past those of the
 * earlier fusions in one buffer that holds the graph's sources plus zn_pass_fuse's `extra` per
 * node. uses[] is zn_pass_count_uses of the graph before any fusion; ctx is the pass's own. */
typedef bool (*zn_pass_fuse_fn)(zn_graph *g, const int *uses, int i, bool *keep, int *src,
                                void *ctx);

/* For fusion passes: fuse on every node in order, then g rebuilt without the replaced nodes
 * (zn_pass_rebuild; nothing when none fused). Edits nodes in place: run it on a copy. */
bool zn_pass_fuse(zn_graph *g, zn_pass_fuse_fn fuse, int extra, void *ctx, char *err,
                  size_t errlen);

/* Users of every node: sources of other nodes (counted per edge), metric heads, and one more
 * for INPUT and LOSS nodes, which the runtime reads. uses[] has g->n_nodes entries. */
void zn_pass_count_uses(const zn_graph *g, int *uses);

/* The passes (one file each: graph/pass_<name>.c). */
bool zn_pass_dce(zn_graph *g, char *err, size_t errlen);
bool zn_pass_stitch(zn_graph *g, char *err, size_t errlen);
bool zn_pass_ztower(zn_graph *g, char *err, size_t errlen);
bool zn_pass_no_dropout(zn_graph *g, char *err, size_t errlen);
bool zn_pass_fold_bn(zn_graph *g, char *err, size_t errlen);
bool zn_pass_fuse_bn_relu(zn_graph *g, char *err, size_t errlen);
bool zn_pass_poolmask(zn_graph *g, char *err, size_t errlen);
bool zn_pass_recompute(zn_graph *g, char *err, size_t errlen);
bool zn_pass_sink(zn_graph *g, char *err, size_t errlen);

/* The recompute pass as a memory budget chooses it (graph/budget.h). */
typedef struct {
    const bool *convs; /* the convs it may recompute (convs[i] per forward node; NULL: none) */
    bool kept_heads;   /* segments headed by any node with a cheap reader, which is kept (a
                          checkpoint) while the chain after it is recomputed */
    bool split;        /* Chen et al.'s segments: the input of every recomputed conv is kept (the
                          chain split there, each part recomputed when the backward pass reaches
                          it) and pooling (SPLIT ops) is recomputed too (implies kept_heads) */
    bool per_reader;   /* with split: each copy is made from the segment's head right before its
                          own first backward reader, so no copy waits for a later reader (the
                          start of the chain is recomputed once per such reader) */
} zn_recompute_choice;
bool zn_pass_recompute_convs(zn_graph *g, const zn_recompute_choice *choice, char *err, size_t errlen);
/* The convs the recompute pass's segments reach when every conv may be recomputed and every node
 * may head a segment, in node order, into ids (NULL: only counted); returns how many. */
int zn_recompute_candidates(const zn_graph *g, int *ids);

#endif
