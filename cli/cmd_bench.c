/* cmd_bench.c: `znet bench FILE`: images per second and achieved GFLOP/s of a training step
 * (forward + backward + optimizer) and of inference, on random data, with the memory plan; the
 * measuring is runtime/profile.h's, this file formats it. */
#include <stdio.h>
#include <string.h>

#include "backends/blas_core.h"
#include "backends/cpu/cpu_features.h"
#include "cli.h"
#include "graph/inspect.h"
#include "runtime/profile.h"

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

/* The time per op of one step run node by node (runtime/profile.h), largest first, down to 0.5%. */
static void print_profile(zn_op_profile *t, bool training)
{
    printf("  profile of one %s step (%.1f ms), by op:\n", training ? "training" : "inference", t->total * 1e3);
    for (;;) {
        int best = -1;
        for (int op = 0; op < ZN_OP_COUNT; op++)
            if (t->nodes[op] && (best < 0 || t->seconds[op] > t->seconds[best])) best = op;
        if (best < 0 || t->seconds[best] < t->total * 0.005) break;
        printf("    %-22s %4d nodes %9.2f ms %5.1f%%\n", zn_ops[best].name, t->nodes[best], t->seconds[best] * 1e3,
               100 * t->seconds[best] / t->total);
        t->nodes[best] = 0;
    }
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
    zn_profiler p;
    zn_op_profile t;
    double sec = 0;
    bool ok = zn_profiler_init(&p, &s, seed) && zn_session_init_params(&s, seed) &&
              zn_profile_time(&p, training, steps, &sec);
    if (ok) {
        double flop = 2.0 * (double)zn_session_macs(&s, training) * batch;
        printf("  %-10s %8.1f ms/%s = %8.1f img/s, %6.1f GFLOP/s (%.2f GFLOP per image)\n",
               training ? "training:" : "inference:", sec * 1e3, training ? "step" : "batch", batch / sec,
               flop / sec * 1e-9, flop / batch * 1e-9);
        print_plan(training ? "training" : "inference", &s.plan);
        if (s.be->ops->arena_high_water) { /* the measured peak beside the planned arena */
            char hw[32];
            printf("  arena high-water mark after the steps: %s\n",
                   zn_format_bytes(s.be->ops->arena_high_water(s.be), hw, sizeof hw));
        }
        if (profile && (ok = zn_profile_ops(&p, training, &t))) print_profile(&t, training);
    }
    if (!ok) fprintf(stderr, "znet bench: %s\n", s.err);
    zn_profiler_free(&p);
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
    zn_precision precision;
    if (!zn_cli_precision("bench", precision_name, &precision)) return ZN_EXIT_USAGE;
    const zn_backend_ops *ops;
    if ((rc = zn_cli_backend("bench", backend, &ops)) >= 0) return rc;
    zn_compiled m;
    bool ok = zn_cli_compile(&c, (zn_compile_opts){.mode = ZN_COMPILE_FORWARD}, &m);
    const zn_recipe *r = &m.recipe;
    zn_backend_opts o = {.threads = (int)threads, .no_pass = c.no_pass, .n_no_pass = c.n_no_pass,
                         .precision = precision, .deterministic = deterministic};
    rc = ok ? zn_cli_budget("bench", &m.graph, r, ops, &o, r->batch) : ZN_EXIT_ERROR;
    ok = rc < 0;
    if (ok) {
        char mode[64] = "";
        if (precision != ZN_PRECISION_FP32 || deterministic)
            snprintf(mode, sizeof mode, " (%s%s)", precision_name, deterministic ? ", deterministic" : "");
        char header[1024];
        char path[96] = ""; /* the CPU kernels' path (cpu_features.h) and OpenBLAS's (blas_core.h) */
        if (strcmp(backend, "cpu") == 0)
            snprintf(path, sizeof path, " (kernel path %s, OpenBLAS %s)", zn_cpu_path_name(zn_cpu_path_active()),
                     zn_blas_core());
        snprintf(header, sizeof header, "znet bench %s: backend %s%s%s, batch %d, %ld timed steps\n", c.file,
                 backend, path, mode, r->batch, steps);
        if (!infer_only) ok = bench_mode(&m.graph, ops, &o, r->batch, (int)steps, true, r->seed, profile, header);
        if (ok && !train_only)
            ok = bench_mode(&m.graph, ops, &o, r->batch, (int)steps, false, r->seed, profile,
                            infer_only ? header : NULL);
    }
    zn_compiled_free(&m);
    return ok ? ZN_EXIT_OK : rc >= 0 ? rc : ZN_EXIT_ERROR;
}
