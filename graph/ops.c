/* ops.c: the op table zn_ops[], expanded from graph/op_list.h, and the shape and multiply-add
 * rules its rows name (gradient rules are in graph/grad_rules.c).
 * Shape rules see sources that zn_graph_infer already checked (extents >= 1, at most 2^31
 * elements per example) and write only the message body; zn_graph_infer prefixes the op's name
 * and checks the size of what a rule produces, so extents computed from int attributes fit in
 * int64. */
#include "graph/util.h"
#include "graph/graph.h"
#include "graph/grad_rules.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Shapes and attribute pairs as text for messages: structs, so several fit in one printf. */
typedef struct {
    char s[96];
} text;

static text shape_text(const zn_shape *s)
{
    text t;
    zn_shape_str(s, t.s, sizeof t.s);
    return t;
}

/* "3" for a square {3, 3}, "3x1" otherwise. */
static text pair_text(const int v[2])
{
    text t;
    if (v[0] == v[1])
        snprintf(t.s, sizeof t.s, "%d", v[0]);
    else
        snprintf(t.s, sizeof t.s, "%dx%d", v[0], v[1]);
    return t;
}

static const char *mode_name(zn_resample_mode m)
{
    return m == ZN_RESAMPLE_MAX ? "max" : m == ZN_RESAMPLE_AVG ? "avg" : "nearest";
}

static const zn_shape *src_shape(const zn_graph *g, int id, int k)
{
    return &g->nodes[g->nodes[id].src[k]].shape;
}

/* Sets node id's output: a float tensor, batched like `like`. */
static void set_out(zn_graph *g, int id, const zn_shape *like, int rank, const int64_t *dim)
{
    zn_shape *s = &g->nodes[id].shape;
    *s = (zn_shape){.rank = rank, .batched = like->batched, .dtype = ZN_DTYPE_F32};
    memcpy(s->dim, dim, (size_t)rank * sizeof *dim);
}

/* A float source of the given rank (-1: any), e.g. expect(x, 3, "x", "[C, H, W]"). */
static bool expect(const zn_shape *s, int rank, const char *role, const char *layout, char *err,
                   size_t errlen)
{
    if (s->dtype != ZN_DTYPE_F32)
        return zn_fail(err, errlen, "%s must be a float tensor, got class labels %s", role,
                    shape_text(s).s);
    if (rank >= 0 && s->rank != rank)
        return zn_fail(err, errlen, "%s must be %s, got %s", role, layout, shape_text(s).s);
    return true;
}

/* A per-channel vector source (bias, batch-norm statistics): [C], not batched. */
static bool expect_vector(const zn_shape *s, int64_t c, const char *role, const zn_shape *x,
                          char *err, size_t errlen)
{
    if (!expect(s, 1, role, "[C]", err, errlen)) return false;
    if (s->batched || s->dim[0] != c)
        return zn_fail(err, errlen, "%s %s does not match the %" PRId64 " channels of x %s", role,
                    shape_text(s).s, c, shape_text(x).s);
    return true;
}

/* Output rows and columns of a window sliding over x[C, H, W]:
 * (H + 2 pad - dilation (kernel - 1) - 1) / stride + 1. */
static bool window(const zn_shape *x, const int kernel[2], const int stride[2], const int pad[2],
                   const int dilation[2], int64_t out[2], char *err, size_t errlen)
{
    for (int i = 0; i < 2; i++)
        if (kernel[i] < 1 || stride[i] < 1 || dilation[i] < 1 || pad[i] < 0)
            return zn_fail(err, errlen,
                        "kernel %s, stride %s and dilation %s must be at least 1, pad %s at least 0",
                        pair_text(kernel).s, pair_text(stride).s, pair_text(dilation).s,
                        pair_text(pad).s);
    int64_t room[2];
    for (int i = 0; i < 2; i++)
        room[i] = x->dim[1 + i] + 2 * (int64_t)pad[i] - (int64_t)dilation[i] * (kernel[i] - 1) - 1;
    if (room[0] < 0 || room[1] < 0) {
        char how[96] = "";
        size_t at = 0;
        if (dilation[0] != 1 || dilation[1] != 1)
            at += (size_t)snprintf(how, sizeof how, " with dilation %s", pair_text(dilation).s);
        if (pad[0] || pad[1])
            snprintf(how + at, sizeof how - at, " %s pad %s", at ? "and" : "with", pair_text(pad).s);
        return zn_fail(err, errlen, "kernel %s%s does not fit input %" PRId64 "x%" PRId64 " of x %s",
                    pair_text(kernel).s, how, x->dim[1], x->dim[2], shape_text(x).s);
    }
    for (int i = 0; i < 2; i++) out[i] = room[i] / stride[i] + 1;
    return true;
}

/* INPUT and PARAM: the creator set rank and dim; zn_graph_infer checks their size after this. */
static bool infer_leaf(zn_graph *g, int id, char *err, size_t errlen)
{
    zn_node *n = &g->nodes[id];
    n->shape.batched = n->op == ZN_OP_INPUT;
    n->shape.dtype = ZN_DTYPE_F32;
    if (!(n->flags & ZN_NODE_LABEL)) return true;
    if (n->op != ZN_OP_INPUT || n->shape.rank != 0)
        return zn_fail(err, errlen, "a class label is one integer per example, not %s",
                    shape_text(&n->shape).s);
    if (n->attr.out < 1)
        return zn_fail(err, errlen, "a class label needs at least 1 class, got %d", n->attr.out);
    n->shape.dtype = ZN_DTYPE_I32;
    return true;
}

static bool infer_conv2d(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const zn_attrs *a = &n->attr;
    const zn_shape *x = src_shape(g, id, 0), *w = src_shape(g, id, 1);
    if (!expect(x, 3, "x", "[C, H, W]", err, errlen) ||
        !expect(w, 4, "weight", "[O, C/groups, kh, kw]", err, errlen))
        return false;
    if (a->groups < 1) return zn_fail(err, errlen, "groups must be at least 1, got %d", a->groups);
    int64_t out = a->out > 0 ? a->out : w->dim[0];
    if (x->dim[0] % a->groups || out % a->groups)
        return zn_fail(err, errlen, "%" PRId64 " input and %" PRId64
                    " output channels do not split into %d groups (x %s)",
                    x->dim[0], out, a->groups, shape_text(x).s);
    int64_t hw[2];
    if (!window(x, a->kernel, a->stride, a->pad, a->dilation, hw, err, errlen)) return false;
    const int64_t want[4] = {out, x->dim[0] / a->groups, a->kernel[0], a->kernel[1]};
    if (w->batched || memcmp(w->dim, want, sizeof want))
        return zn_fail(err, errlen,
                    "weight %s does not match x %s: expected [%" PRId64 ", %" PRId64 ", %d, %d]",
                    shape_text(w).s, shape_text(x).s, want[0], want[1], a->kernel[0],
                    a->kernel[1]);
    if (n->n_src == 3 && !expect_vector(src_shape(g, id, 2), out, "bias", x, err, errlen))
        return false;
    set_out(g, id, x, 3, (const int64_t[]){out, hw[0], hw[1]});
    return true;
}

static bool infer_batchnorm(zn_graph *g, int id, char *err, size_t errlen)
{
    static const char *const role[] = {"x", "gamma", "beta", "running_mean", "running_var"};
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, -1, role[0], "", err, errlen)) return false;
    if (x->rank < 1) return zn_fail(err, errlen, "x must be [C, ...], got %s", shape_text(x).s);
    for (int k = 1; k < 5; k++)
        if (!expect_vector(src_shape(g, id, k), x->dim[0], role[k], x, err, errlen)) return false;
    set_out(g, id, x, x->rank, x->dim);
    return true;
}

/* Element-wise ops and SCALE: the shape of their one float source. */
static bool infer_same(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    set_out(g, id, x, x->rank, x->dim);
    return true;
}

static bool infer_add(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *a = src_shape(g, id, 0), *b = src_shape(g, id, 1);
    if (!expect(a, -1, "a", "", err, errlen) || !expect(b, -1, "b", "", err, errlen)) return false;
    if (!zn_shape_eq(a, b))
        return zn_fail(err, errlen, "cannot add %s and %s", shape_text(a).s, shape_text(b).s);
    set_out(g, id, a, a->rank, a->dim);
    return true;
}

static bool infer_dropout(zn_graph *g, int id, char *err, size_t errlen)
{
    const float p = g->nodes[id].attr.drop;
    if (!(p >= 0 && p < 1)) return zn_fail(err, errlen, "p = %g is outside [0, 1)", p);
    return infer_same(g, id, err, errlen);
}

/* Whether b is a gate of a: b[C] over a[C, ...], both per example or neither. */
static bool is_gate(const zn_shape *a, const zn_shape *b)
{
    return b->rank == 1 && a->rank >= 2 && b->dim[0] == a->dim[0] && b->batched == a->batched;
}

/* MUL(a, b): b of a's shape, or a [C] gate over a [C, ...]. */
static bool infer_mul(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *a = src_shape(g, id, 0), *b = src_shape(g, id, 1);
    if (!expect(a, -1, "a", "", err, errlen) || !expect(b, -1, "b", "", err, errlen)) return false;
    if (!zn_shape_eq(a, b) && !is_gate(a, b)) {
        if (a->rank < 2)
            return zn_fail(err, errlen, "cannot multiply %s by %s: the shapes must be equal",
                           shape_text(a).s, shape_text(b).s);
        zn_shape gate = {.rank = 1, .dim = {a->dim[0]}, .batched = a->batched};
        return zn_fail(err, errlen, "cannot multiply %s by %s: expected the same shape or a "
                       "per-channel gate %s", shape_text(a).s, shape_text(b).s,
                       shape_text(&gate).s);
    }
    set_out(g, id, a, a->rank, a->dim);
    return true;
}

/* MAXPOOL, AVGPOOL. */
static bool infer_pool(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, 3, "x", "[C, H, W]", err, errlen)) return false;
    int64_t hw[2];
    if (!window(x, a->kernel, a->stride, a->pad, (const int[]){1, 1}, hw, err, errlen))
        return false;
    /* a window wholly inside the padding would have no input to pool */
    if (2 * a->pad[0] > a->kernel[0] || 2 * a->pad[1] > a->kernel[1])
        return zn_fail(err, errlen, "pad %s is more than half of kernel %s", pair_text(a->pad).s,
                    pair_text(a->kernel).s);
    set_out(g, id, x, 3, (const int64_t[]){x->dim[0], hw[0], hw[1]});
    return true;
}

/* GLOBAL_MAXPOOL, GLOBAL_AVGPOOL. */
static bool infer_global_pool(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, 3, "x", "[C, H, W]", err, errlen)) return false;
    set_out(g, id, x, 1, x->dim);
    return true;
}

static bool infer_linear(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const zn_shape *x = src_shape(g, id, 0), *w = src_shape(g, id, 1);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    if (x->rank != 1)
        return zn_fail(err, errlen, "x must be a vector [I], got %s; flatten it or pool it globally first",
                    shape_text(x).s);
    if (!expect(w, 2, "weight", "[O, I]", err, errlen)) return false;
    int64_t out = n->attr.out > 0 ? n->attr.out : w->dim[0];
    if (w->batched || w->dim[0] != out || w->dim[1] != x->dim[0])
        return zn_fail(err, errlen, "weight %s does not match x %s: expected [%" PRId64 ", %" PRId64 "]",
                    shape_text(w).s, shape_text(x).s, out, x->dim[0]);
    if (n->n_src == 3 && !expect_vector(src_shape(g, id, 2), out, "bias", x, err, errlen))
        return false;
    set_out(g, id, x, 1, &out);
    return true;
}

static bool infer_concat(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const int axis = n->attr.axis;
    const zn_shape *first = src_shape(g, id, 0);
    if (!expect(first, -1, "input 0", "", err, errlen)) return false;
    if (axis < 0 || axis >= first->rank)
        return zn_fail(err, errlen, "axis %d is not an axis of input 0 %s", axis, shape_text(first).s);
    int64_t dim[ZN_MAX_RANK];
    memcpy(dim, first->dim, sizeof dim);
    for (int k = 1; k < n->n_src; k++) {
        const zn_shape *s = src_shape(g, id, k);
        bool same = s->dtype == ZN_DTYPE_F32 && s->rank == first->rank &&
                    s->batched == first->batched;
        for (int i = 0; same && i < s->rank; i++) same = i == axis || s->dim[i] == first->dim[i];
        if (!same)
            return zn_fail(err, errlen, "input %d %s does not match input 0 %s outside axis %d", k,
                        shape_text(s).s, shape_text(first).s, axis);
        dim[axis] += s->dim[axis];
    }
    set_out(g, id, first, first->rank, dim);
    return true;
}

/* Whether extent `in` becomes `target` by an integer factor in an allowed direction. */
static bool resamples_to(int64_t in, int64_t target, bool down, bool up)
{
    if (in > target) return down && in % target == 0;
    if (in < target) return up && target % in == 0;
    return true;
}

static bool infer_resample(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, 3, "x", "[C, H, W]", err, errlen)) return false;
    const bool up = a->mode == ZN_RESAMPLE_NEAREST;
    int64_t hw[2];
    if (a->size[0] > 0 || a->size[1] > 0) {
        for (int i = 0; i < 2; i++) {
            if (a->size[i] < 1)
                return zn_fail(err, errlen, "size %dx%d must be positive", a->size[0], a->size[1]);
            if (!resamples_to(x->dim[1 + i], a->size[i], !up, up))
                return zn_fail(err, errlen,
                            "%s cannot resample x %s to %dx%d: it only %s, by an integer factor",
                            mode_name(a->mode), shape_text(x).s, a->size[0], a->size[1],
                            up ? "enlarges" : "shrinks");
            hw[i] = a->size[i];
        }
    } else {
        for (int i = 0; i < 2; i++) {
            if (a->factor[i] < 1)
                return zn_fail(err, errlen, "factor %s must be at least 1", pair_text(a->factor).s);
            if (!up && x->dim[1 + i] % a->factor[i])
                return zn_fail(err, errlen, "x %s does not divide by factor %s", shape_text(x).s,
                            pair_text(a->factor).s);
            hw[i] = up ? x->dim[1 + i] * a->factor[i] : x->dim[1 + i] / a->factor[i];
        }
    }
    set_out(g, id, x, 3, (const int64_t[]){x->dim[0], hw[0], hw[1]});
    return true;
}

static bool infer_transpose(zn_graph *g, int id, char *err, size_t errlen)
{
    const int *perm = g->nodes[id].attr.perm;
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    int64_t dim[ZN_MAX_RANK];
    bool seen[ZN_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        if (perm[i] < 0 || perm[i] >= x->rank || seen[perm[i]]) {
            char list[64] = "";
            for (int j = 0, at = 0; j < x->rank; j++)
                at += snprintf(list + at, sizeof list - (size_t)at, "%s%d", j ? ", " : "", perm[j]);
            return zn_fail(err, errlen, "perm (%s) is not a permutation of the %d axes of x %s", list,
                        x->rank, shape_text(x).s);
        }
        seen[perm[i]] = true;
        dim[i] = x->dim[perm[i]];
    }
    set_out(g, id, x, x->rank, dim);
    return true;
}

static bool infer_flatten(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    set_out(g, id, x, 1, (const int64_t[]){zn_shape_numel(x)});
    return true;
}

/* The stitch of node id's first `count` sources into z: Z[S_h, sum C_k, S_w], every
 * R_k[C_k, H_k, W_k] resampled to S_h x S_w (attr.mode shrinks, nearest enlarges), its channel
 * and row axes swapped, stacked along the middle axis. */
static bool stitched(zn_graph *g, int id, int count, zn_shape *z, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const int *size = n->attr.size;
    if (size[0] < 1 || size[1] < 1)
        return zn_fail(err, errlen, "size %dx%d must be positive", size[0], size[1]);
    if (n->attr.mode == ZN_RESAMPLE_NEAREST)
        return zn_fail(err, errlen, "larger inputs shrink by max or avg, not nearest");
    const zn_shape *first = src_shape(g, id, 0);
    int64_t channels = 0;
    for (int k = 0; k < count; k++) {
        const zn_shape *r = src_shape(g, id, k);
        char role[32];
        snprintf(role, sizeof role, "input %d", k);
        if (!expect(r, 3, role, "[C, H, W]", err, errlen)) return false;
        if (r->batched != first->batched)
            return zn_fail(err, errlen, "input %d %s and input 0 %s are not both per example", k,
                        shape_text(r).s, shape_text(first).s);
        if (!resamples_to(r->dim[1], size[0], true, true) ||
            !resamples_to(r->dim[2], size[1], true, true))
            return zn_fail(err, errlen, "input %d %s does not resample to %dx%d by an integer factor",
                        k, shape_text(r).s, size[0], size[1]);
        channels += r->dim[0];
    }
    *z = (zn_shape){.rank = 3, .dim = {size[0], channels, size[1]}, .batched = first->batched,
                    .dtype = ZN_DTYPE_F32};
    return true;
}

static bool infer_stitch(zn_graph *g, int id, char *err, size_t errlen)
{
    zn_shape z;
    if (!stitched(g, id, g->nodes[id].n_src, &z, err, errlen)) return false;
    g->nodes[id].shape = z;
    return true;
}

/* The z-tower's conv over the stitch of its first `count` sources: the stitch z, the weight's
 * filters f and the conv's output rows and columns hw. */
static bool ztower_conv(zn_graph *g, int id, int count, zn_shape *z, int64_t *f, int64_t hw[2],
                        char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    if (count < 1) return zn_fail(err, errlen, "no input to stitch");
    if (!stitched(g, id, count, z, err, errlen)) return false;
    if (!z->batched) /* the kernels walk the batch */
        return zn_fail(err, errlen, "input 0 %s is not per example", shape_text(src_shape(g, id, 0)).s);
    const zn_shape *w = src_shape(g, id, count);
    if (!expect(w, 4, "weight", "[F, S_h, kh, kw]", err, errlen)) return false;
    if (w->batched || w->dim[1] != z->dim[0] || w->dim[2] != a->kernel[0] ||
        w->dim[3] != a->kernel[1])
        return zn_fail(err, errlen, "weight %s does not match the stitch %s: expected [F, %" PRId64
                       ", %d, %d]", shape_text(w).s, shape_text(z).s, z->dim[0], a->kernel[0],
                       a->kernel[1]);
    *f = w->dim[0];
    return window(z, a->kernel, a->stride, a->pad, a->dilation, hw, err, errlen);
}

/* Sources first..first+n-1 of a z-tower node: gamma, beta, running_mean, running_var in that
 * order, each [F]. */
static bool ztower_vectors(zn_graph *g, int id, int first, int n, int64_t f, const zn_shape *z,
                           char *err, size_t errlen)
{
    static const char *const role[] = {"gamma", "beta", "running_mean", "running_var"};
    for (int k = 0; k < n; k++)
        if (!expect_vector(src_shape(g, id, first + k), f, role[k], z, err, errlen)) return false;
    return true;
}

/* dz, the gradient of a ztower's output: [F] per example. */
static bool ztower_dz(const zn_shape *dz, int64_t f, char *err, size_t errlen)
{
    if (!expect(dz, 1, "dz", "[F]", err, errlen)) return false;
    if (!dz->batched || dz->dim[0] != f)
        return zn_fail(err, errlen, "dz %s is not the %" PRId64 " filters' gradient per example",
                       shape_text(dz).s, f);
    return true;
}

/* ZTOWER(r..., w, gamma, beta, running_mean, running_var) -> [F] */
static bool infer_ztower(zn_graph *g, int id, char *err, size_t errlen)
{
    const int count = zn_ztower_inputs(&g->nodes[id]);
    zn_shape z;
    int64_t f = 0, hw[2];
    if (!ztower_conv(g, id, count, &z, &f, hw, err, errlen) ||
        !ztower_vectors(g, id, count + 1, 4, f, &z, err, errlen))
        return false;
    set_out(g, id, &z, 1, &f);
    return true;
}

static bool infer_xent(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const zn_shape *logits = src_shape(g, id, 0);
    const zn_node *label = &g->nodes[n->src[1]];
    if (!expect(logits, 1, "logits", "[K]", err, errlen)) return false;
    if (label->op != ZN_OP_INPUT || !(label->flags & ZN_NODE_LABEL))
        return zn_fail(err, errlen, "the second source must be a class label input, got %s %s",
                    zn_ops[label->op].name, shape_text(&label->shape).s);
    if (!logits->batched)
        return zn_fail(err, errlen, "logits %s are not per example", shape_text(logits).s);
    if (logits->dim[0] != label->attr.out)
        return zn_fail(err, errlen, "logits %s have %" PRId64 " classes, the label has %d",
                    shape_text(logits).s, logits->dim[0], label->attr.out);
    if (!(n->attr.smoothing >= 0 && n->attr.smoothing < 1))
        return zn_fail(err, errlen, "label smoothing %g is outside [0, 1)", n->attr.smoothing);
    g->nodes[id].shape = (zn_shape){.rank = 0, .batched = false, .dtype = ZN_DTYPE_F32};
    return true;
}

/* Backward ops. Autodiff presets each node's shape to that of the tensor whose gradient it is;
 * where the sources determine it the rule computes it (autodiff then checks the two agree), and
 * where they do not (a strided window, a reshape, a slice) the rule checks the preset one. */

/* The gradient of source k of the forward op: dx of relu, pools, batchnorm, resample, xent. */
static bool infer_like(zn_graph *g, int id, int k, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, k);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    set_out(g, id, x, x->rank, x->dim);
    return true;
}

static bool infer_like_first(zn_graph *g, int id, char *err, size_t errlen)
{
    return infer_like(g, id, 0, err, errlen);
}

/* The fused batch norm + relu backward's x [C, ...] and its source dy (id kdy) of that shape;
 * *c gets C. */
static bool bn_relu_tensors(zn_graph *g, int id, int kdy, int64_t *c, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0), *dy = src_shape(g, id, kdy);
    if (!expect(x, -1, "x", "", err, errlen) || !expect(dy, -1, "dy", "", err, errlen)) return false;
    if (x->rank < 1 || !zn_shape_eq(x, dy))
        return zn_fail(err, errlen, "x %s and dy %s must be one shape [C, ...]", shape_text(x).s,
                       shape_text(dy).s);
    *c = x->dim[0];
    return true;
}

/* BATCHNORM_RELU_BWD_COEF(x, gamma, beta, dy): [7 * C], not batched. */
static bool infer_bn_relu_coef(zn_graph *g, int id, char *err, size_t errlen)
{
    int64_t c = 0;
    if (!bn_relu_tensors(g, id, 3, &c, err, errlen) ||
        !expect_vector(src_shape(g, id, 1), c, "gamma", src_shape(g, id, 0), err, errlen) ||
        !expect_vector(src_shape(g, id, 2), c, "beta", src_shape(g, id, 0), err, errlen))
        return false;
    set_out(g, id, &(zn_shape){0}, 1, (const int64_t[]){7 * c});
    return true;
}

/* BATCHNORM_RELU_BWD_DATA(x, dy, coef[7 * C]): dx, x's shape. */
static bool infer_bn_relu_bwd_data(zn_graph *g, int id, char *err, size_t errlen)
{
    int64_t c = 0;
    if (!bn_relu_tensors(g, id, 1, &c, err, errlen)) return false;
    const zn_shape *k = src_shape(g, id, 2);
    if (!expect(k, 1, "coef", "[7 * C]", err, errlen)) return false;
    if (k->batched || k->dim[0] != 7 * c)
        return zn_fail(err, errlen, "coef %s must be [%" PRId64 "], 7 per channel of x %s",
                       shape_text(k).s, 7 * c, shape_text(src_shape(g, id, 0)).s);
    return infer_like(g, id, 0, err, errlen);
}

/* MUL_SUM(dy[C, ...], a[C, ...]): the gate's gradient [C]. */
static bool infer_mul_sum(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *dy = src_shape(g, id, 0), *a = src_shape(g, id, 1);
    if (!expect(dy, -1, "dy", "", err, errlen) || !expect(a, -1, "a", "", err, errlen))
        return false;
    if (dy->rank < 2 || !zn_shape_eq(dy, a))
        return zn_fail(err, errlen, "dy %s and a %s must be one shape [C, ...]", shape_text(dy).s,
                       shape_text(a).s);
    set_out(g, id, dy, 1, dy->dim);
    return true;
}

/* STITCH_BWD: the gradient of input attr.axis. */
static bool infer_stitch_bwd(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    if (n->attr.axis < 0 || n->attr.axis >= n->n_src - 1)
        return zn_fail(err, errlen, "input %d is not one of the %d inputs", n->attr.axis,
                    n->n_src - 1);
    return infer_like(g, id, n->attr.axis, err, errlen);
}

/* ZTOWER_COEF(r..., w, gamma, beta, dz) -> [7 * F], not batched: seven rows of F. */
static bool infer_ztower_coef(zn_graph *g, int id, char *err, size_t errlen)
{
    const int count = zn_ztower_inputs(&g->nodes[id]);
    zn_shape z;
    int64_t f = 0, hw[2];
    if (!ztower_conv(g, id, count, &z, &f, hw, err, errlen) ||
        !ztower_vectors(g, id, count + 1, 2, f, &z, err, errlen) ||
        !ztower_dz(src_shape(g, id, count + 3), f, err, errlen))
        return false;
    set_out(g, id, &(zn_shape){0}, 1, (const int64_t[]){7 * f});
    return true;
}

/* ZTOWER_BWD(r..., w, coef, dz): the gradient of source attr.axis (an input or w). */
static bool infer_ztower_bwd(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_node *n = &g->nodes[id];
    const int count = zn_ztower_inputs(n);
    zn_shape z;
    int64_t f = 0, hw[2];
    if (!ztower_conv(g, id, count, &z, &f, hw, err, errlen) ||
        !ztower_dz(src_shape(g, id, count + 2), f, err, errlen))
        return false;
    const zn_shape *coef = src_shape(g, id, count + 1);
    if (!expect(coef, 1, "coef", "[7 * F]", err, errlen)) return false;
    if (coef->batched || coef->dim[0] != 7 * f)
        return zn_fail(err, errlen, "coef %s is not the %" PRId64 " filters' seven rows",
                       shape_text(coef).s, f);
    if (n->attr.axis < 0 || n->attr.axis > count)
        return zn_fail(err, errlen, "source %d is neither one of the %d inputs nor the weight",
                       n->attr.axis, count);
    return infer_like(g, id, n->attr.axis, err, errlen);
}

/* A preset float shape of the given rank (-1: any), batched like the incoming gradient dy. */
static bool expect_preset(zn_graph *g, int id, int rank, const zn_shape *dy, char *err,
                          size_t errlen)
{
    zn_shape *s = &g->nodes[id].shape;
    if (!expect(dy, -1, "dy", "", err, errlen)) return false;
    if ((rank >= 0 && s->rank != rank) || s->dtype != ZN_DTYPE_F32 || s->batched != dy->batched)
        return zn_fail(err, errlen, "the gradient's shape %s does not fit dy %s", shape_text(s).s,
                    shape_text(dy).s);
    return true;
}

/* The preset input shape x[C, H, W] of a window op must slide to dy[C', H', W']. */
static bool expect_window_input(zn_graph *g, int id, int64_t channels, const int dilation[2],
                                char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *x = &g->nodes[id].shape, *dy = src_shape(g, id, 0);
    int64_t hw[2];
    if (!expect_preset(g, id, 3, dy, err, errlen)) return false;
    if (dy->rank == 3 && x->dim[0] == channels &&
        window(x, a->kernel, a->stride, a->pad, dilation, hw, err, errlen) &&
        hw[0] == dy->dim[1] && hw[1] == dy->dim[2])
        return true;
    return zn_fail(err, errlen, "dy %s is not the output of a window over %s", shape_text(dy).s,
                shape_text(x).s);
}

/* CONV2D_BWD_DATA(dy, w): dx keeps the preset shape of the convolution's input. */
static bool infer_conv2d_bwd_data(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *dy = src_shape(g, id, 0), *w = src_shape(g, id, 1);
    if (!expect(w, 4, "weight", "[O, C/groups, kh, kw]", err, errlen)) return false;
    if (a->groups < 1 || dy->dim[0] != w->dim[0])
        return zn_fail(err, errlen, "dy %s does not match weight %s", shape_text(dy).s,
                    shape_text(w).s);
    return expect_window_input(g, id, w->dim[1] * a->groups, a->dilation, err, errlen);
}

/* AVGPOOL_BWD(dy): dx keeps the preset shape of the pooling's input. */
static bool infer_avgpool_bwd(zn_graph *g, int id, char *err, size_t errlen)
{
    return expect_window_input(g, id, src_shape(g, id, 0)->dim[0], (const int[]){1, 1}, err,
                               errlen);
}

/* GLOBAL_AVGPOOL_BWD(dy[C]): dx keeps the preset [C, H, W]. */
static bool infer_global_avgpool_bwd(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *dy = src_shape(g, id, 0);
    if (!expect_preset(g, id, 3, dy, err, errlen)) return false;
    if (dy->rank != 1 || dy->dim[0] != g->nodes[id].shape.dim[0])
        return zn_fail(err, errlen, "dy %s is not the pooled %s", shape_text(dy).s,
                    shape_text(&g->nodes[id].shape).s);
    return true;
}

/* SLICE(dy): the preset shape is dy's except along attr.axis, where it starts at attr.size[0]. */
static bool infer_slice(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *dy = src_shape(g, id, 0), *s = &g->nodes[id].shape;
    if (!expect_preset(g, id, dy->rank, dy, err, errlen)) return false;
    bool fits = a->axis >= 0 && a->axis < dy->rank && a->size[0] >= 0 &&
                a->size[0] + s->dim[a->axis] <= dy->dim[a->axis];
    for (int i = 0; fits && i < dy->rank; i++) fits = i == a->axis || s->dim[i] == dy->dim[i];
    if (!fits)
        return zn_fail(err, errlen, "%s at offset %d along axis %d is not a part of dy %s",
                    shape_text(s).s, a->size[0], a->axis, shape_text(dy).s);
    return true;
}

/* RESHAPE(x): the preset shape holds as many elements as x. */
static bool infer_reshape(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect_preset(g, id, -1, x, err, errlen)) return false;
    if (zn_shape_numel(&g->nodes[id].shape) != zn_shape_numel(x))
        return zn_fail(err, errlen, "%s does not hold the elements of x %s",
                    shape_text(&g->nodes[id].shape).s, shape_text(x).s);
    return true;
}

/* A parameter's gradient [dims], not batched. */
static bool set_param_grad(zn_graph *g, int id, int rank, const int64_t *dim)
{
    g->nodes[id].shape = (zn_shape){.rank = rank, .dtype = ZN_DTYPE_F32};
    memcpy(g->nodes[id].shape.dim, dim, (size_t)rank * sizeof *dim);
    return true;
}

/* CONV2D_BWD_FILTER(x, dy): dw [O, C/groups, kh, kw]. */
static bool infer_conv2d_bwd_filter(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_attrs *a = &g->nodes[id].attr;
    const zn_shape *x = src_shape(g, id, 0), *dy = src_shape(g, id, 1);
    if (!expect(x, 3, "x", "[C, H, W]", err, errlen) ||
        !expect(dy, 3, "dy", "[O, H', W']", err, errlen))
        return false;
    if (a->groups < 1 || x->dim[0] % a->groups || dy->dim[0] % a->groups)
        return zn_fail(err, errlen, "x %s and dy %s do not split into %d groups", shape_text(x).s,
                    shape_text(dy).s, a->groups);
    return set_param_grad(g, id, 4, (const int64_t[]){dy->dim[0], x->dim[0] / a->groups,
                                                      a->kernel[0], a->kernel[1]});
}

/* LINEAR_BWD_WEIGHT(x, dy): dw [O, I]. */
static bool infer_linear_bwd_weight(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0), *dy = src_shape(g, id, 1);
    if (!expect(x, 1, "x", "[I]", err, errlen) || !expect(dy, 1, "dy", "[O]", err, errlen))
        return false;
    return set_param_grad(g, id, 2, (const int64_t[]){dy->dim[0], x->dim[0]});
}

/* BIAS_BWD(dy[C, ...]) and BATCHNORM_BWD_GAMMA(x[C, ...], dy): [C]. */
static bool infer_channel_grad(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *x = src_shape(g, id, 0);
    if (!expect(x, -1, "x", "", err, errlen)) return false;
    if (x->rank < 1) return zn_fail(err, errlen, "x must be [C, ...], got %s", shape_text(x).s);
    return set_param_grad(g, id, 1, x->dim);
}

/* LINEAR_BWD_DATA(dy[O], w[O, I]): dx [I]. */
static bool infer_linear_bwd_data(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *dy = src_shape(g, id, 0), *w = src_shape(g, id, 1);
    if (!expect(dy, 1, "dy", "[O]", err, errlen) ||
        !expect(w, 2, "weight", "[O, I]", err, errlen))
        return false;
    if (dy->dim[0] != w->dim[0])
        return zn_fail(err, errlen, "dy %s does not match weight %s", shape_text(dy).s,
                    shape_text(w).s);
    set_out(g, id, dy, 1, &w->dim[1]);
    return true;
}

/* Inference ops. BN_FOLD_WEIGHT(w[O, ...], gamma[O], running_var[O]): the shape of w. */
static bool infer_bn_fold_weight(zn_graph *g, int id, char *err, size_t errlen)
{
    const zn_shape *w = src_shape(g, id, 0);
    if (!expect(w, -1, "weight", "", err, errlen)) return false;
    if (w->rank < 1 || w->batched)
        return zn_fail(err, errlen, "weight must be a parameter [O, ...], got %s", shape_text(w).s);
    if (!expect_vector(src_shape(g, id, 1), w->dim[0], "gamma", w, err, errlen) ||
        !expect_vector(src_shape(g, id, 2), w->dim[0], "running_var", w, err, errlen))
        return false;
    set_out(g, id, w, w->rank, w->dim);
    return true;
}

/* BN_FOLD_BIAS(gamma[C], beta[C], running_mean[C], running_var[C][, b[C]]): [C]. */
static bool infer_bn_fold_bias(zn_graph *g, int id, char *err, size_t errlen)
{
    static const char *const role[] = {"gamma", "beta", "running_mean", "running_var", "bias"};
    const zn_shape *gamma = src_shape(g, id, 0);
    if (!expect(gamma, 1, role[0], "[C]", err, errlen)) return false;
    if (gamma->batched) return zn_fail(err, errlen, "gamma must be a parameter [C], got %s",
                                       shape_text(gamma).s);
    for (int k = 1; k < g->nodes[id].n_src; k++)
        if (!expect_vector(src_shape(g, id, k), gamma->dim[0], role[k], gamma, err, errlen))
            return false;
    set_out(g, id, gamma, 1, gamma->dim);
    return true;
}

/* Multiply-adds count only convolution and linear layers (the convention behind figures such
 * as DavidNet's 379 M per image); normalisation, activations and data movement count 0. */
static int64_t macs_none(const zn_graph *g, int id)
{
    (void)g;
    (void)id;
    return 0;
}

/* O H' W' (C/groups) kh kw: every element of y[O, H', W'] reads one weight row of
 * w[O, C/groups, kh, kw]; each backward direction does as many. */
static int64_t conv_macs(const zn_shape *y, const zn_shape *w)
{
    return zn_shape_numel(y) * (w->dim[1] * w->dim[2] * w->dim[3]);
}

static int64_t macs_conv2d(const zn_graph *g, int id)
{
    return conv_macs(&g->nodes[id].shape, src_shape(g, id, 1));
}

/* The z-tower ops' convs (docs/passes.md, "Z-tower fusion"): the forward's output pass, once
 * (inference runs only that); the coefficients' two passes plus the training forward's
 * statistics pass, so a training graph counts all it runs; each gradient's recomputed conv and
 * the gradient itself. */
static int64_t macs_ztower(const zn_graph *g, int id)
{
    const zn_node *n = &g->nodes[id];
    const int count = zn_ztower_inputs(n);
    const zn_attrs *a = &n->attr;
    zn_shape z = {.rank = 3, .dim = {a->size[0], 0, a->size[1]}};
    for (int k = 0; k < count; k++) z.dim[1] += src_shape(g, id, k)->dim[0];
    int64_t out[2];
    char unused[8];
    if (!window(&z, a->kernel, a->stride, a->pad, a->dilation, out, unused, sizeof unused))
        return 0; /* the shape rule refuses the node */
    const zn_shape *w = src_shape(g, id, count);
    const int passes = n->op == ZN_OP_ZTOWER ? 1 : n->op == ZN_OP_ZTOWER_COEF ? 3 : 2;
    return passes * zn_shape_numel(w) * out[0] * out[1];
}

static int64_t macs_conv2d_bwd_data(const zn_graph *g, int id) /* dy, w */
{
    return conv_macs(src_shape(g, id, 0), src_shape(g, id, 1));
}

static int64_t macs_conv2d_bwd_filter(const zn_graph *g, int id) /* x, dy -> dw */
{
    return conv_macs(src_shape(g, id, 1), &g->nodes[id].shape);
}

/* O I: the weight's size (forward and LINEAR_BWD_DATA read w as source 1). */
static int64_t macs_linear(const zn_graph *g, int id)
{
    return zn_shape_numel(src_shape(g, id, 1));
}

static int64_t macs_linear_bwd_weight(const zn_graph *g, int id) /* x, dy -> dw[O, I] */
{
    return zn_shape_numel(&g->nodes[id].shape);
}

/* The rows of op_list.h as zn_op_info, each at its own enum value. The lang column arrives
 * expanded, as three values: count, name, alias. */
#define LANG_NAMES(n, name, alias) {name, alias}
#define ROW(E, name, kind, min_src, max_src, srcs, attrs, infer, macs, grad, in_place, recompute, \
            lower, lang)                                                                          \
    [ZN_OP_##E] = {name, ZN_OP_KIND_##kind, min_src, max_src, srcs, attrs, infer, macs, grad,      \
                   in_place, ZN_RECOMPUTE_##recompute, LANG_NAMES(lang)},
const zn_op_info zn_ops[ZN_OP_COUNT] = {ZN_OP_EACH(ROW)};
#undef ROW

/* Compile-time checks of every row: a name, a sound arity, and a lang column whose count matches
 * its names (a kind or recompute value that does not exist fails to paste into an enum name
 * above). Rows and enum come from expansions of the same list, each row designated at its own
 * enum value, so every op has exactly one row; the count check below says so. */
#define LANG_CHECK(E, n, name, alias)                                                           \
    _Static_assert((n >= 1) == (sizeof name > 1) && (n >= 2) == (sizeof alias > 1),             \
                   #E ": the lang column's count does not match its names");
#define CHECK(E, name, kind, min_src, max_src, srcs, attrs, infer, macs, grad, in_place,         \
              recompute, lower, lang)                                                            \
    _Static_assert(sizeof name > 1, #E " needs a name");                                         \
    _Static_assert((min_src) >= 0 && ((max_src) == -1 || (max_src) >= (min_src)),               \
                   #E ": max_src must be -1 (any) or at least min_src");                         \
    LANG_CHECK(E, lang)
ZN_OP_EACH(CHECK)
#undef CHECK
#define ONE(...) +1
_Static_assert(0 ZN_OP_EACH(ONE) == ZN_OP_COUNT, "zn_ops has one row per op");
#undef ONE

zn_op zn_op_by_name(const char *name)
{
    for (int op = 0; op < ZN_OP_COUNT; op++)
        if (strcmp(zn_ops[op].name, name) == 0) return (zn_op)op;
    return ZN_OP_COUNT;
}
