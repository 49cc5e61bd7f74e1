/* passes.c: the pass table, the driver that runs it (skipping, dumping, reporting), and the
 * helpers every pass shares: rebuilding a graph from a kept subset of its nodes, and counting
 * each node's users. The passes themselves live in graph/pass_*.c. */
#include "graph/util.h"
#include "graph/passes.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "graph/inspect.h"

const zn_pass zn_passes[] = {
    {"dce", "dead-node elimination: drops nodes that no head, metric or input depends on", zn_pass_dce},
    {"stitch", "stitch fusion: resample -> transpose [1, 0, 2] -> concat on axis 1 becomes one stitch node",
     zn_pass_stitch},
};
const int zn_n_passes = (int)(sizeof zn_passes / sizeof zn_passes[0]);

const zn_pass *zn_pass_find(const char *name)
{
    for (int i = 0; i < zn_n_passes; i++)
        if (strcmp(zn_passes[i].name, name) == 0) return &zn_passes[i];
    return NULL;
}

void zn_pass_count_uses(const zn_graph *g, int *uses)
{
    memset(uses, 0, (size_t)g->n_nodes * sizeof *uses);
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_src; k++) uses[n->src[k]]++;
        if (n->op == ZN_OP_INPUT || (n->flags & ZN_NODE_LOSS)) uses[i]++;
    }
    for (int m = 0; m < g->n_metrics; m++)
        for (int k = 0; k < g->metrics[m].n_heads; k++) uses[g->metrics[m].heads[k]]++;
}

bool zn_pass_rebuild(zn_graph *g, const bool *keep, char *err, size_t errlen)
{
    int *map = zn_calloc((size_t)g->n_nodes, sizeof *map);
    int max_src = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].n_src > max_src) max_src = g->nodes[i].n_src;
    int *src = zn_calloc((size_t)max_src, sizeof *src);
    zn_graph out;
    zn_graph_init(&out, g->model_name);
    bool ok = true;
    for (int i = 0; ok && i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        map[i] = -1;
        if (!keep[i]) continue;
        for (int k = 0; k < n->n_src; k++) {
            src[k] = map[n->src[k]];
            assert(src[k] >= 0 && "a kept node reads a dropped one");
        }
        int id = zn_graph_add(&out, n->op, src, n->n_src, &n->attr, n->name, n->block, n->span);
        out.nodes[id].shape = n->shape; /* INPUT and PARAM keep their creator's dims */
        out.nodes[id].flags = n->flags;
        char msg[512];
        if (!zn_graph_infer(&out, id, msg, sizeof msg)) {
            snprintf(err, errlen, "%s (%s:%d): %s", n->name, n->span.file ? n->span.file : "?", n->span.line,
                     msg);
            ok = false;
        }
        map[i] = id;
    }
    for (int i = 0; ok && i < g->n_nodes; i++)
        if (map[i] >= 0 && g->nodes[i].state_of >= 0) {
            out.nodes[map[i]].state_of = map[g->nodes[i].state_of];
            assert(out.nodes[map[i]].state_of >= 0 && "kept state whose updater was dropped");
        }
    for (int m = 0; ok && m < g->n_metrics; m++) {
        const zn_metric *mt = &g->metrics[m];
        int *heads = zn_calloc((size_t)mt->n_heads, sizeof *heads);
        for (int k = 0; k < mt->n_heads; k++) {
            heads[k] = map[mt->heads[k]];
            assert(heads[k] >= 0 && "a metric's head was dropped");
        }
        zn_graph_add_metric(&out, mt->kind, heads, mt->n_heads, mt->name, mt->span);
        free(heads);
    }
    free(src);
    free(map);
    if (!ok) {
        zn_graph_free(&out);
        return false;
    }
    zn_graph_free(g);
    *g = out;
    return true;
}

static bool is_disabled(const char *name, const char *const *disabled, int n_disabled)
{
    for (int i = 0; i < n_disabled; i++)
        if (strcmp(disabled[i], name) == 0) return true;
    return false;
}

static void write_dump(const zn_graph *g, const zn_pass_dump *dump)
{
    if (dump->format == ZN_DUMP_DOT) zn_graph_write_dot(g, dump->out);
    else zn_graph_write_text(g, dump->out);
}

bool zn_passes_run(zn_graph *g, const char *const *disabled, int n_disabled, const zn_pass_dump *dump,
                   char *err, size_t errlen)
{
    for (int i = 0; i < n_disabled; i++)
        if (!zn_pass_find(disabled[i])) {
            snprintf(err, errlen, "no pass is called '%s'", disabled[i]);
            return false;
        }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].flags & ZN_NODE_BACKWARD) {
            snprintf(err, errlen, "internal: passes rewrite forward graphs, and this one has backward nodes");
            return false;
        }
    for (int p = 0; p < zn_n_passes; p++) {
        const zn_pass *pass = &zn_passes[p];
        bool skip = is_disabled(pass->name, disabled, n_disabled);
        int before = g->n_nodes;
        if (!skip) {
            char msg[512];
            if (!pass->run(g, msg, sizeof msg)) {
                snprintf(err, errlen, "pass %s: %s", pass->name, msg);
                return false;
            }
        }
        if (dump && dump->report) {
            if (skip) fprintf(dump->report, "  %-8s off\n", pass->name);
            else fprintf(dump->report, "  %-8s %d -> %d nodes\n", pass->name, before, g->n_nodes);
        }
        if (dump && dump->out && dump->after && strcmp(dump->after, pass->name) == 0) write_dump(g, dump);
    }
    return true;
}
