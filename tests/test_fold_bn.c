/* test_fold_bn.c: batch-norm folding for inference (graph/pass_fold_bn.c). On every model in
 * models/ and on hand-written cases (conv with a bias, a conv read twice, a batch norm after a
 * non-conv): the folded graph has no batch norm left where one could fold, names the fused conv
 * after both layers, and gives the same inference logits as the unfolded graph with trained
 * (non-trivial) running statistics. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/passes.h"
#include "lang/program.h"
#include "data/rng.h"
#include "runtime/session.h"

enum { BATCH = 4 };

static void load(const char *path, const zn_setting *sets, int n, zn_graph *g)
{
    zt_load(path, sets, n, g);
    zt_run_passes(g, NULL, 0);
}

static void random_batch(const zn_session *s, float **images, int32_t *labels)
{
    size_t n = s->plan.bytes[s->image] / sizeof(float);
    *images = malloc(sizeof **images * n);
    zn_rng rng;
    zn_rng_init(&rng, 3);
    for (size_t i = 0; i < n; i++) (*images)[i] = zn_rng_normal(&rng);
    for (int i = 0; i < BATCH; i++) labels[i] = (int32_t)zn_rng_below(&rng, 10);
}

/* Parameters after two SGD steps on random data: running statistics far from 0 and 1. */
static float *trained_params(const zn_graph *g, size_t *n)
{
    zn_session t;
    zn_backend_opts o = {.threads = 1};
    if (!zn_session_init(&t, g, &zn_cpu_backend, &o, BATCH, true)) fail_msg("%s", t.err);
    assert_true(zn_session_init_params(&t, 7));
    float *images;
    int32_t labels[BATCH];
    random_batch(&t, &images, labels);
    zn_optim_step step = {.kind = ZN_STEP_SGD, .lr = 0.05f, .momentum = 0.9f};
    for (int i = 0; i < 2; i++)
        if (!zn_session_feed(&t, images, labels) || !zn_session_train_step(&t, &step))
            fail_msg("train step: %s", t.err);
    *n = zn_session_param_floats(&t);
    float *p = malloc(sizeof *p * (*n ? *n : 1));
    assert_true(zn_session_get_params(&t, p));
    free(images);
    zn_session_free(&t);
    return p;
}

/* Inference logits of every head, concatenated; with fold, the session's inference passes fold
 * batch norms themselves (fold_bn is on by default), without it they are kept. */
static float *infer(const zn_graph *g, bool fold, const float *params, size_t n_params,
                    size_t *n_out)
{
    static const char *const no_fold[] = {"fold_bn"};
    zn_session s;
    zn_backend_opts o = {.threads = 1, .no_pass = fold ? NULL : no_fold, .n_no_pass = !fold};
    if (!zn_session_init(&s, g, &zn_cpu_backend, &o, BATCH, false)) fail_msg("%s", s.err);
    if (!fold) assert_int_equal(zt_count_op(&s.graph, ZN_OP_BATCHNORM), zt_count_op(g, ZN_OP_BATCHNORM));
    assert_int_equal(zn_session_param_floats(&s), n_params);
    assert_true(zn_session_set_params(&s, params));
    float *images;
    int32_t labels[BATCH];
    random_batch(&s, &images, labels);
    if (!zn_session_feed(&s, images, labels) || !zn_session_forward(&s, false))
        fail_msg("forward: %s", s.err);
    float *out = malloc(sizeof *out * (size_t)s.n_heads * BATCH * 1000);
    *n_out = 0;
    for (int h = 0; h < s.n_heads; h++) {
        assert_true(zn_session_logits(&s, h, out + *n_out));
        *n_out += s.plan.bytes[s.graph.nodes[s.heads[h]].src[0]] / sizeof(float);
    }
    free(images);
    zn_session_free(&s);
    return out;
}

/* Folds a copy of g and checks what it removed and that inference is unchanged. Returns the
 * number of batch norms folded. */
static int expect_fold_equivalent(const zn_graph *g, const char *what)
{
    zn_graph f;
    zn_graph_copy(&f, g);
    char err[512];
    if (!zn_pass_fold_bn(&f, err, sizeof err)) fail_msg("%s: fold: %s", what, err);
    int folded = zt_count_op(g, ZN_OP_BATCHNORM) - zt_count_op(&f, ZN_OP_BATCHNORM);
    assert_int_equal(zt_count_op(&f, ZN_OP_BN_FOLD_WEIGHT), folded);
    assert_int_equal(zt_count_op(&f, ZN_OP_BN_FOLD_BIAS), folded);
    assert_int_equal(f.n_nodes, g->n_nodes + folded);
    size_t np, na, nb;
    float *params = trained_params(g, &np);
    float *a = infer(g, false, params, np, &na), *b = infer(&f, false, params, np, &nb);
    size_t nc;
    float *c = infer(g, true, params, np, &nc); /* the session's own inference passes */
    assert_int_equal(na, nc);
    assert_memory_equal(b, c, nb * sizeof *b);
    free(c);
    assert_int_equal(na, nb);
    double diff = 0, scale = 1e-6;
    for (size_t i = 0; i < na; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    if (diff / scale > 1e-4) fail_msg("%s: folded logits differ by %g relative", what, diff / scale);
    free(a);
    free(b);
    free(params);
    zn_graph_free(&f);
    return folded;
}

static void fold_model(const char *rel, void *ctx)
{
    (void)ctx;
    zn_setting sets[2] = {{"width", "4"}};
    int n = strstr(rel, "densenet") ? 2 : 1;
    if (n == 2) sets[0] = (zn_setting){"depth", "10"}, sets[1] = (zn_setting){"growth", "4"};
    zn_graph g;
    load(zt_src_path(rel), sets, n, &g);
    int folded = expect_fold_equivalent(&g, rel);
    /* DavidNet-family models are conv -> bn everywhere; DenseNet-BC is bn -> relu -> conv, where
     * only the bottleneck's and the stem's batch norms follow a conv. */
    if (strstr(rel, "davidnet")) assert_int_equal(zt_count_op(&g, ZN_OP_BATCHNORM), folded);
    assert_true(folded > 0);
    zn_graph_free(&g);
}

static void test_every_model(void **state)
{
    (void)state;
    assert_true(zt_each_model(fold_model, NULL) >= 6);
}

static void load_text(const char *name, const char *body, zn_graph *g)
{
    char file[64], text[2048];
    snprintf(file, sizeof file, "%s.znet", name);
    snprintf(text, sizeof text,
             "model %s() {\n  input x: [3, 8, 8]\n  input y: class(10)\n%s}\n", name, body);
    load(zt_write_file(file, text), NULL, 0, g);
}

static const char *fused_name(const zn_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == ZN_OP_CONV2D && g->nodes[i].n_src == 3 &&
            g->nodes[g->nodes[i].src[1]].op == ZN_OP_BN_FOLD_WEIGHT)
            return g->nodes[i].name;
    return NULL;
}

static void test_cases(void **state)
{
    (void)state;
    static const struct {
        const char *name, *body;
        int folded;
    } cases[] = {
        {"with_bias", "  c = conv2d(x, 4, bias = true)\n  n = batchnorm(c)\n"
                      "  head h = xent(linear(flatten(relu(n)), 10), y)\n", 1},
        {"read_twice", "  c = conv2d(x, 4)\n  n = batchnorm(c)\n"
                       "  head h = xent(linear(flatten(n + c), 10), y)\n", 0},
        {"after_relu", "  n = batchnorm(relu(conv2d(x, 3)))\n"
                       "  head h = xent(linear(flatten(n), 10), y)\n", 0},
        {"two", "  n = batchnorm(conv2d(relu(batchnorm(conv2d(x, 4, bias = false))), 4))\n"
                "  head h = xent(linear(flatten(n), 10), y)\n", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zn_graph g;
        load_text(cases[i].name, cases[i].body, &g);
        if (expect_fold_equivalent(&g, cases[i].name) != cases[i].folded)
            fail_msg("%s: expected %d folds", cases[i].name, cases[i].folded);
        zn_graph_free(&g);
    }
    zn_graph g, f;
    load_text("named", "  c = conv2d(x, 4)\n  n = batchnorm(c)\n"
                       "  head h = xent(linear(flatten(n), 10), y)\n", &g);
    zn_graph_copy(&f, &g);
    char err[256];
    assert_true(zn_pass_fold_bn(&f, err, sizeof err));
    assert_string_equal(fused_name(&f), "c+n");
    zn_graph_free(&f);
    zn_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_model),
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
