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

int zn_cmd_summary(int argc, char **argv)
{
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "summary [options] FILE.znet",
                          "Prints one row per layer (name, op, output shape, parameters, multiply-adds\n"
                          "per example) and the totals: trainable parameters, multiply-adds and\n"
                          "activation memory per example, and the planned memory of inference and of a\n"
                          "training step at the recipe's batch size (--batch N) beside the naive sum.",
                          NULL, 0, &c);
    if (rc >= 0) return rc;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    if (ok) {
        zn_graph_write_summary(&g, stdout, r.batch);
        ok = print_memory(&g, r.batch);
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
