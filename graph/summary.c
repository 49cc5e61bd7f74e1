/* summary.c: the per-layer table shown when a model loads (as darknet prints one): a row per
 * forward layer, numbered 0, 1, 2, ... in graph order, with its output, the parameters it owns,
 * its multiply-adds and the rows it reads (Keras's "Connected to"), then totals of parameters,
 * state, cost and activation memory. Columns are rows of a table, so a later column (planned
 * memory) is one more row and one cell function. */
#include "graph/inspect.h"
#include "graph/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const zn_graph *g;
    int64_t *owned; /* per node: trainable parameter elements counted here, at their first user */
    int *row;       /* per node: its row number, -1 for nodes without a row (parameters, backward) */
} summary;

typedef struct {
    const char *header;
    bool numeric; /* right-aligned */
    void (*cell)(const summary *s, int id, char *buf, size_t len);
} column;

static bool is_layer(const zn_node *n)
{
    return n->op != ZN_OP_PARAM && !(n->flags & ZN_NODE_BACKWARD);
}

static bool is_trainable(const zn_node *n)
{
    return n->op == ZN_OP_PARAM && (n->flags & ZN_NODE_PARAM);
}

static void cell_row(const summary *s, int id, char *buf, size_t len)
{
    snprintf(buf, len, "%d", s->row[id]);
}

/* The rows of the layer's inputs ("3, 7"); parameters have no row and are left out. */
static void cell_inputs(const summary *s, int id, char *buf, size_t len)
{
    const zn_node *n = &s->g->nodes[id];
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < n->n_src && used < len; k++) {
        int r = s->row[n->src[k]];
        if (r >= 0) used += (size_t)snprintf(buf + used, len - used, "%s%d", used ? ", " : "", r);
    }
}

static void cell_name(const summary *s, int id, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s->g->nodes[id].name);
}

static void cell_op(const summary *s, int id, char *buf, size_t len)
{
    snprintf(buf, len, "%s", zn_ops[s->g->nodes[id].op].name);
}

static void cell_shape(const summary *s, int id, char *buf, size_t len)
{
    zn_shape_str(&s->g->nodes[id].shape, buf, len);
}

static void cell_params(const summary *s, int id, char *buf, size_t len)
{
    zn_format_count(s->owned[id], buf, len);
}

static void cell_macs(const summary *s, int id, char *buf, size_t len)
{
    zn_format_count(zn_ops[s->g->nodes[id].op].macs(s->g, id), buf, len);
}

static const column columns[] = {
    {"#", true, cell_row},         {"name", false, cell_name},     {"op", false, cell_op},
    {"output", false, cell_shape}, {"params", true, cell_params}, {"MACs", true, cell_macs},
    {"connected to", false, cell_inputs},
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0], CELL = 256 };

static void write_row(FILE *f, const int *width, char cells[][CELL])
{
    for (int c = 0; c < N_COLUMNS - 1; c++)
        fprintf(f, "%s%*s", c ? "  " : "", columns[c].numeric ? width[c] : -width[c], cells[c]);
    /* the last column unpadded: no trailing blanks */
    fprintf(f, "%s%s\n", cells[N_COLUMNS - 1][0] ? "  " : "", cells[N_COLUMNS - 1]);
}

static void write_table(FILE *f, const summary *s)
{
    char cells[N_COLUMNS][CELL];
    int width[N_COLUMNS];
    for (int c = 0; c < N_COLUMNS; c++) width[c] = (int)strlen(columns[c].header);
    for (int id = 0; id < s->g->n_nodes; id++) {
        if (!is_layer(&s->g->nodes[id])) continue;
        for (int c = 0; c < N_COLUMNS; c++) {
            columns[c].cell(s, id, cells[c], CELL);
            int w = (int)strlen(cells[c]);
            if (w > width[c]) width[c] = w;
        }
    }
    for (int c = 0; c < N_COLUMNS; c++) snprintf(cells[c], CELL, "%s", columns[c].header);
    write_row(f, width, cells);
    for (int id = 0; id < s->g->n_nodes; id++) {
        if (!is_layer(&s->g->nodes[id])) continue;
        for (int c = 0; c < N_COLUMNS; c++) columns[c].cell(s, id, cells[c], CELL);
        write_row(f, width, cells);
    }
}

void zn_graph_write_summary(const zn_graph *g, FILE *f, int batch)
{
    summary s = {g, zn_calloc((size_t)g->n_nodes, sizeof *s.owned),
                 zn_calloc((size_t)g->n_nodes, sizeof *s.row)};
    bool *counted = zn_calloc((size_t)g->n_nodes, sizeof *counted);
    int rows = 0;
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        s.row[id] = is_layer(n) ? rows++ : -1;
        for (int k = 0; k < n->n_src; k++) {
            const zn_node *p = &g->nodes[n->src[k]];
            if (is_trainable(p) && !counted[n->src[k]]) {
                counted[n->src[k]] = true;
                s.owned[id] += zn_shape_numel(&p->shape);
            }
        }
    }
    fprintf(f, "model %s\n", g->model_name);
    write_table(f, &s);
    free(s.owned);
    free(s.row);
    free(counted);

    int64_t state = 0, act = 0, act_batch = 0;
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        int64_t numel = zn_shape_numel(&n->shape);
        if (n->op == ZN_OP_PARAM && (n->flags & ZN_NODE_STATE)) state += numel;
        if (!is_layer(n)) continue;
        /* F32 and I32 elements alike take 4 bytes */
        act += numel * 4;
        act_batch += numel * 4 * (n->shape.batched && batch > 0 ? batch : 1);
    }
    const int64_t macs = zn_graph_macs(g);
    char a[64], b[64];
    fprintf(f, "trainable parameters     %s\n", zn_format_count(zn_graph_param_count(g), a, sizeof a));
    fprintf(f, "non-trainable state      %s\n", zn_format_count(state, a, sizeof a));
    fprintf(f, "MACs per example         %s (%.3f GFLOP)\n", zn_format_count(macs, a, sizeof a),
            2e-9 * (double)macs);
    fprintf(f, "activations per example  %s", zn_format_bytes(act, a, sizeof a));
    if (batch > 0)
        fprintf(f, "; at batch %d: %s", batch, zn_format_bytes(act_batch, b, sizeof b));
    fputc('\n', f);
}

int64_t zn_graph_param_count(const zn_graph *g)
{
    int64_t total = 0;
    for (int id = 0; id < g->n_nodes; id++)
        if (is_trainable(&g->nodes[id])) total += zn_shape_numel(&g->nodes[id].shape);
    return total;
}

int64_t zn_graph_step_macs(const zn_graph *g, int end)
{
    int64_t total = 0;
    for (int i = 0; i < end; i++)
        if (zn_ops[g->nodes[i].op].macs) total += zn_ops[g->nodes[i].op].macs(g, i);
    return total;
}

int64_t zn_graph_macs(const zn_graph *g)
{
    int64_t total = 0;
    for (int id = 0; id < g->n_nodes; id++)
        if (!(g->nodes[id].flags & ZN_NODE_BACKWARD)) total += zn_ops[g->nodes[id].op].macs(g, id);
    return total;
}
