/* pass_stitch.c: stitch fusion. The Z-convolution's stitch written the naive way, per input k
 * "resample (or a max/avg pool whose kernel is its stride, unpadded, tiling the input exactly,
 * or nothing) -> transpose [1, 0, 2]", then "concat on axis 1" of those [H, C, W] maps, becomes
 * one stitch node that reads the un-resampled inputs once and materialises nothing in between.
 * It fuses only what it can prove equivalent: every intermediate feeds only the next step of
 * the chain (a resampled map used elsewhere must exist anyway, so the chain stays), and the
 * inputs that shrink all shrink by the same mode. */
#include "graph/passes.h"
#include "graph/util.h"

#include <stdlib.h>
#include <string.h>

/* One input of a concat that fuses: the tensor the stitch reads, the nodes it replaces. */
typedef struct {
    int x;             /* the stitch's source */
    int transpose;     /* the transpose node, dropped */
    int resample;      /* the resample or pool node, dropped; -1 when x is used as it is */
    zn_resample_mode mode;
    bool shrinks;      /* x is larger than the target along some axis, reduced by mode */
} chain;

static bool is_swap(const zn_node *n)
{
    return n->op == ZN_OP_TRANSPOSE && n->shape.rank == 3 && n->attr.perm[0] == 1 && n->attr.perm[1] == 0 &&
           n->attr.perm[2] == 2;
}

/* A pool that is a resample by its kernel: stride = kernel, no pad, windows tiling x exactly. */
static bool pool_is_resample(const zn_graph *g, const zn_node *n)
{
    if (n->op != ZN_OP_MAXPOOL && n->op != ZN_OP_AVGPOOL) return false;
    const zn_shape *x = &g->nodes[n->src[0]].shape;
    for (int i = 0; i < 2; i++)
        if (n->attr.kernel[i] != n->attr.stride[i] || n->attr.pad[i] != 0 ||
            x->dim[1 + i] != n->shape.dim[1 + i] * n->attr.kernel[i])
            return false;
    return true;
}

/* Input k of concat c as a chain; false when it does not have the fusable form. */
static bool take_chain(const zn_graph *g, const int *uses, int t, chain *ch)
{
    const zn_node *tn = &g->nodes[t];
    if (!is_swap(tn) || uses[t] != 1) return false;
    int u = tn->src[0];
    const zn_node *un = &g->nodes[u];
    *ch = (chain){.x = u, .transpose = t, .resample = -1};
    if (un->op == ZN_OP_RESAMPLE) {
        if (uses[u] != 1) return false; /* materialised for another user: leave the pattern alone */
        ch->mode = un->attr.mode;
    } else if (pool_is_resample(g, un) && uses[u] == 1) {
        ch->mode = un->op == ZN_OP_MAXPOOL ? ZN_RESAMPLE_MAX : ZN_RESAMPLE_AVG;
    } else {
        return true; /* any other tensor already has the target size (the concat checked it) */
    }
    ch->resample = u;
    ch->x = un->src[0];
    const zn_shape *x = &g->nodes[ch->x].shape;
    ch->shrinks = x->dim[1] > un->shape.dim[1] || x->dim[2] > un->shape.dim[2];
    return true;
}

/* Tries concat node c (a zn_pass_fuse_fn): on success edits it into a stitch reading srcbuf and
 * clears keep[] for the nodes it replaces. ctx: room for a chain per source of the widest node. */
static bool fuse(zn_graph *g, const int *uses, int c, bool *keep, int *srcbuf, void *ctx)
{
    chain *chains = ctx;
    zn_node *cn = &g->nodes[c];
    if (cn->op != ZN_OP_CONCAT || cn->attr.axis != 1 || cn->shape.rank != 3 || !cn->shape.batched) return false;
    bool have_mode = false;
    zn_resample_mode mode = ZN_RESAMPLE_MAX;
    for (int k = 0; k < cn->n_src; k++) {
        chain *ch = &chains[k];
        if (!take_chain(g, uses, cn->src[k], ch)) return false;
        if (!ch->shrinks) continue;
        if (have_mode && ch->mode != mode) return false; /* one stitch shrinks by one mode */
        mode = ch->mode;
        have_mode = true;
    }
    zn_attrs a = zn_attrs_default();
    a.size[0] = (int)cn->shape.dim[0];
    a.size[1] = (int)cn->shape.dim[2];
    a.mode = mode;
    for (int k = 0; k < cn->n_src; k++) {
        srcbuf[k] = chains[k].x;
        keep[chains[k].transpose] = false;
        if (chains[k].resample >= 0) keep[chains[k].resample] = false;
    }
    cn->op = ZN_OP_STITCH;
    cn->attr = a;
    cn->src = srcbuf; /* the name, block path, span and flags stay the concat's */
    return true;
}

/* The pass on g itself (zn_pass_stitch runs it on a copy: the fusions edit nodes in place, and a
 * failed rebuild must leave the graph as it was). */
static bool stitch(zn_graph *g, char *err, size_t errlen)
{
    int max_src = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].n_src > max_src) max_src = g->nodes[i].n_src;
    chain *chains = zn_malloc((size_t)max_src * sizeof *chains);
    bool ok = zn_pass_fuse(g, fuse, 0, chains, err, errlen);
    free(chains);
    return ok;
}

bool zn_pass_stitch(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, stitch, err, errlen);
}
