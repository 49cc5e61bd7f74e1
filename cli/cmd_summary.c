/* cmd_summary.c: `znet summary FILE`: the per-layer table and the model's totals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph/inspect.h"
#include "graph/plan.h"
#include "graph/util.h"
#include "report/plot.h"

static double mib(size_t bytes) { return bytes / 1048576.0; }

/* Multiply-adds per example of every node of a training graph; those of the forward ops in the
 * backward pass (recomputed copies, graph/pass_recompute.c) into *recomputed, and the values per
 * example they write into *written. */
static int64_t step_macs(const zn_graph *g, int64_t *recomputed, int64_t *written)
{
    int64_t total = 0;
    *recomputed = *written = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        int64_t m = zn_ops[n->op].macs ? zn_ops[n->op].macs(g, i) : 0;
        total += m;
        if ((n->flags & ZN_NODE_BACKWARD) && !zn_op_is_backward(n->op)) {
            *recomputed += m;
            *written += zn_shape_numel(&n->shape);
        }
    }
    return total;
}

/* --memory-detail: the plan in MiB beside the peak of live bytes, and what is live there. */
static void print_detail(const char *what, const zn_graph *g, const zn_plan *p)
{
    int *until = zn_calloc((size_t)g->n_nodes + 1, sizeof *until), at;
    size_t peak = zn_plan_live_peak(p, &at, until);
    const zn_node *n = &g->nodes[at];
    printf("  %s: %.1f MiB planned = arena %.1f + params/state %.1f + grads %.1f + optimizer state %.1f MiB; the\n"
           "    arena's live bytes peak at %.1f MiB at node %d, %s '%s' (%s:%d), where these tensors are live:\n",
           what, mib(zn_plan_total(p)), mib(p->region_bytes[ZN_REGION_ARENA]), mib(p->region_bytes[ZN_REGION_PARAMS]),
           mib(p->region_bytes[ZN_REGION_GRADS]), mib(p->region_bytes[ZN_REGION_OPTIM]), mib(peak), at, zn_ops[n->op].name, n->name,
           n->span.file ? n->span.file : "?", n->span.line);
    for (;;) { /* largest first, down to 1% of the peak */
        int best = -1;
        for (int i = 0; i < g->n_nodes; i++)
            if (until[i] >= 0 && (best < 0 || p->bytes[i] > p->bytes[best])) best = i;
        if (best < 0 || p->bytes[best] * 100 < peak) break;
        printf("    %8.1f MiB  %-20s %s (nodes %d to %d)\n", mib(p->bytes[best]), zn_ops[g->nodes[best].op].name,
               g->nodes[best].name, p->first[best], until[best]);
        until[best] = -1;
    }
    free(until);
}

/* Planned memory of inference and of a training step beside the naive sum, for the graphs a
 * session runs (runtime/compile.h: the inference graph and the training graph, each with its
 * plan), and their multiply-adds; detail: the --memory-detail view of each plan. */
static void print_memory(const zn_compiled run[2], const char *backend, size_t budget, bool detail)
{
    printf("\nmemory at batch %d (planned: tensors share memory once dead; naive: every tensor apart)\n",
           run[0].plan.batch);
    printf("  %-10s %12s %12s %12s %12s %12s %12s %12s\n", "", "planned", "naive", "activations", "params+state",
           "grads", "optim state", "scratch");
    for (int mode = 0; mode < 2; mode++) {
        const zn_plan *p = &run[mode].plan;
        size_t fixed = p->region_bytes[ZN_REGION_PARAMS] + p->region_bytes[ZN_REGION_GRADS] +
                       p->region_bytes[ZN_REGION_OPTIM] + p->workspace_bytes;
        char a[32], b[32], c[32], d[32], e[32], f[32], g[32] = "–";
        if (run[mode].be) zn_format_bytes(p->workspace_bytes, g, sizeof g);
        printf("  %-10s %12s %12s %12s %12s %12s %12s %12s\n", mode ? "training" : "inference",
               zn_format_bytes(zn_plan_total(p), a, sizeof a), zn_format_bytes(p->naive_bytes + fixed, b, sizeof b),
               zn_format_bytes(p->region_bytes[ZN_REGION_ARENA], c, sizeof c),
               zn_format_bytes(p->region_bytes[ZN_REGION_PARAMS], d, sizeof d),
               zn_format_bytes(p->region_bytes[ZN_REGION_GRADS], e, sizeof e),
               zn_format_bytes(p->region_bytes[ZN_REGION_OPTIM], f, sizeof f), g);
    }
    if (run[1].be) printf("  (scratch: the %s backend's kernel scratch, e.g. im2col buffers)\n", backend);
    else printf("  (kernel scratch, e.g. im2col buffers, depends on the backend: --backend NAME or znet bench)\n");
    if (budget) {
        const zn_budget_point *b = &run[1].budget;
        char a[32], t[32], m[32], what[128];
        printf("  memory budget %s: the training plan takes %s; recomputed: %s\n"
               "  (rung %d of --memory-curve), %s multiply-adds per example\n",
               zn_format_bytes(budget, a, sizeof a), zn_format_bytes(b->total, t, sizeof t),
               zn_budget_describe(b, what, sizeof what), b->rung, zn_format_count(b->extra_macs, m, sizeof m));
    }
    int64_t recomputed, written, infer = zn_graph_macs(&run[0].graph);
    int64_t train = step_macs(&run[1].graph, &recomputed, &written);
    /* the fused z-towers recompute their convs inside their own nodes, not as copies: the
     * budget's count has them */
    const bool fused = budget && run[1].budget.levers;
    if (fused) recomputed = run[1].budget.extra_macs;
    char a[32], b[32], c[32], d[32];
    printf("  multiply-adds per example: inference %s, training step %s, of which recomputed %s%s\n"
           "  (recomputed copies write %s values per example)\n",
           zn_format_count(infer, a, sizeof a), zn_format_count(train, b, sizeof b),
           zn_format_count(recomputed, c, sizeof c), fused ? " (the fused z-towers' convs among them)" : "",
           zn_format_count(written, d, sizeof d));
    for (int mode = 0; detail && mode < 2; mode++)
        print_detail(mode ? "training" : "inference", &run[mode].graph, &run[mode].plan);
}

static void print_schedule(const char *what, const zn_schedule *s)
{
    printf("  %-9s ", what);
    if (s->kind == ZN_LR_CONSTANT) printf("constant %g", s->v[0]);
    else if (s->kind == ZN_LR_COSINE) printf("cosine, peak %g after %g warm-up epochs", s->v[0], s->t[0]);
    else
        for (int i = 0; i < s->n_knots; i++) printf("%s(%g, %g)", i ? " " : "piecewise ", s->t[i], s->v[i]);
    printf("%s\n", s->per_example ? ", divided by the batch size" : "");
}

/* The training recipe after --set values, so a user can see what `znet run` will do. */
static void print_recipe(const zn_recipe *r)
{
    static const char *const aug[] = {"pad_crop", "flip", "cutout"};
    const zn_optimizer_cfg *o = &r->optimizer;
    printf("\nrecipe: %s, batch %d, %d epochs, seed %llu%s\n", r->data, r->batch, r->epochs, r->seed,
           r->drop_last ? ", last partial batch dropped" : "");
    if (o->kind == ZN_OPTIM_SGD)
        printf("  optimizer sgd, momentum %g%s, weight decay %g\n", o->momentum, o->nesterov ? " (Nesterov)" : "",
               o->weight_decay);
    else
        printf("  optimizer adam, betas %g %g, eps %g, weight decay %g\n", o->beta1, o->beta2, o->eps, o->weight_decay);
    print_schedule("lr", &r->lr);
    if (r->has_momentum_schedule) print_schedule("momentum", &r->momentum);
    printf("  augment  ");
    for (int i = 0; i < r->n_augment; i++) printf(" %s(%g)", aug[r->augment[i].kind],
                                                   r->augment[i].kind == ZN_AUG_FLIP ? r->augment[i].p : r->augment[i].size);
    printf("%s\n", r->n_augment ? "" : " none");
}

/* --memory-curve: every rung of graph/budget.h for the training graph o asks for, as a table and,
 * with svg, a picture; false after printing an error. */
static bool print_curve(const zn_compile_opts *o, int64_t fwd_macs, const char *svg)
{
    enum { MAX_RUNGS = 4096 };
    zn_budget_point *pts = zn_calloc(MAX_RUNGS, sizeof *pts);
    zn_compiled c;
    int n = zn_compile_curve(o, &c, pts, MAX_RUNGS);
    if (n < 0) fprintf(stderr, "znet summary: %s\n", c.err);
    zn_compiled_free(&c);
    double *x = zn_calloc((size_t)n + 1, sizeof *x), *y = zn_calloc((size_t)n + 1, sizeof *y);
    int last = n - 1; /* the top rung of the first ladder, 3 (convs + 1) for its candidate convs */
    while (last > 0 && pts[last].levers) last--;
    const int convs = last > 1 ? pts[last].rung / 3 - 1 : 0;
    const bool levers = n > 0 && pts[n - 1].levers;
    if (n >= 0)
        printf("\nmemory curve at batch %d: the training step's memory (scratch included) against the\n"
               "multiply-adds recomputed; rung -1 keeps everything, rung 0 recomputes the cheap segments\n"
               "after concats and stitches, rungs 1 + k (k = 0 .. %d) those after every kept node and the k\n"
               "cheapest convs, rungs %d + k the same in split segments with pooling, rungs %d + k with a copy\n"
               "per reader%s (--memory-budget takes the rung that fits with the fewest extra MACs)\n"
               "  %5s %14s %14s %22s %12s%s\n", o->batch, convs, convs + 2, 2 * convs + 3,
               levers ? "; then the same ladder with the z-towers fused (their convs recomputed)" : "", "rung",
               "bytes", "memory", "extra MACs/example", "of forward", levers ? "  z-towers" : "");
    for (int i = 0; i < n; i++) {
        char a[32], m[32];
        printf("  %5d %14zu %14s %22s %11.1f%%%s\n", pts[i].rung, pts[i].total,
               zn_format_bytes(pts[i].total, a, sizeof a), zn_format_count(pts[i].extra_macs, m, sizeof m),
               100.0 * (double)pts[i].extra_macs / (double)fwd_macs,
               !levers ? "" : pts[i].levers ? "  fused" : "  apart");
        x[i] = mib(pts[i].total);
        y[i] = (double)pts[i].extra_macs / 1e6;
    }
    bool ok = n >= 0;
    if (ok && svg) {
        FILE *f = fopen(svg, "w");
        char title[128];
        snprintf(title, sizeof title, "%s: training memory against recomputation, batch %d", o->from->model_name,
                 o->batch);
        ok = f && zn_plot_curve_svg(f, x, y, n, title, "training memory (MiB)", "extra multiply-adds per example (M)");
        if (f && fclose(f) != 0) ok = false;
        if (!ok) fprintf(stderr, "znet summary: --svg: cannot write '%s'\n", svg);
    }
    free(x), free(y), free(pts);
    return ok;
}

int zn_cmd_summary(int argc, char **argv)
{
    bool detail = false, curve = false;
    const char *backend = NULL, *precision_name = "fp32", *svg = NULL;
    const zn_opt opts[] = {
        {"--memory-detail", ZN_OPT_FLAG, NULL, "each plan in MiB, its peak of live bytes and what is live there",
         &detail, 0, 0},
        {"--memory-curve", ZN_OPT_FLAG, NULL, "training memory against recomputed multiply-adds, every choice of "
         "the memory budget's planner", &curve, 0, 0},
        {"--svg", ZN_OPT_STRING, "FILE", "with --memory-curve: also draw it as an SVG picture", &svg, 0, 0},
        {"--backend", ZN_OPT_STRING, "NAME", "count this backend's kernel scratch (default with a memory budget "
         "or --memory-curve: cpu)", &backend, 0, 0},
        {"--precision", ZN_OPT_STRING, "P", "with a backend: fp32 (default), fp16 or bf16", &precision_name, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "summary [options] FILE.znet",
                          "Prints one row per layer (name, op, output shape, parameters, multiply-adds\n"
                          "per example) and the totals: trainable parameters, multiply-adds and\n"
                          "activation memory per example, and the planned memory of inference and of a\n"
                          "training step at the recipe's batch size (--batch N) beside the naive sum, and\n"
                          "the training recipe after any --set values. The graph is the one the optimizer\n"
                          "passes make; each pass's node counts are shown (--no-pass NAME skips one).\n"
                          "--memory-detail adds each plan in MiB, the peak of its live bytes and the\n"
                          "tensors live there; --memory-budget SIZE plans the training step to fit SIZE;\n"
                          "--memory-curve shows every trade of memory for recomputation (docs/memory.md).",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (svg && !curve) {
        fprintf(stderr, "znet summary: --svg FILE goes with --memory-curve\n");
        return ZN_EXIT_USAGE;
    }
    zn_backend_opts bo = {.no_pass = c.no_pass, .n_no_pass = c.n_no_pass};
    const zn_backend_ops *ops = NULL;
    if (!zn_cli_precision("summary", precision_name, &bo.precision)) return ZN_EXIT_USAGE;
    if (backend && (rc = zn_cli_backend("summary", backend, &ops)) >= 0) return rc;
    char *passes = NULL; /* the pass report, however long (NULL when memory ran out) */
    size_t passes_len = 0;
    FILE *report = open_memstream(&passes, &passes_len);
    zn_compiled model, run[2]; /* the forward graph; the inference and the training graph */
    memset(run, 0, sizeof run);
    bool ok = zn_cli_compile(&c, (zn_compile_opts){.mode = ZN_COMPILE_FORWARD, .report = report}, &model);
    size_t budget = ok ? model.recipe.memory_budget : 0;
    if (!ops && (budget || curve)) ops = &zn_cpu_backend, backend = "cpu";
    rc = ZN_EXIT_ERROR;
    for (int mode = 0; ok && mode < 2; mode++) {
        zn_compile_opts o = {.from = &model.graph, .mode = mode ? ZN_COMPILE_TRAINING : ZN_COMPILE_INFERENCE,
                             .no_pass = c.no_pass, .n_no_pass = c.n_no_pass, .report = report,
                             .batch = model.recipe.batch, .backend = ops, .backend_opts = &bo, .plan_only = true,
                             .memory_budget = budget};
        if (!(ok = zn_compile(&o, &run[mode]))) {
            fprintf(stderr, "znet summary: %s\n", run[mode].err);
            rc = zn_cli_compile_exit(&run[mode]);
        }
    }
    if (report) fclose(report);
    if (ok) {
        zn_graph_write_summary(&model.graph, stdout, model.recipe.batch);
        printf("\npasses (--no-pass NAME skips an optimizer pass):\n%s", passes ? passes : "");
        print_memory(run, backend, budget, detail);
        zn_compile_opts o = {.from = &model.graph, .mode = ZN_COMPILE_TRAINING, .no_pass = c.no_pass,
                             .n_no_pass = c.n_no_pass, .batch = model.recipe.batch, .backend = ops,
                             .backend_opts = &bo, .plan_only = true};
        ok = !curve || print_curve(&o, zn_graph_macs(&model.graph), svg);
        print_recipe(&model.recipe);
    }
    for (int mode = 0; mode < 2; mode++) zn_compiled_free(&run[mode]);
    zn_compiled_free(&model);
    free(passes);
    return ok ? ZN_EXIT_OK : rc;
}
