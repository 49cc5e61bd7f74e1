/* test_parity.c: backend parity checking (runtime/parity.h). On any machine: cpu against cpu
 * agrees exactly on every model in models/ and on a tiny graph per op, and every op of the table
 * is compared by some case; a faulty backend (the CPU's vtable with one tensor corrupted right
 * after it is computed) is caught at exactly that node, by name and line, for every op. Where the
 * cuda backend can run, every case is compared on cpu and cuda too; elsewhere that test skips
 * with the reason. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/passes.h"
#include "lang/program.h"
#include "runtime/compile.h"
#include "runtime/parity.h"

enum { BATCH = 2 };

/* Owns the loaded files, which the graphs' spans point into, for the whole run. */
static zn_diag diag;

static bool load(const zn_load_opts *o, zn_graph *g)
{
    zn_recipe r;
    return zn_program_load(o, &diag, g, &r);
}

/* ---- the faulty backend ------------------------------------------------------------------ */

/* What it corrupts: the first node called name, else the first node of op; a parameter right
 * after the optimizer step, any other node right after it is computed. */
static struct {
    zn_op op;
    const char *name;
} fault;
static zn_backend_ops faulty_ops;

static int fault_target(const zn_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (fault.name ? strcmp(g->nodes[i].name, fault.name) == 0 : g->nodes[i].op == fault.op) return i;
    return -1;
}

/* Adds a tenth of the tensor's largest magnitude (0.1 if it is all zeros) to its first element. */
static bool corrupt(zn_backend *be, const zn_plan *p, int id)
{
    const size_t n = p->bytes[id] / sizeof(float);
    float *v = malloc(p->bytes[id]), m = 0;
    bool ok = v && zn_cpu_backend.get(be, p->region[id], p->offset[id], v, p->bytes[id]);
    for (size_t i = 0; ok && i < n; i++) m = fmaxf(m, fabsf(v[i]));
    if (ok) v[0] += 0.1f * (m > 0 ? m : 1);
    ok = ok && zn_cpu_backend.set(be, p->region[id], p->offset[id], v, p->bytes[id]);
    free(v);
    return ok;
}

static zn_backend *faulty_create(const zn_backend_opts *o, char *err, size_t len)
{
    zn_backend *be = zn_cpu_backend.create(o, err, len);
    if (be) be->ops = &faulty_ops;
    return be;
}

static bool faulty_compute(zn_backend *be, const zn_graph *g, const zn_plan *p, int first, int last)
{
    const int x = fault_target(g);
    if (!zn_cpu_backend.compute(be, g, p, first, last)) return false;
    return x < first || x > last || g->nodes[x].op == ZN_OP_PARAM || corrupt(be, p, x);
}

static bool faulty_optimize(zn_backend *be, const zn_graph *g, const zn_plan *p, const zn_optim_step *s)
{
    const int x = fault_target(g);
    if (!zn_cpu_backend.optimize(be, g, p, s)) return false;
    return x < 0 || g->nodes[x].op != ZN_OP_PARAM || corrupt(be, p, x);
}

static const zn_backend_ops *faulty_backend(void)
{
    faulty_ops = zn_cpu_backend;
    faulty_ops.name = "faulty";
    faulty_ops.create = faulty_create;
    faulty_ops.compute = faulty_compute;
    faulty_ops.optimize = faulty_optimize;
    return &faulty_ops;
}

/* ---- running a check --------------------------------------------------------------------- */

static zn_parity_opts opts(bool training, bool propagate)
{
    return (zn_parity_opts){
        .batch = BATCH, .seed = 5, .training = training, .propagate = propagate,
        .step = {.kind = ZN_STEP_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 5e-4f},
    };
}

static void check(const zn_graph *g, const zn_backend_ops *a, const zn_backend_ops *b, const zn_parity_opts *o,
                  zn_parity_report *r)
{
    char err[1024];
    if (!zn_parity_run(g, a, b, o, r, err, sizeof err)) fail_msg("%s vs %s: %s", a->name, b->name, err);
}

/* Every tensor compared identical (cpu against itself: the same kernels on the same values). */
static void expect_identical(const zn_parity_report *r, const char *what)
{
    assert_true(r->n_entry > 0);
    for (int i = 0; i < r->n_entry; i++)
        if (r->entry[i].diff != 0)
            fail_msg("%s: %s differs by %g", what, r->graph.nodes[r->entry[i].node].name, r->entry[i].diff);
}

/* The report names node x first, in the verdict line too; in lockstep, only x. */
static void expect_first_fail(const zn_parity_report *r, int x, const char *what)
{
    assert_true(x >= 0);
    if (r->first_fail < 0) fail_msg("%s: the fault at %s went unnoticed", what, r->graph.nodes[x].name);
    const zn_node *n = &r->graph.nodes[x];
    if (r->entry[r->first_fail].node != x)
        fail_msg("%s: the fault is at %s, the report names %s first", what, n->name,
                 r->graph.nodes[r->entry[r->first_fail].node].name);
    if (!r->opts.propagate) assert_int_equal(r->n_fail, 1);
    char *text = NULL, want[512];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zn_parity_print(r, false, f);
    fclose(f);
    snprintf(want, sizeof want, "\nfirst difference over tolerance: %s (%s) at %s:%d:%d: ", n->name,
             n->op == ZN_OP_PARAM ? "param after the step" : zn_ops[n->op].name, n->span.file, n->span.line,
             n->span.col);
    if (!strstr(text, want)) fail_msg("%s: no line\n%s\nin\n%s", what, want + 1, text);
    free(text);
}

/* ---- the models -------------------------------------------------------------------------- */

/* A model of models/ as `znet check` loads it (optimizer passes run), narrow where it can be. */
static void load_model(const char *rel, zn_graph *g)
{
    const zn_setting narrow[] = {{"width", "4"}};
    const char *base = rel + strlen("models/");
    const bool has_width = strncmp(base, "davidnet", 8) == 0 || strncmp(base, "fashion", 7) == 0;
    zn_load_opts o = {.path = zt_src_path(rel), .settings = narrow, .n_settings = has_width};
    char err[512];
    if (!load(&o, g)) fail_msg("%s does not load", rel);
    if (!zn_passes_run(g, NULL, 0, NULL, err, sizeof err)) fail_msg("%s: %s", rel, err);
}

static void model_cpu_vs_cpu(const char *rel, void *ctx)
{
    (void)ctx;
    zn_graph g;
    load_model(rel, &g);
    zn_parity_opts o = opts(true, false);
    zn_parity_report r;
    check(&g, &zn_cpu_backend, &zn_cpu_backend, &o, &r);
    expect_identical(&r, rel);
    zn_parity_free(&r);
    o = opts(true, true);
    o.step = (zn_optim_step){.kind = ZN_STEP_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                             .t = 1};
    check(&g, &zn_cpu_backend, &zn_cpu_backend, &o, &r);
    expect_identical(&r, rel);
    zn_parity_free(&r);
    zn_graph_free(&g);
}

static void test_every_model_cpu_vs_cpu(void **state)
{
    (void)state;
    assert_true(zt_each_model(model_cpu_vs_cpu, NULL) >= 5);
}

/* A forward convolution deep in DavidNet-Zee and a backward node: named first, with its line,
 * though nodes after it differ more once the fault propagates. */
static void test_fault_named_in_a_model(void **state)
{
    (void)state;
    static const char *const targets[] = {"b2.cbr.conv2d#2", "b2.cbr.conv2d#2.grad"}; /* the fused
                                                 batchnorm_relu's dx */
    zn_graph g;
    load_model("models/davidnet_zee.znet", &g);
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        fault.name = targets[t];
        for (int propagate = 0; propagate < 2; propagate++) {
            zn_parity_opts o = opts(true, propagate);
            zn_parity_report r;
            check(&g, &zn_cpu_backend, faulty_backend(), &o, &r);
            expect_first_fail(&r, fault_target(&r.graph), targets[t]);
            for (int i = 0; i < r.first_fail; i++) assert_true(r.entry[i].diff == 0);
            bool larger = false; /* propagating, a node downstream differs more, yet comes second */
            for (int i = r.first_fail + 1; i < r.n_entry; i++)
                larger |= r.entry[i].diff > r.entry[r.first_fail].diff;
            assert_true(larger == propagate);
            zn_parity_free(&r);
        }
    }
    fault.name = NULL;
    zn_graph_free(&g);
}

/* ---- a backend without the fused ops ------------------------------------------------------ */

/* The CPU backend, less batchnorm_relu and its backward ops, as the CUDA backend is today. */
static zn_backend_ops unfused_ops;

static bool unfused_supports(zn_backend *be, const zn_graph *g, int id)
{
    const zn_op op = g->nodes[id].op;
    return op != ZN_OP_BATCHNORM_RELU && op != ZN_OP_BATCHNORM_RELU_BWD_COEF &&
           op != ZN_OP_BATCHNORM_RELU_BWD_DATA && zn_cpu_backend.supports(be, g, id);
}

static zn_backend *unfused_create(const zn_backend_opts *o, char *err, size_t len)
{
    zn_backend *be = zn_cpu_backend.create(o, err, len);
    if (be) be->ops = &unfused_ops;
    return be;
}

static const zn_backend_ops *unfused_backend(void)
{
    unfused_ops = zn_cpu_backend;
    unfused_ops.name = "cpu-unfused";
    unfused_ops.create = unfused_create;
    unfused_ops.supports = unfused_supports;
    return &unfused_ops;
}

/* fuse_bn_relu fuses only where the backend runs the fused op: a session on the backend without
 * it keeps batchnorm and relu apart (the pass says why in its report line), and a parity check
 * against a backend that has it runs both on the unfused graph. */
static void test_backend_without_fused_op(void **state)
{
    (void)state;
    zn_graph g;
    load_model("models/davidnet.znet", &g);
    char report[4096];
    for (int k = 0; k < 2; k++) {
        FILE *f = fmemopen(report, sizeof report, "w");
        zn_compiled c;
        zn_compile_opts o = {.from = &g, .mode = ZN_COMPILE_TRAINING, .report = f, .batch = 2,
                             .backend = k ? unfused_backend() : &zn_cpu_backend,
                             .backend_opts = &(zn_backend_opts){.threads = 1, .training = true}};
        if (!zn_compile(&o, &c)) fail_msg("%s", c.err);
        fclose(f);
        assert_int_equal(zt_count_op(&c.graph, ZN_OP_BATCHNORM_RELU), k ? 0 : 8);
        assert_int_equal(zt_count_op(&c.graph, ZN_OP_BATCHNORM), k ? 8 : 0);
        assert_true((strstr(report, "fuse_bn_relu off (the backend does not run what it makes)") != NULL) == k);
        zn_compiled_free(&c);
    }
    for (int k = 0; k < 2; k++) {
        zn_parity_opts o = opts(true, false);
        zn_parity_report r;
        if (k) check(&g, &zn_cpu_backend, unfused_backend(), &o, &r);
        else check(&g, unfused_backend(), &zn_cpu_backend, &o, &r);
        expect_identical(&r, "cpu against cpu without the fused op");
        assert_int_equal(zt_count_op(&r.graph, ZN_OP_BATCHNORM_RELU), 0);
        assert_int_equal(zt_count_op(&r.graph, ZN_OP_BATCHNORM), 8);
        zn_parity_free(&r);
    }
    zn_graph_free(&g);
}

/* ---- one tiny graph per op ------------------------------------------------------------------ */

/* Each case's text follows "x = conv2d(image, 4)" ([4, 8, 8], with a bias) and declares the heads. */
typedef struct {
    const char *name;
    bool inference; /* one forward pass in inference mode (ops only inference graphs have) */
    const char *body;
    const char *pass; /* a pass run on the case first (ops only passes make), or NULL */
} op_case;

static const op_case cases[] = {
    {"conv2d stride 2, groups 2, no bias", false,
     "y = conv2d(x, 6, stride = 2, groups = 2, bias = false)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"conv2d 5x5, dilation 2", false,
     "y = conv2d(x, 3, kernel = 5, dilation = 2)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"batchnorm after a conv with a bias, relu (fused on the cpu)", false,
     "y = relu(batchnorm(x))\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"batchnorm read twice, relu (not fused)", false,
     "b = batchnorm(x)\ny = relu(b) + b\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"maxpool 3/2 pad 1", false,
     "y = maxpool(x, 3, stride = 2, pad = 1)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"avgpool 2, avgpool 3/1 pad 1", false,
     "y = avgpool(avgpool(x, 3, stride = 1, pad = 1), 2)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"global max and average pooling, concat of vectors", false,
     "y = concat(gmp(x), gap(x))\nhead h = xent(linear(y, 5), label)\n", NULL},
    {"add and scale", false,
     "y = (x + conv2d(image, 4, kernel = 1)) * 0.5\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"concat on channels and rows", false,
     "c = concat(x, relu(x))\ny = concat(c, c, axis = 1)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"resample avg, max to a size, nearest", false,
     "a = resample(resample(x, factor = 2, mode = \"avg\"), factor = 2, mode = \"nearest\")\n"
     "y = a + resample(resample(x, size = 2), factor = 4, mode = \"nearest\")\n"
     "head h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"dropout, mul by a [C] gate and of one shape", false,
     "g = linear(gap(x), 4)\ny = dropout(x * g, 0.3) * relu(x)\nhead h = xent(linear(flatten(y), 5), label)\n",
     NULL},
    {"gelu, silu, sigmoid", false,
     "y = gelu(x) + silu(x) + sigmoid(x)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"transpose", false, "y = transpose(x, [2, 0, 1])\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"stitch (max, down)", false,
     "y = stitch(x, maxpool(x, 2), size = 4)\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"stitch (avg, up)", false,
     "y = stitch(maxpool(x, 4), x, size = 4, mode = \"avg\")\nhead h = xent(linear(flatten(y), 5), label)\n", NULL},
    {"two heads: weighted sum; mean with smoothing", false,
     "head h1 = xent(linear(flatten(x), 5), label, weight = 0.3)\n"
     "head h2 = xent(linear(gap(x), 5, bias = false), label, reduction = \"mean\", smoothing = 0.1)\n", NULL},
    {"batch norm folded into its conv (inference)", true,
     "y = relu(batchnorm(conv2d(x, 4)))\nhead h = xent(linear(flatten(y), 5), label)\n", "fold_bn"},
    {"z-tower fused", false,
     "z = stitch(x, maxpool(x, 2), size = 4)\n"
     "y = gmp(relu(batchnorm(conv2d(z, 3, dilation = 2, bias = false))))\n"
     "head h = xent(linear(y, 5), label)\n", "ztower"},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static void load_case(int i, zn_graph *g)
{
    char name[32], text[2048];
    snprintf(name, sizeof name, "op_case_%02d.znet", i);
    snprintf(text, sizeof text, "model op_case {\ninput image: [3, 8, 8]\ninput label: class(5)\n"
             "x = conv2d(image, 4)\n%s}\n", cases[i].body);
    zn_load_opts o = {.path = zt_write_file(name, text)};
    if (!load(&o, g)) fail_msg("case '%s' does not load", cases[i].name);
}

/* Runs case i on a and b (lockstep) into r, after its pass (an inference case's batch norm is
 * folded here as well as by the session's inference passes, so the fold ops are compared either
 * way). */
static void check_case(int i, const zn_backend_ops *a, const zn_backend_ops *b, zn_parity_report *r)
{
    zn_graph g;
    char err[512];
    load_case(i, &g);
    if (cases[i].pass && !zn_pass_find(cases[i].pass)->run(&g, err, sizeof err))
        fail_msg("%s: %s", cases[i].name, err);
    zn_parity_opts o = opts(!cases[i].inference, false);
    check(&g, a, b, &o, r);
    zn_graph_free(&g);
}

/* cpu against cpu on every case; an op that no case compares (INPUT is fed, never compared) fails. */
static void test_every_op_cpu_vs_cpu(void **state)
{
    (void)state;
    bool covered[ZN_OP_COUNT] = {[ZN_OP_INPUT] = true};
    for (int i = 0; i < N_CASES; i++) {
        zn_parity_report r;
        check_case(i, &zn_cpu_backend, &zn_cpu_backend, &r);
        expect_identical(&r, cases[i].name);
        for (int e = 0; e < r.n_entry; e++) covered[r.graph.nodes[r.entry[e].node].op] = true;
        zn_parity_free(&r);
    }
    for (int op = 0; op < ZN_OP_COUNT; op++)
        if (!covered[op]) fail_msg("op %s has no parity case (add one to cases[])", zn_ops[op].name);
}

/* A fault in the first node of each op, in the first case that has one, is named exactly. */
static void test_every_op_fault_found(void **state)
{
    (void)state;
    for (int op = ZN_OP_PARAM; op < ZN_OP_COUNT; op++) {
        fault.op = (zn_op)op;
        bool found = false;
        for (int i = 0; i < N_CASES && !found; i++) {
            zn_parity_report r;
            check_case(i, &zn_cpu_backend, faulty_backend(), &r);
            const int x = fault_target(&r.graph);
            found = x >= 0;
            if (found) expect_first_fail(&r, x, cases[i].name);
            zn_parity_free(&r);
        }
        if (!found) fail_msg("op %s: no case has it", zn_ops[op].name);
    }
}

/* Every case on cpu and cuda with the per-op tolerances (skipped without a usable GPU). */
static void test_every_op_cpu_vs_cuda(void **state)
{
    (void)state;
    char why[512];
    const zn_backend_ops *cuda = &zn_cuda_backend;
    if (!cuda->available(why, sizeof why)) {
        print_message("skipping cpu against cuda: %s\n", why);
        skip();
    }
    int failures = 0;
    for (int i = 0; i < N_CASES; i++) {
        zn_parity_report r;
        check_case(i, &zn_cpu_backend, cuda, &r);
        if (r.n_fail) {
            printf("case '%s':\n", cases[i].name);
            zn_parity_print(&r, true, stdout);
        }
        failures += r.n_fail > 0;
        zn_parity_free(&r);
    }
    assert_int_equal(failures, 0);
}

static int setup(void **state)
{
    (void)state;
    zn_diag_init(&diag, stderr);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zn_diag_free(&diag);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_cpu_vs_cpu),
        cmocka_unit_test(test_every_op_fault_found),
        cmocka_unit_test(test_every_op_cpu_vs_cuda),
        cmocka_unit_test(test_every_model_cpu_vs_cpu),
        cmocka_unit_test(test_fault_named_in_a_model),
        cmocka_unit_test(test_backend_without_fused_op),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
