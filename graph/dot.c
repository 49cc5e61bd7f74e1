/* dot.c: renders a graph as Graphviz DOT (a cluster per block call, or calls from a depth on
 * drawn as one node each; parameters hidden unless asked; a tensor's shape once, on the node
 * that makes it) and as a plain text IR dump, one line per node with its attributes and the
 * place the user wrote it. */
#include "graph/inspect.h"
#include "graph/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The first len characters of s as the inside of a double-quoted DOT string. */
static void write_escaped_n(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len && s[i]; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fprintf(f, "\\%c", s[i]);
        else if (s[i] == '\n')
            fputs("\\n", f);
        else
            fputc(s[i], f);
    }
}

static void write_escaped(FILE *f, const char *s)
{
    write_escaped_n(f, s, strlen(s));
}

/* Number of '/'-separated components of a block path ("" has none). */
static int path_depth(const char *block)
{
    int depth = 0;
    for (; *block; depth++) {
        block += strcspn(block, "/");
        block += *block == '/';
    }
    return depth;
}

/* Number of leading path components that a and b share ("layer:b1/cbr:cbr" and
 * "layer:b1/cbr:cbr#2" share 1). */
static int shared_depth(const char *a, const char *b)
{
    int depth = 0;
    while (*a && *b) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la != lb || memcmp(a, b, la) != 0) break;
        depth++;
        a += la + (a[la] == '/');
        b += lb + (b[lb] == '/');
    }
    return depth;
}

/* Whether a and b lie in the same call at depth `depth` (both at least that deep). */
static bool same_call(const char *a, const char *b, int depth)
{
    return shared_depth(a, b) >= depth;
}

/* The call that the first `depth` components of a block path stand for, as the user named it
 * ("b1.h.cbr"), and its block in parentheses where the name does not say it ("b1 (layer)"). */
static void write_call(FILE *f, const char *path, int depth)
{
    const char *block = "", *name = "";
    size_t block_len = 0, name_len = 0;
    bool first = true;
    for (int d = 0; d < depth; d++) {
        size_t len = strcspn(path, "/"), colon = strcspn(path, ":");
        bool named = colon < len; /* "BLOCK:NAME" (graph.h); a graph built by hand may say "NAME" */
        block = path, block_len = named ? colon : 0;
        name = named ? path + colon + 1 : path, name_len = named ? len - colon - 1 : len;
        if (name_len) { /* empty for `return blk(...)`, which names nodes as its caller does */
            if (!first && *name != '#') fputc('.', f);
            write_escaped_n(f, name, name_len);
            first = false;
        }
        path += len + (path[len] == '/');
    }
    const char *last = name; /* the name's last dotted part without "#k" says the block? */
    for (size_t i = 0; i < name_len; i++)
        if (name[i] == '.') last = name + i + 1;
    const size_t last_len = strcspn(last, "#/");
    if (block_len && (last_len != block_len || memcmp(last, block, block_len) != 0)) {
        fputs(first ? "" : " (", f);
        write_escaped_n(f, block, block_len);
        fputs(first ? "" : ")", f);
    }
}

typedef struct {
    const char *block;
    int id;
} placed;

/* Orders block paths so that every path's descendants follow it without a gap: '/' sorts
 * before any other character ("b1", "b1/res", "b1-x"); ties keep graph order. */
static int placed_cmp(const void *pa, const void *pb)
{
    const placed *a = pa, *b = pb;
    for (const char *x = a->block, *y = b->block;; x++, y++) {
        int cx = *x == '/' ? 1 : (unsigned char)*x, cy = *y == '/' ? 1 : (unsigned char)*y;
        if (cx != cy) return cx - cy;
        if (!*x) break;
    }
    return (a->id > b->id) - (a->id < b->id);
}

static const char *const metric_kinds[] = {[ZN_METRIC_VOTE] = "vote"};

static bool visible(const zn_node *n, const zn_dot_opts *opts)
{
    return n->op != ZN_OP_PARAM || opts->show_params;
}

static const char *node_style(const zn_node *n)
{
    if (n->flags & ZN_NODE_BACKWARD) return "style=\"rounded,filled,dashed\", fillcolor=\"#f4f4f4\"";
    if (n->flags & ZN_NODE_LOSS) return "shape=box, peripheries=2, fillcolor=\"#ffd9c9\"";
    if (n->op == ZN_OP_INPUT) return "shape=invhouse, fillcolor=\"#cfe2ff\"";
    if (n->flags & ZN_NODE_STATE) return "fontsize=10, fontcolor=\"#666666\", style=\"rounded,dotted\"";
    if (n->op == ZN_OP_PARAM) return "fontsize=10, fontcolor=\"#666666\", fillcolor=\"#eeeeee\"";
    return "fillcolor=white";
}

static void write_node(FILE *f, const zn_graph *g, int id, int depth)
{
    const zn_node *n = &g->nodes[id];
    char shape[96];
    fprintf(f, "%*sn%d [label=\"", 2 * depth, "", id);
    if (*n->name) {
        write_escaped(f, n->name);
        fputs("\\n", f);
    }
    fprintf(f, "%s %s", zn_ops[n->op].name, zn_shape_str(&n->shape, shape, sizeof shape));
    if (n->op == ZN_OP_ZTOWER) /* what the fused node stands for (docs/passes.md) */
        fprintf(f, "\\nstitch %dx%d, conv %dx%d dilation %d, batchnorm, relu, global max", n->attr.size[0],
                n->attr.size[1], n->attr.kernel[0], n->attr.kernel[1], n->attr.dilation[0]);
    fprintf(f, "\", %s];\n", node_style(n));
}

/* What a block call drawn whole needs: rep[i], the node that stands for node i (itself when
 * drawn on its own, -1 when hidden), and out[i], whether i's tensor leaves its call for the next
 * node of its own pass (the activations that backward nodes read back are not its results). */
typedef struct {
    int *rep;
    bool *out;
} folding;

/* The nodes of one call at depth `depth` (the forward and the backward ones apart) fold into
 * the first of them in `order`, where they follow one another (placed_cmp). */
static folding fold_calls(const zn_graph *g, const placed *order, int n, int depth)
{
    folding fo = {zn_malloc((size_t)g->n_nodes * sizeof *fo.rep), zn_calloc((size_t)g->n_nodes, sizeof *fo.out)};
    for (int i = 0; i < g->n_nodes; i++) fo.rep[i] = -1;
    int run[2] = {-1, -1}; /* the current call's first forward and backward node */
    for (int k = 0; k < n; k++) {
        const int id = order[k].id;
        if (depth == 0 || path_depth(order[k].block) < depth) {
            fo.rep[id] = id;
            run[0] = run[1] = -1;
            continue;
        }
        const int head = run[0] >= 0 ? run[0] : run[1];
        if (head >= 0 && !same_call(g->nodes[head].block, order[k].block, depth)) run[0] = run[1] = -1;
        int *r = &run[(g->nodes[id].flags & ZN_NODE_BACKWARD) != 0];
        if (*r < 0) *r = id;
        fo.rep[id] = *r;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; fo.rep[i] >= 0 && k < g->nodes[i].n_src; k++) {
            const int s = g->nodes[i].src[k];
            const unsigned bwd = (g->nodes[s].flags ^ g->nodes[i].flags) & ZN_NODE_BACKWARD;
            if (fo.rep[s] >= 0 && fo.rep[s] != fo.rep[i] && g->nodes[s].op != ZN_OP_PARAM && !bwd) fo.out[s] = true;
        }
    return fo;
}

/* A block call drawn whole: its name, block and the shape of each tensor that leaves it. The
 * call's nodes follow order[k] while they share its path to `depth`. */
static void write_call_node(FILE *f, const zn_graph *g, const placed *order, int n, int k, int depth,
                            const folding *fo, int indent)
{
    const int id = order[k].id;
    const bool backward = g->nodes[id].flags & ZN_NODE_BACKWARD;
    char shape[96];
    fprintf(f, "%*sn%d [label=\"", 2 * indent, "", id);
    write_call(f, order[k].block, depth);
    if (backward) fputs(", backward", f);
    for (int j = k; j < n && same_call(order[j].block, order[k].block, depth); j++)
        if (fo->rep[order[j].id] == id && fo->out[order[j].id])
            fprintf(f, "\\n%s", zn_shape_str(&g->nodes[order[j].id].shape, shape, sizeof shape));
    fprintf(f, "\", %s];\n", backward ? "shape=box3d, style=\"filled,dashed\", fillcolor=\"#f4f4f4\""
                                      : "shape=box3d, style=filled, fillcolor=\"#e2efda\"");
}

/* Opens clusters for the components of `block` from depth `from` to depth `to`. */
static void open_clusters(FILE *f, const char *block, int from, int to, int *n_clusters)
{
    for (int depth = from; depth < to; depth++) {
        fprintf(f, "%*ssubgraph cluster_%d {\n%*slabel=\"", 2 * depth + 2, "", (*n_clusters)++, 2 * depth + 4, "");
        write_call(f, block, depth + 1);
        fputs("\";\n", f);
    }
}

typedef struct {
    int from, to;
    bool dashed;
} edge;

static int edge_cmp(const void *pa, const void *pb)
{
    const edge *a = pa, *b = pb;
    if (a->to != b->to) return (a->to > b->to) - (a->to < b->to);
    return (a->from > b->from) - (a->from < b->from);
}

/* Each edge between two drawn nodes once (a call drawn whole gathers its nodes' edges), in
 * graph order; the edges into a backward node dashed. */
static void write_edges(FILE *f, const zn_graph *g, const folding *fo)
{
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++) cap += g->nodes[i].n_src;
    edge *e = zn_malloc((size_t)(cap ? cap : 1) * sizeof *e);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; fo->rep[i] >= 0 && k < g->nodes[i].n_src; k++) {
            const int s = fo->rep[g->nodes[i].src[k]];
            if (s >= 0 && s != fo->rep[i])
                e[n++] = (edge){s, fo->rep[i], (g->nodes[i].flags & ZN_NODE_BACKWARD) != 0};
        }
    qsort(e, (size_t)n, sizeof *e, edge_cmp);
    for (int k = 0; k < n; k++)
        if (k == 0 || edge_cmp(&e[k], &e[k - 1]) != 0)
            fprintf(f, "  n%d -> n%d%s;\n", e[k].from, e[k].to, e[k].dashed ? " [style=dashed]" : "");
    free(e);
}

void zn_graph_write_dot_opts(const zn_graph *g, FILE *f, const zn_dot_opts *opts)
{
    placed *order = zn_malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (visible(&g->nodes[i], opts)) order[n++] = (placed){g->nodes[i].block, i};
    qsort(order, (size_t)n, sizeof *order, placed_cmp);
    const int whole = opts->depth; /* calls this deep are drawn as one node (0: none) */
    folding fo = fold_calls(g, order, n, whole);

    fputs("digraph \"", f);
    write_escaped(f, g->model_name);
    /* newrank: ranks across clusters; without it dot fails ("trouble in init_rank") on graphs
     * with backward nodes, whose edges run back through every block's cluster */
    fputs("\" {\n  rankdir=TB;\n  newrank=true;\n  fontname=\"Helvetica\";\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
          "  label=\"", f);
    write_escaped(f, g->model_name);
    fputs("\";\n", f);
    const char *open = "";
    int depth = 0, n_clusters = 0;
    for (int k = 0; k < n; k++) {
        const int id = order[k].id;
        if (fo.rep[id] != id) continue;
        const int full = path_depth(order[k].block);
        const bool folded = whole && full >= whole;
        const int at = folded ? whole - 1 : full; /* the clusters it is drawn in */
        int keep = shared_depth(open, order[k].block);
        if (keep > at) keep = at;
        if (keep > depth) keep = depth;
        for (; depth > keep; depth--) fprintf(f, "%*s}\n", 2 * depth, "");
        open_clusters(f, order[k].block, keep, at, &n_clusters);
        depth = at;
        open = order[k].block;
        if (folded) write_call_node(f, g, order, n, k, whole, &fo, depth + 1);
        else write_node(f, g, id, depth + 1);
    }
    for (; depth > 0; depth--) fprintf(f, "%*s}\n", 2 * depth, "");

    write_edges(f, g, &fo);
    for (int m = 0; m < g->n_metrics; m++) {
        const zn_metric *met = &g->metrics[m];
        fprintf(f, "  m%d [label=\"", m);
        write_escaped(f, met->name);
        fprintf(f, "\\nmetric %s\", shape=note, fillcolor=\"#fff6c9\"];\n", metric_kinds[met->kind]);
        for (int h = 0; h < met->n_heads; h++)
            fprintf(f, "  n%d -> m%d [style=dotted];\n", fo.rep[met->heads[h]], m);
    }
    fputs("}\n", f);
    free(order);
    free(fo.rep);
    free(fo.out);
}

static void write_pair(FILE *f, const char *key, const int v[2])
{
    if (v[0] == v[1])
        fprintf(f, " %s=%d", key, v[0]);
    else
        fprintf(f, " %s=%dx%d", key, v[0], v[1]);
}

/* The attributes the op reads (zn_op_info.attrs), as key=value. */
static void write_attrs(FILE *f, const zn_node *n)
{
    static const char *const modes[] = {"max", "avg", "nearest"};
    static const char *const reductions[] = {"sum", "mean"};
    static const char *const inits[] = {"none", "fan_in", "zeros", "ones"};
    const zn_attrs *a = &n->attr;
    const unsigned used = zn_ops[n->op].attrs;
    if (used & ZN_ATTR_KERNEL) write_pair(f, "kernel", a->kernel);
    if (used & ZN_ATTR_STRIDE) write_pair(f, "stride", a->stride);
    if (used & ZN_ATTR_PAD) write_pair(f, "pad", a->pad);
    if (used & ZN_ATTR_DILATION) write_pair(f, "dilation", a->dilation);
    if (used & ZN_ATTR_GROUPS) fprintf(f, " groups=%d", a->groups);
    if ((used & ZN_ATTR_OUT) && a->out) fprintf(f, " out=%d", a->out); /* 0: from the weight */
    if (used & ZN_ATTR_AXIS) fprintf(f, " axis=%d", a->axis);
    if (used & ZN_ATTR_FACTOR) write_pair(f, "factor", a->factor);
    if (used & ZN_ATTR_SIZE) write_pair(f, "size", a->size);
    if (used & ZN_ATTR_MODE) fprintf(f, " mode=%s", modes[a->mode]);
    if (used & ZN_ATTR_PERM) {
        fputs(" perm=", f);
        for (int i = 0; i < n->shape.rank; i++) fprintf(f, "%s%d", i ? "," : "", a->perm[i]);
    }
    if (used & ZN_ATTR_SCALE) fprintf(f, " scale=%g", a->scale);
    if (used & ZN_ATTR_EPS) fprintf(f, " eps=%g", a->eps);
    if (used & ZN_ATTR_MOMENTUM) fprintf(f, " momentum=%g", a->momentum);
    if (used & ZN_ATTR_SMOOTHING) fprintf(f, " smoothing=%g", a->smoothing);
    if (used & ZN_ATTR_WEIGHT) fprintf(f, " weight=%g", a->weight);
    if (used & ZN_ATTR_REDUCTION) fprintf(f, " reduction=%s", reductions[a->reduction]);
    if (used & ZN_ATTR_DROP) fprintf(f, " drop=%g stream=%d", a->drop, a->stream);
    if (used & ZN_ATTR_INIT) {
        fprintf(f, " init=%s", inits[a->init]);
        if (a->init == ZN_INIT_FAN_IN) fprintf(f, " fan_in=%d", a->fan_in);
    }
}

static void write_flags(FILE *f, const zn_node *n)
{
    static const struct {
        unsigned flag;
        const char *name;
    } flags[] = {{ZN_NODE_INPUT, "input"}, {ZN_NODE_LABEL, "label"},
                 {ZN_NODE_PARAM, "trainable"}, {ZN_NODE_STATE, "state"},
                 {ZN_NODE_LOSS, "loss"}, {ZN_NODE_BACKWARD, "backward"},
                 {ZN_NODE_GRAD, "grad"}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (n->flags & flags[i].flag) fprintf(f, " %s", flags[i].name);
    if (n->grad_of >= 0) fprintf(f, " grad_of=%%%d", n->grad_of);
    if (n->state_of >= 0) fprintf(f, " state_of=%%%d", n->state_of);
}

void zn_graph_write_text(const zn_graph *g, FILE *f)
{
    char shape[96];
    fprintf(f, "model %s\n", g->model_name);
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        fprintf(f, "%%%d = %s(", i, zn_ops[n->op].name);
        for (int k = 0; k < n->n_src; k++) fprintf(f, "%s%%%d", k ? ", " : "", n->src[k]);
        fprintf(f, ") %s %s", *n->name ? n->name : "_", zn_shape_str(&n->shape, shape, sizeof shape));
        write_attrs(f, n);
        write_flags(f, n);
        if (n->span.file) fprintf(f, "  # %s:%d", n->span.file, n->span.line);
        fputc('\n', f);
    }
    for (int m = 0; m < g->n_metrics; m++) {
        const zn_metric *met = &g->metrics[m];
        fprintf(f, "metric %s %s(", met->name, metric_kinds[met->kind]);
        for (int h = 0; h < met->n_heads; h++) fprintf(f, "%s%%%d", h ? ", " : "", met->heads[h]);
        fputs(")\n", f);
    }
}
