/* grad_rules.c: the gradient rule of every forward op: which backward nodes carry the gradient
 * of each source, given the gradient dy of the op's output (graph/autodiff.c walks the graph and
 * accumulates). Rules build nothing for sources without want[k]. Node pointers move when a node
 * is added, so rules keep ids, source arrays (pool storage) and copies of attributes only. */
#include "graph/grad_rules.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

int zn_grad_node(zn_graph *g, int fwd, int of, zn_op op, const int *src, int n_src,
                 const zn_attrs *attr)
{
    const zn_attrs a = attr ? *attr : g->nodes[fwd].attr;
    const zn_span span = g->nodes[fwd].span;
    const char *block = g->nodes[fwd].block, *of_name = g->nodes[of].name; /* pool strings */
    size_t len = strlen(of_name) + sizeof ".grad";
    char *name = zn_malloc(len);
    snprintf(name, len, "%s.grad", of_name);
    int id = zn_graph_add(g, op, src, n_src, &a, name, block, span);
    free(name);
    zn_node *n = &g->nodes[id];
    n->shape = g->nodes[of].shape;
    n->flags = ZN_NODE_BACKWARD;
    return id;
}

/* The gradient of source k of forward node id, as op(src) with attr (NULL: the forward's). */
static void emit(zn_graph *g, int id, int k, const bool *want, int *dsrc, zn_op op,
                 const int *src, int n_src, const zn_attrs *attr)
{
    if (want[k]) dsrc[k] = zn_grad_node(g, id, g->nodes[id].src[k], op, src, n_src, attr);
}

/* Ops whose one source's gradient reads the source (or the output) and dy. */
static void unary_with(zn_graph *g, int id, int dy, const bool *want, int *dsrc, zn_op op,
                       int with)
{
    emit(g, id, 0, want, dsrc, op, (const int[]){with, dy}, 2, NULL);
}

/* Ops whose one source's gradient reads only dy. */
static void unary(zn_graph *g, int id, int dy, const bool *want, int *dsrc, zn_op op,
                  const zn_attrs *attr)
{
    emit(g, id, 0, want, dsrc, op, &dy, 1, attr);
}

/* A fused op's per-channel coefficients: op(src), [n] floats, not batched, named
 * "<forward>.grad.coef". */
static int coef_node(zn_graph *g, int id, zn_op op, const int *src, int n_src, int n)
{
    const char *of = g->nodes[id].name; /* pool strings: they stay where they are */
    char *name = zn_malloc(strlen(of) + sizeof ".grad.coef");
    sprintf(name, "%s.grad.coef", of);
    const zn_attrs a = g->nodes[id].attr;
    int coef = zn_graph_add(g, op, src, n_src, &a, name, g->nodes[id].block, g->nodes[id].span);
    free(name);
    g->nodes[coef].shape = (zn_shape){.rank = 1, .dim = {n}, .dtype = ZN_DTYPE_F32};
    g->nodes[coef].flags = ZN_NODE_BACKWARD;
    return coef;
}

ZN_GRAD_RULE(conv2d) /* x, w[, b] */
{
    const int *s = g->nodes[id].src;
    const int n_src = g->nodes[id].n_src;
    emit(g, id, 0, want, dsrc, ZN_OP_CONV2D_BWD_DATA, (const int[]){dy, s[1]}, 2, NULL);
    emit(g, id, 1, want, dsrc, ZN_OP_CONV2D_BWD_FILTER, (const int[]){s[0], dy}, 2, NULL);
    if (n_src == 3) emit(g, id, 2, want, dsrc, ZN_OP_BIAS_BWD, &dy, 1, NULL);
}

ZN_GRAD_RULE(batchnorm) /* x, gamma, beta, running_mean, running_var (state: no gradient) */
{
    const int *s = g->nodes[id].src;
    emit(g, id, 1, want, dsrc, ZN_OP_BATCHNORM_BWD_GAMMA, (const int[]){s[0], dy}, 2, NULL);
    emit(g, id, 2, want, dsrc, ZN_OP_BIAS_BWD, &dy, 1, NULL);
    /* dx needs dgamma's and dbeta's sums over dy: read them when those nodes exist */
    const int n = want[1] && want[2] ? 5 : 3;
    emit(g, id, 0, want, dsrc, ZN_OP_BATCHNORM_BWD_DATA,
         (const int[]){s[0], s[1], dy, dsrc[1], dsrc[2]}, n, NULL);
}

/* x, gamma, beta, running_mean, running_var. One coefficient node reads x for the statistics and
 * then x and dy for the sums; dgamma and dbeta are its first two rows, and dx is one more pass
 * over x and dy (which the CPU backend makes per channel, right after the channel's sums, when
 * the dx node follows the coefficients). Neither reads y: the relu's mask is a*x + b > 0 with the
 * forward's a, b. */
ZN_GRAD_RULE(batchnorm_relu)
{
    if (!want[0] && !want[1] && !want[2]) return;
    const int *s = g->nodes[id].src;
    const int c = (int)g->nodes[s[0]].shape.dim[0];
    const int coef = coef_node(g, id, ZN_OP_BATCHNORM_RELU_BWD_COEF,
                               (const int[]){s[0], s[1], s[2], dy}, 4, 7 * c);
    /* dx right after its coefficients: the CPU backend then runs the two in one pass */
    emit(g, id, 0, want, dsrc, ZN_OP_BATCHNORM_RELU_BWD_DATA,
         (const int[]){g->nodes[id].src[0], dy, coef}, 3, NULL);
    zn_attrs a = g->nodes[id].attr;
    for (int row = 0; row < 2; row++) { /* dgamma, dbeta */
        a.axis = 0;
        a.size[0] = row * c;
        emit(g, id, 1 + row, want, dsrc, ZN_OP_SLICE, &coef, 1, &a);
    }
}

/* An element-wise op's backward op reads its input x (INPUT) or its own output y (OUTPUT: relu,
 * as relu(x) > 0 exactly where x > 0), and dy. */
#define EW_READS_INPUT g->nodes[id].src[0]
#define EW_READS_OUTPUT id
#define EW_RULE(OP, E, fn, reads)                                                  \
    ZN_GRAD_RULE(fn)                                                               \
    {                                                                              \
        unary_with(g, id, dy, want, dsrc, ZN_OP_##E##_BWD, EW_READS_##reads);      \
    }
ZN_OP_LIST(ZN_OP_SKIP, EW_RULE)
#undef EW_RULE

ZN_GRAD_RULE(maxpool)
{
    unary_with(g, id, dy, want, dsrc, ZN_OP_MAXPOOL_BWD, g->nodes[id].src[0]);
}

ZN_GRAD_RULE(avgpool)
{
    unary(g, id, dy, want, dsrc, ZN_OP_AVGPOOL_BWD, NULL);
}

ZN_GRAD_RULE(global_maxpool)
{
    unary_with(g, id, dy, want, dsrc, ZN_OP_GLOBAL_MAXPOOL_BWD, g->nodes[id].src[0]);
}

ZN_GRAD_RULE(global_avgpool)
{
    unary(g, id, dy, want, dsrc, ZN_OP_GLOBAL_AVGPOOL_BWD, NULL);
}

ZN_GRAD_RULE(linear) /* x, w[, b] */
{
    const int *s = g->nodes[id].src;
    const int n_src = g->nodes[id].n_src;
    emit(g, id, 0, want, dsrc, ZN_OP_LINEAR_BWD_DATA, (const int[]){dy, s[1]}, 2, NULL);
    emit(g, id, 1, want, dsrc, ZN_OP_LINEAR_BWD_WEIGHT, (const int[]){s[0], dy}, 2, NULL);
    if (n_src == 3) emit(g, id, 2, want, dsrc, ZN_OP_BIAS_BWD, &dy, 1, NULL);
}

ZN_GRAD_RULE(add) /* both sources receive dy itself: no node */
{
    (void)g;
    (void)id;
    for (int k = 0; k < 2; k++)
        if (want[k]) dsrc[k] = dy;
}

ZN_GRAD_RULE(scale) /* y = s x: dx = s dy, a SCALE with the forward's attributes */
{
    unary(g, id, dy, want, dsrc, ZN_OP_SCALE, NULL);
}

ZN_GRAD_RULE(concat) /* input k: its part of dy, at the sum of the earlier inputs' extents */
{
    const int *s = g->nodes[id].src;
    const int n_src = g->nodes[id].n_src;
    zn_attrs a = g->nodes[id].attr;
    int offset = 0;
    for (int k = 0; k < n_src; k++) {
        a.size[0] = offset;
        emit(g, id, k, want, dsrc, ZN_OP_SLICE, &dy, 1, &a);
        offset += (int)g->nodes[s[k]].shape.dim[a.axis];
    }
}

ZN_GRAD_RULE(resample)
{
    unary_with(g, id, dy, want, dsrc, ZN_OP_RESAMPLE_BWD, g->nodes[id].src[0]);
}

ZN_GRAD_RULE(transpose) /* the inverse permutation */
{
    zn_attrs a = g->nodes[id].attr;
    const int rank = g->nodes[id].shape.rank;
    for (int i = 0; i < rank; i++) a.perm[g->nodes[id].attr.perm[i]] = i;
    unary(g, id, dy, want, dsrc, ZN_OP_TRANSPOSE, &a);
}

ZN_GRAD_RULE(flatten) /* dy under x's shape (zn_grad_node gives it) */
{
    unary(g, id, dy, want, dsrc, ZN_OP_RESHAPE, NULL);
}

ZN_GRAD_RULE(stitch) /* one node per input k: stitch_bwd(r_0 .. r_{K-1}, dz), attr.axis = k */
{
    const int n_src = g->nodes[id].n_src;
    int *src = zn_malloc((size_t)(n_src + 1) * sizeof *src);
    memcpy(src, g->nodes[id].src, (size_t)n_src * sizeof *src);
    src[n_src] = dy;
    zn_attrs a = g->nodes[id].attr;
    for (int k = 0; k < n_src; k++) {
        a.axis = k;
        emit(g, id, k, want, dsrc, ZN_OP_STITCH_BWD, src, n_src + 1, &a);
    }
    free(src);
}

ZN_GRAD_RULE(xent) /* a loss head seeds itself: dlogits carries its weight; labels get none */
{
    (void)dy;
    assert(dy < 0 && !want[1]);
    const int *s = g->nodes[id].src;
    emit(g, id, 0, want, dsrc, ZN_OP_XENT_BWD, (const int[]){s[0], s[1]}, 2, NULL);
}

/* r_0 .. r_{K-1}, w, gamma, beta, running_mean, running_var (state: no gradient). One
 * ztower_coef node reads dz once for the batch norm's sums; dgamma and dbeta are two of its rows;
 * each input and the weight gets a ztower_bwd node that recomputes the tower in batch slices. */
ZN_GRAD_RULE(ztower)
{
    const zn_attrs fwd = g->nodes[id].attr; /* zn_graph_add may move the nodes */
    const int count = zn_ztower_inputs(&g->nodes[id]), f = (int)g->nodes[id].shape.dim[0];
    bool any = false;
    for (int k = 0; k < count + 3; k++) any = any || want[k];
    if (!any) return;
    int *src = zn_malloc((size_t)(count + 4) * sizeof *src);
    memcpy(src, g->nodes[id].src, (size_t)(count + 3) * sizeof *src); /* r..., w, gamma, beta */
    src[count + 3] = dy;
    int coef = coef_node(g, id, ZN_OP_ZTOWER_COEF, src, count + 4, 7 * f);
    zn_attrs a = fwd;
    for (int row = 5; row < 7; row++) { /* dgamma, dbeta: rows 5 and 6 of coef */
        a.axis = 0;
        a.size[0] = row * f;
        emit(g, id, count + row - 4, want, dsrc, ZN_OP_SLICE, &coef, 1, &a);
    }
    src[count + 1] = coef; /* r..., w, coef, dz */
    src[count + 2] = dy;
    a = fwd;
    for (int k = 0; k <= count; k++) {
        a.axis = k;
        emit(g, id, k, want, dsrc, ZN_OP_ZTOWER_BWD, src, count + 3, &a);
    }
    free(src);
}

ZN_GRAD_RULE(dropout) /* dy through the same mask: a DROPOUT with the forward's stream */
{
    unary(g, id, dy, want, dsrc, ZN_OP_DROPOUT, NULL);
}

ZN_GRAD_RULE(mul) /* da = dy * b, broadcast as in the forward; db = dy * a, per channel summed
                     over the other axes when b is a gate */
{
    const int *s = g->nodes[id].src;
    const bool gate = !zn_shape_eq(&g->nodes[s[0]].shape, &g->nodes[s[1]].shape);
    emit(g, id, 0, want, dsrc, ZN_OP_MUL, (const int[]){dy, s[1]}, 2, NULL);
    emit(g, id, 1, want, dsrc, gate ? ZN_OP_MUL_SUM : ZN_OP_MUL, (const int[]){dy, s[0]}, 2,
         NULL);
}
