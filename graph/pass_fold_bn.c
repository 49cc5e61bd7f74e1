/* pass_fold_bn.c: batch norm folded into the convolution before it, for inference graphs only.
 * conv(x, w[, b]) -> batchnorm(gamma, beta, mean, var) becomes conv(x, w', b') with
 * w' = bn_fold_weight(w, gamma, var) and b' = bn_fold_bias(gamma, beta, mean, var[, b]): one pass
 * over the activations fewer and no batch-norm output to store. The fold nodes are recomputed from
 * the parameters on every forward (they are weight-sized), so checkpoints stay as they are. */
#include "graph/util.h"
#include "graph/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether bn is a batch norm over the output of a conv that nothing else reads. */
static bool foldable(const zn_graph *g, int bn, const int *uses)
{
    const zn_node *b = &g->nodes[bn];
    if (b->op != ZN_OP_BATCHNORM || (b->flags & ZN_NODE_BACKWARD)) return false;
    const zn_node *c = &g->nodes[b->src[0]];
    return c->op == ZN_OP_CONV2D && uses[b->src[0]] == 1 && !(c->flags & ZN_NODE_LOSS);
}

/* What one fold rewrites: the conv's new sources and name ("b1.conv" + "b1.bn" ->
 * "b1.conv+bn": the fused node keeps both of the user's names and the conv's span). */
typedef struct {
    int src[3];
    char name[256];
} fold;

/* Appends the two fold nodes of conv -> bn to g and points the conv at them. */
static void fold_into_conv(zn_graph *g, int bn, fold *f)
{
    const zn_node b = g->nodes[bn];
    const int conv = b.src[0];
    char name[256];
    snprintf(name, sizeof name, "%s.fold_weight", b.name);
    const int ws = zn_graph_add(g, ZN_OP_BN_FOLD_WEIGHT,
                                (const int[]){g->nodes[conv].src[1], b.src[1], b.src[4]}, 3,
                                &b.attr, name, b.block, b.span);
    int bias_src[5] = {b.src[1], b.src[2], b.src[3], b.src[4], 0}, n_bias = 4;
    if (g->nodes[conv].n_src == 3) bias_src[n_bias++] = g->nodes[conv].src[2];
    snprintf(name, sizeof name, "%s.fold_bias", b.name);
    const int bs = zn_graph_add(g, ZN_OP_BN_FOLD_BIAS, bias_src, n_bias, &b.attr, name, b.block,
                                b.span);
    /* running statistics are read, no longer updated: the reader keeps them alive for dce */
    g->nodes[b.src[3]].state_of = g->nodes[b.src[4]].state_of = bs;
    zn_node *c = &g->nodes[conv];
    const char *dot = strrchr(b.name, '.');
    snprintf(f->name, sizeof f->name, "%s+%s", c->name, dot ? dot + 1 : b.name);
    f->src[0] = c->src[0];
    f->src[1] = ws;
    f->src[2] = bs;
    c->src = f->src;
    c->n_src = 3;
    c->name = f->name;
}

/* The pass on g itself (zn_pass_fold_bn runs it on a copy: the folds edit the convs in place, and
 * a failed rebuild must leave the graph as it was). */
static bool fold_bn(zn_graph *g, char *err, size_t errlen)
{
    const int n = g->n_nodes;
    int *uses = zn_calloc((size_t)n, sizeof *uses);
    int *redirect = zn_calloc((size_t)n, sizeof *redirect);
    zn_pass_count_uses(g, uses);
    int n_fold = 0;
    for (int i = 0; i < n; i++) {
        redirect[i] = i;
        if (foldable(g, i, uses)) redirect[i] = g->nodes[i].src[0], n_fold++;
    }
    fold *folds = zn_calloc((size_t)n_fold + 1, sizeof *folds);
    int *folded_at = zn_calloc((size_t)n, sizeof *folded_at); /* bn -> its weight fold + 1 */
    bool *moved = zn_calloc((size_t)n, sizeof *moved);           /* convs that move */
    int f = 0;
    for (int bn = 0; bn < n; bn++)
        if (redirect[bn] != bn) {
            moved[redirect[bn]] = true;
            folded_at[bn] = g->n_nodes + 1; /* the weight fold's id + 1; the bias fold's id */
            fold_into_conv(g, bn, &folds[f++]);
        }
    /* The readers of each folded batch norm read the conv, which moves to the batch norm's place
     * (after the batch norm's parameters) behind its two fold nodes. */
    int *order = zn_calloc((size_t)g->n_nodes, sizeof *order), n_order = 0;
    for (int i = 0; i < n; i++) {
        zn_node *node = &g->nodes[i];
        for (int k = 0; k < node->n_src; k++)
            if (node->src[k] < n) node->src[k] = redirect[node->src[k]];
        if (folded_at[i]) {
            order[n_order++] = folded_at[i] - 1;
            order[n_order++] = folded_at[i];
            order[n_order++] = redirect[i];
        } else if (!moved[i]) {
            order[n_order++] = i;
        }
    }
    for (int m = 0; m < g->n_metrics; m++)
        for (int k = 0; k < g->metrics[m].n_heads; k++)
            g->metrics[m].heads[k] = redirect[g->metrics[m].heads[k]];
    bool ok = zn_pass_rebuild_order(g, order, n_order, err, errlen);
    free(order);
    free(folded_at);
    free(moved);
    free(folds);
    free(redirect);
    free(uses);
    return ok;
}

bool zn_pass_fold_bn(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, fold_bn, err, errlen);
}
