/* cmd_check.c: `znet check FILE`: parse, resolve and infer every shape; report diagnostics. */
#include <stdio.h>

#include "cli.h"

int zn_cmd_check(int argc, char **argv)
{
    bool quiet = false;
    const zn_opt opts[] = {
        {"--quiet", ZN_OPT_FLAG, NULL, "print nothing when the file is fine", &quiet, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "check [options] FILE.znet",
                          "Parses the model file and its imports, evaluates the model and infers every\n"
                          "tensor's shape. Prints diagnostics; exit 0 when the file is fine, 1 if not.",
                          opts, 1, &c);
    if (rc >= 0) return rc;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    if (ok && !quiet) {
        int params = 0, heads = 0;
        for (int i = 0; i < g.n_nodes; i++) {
            params += (g.nodes[i].flags & ZN_NODE_PARAM) != 0;
            heads += (g.nodes[i].flags & ZN_NODE_LOSS) != 0;
        }
        printf("%s: ok: model %s, %d nodes, %d parameter tensors, %d head%s\n", c.file, g.model_name,
               g.n_nodes, params, heads, heads == 1 ? "" : "s");
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
