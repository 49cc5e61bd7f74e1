/* test_budget.c: training within a memory budget (graph/budget.h, runtime/compile.h): sizes as
 * the flag takes them; for every model, budgets that fit exactly, one byte less and impossible
 * ones; the CPU backend's arena high-water mark within the budget; and a budgeted session giving
 * the same gradients and weights, bit for bit, as one without a budget. */
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

/* The curve's smallest total fits exactly and is what the budget then plans; a byte less, or one
 * byte, is refused with what dominates; the keep-everything total recomputes nothing. */
static void budgets_of_model(const char *rel, void *ctx)
{
    (void)ctx;
    zn_backend_opts bo;
    zn_compile_opts o = opts_for(rel, 0, &bo);
    zn_budget_point *pts = calloc(MAX_RUNGS, sizeof *pts);
    zn_compiled c;
    int n = zn_compile_curve(&o, &c, pts, MAX_RUNGS);
    if (n < 1) fail_msg("%s: %s", rel, c.err);
    zn_compiled_free(&c);
    size_t least = pts[0].total;
    for (int i = 1; i < n; i++)
        if (pts[i].total < least) least = pts[i].total;
    const struct {
        size_t budget;
        bool fits;
    } cases[] = {{least, true}, {least - 1, false}, {1, false}, {pts[0].total, true}};
    for (int k = 0; k < 4; k++) {
        o = opts_for(rel, cases[k].budget, &bo);
        bool ok = zn_compile(&o, &c);
        if (ok != cases[k].fits) fail_msg("%s, budget %zu bytes: %s", rel, cases[k].budget, ok ? "fits" : c.err);
        if (ok) {
            char err[512];
            assert_true(zn_plan_total(&c.plan) <= cases[k].budget);
            assert_int_equal(zn_plan_total(&c.plan), c.budget.total);
            if (!zn_plan_verify(&c.plan, &c.graph, err, sizeof err)) fail_msg("%s: %s", rel, err);
            if (k == 3) assert_int_equal(c.budget.rung, -1); /* keep everything: nothing recomputed */
        } else {
            assert_true(c.over_budget);
            assert_non_null(strstr(c.err, "cannot be met at batch 4: the smallest plan takes"));
            assert_non_null(strstr(c.err, "largest single tensor"));
        }
        zn_compiled_free(&c);
    }
    free(pts);
}

static void test_every_model_budgets(void **state)
{
    (void)state;
    assert_true(zt_each_model(budgets_of_model, NULL) > 0);
}

/* A narrow DenseNet: concatenations, bottleneck convs, transitions. */
static const zn_setting densenet[] = {{"depth", "16"}, {"growth", "4"}};

/* The tightest budget the ladder reaches for the narrow DenseNet at BATCH: every recomputable
 * conv recomputed (the top rung's total). */
static size_t tightest(const zn_graph *fwd)
{
    zn_backend_opts bo = {.threads = 1};
    zn_compile_opts o = {.from = fwd, .mode = ZN_COMPILE_TRAINING, .batch = BATCH, .backend = &zn_cpu_backend,
                         .backend_opts = &bo, .plan_only = true};
    zn_budget_point pts[MAX_RUNGS];
    zn_compiled c;
    int n = zn_compile_curve(&o, &c, pts, MAX_RUNGS);
    if (n < 3) fail_msg("want convs to recompute, got %d rungs: %s", n, c.err);
    zn_compiled_free(&c);
    return pts[n - 1].total;
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

/* Three SGD steps on fixed batches. */
static void train(zn_session *s)
{
    size_t img = s->plan.bytes[s->image] / sizeof(float);
    float *images = calloc(img, sizeof *images);
    int32_t labels[BATCH] = {1, 2, 3, 4};
    zn_optim_step st = {.kind = ZN_STEP_SGD, .lr = 0.05f, .momentum = 0.9f};
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < img; i++) images[i] = (float)((i * 7919 + (size_t)step * 31) % 255) / 64.0f - 2.0f;
        assert_true(zn_session_feed(s, images, labels));
        if (!zn_session_train_step(s, &st)) fail_msg("%s", s->err);
    }
    free(images);
}

/* A region of the session's backend, copied out (free it). */
static unsigned char *region(zn_session *s, zn_region r)
{
    size_t bytes = s->plan.region_bytes[r];
    unsigned char *out = calloc(bytes + 1, 1);
    assert_true(s->be->ops->get(s->be, r, 0, out, bytes));
    return out;
}

/* The tightest budget recomputes convs, its plan and the backend's high-water mark stay within
 * it, and three steps give the same gradients, weights and batch-norm statistics, bit for bit,
 * as with nothing recomputed (whose gradients are those test_gradcheck checks op by op). */
static void test_tight_budget_same_bits(void **state)
{
    (void)state;
    zn_graph fwd;
    zt_load(zt_src_path("models/densenet_bc.znet"), densenet, 2, &fwd);
    zt_run_passes(&fwd, NULL, 0);
    size_t budget = tightest(&fwd);
    zn_session free_run, tight; /* nothing recomputed; the tightest budget */
    session(&free_run, &fwd, 0);
    session(&tight, &fwd, budget);
    int convs = 0;
    for (int i = 0; i < tight.graph.n_nodes; i++)
        convs += tight.graph.nodes[i].op == ZN_OP_CONV2D && (tight.graph.nodes[i].flags & ZN_NODE_BACKWARD);
    assert_true(convs > 0);
    assert_true(zn_plan_total(&tight.plan) <= budget);
    assert_true(zn_plan_total(&tight.plan) < zn_plan_total(&free_run.plan));
    train(&free_run);
    train(&tight);
    size_t hw = tight.be->ops->arena_high_water(tight.be);
    assert_true(hw <= tight.plan.region_bytes[ZN_REGION_ARENA]);
    assert_true(hw + tight.plan.region_bytes[ZN_REGION_PARAMS] + tight.plan.region_bytes[ZN_REGION_GRADS] +
                    tight.plan.region_bytes[ZN_REGION_OPTIM] + tight.plan.workspace_bytes <= budget);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sizes),
        cmocka_unit_test(test_every_model_budgets),
        cmocka_unit_test(test_tight_budget_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
