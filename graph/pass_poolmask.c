/* pass_poolmask.c: a training pass for a relu whose output is max-pooled. The backward pass routes
 * the pooled gradient D to each window's arg-max and then masks it by relu: relu_bwd(y,
 * maxpool_bwd(y, D)). The routed value sits at the window's maximum, which is the pool's output p,
 * so masking first gives the same bits: maxpool_bwd(y, relu_bwd(p, D)). The mask then runs on the
 * pooled size, and the pool's backward becomes the last reader of y (it may write over it). */
#include "graph/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

/* The forward pool that made D for pool backward node pb: its op, its input, attributes, shape. */
static int find_pool(const zn_graph *g, int pb)
{
    const zn_node *b = &g->nodes[pb];
    zn_op op = b->op == ZN_OP_MAXPOOL_BWD ? ZN_OP_MAXPOOL : ZN_OP_GLOBAL_MAXPOOL;
    const zn_shape *d = &g->nodes[b->src[1]].shape;
    for (int i = 0; i < g->n_nodes && !(g->nodes[i].flags & ZN_NODE_BACKWARD); i++) {
        const zn_node *f = &g->nodes[i];
        if (f->op == op && f->src[0] == b->src[0] && zn_shape_eq(&f->shape, d) &&
            !memcmp(f->attr.kernel, b->attr.kernel, sizeof f->attr.kernel) &&
            !memcmp(f->attr.stride, b->attr.stride, sizeof f->attr.stride) &&
            !memcmp(f->attr.pad, b->attr.pad, sizeof f->attr.pad))
            return i;
    }
    return -1;
}

/* relu_bwd node r as (y, pool backward pb, forward pool p) when it has the form; pb has no other
 * reader. Returns p, or -1. */
static int match(const zn_graph *g, const int *uses, int r, int *pb)
{
    const zn_node *n = &g->nodes[r];
    if (n->op != ZN_OP_RELU_BWD || g->nodes[n->src[0]].op != ZN_OP_RELU) return -1;
    *pb = n->src[1];
    const zn_node *b = &g->nodes[*pb];
    if ((b->op != ZN_OP_MAXPOOL_BWD && b->op != ZN_OP_GLOBAL_MAXPOOL_BWD) || b->src[0] != n->src[0] || uses[*pb] != 1)
        return -1;
    return find_pool(g, *pb);
}

/* The pass on g itself (zn_pass_poolmask runs it on a copy). */
static bool poolmask(zn_graph *g, char *err, size_t errlen)
{
    const int n = g->n_nodes;
    int *uses = zn_calloc(n, sizeof *uses), *mask = zn_calloc(n, sizeof *mask);
    bool *drop = zn_calloc(n, sizeof *drop);
    zn_pass_count_uses(g, uses);
    int rewritten = 0;
    for (int r = 0; r < n; r++) {
        int pb, p = match(g, uses, r, &pb);
        mask[r] = -1;
        if (p < 0) continue;
        /* mask = relu_bwd(p, D), named and placed as the relu's backward; r becomes the pool's
         * backward reading it, keeping its name (it holds the same gradient) and taking the pool's
         * span */
        const zn_node b = g->nodes[pb], rn = g->nodes[r];
        size_t len = strlen(rn.name) + sizeof " (pooled)";
        char *name = zn_calloc(len, 1);
        snprintf(name, len, "%s (pooled)", rn.name);
        mask[r] = zn_graph_add(g, ZN_OP_RELU_BWD, (const int[]){p, b.src[1]}, 2, &rn.attr, name, rn.block, rn.span);
        free(name);
        g->nodes[mask[r]].shape = g->nodes[b.src[1]].shape;
        g->nodes[mask[r]].flags = rn.flags;
        zn_node *nr = &g->nodes[r];
        nr->op = b.op;
        nr->attr = b.attr;
        nr->span = b.span;
        nr->block = b.block;
        nr->src[1] = mask[r];
        drop[pb] = true;
        rewritten++;
    }
    int *order = zn_calloc(g->n_nodes, sizeof *order), len = 0;
    for (int i = 0; i < n; i++) {
        if (mask[i] >= 0) order[len++] = mask[i];
        if (!drop[i]) order[len++] = i;
    }
    bool ok = !rewritten || zn_pass_rebuild_order(g, order, len, err, errlen);
    free(order), free(drop), free(mask), free(uses);
    return ok;
}

bool zn_pass_poolmask(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, poolmask, err, errlen);
}
