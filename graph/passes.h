/* passes.h: the graph optimizer: named passes, each rewriting a forward graph (before autodiff,
 * so the backward pass differentiates the optimized graph) into an equivalent one, run in the
 * fixed order of zn_passes[]; any may be switched off by name, and the graph after any one can
 * be written out. docs/passes.md describes each pass and what it saves. */
#ifndef ZN_PASSES_H
#define ZN_PASSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "graph/graph.h"

/* A pass: rewrites g in place into an equivalent graph (same heads, metrics, parameters in the
 * same order, same values); false with a message in err when it cannot (g is then unchanged). */
typedef bool (*zn_pass_fn)(zn_graph *g, char *err, size_t errlen);

typedef struct {
    const char *name; /* what --no-pass and --dump-after take */
    const char *help; /* one line */
    zn_pass_fn run;
} zn_pass;

extern const zn_pass zn_passes[]; /* in the order they run */
extern const int zn_n_passes;

/* The pass called name, or NULL. */
const zn_pass *zn_pass_find(const char *name);

typedef enum { ZN_DUMP_TEXT, ZN_DUMP_DOT } zn_dump_format;

/* What zn_passes_run writes as it goes; every field may be 0/NULL. */
typedef struct {
    const char *after;     /* write the graph as it is after this pass (run or skipped) to out */
    zn_dump_format format;
    FILE *out;
    FILE *report;          /* one line per pass: its name and the node count before and after */
} zn_pass_dump;

/* Runs every pass not named in disabled[0..n_disabled), in order, on the forward graph g.
 * false with a message when a disabled name is unknown, when g already has backward nodes, or
 * when a pass fails (g then holds the result of the passes before it). dump may be NULL. */
bool zn_passes_run(zn_graph *g, const char *const *disabled, int n_disabled, const zn_pass_dump *dump,
                   char *err, size_t errlen);

/* For passes. Replaces g by the graph of the nodes i with keep[i], in their order, every source,
 * state_of and metric head renumbered, and every shape inferred again (a pass may first edit a
 * node's op, attributes and sources in place; src may then point at the pass's own array, which
 * it frees after this returns). A kept node must not read a dropped one. false with the failing
 * node's name and the shape rule's message (g unchanged). */
bool zn_pass_rebuild(zn_graph *g, const bool *keep, char *err, size_t errlen);

/* Users of every node: sources of other nodes (counted per edge), metric heads, and one more
 * for INPUT and LOSS nodes, which the runtime reads. uses[] has g->n_nodes entries. */
void zn_pass_count_uses(const zn_graph *g, int *uses);

/* The passes (one file each: graph/pass_<name>.c). */
bool zn_pass_dce(zn_graph *g, char *err, size_t errlen);
bool zn_pass_stitch(zn_graph *g, char *err, size_t errlen);

#endif
