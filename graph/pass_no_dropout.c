/* pass_no_dropout.c: dropout is the identity when nothing trains, so an inference graph drops its
 * dropout nodes and their readers read the dropout's input: no copy of the tensor, one tensor
 * fewer in the plan, and a conv -> dropout -> batchnorm chain becomes one that fold_bn folds. */
#include "graph/util.h"
#include "graph/passes.h"

#include <stdlib.h>

/* The node a reader of id reads once the dropouts before it are gone. */
static int past_dropouts(const zn_graph *g, int id)
{
    while (g->nodes[id].op == ZN_OP_DROPOUT) id = g->nodes[id].src[0];
    return id;
}

/* The pass on g itself: it edits sources in place (zn_pass_no_dropout runs it on a copy). */
static bool no_dropout(zn_graph *g, char *err, size_t errlen)
{
    bool *keep = zn_malloc((size_t)g->n_nodes * sizeof *keep), any = false;
    for (int i = 0; i < g->n_nodes; i++) {
        zn_node *n = &g->nodes[i];
        keep[i] = n->op != ZN_OP_DROPOUT;
        any |= !keep[i];
        for (int k = 0; k < n->n_src; k++) n->src[k] = past_dropouts(g, n->src[k]);
    }
    bool ok = !any || zn_pass_rebuild(g, keep, err, errlen);
    free(keep);
    return ok;
}

bool zn_pass_no_dropout(zn_graph *g, char *err, size_t errlen)
{
    return zn_pass_on_copy(g, no_dropout, err, errlen);
}
