/* autodiff.c: the reverse walk. Marks the tensors that have a trainable parameter upstream, seeds
 * every loss head, visits forward nodes from last to first calling their op's gradient rule, and
 * sums the gradients of a tensor that feeds several consumers with ADD nodes. Rules live in
 * grad_rules.c; this file owns only the walk and the parameters' final GRAD nodes. */
#include "graph/util.h"
#include "graph/autodiff.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/grad_rules.h"

typedef struct {
    zn_graph *g;
    int *grad; /* per forward node: the node holding d loss / d its output so far; -1: none */
    bool *own; /* per forward node: grad was built for it alone, not handed through from dy */
} walk;

static bool is_trainable(const zn_node *n)
{
    return n->op == ZN_OP_PARAM && (n->flags & ZN_NODE_PARAM);
}

/* Adds gradient d to tensor t; fresh: d was built by the rule that produced it, for t. */
static void accumulate(walk *w, int t, int d, bool fresh)
{
    if (w->grad[t] < 0) {
        w->grad[t] = d;
        w->own[t] = fresh;
        return;
    }
    const zn_attrs a = zn_attrs_default();
    w->grad[t] = zn_grad_node(w->g, t, t, ZN_OP_ADD, (const int[]){w->grad[t], d}, 2, &a);
    w->own[t] = true;
}

/* need[id]: node id is a trainable parameter or has one upstream through differentiable ops. */
static void mark_needs_grad(const zn_graph *g, bool *need)
{
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        need[id] = is_trainable(n);
        for (int k = 0; zn_ops[n->op].grad && k < n->n_src && !need[id]; k++)
            need[id] = need[n->src[k]];
    }
}

/* Visits forward nodes last to first; a node's gradient is complete when visited, because all
 * its consumers come after it. */
static void walk_backward(walk *w, int n_fwd, const bool *need, bool *want, int *dsrc)
{
    zn_graph *g = w->g;
    for (int id = n_fwd - 1; id >= 0; id--) {
        const zn_grad_rule rule = zn_ops[g->nodes[id].op].grad;
        const bool seed = g->nodes[id].flags & ZN_NODE_LOSS;
        if (!rule || !need[id] || (!seed && w->grad[id] < 0)) continue;
        const int *src = g->nodes[id].src; /* pool storage: stays put as nodes are added */
        const int n_src = g->nodes[id].n_src;
        for (int k = 0; k < n_src; k++) {
            want[k] = need[src[k]];
            dsrc[k] = -1;
        }
        const int before = g->n_nodes;
        rule(g, id, seed ? -1 : w->grad[id], want, dsrc);
        for (int k = 0; k < n_src; k++)
            if (dsrc[k] >= 0) accumulate(w, src[k], dsrc[k], dsrc[k] >= before);
    }
}

/* Flags each parameter's final gradient; one handed through unchanged (the gradient of an add's
 * output too) gets a copy of its own, so the optimizer's GRAD nodes hold one parameter each. */
static void flag_param_grads(walk *w, int n_fwd)
{
    zn_graph *g = w->g;
    zn_attrs copy = zn_attrs_default(); /* scale 1 */
    for (int p = 0; p < n_fwd; p++) {
        if (!is_trainable(&g->nodes[p]) || w->grad[p] < 0) continue;
        int d = w->grad[p];
        if (!w->own[p] || (g->nodes[d].flags & ZN_NODE_GRAD))
            d = zn_grad_node(g, p, p, ZN_OP_SCALE, &d, 1, &copy);
        g->nodes[d].flags |= ZN_NODE_GRAD;
        g->nodes[d].grad_of = p;
    }
}

/* Each backward node's shape rule must accept the shape autodiff gave it and agree with it. */
static bool check_shapes(zn_graph *g, int first, char *err, size_t errlen)
{
    for (int id = first; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        const zn_shape preset = n->shape;
        char why[256], a[96], b[96];
        if (!zn_graph_infer(g, id, why, sizeof why))
            return zn_fail(err, errlen, "internal error: autodiff built '%s' as %s: %s", n->name,
                        zn_shape_str(&preset, a, sizeof a), why);
        if (!zn_shape_eq(&preset, &n->shape))
            return zn_fail(err, errlen,
                        "internal error: autodiff built %s '%s' as %s, its shape rule gives %s",
                        zn_ops[n->op].name, n->name, zn_shape_str(&preset, a, sizeof a),
                        zn_shape_str(&n->shape, b, sizeof b));
    }
    return true;
}

bool zn_autodiff(zn_graph *g, char *err, size_t errlen)
{
    const int n_fwd = g->n_nodes;
    int heads = 0, max_src = 0;
    for (int id = 0; id < n_fwd; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->flags & ZN_NODE_BACKWARD)
            return zn_fail(err, errlen, "model '%s' already has backward nodes", g->model_name);
        heads += (n->flags & ZN_NODE_LOSS) != 0;
        if (n->n_src > max_src) max_src = n->n_src;
    }
    if (!heads)
        return zn_fail(err, errlen, "model '%s' has no loss head: nothing to differentiate",
                    g->model_name);
    bool *need = zn_calloc((size_t)n_fwd, sizeof *need);
    bool *want = zn_calloc((size_t)max_src, sizeof *want);
    int *dsrc = zn_calloc((size_t)max_src, sizeof *dsrc);
    walk w = {.g = g, .grad = zn_calloc((size_t)n_fwd, sizeof *w.grad),
              .own = zn_calloc((size_t)n_fwd, sizeof *w.own)};
    for (int id = 0; id < n_fwd; id++) w.grad[id] = -1;
    mark_needs_grad(g, need);
    walk_backward(&w, n_fwd, need, want, dsrc);
    flag_param_grads(&w, n_fwd);
    free(need);
    free(want);
    free(dsrc);
    free(w.grad);
    free(w.own);
    return check_shapes(g, n_fwd, err, errlen);
}
