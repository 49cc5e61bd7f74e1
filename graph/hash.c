/* hash.c: a fingerprint of a graph's forward structure (ops, shapes, attributes, names), stored in
 * checkpoints so weights are never loaded into a different model. FNV-1a, 64 bits. Ops enter by
 * name, so reordering graph/op_list.h changes no fingerprint; zn_graph_hash_v1 gives the
 * fingerprint that checkpoints of format version 1 hold, which entered ops by enum number. */
#include <string.h>

#include "graph/graph.h"

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The op enum as version 1 numbered it, frozen: index = the number hashed for that op. */
static const char *const v1_ops[] = {
    "input", "param", "conv2d", "batchnorm", "relu", "maxpool", "avgpool", "global_maxpool",
    "global_avgpool", "linear", "add", "scale", "concat", "resample", "transpose", "flatten",
    "stitch", "xent", "ztower", "conv2d_bwd_data", "conv2d_bwd_filter", "bias_bwd",
    "batchnorm_bwd_data", "batchnorm_bwd_gamma", "relu_bwd", "maxpool_bwd", "avgpool_bwd",
    "global_maxpool_bwd", "global_avgpool_bwd", "linear_bwd_data", "linear_bwd_weight", "slice",
    "resample_bwd", "reshape", "stitch_bwd", "xent_bwd", "ztower_coef", "ztower_bwd",
    "bn_fold_weight", "bn_fold_bias"};
enum { N_V1_OPS = sizeof v1_ops / sizeof *v1_ops };

/* How an op enters the hash: its name, or its version-1 number (-1 for an op that version did
 * not have: *known turns false, as no version-1 checkpoint can match such a graph). */
typedef uint64_t (*op_hasher)(uint64_t h, zn_op op, bool *known);

static uint64_t op_by_name(uint64_t h, zn_op op, bool *known)
{
    (void)known;
    const char *name = zn_ops[op].name;
    return fnv(h, name, strlen(name) + 1); /* with its NUL, so no two names run together */
}

static uint64_t op_by_v1_number(uint64_t h, zn_op op, bool *known)
{
    int32_t number = -1;
    for (int i = 0; i < N_V1_OPS; i++)
        if (strcmp(v1_ops[i], zn_ops[op].name) == 0) number = i;
    if (number < 0) *known = false;
    return fnv(h, &number, sizeof number);
}

static uint64_t hash_with(const zn_graph *g, op_hasher hash_op, bool *known)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        if (n->flags & ZN_NODE_BACKWARD) continue;
        h = hash_op(h, n->op, known);
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

uint64_t zn_graph_hash(const zn_graph *g)
{
    bool known = true;
    return hash_with(g, op_by_name, &known);
}

uint64_t zn_graph_hash_v1(const zn_graph *g)
{
    bool known = true;
    uint64_t h = hash_with(g, op_by_v1_number, &known);
    return known ? h : 0;
}
