/* plan.c: the memory planner. Liveness is by node order (a tensor lives from the node that
 * defines it to the last node that reads it); arena tensors are placed greedily by size, each at
 * the lowest offset free of every tensor whose lifetime overlaps it (the "greedy by size"
 * strategy of TFLite's arena planner), which stays close to the peak of live bytes. An
 * element-wise op whose source dies at it writes over that source (in place): the two are placed
 * as one tensor living for the union of their lifetimes. */
#include "graph/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

#define ALIGN 64

static size_t align_up(size_t v) { return (v + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* Tensors the caller reads after compute must survive to the end. */
static bool kept_to_end(const zn_graph *g, int id)
{
    const zn_node *n = &g->nodes[id];
    if (n->op == ZN_OP_XENT) return true;
    for (int i = id + 1; i < g->n_nodes; i++)
        if (g->nodes[i].op == ZN_OP_XENT && g->nodes[i].n_src > 0 && g->nodes[i].src[0] == id) return true;
    return false;
}

static zn_region region_of(const zn_node *n)
{
    if (n->flags & (ZN_NODE_PARAM | ZN_NODE_STATE)) return ZN_REGION_PARAMS;
    if (n->flags & ZN_NODE_GRAD) return ZN_REGION_GRADS;
    return ZN_REGION_ARENA;
}

static bool tensor_bytes(const zn_node *n, int batch, size_t *out)
{
    size_t numel = 1;
    for (int d = 0; d < n->shape.rank; d++)
        if (n->shape.dim[d] < 0 || __builtin_mul_overflow(numel, (size_t)n->shape.dim[d], &numel)) return false;
    if (n->shape.batched && __builtin_mul_overflow(numel, (size_t)batch, &numel)) return false;
    return !__builtin_mul_overflow(numel, (size_t)4, out); /* float32 and int32 alike */
}

static const zn_plan *sort_plan;          /* qsort has no context argument in C11 */
static const int *sort_first, *sort_last; /* the lifetimes being placed */

static int span_desc(int x, int y) { return (sort_last[y] - sort_first[y]) - (sort_last[x] - sort_first[x]); }

static int size_desc(int x, int y)
{
    size_t bx = sort_plan->bytes[x], by = sort_plan->bytes[y];
    return bx < by ? 1 : -(bx > by);
}

/* Largest first (TFLite's greedy by size); ties: longest-lived, then earliest (deterministic). */
static int by_size_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    int c = size_desc(x, y);
    if (!c) c = span_desc(x, y);
    return c ? c : x - y;
}

/* Longest-lived first; ties: largest, then earliest. */
static int by_span_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    int c = span_desc(x, y);
    if (!c) c = size_desc(x, y);
    return c ? c : x - y;
}

/* Earliest-born first (the forward pass's activations, kept for its backward pass, then stack up
 * in the order they die in reverse); ties: longest-lived, then largest. */
static int by_first(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    int c = sort_first[x] - sort_first[y];
    if (!c) c = span_desc(x, y);
    if (!c) c = size_desc(x, y);
    return c ? c : x - y;
}

/* Largest first; ties: the latest to die first. Same-size tensors that follow one another, each
 * live with the next (a recomputed conv output, its batch norm's output, the gradient, the conv
 * recomputed again: memory.md), then alternate between two places instead of taking a third:
 * each finds free the place that its successor's successor holds. */
static int by_size_last(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    int c = size_desc(x, y);
    if (!c) c = sort_last[y] - sort_last[x];
    if (!c) c = span_desc(x, y);
    return c ? c : x - y;
}

static int by_offset(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t ox = sort_plan->offset[x], oy = sort_plan->offset[y];
    return ox < oy ? -1 : ox > oy;
}

static bool lifetimes_overlap(const int *first, const int *last, int a, int b)
{
    return first[a] <= last[b] && first[b] <= last[a];
}

/* Whether node id may write in place over its source src: both arena tensors of one size, src
 * neither fed nor read by the caller, and id its last reader (so nothing reads src's old values
 * after id has overwritten them). Needs p->last complete. */
static bool may_alias(const zn_plan *p, const zn_graph *g, int id, int src)
{
    return zn_ops[g->nodes[id].op].in_place && p->region[id] == ZN_REGION_ARENA &&
           p->region[src] == ZN_REGION_ARENA && g->nodes[src].op != ZN_OP_INPUT &&
           p->bytes[src] == p->bytes[id] && p->last[src] == id && !kept_to_end(g, src);
}

/* Places the arena tensors (ids in order[], n of them), each live from first[] to last[], in the
 * order cmp gives, each at the lowest offset free of the placed ones it meets; returns the size. */
static size_t place_in_order(zn_plan *p, const int *first, const int *last, int *order, int n,
                             int (*cmp)(const void *, const void *))
{
    sort_plan = p;
    sort_first = first;
    sort_last = last;
    qsort(order, n, sizeof *order, cmp);
    int *placed = zn_malloc(sizeof *placed * (n + 1));
    int *live = zn_malloc(sizeof *live * (n + 1));
    int n_placed = 0;
    size_t peak = 0;
    for (int k = 0; k < n; k++) {
        int t = order[k];
        int n_live = 0;
        for (int j = 0; j < n_placed; j++)
            if (lifetimes_overlap(first, last, t, placed[j])) live[n_live++] = placed[j];
        qsort(live, n_live, sizeof *live, by_offset);
        size_t at = 0;
        for (int j = 0; j < n_live; j++) {
            int o = live[j];
            if (p->offset[o] >= at + p->bytes[t]) break; /* the gap before o fits */
            size_t end = align_up(p->offset[o] + p->bytes[o]);
            if (end > at) at = end;
        }
        p->offset[t] = at;
        if (at + p->bytes[t] > peak) peak = at + p->bytes[t];
        placed[n_placed++] = t;
    }
    free(placed);
    free(live);
    return align_up(peak);
}

/* Places the arena tensors in four orders and keeps the smallest arena (the first on a tie): by
 * size alone, a long-lived small tensor (a residual branch, an in-place chain) can land above
 * every large one it meets. Returns the arena's size. */
static size_t place_arena(zn_plan *p, const int *first, const int *last, int *order, int n)
{
    int (*const cmps[])(const void *, const void *) = {by_size_desc, by_span_desc, by_first, by_size_last};
    size_t *best = zn_malloc(sizeof *best * (p->n_nodes + 1)), best_size = 0;
    for (int k = 0; k < (int)(sizeof cmps / sizeof cmps[0]); k++) {
        size_t size = place_in_order(p, first, last, order, n, cmps[k]);
        if (k && size >= best_size) continue;
        best_size = size;
        memcpy(best, p->offset, sizeof *best * p->n_nodes);
    }
    memcpy(p->offset, best, sizeof *best * p->n_nodes);
    free(best);
    return best_size;
}

bool zn_plan_make(zn_plan *p, const zn_graph *g, int batch, zn_workspace_fn ws, void *ws_ctx,
                  char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    int n = g->n_nodes;
    p->batch = batch;
    p->n_nodes = n;
    p->region = zn_calloc(n + 1, sizeof *p->region);
    p->offset = zn_calloc(n + 1, sizeof *p->offset);
    p->bytes = zn_calloc(n + 1, sizeof *p->bytes);
    p->first = zn_calloc(n + 1, sizeof *p->first);
    p->last = zn_calloc(n + 1, sizeof *p->last);
    p->alias = zn_calloc(n + 1, sizeof *p->alias);
    int *arena = zn_malloc(sizeof *arena * (n + 1));
    int *root = zn_malloc(sizeof *root * (n + 1));      /* per node: the first tensor of its alias chain */
    int *span_last = zn_malloc(sizeof *span_last * (n + 1)); /* per chain root: the chain's last reader */
    int n_arena = 0;
    for (int i = 0; i < n; i++) {
        const zn_node *node = &g->nodes[i];
        if (!tensor_bytes(node, batch, &p->bytes[i])) {
            snprintf(err, errlen, "node '%s': its size at batch %d overflows", node->name, batch);
            free(arena);
            free(root);
            free(span_last);
            zn_plan_free(p);
            return false;
        }
        p->region[i] = region_of(node);
        p->first[i] = node->op == ZN_OP_INPUT ? 0 : i;
        p->last[i] = kept_to_end(g, i) ? n - 1 : p->first[i];
        for (int s = 0; s < node->n_src; s++) {
            int src = node->src[s];
            if (p->last[src] < i) p->last[src] = i;
        }
        if (ws) {
            size_t w = ws(ws_ctx, g, i, batch);
            if (w > p->workspace_bytes) p->workspace_bytes = align_up(w);
        }
    }
    /* a chain x -> y (in place) -> z (in place) is one placement, live from x's first to its last
     * member's last use; each member is dead once the next is written */
    for (int i = 0; i < n; i++) {
        p->alias[i] = -1;
        for (int s = 0; s < g->nodes[i].n_src && p->alias[i] < 0; s++)
            if (may_alias(p, g, i, g->nodes[i].src[s])) p->alias[i] = g->nodes[i].src[s];
        root[i] = p->alias[i] < 0 ? i : root[p->alias[i]];
        span_last[i] = p->last[i];
        if (span_last[root[i]] < p->last[i]) span_last[root[i]] = p->last[i];
    }
    for (int i = 0; i < n; i++) {
        if (p->region[i] == ZN_REGION_ARENA) {
            if (root[i] == i) arena[n_arena++] = i;
            p->naive_bytes += align_up(p->bytes[i]);
        } else {
            p->offset[i] = p->region_bytes[p->region[i]];
            p->region_bytes[p->region[i]] += align_up(p->bytes[i]);
        }
    }
    p->region_bytes[ZN_REGION_ARENA] = place_arena(p, p->first, span_last, arena, n_arena);
    for (int i = 0; i < n; i++) p->offset[i] = p->offset[root[i]];
    /* only a plan with parameter gradients (a training step) has an optimizer to keep state for */
    p->region_bytes[ZN_REGION_OPTIM] = p->region_bytes[ZN_REGION_GRADS] ? 2 * p->region_bytes[ZN_REGION_PARAMS] : 0;
    free(arena);
    free(root);
    free(span_last);
    return true;
}

void zn_plan_free(zn_plan *p)
{
    free(p->region);
    free(p->offset);
    free(p->bytes);
    free(p->first);
    free(p->last);
    free(p->alias);
    memset(p, 0, sizeof *p);
}

void zn_plan_separate(zn_plan *p)
{
    size_t at = 0;
    for (int i = 0; i < p->n_nodes; i++) {
        p->alias[i] = -1;
        if (p->region[i] != ZN_REGION_ARENA) continue;
        p->offset[i] = at;
        p->first[i] = 0;
        p->last[i] = p->n_nodes - 1;
        at += align_up(p->bytes[i]);
    }
    p->region_bytes[ZN_REGION_ARENA] = at;
}

size_t zn_plan_total(const zn_plan *p)
{
    size_t t = p->workspace_bytes;
    for (int r = 0; r < ZN_REGION_COUNT; r++) t += p->region_bytes[r];
    return t;
}

static bool reads(const zn_graph *g, int id, int src)
{
    for (int s = 0; s < g->nodes[id].n_src; s++)
        if (g->nodes[id].src[s] == src) return true;
    return false;
}

/* Whether b writes in place over a (a < b) as zn_plan_make allows: b's recorded alias, one of
 * its sources, at the same offset, under the rule of may_alias, and (from the graph itself, not
 * the plan's liveness) read by no node after b. */
static bool sanctioned_alias(const zn_plan *p, const zn_graph *g, int a, int b)
{
    if (p->alias[b] != a || p->offset[a] != p->offset[b] || !may_alias(p, g, b, a) || !reads(g, b, a))
        return false;
    for (int k = b + 1; k < g->n_nodes; k++)
        if (reads(g, k, a)) return false;
    return true;
}

bool zn_plan_verify(const zn_plan *p, const zn_graph *g, char *err, size_t errlen)
{
    for (int a = 0; a < p->n_nodes; a++) {
        if (p->offset[a] + p->bytes[a] > p->region_bytes[p->region[a]]) {
            snprintf(err, errlen, "'%s' ends at %zu, past its region's %zu bytes", g->nodes[a].name,
                     p->offset[a] + p->bytes[a], p->region_bytes[p->region[a]]);
            return false;
        }
        for (int b = a + 1; b < p->n_nodes; b++) {
            if (p->region[a] != p->region[b] || !p->bytes[a] || !p->bytes[b]) continue;
            bool mem = p->offset[a] < p->offset[b] + p->bytes[b] && p->offset[b] < p->offset[a] + p->bytes[a];
            bool time = p->region[a] != ZN_REGION_ARENA || lifetimes_overlap(p->first, p->last, a, b);
            if (mem && time && !sanctioned_alias(p, g, a, b)) {
                snprintf(err, errlen, "'%s' [%zu, +%zu) overlaps '%s' [%zu, +%zu) while both are live",
                         g->nodes[a].name, p->offset[a], p->bytes[a], g->nodes[b].name, p->offset[b], p->bytes[b]);
                return false;
            }
        }
    }
    return true;
}
