/* cmd_graph.c: `znet graph FILE [--dot|--text]`: the graph for Graphviz (a cluster per block
 * call, or --collapse / --depth K: each call at a depth as one node) or as a text dump, after
 * the passes, or as it is right after one of them (--dump-after NAME, autodiff included: a
 * training pass shows the training graph, an inference pass the inference graph), or the memory
 * plan that follows them (--dump-after plan). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "graph/inspect.h"

/* --dump-after plan: where the plan puts every tensor at the recipe's batch (docs/memory.md): its
 * region, byte offset and size, the nodes it is live from and to, and the source it overwrites
 * when it is computed in place. */
static void print_plan(const zn_graph *g, const zn_plan *p)
{
    static const char *const region[ZN_REGION_COUNT] = {"arena", "params", "grads", "optim"};
    char total[32];
    printf("plan at batch %d: %s in all\n  %4s %-32s %-6s %12s %10s  live\n", p->batch,
           zn_format_bytes(zn_plan_total(p), total, sizeof total), "id", "node", "region", "offset", "bytes");
    for (int i = 0; i < g->n_nodes; i++) {
        char bytes[32];
        printf("  %4d %-32s %-6s %12zu %10s  %d..%d", i, g->nodes[i].name, region[p->region[i]], p->offset[i],
               zn_format_bytes(p->bytes[i], bytes, sizeof bytes), p->first[i], p->last[i]);
        if (p->alias[i] >= 0) printf(", in place over %d", p->alias[i]);
        putchar('\n');
    }
}

int zn_cmd_graph(int argc, char **argv)
{
    bool dot = false, text = false, params = false, backward = false, collapse = false;
    long depth = 0;
    const char *dump_after = NULL;
    const zn_opt opts[] = {
        {"--dot", ZN_OPT_FLAG, NULL, "Graphviz DOT on stdout (the default); render with dot -Tsvg", &dot, 0, 0},
        {"--text", ZN_OPT_FLAG, NULL, "one line per node: id, op, sources, name, shape, place", &text, 0, 0},
        {"--params", ZN_OPT_FLAG, NULL, "also draw parameter and state tensors (DOT)", &params, 0, 0},
        {"--collapse", ZN_OPT_FLAG, NULL, "draw each block call the model makes as one node (--depth 1)", &collapse, 0, 0},
        {"--depth", ZN_OPT_INT, "K", "draw each block call K deep as one node, the calls above it as clusters "
         "(1: the model's own calls)", &depth, 1, 64},
        {"--backward", ZN_OPT_FLAG, NULL, "the training graph: the backward nodes autodiff adds, after the training passes", &backward, 0, 0},
        {"--dump-after", ZN_OPT_STRING, "PASS", "the graph as it is right after pass PASS (autodiff too; see --passes), "
         "or with PASS = plan the memory plan of the inference graph (--backward: training)", &dump_after, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "graph [--dot | --text] [options] FILE.znet",
                          "Prints the model's graph: as Graphviz DOT (each block call a cluster, each node\n"
                          "with its output shape; --collapse draws the model's block calls as one node\n"
                          "each, --depth K the calls K deep), or as a plain text dump of the IR; --backward\n"
                          "shows the training graph with its backward nodes. The graph is the one the\n"
                          "passes make (--passes lists them, autodiff among them; --no-pass NAME skips one).\n"
                          "Example: znet graph models/davidnet_zee.znet --collapse | dot -Tsvg > zee.svg",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (dot && text) {
        fprintf(stderr, "znet graph: choose one of --dot and --text\n");
        return ZN_EXIT_USAGE;
    }
    if (collapse && depth) {
        fprintf(stderr, "znet graph: --collapse is --depth 1; give one of them\n");
        return ZN_EXIT_USAGE;
    }
    bool plan = dump_after && strcmp(dump_after, "plan") == 0;
    if ((collapse || depth || params) && (text || plan)) {
        fprintf(stderr, "znet graph: %s changes the DOT drawing only, not %s\n",
                collapse ? "--collapse" : depth ? "--depth" : "--params", text ? "--text" : "the memory plan");
        return ZN_EXIT_USAGE;
    }
    const char *stop = plan ? NULL : dump_after; /* the plan comes after every pass */
    if (stop && !zn_cli_pass_known("graph", "--dump-after", stop)) return ZN_EXIT_USAGE;
    zn_pass_stage stage = stop ? zn_pass_find(stop)->stage : plan ? ZN_STAGE_INFERENCE : ZN_STAGE_FORWARD;
    if (stop && backward && stage != ZN_STAGE_TRAINING) {
        fprintf(stderr, "znet graph: --dump-after %s shows the %s graph; drop --backward\n", stop,
                zn_pass_stage_names[stage]);
        return ZN_EXIT_USAGE;
    }
    zn_compile_opts o = {.mode = backward || stage == ZN_STAGE_TRAINING ? ZN_COMPILE_TRAINING
                                : stage == ZN_STAGE_INFERENCE       ? ZN_COMPILE_INFERENCE
                                                                    : ZN_COMPILE_FORWARD,
                         .stop_after = stop, .batch = plan ? ZN_COMPILE_RECIPE_BATCH : 0};
    zn_compiled m;
    bool ok = zn_cli_compile(&c, o, &m);
    if (ok && plan) print_plan(&m.graph, &m.plan);
    else if (ok && text) zn_graph_write_text(&m.graph, stdout);
    else if (ok)
        zn_graph_write_dot_opts(&m.graph, stdout,
                                &(zn_dot_opts){.show_params = params, .depth = collapse ? 1 : (int)depth});
    zn_compiled_free(&m);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
