/* pass_sink.c: a training pass that moves backward nodes later. Autodiff emits each gradient when
 * its rule runs, often long before anything reads it (a head's gradient into a backbone block
 * waits for the backward pass of everything after that block). Each backward node, last to
 * first, moves to just before its first reader when that lowers the bytes live over the steps it
 * crosses without raising their peak (its sources may live longer: the move weighs both). */
#include "graph/util.h"
#include "graph/passes.h"

#include <stdlib.h>

typedef struct {
    const zn_graph *g;
    int n;
    int *order, *pos;   /* the schedule and each node's place in it */
    int *rd, *rd_start; /* readers of node i: rd[rd_start[i] .. rd_start[i + 1]) */
    int64_t *live;      /* per place: elements per example live there (n + 1 entries) */
} sched;

/* Elements per example of a tensor the arena holds; 0 for parameters, state and gradients (their
 * own regions) and for unbatched tensors, which do not grow with the batch. */
static int64_t weight(const zn_node *n)
{
    if ((n->flags & (ZN_NODE_PARAM | ZN_NODE_STATE | ZN_NODE_GRAD)) || !n->shape.batched) return 0;
    return zn_shape_numel(&n->shape);
}

/* live[] for the current schedule: a tensor lives from its node's place to its last reader's
 * (to the end when nothing reads it: losses, gradients, what the runtime reads). */
static void fill_live(sched *s)
{
    for (int p = 0; p <= s->n; p++) s->live[p] = 0;
    for (int i = 0; i < s->n; i++) {
        int64_t w = weight(&s->g->nodes[i]);
        int last = s->rd_start[i] == s->rd_start[i + 1] ? s->n - 1 : s->pos[i];
        for (int k = s->rd_start[i]; k < s->rd_start[i + 1]; k++)
            if (s->pos[s->rd[k]] > last) last = s->pos[s->rd[k]];
        s->live[s->pos[i]] += w;
        s->live[last + 1] -= w;
    }
    for (int p = 1; p <= s->n; p++) s->live[p] += s->live[p - 1];
}

/* The peak and the sum of live[] over places [a, b]. */
static void window(const sched *s, int a, int b, int64_t *peak, int64_t *sum)
{
    *peak = *sum = 0;
    for (int p = a; p <= b; p++) {
        if (s->live[p] > *peak) *peak = s->live[p];
        *sum += s->live[p];
    }
}

/* Moves the node at place `from` to place `to`, shifting the nodes in between by one. */
static void move(sched *s, int from, int to)
{
    int v = s->order[from], step = to > from ? 1 : -1;
    for (int p = from; p != to; p += step) {
        s->order[p] = s->order[p + step];
        s->pos[s->order[p]] = p;
    }
    s->order[to] = v;
    s->pos[v] = to;
}

/* Moves v to just before its first reader if that pays (see the top of the file). */
static void try_sink(sched *s, int v)
{
    int first = s->n, from = s->pos[v];
    for (int k = s->rd_start[v]; k < s->rd_start[v + 1]; k++)
        if (s->pos[s->rd[k]] < first) first = s->pos[s->rd[k]];
    int to = first - 1;
    if (first == s->n || to <= from) return;
    int64_t peak0, sum0, peak1, sum1;
    fill_live(s);
    window(s, from, to, &peak0, &sum0);
    move(s, from, to);
    fill_live(s);
    window(s, from, to, &peak1, &sum1);
    if (peak1 > peak0 || (peak1 == peak0 && sum1 >= sum0)) move(s, to, from);
}

bool zn_pass_sink(zn_graph *g, char *err, size_t errlen)
{
    const int n = g->n_nodes;
    sched s = {g, n, zn_calloc(n, sizeof(int)), zn_calloc(n, sizeof(int)), NULL, zn_calloc(n + 1, sizeof(int)),
               zn_calloc(n + 1, sizeof(int64_t))};
    for (int i = 0; i < n; i++) {
        s.order[i] = s.pos[i] = i;
        for (int k = 0; k < g->nodes[i].n_src; k++) s.rd_start[g->nodes[i].src[k] + 1]++;
    }
    for (int i = 0; i < n; i++) s.rd_start[i + 1] += s.rd_start[i];
    s.rd = zn_calloc(s.rd_start[n], sizeof(int));
    int *fill = zn_calloc(n, sizeof(int));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_src; k++) {
            int src = g->nodes[i].src[k];
            s.rd[s.rd_start[src] + fill[src]++] = i;
        }
    /* last to first, so every reader of v is already where it stays */
    for (int v = n - 1; v >= 0 && (g->nodes[v].flags & ZN_NODE_BACKWARD); v--) try_sink(&s, v);
    bool ok = zn_pass_rebuild_order(g, s.order, n, err, errlen);
    free(fill), free(s.rd), free(s.rd_start), free(s.pos), free(s.order), free(s.live);
    return ok;
}
