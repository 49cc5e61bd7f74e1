/* test_cuda.c: the CUDA backend as far as the machine allows. Anywhere: `cuda` is a registered
 * backend whose available() says why it cannot run (not built, module, driver, device) instead of
 * failing later; every op of the op table has a CUDA runner, the fused batch norm + relu ones
 * included (asked of the module, which loads without a GPU); the CPU backend refuses 16-bit
 * precision by name. With a GPU: one training step of a small model on cuda against cpu in every
 * precision, with the batch norm + relu fused (on both backends) and with --no-pass
 * fuse_bn_relu, then an inference forward (the fused op on running statistics) against cpu's
 * logits (the full per-node comparison is test_parity and `znet check --backends cpu,cuda`);
 * elsewhere that test skips with the reason. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "lang/program.h"
#include "runtime/session.h"

enum { BATCH = 4 };

static void test_available_says_why(void **state)
{
    (void)state;
    char why[1024] = "";
    const zn_backend_ops *ops = zn_backend_find("cuda", why, sizeof why);
    assert_non_null(ops);
    if (ops->available(why, sizeof why)) return;
    print_message("cuda cannot run here: %s\n", why);
    assert_true(strstr(why, "built without the CUDA backend") || strstr(why, "module") ||
                strstr(why, "driver") || strstr(why, "device") || strstr(why, "cudaGetDeviceCount"));
}

static void test_every_op_has_a_runner(void **state)
{
    (void)state;
    char err[1024];
    void *sym = zn_cuda_module_symbol("zn_cuda_missing_runners", err, sizeof err);
    if (!sym && strstr(err, "built without")) {
        print_message("skipped: %s\n", err);
        skip();
    }
    if (!sym) fail_msg("%s", err);
    int (*missing)(int *ops, int cap);
    memcpy(&missing, &sym, sizeof missing);
    int ops[ZN_OP_COUNT];
    int n = missing(ops, ZN_OP_COUNT);
    for (int i = 0; i < n && i < ZN_OP_COUNT; i++)
        print_message("op %s has no CUDA runner\n", zn_ops[ops[i]].name);
    assert_int_equal(n, 0);
}

static void test_cpu_refuses_half_precision(void **state)
{
    (void)state;
    char err[256] = "";
    zn_backend_opts o = {.threads = 1, .precision = ZN_PRECISION_BF16};
    zn_backend *be = zn_cpu_backend.create(&o, err, sizeof err);
    if (be) be->ops->destroy(be);
    assert_null(be);
    assert_string_equal(err, "cpu backend: --precision bf16 needs the cuda backend");
}

/* ---- with a GPU ------------------------------------------------------------------------- */

static zn_diag diag; /* owns the loaded file, which the graph's spans point into */

static void load_smoke(zn_graph *g)
{
    const char *text = "model smoke {\n"
                       "  input image: [3, 8, 8]\n"
                       "  input label: class(5)\n"
                       "  x = relu(batchnorm(conv2d(image, 4)))\n"
                       "  y = avgpool(maxpool(x, 2), 3, stride = 1, pad = 1)\n"
                       "  head h = xent(linear(flatten(y), 5), label)\n"
                       "}\n";
    zn_load_opts lo = {.path = zt_write_file("smoke.znet", text)};
    zn_recipe r;
    zn_diag_init(&diag, stderr);
    if (!zn_program_load(&lo, &diag, g, &r)) fail_msg("smoke.znet does not load");
}

static const char *const no_fuse[] = {"fuse_bn_relu"};

/* A training session; fused: fuse_bn_relu runs (the graph then holds the fused op and no plain
 * batch norm, on either backend), else it is skipped. */
static void init_session(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                         zn_precision precision, bool fused)
{
    zn_backend_opts o = {.threads = 1, .precision = precision, .no_pass = fused ? NULL : no_fuse,
                         .n_no_pass = fused ? 0 : 1};
    if (!zn_session_init(s, g, ops, &o, BATCH, true)) fail_msg("%s: %s", ops->name, s->err);
    assert_int_equal(zt_count_op(&s->graph, ZN_OP_BATCHNORM_RELU) > 0, fused);
    assert_int_equal(zt_count_op(&s->graph, ZN_OP_BATCHNORM_RELU_BWD_DATA) > 0, fused);
    assert_int_equal(zt_count_op(&s->graph, ZN_OP_BATCHNORM) > 0, !fused);
}

/* |a - b| over n floats, the largest; |a| when b is NULL. */
static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (b ? b[i] : 0.0f)));
    return m;
}

/* One SGD step from the same parameters and batch: the loss and the updated parameters (the
 * running statistics among them); then an inference forward's logits. */
static void step_matches_cpu(const zn_graph *g, zn_precision precision, bool fused, double tol)
{
    zn_session cpu, gpu;
    init_session(&cpu, g, &zn_cpu_backend, ZN_PRECISION_FP32, fused);
    init_session(&gpu, g, &zn_cuda_backend, precision, fused);
    size_t np = zn_session_param_floats(&cpu);
    size_t ni = cpu.plan.bytes[cpu.image] / sizeof(float);
    float *p = zt_talloc(np), *q = zt_talloc(np), *images = zt_talloc(ni);
    int32_t labels[BATCH];
    for (size_t i = 0; i < ni; i++) images[i] = (float)(2 * zt_rng_unit() - 1);
    for (int i = 0; i < BATCH; i++) labels[i] = (int32_t)(zt_rng_unit() * 5);
    zn_optim_step st = {.kind = ZN_STEP_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = true,
                        .weight_decay = 5e-4f};
    double la, lb;
    bool ok = zn_session_init_params(&cpu, 1) && zn_session_get_params(&cpu, p) &&
              zn_session_set_params(&gpu, p);
    ok = ok && zn_session_feed(&cpu, images, labels) && zn_session_train_step(&cpu, &st) &&
         zn_session_loss(&cpu, &la);
    if (!ok) fail_msg("cpu: %s", cpu.err);
    if (!zn_session_feed(&gpu, images, labels) || !zn_session_train_step(&gpu, &st) ||
        !zn_session_loss(&gpu, &lb))
        fail_msg("cuda %s: %s", zn_precision_name(precision), gpu.err);
    if (!zn_session_get_params(&cpu, p) || !zn_session_get_params(&gpu, q))
        fail_msg("get params: %s %s", cpu.err, gpu.err);
    double dp = max_diff(p, q, np);
    float logits_cpu[BATCH * 5], logits_gpu[BATCH * 5];
    /* fed again: the step's plan may have reused the batch's bytes */
    if (!zn_session_feed(&cpu, images, labels) || !zn_session_forward(&cpu, false) ||
        !zn_session_logits(&cpu, 0, logits_cpu))
        fail_msg("cpu inference: %s", cpu.err);
    if (!zn_session_feed(&gpu, images, labels) || !zn_session_forward(&gpu, false) ||
        !zn_session_logits(&gpu, 0, logits_gpu))
        fail_msg("cuda %s inference: %s", zn_precision_name(precision), gpu.err);
    double dl = max_diff(logits_cpu, logits_gpu, BATCH * 5);
    print_message("%s, %s: loss cpu %.6f cuda %.6f; largest parameter difference %.3g; "
                  "inference logits %.3g\n", zn_precision_name(precision),
                  fused ? "fused" : "unfused", la, lb, dp, dl);
    assert_true(fabs(la - lb) <= tol * fmax(1.0, fabs(la)));
    assert_true(dp <= tol);
    assert_true(dl <= tol * fmax(1.0, max_diff(logits_cpu, NULL, BATCH * 5)));
    zn_session_free(&gpu);
    zn_session_free(&cpu);
}

static void test_training_step_matches_cpu(void **state)
{
    (void)state;
    char why[1024];
    if (!zn_cuda_backend.available(why, sizeof why)) {
        print_message("no CUDA device: %s\n", why);
        skip();
    }
    zn_graph g;
    load_smoke(&g);
    zt_rng_seed(7);
    for (int fused = 0; fused < 2; fused++) {
        step_matches_cpu(&g, ZN_PRECISION_FP32, fused, 1e-4);
        step_matches_cpu(&g, ZN_PRECISION_FP16, fused, 2e-2);
        step_matches_cpu(&g, ZN_PRECISION_BF16, fused, 5e-2);
    }
    zn_graph_free(&g);
    zn_diag_free(&diag);
    zt_scratch_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available_says_why),
        cmocka_unit_test(test_every_op_has_a_runner),
        cmocka_unit_test(test_cpu_refuses_half_precision),
        cmocka_unit_test(test_training_step_matches_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
