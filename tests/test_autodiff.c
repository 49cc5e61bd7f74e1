/* test_autodiff.c: the structure autodiff builds (graph/autodiff.h): exact backward nodes of a
 * tiny model, accumulation where a tensor feeds several consumers, a parameter shared by three
 * convolutions, nothing built below inputs or for parameter-free branches, one GRAD node per
 * trainable parameter of every model in models/, and the op table's gradient columns (every
 * differentiable op has a rule, every backward op a checked shape rule and a producer). */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/autodiff.h"
#include "graph/passes.h"
#include "graph/graph.h"
#include "lang/program.h"

/* ---- hand-built graphs ---------------------------------------------------------------------
 * Node i is written on line i + 1, so a backward node's span names its forward node. */

static int add_node(zn_graph *g, zn_op op, const int *src, int n_src, const zn_attrs *attr,
                    const char *name)
{
    zn_span span = {.file = "t.znet", .line = g->n_nodes + 1, .col = 1};
    return zn_graph_add(g, op, src, n_src, attr, name, "", span);
}

static int inferred(zn_graph *g, int id)
{
    char err[256];
    if (!zn_graph_infer(g, id, err, sizeof err)) fail_msg("node %d: %s", id, err);
    return id;
}

/* A leaf of the given per-example shape; rank < 0 makes a class label with -rank classes. */
static int leaf(zn_graph *g, zn_op op, unsigned flags, const char *name, int rank,
                const int64_t *dim)
{
    int id = add_node(g, op, NULL, 0, NULL, name);
    g->nodes[id].flags = flags;
    if (rank < 0) {
        g->nodes[id].flags |= ZN_NODE_LABEL;
        g->nodes[id].attr.out = -rank;
    } else {
        g->nodes[id].shape.rank = rank;
        memcpy(g->nodes[id].shape.dim, dim, (size_t)rank * sizeof *dim);
    }
    return inferred(g, id);
}

#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define DIMS(...) NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__}
#define INPUT(g, name, ...) leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT, name, DIMS(__VA_ARGS__))
#define PARAM(g, name, ...) leaf(g, ZN_OP_PARAM, ZN_NODE_PARAM, name, DIMS(__VA_ARGS__))
#define STATE(g, name, ...) leaf(g, ZN_OP_PARAM, ZN_NODE_STATE, name, DIMS(__VA_ARGS__))
#define LABEL(g, classes) leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT, "label", -(classes), NULL)
#define SRC(...) (const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))

static int op_node(zn_graph *g, zn_op op, const int *src, int n_src, const char *name,
                   const zn_attrs *attr)
{
    return inferred(g, add_node(g, op, src, n_src, attr, name));
}

static zn_attrs conv_attrs(int k, int pad)
{
    zn_attrs a = zn_attrs_default();
    a.kernel[0] = a.kernel[1] = k;
    a.pad[0] = a.pad[1] = pad;
    return a;
}

static int head(zn_graph *g, int logits, int label)
{
    int id = op_node(g, ZN_OP_XENT, SRC(logits, label), "h", NULL);
    g->nodes[id].flags |= ZN_NODE_LOSS;
    return id;
}

static void differentiate(zn_graph *g)
{
    char err[256];
    if (!zn_autodiff(g, err, sizeof err)) fail_msg("autodiff: %s", err);
}

/* The node of op built from forward node fwd (its span's line), or -1; fails on two. */
static int bwd_of(const zn_graph *g, int fwd, zn_op op)
{
    int found = -1;
    for (int id = 0; id < g->n_nodes; id++)
        if ((g->nodes[id].flags & ZN_NODE_BACKWARD) && g->nodes[id].op == op &&
            g->nodes[id].span.line == fwd + 1) {
            if (found >= 0) fail_msg("two %s nodes for node %d", zn_ops[op].name, fwd);
            found = id;
        }
    return found;
}

static int count_op(const zn_graph *g, zn_op op, unsigned flag)
{
    int n = 0;
    for (int id = 0; id < g->n_nodes; id++)
        n += g->nodes[id].op == op && (g->nodes[id].flags & flag) == flag;
    return n;
}

/* The GRAD node of parameter p: exactly one, with p's shape. */
static int grad_node(const zn_graph *g, int p)
{
    int found = -1;
    for (int id = 0; id < g->n_nodes; id++)
        if ((g->nodes[id].flags & ZN_NODE_GRAD) && g->nodes[id].grad_of == p) {
            if (found >= 0) fail_msg("parameter %s has two GRAD nodes", g->nodes[p].name);
            found = id;
        }
    if (found < 0) fail_msg("parameter %s has no GRAD node", g->nodes[p].name);
    assert_true(zn_shape_eq(&g->nodes[found].shape, &g->nodes[p].shape));
    assert_true(g->nodes[found].flags & ZN_NODE_BACKWARD);
    return found;
}

static void assert_src(const zn_graph *g, int id, int k, int want)
{
    assert_true(k < g->nodes[id].n_src);
    assert_int_equal(g->nodes[id].src[k], want);
}

/* ---- tests -------------------------------------------------------------------------------- */

/* image -> conv(w1) -> relu -> global max -> linear(w2) -> xent: six backward nodes and no
 * conv2d_bwd_data (the image needs no gradient). */
static void test_tiny_model(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "tiny");
    int image = INPUT(&g, "image", 3, 8, 8), label = LABEL(&g, 10);
    int w1 = PARAM(&g, "w1", 4, 3, 3, 3);
    zn_attrs ca = conv_attrs(3, 1);
    int conv = op_node(&g, ZN_OP_CONV2D, SRC(image, w1), "conv", &ca);
    int relu = op_node(&g, ZN_OP_RELU, SRC(conv), "relu", NULL);
    int pool = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, SRC(relu), "pool", NULL);
    int w2 = PARAM(&g, "w2", 10, 4);
    int lin = op_node(&g, ZN_OP_LINEAR, SRC(pool, w2), "logits", NULL);
    int h = head(&g, lin, label);
    const int n_fwd = g.n_nodes;
    differentiate(&g);
    assert_int_equal(n_fwd, 9);
    assert_int_equal(g.n_nodes - n_fwd, 6);

    int dlogits = bwd_of(&g, h, ZN_OP_XENT_BWD);
    assert_src(&g, dlogits, 0, lin);
    assert_src(&g, dlogits, 1, label);
    assert_string_equal(g.nodes[dlogits].name, "logits.grad");
    int dw2 = bwd_of(&g, lin, ZN_OP_LINEAR_BWD_WEIGHT);
    assert_src(&g, dw2, 0, pool);
    assert_src(&g, dw2, 1, dlogits);
    assert_int_equal(grad_node(&g, w2), dw2);
    assert_string_equal(g.nodes[dw2].name, "w2.grad");
    int dpool = bwd_of(&g, lin, ZN_OP_LINEAR_BWD_DATA);
    assert_src(&g, dpool, 0, dlogits);
    assert_src(&g, dpool, 1, w2);
    int drelu = bwd_of(&g, pool, ZN_OP_GLOBAL_MAXPOOL_BWD);
    assert_src(&g, drelu, 0, relu);
    assert_src(&g, drelu, 1, dpool);
    int dconv = bwd_of(&g, relu, ZN_OP_RELU_BWD);
    assert_src(&g, dconv, 0, relu); /* reads its own output */
    assert_src(&g, dconv, 1, drelu);
    int dw1 = bwd_of(&g, conv, ZN_OP_CONV2D_BWD_FILTER);
    assert_src(&g, dw1, 0, image);
    assert_src(&g, dw1, 1, dconv);
    assert_int_equal(grad_node(&g, w1), dw1);
    assert_int_equal(bwd_of(&g, conv, ZN_OP_CONV2D_BWD_DATA), -1);
    assert_int_equal(zt_count_flag(&g, ZN_NODE_GRAD), 2);
    for (int id = n_fwd; id < g.n_nodes; id++) {
        assert_true(g.nodes[id].flags & ZN_NODE_BACKWARD);
        assert_string_equal(g.nodes[id].span.file, "t.znet");
    }
    /* the gradient shapes: the tensors they belong to */
    assert_true(zn_shape_eq(&g.nodes[dconv].shape, &g.nodes[conv].shape));
    assert_true(zn_shape_eq(&g.nodes[dpool].shape, &g.nodes[pool].shape));
    zn_graph_free(&g);
}

/* y = conv(x); z = y + relu(y): y's gradient is the sum of two, one ADD. */
static void test_accumulation(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "acc");
    int x = INPUT(&g, "x", 2, 4, 4), label = LABEL(&g, 3);
    int w = PARAM(&g, "w", 2, 2, 1, 1);
    zn_attrs ca = conv_attrs(1, 0);
    int y = op_node(&g, ZN_OP_CONV2D, SRC(x, w), "y", &ca);
    int r = op_node(&g, ZN_OP_RELU, SRC(y), "r", NULL);
    int z = op_node(&g, ZN_OP_ADD, SRC(y, r), "z", NULL);
    int p = op_node(&g, ZN_OP_GLOBAL_AVGPOOL, SRC(z), "p", NULL);
    int v = PARAM(&g, "v", 3, 2);
    int lin = op_node(&g, ZN_OP_LINEAR, SRC(p, v), "logits", NULL);
    head(&g, lin, label);
    const int n_fwd = g.n_nodes;
    differentiate(&g);
    /* xent_bwd, linear_bwd_weight, linear_bwd_data, global_avgpool_bwd, relu_bwd, add,
     * conv2d_bwd_filter: the add forward node builds nothing */
    assert_int_equal(g.n_nodes - n_fwd, 7);
    assert_int_equal(count_op(&g, ZN_OP_ADD, ZN_NODE_BACKWARD), 1);
    int dz = bwd_of(&g, p, ZN_OP_GLOBAL_AVGPOOL_BWD);
    int dr = bwd_of(&g, r, ZN_OP_RELU_BWD);
    assert_src(&g, dr, 1, dz);
    int dy = bwd_of(&g, y, ZN_OP_ADD);
    assert_src(&g, dy, 0, dz);
    assert_src(&g, dy, 1, dr);
    assert_string_equal(g.nodes[dy].name, "y.grad");
    assert_src(&g, grad_node(&g, w), 1, dy);
    (void)z;
    zn_graph_free(&g);
}

/* One PARAM used by three convolutions: three filter gradients summed by two ADDs, one GRAD. */
static void test_shared_param(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "shared");
    int x = INPUT(&g, "x", 4, 6, 6), label = LABEL(&g, 4);
    int w = PARAM(&g, "w", 4, 4, 3, 3);
    zn_attrs ca = conv_attrs(3, 1);
    int y = x;
    for (int i = 0; i < 3; i++) y = op_node(&g, ZN_OP_CONV2D, SRC(y, w), "c", &ca);
    int p = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, SRC(y), "p", NULL);
    head(&g, p, label);
    differentiate(&g);
    assert_int_equal(count_op(&g, ZN_OP_CONV2D_BWD_FILTER, ZN_NODE_BACKWARD), 3);
    assert_int_equal(count_op(&g, ZN_OP_CONV2D_BWD_DATA, ZN_NODE_BACKWARD), 2);
    assert_int_equal(count_op(&g, ZN_OP_ADD, ZN_NODE_BACKWARD), 2);
    assert_int_equal(zt_count_flag(&g, ZN_NODE_GRAD), 1);
    int dw = grad_node(&g, w);
    assert_int_equal(g.nodes[dw].op, ZN_OP_ADD);
    /* the sum's two sources: the earlier partial sum and a filter gradient */
    int inner = g.nodes[dw].src[0];
    assert_int_equal(g.nodes[inner].op, ZN_OP_ADD);
    assert_int_equal(g.nodes[g.nodes[dw].src[1]].op, ZN_OP_CONV2D_BWD_FILTER);
    assert_int_equal(g.nodes[g.nodes[inner].src[0]].op, ZN_OP_CONV2D_BWD_FILTER);
    assert_int_equal(g.nodes[g.nodes[inner].src[1]].op, ZN_OP_CONV2D_BWD_FILTER);
    zn_graph_free(&g);
}

/* Batch norm straight on the image and a parameter-free branch beside a trained one: neither
 * the image nor the branch gets a gradient node, and running statistics get none. */
static void test_nothing_below_inputs(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "inputs");
    int image = INPUT(&g, "image", 2, 4, 4), label = LABEL(&g, 5);
    int gamma = PARAM(&g, "gamma", 2), beta = PARAM(&g, "beta", 2);
    int mean = STATE(&g, "mean", 2), var = STATE(&g, "var", 2);
    int bn = op_node(&g, ZN_OP_BATCHNORM, SRC(image, gamma, beta, mean, var), "bn", NULL);
    int trained = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, SRC(bn), "trained", NULL);
    zn_attrs pa = conv_attrs(2, 0);
    pa.stride[0] = pa.stride[1] = 2;
    int pooled = op_node(&g, ZN_OP_MAXPOOL, SRC(image), "pooled", &pa);
    int free_branch = op_node(&g, ZN_OP_GLOBAL_AVGPOOL, SRC(pooled), "free", NULL);
    zn_attrs axis0 = zn_attrs_default();
    int cat = op_node(&g, ZN_OP_CONCAT, SRC(free_branch, trained), "cat", &axis0);
    int w = PARAM(&g, "w", 5, 4);
    int lin = op_node(&g, ZN_OP_LINEAR, SRC(cat, w), "logits", NULL);
    head(&g, lin, label);
    const int n_fwd = g.n_nodes;
    differentiate(&g);
    assert_int_equal(bwd_of(&g, bn, ZN_OP_BATCHNORM_BWD_DATA), -1);
    assert_true(bwd_of(&g, bn, ZN_OP_BATCHNORM_BWD_GAMMA) >= 0);
    assert_true(bwd_of(&g, bn, ZN_OP_BIAS_BWD) >= 0);
    assert_int_equal(bwd_of(&g, pooled, ZN_OP_MAXPOOL_BWD), -1);
    assert_int_equal(bwd_of(&g, free_branch, ZN_OP_GLOBAL_AVGPOOL_BWD), -1);
    int slice = bwd_of(&g, cat, ZN_OP_SLICE); /* only the trained input's part */
    assert_int_equal(g.nodes[slice].attr.size[0], 2);
    assert_int_equal(g.nodes[slice].shape.dim[0], 2);
    /* xent, linear weight, linear data, slice, global max, gamma, beta */
    assert_int_equal(g.n_nodes - n_fwd, 7);
    grad_node(&g, gamma);
    grad_node(&g, beta);
    grad_node(&g, w);
    assert_int_equal(zt_count_flag(&g, ZN_NODE_GRAD), 3);
    (void)mean;
    (void)var;
    zn_graph_free(&g);
}

/* A conv weight that is the sum of two parameters, and one that is a parameter added to itself:
 * an add hands dy through, so each summand gets a SCALE copy as its own GRAD; p + p sums. */
static void test_param_through_add(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "through");
    int x = INPUT(&g, "x", 2, 4, 4), label = LABEL(&g, 2);
    int a = PARAM(&g, "a", 2, 2, 1, 1), b = PARAM(&g, "b", 2, 2, 1, 1);
    int c = PARAM(&g, "c", 2, 2, 1, 1);
    int ab = op_node(&g, ZN_OP_ADD, SRC(a, b), "ab", NULL);
    int cc = op_node(&g, ZN_OP_ADD, SRC(c, c), "cc", NULL);
    zn_attrs ca = conv_attrs(1, 0);
    int y1 = op_node(&g, ZN_OP_CONV2D, SRC(x, ab), "y1", &ca);
    int y2 = op_node(&g, ZN_OP_CONV2D, SRC(y1, cc), "y2", &ca);
    int p = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, SRC(y2), "p", NULL);
    head(&g, p, label);
    differentiate(&g);
    int dab = bwd_of(&g, y1, ZN_OP_CONV2D_BWD_FILTER);
    int da = grad_node(&g, a), db = grad_node(&g, b), dc = grad_node(&g, c);
    assert_true(da != db);
    for (int k = 0; k < 2; k++) {
        int d = k ? db : da;
        assert_int_equal(g.nodes[d].op, ZN_OP_SCALE);
        assert_true(g.nodes[d].attr.scale == 1.0f);
        assert_src(&g, d, 0, dab);
    }
    assert_false(g.nodes[dab].flags & ZN_NODE_GRAD);
    int dcc = bwd_of(&g, y2, ZN_OP_CONV2D_BWD_FILTER);
    assert_int_equal(g.nodes[dc].op, ZN_OP_ADD);
    assert_src(&g, dc, 0, dcc);
    assert_src(&g, dc, 1, dcc);
    (void)ab;
    (void)cc;
    zn_graph_free(&g);
}

/* Every forward op in one graph, so every backward op must come out of some rule. */
static void build_zoo(zn_graph *g)
{
    int image = INPUT(g, "image", 4, 8, 8), label = LABEL(g, 10);
    int w = PARAM(g, "w", 4, 4, 3, 3), b = PARAM(g, "b", 4);
    zn_attrs ca = conv_attrs(3, 1);
    int gamma = PARAM(g, "gamma", 4), beta = PARAM(g, "beta", 4);
    int mean = STATE(g, "mean", 4), var = STATE(g, "var", 4);
    int w0 = PARAM(g, "w0", 4, 4, 1, 1);
    zn_attrs one = conv_attrs(1, 0);
    int c0 = op_node(g, ZN_OP_CONV2D, SRC(image, w0), "c0", &one);
    int bn = op_node(g, ZN_OP_BATCHNORM, SRC(c0, gamma, beta, mean, var), "bn", NULL);
    int mean2 = STATE(g, "mean2", 4), var2 = STATE(g, "var2", 4);
    int bnr = op_node(g, ZN_OP_BATCHNORM_RELU, SRC(bn, gamma, beta, mean2, var2), "bnr", NULL);
    int c1 = op_node(g, ZN_OP_CONV2D, SRC(bnr, w, b), "c1", &ca);
    int r = c1; /* through every element-wise op of graph/op_list.h, relu first */
#define EW_NODE(OP, E, fn, reads) r = op_node(g, ZN_OP_##E, SRC(r), #fn, NULL);
    ZN_OP_LIST(ZN_OP_SKIP, EW_NODE)
#undef EW_NODE
    zn_attrs pool2 = conv_attrs(2, 0);
    pool2.stride[0] = pool2.stride[1] = 2;
    int m = op_node(g, ZN_OP_MAXPOOL, SRC(r), "m", &pool2);         /* [4, 4, 4] */
    zn_attrs pool3 = conv_attrs(3, 1);
    int a = op_node(g, ZN_OP_AVGPOOL, SRC(r), "a", &pool3);         /* [4, 8, 8] */
    zn_attrs down = zn_attrs_default();
    down.mode = ZN_RESAMPLE_AVG;
    down.factor[0] = down.factor[1] = 2;
    int rs = op_node(g, ZN_OP_RESAMPLE, SRC(a), "rs", &down);      /* [4, 4, 4] */
    int ad = op_node(g, ZN_OP_ADD, SRC(m, rs), "ad", NULL);
    zn_attrs drop = zn_attrs_default();
    drop.drop = 0.5f;
    int dr = op_node(g, ZN_OP_DROPOUT, SRC(ad), "dr", &drop);
    int gate = op_node(g, ZN_OP_GLOBAL_AVGPOOL, SRC(rs), "gate", NULL); /* [4] */
    int gated = op_node(g, ZN_OP_MUL, SRC(dr, gate), "gated", NULL);  /* [4, 4, 4] */
    zn_attrs axis0 = zn_attrs_default();
    int cat = op_node(g, ZN_OP_CONCAT, SRC(gated, m), "cat", &axis0); /* [8, 4, 4] */
    zn_attrs swap = zn_attrs_default();
    swap.perm[0] = 1;
    swap.perm[1] = 0;
    int t = op_node(g, ZN_OP_TRANSPOSE, SRC(cat), "t", &swap);     /* [4, 8, 4] */
    zn_attrs st = zn_attrs_default();
    st.size[0] = st.size[1] = 4;
    int z = op_node(g, ZN_OP_STITCH, SRC(t, r), "z", &st);         /* [4, 8, 4] */
    int gap = op_node(g, ZN_OP_GLOBAL_AVGPOOL, SRC(z), "gap", NULL);
    zn_attrs tower = conv_attrs(3, 2); /* the stitch of t and r, convolved with dilation 2 */
    tower.dilation[0] = tower.dilation[1] = 2;
    tower.size[0] = tower.size[1] = 4;
    int tw = PARAM(g, "tw", 2, 4, 3, 3), tg = PARAM(g, "tg", 2), tb = PARAM(g, "tb", 2);
    int tm = STATE(g, "tm", 2), tv = STATE(g, "tv", 2);
    int zt = op_node(g, ZN_OP_ZTOWER, SRC(t, r, tw, tg, tb, tm, tv), "zt", &tower); /* [2] */
    int gmp = op_node(g, ZN_OP_GLOBAL_MAXPOOL, SRC(t), "gmp", NULL);
    int fl = op_node(g, ZN_OP_FLATTEN, SRC(m), "fl", NULL);         /* [64] */
    int feat = op_node(g, ZN_OP_CONCAT, SRC(gap, gmp, fl, zt), "feat", &axis0);
    int lw = PARAM(g, "lw", 10, 74), lb = PARAM(g, "lb", 10);
    int lin = op_node(g, ZN_OP_LINEAR, SRC(feat, lw, lb), "lin", NULL);
    zn_attrs half = zn_attrs_default();
    half.scale = 0.5f;
    int logits = op_node(g, ZN_OP_SCALE, SRC(lin), "logits", &half);
    head(g, logits, label);
}

/* The gradient columns of the op table: a rule for every differentiable op, none elsewhere,
 * and every backward op is a shape-checked product of some rule. */
static void test_op_table(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "zoo");
    build_zoo(&g);
    const int n_fwd = g.n_nodes;
    differentiate(&g);
    bool forward_used[ZN_OP_COUNT] = {false}, built[ZN_OP_COUNT] = {false};
    for (int id = 0; id < g.n_nodes; id++)
        (id < n_fwd ? forward_used : built)[g.nodes[id].op] = true;
    for (int op = 0; op < ZN_OP_COUNT; op++) {
        const zn_op_info *info = &zn_ops[op];
        const bool backward = zn_op_is_backward(op);
        if (!backward && !zn_op_is_inference(op) && op != ZN_OP_INPUT && op != ZN_OP_PARAM &&
            !info->grad)
            fail_msg("forward op %s has no gradient rule", info->name);
        if (backward && info->grad) fail_msg("backward op %s has a gradient rule", info->name);
        if (!info->infer || !info->macs) fail_msg("op %s lacks a shape or cost rule", info->name);
        if (info->grad && !forward_used[op]) fail_msg("the zoo graph lacks op %s", info->name);
        if (backward && !built[op]) fail_msg("no gradient rule builds backward op %s", info->name);
    }
    zn_graph_free(&g);
}

/* Training multiply-adds: a conv's or linear's two backward directions cost what it does. */
static void test_backward_macs(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "zoo");
    build_zoo(&g);
    const int n_fwd = g.n_nodes;
    differentiate(&g);
    int64_t fwd = 0, bwd = 0;
    for (int id = 0; id < g.n_nodes; id++) {
        int64_t m = zn_ops[g.nodes[id].op].macs(&g, id);
        if (id < n_fwd) fwd += m;
        else bwd += m;
    }
    /* 4x8x8 outputs of a 1x1 conv over 4 channels (the image gets no data gradient, so once
     * backward) and of a 3x3 one (36 weights), linear 740 (these two twice backward); the
     * z-tower's conv (72 weights, 8x4 outputs) runs once in the forward node, three times for the
     * coefficients (the forward's statistics pass counted there), twice for each gradient (its
     * two inputs and its weight) */
    const int64_t tower = 72 * 32;
    assert_int_equal(fwd, 4 * 64 * 4 + 4 * 64 * 36 + 740 + tower);
    assert_int_equal(bwd, 4 * 64 * 4 + 2 * (4 * 64 * 36 + 740) + (3 + 3 * 2) * tower);
    zn_graph_free(&g);
}

/* Node op(src) with a preset shape (as autodiff gives it); its shape rule's message or "". */
static const char *backward_rule(zn_graph *g, zn_op op, const int *src, int n_src,
                                 const zn_attrs *attr, int rank, const int64_t *dim, bool batched)
{
    static char err[256];
    int id = add_node(g, op, src, n_src, attr, "d");
    g->nodes[id].shape = (zn_shape){.rank = rank, .batched = batched};
    memcpy(g->nodes[id].shape.dim, dim, (size_t)rank * sizeof *dim);
    return zn_graph_infer(g, id, err, sizeof err) ? "" : err;
}

#define RULE(op, src, attr, batched, ...) \
    backward_rule(&g, op, src, attr, NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__}, batched)
/* The shape rules of the backward ops whose shape their sources do not determine check the
 * preset one; the others compute theirs (autodiff compares, test_every_model runs it). */
static void test_backward_shape_rules(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "rules");
    int dy = INPUT(&g, "dy", 4, 3, 3), w = PARAM(&g, "w", 4, 2, 3, 3);
    int dv = INPUT(&g, "dv", 6), lw = PARAM(&g, "lw", 6, 5);
    zn_attrs s2 = conv_attrs(3, 1);
    s2.stride[0] = s2.stride[1] = 2;
    assert_string_equal(RULE(ZN_OP_CONV2D_BWD_DATA, SRC(dy, w), &s2, true, 2, 6, 6), "");
    assert_string_equal(RULE(ZN_OP_CONV2D_BWD_DATA, SRC(dy, w), &s2, true, 2, 5, 5), "");
    assert_non_null(strstr(RULE(ZN_OP_CONV2D_BWD_DATA, SRC(dy, w), &s2, true, 2, 8, 8),
                           "conv2d_bwd_data: dy [N, 4, 3, 3] is not the output of a window "
                           "over [N, 2, 8, 8]"));
    assert_non_null(strstr(RULE(ZN_OP_CONV2D_BWD_DATA, SRC(dy, w), &s2, true, 3, 6, 6),
                           "not the output of a window"));
    assert_non_null(strstr(RULE(ZN_OP_CONV2D_BWD_DATA, SRC(dy, w), &s2, false, 2, 6, 6),
                           "the gradient's shape [2, 6, 6] does not fit dy [N, 4, 3, 3]"));
    zn_attrs p2 = conv_attrs(2, 0);
    p2.stride[0] = p2.stride[1] = 2;
    assert_string_equal(RULE(ZN_OP_AVGPOOL_BWD, SRC(dy), &p2, true, 4, 7, 6), "");
    assert_non_null(strstr(RULE(ZN_OP_AVGPOOL_BWD, SRC(dy), &p2, true, 4, 8, 8),
                           "avgpool_bwd: dy [N, 4, 3, 3] is not the output of a window"));
    assert_string_equal(RULE(ZN_OP_GLOBAL_AVGPOOL_BWD, SRC(dv), NULL, true, 6, 2, 2), "");
    assert_non_null(strstr(RULE(ZN_OP_GLOBAL_AVGPOOL_BWD, SRC(dv), NULL, true, 5, 2, 2),
                           "dy [N, 6] is not the pooled [N, 5, 2, 2]"));
    zn_attrs sl = zn_attrs_default();
    sl.axis = 1;
    sl.size[0] = 1;
    assert_string_equal(RULE(ZN_OP_SLICE, SRC(dy), &sl, true, 4, 2, 3), "");
    assert_non_null(strstr(RULE(ZN_OP_SLICE, SRC(dy), &sl, true, 4, 3, 3),
                           "slice: [N, 4, 3, 3] at offset 1 along axis 1 is not a part of dy"));
    assert_non_null(strstr(RULE(ZN_OP_SLICE, SRC(dy), &sl, true, 3, 2, 3), "is not a part"));
    assert_string_equal(RULE(ZN_OP_RESHAPE, SRC(dy), NULL, true, 36), "");
    assert_non_null(strstr(RULE(ZN_OP_RESHAPE, SRC(dy), NULL, true, 35),
                           "reshape: [N, 35] does not hold the elements of x [N, 4, 3, 3]"));
    /* computed ones: their sources must fit */
    assert_string_equal(RULE(ZN_OP_LINEAR_BWD_DATA, SRC(dv, lw), NULL, true, 5), "");
    assert_non_null(strstr(RULE(ZN_OP_LINEAR_BWD_DATA, SRC(dy, lw), NULL, true, 5),
                           "dy must be [O], got [N, 4, 3, 3]"));
    zn_attrs st = zn_attrs_default();
    st.axis = 2;
    assert_non_null(strstr(RULE(ZN_OP_STITCH_BWD, SRC(dy, dy), &st, true, 4, 3, 3),
                           "stitch_bwd: input 2 is not one of the 1 inputs"));
    zn_attrs g3 = conv_attrs(3, 1);
    g3.groups = 3;
    assert_non_null(strstr(RULE(ZN_OP_CONV2D_BWD_FILTER, SRC(dy, dy), &g3, false, 4, 1, 3, 3),
                           "do not split into 3 groups"));
    zn_graph_free(&g);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256];
    zn_graph g;
    zn_graph_init(&g, "headless");
    int x = INPUT(&g, "x", 3), w = PARAM(&g, "w", 2, 3);
    op_node(&g, ZN_OP_LINEAR, SRC(x, w), "y", NULL);
    assert_false(zn_autodiff(&g, err, sizeof err));
    assert_non_null(strstr(err, "model 'headless' has no loss head"));
    zn_graph_free(&g);

    zn_graph_init(&g, "twice");
    build_zoo(&g);
    differentiate(&g);
    const int n = g.n_nodes;
    assert_false(zn_autodiff(&g, err, sizeof err));
    assert_non_null(strstr(err, "already has backward nodes"));
    assert_int_equal(g.n_nodes, n);
    zn_graph_free(&g);
}

/* ---- the models ----------------------------------------------------------------------------- */

static bool load(const char *path, const zn_setting *settings, int n_settings, zn_graph *g)
{
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_recipe r;
    zn_load_opts o = {.path = path, .settings = settings, .n_settings = n_settings};
    bool ok = zn_program_load(&o, &d, g, &r);
    zn_diag_free(&d);
    return ok;
}

/* Every trainable parameter a loss depends on has exactly one GRAD of its shape; every backward
 * node follows the forward ones and passes its shape rule; returns the GRAD count. */
static int check_model_grads(zn_graph *g, const char *what)
{
    const int n_fwd = g->n_nodes;
    differentiate(g);
    int trainable = 0;
    for (int p = 0; p < n_fwd; p++) {
        const zn_node *n = &g->nodes[p];
        assert_false(n->flags & ZN_NODE_BACKWARD);
        if (n->op != ZN_OP_PARAM) continue;
        if (!(n->flags & ZN_NODE_PARAM)) continue;
        int uses = 0; /* a parameter read several times (a shared block) has a summed gradient */
        for (int id = 0; id < n_fwd; id++)
            for (int k = 0; k < g->nodes[id].n_src; k++) uses += g->nodes[id].src[k] == p;
        int d = grad_node(g, p);
        if (uses > 1) assert_int_equal(g->nodes[d].op, ZN_OP_ADD);
        trainable++;
    }
    for (int id = n_fwd; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        assert_true(n->flags & ZN_NODE_BACKWARD);
        if ((n->flags & ZN_NODE_GRAD) && !(g->nodes[n->grad_of].flags & ZN_NODE_PARAM))
            fail_msg("%s: GRAD node %s is not a trainable parameter's", what, n->name);
    }
    if (zt_count_flag(g, ZN_NODE_GRAD) != trainable)
        fail_msg("%s: %d GRAD nodes for %d trainable parameters", what,
                 zt_count_flag(g, ZN_NODE_GRAD), trainable);
    return trainable;
}

static void model_grads(const char *rel, void *ctx)
{
    (void)ctx;
    zn_graph g;
    if (!load(zt_src_path(rel), NULL, 0, &g)) fail_msg("%s does not load", rel);
    check_model_grads(&g, rel);
    zn_graph_free(&g);
}

static void test_every_model(void **state)
{
    (void)state;
    assert_true(zt_each_model(model_grads, NULL) >= 3);
}

/* The Z-tower variants: a shared tower (its parameters summed over three heads), grouped convs
 * and the channel-axis pooling (a transpose); counts printed for the report. */
static void test_zee_variants(void **state)
{
    (void)state;
    static const zn_setting variants[][3] = {
        {{"width", "16"}},
        {{"width", "16"}, {"roots", "true"}, {"filters", "[8, 16]"}},
        {{"width", "16"}, {"pool", "\"channel_axis\""}, {"filters", "[64, 128]"}},
    };
    static const int n_settings[] = {1, 3, 3};
    char path[1024];
    snprintf(path, sizeof path, "%s", zt_src_path("models/davidnet_zee.znet"));
    for (int v = 0; v < 3; v++) {
        zn_graph g;
        if (!load(path, variants[v], n_settings[v], &g)) fail_msg("variant %d does not load", v);
        char err[256];
        if (!zn_passes_run(&g, NULL, 0, NULL, err, sizeof err)) fail_msg("passes: %s", err); /* fuses the stitches */
        if (!zn_pass_ztower(&g, err, sizeof err)) fail_msg("ztower: %s", err); /* the memory lever, as a budget runs it */
        const int n_fwd = g.n_nodes;
        int params = check_model_grads(&g, "davidnet_zee");
        printf("davidnet_zee variant %d: %d forward nodes, %d in all (%d backward), %d GRADs\n", v,
               n_fwd, g.n_nodes, g.n_nodes - n_fwd, params);
        /* the default one-layer tower fuses into three ztowers; the others keep their stitches */
        int stitches = 0, towers = 0;
        for (int id = 0; id < n_fwd; id++) {
            stitches += g.nodes[id].op == ZN_OP_STITCH;
            towers += g.nodes[id].op == ZN_OP_ZTOWER;
        }
        assert_int_equal(towers, v == 0 ? 3 : 0);
        assert_int_equal(stitches, v == 0 ? 0 : 3);
        assert_int_equal(count_op(&g, ZN_OP_STITCH_BWD, ZN_NODE_BACKWARD), v == 0 ? 0 : 1 + 2 + 3);
        assert_int_equal(count_op(&g, ZN_OP_ZTOWER_BWD, ZN_NODE_BACKWARD), v == 0 ? 1 + 2 + 3 + 3 : 0);
        assert_int_equal(count_op(&g, ZN_OP_ZTOWER_COEF, ZN_NODE_BACKWARD), v == 0 ? 3 : 0);
        zn_graph_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_shared_param),
        cmocka_unit_test(test_nothing_below_inputs),
        cmocka_unit_test(test_param_through_add),
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_backward_macs),
        cmocka_unit_test(test_backward_shape_rules),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_every_model),
        cmocka_unit_test(test_zee_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
