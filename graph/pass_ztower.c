/* pass_ztower.c: z-tower fusion. The Z-convolution's one-layer tower with global max pooling,
 * "stitch -> conv2d (no bias, one group) -> batchnorm -> relu -> global_maxpool", becomes one
 * ztower node that runs the batch in slices, so neither the stitched tensor nor the conv's
 * output ever exists whole: at width 64 each is 112 MiB at batch 512, and the backward pass held
 * two of them at every step of the tower (docs/passes.md). Only chains whose every intermediate
 * has no other reader fuse. The node keeps the pool's name, block and span. */
#include "graph/passes.h"

/* The chain ending at global max pool p, outermost first: relu, batch norm, conv, stitch;
 * false unless each is the one reader of the next and of the fusable kind. */
static bool take_chain(const zn_graph *g, const int *uses, int p, int chain[4])
{
    static const zn_op want[4] = {ZN_OP_RELU, ZN_OP_BATCHNORM, ZN_OP_CONV2D, ZN_OP_STITCH};
    if (g->nodes[p].op != ZN_OP_GLOBAL_MAXPOOL) return false;
    int at = p;
    for (int i = 0; i < 4; i++) {
        at = g->nodes[at].src[0];
        if (g->nodes[at].op != want[i] || uses[at] != 1) return false;
        chain[i] = at;
    }
    const zn_node *conv = &g->nodes[chain[2]];
    return conv->n_src == 2 && conv->attr.groups == 1;
}

/* Edits global max pool p, when it ends a chain that fuses, into the ztower of that chain (a
 * zn_pass_fuse_fn), its sources in srcbuf (room for the stitch's inputs plus 5), and clears
 * keep[] for the chain. */
static bool fuse(zn_graph *g, const int *uses, int p, bool *keep, int *srcbuf, void *ctx)
{
    (void)ctx;
    int chain[4];
    if (!take_chain(g, uses, p, chain)) return false;
    const zn_node *bn = &g->nodes[chain[1]], *conv = &g->nodes[chain[2]];
    const zn_node *st = &g->nodes[chain[3]];
    zn_attrs a = zn_attrs_default();
    for (int i = 0; i < 2; i++) {
        a.size[i] = st->attr.size[i];
        a.kernel[i] = conv->attr.kernel[i];
        a.stride[i] = conv->attr.stride[i];
        a.pad[i] = conv->attr.pad[i];
        a.dilation[i] = conv->attr.dilation[i];
    }
    a.mode = st->attr.mode;
    a.eps = bn->attr.eps;
    a.momentum = bn->attr.momentum;
    int n = 0;
    for (int k = 0; k < st->n_src; k++) srcbuf[n++] = st->src[k];
    srcbuf[n++] = conv->src[1];
    for (int k = 1; k < 5; k++) srcbuf[n++] = bn->src[k];
    for (int k = 1; k < 5; k++) /* the running statistics are now updated here */
        if (g->nodes[bn->src[k]].state_of == chain[1]) g->nodes[bn->src[k]].state_of = p;
    for (int i = 0; i < 4; i++) keep[chain[i]] = false;
    zn_node *pn = &g->nodes[p];
    pn->op = ZN_OP_ZTOWER;
    pn->attr = a;
    pn->src = srcbuf;
    pn->n_src = n;
    return true;
}

/* The pass on g itself (zn_pass_ztower runs it on a copy). */
static bool ztower(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_fuse(g, fuse, 5, NULL, err, errlen);
}

bool zn_pass_ztower(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, ztower, err, errlen);
}
