/* plan.c: the memory planner. Liveness is by node order (a tensor lives from the node that
 * defines it to the last node that reads it); arena tensors are placed greedily by size, each at
 * the lowest offset free of every tensor whose lifetime overlaps it (the "greedy by size"
 * strategy of TFLite's arena planner), which stays close to the peak of live bytes. */
#include "graph/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const zn_plan *sort_plan; /* qsort has no context argument in C11 */

static int by_size_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t bx = sort_plan->bytes[x], by = sort_plan->bytes[y];
    if (bx != by) return bx < by ? 1 : -1;
    return x - y; /* ties: earlier first, so the plan is deterministic */
}

static int by_offset(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t ox = sort_plan->offset[x], oy = sort_plan->offset[y];
    return ox < oy ? -1 : ox > oy;
}

static bool lifetimes_overlap(const zn_plan *p, int a, int b)
{
    return p->first[a] <= p->last[b] && p->first[b] <= p->last[a];
}

/* Places the arena tensors (ids in order[], n of them) and returns the arena's size. */
static size_t place_arena(zn_plan *p, int *order, int n)
{
    sort_plan = p;
    qsort(order, n, sizeof *order, by_size_desc);
    int *placed = malloc(sizeof *placed * (n + 1));
    int *live = malloc(sizeof *live * (n + 1));
    int n_placed = 0;
    size_t peak = 0;
    for (int k = 0; k < n; k++) {
        int t = order[k];
        int n_live = 0;
        for (int j = 0; j < n_placed; j++)
            if (lifetimes_overlap(p, t, placed[j])) live[n_live++] = placed[j];
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

bool zn_plan_make(zn_plan *p, const zn_graph *g, int batch, zn_workspace_fn ws, void *ws_ctx,
                  char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    int n = g->n_nodes;
    p->batch = batch;
    p->n_nodes = n;
    p->region = calloc(n + 1, sizeof *p->region);
    p->offset = calloc(n + 1, sizeof *p->offset);
    p->bytes = calloc(n + 1, sizeof *p->bytes);
    p->first = calloc(n + 1, sizeof *p->first);
    p->last = calloc(n + 1, sizeof *p->last);
    int *arena = malloc(sizeof *arena * (n + 1));
    int n_arena = 0;
    for (int i = 0; i < n; i++) {
        const zn_node *node = &g->nodes[i];
        if (!tensor_bytes(node, batch, &p->bytes[i])) {
            snprintf(err, errlen, "node '%s': its size at batch %d overflows", node->name, batch);
            free(arena);
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
    for (int i = 0; i < n; i++) {
        if (p->region[i] == ZN_REGION_ARENA) {
            arena[n_arena++] = i;
            p->naive_bytes += align_up(p->bytes[i]);
        } else {
            p->offset[i] = p->region_bytes[p->region[i]];
            p->region_bytes[p->region[i]] += align_up(p->bytes[i]);
        }
    }
    p->region_bytes[ZN_REGION_ARENA] = place_arena(p, arena, n_arena);
    p->region_bytes[ZN_REGION_OPTIM] = 2 * p->region_bytes[ZN_REGION_PARAMS];
    free(arena);
    return true;
}

void zn_plan_free(zn_plan *p)
{
    free(p->region);
    free(p->offset);
    free(p->bytes);
    free(p->first);
    free(p->last);
    memset(p, 0, sizeof *p);
}

size_t zn_plan_total(const zn_plan *p)
{
    size_t t = p->workspace_bytes;
    for (int r = 0; r < ZN_REGION_COUNT; r++) t += p->region_bytes[r];
    return t;
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
            bool time = p->region[a] != ZN_REGION_ARENA || lifetimes_overlap(p, a, b);
            if (mem && time) {
                snprintf(err, errlen, "'%s' [%zu, +%zu) overlaps '%s' [%zu, +%zu) while both are live",
                         g->nodes[a].name, p->offset[a], p->bytes[a], g->nodes[b].name, p->offset[b], p->bytes[b]);
                return false;
            }
        }
    }
    return true;
}
