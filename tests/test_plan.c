/* test_plan.c: the memory planner on every model in models/, forward and training graphs (with
 * and without the training passes): no two tensors live at the same time overlap (but for
 * sanctioned in-place ops), reuse makes the arena smaller than the naive sum, in-place ops alias
 * exactly where their source dies, the kernels run in place give what they give apart, DenseNet's
 * recomputed concatenations share memory, and the CPU backend's measured high-water mark after a
 * training step equals the plan's arena. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/kernels.h"
#include "graph/autodiff.h"
#include "graph/passes.h"
#include "graph/plan.h"
#include "lang/program.h"
#include "runtime/session.h"

/* The model file rel (below the source folder) with settings sets[0..n_sets), as a graph. */
static zn_graph load(const char *rel, const zn_setting *sets, int n_sets)
{
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_recipe r;
    zn_load_opts o = {.path = zt_src_path(rel), .settings = sets, .n_settings = n_sets};
    zn_graph g;
    bool ok = zn_program_load(&o, &d, &g, &r);
    zn_diag_free(&d);
    if (!ok) fail_msg("%s does not load", rel);
    return g;
}

/* p: the plan of g at this batch, which zn_plan_verify accepts (else the test fails, naming what). */
static void plan_verified(zn_plan *p, const zn_graph *g, int batch, const char *what)
{
    char err[512];
    if (!zn_plan_make(p, g, batch, NULL, NULL, err, sizeof err)) fail_msg("%s: %s", what, err);
    if (!zn_plan_verify(p, g, err, sizeof err)) fail_msg("%s: %s", what, err);
}

/* The inference graph, the training graph as autodiff leaves it and the one the training passes
 * make (what a session runs), each planned and verified. */
static void check_model(const char *rel)
{
    zn_graph g = load(rel, NULL, 0), graphs[3];
    char err[512];
    assert_true(zn_passes_run(&g, NULL, 0, NULL, err, sizeof err));
    for (int mode = 0; mode < 3; mode++) zn_graph_copy(&graphs[mode], &g);
    assert_true(zn_autodiff(&graphs[1], err, sizeof err));
    assert_true(zn_passes_finish(&graphs[2], true, NULL, 0, NULL, err, sizeof err));
    static const char *const what[] = {"inference", "training", "training, after the training passes"};
    for (int mode = 0; mode < 3; mode++) {
        zn_plan p;
        char label[256];
        snprintf(label, sizeof label, "%s (%s)", rel, what[mode]);
        plan_verified(&p, &graphs[mode], 8, label);
        assert_true(p.region_bytes[ZN_REGION_ARENA] <= p.naive_bytes);
        assert_true(zn_plan_live_peak(&p, NULL, NULL) <= p.region_bytes[ZN_REGION_ARENA]);
        if (mode) assert_true(p.region_bytes[ZN_REGION_ARENA] < p.naive_bytes); /* reuse happened */
        if (mode) assert_true(p.region_bytes[ZN_REGION_GRADS] > 0);
        /* optimizer state (two floats per parameter float) only where there are gradients */
        assert_int_equal(p.region_bytes[ZN_REGION_OPTIM], mode ? 2 * p.region_bytes[ZN_REGION_PARAMS] : 0);
        zn_plan_free(&p);
    }
    for (int mode = 0; mode < 3; mode++) zn_graph_free(&graphs[mode]);
    zn_graph_free(&g);
}

static void plan_model(const char *rel, void *ctx)
{
    (void)ctx;
    check_model(rel);
}

static void test_every_model_plans_without_overlap(void **state)
{
    (void)state;
    assert_true(zt_each_model(plan_model, NULL) >= 4);
}

/* A graph of 1000-float (per example) tensors: an INPUT x, then nodes added by add_node. */
static int chain_input(zn_graph *g)
{
    zn_graph_init(g, "chain");
    zn_attrs at = zn_attrs_default();
    int x = zn_graph_add(g, ZN_OP_INPUT, NULL, 0, &at, "x", "", (zn_span){0});
    g->nodes[x].shape = (zn_shape){.rank = 1, .dim = {1000}, .batched = true};
    g->nodes[x].flags |= ZN_NODE_INPUT;
    char err[256];
    assert_true(zn_graph_infer(g, x, err, sizeof err));
    return x;
}

static int add_node(zn_graph *g, zn_op op, int a, int b)
{
    zn_attrs at = zn_attrs_default();
    const int src[2] = {a, b};
    int id = zn_graph_add(g, op, src, b < 0 ? 1 : 2, &at, "n", "", (zn_span){0});
    char err[256];
    if (!zn_graph_infer(g, id, err, sizeof err)) fail_msg("%s", err);
    return id;
}

/* x, then r1 = relu(x) .. r4 = relu(r3): x is an INPUT, so r1 gets a buffer of its own; r2..r4
 * each overwrite the one before (its last reader), so the four relus share one buffer. */
static void test_relu_chain_runs_in_place(void **state)
{
    (void)state;
    zn_graph g;
    int r[5];
    r[0] = chain_input(&g);
    for (int i = 1; i < 5; i++) r[i] = add_node(&g, ZN_OP_RELU, r[i - 1], -1);
    zn_plan p;
    plan_verified(&p, &g, 2, "relu chain");
    assert_int_equal(p.naive_bytes, 5 * 8000);
    assert_int_equal(p.region_bytes[ZN_REGION_ARENA], 2 * 8000);
    assert_int_equal(p.alias[r[1]], -1); /* never over an INPUT */
    for (int i = 2; i < 5; i++) {
        assert_int_equal(p.alias[r[i]], r[i - 1]);
        assert_int_equal(p.offset[r[i]], p.offset[r[1]]);
    }
    assert_int_not_equal(p.offset[r[0]], p.offset[r[1]]);
    zn_plan_free(&p);
    zn_graph_free(&g);
}

/* x, a = relu(x), b = relu(a), c = add(b, a): a is read again after b, so b cannot overwrite it;
 * c may overwrite b or a (both die at c): the first, b. A scale of c overwrites c. */
static void test_no_in_place_over_a_live_source(void **state)
{
    (void)state;
    zn_graph g;
    int x = chain_input(&g);
    int a = add_node(&g, ZN_OP_RELU, x, -1);
    int b = add_node(&g, ZN_OP_RELU, a, -1);
    int c = add_node(&g, ZN_OP_ADD, b, a);
    int d = add_node(&g, ZN_OP_SCALE, c, -1);
    zn_plan p;
    plan_verified(&p, &g, 2, "relu, relu, add, scale");
    assert_int_equal(p.alias[b], -1);
    assert_int_not_equal(p.offset[b], p.offset[a]);
    assert_int_equal(p.alias[c], b);
    assert_int_equal(p.alias[d], c);
    assert_int_equal(p.offset[d], p.offset[b]);
    /* verify must refuse an alias the rule does not allow: b over a, a still live */
    p.alias[b] = a;
    p.offset[b] = p.offset[a];
    char err[256];
    assert_false(zn_plan_verify(&p, &g, err, sizeof err));
    assert_non_null(strstr(err, "while both are live"));
    /* and an overlap between a node and its source that no alias records */
    zn_plan_free(&p);
    plan_verified(&p, &g, 2, "relu, relu, add, scale");
    p.alias[c] = -1;
    assert_false(zn_plan_verify(&p, &g, err, sizeof err));
    zn_plan_free(&p);
    zn_graph_free(&g);
}

/* In a training graph a relu overwrites its batch norm's output (read by nothing else) and its
 * backward overwrites a source; zn_plan_verify (per-node lifetimes) proves that the relu's
 * output, now in the batch norm's bytes, stays intact until its backward reads it. */
static void test_training_relu_in_place(void **state)
{
    (void)state;
    zn_graph g = load("models/davidnet.znet", NULL, 0);
    char err[512];
    assert_true(zn_autodiff(&g, err, sizeof err));
    zn_plan p;
    plan_verified(&p, &g, 8, "davidnet's training graph");
    int relus = 0, relu_bwds = 0;
    for (int i = 0; i < g.n_nodes; i++) {
        const zn_node *n = &g.nodes[i];
        if (n->op == ZN_OP_RELU && g.nodes[n->src[0]].op == ZN_OP_BATCHNORM) {
            assert_int_equal(p.alias[i], n->src[0]);
            relus++;
        }
        if (n->op == ZN_OP_RELU_BWD) {
            assert_true(p.alias[i] == n->src[0] || p.alias[i] == n->src[1]);
            relu_bwds++;
        }
        if (n->op == ZN_OP_BATCHNORM) assert_int_equal(p.alias[i], -1); /* its backward reads x */
    }
    assert_true(relus >= 8);
    assert_int_equal(relu_bwds, relus);
    zn_plan_free(&p);
    zn_graph_free(&g);
}

/* The ops the plan runs in place give the same bits with their output over a source: batch
 * norm's backward over x and over dy (with and without the gamma and beta sums), global max
 * pooling's backward over x, and mul over a source of its size. */
static void test_kernels_in_place(void **state)
{
    (void)state;
    enum { N = 2, C = 3, HW = 10, T = N * C * HW };
    float x[T], dy[T], gamma[C] = {1.0f, -2.0f, 0.5f}, dg[C], db[C], ref[T], buf[T], gy[N * C];
    for (int i = 0; i < T; i++) {
        x[i] = (float)((i * 37) % 17) - 8.0f;
        dy[i] = (float)((i * 11) % 7) - 3.0f;
    }
    for (int i = 0; i < N * C; i++) gy[i] = (float)i - 2.5f;
    zn_bn_dims d = {N, C, HW, 1e-5f, 0.9f};
    zn_batchnorm_backward(&d, x, NULL, dy, NULL, NULL, dg, db);
    for (int sums = 0; sums < 2; sums++)
        for (int over = 0; over < 2; over++) { /* over x, over dy */
            float xs[T], dys[T];
            memcpy(xs, x, sizeof x);
            memcpy(dys, dy, sizeof dy);
            float *out = over ? dys : xs;
            if (sums) {
                zn_batchnorm_backward_data(&d, x, gamma, dy, dg, db, ref);
                zn_batchnorm_backward_data(&d, xs, gamma, dys, dg, db, out);
            } else {
                zn_batchnorm_backward(&d, x, gamma, dy, NULL, ref, NULL, NULL);
                zn_batchnorm_backward(&d, xs, gamma, dys, NULL, out, NULL, NULL);
            }
            assert_memory_equal(out, ref, sizeof ref);
        }
    /* the fused batch norm + relu's dx, over x and over dy */
    float coef[7 * C];
    zn_bn_relu_backward(&d, x, gamma, dg, dy, coef, NULL); /* dg as beta: any per-channel values */
    zn_bn_relu_backward_data(&d, x, dy, coef, ref);
    for (int one_pass = 0; one_pass < 2; one_pass++) /* dx apart, or with the coefficients */
        for (int over = 0; over < 2; over++) {
            float xs[T], dys[T], coef2[7 * C];
            memcpy(xs, x, sizeof x);
            memcpy(dys, dy, sizeof dy);
            if (one_pass) {
                zn_bn_relu_backward(&d, xs, gamma, dg, dys, coef2, over ? dys : xs);
                assert_memory_equal(coef2, coef, sizeof coef);
            } else {
                zn_bn_relu_backward_data(&d, xs, dys, coef, over ? dys : xs);
            }
            assert_memory_equal(over ? dys : xs, ref, sizeof ref);
        }
    zn_global_pool_backward(ZN_WINDOW_MAX, N, C, 2, 5, x, gy, ref);
    memcpy(buf, x, sizeof x);
    zn_global_pool_backward(ZN_WINDOW_MAX, N, C, 2, 5, buf, gy, buf);
    assert_memory_equal(buf, ref, sizeof ref);
    /* mul, over either source of one shape and over the map it gates */
    for (int gate = 0; gate < 2; gate++)
        for (int over = 0; over < 2 - gate; over++) {
            const size_t rows = gate ? N * C : T, inner = gate ? HW : 1;
            const float *b = gate ? gy : dy;
            float as[T], bs[T];
            memcpy(as, x, sizeof x);
            memcpy(bs, b, rows * sizeof *b);
            zn_mul_forward(rows, inner, x, b, ref);
            zn_mul_forward(rows, inner, as, bs, over ? bs : as);
            assert_memory_equal(over ? bs : as, ref, sizeof ref);
        }
}

/* DenseNet's concatenations recomputed in the backward pass (graph/pass_recompute.c) are never
 * live two at a time, so the planner gives them one small region of the arena instead of a buffer
 * each for the whole step: the arena is about half of the naive concatenation's. */
static void test_densenet_shared_concats(void **state)
{
    (void)state;
    zn_graph g = load("models/densenet_bc.znet", NULL, 0), shared, naive;
    char err[512];
    /* batch norm and relu apart, as the counts below assume (test_passes covers them fused) */
    const char *const no_recompute[] = {"fuse_bn_relu", "recompute"};
    assert_true(zn_passes_run(&g, NULL, 0, NULL, err, sizeof err));
    zn_graph_copy(&shared, &g);
    zn_graph_copy(&naive, &g);
    assert_true(zn_passes_finish(&shared, true, no_recompute, 1, NULL, err, sizeof err));
    assert_true(zn_passes_finish(&naive, true, no_recompute, 2, NULL, err, sizeof err));
    zn_plan ps, pn;
    assert_true(zn_plan_make(&ps, &shared, 64, NULL, NULL, err, sizeof err));
    assert_true(zn_plan_make(&pn, &naive, 64, NULL, NULL, err, sizeof err));
    int concats = 0;
    size_t largest = 0, top = 0;
    for (int a = 0; a < shared.n_nodes; a++) {
        if (shared.nodes[a].op != ZN_OP_CONCAT || !strstr(shared.nodes[a].name, "(recompute)")) continue;
        concats++;
        if (ps.bytes[a] > largest) largest = ps.bytes[a];
        if (ps.offset[a] + ps.bytes[a] > top) top = ps.offset[a] + ps.bytes[a];
        for (int b = a + 1; b < shared.n_nodes; b++)
            if (shared.nodes[b].op == ZN_OP_CONCAT && strstr(shared.nodes[b].name, "(recompute)"))
                assert_true(ps.last[a] < ps.first[b] || ps.last[b] < ps.first[a]);
    }
    assert_int_equal(concats, 2 * 18); /* a chain's and a batch norm backward's copy per concat */
    printf("recomputed concats: %d, the largest %zu bytes, all below byte %zu; arena %zu bytes, %zu without\n",
           concats, largest, top, ps.region_bytes[ZN_REGION_ARENA], pn.region_bytes[ZN_REGION_ARENA]);
    assert_true(top <= 3 * largest);
    assert_true(ps.region_bytes[ZN_REGION_ARENA] * 100 < pn.region_bytes[ZN_REGION_ARENA] * 55);
    zn_plan_free(&ps);
    zn_plan_free(&pn);
    zn_graph_free(&shared);
    zn_graph_free(&naive);
    zn_graph_free(&g);
}

/* After a training step (every training pass on: recomputed copies, in-place batch norm and max
 * pooling backward), the highest arena byte the CPU backend wrote is the plan's arena: the Zee
 * model at width 8 (its z-tower recomputed) and a narrow DenseNet (its concatenations). */
static void test_high_water_equals_plan(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        zn_setting sets[2];
    } models[] = {{"models/davidnet_zee.znet", {{"width", "8"}}},
                  {"models/densenet_bc.znet", {{"depth", "16"}, {"growth", "4"}}}};
    for (int m = 0; m < 2; m++) {
        zn_graph g = load(models[m].rel, models[m].sets, models[m].sets[1].key ? 2 : 1);
        char err[512];
        assert_true(zn_passes_run(&g, NULL, 0, NULL, err, sizeof err));
        zn_session s;
        zn_backend_opts o = {.threads = 1};
        if (!zn_session_init(&s, &g, &zn_cpu_backend, &o, 4, true)) fail_msg("%s", s.err);
        assert_true(zn_session_init_params(&s, 1));
        size_t img = s.plan.bytes[s.image] / sizeof(float);
        float *images = calloc(img, sizeof *images);
        for (size_t i = 0; i < img; i++) images[i] = (float)((i * 7919) % 255) / 64.0f - 2.0f;
        int32_t labels[4] = {1, 2, 3, 4};
        zn_optim_step st = {.kind = ZN_STEP_SGD, .lr = 0.01f, .momentum = 0.9f};
        assert_true(zn_session_feed(&s, images, labels));
        if (!zn_session_train_step(&s, &st)) fail_msg("%s", s.err);
        size_t hw = s.be->ops->arena_high_water(s.be);
        size_t planned = s.plan.region_bytes[ZN_REGION_ARENA];
        /* the high-water mark is the end of the highest tensor written; the arena is that, aligned */
        assert_true(hw <= planned);
        assert_true(hw + 64 > planned);
        free(images);
        zn_session_free(&s);
        zn_graph_free(&g);
    }
}

/* A batch whose plan exceeds the machine's memory is refused before anything is allocated,
 * with the plan's figure. */
static void test_oversized_batch_refused(void **state)
{
    (void)state;
    zn_graph g = load("models/davidnet.znet", NULL, 0);
    zn_session s;
    zn_backend_opts o = {.threads = 1};
    assert_false(zn_session_init(&s, &g, &zn_cpu_backend, &o, 65536, true));
    assert_non_null(strstr(s.err, "batch 65536 needs"));
    assert_non_null(strstr(s.err, "GiB by the memory plan (training step), but only"));
    zn_session_free(&s);
    zn_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_chain_runs_in_place),
        cmocka_unit_test(test_no_in_place_over_a_live_source),
        cmocka_unit_test(test_training_relu_in_place),
        cmocka_unit_test(test_every_model_plans_without_overlap),
        cmocka_unit_test(test_kernels_in_place),
        cmocka_unit_test(test_densenet_shared_concats),
        cmocka_unit_test(test_high_water_equals_plan),
        cmocka_unit_test(test_oversized_batch_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
