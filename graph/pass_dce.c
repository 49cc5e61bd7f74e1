/* pass_dce.c: dead-node elimination. A node is live when a loss head, a metric or the data feed
 * (an INPUT node) depends on it; batch-norm state keeps the node that updates it live. */
#include "graph/passes.h"
#include "graph/util.h"

#include <stdlib.h>

bool zn_pass_dce(zn_graph *g, char *err, size_t errlen)
{
    bool *live = zn_calloc((size_t)g->n_nodes + 1, sizeof *live);
    int *stack = zn_malloc(((size_t)g->n_nodes + 1) * sizeof *stack);
    int top = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == ZN_OP_INPUT || (g->nodes[i].flags & ZN_NODE_LOSS)) live[i] = true, stack[top++] = i;
    for (int m = 0; m < g->n_metrics; m++)
        for (int k = 0; k < g->metrics[m].n_heads; k++) {
            int h = g->metrics[m].heads[k];
            if (!live[h]) live[h] = true, stack[top++] = h;
        }
    /* every node enters the stack at most once, so it never holds more than n_nodes */
    while (top > 0) {
        const zn_node *n = &g->nodes[stack[--top]];
        for (int k = 0; k <= n->n_src; k++) {
            int s = k < n->n_src ? n->src[k] : n->state_of;
            if (s >= 0 && !live[s]) live[s] = true, stack[top++] = s;
        }
    }
    bool ok = zn_pass_rebuild(g, live, err, errlen);
    free(stack);
    free(live);
    return ok;
}
