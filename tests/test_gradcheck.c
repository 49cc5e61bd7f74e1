/* test_gradcheck.c: autodiff's gradients against central differences of the loss, through the
 * whole graph on the CPU backend: one tiny graph per case (a table with a case for every
 * differentiable op, which a test enforces) and a small DavidNet-Zee end to end.
 * An op's input is made trainable by a 1x1 convolution (a linear layer for vectors) of a one-hot
 * input: x[n, c, h, w] = w[c, (n H + h) W + w], so the weight's gradient is the op's whole input
 * gradient. Those values lie on a shuffled grid 4h apart: no max ties, no relu kinks within h. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "graph/autodiff.h"
#include "graph/graph.h"
#include "graph/passes.h"
#include "lang/program.h"
#include "data/rng.h"

enum { MAX_GRID = 16 };

/* A graph under test and how to fill it. */
typedef struct {
    zn_graph g;
    int batch;
    int label, classes;   /* the label input; classes of the head */
    int grid[MAX_GRID];   /* PARAMs filled with the separated grid (the ops' inputs) */
    int n_grid;
    int onehot[MAX_GRID]; /* INPUTs holding one-hot rows */
    int n_onehot;
    float h;              /* finite-difference step */
    int samples;          /* elements compared per parameter, at most */
    bool kinks;           /* uncontrolled relus and maxima: skip elements where h and h/2 disagree */
    bool recompute;       /* after autodiff, recompute as a memory budget may: split segments with
                             every conv but those reading a max pool (so the pool is recomputed
                             too, not kept as a conv's input), a copy per reader */
} net;

static const zn_span no_span = {0};

static int inferred(zn_graph *g, int id)
{
    char err[256];
    if (!zn_graph_infer(g, id, err, sizeof err)) fail_msg("node %d: %s", id, err);
    return id;
}

static int leaf(net *t, zn_op op, unsigned flags, const char *name, int rank, const int64_t *dim)
{
    int id = zn_graph_add(&t->g, op, NULL, 0, NULL, name, "", no_span);
    t->g.nodes[id].flags = flags;
    t->g.nodes[id].shape.rank = rank;
    memcpy(t->g.nodes[id].shape.dim, dim, (size_t)rank * sizeof *dim);
    return inferred(&t->g, id);
}

#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define DIMS(...) NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__}
#define SRC(...) (const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* A trainable parameter; init picks its fill (see fill_param). */
static int param(net *t, const char *name, zn_init init, int rank, const int64_t *dim)
{
    int id = leaf(t, ZN_OP_PARAM, ZN_NODE_PARAM, name, rank, dim);
    t->g.nodes[id].attr.init = init;
    t->g.nodes[id].attr.fan_in = (int)(zn_shape_numel(&t->g.nodes[id].shape) / dim[0]);
    return id;
}

static int state(net *t, const char *name, zn_init init, int64_t c)
{
    int id = leaf(t, ZN_OP_PARAM, ZN_NODE_STATE, name, 1, &c);
    t->g.nodes[id].attr.init = init;
    return id;
}

static int node(net *t, zn_op op, const int *src, int n_src, const zn_attrs *attr)
{
    return inferred(&t->g, zn_graph_add(&t->g, op, src, n_src, attr, zn_ops[op].name, "", no_span));
}

static void net_init(net *t, int batch, int classes)
{
    memset(t, 0, sizeof *t);
    zn_graph_init(&t->g, "gradcheck");
    t->batch = batch;
    t->classes = classes;
    t->h = 2e-3f;
    t->samples = 192;
    t->label = zn_graph_add(&t->g, ZN_OP_INPUT, NULL, 0, NULL, "label", "", no_span);
    t->g.nodes[t->label].flags = ZN_NODE_INPUT | ZN_NODE_LABEL;
    t->g.nodes[t->label].attr.out = classes;
    inferred(&t->g, t->label);
}

/* A batched tensor of per-example shape dim[rank] (rank 1 or 3) whose every element is one
 * trainable grid value: one-hot input times a weight (see the file comment). */
static int data(net *t, int rank, const int64_t *dim)
{
    assert_true(t->n_grid < MAX_GRID && (rank == 1 || rank == 3));
    const int64_t spatial = rank == 3 ? dim[1] * dim[2] : 1, rows = t->batch * spatial;
    int x, w;
    zn_attrs a = zn_attrs_default();
    if (rank == 3) {
        x = leaf(t, ZN_OP_INPUT, ZN_NODE_INPUT, "onehot", DIMS(rows, dim[1], dim[2]));
        w = param(t, "x", ZN_INIT_NONE, DIMS(dim[0], rows, 1, 1));
        a.kernel[0] = a.kernel[1] = 1;
        t->onehot[t->n_onehot++] = x;
        t->grid[t->n_grid++] = w;
        return node(t, ZN_OP_CONV2D, SRC(x, w), &a);
    }
    x = leaf(t, ZN_OP_INPUT, ZN_NODE_INPUT, "onehot", DIMS(rows));
    w = param(t, "x", ZN_INIT_NONE, DIMS(dim[0], rows));
    t->onehot[t->n_onehot++] = x;
    t->grid[t->n_grid++] = w;
    return node(t, ZN_OP_LINEAR, SRC(x, w), &a);
}

#define DATA(t, ...) data(t, DIMS(__VA_ARGS__))
#define PARAM(t, name, init, ...) param(t, name, init, DIMS(__VA_ARGS__))

/* The loss head: y flattened and projected to the classes unless it is already the logits. */
static int head_with(net *t, int y, const zn_attrs *xent)
{
    const zn_shape *s = &t->g.nodes[y].shape;
    if (s->rank != 1) y = node(t, ZN_OP_FLATTEN, SRC(y), NULL);
    const int64_t features = t->g.nodes[y].shape.dim[0];
    if (features != t->classes) {
        int w = PARAM(t, "proj", ZN_INIT_FAN_IN, t->classes, features);
        y = node(t, ZN_OP_LINEAR, SRC(y, w), NULL);
    }
    int h = node(t, ZN_OP_XENT, SRC(y, t->label), xent);
    t->g.nodes[h].flags |= ZN_NODE_LOSS;
    return h;
}

static int head(net *t, int y)
{
    return head_with(t, y, NULL);
}

/* ---- running a graph on the CPU backend --------------------------------------------------- */

typedef struct {
    net *t;
    int n_fwd;          /* forward nodes (autodiff appends after them) */
    zn_backend *be;
    zn_plan plan;
    float **value;      /* per node: host values of PARAMs and INPUTs, else NULL */
} run;

static size_t workspace(void *ctx, const zn_graph *g, int id, int batch)
{
    zn_backend *be = ctx;
    return be->ops->workspace_bytes(be, g, id, batch);
}

static void check_be(run *r, bool ok, const char *call)
{
    if (!ok) fail_msg("%s: %s", call, r->be->ops->last_error(r->be));
}

static float uniform(zn_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * zn_rng_uniform(rng);
}

static bool listed(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* Parameter values: the grid for the ops' inputs; otherwise by init, randomised so that no
 * gradient is special (biases and betas not zero, gammas not one). */
static void fill_param(const net *t, int id, float *v, size_t n, zn_rng *rng)
{
    const zn_node *p = &t->g.nodes[id];
    if (listed(t->grid, t->n_grid, id)) {
        for (size_t i = 0; i < n; i++) v[i] = ((float)i - 0.5f * (float)(n - 1)) * 4 * t->h;
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = zn_rng_below(rng, (uint32_t)i);
            float tmp = v[i - 1];
            v[i - 1] = v[j];
            v[j] = tmp;
        }
        return;
    }
    const bool trainable = p->flags & ZN_NODE_PARAM;
    for (size_t i = 0; i < n; i++) {
        switch (p->attr.init) {
        case ZN_INIT_FAN_IN: {
            float bound = 1.0f / sqrtf((float)(p->attr.fan_in > 0 ? p->attr.fan_in : 1));
            v[i] = uniform(rng, -bound, bound);
            break;
        }
        case ZN_INIT_ZEROS:
            v[i] = trainable ? uniform(rng, -0.2f, 0.2f) : 0.0f;
            break;
        case ZN_INIT_ONES:
            v[i] = trainable ? uniform(rng, 0.5f, 1.5f) : 1.0f;
            break;
        default:
            v[i] = trainable ? uniform(rng, -1, 1) : 0.0f;
            break;
        }
    }
}

/* Inputs: one-hot rows, random labels, anything else (a model's image) uniform in [-1, 1]. */
static void fill_input(const net *t, int id, float *v, size_t n, zn_rng *rng)
{
    const zn_node *x = &t->g.nodes[id];
    if (x->flags & ZN_NODE_LABEL) {
        int32_t *label = (int32_t *)v;
        for (size_t i = 0; i < n; i++) label[i] = (int32_t)zn_rng_below(rng, (uint32_t)x->attr.out);
    } else if (listed(t->onehot, t->n_onehot, id)) {
        const size_t rows = (size_t)x->shape.dim[0], per_row = n / rows / (size_t)t->batch;
        /* x[n, p, hw] = (p == n * HW + hw) */
        memset(v, 0, n * sizeof *v);
        for (size_t e = 0; e < (size_t)t->batch; e++)
            for (size_t hw = 0; hw < per_row; hw++) {
                size_t p = e * per_row + hw;
                v[(e * rows + p) * per_row + hw] = 1.0f;
            }
    } else {
        for (size_t i = 0; i < n; i++) v[i] = uniform(rng, -1, 1);
    }
}

static void run_init(run *r, net *t, uint64_t seed)
{
    char err[256];
    memset(r, 0, sizeof *r);
    r->t = t;
    r->n_fwd = t->g.n_nodes;
    if (!zn_autodiff(&t->g, err, sizeof err)) fail_msg("autodiff: %s", err);
    if (t->recompute) {
        bool *all = calloc((size_t)t->g.n_nodes, sizeof *all);
        for (int i = 0; i < t->g.n_nodes; i++)
            all[i] = t->g.nodes[i].n_src && t->g.nodes[t->g.nodes[i].src[0]].op != ZN_OP_MAXPOOL;
        zn_recompute_choice choice = {all, true, true, true};
        if (!zn_pass_recompute_convs(&t->g, &choice, err, sizeof err)) fail_msg("recompute: %s", err);
        free(all);
    }
    const zn_backend_opts opts = {.training = true, .threads = 1};
    r->be = zn_cpu_backend.create(&opts, err, sizeof err);
    if (!r->be) fail_msg("create: %s", err);
    if (!zn_plan_make(&r->plan, &t->g, t->batch, workspace, r->be, err, sizeof err))
        fail_msg("plan: %s", err);
    check_be(r, r->be->ops->alloc(r->be, &r->plan), "alloc");
    check_be(r, r->be->ops->prepare(r->be, &t->g, &r->plan), "prepare");
    r->be->ops->set_rng(r->be, 7, 3); /* one dropout mask for every forward of a case */
    r->value = calloc((size_t)t->g.n_nodes, sizeof *r->value);
    assert_non_null(r->value);
    zn_rng rng;
    zn_rng_init(&rng, seed);
    for (int id = 0; id < r->n_fwd; id++) {
        const zn_node *n = &t->g.nodes[id];
        if (n->op != ZN_OP_PARAM && n->op != ZN_OP_INPUT) continue;
        size_t count = r->plan.bytes[id] / sizeof(float);
        r->value[id] = malloc(r->plan.bytes[id] ? r->plan.bytes[id] : 1);
        assert_non_null(r->value[id]);
        (n->op == ZN_OP_PARAM ? fill_param : fill_input)(t, id, r->value[id], count, &rng);
    }
}

static void run_free(run *r)
{
    for (int id = 0; id < r->t->g.n_nodes; id++) free(r->value[id]);
    free(r->value);
    zn_plan_free(&r->plan);
    zn_cpu_backend.destroy(r->be);
}

static void upload(run *r, int id)
{
    check_be(r, r->be->ops->set(r->be, r->plan.region[id], r->plan.offset[id], r->value[id],
                                 r->plan.bytes[id]), "set");
}

static void download(run *r, int id, float *host)
{
    check_be(r, r->be->ops->get(r->be, r->plan.region[id], r->plan.offset[id], host,
                                r->plan.bytes[id]), "get");
}

/* Runs nodes 0..last with every input and parameter uploaded; returns the weighted total loss. */
static double loss_through(run *r, int last)
{
    const zn_graph *g = &r->t->g;
    for (int id = 0; id < r->n_fwd; id++)
        if (r->value[id]) upload(r, id);
    check_be(r, r->be->ops->compute(r->be, g, &r->plan, 0, last), "compute");
    double total = 0;
    for (int id = 0; id < r->n_fwd; id++) {
        if (!(g->nodes[id].flags & ZN_NODE_LOSS)) continue;
        float loss;
        download(r, id, &loss);
        total += (double)g->nodes[id].attr.weight * loss;
    }
    return total;
}

static double forward_loss(run *r)
{
    return loss_through(r, r->n_fwd - 1);
}

/* Central difference of the loss in element i of parameter p with step h. */
static double central(run *r, int p, size_t i, float h)
{
    float *v = r->value[p], keep = v[i];
    v[i] = keep + h;
    double up = forward_loss(r);
    v[i] = keep - h;
    double down = forward_loss(r);
    v[i] = keep;
    return (up - down) / (2.0 * (double)h);
}

typedef struct {
    double overall;   /* the relative error over every compared element of every parameter */
    double worst;     /* the largest relative error of one parameter */
    int params;       /* parameters compared */
    int elements;     /* elements compared */
    int skipped;      /* elements skipped at a kink */
    char worst_name[64];
} check;

/* Compares every parameter's GRAD with central differences over up to t->samples of its
 * elements: |numeric - analytic| / max(|numeric|, |analytic|) over the sampled vectors. */
static check gradcheck(net *t, uint64_t seed)
{
    run r;
    run_init(&r, t, seed);
    const zn_graph *g = &t->g;
    loss_through(&r, g->n_nodes - 1);
    check c = {0};
    double diff_all = 0, norm_all = 0;
    zn_rng pick;
    zn_rng_init(&pick, seed + 1);
    for (int d = r.n_fwd; d < g->n_nodes; d++) {
        if (!(g->nodes[d].flags & ZN_NODE_GRAD)) continue;
        const int p = g->nodes[d].grad_of;
        const size_t n = r.plan.bytes[p] / sizeof(float);
        float *analytic = malloc(r.plan.bytes[d]);
        size_t *order = malloc(n * sizeof *order);
        assert_true(analytic && order);
        download(&r, d, analytic);
        for (size_t i = 0; i < n; i++) order[i] = i;
        const size_t m = n < (size_t)t->samples ? n : (size_t)t->samples;
        for (size_t i = 0; i < m; i++) { /* the first m of a random permutation */
            size_t j = i + zn_rng_below(&pick, (uint32_t)(n - i));
            size_t tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        double diff = 0, norm_num = 0, norm_ana = 0;
        for (size_t s = 0; s < m; s++) {
            const size_t i = order[s];
            double num = central(&r, p, i, t->h);
            if (t->kinks) {
                double half = central(&r, p, i, t->h / 2);
                if (fabs(num - half) > 0.05 * fmax(fabs(num), fabs(half)) + 2e-3) {
                    c.skipped++;
                    continue;
                }
            }
            diff += (num - analytic[i]) * (num - analytic[i]);
            norm_num += num * num;
            norm_ana += (double)analytic[i] * analytic[i];
            c.elements++;
        }
        double rel = sqrt(diff) / fmax(fmax(sqrt(norm_num), sqrt(norm_ana)), 1e-6);
        if (rel > c.worst || !c.params) {
            c.worst = rel;
            snprintf(c.worst_name, sizeof c.worst_name, "%s", g->nodes[p].name);
        }
        diff_all += diff;
        norm_all += fmax(norm_num, norm_ana);
        c.params++;
        free(analytic);
        free(order);
    }
    c.overall = sqrt(diff_all) / fmax(sqrt(norm_all), 1e-6);
    run_free(&r);
    return c;
}

/* ---- the cases ---------------------------------------------------------------------------- */

static zn_attrs window(int k, int stride, int pad)
{
    zn_attrs a = zn_attrs_default();
    a.kernel[0] = a.kernel[1] = k;
    a.stride[0] = a.stride[1] = stride;
    a.pad[0] = a.pad[1] = pad;
    return a;
}

/* conv2d of data [c, hw, hw] with o outputs; dilation, groups and a bias as given. */
static void conv_case(net *t, int c, int hw, int o, zn_attrs a, bool bias)
{
    int x = DATA(t, c, hw, hw);
    int w = PARAM(t, "w", ZN_INIT_FAN_IN, o, c / a.groups, a.kernel[0], a.kernel[1]);
    int b = bias ? PARAM(t, "b", ZN_INIT_ZEROS, o) : -1;
    head(t, bias ? node(t, ZN_OP_CONV2D, SRC(x, w, b), &a) : node(t, ZN_OP_CONV2D, SRC(x, w), &a));
}

static void build_conv_stride2(net *t)
{
    conv_case(t, 3, 7, 4, window(3, 2, 0), false);
}

static void build_conv_pad1_bias(net *t)
{
    conv_case(t, 3, 5, 4, window(3, 1, 1), true);
}

static void build_conv_pad2_dilation2(net *t)
{
    zn_attrs a = window(3, 1, 2);
    a.dilation[0] = a.dilation[1] = 2;
    conv_case(t, 3, 5, 4, a, false);
}

static void build_conv_groups2(net *t)
{
    zn_attrs a = window(3, 2, 1);
    a.groups = 2;
    conv_case(t, 4, 5, 6, a, true);
}

static void build_conv_groups8_dilated(net *t) /* the z-tower's "roots" layer */
{
    zn_attrs a = window(3, 1, 2);
    a.groups = 8;
    a.dilation[0] = a.dilation[1] = 2;
    conv_case(t, 8, 4, 16, a, false);
}

static void unary_case(net *t, zn_op op, zn_attrs a, int c, int hw)
{
    head(t, node(t, op, SRC(DATA(t, c, hw, hw)), &a));
}

static void build_maxpool(net *t)
{
    unary_case(t, ZN_OP_MAXPOOL, window(2, 2, 0), 2, 6);
}

static void build_maxpool_pad(net *t)
{
    unary_case(t, ZN_OP_MAXPOOL, window(3, 2, 1), 2, 5);
}

static void build_avgpool(net *t)
{
    unary_case(t, ZN_OP_AVGPOOL, window(2, 2, 0), 2, 6);
}

static void build_avgpool_pad(net *t)
{
    unary_case(t, ZN_OP_AVGPOOL, window(3, 1, 1), 2, 5);
}

static void build_global_maxpool(net *t)
{
    unary_case(t, ZN_OP_GLOBAL_MAXPOOL, zn_attrs_default(), 3, 4);
}

static void build_global_avgpool(net *t)
{
    unary_case(t, ZN_OP_GLOBAL_AVGPOOL, zn_attrs_default(), 3, 4);
}

static zn_attrs resample(zn_resample_mode mode, int factor)
{
    zn_attrs a = zn_attrs_default();
    a.mode = mode;
    a.factor[0] = a.factor[1] = factor;
    return a;
}

static void build_resample_max2(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_MAX, 2), 2, 4);
}

static void build_resample_max4(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_MAX, 4), 2, 8);
}

static void build_resample_avg2(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_AVG, 2), 2, 4);
}

static void build_resample_avg4(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_AVG, 4), 2, 8);
}

static void build_resample_nearest2(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_NEAREST, 2), 2, 3);
}

static void build_resample_nearest4(net *t)
{
    unary_case(t, ZN_OP_RESAMPLE, resample(ZN_RESAMPLE_NEAREST, 4), 2, 2);
}

static void build_resample_to_size(net *t) /* 6x4 -> 2x2: down by 3 in rows, by 2 in columns */
{
    zn_attrs a = zn_attrs_default();
    a.mode = ZN_RESAMPLE_MAX;
    a.size[0] = 2;
    a.size[1] = 2;
    head(t, node(t, ZN_OP_RESAMPLE, SRC(DATA(t, 2, 6, 4)), &a));
}

static zn_attrs stitch(int size, zn_resample_mode mode)
{
    zn_attrs a = zn_attrs_default();
    a.size[0] = a.size[1] = size;
    a.mode = mode;
    return a;
}

static void build_stitch3(net *t) /* 16, 8 and 4 -> 8, as DavidNet-Zee's third head */
{
    zn_attrs a = stitch(8, ZN_RESAMPLE_MAX);
    int r1 = DATA(t, 2, 16, 16), r2 = DATA(t, 3, 8, 8), r3 = DATA(t, 2, 4, 4);
    head(t, node(t, ZN_OP_STITCH, SRC(r1, r2, r3), &a));
}

static void build_stitch_by4(net *t) /* down by 4 (average) and up by 4 */
{
    zn_attrs a = stitch(4, ZN_RESAMPLE_AVG);
    int r1 = DATA(t, 2, 16, 16), r2 = DATA(t, 3, 1, 1);
    head(t, node(t, ZN_OP_STITCH, SRC(r1, r2), &a));
}

static void build_ztower(net *t) /* 8 and 4 -> 4, dilated conv, batch norm, relu, max */
{
    zn_attrs a = window(3, 1, 2);
    a.dilation[0] = a.dilation[1] = 2;
    a.size[0] = a.size[1] = 4;
    int r1 = DATA(t, 2, 8, 8), r2 = DATA(t, 1, 4, 4);
    int w = PARAM(t, "w", ZN_INIT_FAN_IN, 2, 4, 3, 3);
    int gamma = PARAM(t, "gamma", ZN_INIT_ONES, 2), beta = PARAM(t, "beta", ZN_INIT_ZEROS, 2);
    int mean = state(t, "mean", ZN_INIT_ZEROS, 2), var = state(t, "var", ZN_INIT_ONES, 2);
    head(t, node(t, ZN_OP_ZTOWER, SRC(r1, r2, w, gamma, beta, mean, var), &a));
}

static void concat_case(net *t, int axis, int a_extent, int b_extent)
{
    zn_attrs a = zn_attrs_default();
    a.axis = axis;
    int64_t da[3] = {2, 3, 4}, db[3] = {2, 3, 4};
    da[axis] = a_extent;
    db[axis] = b_extent;
    head(t, node(t, ZN_OP_CONCAT, SRC(data(t, 3, da), data(t, 3, db)), &a));
}

static void build_concat_axis0(net *t)
{
    concat_case(t, 0, 2, 3);
}

static void build_concat_axis1(net *t)
{
    concat_case(t, 1, 2, 3);
}

static void build_concat_vectors(net *t) /* a DavidNet-Zee head: two pooled vectors */
{
    zn_attrs a = zn_attrs_default();
    head(t, node(t, ZN_OP_CONCAT, SRC(DATA(t, 4), DATA(t, 3)), &a));
}

static void build_transpose(net *t)
{
    zn_attrs a = zn_attrs_default();
    a.perm[0] = 1;
    a.perm[1] = 0;
    a.perm[2] = 2;
    head(t, node(t, ZN_OP_TRANSPOSE, SRC(DATA(t, 2, 3, 4)), &a));
}

static void build_transpose_cycle(net *t) /* perm (2, 0, 1): its inverse is another perm */
{
    zn_attrs a = zn_attrs_default();
    a.perm[0] = 2;
    a.perm[1] = 0;
    a.perm[2] = 1;
    int x = DATA(t, 2, 3, 4);
    head(t, node(t, ZN_OP_TRANSPOSE, SRC(x), &a));
}

static void build_flatten(net *t)
{
    head(t, node(t, ZN_OP_FLATTEN, SRC(DATA(t, 2, 3, 3)), NULL));
}

static void build_batchnorm(net *t)
{
    int x = DATA(t, 3, 3, 3);
    int gamma = PARAM(t, "gamma", ZN_INIT_ONES, 3), beta = PARAM(t, "beta", ZN_INIT_ZEROS, 3);
    int mean = state(t, "mean", ZN_INIT_ZEROS, 3), var = state(t, "var", ZN_INIT_ONES, 3);
    head(t, node(t, ZN_OP_BATCHNORM, SRC(x, gamma, beta, mean, var), NULL));
}

/* relu(batchnorm(x)) as one node (graph/pass_fuse_bn_relu.c). The grid keeps x, not the
 * normalised values, away from the relu's kink, so elements where h and h/2 disagree are skipped. */
static void build_batchnorm_relu(net *t)
{
    t->kinks = true;
    int x = DATA(t, 3, 3, 3);
    int gamma = PARAM(t, "gamma", ZN_INIT_ONES, 3), beta = PARAM(t, "beta", ZN_INIT_ZEROS, 3);
    int mean = state(t, "mean", ZN_INIT_ZEROS, 3), var = state(t, "var", ZN_INIT_ONES, 3);
    head(t, node(t, ZN_OP_BATCHNORM_RELU, SRC(x, gamma, beta, mean, var), NULL));
}

static void build_linear_bias(net *t)
{
    int x = DATA(t, 6);
    int w = PARAM(t, "w", ZN_INIT_FAN_IN, t->classes, 6), b = PARAM(t, "b", ZN_INIT_ZEROS, t->classes);
    head(t, node(t, ZN_OP_LINEAR, SRC(x, w, b), NULL));
}

static void build_add(net *t)
{
    int a = DATA(t, 2, 3, 3), b = DATA(t, 2, 3, 3);
    head(t, node(t, ZN_OP_ADD, SRC(a, b), NULL));
}

static void build_add_same(net *t) /* x + x: one tensor, two uses */
{
    int x = DATA(t, 2, 3, 3);
    head(t, node(t, ZN_OP_ADD, SRC(x, x), NULL));
}

static void build_scale(net *t)
{
    zn_attrs a = zn_attrs_default();
    a.scale = -0.375f;
    unary_case(t, ZN_OP_SCALE, a, 2, 3);
}

static void build_dropout(net *t) /* a wrong mask in the backward gives O(1) errors */
{
    zn_attrs a = zn_attrs_default();
    a.drop = 0.4f;
    a.stream = 2;
    unary_case(t, ZN_OP_DROPOUT, a, 3, 4);
}

static void build_mul(net *t)
{
    int a = DATA(t, 2, 3, 3), b = DATA(t, 2, 3, 3);
    head(t, node(t, ZN_OP_MUL, SRC(a, b), NULL));
}

static void build_mul_same(net *t) /* x * x: one tensor, two uses */
{
    int x = DATA(t, 2, 3, 3);
    head(t, node(t, ZN_OP_MUL, SRC(x, x), NULL));
}

static void build_mul_gate(net *t) /* a [C] gate per example over [C, H, W] */
{
    t->h = 1e-2f; /* smooth, and x's gradient is a gate's fraction of dy: rounding weighs more */
    int x = DATA(t, 3, 4, 4), gate = DATA(t, 3);
    head(t, node(t, ZN_OP_MUL, SRC(x, gate), NULL));
}

static void build_relu(net *t)
{
    unary_case(t, ZN_OP_RELU, zn_attrs_default(), 2, 4);
}

static void build_gelu(net *t)
{
    unary_case(t, ZN_OP_GELU, zn_attrs_default(), 2, 4);
}

static void build_silu(net *t)
{
    unary_case(t, ZN_OP_SILU, zn_attrs_default(), 3, 3);
}

static void build_sigmoid(net *t)
{
    unary_case(t, ZN_OP_SIGMOID, zn_attrs_default(), 2, 5);
}

static void build_xent(net *t) /* logits straight from the grid: smoothing, mean, a weight */
{
    zn_attrs a = zn_attrs_default();
    a.smoothing = 0.1f;
    a.reduction = ZN_REDUCE_MEAN;
    a.weight = 0.7f;
    head_with(t, DATA(t, t->classes), &a);
}

static void build_two_heads(net *t) /* two weighted heads on one tensor: seeds accumulate */
{
    int x = DATA(t, t->classes);
    zn_attrs a = zn_attrs_default();
    a.weight = 0.3f;
    head_with(t, x, &a);
    zn_attrs half = zn_attrs_default();
    half.scale = 0.5f;
    head(t, node(t, ZN_OP_SCALE, SRC(x), &half));
}

typedef struct {
    const char *name;
    zn_op op; /* the op under test (coverage) */
    void (*build)(net *t);
    int batch, classes;
} gc_case;

static const gc_case cases[] = {
    {"conv stride 2, pad 0", ZN_OP_CONV2D, build_conv_stride2, 2, 5},
    {"conv pad 1, bias", ZN_OP_CONV2D, build_conv_pad1_bias, 2, 5},
    {"conv pad 2, dilation 2", ZN_OP_CONV2D, build_conv_pad2_dilation2, 2, 5},
    {"conv groups 2, stride 2, bias", ZN_OP_CONV2D, build_conv_groups2, 2, 5},
    {"conv groups 8, dilation 2", ZN_OP_CONV2D, build_conv_groups8_dilated, 2, 5},
    {"maxpool 2/2", ZN_OP_MAXPOOL, build_maxpool, 2, 5},
    {"maxpool 3/2 pad 1", ZN_OP_MAXPOOL, build_maxpool_pad, 2, 5},
    {"avgpool 2/2", ZN_OP_AVGPOOL, build_avgpool, 2, 5},
    {"avgpool 3/1 pad 1", ZN_OP_AVGPOOL, build_avgpool_pad, 2, 5},
    {"global maxpool", ZN_OP_GLOBAL_MAXPOOL, build_global_maxpool, 2, 5},
    {"global avgpool", ZN_OP_GLOBAL_AVGPOOL, build_global_avgpool, 2, 5},
    {"resample max down 2", ZN_OP_RESAMPLE, build_resample_max2, 2, 5},
    {"resample max down 4", ZN_OP_RESAMPLE, build_resample_max4, 2, 5},
    {"resample avg down 2", ZN_OP_RESAMPLE, build_resample_avg2, 2, 5},
    {"resample avg down 4", ZN_OP_RESAMPLE, build_resample_avg4, 2, 5},
    {"resample nearest up 2", ZN_OP_RESAMPLE, build_resample_nearest2, 2, 5},
    {"resample nearest up 4", ZN_OP_RESAMPLE, build_resample_nearest4, 2, 5},
    {"resample max 6x4 to size 2x2", ZN_OP_RESAMPLE, build_resample_to_size, 2, 5},
    {"stitch 16/8/4 -> 8 (max)", ZN_OP_STITCH, build_stitch3, 2, 5},
    {"stitch 16/1 -> 4 (avg, up 4)", ZN_OP_STITCH, build_stitch_by4, 2, 5},
    {"ztower 8/4 -> 4, dilation 2", ZN_OP_ZTOWER, build_ztower, 3, 5},
    {"concat axis 0", ZN_OP_CONCAT, build_concat_axis0, 2, 5},
    {"concat axis 1", ZN_OP_CONCAT, build_concat_axis1, 2, 5},
    {"concat vectors", ZN_OP_CONCAT, build_concat_vectors, 2, 5},
    {"transpose (1, 0, 2)", ZN_OP_TRANSPOSE, build_transpose, 2, 5},
    {"transpose (2, 0, 1)", ZN_OP_TRANSPOSE, build_transpose_cycle, 2, 5},
    {"flatten", ZN_OP_FLATTEN, build_flatten, 2, 5},
    {"batchnorm (training)", ZN_OP_BATCHNORM, build_batchnorm, 3, 5},
    {"batchnorm + relu fused (training)", ZN_OP_BATCHNORM_RELU, build_batchnorm_relu, 3, 5},
    {"linear with bias", ZN_OP_LINEAR, build_linear_bias, 2, 5},
    {"add", ZN_OP_ADD, build_add, 2, 5},
    {"add x + x", ZN_OP_ADD, build_add_same, 2, 5},
    {"scale -0.375", ZN_OP_SCALE, build_scale, 2, 5},
    {"relu", ZN_OP_RELU, build_relu, 2, 5},
    {"dropout p 0.4", ZN_OP_DROPOUT, build_dropout, 2, 5},
    {"mul", ZN_OP_MUL, build_mul, 2, 5},
    {"mul x * x", ZN_OP_MUL, build_mul_same, 2, 5},
    {"mul by a [C] gate", ZN_OP_MUL, build_mul_gate, 2, 5},
    {"gelu", ZN_OP_GELU, build_gelu, 2, 5},
    {"silu", ZN_OP_SILU, build_silu, 2, 5},
    {"sigmoid", ZN_OP_SIGMOID, build_sigmoid, 2, 5},
    {"xent smoothing 0.1, mean, weight 0.7", ZN_OP_XENT, build_xent, 3, 5},
    {"two heads on one tensor", ZN_OP_XENT, build_two_heads, 2, 5},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* Relative error bounds over the norm. One op between a grid and a smooth head leaves float32
 * rounding of the loss (about 1e-3 here). A whole model forces a step small enough to dodge
 * its thousands of kinks, so rounding weighs more on its smallest gradients (batch-norm betas
 * of norm 0.04 reach a few percent): its bound holds over all compared elements together, and
 * each parameter only has to be far from the O(1) error a wrong rule gives. */
static const double OP_TOLERANCE = 2e-2, MODEL_TOLERANCE = 2e-2, MODEL_PARAM_TOLERANCE = 1e-1;

static bool report(const char *name, const check *c, double per_param, double overall)
{
    bool ok = c->params > 0 && c->worst < per_param && c->overall < overall;
    printf("%-38s %2d params %4d elements  max rel err %.2e (%s), overall %.2e%s\n", name,
           c->params, c->elements, c->worst, c->worst_name, c->overall, ok ? "" : "  FAIL");
    if (c->skipped) printf("%38s %d elements skipped at kinks\n", "", c->skipped);
    return ok;
}

static void test_cases(void **state)
{
    (void)state;
    int failures = 0;
    for (int i = 0; i < N_CASES; i++) {
        net t;
        net_init(&t, cases[i].batch, cases[i].classes);
        cases[i].build(&t);
        check c = gradcheck(&t, 1000 + (uint64_t)i);
        failures += !report(cases[i].name, &c, OP_TOLERANCE, OP_TOLERANCE);
        zn_graph_free(&t.g);
    }
    assert_int_equal(failures, 0);
}

/* Adding a differentiable op without a gradient-check case fails here. */
static void test_every_op_has_a_case(void **state)
{
    (void)state;
    for (int op = 0; op < ZN_OP_COUNT; op++) {
        if (!zn_ops[op].grad) continue;
        bool found = false;
        for (int i = 0; i < N_CASES && !found; i++) found = cases[i].op == (zn_op)op;
        if (!found) fail_msg("differentiable op %s has no gradient-check case", zn_ops[op].name);
    }
}

/* Loads models/<model>.znet with settings into t->g (t's other fields set by the caller). */
static void load_model(net *t, const char *model, const zn_setting *settings, int n_settings)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", zt_src_path(model));
    zn_load_opts o = {.path = path, .settings = settings, .n_settings = n_settings};
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_recipe recipe;
    if (!zn_program_load(&o, &d, &t->g, &recipe)) fail_msg("%s does not load", path);
    zn_diag_free(&d);
}

/* DavidNet-Zee at width 2 with a two-layer grouped tower, batch 2: every parameter of every
 * head, the shared tower's summed gradients included. Relus and maxima sit wherever the data
 * put them, so elements where steps h and h/2 disagree (a kink within h) are skipped. */
static void test_zee_model(void **state)
{
    (void)state;
    static const zn_setting settings[] = {
        {"width", "2"}, {"filters", "[2, 2]"}, {"roots", "true"},
    };
    net t = {.batch = 2, .h = 2e-4f, .samples = 48, .kinks = true};
    load_model(&t, "models/davidnet_zee.znet", settings, 3);
    check c = gradcheck(&t, 7);
    assert_true(report("davidnet_zee width 2, batch 2", &c, MODEL_PARAM_TOLERANCE,
                       MODEL_TOLERANCE));
    assert_true(c.skipped * 5 < c.elements); /* most elements are compared */
    zn_graph_free(&t.g);
}

/* DavidNet-multisoft at width 2, batch 2, recomputed as a memory budget may (split segments:
 * convs recomputed from kept inputs, max pooling recomputed after them, a copy per reader):
 * the gradients of the recomputed graph against central differences of the forward pass. */
static void test_recomputed_model(void **state)
{
    (void)state;
    static const zn_setting settings[] = {{"width", "2"}};
    net t = {.batch = 2, .h = 2e-4f, .samples = 48, .kinks = true, .recompute = true};
    load_model(&t, "models/davidnet_multisoft.znet", settings, 1);
    check c = gradcheck(&t, 7);
    int pools = 0, convs = 0;
    for (int i = 0; i < t.g.n_nodes; i++)
        if (t.g.nodes[i].flags & ZN_NODE_BACKWARD) {
            pools += t.g.nodes[i].op == ZN_OP_MAXPOOL;
            convs += t.g.nodes[i].op == ZN_OP_CONV2D;
        }
    assert_true(pools > 0 && convs > 0);
    assert_true(report("davidnet_multisoft width 2, batch 2, recomputed", &c, MODEL_PARAM_TOLERANCE,
                       MODEL_TOLERANCE));
    assert_true(c.skipped * 5 < c.elements);
    zn_graph_free(&t.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_a_case),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_zee_model),
        cmocka_unit_test(test_recomputed_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
