/* cmd_summary.c: `znet summary FILE`: the per-layer table and the model's totals. */
#include <stdio.h>

#include "cli.h"
#include "graph/autodiff.h"
#include "graph/inspect.h"
#include "graph/plan.h"
#include "runtime/session.h"

/* Planned memory of inference and of a training step at batch, beside the naive sum. */
static bool print_memory(const zn_graph *g, int batch)
{
    zn_graph train;
    zn_graph_copy(&train, g);
    char err[512];
    bool ok = zn_autodiff(&train, err, sizeof err);
    printf("\nmemory at batch %d (planned: tensors share memory once dead; naive: every tensor apart)\n", batch);
    printf("  %-10s %12s %12s %12s %12s %12s\n", "", "planned", "naive", "activations", "params+state", "grads");
    for (int mode = 0; ok && mode < 2; mode++) {
        const zn_graph *gg = mode ? &train : g;
        zn_plan p;
        if (!(ok = zn_plan_make(&p, gg, batch, NULL, NULL, err, sizeof err))) break;
        size_t fixed = p.region_bytes[ZN_REGION_PARAMS] + p.region_bytes[ZN_REGION_GRADS];
        char a[32], b[32], c[32], d[32], e[32];
        printf("  %-10s %12s %12s %12s %12s %12s\n", mode ? "training" : "inference",
               zn_format_bytes(zn_plan_total(&p), a, sizeof a), zn_format_bytes(p.naive_bytes + fixed, b, sizeof b),
               zn_format_bytes(p.region_bytes[ZN_REGION_ARENA], c, sizeof c),
               zn_format_bytes(p.region_bytes[ZN_REGION_PARAMS], d, sizeof d),
               zn_format_bytes(p.region_bytes[ZN_REGION_GRADS], e, sizeof e));
        zn_plan_free(&p);
    }
    if (ok) printf("  (kernel scratch, e.g. im2col buffers, depends on the backend: see znet bench)\n");
    else fprintf(stderr, "znet summary: %s\n", err);
    zn_graph_free(&train);
    return ok;
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

int zn_cmd_summary(int argc, char **argv)
{
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "summary [options] FILE.znet",
                          "Prints one row per layer (name, op, output shape, parameters, multiply-adds\n"
                          "per example) and the totals: trainable parameters, multiply-adds and\n"
                          "activation memory per example, and the planned memory of inference and of a\n"
                          "training step at the recipe's batch size (--batch N) beside the naive sum, and\n"
                          "the training recipe after any --set values. The graph is the one the optimizer\n"
                          "passes make; each pass's node counts are shown (--no-pass NAME skips one).",
                          NULL, 0, &c);
    if (rc >= 0) return rc;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    char passes[512] = "";
    FILE *report = fmemopen(passes, sizeof passes - 1, "w");
    zn_pass_dump dump = {.report = report};
    c.dump = report ? &dump : NULL;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    if (report) fclose(report);
    if (ok) {
        zn_graph_write_summary(&g, stdout, r.batch);
        printf("\noptimizer passes (--no-pass NAME skips one):\n%s", passes);
        ok = print_memory(&g, r.batch);
        print_recipe(&r);
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
