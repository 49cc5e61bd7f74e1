/* hash.c: a fingerprint of a graph's forward structure (ops, shapes, attributes, names), stored in
 * checkpoints so weights are never loaded into a different model. FNV-1a, 64 bits. */
#include <string.h>

#include "graph/graph.h"

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t zn_graph_hash(const zn_graph *g)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        if (n->flags & ZN_NODE_BACKWARD) continue;
        int32_t op = n->op;
        h = fnv(h, &op, sizeof op);
        h = fnv(h, &n->shape.rank, sizeof n->shape.rank);
        h = fnv(h, n->shape.dim, sizeof n->shape.dim[0] * n->shape.rank);
        h = fnv(h, n->src, sizeof *n->src * n->n_src);
        h = fnv(h, n->name, strlen(n->name));
        h = fnv(h, n->attr.kernel, sizeof n->attr.kernel);
        h = fnv(h, n->attr.stride, sizeof n->attr.stride);
        h = fnv(h, n->attr.pad, sizeof n->attr.pad);
        h = fnv(h, n->attr.dilation, sizeof n->attr.dilation);
        h = fnv(h, &n->attr.groups, sizeof n->attr.groups);
    }
    return h;
}
