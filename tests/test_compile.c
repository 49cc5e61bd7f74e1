/* test_compile.c: the compile pipeline (runtime/compile.h) and the profiler beside the session
 * (runtime/profile.h). zn_compile gives the graphs the pass drivers give, stops right after the
 * pass it is told (autodiff included), plans and places on a backend when asked, and names the
 * stage that failed; a session is what zn_compile makes; a profile times every node once. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_backend.h"
#include "graph/passes.h"
#include "runtime/compile.h"
#include "runtime/profile.h"
#include "runtime/session.h"

static const zn_setting narrow[] = {{"width", "4"}};

/* zn_compile of models/rel with narrow settings in mode, or the test fails. */
static void compile(const char *rel, zn_compile_mode mode, int batch, zn_compiled *c)
{
    zn_compile_opts o = {.path = zt_src_path(rel), .settings = narrow, .n_settings = 1, .mode = mode,
                         .batch = batch};
    if (!zn_compile(&o, c)) fail_msg("%s: %s", rel, c->err);
}

/* From a file: the forward graph of load + forward passes, its fingerprint, the recipe. */
static void test_forward(void **state)
{
    (void)state;
    zn_compiled c;
    compile("models/davidnet_zee.znet", ZN_COMPILE_FORWARD, 0, &c);
    zn_graph g;
    zt_load(zt_src_path("models/davidnet_zee.znet"), narrow, 1, &g);
    uint64_t before = zn_graph_hash(&g);
    zt_run_passes(&g, NULL, 0);
    assert_int_equal(c.graph.n_nodes, g.n_nodes);
    assert_int_equal(c.n_forward, g.n_nodes);
    assert_true(c.fingerprint == before);
    assert_int_equal(c.recipe.batch, 512);
    assert_int_equal(zt_count_flag(&c.graph, ZN_NODE_BACKWARD), 0);
    assert_int_equal(c.plan.n_nodes, 0); /* no batch: no plan */
    assert_null(c.be);
    zn_graph_free(&g);
    zn_compiled_free(&c);
}

/* From a forward graph: the training and inference graphs are the drivers', planned at batch. */
static void test_modes(void **state)
{
    (void)state;
    zn_compiled fwd;
    compile("models/davidnet_zee.znet", ZN_COMPILE_FORWARD, 0, &fwd);
    for (int training = 0; training < 2; training++) {
        zn_graph want;
        zn_graph_copy(&want, &fwd.graph);
        char err[512];
        assert_true(zn_passes_finish(&want, training, NULL, 0, NULL, err, sizeof err));
        zn_compiled c;
        zn_compile_opts o = {.from = &fwd.graph, .mode = training ? ZN_COMPILE_TRAINING : ZN_COMPILE_INFERENCE,
                             .batch = 3};
        if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
        assert_int_equal(c.graph.n_nodes, want.n_nodes);
        /* training: the forward graph less the batch norms fuse_bn_relu joined to their relus */
        assert_int_equal(c.n_forward, training ? fwd.graph.n_nodes - zt_count_op(&c.graph, ZN_OP_BATCHNORM_RELU)
                                               : want.n_nodes);
        /* ten in the trunk, three in the z-towers (fused only under a memory budget that needs it) */
        assert_int_equal(zt_count_op(&c.graph, ZN_OP_BATCHNORM_RELU), training ? 13 : 0);
        assert_int_equal(zt_count_op(&c.graph, ZN_OP_ZTOWER), 0);
        assert_int_equal(zt_count_flag(&c.graph, ZN_NODE_BACKWARD), zt_count_flag(&want, ZN_NODE_BACKWARD));
        assert_true(c.fingerprint == fwd.fingerprint);
        assert_int_equal(c.plan.batch, 3);
        assert_int_equal(c.plan.n_nodes, c.graph.n_nodes);
        assert_true(zn_plan_verify(&c.plan, &c.graph, err, sizeof err));
        zn_compiled_free(&c);
        zn_graph_free(&want);
    }
    zn_compiled_free(&fwd);
}

/* stop_after: the graph right after that pass, autodiff included, with nothing after it run. */
static void test_stop_after(void **state)
{
    (void)state;
    char buf[8192];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    zn_compiled c;
    zn_compile_opts o = {.path = zt_src_path("models/davidnet_zee.znet"), .settings = narrow, .n_settings = 1,
                         .mode = ZN_COMPILE_TRAINING, .stop_after = "autodiff", .report = f, .batch = 4};
    if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
    fclose(f);
    assert_true(zt_count_flag(&c.graph, ZN_NODE_BACKWARD) > 0);
    assert_true(zt_count_flag(&c.graph, ZN_NODE_GRAD) > 0);
    assert_int_equal(zt_count_suffix(&c.graph, " (recompute)"), 0); /* the recompute pass comes later */
    assert_int_equal(c.plan.n_nodes, 0);                          /* a stop makes no plan */
    assert_non_null(strstr(buf, "  autodiff     113 -> "));
    assert_non_null(strstr(buf, "  ztower       off (a memory lever: only where a memory budget needs it)"));
    assert_non_null(strstr(buf, "(training graph)"));
    assert_null(strstr(buf, "poolmask"));
    zn_compiled_free(&c);
    /* a forward pass stops a training compile before autodiff */
    o = (zn_compile_opts){.path = zt_src_path("models/davidnet_zee.znet"), .settings = narrow, .n_settings = 1,
                          .mode = ZN_COMPILE_TRAINING, .stop_after = "stitch"};
    if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
    assert_int_equal(zt_count_flag(&c.graph, ZN_NODE_BACKWARD), 0);
    assert_int_equal(zt_count_op(&c.graph, ZN_OP_STITCH), 3);
    assert_int_equal(zt_count_op(&c.graph, ZN_OP_ZTOWER), 0);
    zn_compiled_free(&c);
    /* stopping after the memory lever shows what it does */
    o.stop_after = "ztower";
    if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
    assert_int_equal(zt_count_op(&c.graph, ZN_OP_ZTOWER), 3);
    assert_int_equal(zt_count_op(&c.graph, ZN_OP_STITCH), 0);
    zn_compiled_free(&c);
}

/* A failure names its stage, and from a file the file. */
static void test_failures(void **state)
{
    (void)state;
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    const char *bad = zt_write_file("bad.znet", "model bad() {\n  input image: [3, 8, 8]\n  x = nope(image)\n}\n");
    zn_compiled c;
    zn_compile_opts o = {.path = bad, .diag_out = f};
    assert_false(zn_compile(&o, &c));
    fclose(f);
    assert_int_equal(c.failed, ZN_COMPILE_LOAD);
    assert_string_equal(zn_compile_stage_names[c.failed], "load");
    assert_non_null(strstr(c.err, "1 error in "));
    assert_non_null(strstr(c.err, "bad.znet"));
    assert_non_null(strstr(buf, "error:")); /* the diagnostics went where they were sent */
    zn_compiled_free(&c);

    const char *const required[] = {"autodiff"};
    o = (zn_compile_opts){.path = zt_src_path("models/fashion_small.znet"), .no_pass = required, .n_no_pass = 1};
    assert_false(zn_compile(&o, &c));
    assert_int_equal(c.failed, ZN_COMPILE_PASSES);
    assert_non_null(strstr(c.err, "fashion_small.znet: pass autodiff cannot be skipped"));
    zn_compiled_free(&c);

    static const struct {
        const char *stop, *want;
        zn_compile_mode mode;
    } stops[] = {
        {"fold_bn", "pass fold_bn runs on the inference graph, not on the training graph", ZN_COMPILE_TRAINING},
        {"autodiff", "pass autodiff runs on the training graph, not on the inference graph", ZN_COMPILE_INFERENCE},
        {"autodif", "no pass is called 'autodif'", ZN_COMPILE_TRAINING},
    };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        o = (zn_compile_opts){.path = zt_src_path("models/fashion_small.znet"), .mode = stops[i].mode,
                              .stop_after = stops[i].stop};
        assert_false(zn_compile(&o, &c));
        assert_int_equal(c.failed, ZN_COMPILE_PASSES);
        assert_non_null(strstr(c.err, stops[i].want));
        zn_compiled_free(&c);
    }

    zn_backend_opts bo = {.threads = 1};
    const zn_setting wide[] = {{"width", "1024"}};
    o = (zn_compile_opts){.path = zt_src_path("models/davidnet.znet"), .settings = wide, .n_settings = 1,
                          .mode = ZN_COMPILE_TRAINING, .batch = 65536, .backend = &zn_cpu_backend,
                          .backend_opts = &bo};
    assert_false(zn_compile(&o, &c)); /* terabytes: far more than any machine running this has */
    assert_int_equal(c.failed, ZN_COMPILE_BACKEND);
    assert_non_null(strstr(c.err, "davidnet.znet: batch 65536 needs "));
    assert_non_null(strstr(c.err, "by the memory plan (training step), but only"));
    zn_compiled_free(&c);
}

/* With a backend: the plan is placed on it; the recipe's batch; a separate plan. */
static void test_backend(void **state)
{
    (void)state;
    zn_backend_opts bo = {.threads = 1};
    for (int separate = 0; separate < 2; separate++) {
        zn_compile_opts o = {.path = zt_src_path("models/fashion_small.znet"), .settings = narrow,
                             .n_settings = 1, .mode = ZN_COMPILE_TRAINING, .batch = ZN_COMPILE_RECIPE_BATCH,
                             .backend = &zn_cpu_backend, .backend_opts = &bo, .separate = separate};
        zn_compiled c;
        if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
        assert_non_null(c.be);
        assert_int_equal(c.plan.batch, c.recipe.batch);
        if (separate) assert_int_equal(c.plan.region_bytes[ZN_REGION_ARENA], c.plan.naive_bytes);
        else assert_true(c.plan.region_bytes[ZN_REGION_ARENA] < c.plan.naive_bytes);
        zn_compiled_free(&c);
    }
}

/* A session is zn_compile's result; its profile times every node of a step once. */
static void test_session_and_profile(void **state)
{
    (void)state;
    zn_compiled fwd;
    compile("models/fashion_small.znet", ZN_COMPILE_FORWARD, 0, &fwd);
    zn_backend_opts bo = {.threads = 1};
    for (int training = 0; training < 2; training++) {
        zn_compile_opts o = {.from = &fwd.graph, .mode = training ? ZN_COMPILE_TRAINING : ZN_COMPILE_INFERENCE,
                             .batch = 2, .backend = &zn_cpu_backend, .backend_opts = &bo};
        zn_compiled c;
        if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
        zn_session s;
        if (!zn_session_init(&s, &fwd.graph, &zn_cpu_backend, &bo, 2, training)) fail_msg("%s", s.err);
        assert_int_equal(s.graph.n_nodes, c.graph.n_nodes);
        assert_int_equal(s.n_forward, c.n_forward);
        assert_true(s.fingerprint == c.fingerprint);
        assert_int_equal(zn_plan_total(&s.plan), zn_plan_total(&c.plan));
        zn_compiled_free(&c);
        assert_true(zn_session_init_params(&s, 1));
        zn_profiler p;
        zn_op_profile t;
        double sec = -1;
        assert_true(zn_profiler_init(&p, &s, 2));
        assert_true(zn_profile_time(&p, training, 1, &sec));
        assert_true(sec >= 0);
        assert_true(zn_profile_ops(&p, training, &t));
        int nodes = 0;
        for (int op = 0; op < ZN_OP_COUNT; op++) nodes += t.nodes[op];
        assert_int_equal(nodes, training ? s.graph.n_nodes : s.n_forward);
        assert_int_equal(t.nodes[ZN_OP_CONV2D], 5);
        assert_true(t.total >= t.seconds[ZN_OP_CONV2D]);
        zn_profiler_free(&p);
        zn_session_free(&s);
    }
    zn_compiled_free(&fwd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),  cmocka_unit_test(test_modes),   cmocka_unit_test(test_stop_after),
        cmocka_unit_test(test_failures), cmocka_unit_test(test_backend), cmocka_unit_test(test_session_and_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
