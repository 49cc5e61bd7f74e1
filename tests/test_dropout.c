/* test_dropout.c: dropout's behaviour. The mask (backends/dropout_mask.h) drops about p of the
 * elements and scales the rest by exactly 1 / (1 - p), on one thread or three; the same (seed,
 * step, stream) gives the same mask and another of the three another. Through a session: a
 * training step keys the mask with the run's seed and the step's t, so a repeated step repeats it
 * and the next step changes it; evaluation is the identity. The gradient is checked in test_gradcheck.c, CPU against CUDA in
 * test_parity.c. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/kernels.h"
#include "backends/cpu/threads.h"
#include "runtime/compile.h"
#include "runtime/session.h"

enum { N = 200000 };

static int reset(void **state)
{
    (void)state;
    zt_scratch_free();
    zt_rng_seed(99);
    return 0;
}

/* x with no zero element, so a zero in the output is a dropped element. */
static float *nonzero_input(size_t n)
{
    float *x = zt_talloc(n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 + zt_rng_unit()) * (i % 2 ? 1.0f : -1.0f);
    return x;
}

/* The share of elements the mask drops; every kept one must be x / (1 - p) exactly. */
static double dropped_share(const zn_dropout_mask *m, const float *x, float *y, size_t n)
{
    zn_dropout_forward(m, n, x, y);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] == 0.0f) dropped++;
        else if (y[i] != x[i] * m->scale) fail_msg("element %zu: %g, not %g", i, y[i], x[i] * m->scale);
    }
    return (double)dropped / (double)n;
}

/* Bernoulli(p) over 200,000 elements: the share is within 0.005 (over 5 standard deviations) */
static void test_drops_about_p(void **state)
{
    (void)state;
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    float *x = nonzero_input(N), *y = zt_talloc(N);
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        zn_dropout_mask m = zn_dropout_mask_of(1, 1, 0, ps[k]);
        assert_true(m.scale == 1.0f / (1.0f - ps[k]));
        double share = dropped_share(&m, x, y, N);
        if (fabs(share - ps[k]) > 0.005) fail_msg("p %g: dropped %.4f", ps[k], share);
    }
}

/* Three threads split the elements, yet give the one thread's bits: a mask depends on the index
 * alone. */
static void test_threads_same_bits(void **state)
{
    (void)state;
    zn_dropout_mask m = zn_dropout_mask_of(5, 2, 1, 0.3f);
    float *x = nonzero_input(N), *one = zt_talloc(N), *three = zt_talloc(N);
    zn_dropout_forward(&m, N, x, one);
    assert_int_equal(zn_cpu_threads_init(3), 0);
    zn_dropout_forward(&m, N, x, three);
    zn_cpu_threads_free();
    assert_memory_equal(one, three, N * sizeof *one);
}

/* The share of positions where two masks disagree: 0 for one key, about 2p(1 - p) for two
 * independent ones. */
static double disagreement(zn_dropout_mask a, zn_dropout_mask b)
{
    size_t differ = 0;
    for (size_t i = 0; i < N; i++) differ += zn_dropout_keeps(&a, i) != zn_dropout_keeps(&b, i);
    return (double)differ / N;
}

static void test_key(void **state)
{
    (void)state;
    const float p = 0.5f;
    const zn_dropout_mask base = zn_dropout_mask_of(42, 7, 3, p);
    assert_true(disagreement(base, zn_dropout_mask_of(42, 7, 3, p)) == 0);
    const zn_dropout_mask other[] = {zn_dropout_mask_of(43, 7, 3, p), zn_dropout_mask_of(42, 8, 3, p),
                                     zn_dropout_mask_of(42, 7, 4, p), zn_dropout_mask_of(0, 0, 0, p)};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        double d = disagreement(base, other[k]);
        if (fabs(d - 2 * p * (1 - p)) > 0.01) fail_msg("key %zu: masks disagree at %.4f", k, d);
    }
}

/* A model whose dropout reads the image itself, trained with learning rate 0 (nothing changes
 * between steps but the step's t). */
static void open_session(zn_session *s, zn_graph *g, int *drop)
{
    const char *path = zt_write_file("dropout.znet",
        "model drop {\n  input image: [2, 4, 4]\n  input label: class(3)\n"
        "  d = dropout(image, 0.5)\n  head h = xent(linear(gap(d), 3), label)\n}\n");
    zt_load(path, NULL, 0, g);
    *drop = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == ZN_OP_DROPOUT) *drop = i;
    assert_true(*drop >= 0);
    const zn_backend_opts o = {.training = true, .threads = 1};
    assert_true(zn_session_init_separate(s, g, &zn_cpu_backend, &o, 8, true));
    assert_true(zn_session_init_params(s, 1234));
}

/* Runs a training step at t (or evaluation when t is 0) and reads the dropout's output. */
static void run_at(zn_session *s, int drop, long t, const float *x, float *y)
{
    const zn_optim_step st = {.kind = ZN_STEP_SGD, .t = t};
    const int32_t labels[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    assert_true(zn_session_feed(s, x, labels));
    assert_true(t ? zn_session_train_step(s, &st) : zn_session_forward(s, false));
    assert_true(s->be->ops->get(s->be, s->plan.region[drop], s->plan.offset[drop], y,
                                s->plan.bytes[drop]));
}

static void test_session_keys_by_step(void **state)
{
    (void)state;
    zn_graph g;
    zn_session s;
    int drop;
    open_session(&s, &g, &drop);
    const size_t n = s.plan.bytes[drop] / sizeof(float);
    float *x = nonzero_input(n), *a = zt_talloc(n), *b = zt_talloc(n), *c = zt_talloc(n);
    run_at(&s, drop, 1, x, a);
    run_at(&s, drop, 1, x, b);
    assert_memory_equal(a, b, n * sizeof *a);
    zn_dropout_mask m = zn_dropout_mask_of(1234, 1, 0, 0.5f); /* the first dropout: stream 0 */
    for (size_t i = 0; i < n; i++) assert_true(a[i] == zn_dropout_apply(&m, i, x[i]));
    run_at(&s, drop, 2, x, c);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (a[i] == 0) != (c[i] == 0);
    assert_true(differ > 0);
    run_at(&s, drop, 0, x, c); /* evaluation: the identity */
    assert_memory_equal(c, x, n * sizeof *x);
    zn_session_free(&s);
    zn_graph_free(&g);
}

/* An inference graph has no dropout: the gap reads the image (pass no_dropout); skipping the pass
 * keeps the nodes, as a training graph does (nothing before them trains, so they have no backward). */
static void test_inference_graph_drops_dropout(void **state)
{
    (void)state;
    const char *path = zt_write_file("dropout.znet",
        "model drop {\n  input image: [2, 4, 4]\n  input label: class(3)\n"
        "  d = dropout(dropout(image, 0.5), 0.2)\n  head h = xent(linear(gap(d), 3), label)\n}\n");
    const char *skip[] = {"no_dropout"};
    const struct {
        zn_compile_mode mode;
        int n_skip, dropouts;
    } cases[] = {{ZN_COMPILE_INFERENCE, 0, 0}, {ZN_COMPILE_INFERENCE, 1, 2}, {ZN_COMPILE_TRAINING, 0, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const zn_compile_opts o = {.path = path, .mode = cases[k].mode, .no_pass = skip,
                                   .n_no_pass = cases[k].n_skip};
        zn_compiled c;
        assert_true(zn_compile(&o, &c));
        assert_int_equal(zt_count_op(&c.graph, ZN_OP_DROPOUT), cases[k].dropouts);
        if (cases[k].dropouts == 0)
            for (int i = 0; i < c.graph.n_nodes; i++)
                if (c.graph.nodes[i].op == ZN_OP_GLOBAL_AVGPOOL)
                    assert_int_equal(c.graph.nodes[c.graph.nodes[i].src[0]].op, ZN_OP_INPUT);
        zn_compiled_free(&c);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset, reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_drops_about_p),
        T(test_threads_same_bits),
        T(test_key),
        T(test_session_keys_by_step),
        T(test_inference_graph_drops_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
