/* pass_fuse_bn_relu.c: batch norm followed by relu becomes one batchnorm_relu node, whose kernels
 * read x for the statistics and again to write y, and whose backward (two nodes: per-channel
 * coefficients and dx) reads x, y and dy once per pass instead of writing the relu's gradient and
 * reading it three times. It runs on the training graph just before autodiff, where the session's
 * backend is known: the driver keeps its result only when that backend runs the fused op
 * (graph/passes.h, zn_pass.backend). Only a batch norm whose one reader is the relu fuses; the
 * node keeps the relu's name and span and updates the running statistics. */
#include "graph/passes.h"

/* Edits relu node r, when its source is a batch norm read by nothing else, into the fused node (a
 * zn_pass_fuse_fn) with the batch norm's five sources in srcbuf, and clears keep[] for the batch
 * norm. */
static bool fuse(zn_graph *g, const int *uses, int r, bool *keep, int *srcbuf, void *ctx)
{
    (void)ctx;
    if (g->nodes[r].op != ZN_OP_RELU) return false;
    const int b = g->nodes[r].src[0];
    const zn_node *bn = &g->nodes[b];
    if (bn->op != ZN_OP_BATCHNORM || uses[b] != 1 || (bn->flags & ZN_NODE_LOSS)) return false;
    for (int k = 0; k < 5; k++) srcbuf[k] = bn->src[k];
    for (int k = 3; k < 5; k++) /* the running statistics are now updated here */
        if (g->nodes[bn->src[k]].state_of == b) g->nodes[bn->src[k]].state_of = r;
    zn_node *n = &g->nodes[r];
    n->op = ZN_OP_BATCHNORM_RELU;
    n->attr = g->nodes[b].attr;
    n->src = srcbuf;
    n->n_src = 5;
    keep[b] = false;
    return true;
}

/* The pass on g itself (zn_pass_fuse_bn_relu runs it on a copy). */
static bool fuse_bn_relu(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_fuse(g, fuse, 4, NULL, err, errlen);
}

bool zn_pass_fuse_bn_relu(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, fuse_bn_relu, err, errlen);
}
