/* cmd_graph.c: `znet graph FILE [--dot|--text]`: the graph for Graphviz or as a text dump, after
 * the optimizer passes, or as it was after one of them (--dump-after NAME; a training pass shows
 * the training graph, an inference pass the inference graph). */
#include <stdio.h>

#include "cli.h"
#include "graph/inspect.h"

int zn_cmd_graph(int argc, char **argv)
{
    bool dot = false, text = false, params = false, backward = false;
    const char *dump_after = NULL;
    const zn_opt opts[] = {
        {"--dot", ZN_OPT_FLAG, NULL, "Graphviz DOT on stdout (the default); render with dot -Tsvg", &dot, 0, 0},
        {"--text", ZN_OPT_FLAG, NULL, "one line per node: id, op, sources, name, shape, place", &text, 0, 0},
        {"--params", ZN_OPT_FLAG, NULL, "also draw parameter and state tensors (DOT)", &params, 0, 0},
        {"--backward", ZN_OPT_FLAG, NULL, "the training graph: the backward nodes autodiff adds, after the training passes", &backward, 0, 0},
        {"--dump-after", ZN_OPT_STRING, "PASS", "the graph as it is right after optimizer pass PASS", &dump_after, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "graph [--dot | --text] [options] FILE.znet",
                          "Prints the model's graph: as Graphviz DOT (blocks drawn as clusters, edges\n"
                          "labelled with tensor shapes), or as a plain text dump of the IR; --backward shows\n"
                          "the training graph with its backward nodes. The graph is the one the optimizer\n"
                          "passes make (--passes lists them; --no-pass NAME skips one).\n"
                          "Example: znet graph models/davidnet_zee.znet --dot | dot -Tsvg > zee.svg",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (dot && text) {
        fprintf(stderr, "znet graph: choose one of --dot and --text\n");
        return ZN_EXIT_USAGE;
    }
    if (dump_after && !zn_cli_pass_known("graph", "--dump-after", dump_after)) return ZN_EXIT_USAGE;
    zn_pass_stage stage = dump_after ? zn_pass_find(dump_after)->stage : ZN_STAGE_FORWARD;
    if (dump_after && backward && stage != ZN_STAGE_TRAINING) {
        fprintf(stderr, "znet graph: --dump-after %s shows the %s graph; drop --backward\n", dump_after,
                zn_pass_stage_names[stage]);
        return ZN_EXIT_USAGE;
    }
    backward = backward || stage == ZN_STAGE_TRAINING;
    zn_pass_dump dump = {.after = dump_after, .format = text ? ZN_DUMP_TEXT : ZN_DUMP_DOT, .out = stdout};
    if (dump_after) c.dump = &dump;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_graph g;
    zn_recipe r;
    bool ok = zn_cli_load(&c, &d, &g, &r);
    char err[512];
    if (ok && (backward || stage == ZN_STAGE_INFERENCE) &&
        !(ok = zn_passes_finish(&g, backward, c.no_pass, c.n_no_pass, c.dump, err, sizeof err)))
        fprintf(stderr, "znet graph: %s\n", err);
    if (ok && !dump_after) { /* a dump was written while the passes ran */
        if (text) zn_graph_write_text(&g, stdout);
        else zn_graph_write_dot_opts(&g, stdout, &(zn_dot_opts){.show_params = params});
    }
    zn_graph_free(&g);
    zn_diag_free(&d);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
