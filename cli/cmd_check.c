/* cmd_check.c: `znet check FILE`: parse, resolve and infer every shape; report diagnostics.
 * With --backends A,B it also runs one training step on both backends from the same weights and
 * batch and compares every node's tensor (runtime/parity.h, docs/parity.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runtime/parity.h"

enum { DEFAULT_BATCH = 8 };

static bool batch_was_set(const zn_cli_common *c)
{
    for (int i = 0; i < c->n_settings; i++)
        if (strcmp(c->settings[i].key, "train.batch") == 0) return true;
    return false;
}

/* Splits "A,B" into names[2] (in buf); false when it is not two non-empty names. */
static bool split_backends(const char *arg, char *buf, size_t len, const char *names[2])
{
    snprintf(buf, len, "%s", arg);
    char *comma = strchr(buf, ',');
    if (!comma || comma == buf || !comma[1] || strchr(comma + 1, ',')) return false;
    *comma = '\0';
    names[0] = buf;
    names[1] = comma + 1;
    return true;
}

static int check_parity(const zn_cli_common *c, const zn_graph *g, const zn_recipe *r,
                        const zn_backend_ops *const ops[2], const zn_parity_opts *base, bool verbose)
{
    zn_parity_opts o = *base;
    o.batch = batch_was_set(c) ? r->batch : DEFAULT_BATCH;
    for (int k = 0; k < 2; k++) {
        int rc = zn_cli_budget("check", g, r, ops[k], &o.backend[k], o.batch);
        if (rc >= 0) return rc;
    }
    o.seed = r->seed;
    o.training = true;
    o.step = zn_parity_recipe_step(r, g, o.batch);
    zn_parity_report rep;
    char err[1024];
    if (!zn_parity_run(g, ops[0], ops[1], &o, &rep, err, sizeof err)) {
        fprintf(stderr, "znet check: %s: %s\n", c->file, err);
        return ZN_EXIT_ERROR;
    }
    printf("%s: ", c->file);
    zn_parity_print(&rep, verbose, stdout);
    int rc = rep.n_fail ? ZN_EXIT_ERROR : ZN_EXIT_OK;
    zn_parity_free(&rep);
    return rc;
}

int zn_cmd_check(int argc, char **argv)
{
    bool quiet = false, verbose = false, propagate = false;
    const char *backends = NULL, *tolerance = NULL, *precision = "fp32";
    const zn_opt opts[] = {
        {"--quiet", ZN_OPT_FLAG, NULL, "print nothing when the file is fine", &quiet, 0, 0},
        {"--backends", ZN_OPT_STRING, "A,B",
         "also run one training step on backends A and B and compare every node", &backends, 0, 0},
        {"--tolerance", ZN_OPT_STRING, "X", "with --backends: this relative difference for every node instead of "
         "the per-op defaults", &tolerance, 0, 0},
        {"--precision", ZN_OPT_STRING, "P", "with --backends: B computes convolutions and matrix products in P "
         "(fp32, fp16, bf16; A in fp32)", &precision, 0, 0},
        {"--propagate", ZN_OPT_FLAG, NULL,
         "with --backends: B runs on its own values (default: each node from A's inputs)", &propagate, 0, 0},
        {"--verbose", ZN_OPT_FLAG, NULL, "with --backends: list every tensor, not only failures and the closest",
         &verbose, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "check [options] FILE.znet",
                          "Parses the model file and its imports, evaluates the model and infers every\n"
                          "tensor's shape. Prints diagnostics; exit 0 when the file is fine, 1 if not.\n"
                          "With --backends A,B (e.g. cpu,cuda): one training step at batch 8 (--batch N)\n"
                          "from the same weights and random batch on both, every node's tensor compared;\n"
                          "exit 1 naming the first node over tolerance (docs/parity.md).",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    char buf[256];
    const char *names[2];
    zn_parity_opts po = {.propagate = propagate};
    for (int k = 0; k < 2; k++) po.backend[k] = (zn_backend_opts){.no_pass = c.no_pass, .n_no_pass = c.n_no_pass};
    if (!zn_cli_precision("check", precision, &po.backend[1].precision)) return ZN_EXIT_USAGE;
    if (backends && !split_backends(backends, buf, sizeof buf, names)) {
        fprintf(stderr, "znet check: --backends needs two backend names, e.g. --backends cpu,cuda\n");
        return ZN_EXIT_USAGE;
    }
    if (tolerance) {
        char *end;
        po.tolerance = strtod(tolerance, &end);
        if (*end || end == tolerance || !(po.tolerance > 0) || !isfinite(po.tolerance)) {
            fprintf(stderr, "znet check: --tolerance needs a positive number, got '%s'\n", tolerance);
            return ZN_EXIT_USAGE;
        }
    }
    if (!backends && (tolerance || propagate || verbose || po.backend[1].precision != ZN_PRECISION_FP32)) {
        fprintf(stderr, "znet check: --tolerance, --precision, --propagate and --verbose go with "
                        "--backends A,B\n");
        return ZN_EXIT_USAGE;
    }
    const zn_backend_ops *ops[2] = {NULL, NULL};
    for (int k = 0; backends && k < 2; k++)
        if ((rc = zn_cli_backend("check", names[k], &ops[k])) >= 0) return rc;
    zn_compiled m;
    bool ok = zn_cli_compile(&c, (zn_compile_opts){.mode = ZN_COMPILE_FORWARD}, &m);
    const zn_graph *g = &m.graph;
    if (ok && !quiet) {
        int params = 0, heads = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            params += (g->nodes[i].flags & ZN_NODE_PARAM) != 0;
            heads += (g->nodes[i].flags & ZN_NODE_LOSS) != 0;
        }
        printf("%s: ok: model %s, %d nodes, %d parameter tensors, %d head%s\n", c.file, g->model_name,
               g->n_nodes, params, heads, heads == 1 ? "" : "s");
    }
    rc = !ok ? ZN_EXIT_ERROR : backends ? check_parity(&c, g, &m.recipe, ops, &po, verbose) : ZN_EXIT_OK;
    zn_compiled_free(&m);
    return rc;
}
