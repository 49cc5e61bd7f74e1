/* test_budget.c: training within a memory budget (graph/budget.h, runtime/compile.h): sizes as
 * the flag takes them; for every model, budgets that fit exactly (each family of rungs), one byte
 * less and impossible ones, and a step within the smallest; the floor no rung goes below; the CPU
 * backend's arena high-water mark within the budget; and budgeted sessions (split segments with
 * max pooling among them) giving the same gradients and weights, bit for bit, as without; the
 * z-tower fusion chosen only where the budget needs it. */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "graph/budget.h"
#include "graph/passes.h"
#include "runtime/compile.h"
#include "runtime/session.h"

enum { BATCH = 4, MAX_RUNGS = 512 };

static void test_parse_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes; /* 0: refused */
    } cases[] = {
        {"1", 1},           {"1024", 1024},     {"512M", 512u << 20}, {"1G", 1u << 30},
        {"1.5GiB", 3u << 29}, {"64KB", 64u << 10}, {"2m", 2u << 20},    {"1T", (size_t)1 << 40},
        {"", 0},            {"G", 0},           {"-1G", 0},           {"0", 0},
        {"1.5X", 0},        {"1GiBs", 0},       {"inf", 0},           {"nan", 0},
        {"0.5", 0},         {"1e300G", 0},      {" 1G", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t got = 0;
        bool ok = zn_budget_parse(cases[k].text, &got);
        if (ok != (cases[k].bytes != 0) || (ok && got != cases[k].bytes))
            fail_msg("'%s': %s %zu, want %zu", cases[k].text, ok ? "parsed as" : "refused", got, cases[k].bytes);
    }
}

static zn_compile_opts opts_for(const char *rel, size_t budget, zn_backend_opts *bo)
{
    *bo = (zn_backend_opts){.threads = 1};
    return (zn_compile_opts){.path = zt_src_path(rel), .mode = ZN_COMPILE_TRAINING, .batch = BATCH,
                             .backend = &zn_cpu_backend, .backend_opts = bo, .plan_only = true,
                             .memory_budget = budget, .diag_out = stderr};
}

/* A session on fwd at BATCH with a memory budget, or (0) with nothing recomputed, its weights
 * from seed 1. */
static void session(zn_session *s, const zn_graph *fwd, size_t budget)
{
    static const char *const no_recompute[] = {"recompute"};
    zn_backend_opts o = {.threads = 1, .memory_budget = budget, .no_pass = budget ? NULL : no_recompute,
                         .n_no_pass = budget ? 0 : 1};
    if (!zn_session_init(s, fwd, &zn_cpu_backend, &o, BATCH, true)) fail_msg("%s", s->err);
    assert_true(zn_session_init_params(s, 1));
}

/* SGD steps on fixed batches. */
static void train(zn_session *s, int steps)
{
    size_t img = s->plan.bytes[s->image] / sizeof(float);
    float *images = calloc(img, sizeof *images);
    int32_t labels[BATCH] = {1, 2, 3, 4};
    zn_optim_step st = {.kind = ZN_STEP_SGD, .lr = 0.05f, .momentum = 0.9f};
    for (int step = 0; step < steps; step++) {
        for (size_t i = 0; i < img; i++) images[i] = (float)((i * 7919 + (size_t)step * 31) % 255) / 64.0f - 2.0f;
        assert_true(zn_session_feed(s, images, labels));
        if (!zn_session_train_step(s, &st)) fail_msg("%s", s->err);
    }
    free(images);
}

/* The CPU backend's arena high-water mark after a step, plus the plan's fixed parts, is within
 * budget. */
static void assert_high_water_within(zn_session *s, size_t budget)
{
    size_t hw = s->be->ops->arena_high_water(s->be);
    assert_true(hw <= s->plan.region_bytes[ZN_REGION_ARENA]);
    assert_true(hw + s->plan.region_bytes[ZN_REGION_PARAMS] + s->plan.region_bytes[ZN_REGION_GRADS] +
                    s->plan.region_bytes[ZN_REGION_OPTIM] + s->plan.workspace_bytes <=
                budget);
}

/* The curve of the model at rel (or of fwd, when given) into pts; returns how many rungs. */
static int curve(const char *rel, const zn_graph *fwd, zn_budget_point *pts)
{
    zn_backend_opts bo = {.threads = 1};
    zn_compile_opts o = {.path = rel ? zt_src_path(rel) : NULL, .from = fwd, .mode = ZN_COMPILE_TRAINING,
                         .batch = BATCH, .backend = &zn_cpu_backend, .backend_opts = &bo, .plan_only = true};
    zn_compiled c;
    int n = zn_compile_curve(&o, &c, pts, MAX_RUNGS);
    if (n < 1) fail_msg("%s: %s", rel ? rel : "curve", c.err);
    zn_compiled_free(&c);
    return n;
}

/* The smallest total of the rungs of pts of family f (0: unsplit, 1: split, 2: a copy per
 * reader; -1: any); 0 when there is none. */
static size_t least_of(const zn_budget_point *pts, int n, int f)
{
    size_t least = 0;
    for (int i = 0; i < n; i++)
        if ((f < 0 || f == pts[i].split + pts[i].per_reader) && (!least || pts[i].total < least)) least = pts[i].total;
    return least;
}

/* Compiles the model at rel within budget; checks the plan against it when it fits, the refusal
 * (the smallest plan, what dominates it, the floor below it) when it does not. */
static void check_budget(const char *rel, size_t budget, bool fits, int want_rung)
{
    zn_backend_opts bo;
    zn_compile_opts o = opts_for(rel, budget, &bo);
    zn_compiled c;
    bool ok = zn_compile(&o, &c);
    if (ok != fits) fail_msg("%s, budget %zu bytes: %s", rel, budget, ok ? "fits" : c.err);
    if (ok) {
        char err[512];
        int v;
        assert_true(zn_plan_total(&c.plan) <= budget);
        assert_int_equal(zn_plan_total(&c.plan), c.budget.total);
        assert_true(zn_budget_floor(&c.graph, &c.plan, &v) <= c.budget.total);
        if (!zn_plan_verify(&c.plan, &c.graph, err, sizeof err)) fail_msg("%s: %s", rel, err);
        if (want_rung >= -1) assert_int_equal(c.budget.rung, want_rung);
    } else {
        assert_true(c.over_budget);
        assert_non_null(strstr(c.err, "cannot be met at batch 4: the smallest plan takes"));
        assert_non_null(strstr(c.err, "largest single tensor"));
        assert_non_null(strstr(c.err, "no choice of what to recompute goes below"));
    }
    zn_compiled_free(&c);
}

/* The curve's smallest total fits exactly, and so does each family's smallest (the split rungs
 * too); a byte less than the smallest, or one byte, is refused with what dominates and the floor;
 * the keep-everything total recomputes nothing. The smallest plan then runs a step within it. */
static void budgets_of_model(const char *rel, void *ctx)
{
    (void)ctx;
    zn_budget_point *pts = calloc(MAX_RUNGS, sizeof *pts);
    int n = curve(rel, NULL, pts);
    size_t least = least_of(pts, n, -1);
    for (int f = 0; f < 3; f++)
        if (least_of(pts, n, f)) check_budget(rel, least_of(pts, n, f), true, -2);
    check_budget(rel, least - 1, false, -2);
    check_budget(rel, 1, false, -2);
    check_budget(rel, pts[0].total, true, -1); /* keep everything: nothing recomputed */
    zn_graph fwd;
    zt_load(zt_src_path(rel), NULL, 0, &fwd);
    zt_run_passes(&fwd, NULL, 0);
    zn_session s;
    session(&s, &fwd, least);
    train(&s, 1);
    assert_high_water_within(&s, least);
    zn_session_free(&s);
    zn_graph_free(&fwd);
    free(pts);
}

static void test_every_model_budgets(void **state)
{
    (void)state;
    assert_true(zt_each_model(budgets_of_model, NULL) > 0);
}

/* The floor is a true lower bound: below every rung's total, and for a node that reads two
 * tensors and writes a third, their sum. */
static void test_floor(void **state)
{
    (void)state;
    static const zn_setting narrow[] = {{"width", "4"}};
    zn_graph fwd;
    zt_load(zt_src_path("models/davidnet_multisoft.znet"), narrow, 1, &fwd);
    zt_run_passes(&fwd, NULL, 0);
    zn_budget_point pts[MAX_RUNGS];
    int n = curve(NULL, &fwd, pts);
    zn_session s;
    session(&s, &fwd, least_of(pts, n, -1));
    int v;
    size_t floor = zn_budget_floor(&s.graph, &s.plan, &v);
    for (int i = 0; i < n; i++) assert_true(floor <= pts[i].total);
    /* the floor's node: a max pool's backward (input, pooled gradient, output of the input's size) */
    assert_int_equal(s.graph.nodes[v].op, ZN_OP_MAXPOOL_BWD);
    const int *src = s.graph.nodes[v].src;
    assert_int_equal(floor - zn_plan_total(&s.plan) + s.plan.region_bytes[ZN_REGION_ARENA],
                     s.plan.bytes[src[0]] + s.plan.bytes[src[1]] + s.plan.bytes[v]);
    zn_session_free(&s);
    zn_graph_free(&fwd);
}

/* A region of the session's backend, copied out (free it). */
static unsigned char *region(zn_session *s, zn_region r)
{
    size_t bytes = s->plan.region_bytes[r];
    unsigned char *out = calloc(bytes + 1, 1);
    assert_true(s->be->ops->get(s->be, r, 0, out, bytes));
    return out;
}

/* How many backward (recomputed) copies of op the graph has. */
static int copies(const zn_graph *g, zn_op op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op && (g->nodes[i].flags & ZN_NODE_BACKWARD);
    return n;
}

/* A narrow DenseNet (concatenations, bottleneck convs, transitions) and a narrow DavidNet (max
 * pooling, residual layers: split segments), each within the smallest budget its curve reaches. */
static const struct {
    const char *model;
    zn_setting settings[2];
    int n_settings;
    bool pools; /* the smallest plan recomputes max pooling */
} tight_cases[] = {
    {"models/densenet_bc.znet", {{"depth", "16"}, {"growth", "4"}}, 2, false},
    {"models/davidnet_multisoft.znet", {{"width", "4"}}, 1, true},
};

/* The smallest budget recomputes convs (and max pooling where the model pools), its plan and the
 * backend's high-water mark stay within it, and three steps give the same gradients, weights and
 * batch-norm statistics, bit for bit, as with nothing recomputed (whose gradients are those
 * test_gradcheck checks op by op; it checks a split, recomputed DavidNet's too). */
static void test_tight_budget_same_bits(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof tight_cases / sizeof tight_cases[0]; k++) {
        zn_graph fwd;
        zt_load(zt_src_path(tight_cases[k].model), tight_cases[k].settings, tight_cases[k].n_settings, &fwd);
        zt_run_passes(&fwd, NULL, 0);
        zn_budget_point pts[MAX_RUNGS];
        size_t budget = least_of(pts, curve(NULL, &fwd, pts), -1);
        zn_session free_run, tight; /* nothing recomputed; the smallest budget */
        session(&free_run, &fwd, 0);
        session(&tight, &fwd, budget);
        assert_true(copies(&tight.graph, ZN_OP_CONV2D) > 0);
        assert_true((copies(&tight.graph, ZN_OP_MAXPOOL) > 0) == tight_cases[k].pools);
        assert_true(zn_plan_total(&tight.plan) <= budget);
        assert_true(zn_plan_total(&tight.plan) < zn_plan_total(&free_run.plan));
        train(&free_run, 3);
        train(&tight, 3);
        assert_high_water_within(&tight, budget);
        for (zn_region r = ZN_REGION_PARAMS; r <= ZN_REGION_GRADS; r++) {
            assert_int_equal(free_run.plan.region_bytes[r], tight.plan.region_bytes[r]);
            unsigned char *a = region(&free_run, r), *b = region(&tight, r);
            assert_memory_equal(a, b, free_run.plan.region_bytes[r]);
            free(a), free(b);
        }
        double la, lb;
        assert_true(zn_session_loss(&free_run, &la) && zn_session_loss(&tight, &lb));
        assert_memory_equal(&la, &lb, sizeof la);
        zn_session_free(&free_run);
        zn_session_free(&tight);
        zn_graph_free(&fwd);
    }
}

/* A --sync-bn sum over one rank. */
static void sum_nothing(double *v, int n)
{
    (void)v, (void)n;
}

/* The z-tower fusion is a memory lever: a budget the towers fit apart leaves them apart; one only
 * their fusion reaches fuses them (its convs recomputed, counted in the extra multiply-adds) and
 * runs a step within it; with the fusion skipped, or under --sync-bn, that budget is refused. */
static void test_ztower_lever(void **state)
{
    (void)state;
    static const zn_setting width16[] = {{"width", "16"}}; /* at width 4 the towers apart take less */
    zn_graph fwd;
    zt_load(zt_src_path("models/davidnet_zee.znet"), width16, 1, &fwd);
    zt_run_passes(&fwd, NULL, 0);
    assert_int_equal(zt_count_op(&fwd, ZN_OP_ZTOWER), 0); /* not a forward pass any more */
    zn_budget_point *pts = calloc(MAX_RUNGS, sizeof *pts);
    int n = curve(NULL, &fwd, pts), apart = 0;
    size_t least_apart = 0, least_fused = 0;
    for (int i = 0; i < n; i++) {
        size_t *least = pts[i].levers ? &least_fused : &least_apart;
        if (!*least || pts[i].total < *least) *least = pts[i].total;
        apart += !pts[i].levers;
        assert_true(!pts[i].levers || pts[i].extra_macs > 0); /* the fused towers recompute their convs */
    }
    assert_true(apart > 0 && apart < n);
    assert_true(least_fused < least_apart);
    unsigned char *params[2];
    size_t param_bytes[2];
    for (int k = 0; k < 2; k++) {
        zn_session s;
        size_t budget = k ? least_fused : pts[0].total;
        session(&s, &fwd, budget);
        assert_int_equal(zt_count_op(&s.graph, ZN_OP_ZTOWER), k ? 3 : 0);
        /* the forward part is the fused graph's, not the one the towers apart had: evaluation
         * runs [0, n_forward) and the gradient buckets start there */
        assert_int_equal(s.n_forward, s.graph.n_nodes - zt_count_flag(&s.graph, ZN_NODE_BACKWARD));
        assert_true(zn_plan_total(&s.plan) <= budget);
        /* the same parameters at the same offsets: a checkpoint of either loads into the other */
        param_bytes[k] = s.plan.region_bytes[ZN_REGION_PARAMS];
        params[k] = region(&s, ZN_REGION_PARAMS);
        if (k) assert_int_equal(param_bytes[0], param_bytes[1]);
        if (k) assert_memory_equal(params[0], params[1], param_bytes[1]);
        train(&s, 1);
        assert_high_water_within(&s, budget);
        zn_session_free(&s);
    }
    free(params[0]), free(params[1]);
    zn_backend_opts bo = {.threads = 1, .memory_budget = least_fused};
    zn_compile_opts o = {.from = &fwd, .mode = ZN_COMPILE_TRAINING, .batch = BATCH, .backend = &zn_cpu_backend,
                         .backend_opts = &bo, .plan_only = true, .memory_budget = least_fused};
    zn_compiled c;
    assert_true(zn_compile(&o, &c));
    char what[128];
    assert_true(c.budget.levers);
    assert_non_null(strstr(zn_budget_describe(&c.budget, what, sizeof what), "the fused z-towers' convs"));
    zn_compiled_free(&c);
    static const char *const no_ztower[] = {"ztower"};
    o.no_pass = no_ztower, o.n_no_pass = 1;
    assert_false(zn_compile(&o, &c));
    assert_true(c.over_budget);
    zn_compiled_free(&c);
    /* nor under --sync-bn, whose statistics the fused tower's kernels would keep to themselves */
    bo.bn_sync = sum_nothing;
    o.no_pass = NULL, o.n_no_pass = 0;
    assert_false(zn_compile(&o, &c));
    assert_true(c.over_budget);
    zn_compiled_free(&c);
    free(pts);
    zn_graph_free(&fwd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sizes),
        cmocka_unit_test(test_every_model_budgets),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_tight_budget_same_bits),
        cmocka_unit_test(test_ztower_lever),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
