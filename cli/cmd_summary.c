/* cmd_summary.c: `znet summary FILE`: the per-layer table and the model's totals. */
#include <stdio.h>

#include "cli.h"
#include "graph/inspect.h"

int zn_cmd_summary(int argc, char **argv)
{
    long batch = 0;
    const zn_opt opts[] = {
        {"--mem-batch", ZN_OPT_INT, "N", "batch size for the memory figures (default: the recipe's)", &batch, 1, 65536},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "summary [options] FILE.znet",
                          "Prints one row per layer (name, op, output shape, parameters, multiply-adds\n"
                          "per example) and the totals: trainable parameters, multiply-adds and\n"
                          "activation memory per example and per batch.",
                          opts, 1, &c);
    if (rc >= 0) return rc;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    if (ok) zn_graph_write_summary(&g, stdout, batch ? (int)batch : r.batch);
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
