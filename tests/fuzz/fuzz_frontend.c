/* fuzz_frontend.c: the whole front end on one .znet text: parse, imports (from the real stdlib),
 * evaluation with shape inference, the forward passes, then autodiff with the training passes
 * and, on a copy, the inference passes, and a memory plan of each that must verify. Bad input
 * may fail anywhere with a diagnostic; only a crash, a sanitizer report or a plan that breaks
 * its own invariant is a finding. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "graph/passes.h"
#include "graph/plan.h"
#include "lang/program.h"

/* A plan that zn_plan_make accepts must verify: anything else is a planner bug. */
static void check_plan(const zn_graph *g)
{
    zn_plan p;
    char err[512];
    if (!zn_plan_make(&p, g, 2, NULL, NULL, err, sizeof err)) return; /* sizes overflow: refused */
    if (!zn_plan_verify(&p, g, err, sizeof err)) {
        fprintf(stderr, "plan of %s fails its check: %s\n", g->model_name, err);
        abort();
    }
    zn_plan_free(&p);
}

static void finish(const zn_graph *g, bool training)
{
    zn_graph t;
    zn_graph_copy(&t, g);
    char err[512];
    if (zn_passes_finish(&t, training, NULL, 0, NULL, err, sizeof err)) check_plan(&t);
    zn_graph_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w"))) abort();
    zn_load_opts lo = {.path = zn_fuzz_file("main.znet", data, size), .stdlib_dir = ZNET_STDLIB_DIR};
    zn_diag d;
    zn_diag_init(&d, sink);
    zn_graph g;
    zn_recipe r;
    char err[512];
    if (zn_program_load(&lo, &d, &g, &r) && zn_passes_run(&g, NULL, 0, NULL, err, sizeof err)) {
        finish(&g, true);
        finish(&g, false);
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return 0;
}
