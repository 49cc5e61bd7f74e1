/* inspect.h: views of a graph for people: Graphviz DOT and a text IR dump (dot.c), and a
 * darknet-style per-layer summary with parameter, cost and activation-memory totals
 * (summary.c). All of them expect a graph whose shapes have been inferred. */
#ifndef ZN_INSPECT_H
#define ZN_INSPECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graph/graph.h"

typedef struct {
    bool show_params; /* draw PARAM nodes (parameters and state) and their edges */
    int depth;        /* > 0: each block call this deep (1: the model's own calls) drawn as one
                       * node, its forward and its backward nodes apart; 0: every node */
} zn_dot_opts;

/* DOT for `dot -Tsvg`: one node per graph node (name, op, output shape), a nested cluster per
 * block call ("b1.h.cbr" inside "b1 (layer)"), inputs, loss heads and backward nodes styled
 * apart; a call at opts->depth one node with the shapes of the tensors that leave it; edges
 * unlabelled (the shape is on the node that makes the tensor); parameters as opts says. */
void zn_graph_write_dot_opts(const zn_graph *g, FILE *f, const zn_dot_opts *opts);

/* One line per node: "%id = op(%src, ...) name shape attrs flags  # file:line". */
void zn_graph_write_text(const zn_graph *g, FILE *f);

/* Per forward layer (every node but PARAMs and backward nodes): name, op, output shape,
 * trainable parameters it owns (a shared parameter counts at its first user) and multiply-adds
 * per example; then totals. batch > 0 adds the activation memory of a batch that size. */
void zn_graph_write_summary(const zn_graph *g, FILE *f, int batch);

/* Trainable parameters: elements of every PARAM node flagged ZN_NODE_PARAM. */
int64_t zn_graph_param_count(const zn_graph *g);
/* Forward multiply-adds per example (zn_op_info.macs over the non-backward nodes). */
int64_t zn_graph_macs(const zn_graph *g);

/* Multiply-adds per example of nodes [0, end) of g, backward ones included: a training step's
 * (end = g->n_nodes), or its forward part's. */
int64_t zn_graph_step_macs(const zn_graph *g, int end);

/* Where the user wrote node n, "models/x.znet:12:3" (line and column left out when unknown,
 * "<built-in>" without a file), into buf; returns buf (format.c). */
const char *zn_node_where(const zn_node *n, char *buf, size_t len);
/* 6573120 as "6,573,120". */
const char *zn_format_count(int64_t v, char *buf, size_t len);
/* 4718592 as "4.5 MiB". */
const char *zn_format_bytes(size_t bytes, char *buf, size_t len);

#endif
