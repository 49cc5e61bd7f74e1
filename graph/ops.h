/* ops.h: the op table zn_ops[], one row per op of graph/op_list.h (which also gives the zn_op
 * enum), and the types of its columns. "How to add an op" in docs/architecture.md is the recipe.
 * Included by graph.h; never include it alone. */
#ifndef ZN_OPS_H
#define ZN_OPS_H

#include "graph/op_list.h"

/* Which zn_attrs fields an op reads (zn_op_info.attrs), so dumps and passes can be table-driven. */
enum {
    ZN_ATTR_KERNEL = 1u << 0,
    ZN_ATTR_STRIDE = 1u << 1,
    ZN_ATTR_PAD = 1u << 2,
    ZN_ATTR_DILATION = 1u << 3,
    ZN_ATTR_GROUPS = 1u << 4,
    ZN_ATTR_OUT = 1u << 5,
    ZN_ATTR_AXIS = 1u << 6,
    ZN_ATTR_FACTOR = 1u << 7,
    ZN_ATTR_SIZE = 1u << 8,
    ZN_ATTR_MODE = 1u << 9,
    ZN_ATTR_PERM = 1u << 10,
    ZN_ATTR_SCALE = 1u << 11,
    ZN_ATTR_EPS = 1u << 12,
    ZN_ATTR_MOMENTUM = 1u << 13,
    ZN_ATTR_SMOOTHING = 1u << 14,
    ZN_ATTR_WEIGHT = 1u << 15,
    ZN_ATTR_REDUCTION = 1u << 16,
    ZN_ATTR_INIT = 1u << 17,
    ZN_ATTR_DROP = 1u << 18, /* drop and stream */
};

/* A forward op's gradient rule (graph/grad_rules.c). dy is the node holding the gradient of node
 * id's output, or -1 for a loss head, which seeds the backward pass itself. The rule appends the
 * backward nodes and sets dsrc[k] (which arrives as -1) to the node holding the gradient of
 * source k for every k with want[k]; it builds nothing for the others. */
typedef void (*zn_grad_rule)(zn_graph *g, int id, int dy, const bool *want, int *dsrc);

typedef enum { ZN_OP_KIND_FORWARD, ZN_OP_KIND_BACKWARD, ZN_OP_KIND_INFERENCE } zn_op_kind;

/* Whether graph/pass_recompute.c may recompute an op's output in the backward pass. */
typedef enum {
    ZN_RECOMPUTE_NO,
    ZN_RECOMPUTE_CHEAP,  /* always worth it */
    ZN_RECOMPUTE_BUDGET, /* while the recomputed multiply-adds stay within the pass's budget */
    ZN_RECOMPUTE_SPLIT,  /* only in a budget's split segments, each copy made right before its reader */
} zn_recompute;

/* The columns of op_list.h's rows; op_list.h says what each means. */
typedef struct {
    const char *name;
    zn_op_kind kind;
    int min_src, max_src; /* max_src -1: any number */
    const char *srcs;     /* the sources' roles for messages, e.g. "x, w[, b]" */
    unsigned attrs;       /* ZN_ATTR_* fields the op reads */
    /* Sets g->nodes[id].shape from its sources; false with a message in err on mismatch. */
    bool (*infer)(zn_graph *g, int id, char *err, size_t errlen);
    /* Multiply-adds per example (0 for data movement); a backward op of conv or linear counts
     * as many as its forward op, so training FLOPs are the sum over every node. */
    int64_t (*macs)(const zn_graph *g, int id);
    zn_grad_rule grad; /* forward ops: builds the backward nodes (autodiff); NULL otherwise */
    bool in_place;     /* the output may overwrite a source of its size (graph/plan.c) */
    zn_recompute recompute;
    const char *lang[2]; /* the names a model calls it by (lang/builtins.c), "" for none */
} zn_op_info;

extern const zn_op_info zn_ops[ZN_OP_COUNT];

static inline bool zn_op_is_backward(zn_op op)
{
    return zn_ops[op].kind == ZN_OP_KIND_BACKWARD;
}

static inline bool zn_op_is_inference(zn_op op)
{
    return zn_ops[op].kind == ZN_OP_KIND_INFERENCE;
}

/* Looks up an op by its table name; returns ZN_OP_COUNT when unknown. */
zn_op zn_op_by_name(const char *name);

#endif
