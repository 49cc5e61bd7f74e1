/* test_passes.c: the graph optimizer (graph/passes.h). Node counts before and after each pass
 * on every model in models/ (the Zee model: its naive stitches become exactly three stitch
 * nodes, nothing else changes; the training passes' rewrites and recomputed copies); fused and
 * unfused graphs, and training graphs with and without the training passes, giving the same
 * losses, logits, parameter gradients and batch-norm running statistics on random data through
 * the session API and the CPU backend, for every model and for hand-written edge cases; dead-node
 * elimination; odd stitch sizes refused by the shape rules with both shapes named. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/kernels.h"
#include "graph/autodiff.h"
#include "graph/inspect.h"
#include "graph/passes.h"
#include "lang/program.h"
#include "data/rng.h"
#include "runtime/session.h"

static const char *const no_stitch[] = {"stitch"};
static const char *const no_ztower[] = {"ztower"};
static const char *const no_training[] = {"poolmask", "recompute", "sink", "fuse_bn_relu"};
static const char *const no_fuse_bn_relu[] = {"fuse_bn_relu"};

/* The forward passes, then the z-tower fusion: the memory lever a budget runs before autodiff
 * (a session from such a graph runs its ztower nodes). */
static void run_passes_towered(zn_graph *g)
{
    char err[512];
    zt_run_passes(g, NULL, 0);
    if (!zn_pass_ztower(g, err, sizeof err)) fail_msg("ztower: %s", err);
}
static const zn_backend_opts all_passes = {.threads = 1};
static const zn_backend_opts no_training_passes = {.threads = 1, .no_pass = no_training, .n_no_pass = 3};

/* Narrow settings so that every model runs in well under a second. */
static int narrow_settings(const char *file, zn_setting *sets)
{
    if (strncmp(file, "davidnet", 8) == 0 || strncmp(file, "fashion", 7) == 0) {
        sets[0] = (zn_setting){"width", "4"};
        return 1;
    }
    if (strncmp(file, "densenet", 8) == 0) {
        sets[0] = (zn_setting){"depth", "10"};
        sets[1] = (zn_setting){"growth", "4"};
        return 2;
    }
    return 0;
}

/* ---- equivalence: one training-mode forward and backward of both graphs on the same batch ---- */

typedef struct {
    zn_session s;
    float *params;
} run;

static void run_step(run *R, const zn_graph *g, const zn_backend_opts *o, const float *images,
                     const int32_t *labels, int batch)
{
    if (!zn_session_init(&R->s, g, &zn_cpu_backend, o, batch, true)) fail_msg("%s", R->s.err);
    assert_true(zn_session_init_params(&R->s, 11));
    size_t np = zn_session_param_floats(&R->s);
    R->params = malloc(sizeof *R->params * (np ? np : 1));
    assert_true(zn_session_get_params(&R->s, R->params));
    zn_backend *be = R->s.be;
    be->ops->set_training(be, true);
    if (!zn_session_feed(&R->s, images, labels) ||
        !be->ops->compute(be, &R->s.graph, &R->s.plan, 0, R->s.graph.n_nodes - 1))
        fail_msg("compute: %s", be->ops->last_error(be));
}

static float *read_tensor(run *R, zn_region region, int id)
{
    float *v = malloc(R->s.plan.bytes[id] + sizeof(float));
    if (!R->s.be->ops->get(R->s.be, region, R->s.plan.offset[id], v, R->s.plan.bytes[id]))
        fail_msg("get: %s", R->s.be->ops->last_error(R->s.be));
    return v;
}

/* max |a - b| relative to max |a| (an absolute floor keeps all-zero tensors comparable) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    return diff / scale;
}

static int grad_of_param(const zn_graph *g, const char *param)
{
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].flags & ZN_NODE_GRAD) && strcmp(g->nodes[g->nodes[i].grad_of].name, param) == 0) return i;
    return -1;
}

/* Same parameters (layout and initial values), losses, logits of every head, gradient of every
 * parameter and batch-norm running statistics after a step at this batch, within tol relative,
 * for graph a run under options oa and b under ob. */
static void expect_equivalent_at(const zn_graph *a, const zn_backend_opts *oa, const zn_graph *b,
                                 const zn_backend_opts *ob, const char *what, int batch)
{
    const double tol = 1e-5;
    run A, B;
    zn_graph probe;
    zn_graph_copy(&probe, a);
    zn_session_init(&A.s, &probe, &zn_cpu_backend, &(zn_backend_opts){.threads = 1}, batch, false);
    size_t n_img = A.s.plan.bytes[A.s.image] / sizeof(float);
    zn_session_free(&A.s);
    zn_graph_free(&probe);
    float *images = malloc(sizeof *images * n_img);
    int32_t *labels = malloc(sizeof *labels * (size_t)batch);
    zn_rng rng;
    zn_rng_init(&rng, 5);
    for (size_t i = 0; i < n_img; i++) images[i] = zn_rng_normal(&rng);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)zn_rng_below(&rng, 10);
    run_step(&A, a, oa, images, labels, batch);
    run_step(&B, b, ob, images, labels, batch);

    size_t np = zn_session_param_floats(&A.s);
    assert_int_equal(np, zn_session_param_floats(&B.s));
    if (np && memcmp(A.params, B.params, np * sizeof(float)) != 0) fail_msg("%s: parameters differ", what);
    double la, lb;
    assert_true(zn_session_loss(&A.s, &la) && zn_session_loss(&B.s, &lb));
    if (fabs(la - lb) > tol * fabs(la)) fail_msg("%s: loss %.9g fused, %.9g unfused", what, la, lb);
    assert_int_equal(A.s.n_heads, B.s.n_heads);
    for (int h = 0; h < A.s.n_heads; h++) {
        size_t n = A.s.plan.bytes[A.s.graph.nodes[A.s.heads[h]].src[0]] / sizeof(float);
        float *la_ = malloc(sizeof *la_ * n), *lb_ = malloc(sizeof *lb_ * n);
        assert_true(zn_session_logits(&A.s, h, la_) && zn_session_logits(&B.s, h, lb_));
        double d = rel_diff(la_, lb_, n);
        if (d > tol) fail_msg("%s: head %d logits differ by %g", what, h, d);
        free(la_);
        free(lb_);
    }
    int grads = 0;
    for (int i = 0; i < A.s.graph.n_nodes; i++) {
        if (!(A.s.graph.nodes[i].flags & ZN_NODE_GRAD)) continue;
        const char *param = A.s.graph.nodes[A.s.graph.nodes[i].grad_of].name;
        int j = grad_of_param(&B.s.graph, param);
        if (j < 0) fail_msg("%s: no gradient of %s in the unfused graph", what, param);
        assert_int_equal(A.s.plan.bytes[i], B.s.plan.bytes[j]);
        float *ga = read_tensor(&A, ZN_REGION_GRADS, i), *gb = read_tensor(&B, ZN_REGION_GRADS, j);
        double d = rel_diff(ga, gb, A.s.plan.bytes[i] / sizeof(float));
        if (d > tol) fail_msg("%s: gradient of %s differs by %g relative", what, param, d);
        free(ga);
        free(gb);
        grads++;
    }
    assert_true(grads > 0);
    /* the running statistics, updated by the step's forward batch norms (once each) */
    float *pa = malloc(sizeof *pa * (np ? np : 1)), *pb = malloc(sizeof *pb * (np ? np : 1));
    assert_true(zn_session_get_params(&A.s, pa) && zn_session_get_params(&B.s, pb));
    double dp = rel_diff(pa, pb, np);
    if (dp > tol) fail_msg("%s: parameters or running statistics after the step differ by %g", what, dp);
    free(pa);
    free(pb);
    free(labels);
    free(images);
    free(A.params);
    free(B.params);
    zn_session_free(&A.s);
    zn_session_free(&B.s);
}

static void expect_equivalent_opts(const zn_graph *a, const zn_backend_opts *oa, const zn_graph *b,
                                   const zn_backend_opts *ob, const char *what)
{
    expect_equivalent_at(a, oa, b, ob, what, 4);
}

static void expect_equivalent(const zn_graph *a, const zn_graph *b, const char *what)
{
    expect_equivalent_opts(a, &all_passes, b, &all_passes, what);
}

/* ---- every model ---- */

static void model_counts_and_equivalence(const char *rel, void *ctx)
{
    (void)ctx;
    const char *name = rel + strlen("models/");
    zn_setting sets[4];
    int n_sets = narrow_settings(name, sets);
    zn_graph raw, dce, fused, unfused, towered;
    zt_load(zt_src_path(rel), sets, n_sets, &raw);
    zn_graph_copy(&dce, &raw);
    zn_graph_copy(&fused, &raw);
    zn_graph_copy(&unfused, &raw);
    zn_graph_copy(&towered, &raw);
    zt_run_passes(&dce, no_stitch, 1);
    zt_run_passes(&fused, no_ztower, 1);
    zt_run_passes(&unfused, no_stitch, 1);
    run_passes_towered(&towered);
    printf("%-24s %4d nodes; after dce %4d; after dce+stitch %4d; after dce+stitch+ztower %4d\n", name,
           raw.n_nodes, dce.n_nodes, fused.n_nodes, towered.n_nodes);
    assert_int_equal(dce.n_nodes, raw.n_nodes); /* the models have no dead nodes */
    /* checkpoints match the model as written, whichever passes ran */
    assert_true(raw.model_hash == 0 && towered.model_hash == zn_graph_hash(&raw));
    assert_true(fused.model_hash == towered.model_hash && unfused.model_hash == towered.model_hash);
    /* the models with naive stitches (stdlib's zstitch): b1 shrinks, b2 stays, b3 grows */
    static const struct {
        const char *file;
        int stitches, resamples, transposes, concats, towers;
    } fusing[] = {{"davidnet_zee.znet", 3, 4, 6, 3, 3}, {"davidnet_zee_single.znet", 1, 2, 3, 1, 0}};
    int f = -1;
    for (int k = 0; k < 2; k++)
        if (strcmp(name, fusing[k].file) == 0) f = k;
    if (f >= 0) {
        assert_int_equal(zt_count_op(&raw, ZN_OP_STITCH), 0);
        assert_int_equal(zt_count_op(&fused, ZN_OP_STITCH), fusing[f].stitches);
        assert_int_equal(zt_count_op(&raw, ZN_OP_RESAMPLE) - zt_count_op(&fused, ZN_OP_RESAMPLE), fusing[f].resamples);
        assert_int_equal(zt_count_op(&raw, ZN_OP_TRANSPOSE) - zt_count_op(&fused, ZN_OP_TRANSPOSE), fusing[f].transposes);
        assert_int_equal(zt_count_op(&raw, ZN_OP_CONCAT) - zt_count_op(&fused, ZN_OP_CONCAT), fusing[f].concats);
        assert_int_equal(raw.n_nodes - fused.n_nodes,
                         fusing[f].resamples + fusing[f].transposes + fusing[f].concats - fusing[f].stitches);
        /* nothing else changed: every other op keeps its count, params keep their names and order */
        for (int op = 0; op < ZN_OP_COUNT; op++)
            if (op != ZN_OP_STITCH && op != ZN_OP_RESAMPLE && op != ZN_OP_TRANSPOSE && op != ZN_OP_CONCAT)
                assert_int_equal(zt_count_op(&raw, (zn_op)op), zt_count_op(&fused, (zn_op)op));
        assert_int_equal(zt_count_op(&unfused, ZN_OP_STITCH), 0);
        assert_int_equal(zn_graph_param_count(&raw), zn_graph_param_count(&fused));
        for (int i = 0; i < fused.n_nodes; i++)
            if (fused.nodes[i].op == ZN_OP_STITCH) {
                const char *name = fused.nodes[i].name; /* the concat's name: z1.zstitch, z.zstitch */
                assert_true(strlen(name) > 8 && strcmp(name + strlen(name) - 8, ".zstitch") == 0);
                const zn_node *concat = NULL;
                for (int j = 0; j < raw.n_nodes; j++)
                    if (strcmp(raw.nodes[j].name, fused.nodes[i].name) == 0) concat = &raw.nodes[j];
                assert_non_null(concat);
                assert_int_equal(concat->op, ZN_OP_CONCAT); /* and its span and block */
                assert_int_equal(concat->span.line, fused.nodes[i].span.line);
                assert_int_equal(concat->span.col, fused.nodes[i].span.col);
                assert_string_equal(concat->block, fused.nodes[i].block);
            }
        /* ztower: each one-layer tower's stitch, conv, batch norm and relu join its pool */
        assert_int_equal(zt_count_op(&towered, ZN_OP_ZTOWER), fusing[f].towers);
        for (zn_op op = ZN_OP_CONV2D; op <= ZN_OP_RELU; op++) /* conv2d, batchnorm, relu */
            assert_int_equal(zt_count_op(&fused, op) - zt_count_op(&towered, op), fusing[f].towers);
        assert_int_equal(zt_count_op(&fused, ZN_OP_STITCH) - zt_count_op(&towered, ZN_OP_STITCH), fusing[f].towers);
        assert_int_equal(zt_count_op(&fused, ZN_OP_GLOBAL_MAXPOOL) - zt_count_op(&towered, ZN_OP_GLOBAL_MAXPOOL),
                         fusing[f].towers);
        assert_int_equal(fused.n_nodes - towered.n_nodes, 4 * fusing[f].towers);
        assert_int_equal(zn_graph_param_count(&raw), zn_graph_param_count(&towered));
        for (int i = 0; i < towered.n_nodes; i++)
            if (towered.nodes[i].op == ZN_OP_ZTOWER) { /* the pool's name, span and block */
                const zn_node *t = &towered.nodes[i], *pool = NULL;
                for (int j = 0; j < fused.n_nodes; j++)
                    if (strcmp(fused.nodes[j].name, t->name) == 0) pool = &fused.nodes[j];
                assert_non_null(pool);
                assert_int_equal(pool->op, ZN_OP_GLOBAL_MAXPOOL);
                assert_int_equal(pool->span.line, t->span.line);
                assert_int_equal(pool->span.col, t->span.col);
                assert_string_equal(pool->block, t->block);
            }
        expect_equivalent(&towered, &unfused, name);
    } else {
        assert_int_equal(fused.n_nodes, raw.n_nodes);
        assert_int_equal(towered.n_nodes, raw.n_nodes);
    }
    expect_equivalent(&fused, &unfused, name);
    zn_graph_free(&raw);
    zn_graph_free(&dce);
    zn_graph_free(&fused);
    zn_graph_free(&unfused);
    zn_graph_free(&towered);
}

static void test_models_counts_and_equivalence(void **state)
{
    (void)state;
    assert_true(zt_each_model(model_counts_and_equivalence, NULL) >= 5);
}

/* ---- training passes ---- */

/* models/file at narrow settings (the Zee models at zee_width when not NULL) into g. */
static void load_narrow(const char *file, const char *zee_width, zn_graph *g)
{
    char rel[300];
    snprintf(rel, sizeof rel, "models/%s", file);
    zn_setting sets[4];
    int n_sets = narrow_settings(file, sets);
    if (zee_width && strncmp(file, "davidnet_zee", 12) == 0) sets[0].value = zee_width;
    zt_load(zt_src_path(rel), sets, n_sets, g);
}

/* The training graph of forward graph g with the passes not in disabled. */
static void training_graph(const zn_graph *g, const char *const *disabled, int n, zn_graph *out)
{
    char err[512];
    zn_graph_copy(out, g);
    if (!zn_passes_finish(out, true, disabled, n, NULL, err, sizeof err)) fail_msg("finish: %s", err);
}

/* Each recomputed copy: a backward node named after a forward node of its op, block and span, " (recompute)"
 * added; a batch norm's copy keeps all of the old running statistics (momentum 1), its original
 * updates them. The forward nodes come first, as autodiff left them. */
static void check_copies(const zn_graph *plain, const zn_graph *g, const char *what)
{
    int n_fwd = 0;
    while (!(plain->nodes[n_fwd].flags & ZN_NODE_BACKWARD)) n_fwd++;
    for (int i = 0; i < n_fwd; i++) {
        assert_int_equal(g->nodes[i].op, plain->nodes[i].op);
        assert_string_equal(g->nodes[i].name, plain->nodes[i].name);
        assert_false(g->nodes[i].flags & ZN_NODE_BACKWARD);
    }
    for (int i = n_fwd; i < g->n_nodes; i++) {
        const zn_node *c = &g->nodes[i];
        assert_true(c->flags & ZN_NODE_BACKWARD);
        const char *at = strstr(c->name, " (recompute)");
        if (!at) continue;
        const zn_node *o = NULL;
        for (int j = 0; j < n_fwd; j++)
            if (strlen(g->nodes[j].name) == (size_t)(at - c->name) && !strncmp(g->nodes[j].name, c->name, at - c->name))
                o = &g->nodes[j];
        if (!o) fail_msg("%s: '%s' copies no forward node", what, c->name);
        assert_int_equal(c->op, o->op);
        assert_int_equal(c->span.line, o->span.line);
        assert_int_equal(c->span.col, o->span.col);
        assert_string_equal(c->block, o->block);
        assert_true(zn_shape_eq(&c->shape, &o->shape));
        if (c->op == ZN_OP_BATCHNORM || c->op == ZN_OP_BATCHNORM_RELU) {
            assert_true(c->attr.momentum == 1.0f);
            assert_true(o->attr.momentum < 1.0f);
        }
    }
}

/* Per model (narrow settings; the Zee models at width 8, where the z-tower's convs are cheap
 * enough to recompute): relu -> max pool pairs poolmask rewrites (node count unchanged: a mask
 * node in, a pool backward out) and copies recompute adds. */
static const struct {
    const char *file;
    int pooled, copies;
    bool towered; /* the z-towers fused (run_passes_towered) */
} training_counts[] = {
    {"davidnet.znet", 3, 0, false},           /* the three layers' relu -> maxpool */
    {"davidnet_multisoft.znet", 3, 0, false},
    {"davidnet_zee.znet", 6, 18, false}, /* + three z-towers' relu -> gmp; per head: stitch, conv,
                                          batchnorm, relu and a second stitch, and the head's small concat */
    {"davidnet_zee.znet", 3, 3, true},        /* fused towers: only the heads' concats */
    {"davidnet_zee_single.znet", 4, 6, false},
    {"densenet_bc.znet", 0, 12, false},       /* depth 10: one dense layer per block: its concat, batchnorm and
                                          relu, and a second concat, three times */
    {"fashion_small.znet", 3, 0, false},
};

static void test_training_passes(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof training_counts / sizeof training_counts[0]; m++) {
        const char *file = training_counts[m].file;
        zn_graph g, plain, none, all, no_mask;
        load_narrow(file, "8", &g);
        if (training_counts[m].towered) run_passes_towered(&g);
        else zt_run_passes(&g, NULL, 0);
        training_graph(&g, no_training, 4, &none);
        zn_graph_copy(&plain, &g);
        char err[512];
        assert_true(zn_autodiff(&plain, err, sizeof err));
        assert_int_equal(none.n_nodes, plain.n_nodes);
        training_graph(&g, no_fuse_bn_relu, 1, &all);
        training_graph(&g, no_training + 1, 3, &no_mask); /* poolmask alone */
        printf("%-24s %s training graph %4d nodes; poolmask %d rewrites; recompute +%d\n", file,
               training_counts[m].towered ? "(towered)" : "         ", plain.n_nodes,
               zt_count_suffix(&no_mask, " (pooled)"), all.n_nodes - plain.n_nodes);
        assert_int_equal(no_mask.n_nodes, plain.n_nodes);
        assert_int_equal(zt_count_suffix(&no_mask, " (pooled)"), training_counts[m].pooled);
        assert_int_equal(zt_count_op(&no_mask, ZN_OP_RELU_BWD), zt_count_op(&plain, ZN_OP_RELU_BWD));
        assert_int_equal(all.n_nodes - plain.n_nodes, training_counts[m].copies);
        assert_int_equal(zt_count_suffix(&all, " (recompute)"), training_counts[m].copies);
        check_copies(&plain, &all, file);
        expect_equivalent_opts(&g, &all_passes, &g, &no_training_passes, file);
        zn_graph_free(&g);
        zn_graph_free(&plain);
        zn_graph_free(&none);
        zn_graph_free(&all);
        zn_graph_free(&no_mask);
    }
}

/* fuse_bn_relu on every model: each batch norm whose one reader is a relu joins it (the Zee
 * model's shared towers too, as no memory budget fuses them), the fused node keeps the relu's name
 * and span, the running statistics are updated by it (or by another that shares them), and one training step matches the unfused graph's
 * (losses, logits, gradients, running statistics within 1e-5). With recompute, DenseNet's
 * concat -> batchnorm -> relu segments (12 copies at depth 10) become concat -> batchnorm_relu
 * (7 copies: the fused backward reads x and dy, not y). */
static const struct {
    const char *file;
    int fused, copies;
} bn_relu_counts[] = {
    {"davidnet.znet", 8, 0},      {"davidnet_multisoft.znet", 10, 0}, {"davidnet_zee.znet", 13, 6},
    {"davidnet_zee_single.znet", 11, 5}, {"densenet_bc.znet", 9, 7}, {"fashion_small.znet", 5, 0},
};

static void test_fuse_bn_relu(void **state)
{
    (void)state;
    static const char *const others[] = {"poolmask", "recompute", "sink"};
    for (size_t m = 0; m < sizeof bn_relu_counts / sizeof bn_relu_counts[0]; m++) {
        const char *file = bn_relu_counts[m].file;
        zn_graph g, plain, fused, all;
        load_narrow(file, NULL, &g);
        zt_run_passes(&g, NULL, 0);
        training_graph(&g, no_training, 4, &plain);
        training_graph(&g, others, 3, &fused);
        training_graph(&g, NULL, 0, &all);
        const int n = zt_count_op(&fused, ZN_OP_BATCHNORM_RELU);
        printf("%-24s %3d batchnorm -> relu fused; training graph %4d -> %4d nodes\n", file, n, plain.n_nodes,
               fused.n_nodes);
        assert_int_equal(n, bn_relu_counts[m].fused);
        assert_int_equal(zt_count_op(&g, ZN_OP_BATCHNORM) - zt_count_op(&fused, ZN_OP_BATCHNORM), n);
        assert_int_equal(zt_count_op(&g, ZN_OP_RELU) - zt_count_op(&fused, ZN_OP_RELU), n);
        assert_int_equal(zt_count_op(&fused, ZN_OP_BATCHNORM_RELU_BWD_COEF), n);
        assert_int_equal(zt_count_op(&fused, ZN_OP_BATCHNORM_RELU_BWD_DATA), n); /* every x is a conv's */
        assert_int_equal(zt_count_op(&plain, ZN_OP_RELU_BWD) - zt_count_op(&fused, ZN_OP_RELU_BWD), n);
        assert_int_equal(zt_count_op(&plain, ZN_OP_BATCHNORM_BWD_DATA) - zt_count_op(&fused, ZN_OP_BATCHNORM_BWD_DATA), n);
        for (int i = 0; i < fused.n_nodes; i++) {
            const zn_node *f = &fused.nodes[i];
            if (f->op != ZN_OP_BATCHNORM_RELU) continue;
            const zn_node *relu = NULL;
            for (int j = 0; j < g.n_nodes; j++)
                if (strcmp(g.nodes[j].name, f->name) == 0) relu = &g.nodes[j];
            assert_non_null(relu);
            assert_int_equal(relu->op, ZN_OP_RELU);
            assert_int_equal(relu->span.line, f->span.line);
            assert_true(f->attr.momentum < 1.0f);
            for (int k = 3; k < 5; k++) { /* a fused node updates them (one of those that share them) */
                const zn_node *owner = &fused.nodes[fused.nodes[f->src[k]].state_of];
                assert_int_equal(owner->op, ZN_OP_BATCHNORM_RELU);
                assert_int_equal(owner->src[k], f->src[k]);
            }
        }
        assert_int_equal(zt_count_suffix(&all, " (recompute)"), bn_relu_counts[m].copies);
        check_copies(&fused, &all, file);
        const zn_backend_opts unfused = {.threads = 1, .no_pass = no_fuse_bn_relu, .n_no_pass = 1};
        expect_equivalent_opts(&g, &all_passes, &g, &unfused, file);
        zn_graph_free(&g);
        zn_graph_free(&plain);
        zn_graph_free(&fused);
        zn_graph_free(&all);
    }
}

/* Convs are recomputed only while all of them together cost at most 1/8 of the forward pass: the
 * Zee model's z-tower does at width 8, not at width 4 (its backbone is 16 times cheaper). DenseNet
 * with two layers per block nests its concats: a copy reads the layers' outputs directly. */
static void test_recompute_rules(void **state)
{
    (void)state;
    zn_setting narrow[] = {{"width", "4"}};
    zn_graph g, t;
    zt_load(zt_src_path("models/davidnet_zee.znet"), narrow, 1, &g);
    zt_run_passes(&g, no_ztower, 1);
    training_graph(&g, NULL, 0, &t);
    assert_int_equal(zt_count_suffix(&t, " (recompute)"), 6); /* each stitch and head concat, once */
    for (int i = 0; i < t.n_nodes; i++)
        if (strstr(t.nodes[i].name, "(recompute)")) assert_true(t.nodes[i].op == ZN_OP_STITCH || t.nodes[i].op == ZN_OP_CONCAT);
    zn_graph_free(&t);
    zn_graph_free(&g);
    zn_setting dense[] = {{"depth", "16"}, {"growth", "4"}};
    zt_load(zt_src_path("models/densenet_bc.znet"), dense, 2, &g);
    zt_run_passes(&g, NULL, 0);
    training_graph(&g, no_fuse_bn_relu, 1, &t); /* the layers' relus apart (test_fuse_bn_relu fuses) */
    int nested = 0;
    for (int i = 0; i < t.n_nodes; i++) {
        const zn_node *n = &t.nodes[i];
        if (n->op != ZN_OP_CONCAT || !strstr(n->name, "(recompute)")) continue;
        for (int k = 0; k < n->n_src; k++) assert_int_not_equal(t.nodes[n->src[k]].op, ZN_OP_CONCAT);
        nested += n->n_src == 3; /* the second layer's concat: the block's input and both layers' outputs */
    }
    assert_int_equal(nested, 3 * 2);
    expect_equivalent_opts(&g, &all_passes, &g, &no_training_passes, "densenet depth 16");
    zn_graph_free(&t);
    zn_graph_free(&g);
}

/* A batch norm with momentum 1 (a recomputed copy) normalises exactly as the original and leaves
 * the running statistics as they were. */
static void test_bn_copy_keeps_running_stats(void **state)
{
    (void)state;
    enum { N = 3, C = 2, HW = 5 };
    float x[N * C * HW], gamma[C] = {1.5f, -0.5f}, beta[C] = {0.1f, 0.2f}, y0[N * C * HW], y1[N * C * HW];
    float mean[C] = {0.25f, -1}, var[C] = {2, 0.5f}, mean1[C], var1[C];
    for (int i = 0; i < N * C * HW; i++) x[i] = (float)((i * 37) % 11) - 4.5f;
    memcpy(mean1, mean, sizeof mean);
    memcpy(var1, var, sizeof var);
    zn_bn_dims d = {N, C, HW, 1e-5f, 0.9f};
    zn_batchnorm_forward_train(&d, x, gamma, beta, mean, var, y0, NULL, NULL);
    d.momentum = 1.0f;
    zn_batchnorm_forward_train(&d, x, gamma, beta, mean1, var1, y1, NULL, NULL);
    assert_memory_equal(y0, y1, sizeof y0);
    assert_true(mean1[0] == 0.25f && mean1[1] == -1 && var1[0] == 2 && var1[1] == 0.5f);
    assert_true(mean[0] != 0.25f && var[1] != 0.5f); /* the original's did move */
}

/* ---- hand-written cases ---- */

/* A model around one stitch-like expression `body` (which defines z) over
 * a = [4, 16, 16], b = [6, 8, 8], c = [2, 4, 4], d = [3, 32, 32], e = [2, 2, 2]. */
static void load_case(const char *name, const char *body, zn_graph *g)
{
    char text[4096];
    snprintf(text, sizeof text,
             "use \"zconv.znet\"\n"
             "model m() {\n"
             "  input image: [3, 32, 32]\n"
             "  input label: class(10)\n"
             "  d = conv2d(image, 3)\n"
             "  a = maxpool(conv2d(d, 4), 2)\n"
             "  b = maxpool(conv2d(a, 6), 2)\n"
             "  c = maxpool(conv2d(b, 2), 2)\n"
             "  e = maxpool(conv2d(c, 2), 2)\n"
             "%s\n"
             "  head out = xent(linear(flatten(z), 10), label)\n"
             "}\n",
             body);
    char file[64];
    snprintf(file, sizeof file, "%s.znet", name);
    zt_load(zt_write_file(file, text), NULL, 0, g);
}

typedef struct {
    const char *name, *body;
    int stitches; /* after the passes */
    zn_resample_mode mode;
} edge_case;

static const edge_case cases[] = {
    {"one_input", "  z = zstitch([a], 8)", 1, ZN_RESAMPLE_MAX},
    {"no_resample", "  z = zstitch([b, b], 8)", 1, ZN_RESAMPLE_MAX},
    {"by_four", "  z = zstitch([d, b, e], 8)", 1, ZN_RESAMPLE_MAX},
    {"avg", "  z = zstitch([a, c], 8, mode = \"avg\")", 1, ZN_RESAMPLE_AVG},
    {"maxpool_resample", "  z = concat([transpose(maxpool(a, 2), [1, 0, 2]), transpose(b, [1, 0, 2])], axis = 1)", 1,
     ZN_RESAMPLE_MAX},
    {"two_stitches", "  z = concat(zstitch([a, c], 4), zstitch([b], 4), axis = 1)", 2, ZN_RESAMPLE_MAX},
    {"resample_used_twice",
     "  r = resample(a, size = 8)\n"
     "  z = concat([transpose(r, [1, 0, 2]), transpose(b, [1, 0, 2]), transpose(r, [1, 0, 2])], axis = 1)",
     0, ZN_RESAMPLE_MAX},
    {"transpose_used_twice",
     "  t = transpose(b, [1, 0, 2])\n  z = concat(concat([t, t], axis = 1), t, axis = 1)", 0, ZN_RESAMPLE_MAX},
    {"two_modes",
     "  z = concat([transpose(resample(a, size = 8, mode = \"avg\"), [1, 0, 2]),"
     " transpose(resample(d, size = 8), [1, 0, 2])], axis = 1)",
     0, ZN_RESAMPLE_MAX},
    {"other_axis", "  z = concat([transpose(b, [1, 0, 2]), transpose(b, [1, 0, 2])], axis = 0)", 0,
     ZN_RESAMPLE_MAX},
    /* a padded pool is no resample: it stays, and its output is what the stitch reads */
    {"padded_pool", "  z = concat([transpose(maxpool(a, 3, stride = 2, pad = 1), [1, 0, 2])], axis = 1)", 1,
     ZN_RESAMPLE_MAX},
};

static void test_edge_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const edge_case *c = &cases[i];
        zn_graph raw, fused, unfused;
        load_case(c->name, c->body, &raw);
        zn_graph_copy(&fused, &raw);
        zn_graph_copy(&unfused, &raw);
        zt_run_passes(&fused, NULL, 0);
        zt_run_passes(&unfused, no_stitch, 1);
        if (zt_count_op(&fused, ZN_OP_STITCH) != c->stitches)
            fail_msg("%s: %d stitch nodes, expected %d", c->name, zt_count_op(&fused, ZN_OP_STITCH), c->stitches);
        if (!c->stitches) assert_int_equal(fused.n_nodes, unfused.n_nodes);
        for (int k = 0; k < fused.n_nodes; k++)
            if (fused.nodes[k].op == ZN_OP_STITCH) assert_int_equal(fused.nodes[k].attr.mode, c->mode);
        assert_int_equal(zt_count_op(&unfused, ZN_OP_STITCH), 0);
        expect_equivalent(&fused, &unfused, c->name);
        zn_graph_free(&raw);
        zn_graph_free(&fused);
        zn_graph_free(&unfused);
    }
}

/* Z-tower fusion on hand-written towers: what fuses, what it must leave alone (a conv with a
 * bias or groups, a second layer, a pool over another axis, a batch norm read twice), and the
 * same step with and without it. y is the head's features. */
static const struct {
    const char *name, *body;
    int towers;
} tower_cases[] = {
    {"tower", "  y = gmp(relu(batchnorm(conv2d(zstitch([a, b, c], 8), 4, dilation = 2, bias = false))))", 1},
    {"tower_avg_one_input", "  y = gmp(relu(batchnorm(conv2d(zstitch([a], 4, mode = \"avg\"), 2, bias = false))))", 1},
    {"tower_shared",
     "  t = shared ztower([3])\n  y = concat(zpool(t(zstitch([a], 8))), zpool(t(zstitch([a, b, c], 8))))", 2},
    {"tower_bias", "  y = gmp(relu(batchnorm(conv2d(zstitch([a, b], 8), 4))))", 0},
    {"tower_roots", "  y = zpool(ztower(zstitch([a, b], 8), [2], roots = true))", 0},
    {"tower_two_layers", "  y = zpool(ztower(zstitch([a, b], 8), [4, 4]))", 0},
    {"tower_channel_axis", "  y = zpool(ztower(zstitch([a, b], 8), [4]), \"channel_axis\")", 0},
    {"tower_bn_read_twice",
     "  n = batchnorm(conv2d(zstitch([a, b], 8), 4, bias = false))\n  y = concat(gmp(relu(n)), gmp(n))", 0},
};

static void test_ztower_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tower_cases / sizeof tower_cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "%s\n  z = y", tower_cases[i].body);
        zn_graph raw, fused, unfused;
        load_case(tower_cases[i].name, body, &raw);
        zn_graph_copy(&fused, &raw);
        zn_graph_copy(&unfused, &raw);
        run_passes_towered(&fused);
        zt_run_passes(&unfused, NULL, 0);
        if (zt_count_op(&fused, ZN_OP_ZTOWER) != tower_cases[i].towers)
            fail_msg("%s: %d ztower nodes, expected %d", tower_cases[i].name, zt_count_op(&fused, ZN_OP_ZTOWER),
                     tower_cases[i].towers);
        assert_int_equal(unfused.n_nodes - fused.n_nodes, 4 * tower_cases[i].towers);
        expect_equivalent(&fused, &unfused, tower_cases[i].name);
        zn_graph_free(&raw);
        zn_graph_free(&fused);
        zn_graph_free(&unfused);
    }
}

/* The same step at batch 40 through a tower whose stitch is 64K floats per example: the CPU walks
 * it in slices of 16, 16 and 8 (k_ztower.c keeps a slice tensor near 4 MiB). */
static void test_ztower_slices(void **state)
{
    (void)state;
    zn_graph raw, fused, unfused;
    load_case("tower_slices",
              "  y = gmp(relu(batchnorm(conv2d(zstitch([conv2d(b, 1024)], 8), 2, dilation = 2, bias = false))))\n"
              "  z = y",
              &raw);
    zn_graph_copy(&fused, &raw);
    zn_graph_copy(&unfused, &raw);
    run_passes_towered(&fused);
    zt_run_passes(&unfused, NULL, 0);
    assert_int_equal(zt_count_op(&fused, ZN_OP_ZTOWER), 1);
    expect_equivalent_at(&fused, &all_passes, &unfused, &all_passes, "tower_slices", 40);
    zn_graph_free(&raw);
    zn_graph_free(&fused);
    zn_graph_free(&unfused);
}

/* A dead branch (conv with bias, its two parameters, a relu) goes; heads and inputs stay. (Its
 * parameters go too, so the parameter layout differs: no value comparison here.) */
static void test_dce(void **state)
{
    (void)state;
    zn_graph raw, dce, none;
    load_case("dead", "  unused = relu(conv2d(a, 5))\n  z = zstitch([d, a, b, c, e], 8)", &raw);
    zn_graph_copy(&dce, &raw);
    zn_graph_copy(&none, &raw);
    const char *const neither[] = {"dce", "stitch"};
    zt_run_passes(&dce, no_stitch, 1);
    zt_run_passes(&none, neither, 2);
    assert_int_equal(raw.n_nodes - dce.n_nodes, 4);
    assert_int_equal(none.n_nodes, raw.n_nodes);
    assert_int_equal(zn_graph_param_count(&raw) - zn_graph_param_count(&dce), 5 * 4 * 9 + 5);
    assert_int_equal(zt_count_op(&dce, ZN_OP_INPUT), 2);
    zn_graph_free(&raw);
    zn_graph_free(&dce);
    zn_graph_free(&none);
}

/* Unknown and required names and graphs with backward nodes are refused; the drivers report
 * each pass and stop right after the one named, autodiff included. */
static void test_driver(void **state)
{
    (void)state;
    zn_graph g;
    load_case("driver", "  z = zstitch([a, b], 8)", &g);
    char err[512];
    const char *const bad[] = {"stich"}, *const required[] = {"autodiff"};
    assert_false(zn_passes_run(&g, bad, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "'stich'"));
    assert_false(zn_passes_run(&g, required, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "autodiff cannot be skipped"));
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    zn_pass_trace trace = {.stop_after = "stitch", .report = f};
    assert_true(zn_passes_run(&g, NULL, 0, &trace, err, sizeof err));
    fclose(f);
    assert_int_equal(zt_count_op(&g, ZN_OP_STITCH), 1);
    assert_non_null(strstr(buf, "dce"));
    assert_null(strstr(buf, "ztower")); /* stopped after stitch */
    assert_int_equal(zn_pass_find("stitch")->run, zn_pass_stitch);
    assert_null(zn_pass_find("fuse"));
    /* autodiff is the first training pass; the others run after it on the training graph */
    assert_int_equal(zn_pass_find("autodiff")->run, zn_autodiff);
    assert_int_equal(zn_pass_find("autodiff")->stage, ZN_STAGE_TRAINING);
    assert_int_equal(zn_pass_find("recompute")->stage, ZN_STAGE_TRAINING);
    assert_int_equal(zn_pass_find("dce")->stage, ZN_STAGE_FORWARD);
    assert_false(zn_passes_finish(&g, true, bad, 1, NULL, err, sizeof err));
    zn_graph_free(&g);
    load_case("driver_bn", "  z = relu(batchnorm(zstitch([a, b], 8)))", &g);
    assert_true(zn_passes_run(&g, NULL, 0, NULL, err, sizeof err));
    zn_graph ad;
    zn_graph_copy(&ad, &g);
    memset(buf, 0, sizeof buf);
    f = fmemopen(buf, sizeof buf - 1, "w");
    trace = (zn_pass_trace){.stop_after = "autodiff", .report = f};
    assert_true(zn_passes_finish(&ad, true, NULL, 0, &trace, err, sizeof err));
    fclose(f);
    assert_true(ad.n_nodes > g.n_nodes);
    assert_int_equal(zt_count_suffix(&ad, " (recompute)"), 0);
    assert_non_null(strstr(buf, "autodiff "));
    assert_null(strstr(buf, "poolmask"));
    memset(buf, 0, sizeof buf);
    f = fmemopen(buf, sizeof buf - 1, "w");
    trace = (zn_pass_trace){.report = f};
    const char *const no_sink[] = {"sink"};
    assert_true(zn_passes_finish(&g, true, no_sink, 1, &trace, err, sizeof err));
    fclose(f);
    assert_true(zt_count_suffix(&g, " (recompute)") > 0);
    assert_true(zt_count_op(&g, ZN_OP_STITCH_BWD) > 0);
    assert_non_null(strstr(buf, "recompute "));
    assert_non_null(strstr(buf, "sink         off (training graph)"));
    assert_false(zn_passes_run(&g, NULL, 0, NULL, err, sizeof err)); /* forward passes refuse it now */
    zn_graph_free(&ad);
    zn_graph_free(&g);
}

/* Sizes no integer factor reaches: the shape rules refuse them, naming the shapes. */
static void test_odd_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *name, *body, *expect[2];
    } odd[] = {
        {"odd_naive", "  z = zstitch([a], 6)", {"[N, 4, 16, 16]", "6x6"}},
        {"odd_builtin", "  z = stitch(a, b, size = 3)", {"[N, 4, 16, 16]", "3x3"}},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        char text[2048], file[64], out[4096] = "";
        snprintf(text, sizeof text,
                 "%smodel m() {\n  input image: [3, 32, 32]\n  input label: class(10)\n"
                 "  a = maxpool(conv2d(image, 4), 2)\n  b = maxpool(a, 2)\n%s\n"
                 "  head out = xent(linear(flatten(z), 10), label)\n}\n",
                 strstr(odd[i].body, "zstitch") ? "use \"zconv.znet\"\n" : "", odd[i].body);
        snprintf(file, sizeof file, "%s.znet", odd[i].name);
        FILE *f = fmemopen(out, sizeof out - 1, "w");
        zn_diag d;
        zn_diag_init(&d, f);
        zn_graph g;
        zn_recipe r;
        zn_load_opts o = {.path = zt_write_file(file, text)};
        assert_false(zn_program_load(&o, &d, &g, &r));
        zn_diag_free(&d);
        fclose(f);
        for (int k = 0; k < 2; k++)
            if (!strstr(out, odd[i].expect[k])) fail_msg("%s: '%s' not in:\n%s", odd[i].name, odd[i].expect[k], out);
        zn_graph_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver),
        cmocka_unit_test(test_dce),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_ztower_cases),
        cmocka_unit_test(test_ztower_slices),
        cmocka_unit_test(test_odd_sizes),
        cmocka_unit_test(test_models_counts_and_equivalence),
        cmocka_unit_test(test_training_passes),
        cmocka_unit_test(test_recompute_rules),
        cmocka_unit_test(test_fuse_bn_relu),
        cmocka_unit_test(test_bn_copy_keeps_running_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
