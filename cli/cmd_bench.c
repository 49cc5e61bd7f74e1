/* cmd_bench.c: `znet bench FILE`: images per second and achieved GFLOP/s of a training step
 * (forward + backward + optimizer) and of inference, on random data, with the memory plan. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "data/rng.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "runtime/session.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Random normalised images and labels for one batch. */
static void random_batch(const zn_session *s, float *images, int32_t *labels, uint64_t seed)
{
    zn_rng rng;
    zn_rng_init(&rng, seed);
    size_t n_img = s->image >= 0 ? s->plan.bytes[s->image] / sizeof(float) : 0;
    for (size_t i = 0; i < n_img; i++) images[i] = zn_rng_normal(&rng);
    int classes = s->label >= 0 ? s->graph.nodes[s->label].attr.out : 1;
    for (int i = 0; i < s->batch; i++) labels[i] = (int32_t)zn_rng_below(&rng, (uint32_t)classes);
}

static void print_plan(const char *what, const zn_plan *p)
{
    char a[32], b[32], c[32], d[32], e[32], f[32];
    printf("  memory (%s plan): %s = arena %s + params/state %s + grads %s + optimizer state %s + workspace %s\n",
           what, zn_format_bytes(zn_plan_total(p), a, sizeof a),
           zn_format_bytes(p->region_bytes[ZN_REGION_ARENA], b, sizeof b),
           zn_format_bytes(p->region_bytes[ZN_REGION_PARAMS], c, sizeof c),
           zn_format_bytes(p->region_bytes[ZN_REGION_GRADS], d, sizeof d),
           zn_format_bytes(p->region_bytes[ZN_REGION_OPTIM], f, sizeof f), zn_format_bytes(p->workspace_bytes, e, sizeof e));
}

/* Times `steps` runs (after one warm-up) of a training step or a forward pass. Inputs are fed
 * every time, as in training: the plan reuses their memory once the step no longer needs them. */
static bool time_runs(zn_session *s, const float *images, const int32_t *labels, bool training, int steps,
                      double *seconds)
{
    zn_optim_step step = {.kind = ZN_STEP_SGD, .lr = 1e-4f, .momentum = 0.9f, .nesterov = true, .weight_decay = 5e-4f};
    for (int i = 0; i <= steps; i++) {
        if (i == 1) *seconds = now();
        bool ok = zn_session_feed(s, images, labels) &&
                  (training ? zn_session_train_step(s, &step) : zn_session_forward(s, false));
        if (!ok || !s->be->ops->synchronize(s->be)) return false;
    }
    *seconds = (now() - *seconds) / steps;
    return true;
}

/* One step run node by node, timed, summed per op: where the time goes. */
static bool profile_step(zn_session *s, const float *images, const int32_t *labels, bool training)
{
    double per_op[ZN_OP_COUNT] = {0}, total = 0;
    int count[ZN_OP_COUNT] = {0};
    int last = training ? s->graph.n_nodes - 1 : s->n_forward - 1;
    if (!zn_session_feed(s, images, labels)) return false;
    s->be->ops->set_training(s->be, training);
    for (int i = 0; i <= last; i++) {
        double t = now();
        if (!s->be->ops->compute(s->be, &s->graph, &s->plan, i, i) || !s->be->ops->synchronize(s->be)) {
            snprintf(s->err, sizeof s->err, "%s", s->be->ops->last_error(s->be));
            return false;
        }
        t = now() - t;
        per_op[s->graph.nodes[i].op] += t;
        count[s->graph.nodes[i].op]++;
        total += t;
    }
    printf("  profile of one %s step (%.1f ms), by op:\n", training ? "training" : "inference", total * 1e3);
    for (;;) {
        int best = -1;
        for (int op = 0; op < ZN_OP_COUNT; op++)
            if (count[op] && (best < 0 || per_op[op] > per_op[best])) best = op;
        if (best < 0 || per_op[best] < total * 0.005) break;
        printf("    %-22s %4d nodes %9.2f ms %5.1f%%\n", zn_ops[best].name, count[best], per_op[best] * 1e3,
               100 * per_op[best] / total);
        count[best] = 0;
    }
    return true;
}

/* Times one mode; header (NULL: none) is printed once the backend has accepted the session, so
 * a refusal (a precision the backend lacks, no memory) leaves nothing half-printed on stdout. */
static bool bench_mode(const zn_graph *g, const zn_backend_ops *ops, const zn_backend_opts *o, int batch,
                       int steps, bool training, uint64_t seed, bool profile, const char *header)
{
    zn_session s;
    if (!zn_session_init(&s, g, ops, o, batch, training)) {
        fprintf(stderr, "znet bench: %s\n", s.err);
        zn_session_free(&s);
        return false;
    }
    if (header) fputs(header, stdout);
    float *images = zn_malloc(s.image >= 0 ? s.plan.bytes[s.image] : 4);
    int32_t *labels = zn_malloc(sizeof *labels * batch);
    random_batch(&s, images, labels, seed);
    double sec = 0;
    bool ok = zn_session_init_params(&s, seed) && time_runs(&s, images, labels, training, steps, &sec);
    if (ok) {
        double flop = 2.0 * (double)zn_session_macs(&s, training) * batch;
        printf("  %-10s %8.1f ms/%s = %8.1f img/s, %6.1f GFLOP/s (%.2f GFLOP per image)\n",
               training ? "training:" : "inference:", sec * 1e3, training ? "step" : "batch", batch / sec,
               flop / sec * 1e-9, flop / batch * 1e-9);
        print_plan(training ? "training" : "inference", &s.plan);
        if (profile && !profile_step(&s, images, labels, training)) ok = false;
    }
    if (!ok) {
        fprintf(stderr, "znet bench: %s\n", s.err);
    }
    free(images);
    free(labels);
    zn_session_free(&s);
    return ok;
}

int zn_cmd_bench(int argc, char **argv)
{
    long steps = 5, threads = 0;
    const char *backend = "cpu";
    const char *precision_name = "fp32";
    bool train_only = false, infer_only = false, profile = false, deterministic = false;
    const zn_opt opts[] = {
        {"--steps", ZN_OPT_INT, "K", "timed steps after one warm-up (default 5)", &steps, 1, 100000},
        {"--backend", ZN_OPT_STRING, "NAME", "backend to run on (default cpu)", &backend, 0, 0},
        {"--threads", ZN_OPT_INT, "N", "CPU threads (default: every core)", &threads, 0, 1024},
        {"--precision", ZN_OPT_STRING, "P", "fp32 (default), fp16 or bf16 convolutions and matrix products (cuda)",
         &precision_name, 0, 0},
        {"--deterministic", ZN_OPT_FLAG, NULL, "only algorithms that give the same bits every run", &deterministic, 0, 0},
        {"--train-only", ZN_OPT_FLAG, NULL, "time the training step only", &train_only, 0, 0},
        {"--inference-only", ZN_OPT_FLAG, NULL, "time inference only", &infer_only, 0, 0},
        {"--profile", ZN_OPT_FLAG, NULL, "also time one step node by node and show the time per op", &profile, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "bench [options] FILE.znet",
                          "Times training steps (forward, backward, optimizer) and inference on random\n"
                          "data at the recipe's batch size (--batch N to change it) and prints images/s,\n"
                          "achieved GFLOP/s and the memory plan. docs/performance.md has measured figures.",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (train_only && infer_only) { /* both would time nothing */
        fprintf(stderr, "znet bench: --train-only and --inference-only exclude each other\n");
        return ZN_EXIT_USAGE;
    }
    char err[512];
    zn_precision precision;
    if (!zn_cli_precision("bench", precision_name, &precision)) return ZN_EXIT_USAGE;
    const zn_backend_ops *ops = zn_backend_find(backend, err, sizeof err);
    if (!ops) {
        fprintf(stderr, "znet bench: %s\n", err);
        return ZN_EXIT_USAGE;
    }
    if (ops->available && !ops->available(err, sizeof err)) {
        fprintf(stderr, "znet bench: backend %s cannot run here: %s\n", backend, err);
        return ZN_EXIT_ERROR;
    }
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    if (ok) {
        zn_backend_opts o = {.threads = (int)threads, .no_pass = c.no_pass, .n_no_pass = c.n_no_pass,
                             .precision = precision, .deterministic = deterministic};
        char mode[64] = "";
        if (precision != ZN_PRECISION_FP32 || deterministic)
            snprintf(mode, sizeof mode, " (%s%s)", precision_name, deterministic ? ", deterministic" : "");
        char header[1024];
        snprintf(header, sizeof header, "znet bench %s: backend %s%s, batch %d, %ld timed steps\n", c.file,
                 backend, mode, r.batch, steps);
        if (!infer_only) ok = bench_mode(&g, ops, &o, r.batch, (int)steps, true, r.seed, profile, header);
        if (ok && !train_only)
            ok = bench_mode(&g, ops, &o, r.batch, (int)steps, false, r.seed, profile, infer_only ? header : NULL);
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
