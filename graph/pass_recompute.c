/* pass_recompute.c: recomputation of cheap segments in the backward pass (a training pass). A
 * segment starts at a stitch or concat and follows the one cheap reader of each node (a CHEAP op
 * of graph/op_list.h: batch norm, scale, the element-wise ops; a BUDGET op, the conv, too while
 * the model's recomputed convs stay cheap, or the ones a memory budget chooses: graph/budget.c,
 * which may also let any node head a segment as a kept checkpoint, and split segments at the
 * recomputed convs' inputs with pooling recomputed, a SPLIT op, and a copy per backward reader).
 * Backward nodes that read a segment node read a copy instead, emitted right before the first of
 * them, so the forward tensors die in the forward pass. docs/passes.md gives the rules. */
#include "graph/util.h"
#include "graph/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Recomputed convs together cost at most this share of the forward graph's multiply-adds. */
#define CONV_BUDGET 8

typedef struct {
    zn_graph *g;
    int n_fwd;        /* forward nodes [0, n_fwd); backward ones follow */
    int *next;        /* per forward node: its one cheap reader (src[0]), -1 none, -2 several */
    int *first_bwd;   /* per forward node: its first backward reader, or -1 */
    bool *head;       /* per forward node: it heads a segment (a stitch or concat, or a kept node) */
    bool *kept;       /* per forward node: a head whose own value is kept (not copied): the copies
                         start at its reader (a memory budget's checkpoints, graph/budget.c) */
    bool *cut;        /* per forward node: the input of a recomputed conv in a split choice: kept,
                         and no chain runs through it */
    int *made;        /* per forward node: its copy in the chain copy_chain made last */
} ctx;

/* Whether the choice ch recomputes node id: CHEAP ops, the convs it names, SPLIT ops when split. */
static bool is_cheap(const zn_graph *g, int id, const zn_recompute_choice *ch)
{
    zn_recompute r = zn_ops[g->nodes[id].op].recompute;
    return r == ZN_RECOMPUTE_CHEAP || (ch->convs && ch->convs[id] && r == ZN_RECOMPUTE_BUDGET) ||
           (ch->split && r == ZN_RECOMPUTE_SPLIT);
}

static int64_t macs(const zn_graph *g, int id)
{
    return zn_ops[g->nodes[id].op].macs ? zn_ops[g->nodes[id].op].macs(g, id) : 0;
}

/* Finds each node's one cheap reader, each node's first backward reader and, in a split choice,
 * the recomputed convs' inputs. */
static void link(ctx *c, const zn_recompute_choice *ch)
{
    const zn_graph *g = c->g;
    for (int i = 0; i < c->n_fwd; i++) c->next[i] = c->first_bwd[i] = -1, c->cut[i] = false;
    for (int j = 0; j < g->n_nodes; j++) {
        const zn_node *n = &g->nodes[j];
        if (j >= c->n_fwd) {
            for (int k = 0; k < n->n_src; k++)
                if (n->src[k] < c->n_fwd && c->first_bwd[n->src[k]] < 0) c->first_bwd[n->src[k]] = j;
        } else if (n->n_src > 0 && is_cheap(g, j, ch)) {
            int s = n->src[0];
            c->next[s] = c->next[s] == -1 ? j : -2;
            c->cut[s] |= ch->split && zn_ops[n->op].recompute == ZN_RECOMPUTE_BUDGET;
        }
    }
}

/* The node after x in a chain: its one cheap reader, unless that starts a split segment (-1). */
static int step(const ctx *c, int x)
{
    int y = c->next[x];
    return y >= 0 && !c->cut[y] ? y : -1;
}

/* The first node of segment s that is copied: s itself, or its reader when s is kept (-1: none). */
static int chain_start(const ctx *c, int s)
{
    return c->kept[s] ? step(c, s) : s;
}

/* The segment headed by s, as its last node worth a copy (the last one a backward node reads), or
 * -1 when none is read by the backward pass. */
static int segment_end(const ctx *c, int s)
{
    int end = -1;
    for (int x = chain_start(c, s); x >= 0; x = step(c, x))
        if (c->first_bwd[x] >= 0) end = x;
    return end;
}

/* The budgeted ops (convs) that the segments copy, in node order, into ids (NULL: only counted);
 * *total gets their multiply-adds. */
static int segment_convs(const ctx *c, int *ids, int64_t *total)
{
    int n = 0;
    *total = 0;
    for (int s = 0; s < c->n_fwd; s++) {
        int end = c->head[s] ? segment_end(c, s) : -1;
        for (int x = chain_start(c, s); end >= 0 && x >= 0; x = x == end ? -1 : step(c, x))
            if (zn_ops[c->g->nodes[x].op].recompute == ZN_RECOMPUTE_BUDGET) {
                *total += macs(c->g, x);
                if (ids) ids[n] = x;
                n++;
            }
    }
    return n;
}

/* Marks the segment heads: stitch and concat nodes whose segment has a node the backward reads
 * and, with kept heads, every other node with a cheap reader whose chain has one, not already in
 * an earlier segment's copies (so no node is copied twice); in a split choice, every recomputed
 * conv's input too. */
static int find_segments(ctx *c, const zn_recompute_choice *ch)
{
    link(c, ch);
    bool kept_heads = ch->kept_heads || ch->split;
    bool *copied = zn_calloc(c->n_fwd + 1, sizeof *copied);
    int found = 0;
    for (int s = 0; s < c->n_fwd; s++) {
        zn_op op = c->g->nodes[s].op;
        bool moves = op == ZN_OP_STITCH || op == ZN_OP_CONCAT;
        c->kept[s] = (c->cut[s] || (!moves && kept_heads && !copied[s])) && c->next[s] >= 0;
        int end = moves || c->kept[s] ? segment_end(c, s) : -1;
        c->head[s] = end >= 0;
        c->kept[s] &= c->head[s];
        for (int x = chain_start(c, s); end >= 0 && x >= 0; x = x == end ? -1 : step(c, x)) copied[x] = true;
        found += c->head[s];
    }
    free(copied);
    return found;
}

/* The sources of a copy of concat node s into srcbuf (NULL: only counts them): a source that is
 * itself a concat on the same axis is replaced by its own sources, recursively, so the copy reads
 * only the leaves (DenseNet's layer outputs) and the inner concats' outputs may die. */
static int flat_sources(const zn_graph *g, int s, int *srcbuf)
{
    int n = 0;
    for (int k = 0; k < g->nodes[s].n_src; k++) {
        int x = g->nodes[s].src[k];
        const zn_node *xn = &g->nodes[x];
        if (xn->op == ZN_OP_CONCAT && xn->attr.axis == g->nodes[s].attr.axis)
            n += flat_sources(g, x, srcbuf ? srcbuf + n : NULL);
        else if (srcbuf)
            srcbuf[n++] = x;
        else
            n++;
    }
    return n;
}

/* A copy of forward node x reading src (n_src of them), appended to g: the same op, attributes,
 * block and span, its name + " (recompute)", flagged backward; a batch norm's copy keeps all of
 * the old running statistics (momentum 1), which the forward node has already updated. */
static int emit_copy(zn_graph *g, int x, const int *src, int n_src)
{
    const zn_node *n = &g->nodes[x];
    zn_attrs a = n->attr;
    if (zn_ops[n->op].attrs & ZN_ATTR_MOMENTUM) a.momentum = 1.0f; /* batch norm, fused or not */
    size_t len = strlen(n->name) + sizeof " (recompute)";
    char *name = zn_calloc(len, 1);
    snprintf(name, len, "%s (recompute)", n->name);
    zn_shape shape = n->shape;
    unsigned flags = n->flags | ZN_NODE_BACKWARD;
    int id = zn_graph_add(g, n->op, src, n_src, &a, name, n->block, n->span);
    free(name);
    g->nodes[id].shape = shape;
    g->nodes[id].flags = flags;
    return id;
}

/* A copy of forward node x (emit_copy) reading prev in place of its first source, or, when prev
 * is -1, its own sources (a concat's flattened: flat_sources). */
static int copy_node(zn_graph *g, int x, int prev)
{
    bool flat = prev < 0 && g->nodes[x].op == ZN_OP_CONCAT;
    int n_src = flat ? flat_sources(g, x, NULL) : g->nodes[x].n_src;
    int *src = zn_calloc(n_src, sizeof *src);
    if (flat) flat_sources(g, x, src);
    else memcpy(src, g->nodes[x].src, sizeof *src * n_src);
    if (prev >= 0) src[0] = prev;
    int id = emit_copy(g, x, src, n_src);
    free(src);
    return id;
}

/* Copies with consecutive ids lo..hi, to be placed right before backward node `at`. */
typedef struct {
    int at, lo, hi;
} group;

/* Emits copies of segment s's chain from its start to node last (made[x] for each), as a group to
 * go right before at (set by the caller). */
static group copy_chain(ctx *c, int s, int last)
{
    group ch = {-1, c->g->n_nodes, -1};
    for (int x = chain_start(c, s), prev = c->kept[s] ? s : -1;; x = step(c, x)) {
        prev = ch.hi = c->made[x] = copy_node(c->g, x, prev);
        if (x == last) return ch;
    }
}

/* Emits the copies of segment s into groups (at most two) and sets copy[] for the backward
 * readers: the chain s..end right before the first backward reader of a node after s, and, for
 * s's own backward readers, a second copy of s right before the first of them, so that the
 * chain's copy of s dies as soon as the next copy is made (s moves data and multiplies nothing).
 * Returns the number of groups. */
static int copy_segment(ctx *c, int s, int *copy, group *out)
{
    int end = segment_end(c, s), n_groups = 0;
    if (end != s) {
        group ch = copy_chain(c, s, end);
        ch.at = c->g->n_nodes;
        for (int x = chain_start(c, s); x >= 0; x = x == end ? -1 : step(c, x))
            if (x != s) {
                copy[x] = c->made[x];
                if (c->first_bwd[x] >= 0 && c->first_bwd[x] < ch.at) ch.at = c->first_bwd[x];
            }
        out[n_groups++] = ch;
    }
    if (!c->kept[s] && c->first_bwd[s] >= 0) {
        copy[s] = copy_node(c->g, s, -1);
        out[n_groups++] = (group){c->first_bwd[s], copy[s], copy[s]};
    }
    return n_groups;
}

/* A per-reader choice's copies of segment s: for each node of the chain that the backward pass
 * reads, a copy of the chain from its start to the last node with the same first backward reader, right
 * before that reader, read by those nodes' backward readers. A copy so lives only until its own
 * readers: the price is recomputing the start of the chain once per group. Returns the number of
 * groups. */
static int copy_split(ctx *c, int s, int *copy, group *out)
{
    int end = segment_end(c, s), n_groups = 0;
    for (int x = chain_start(c, s); x >= 0; x = x == end ? -1 : step(c, x)) {
        int at = c->first_bwd[x], last = x;
        if (at < 0 || copy[x] >= 0) continue;
        for (int y = x; y >= 0; y = y == end ? -1 : step(c, y))
            if (c->first_bwd[y] == at) last = y;
        out[n_groups] = copy_chain(c, s, last);
        out[n_groups++].at = at;
        for (int y = x; y >= 0; y = y == last ? -1 : step(c, y))
            if (c->first_bwd[y] == at) copy[y] = c->made[y];
    }
    return n_groups;
}

static int forward_nodes(const zn_graph *g)
{
    int n_fwd = 0;
    while (n_fwd < g->n_nodes && !(g->nodes[n_fwd].flags & ZN_NODE_BACKWARD)) n_fwd++;
    return n_fwd;
}

static ctx ctx_new(zn_graph *g)
{
    int n_fwd = forward_nodes(g);
    return (ctx){g,
                 n_fwd,
                 zn_calloc(n_fwd + 1, sizeof(int)),
                 zn_calloc(n_fwd + 1, sizeof(int)),
                 zn_calloc(n_fwd + 1, sizeof(bool)),
                 zn_calloc(n_fwd + 1, sizeof(bool)),
                 zn_calloc(n_fwd + 1, sizeof(bool)),
                 zn_calloc(n_fwd + 1, sizeof(int))};
}

static void ctx_free(ctx *c)
{
    free(c->next), free(c->first_bwd), free(c->head), free(c->kept), free(c->cut), free(c->made);
}

/* Every conv marked (all[i] for each forward node), for the rule and for the candidates. */
static bool *all_convs(int n_fwd)
{
    bool *all = zn_calloc(n_fwd + 1, sizeof *all);
    for (int i = 0; i < n_fwd; i++) all[i] = true;
    return all;
}

int zn_recompute_candidates(const zn_graph *g, int *ids)
{
    ctx c = ctx_new((zn_graph *)g);
    bool *all = all_convs(c.n_fwd);
    int64_t total;
    find_segments(&c, &(zn_recompute_choice){all, true, false, false});
    int n = segment_convs(&c, ids, &total);
    free(all);
    ctx_free(&c);
    return n;
}

/* The choice of the running zn_pass_recompute_convs (a pass takes no context). */
static const zn_recompute_choice *chosen;

/* Whether segment s gets a copy per reader: in a per-reader choice, unless its chain starts with a
 * conv that writes no more than it reads. Such a conv's copy is no larger than the kept input it
 * is made from, so keeping it for its batch norm's backward costs little, and a second copy
 * would repeat all of its multiply-adds; a widening conv's copy is the largest tensor near it. */
static bool per_reader(const ctx *c, int s)
{
    int x = chain_start(c, s);
    const zn_node *n = &c->g->nodes[x];
    return chosen->per_reader && (zn_ops[n->op].recompute != ZN_RECOMPUTE_BUDGET ||
                                  zn_shape_numel(&n->shape) > zn_shape_numel(&c->g->nodes[n->src[0]].shape));
}

/* The pass on g itself with the chosen choice (zn_pass_recompute_convs runs it on a copy). */
static bool recompute(zn_graph *g, char *err, size_t errlen)
{
    ctx c = ctx_new(g);
    int n = g->n_nodes, n_fwd = c.n_fwd;
    int n_seg = find_segments(&c, chosen);
    int *copy = zn_calloc(n_fwd, sizeof *copy), n_groups = 0;
    group *groups = zn_calloc(2 * (size_t)n_fwd + 2, sizeof *groups); /* one per copied node, a head's second */
    for (int i = 0; i < n_fwd; i++) copy[i] = -1;
    for (int s = 0; s < n_fwd; s++)
        if (c.head[s])
            n_groups += (per_reader(&c, s) ? copy_split : copy_segment)(&c, s, copy, groups + n_groups);
    for (int b = n_fwd; b < n; b++)
        for (int k = 0; k < g->nodes[b].n_src; k++) {
            int x = g->nodes[b].src[k];
            if (x < n_fwd && copy[x] >= 0) g->nodes[b].src[k] = copy[x];
        }
    /* the new order: forward nodes, then each backward node preceded by the copies it waits for */
    int *order = zn_calloc(g->n_nodes, sizeof *order), len = 0;
    for (int i = 0; i < n_fwd; i++) order[len++] = i;
    for (int b = n_fwd; b < n; b++) {
        for (int k = 0; k < n_groups; k++)
            for (int id = groups[k].lo; groups[k].at == b && id <= groups[k].hi; id++) order[len++] = id;
        order[len++] = b;
    }
    bool ok = !n_seg || zn_pass_rebuild_order(g, order, len, err, errlen);
    free(order), free(groups), free(copy);
    ctx_free(&c);
    return ok;
}

bool zn_pass_recompute_convs(zn_graph *g, const zn_recompute_choice *choice, char *err, size_t errlen)
{
    chosen = choice;
    return zn_pass_on_copy(g, recompute, err, errlen);
}

/* The fixed rule: every conv a segment reaches while they together stay within CONV_BUDGET's
 * share of the forward multiply-adds, else none. */
bool zn_pass_recompute(zn_graph *g, char *err, size_t errlen)
{
    ctx c = ctx_new(g);
    bool *all = all_convs(c.n_fwd);
    int64_t fwd_macs = 0, conv_macs;
    for (int i = 0; i < c.n_fwd; i++) fwd_macs += macs(g, i);
    find_segments(&c, &(zn_recompute_choice){all, false, false, false});
    segment_convs(&c, NULL, &conv_macs);
    ctx_free(&c);
    zn_recompute_choice choice = {conv_macs * CONV_BUDGET > fwd_macs ? NULL : all, false, false, false};
    bool ok = zn_pass_recompute_convs(g, &choice, err, errlen);
    free(all);
    return ok;
}
