/* ops.h: the op enum and the static op table: for every op its name, arity, shape rule and
 * cost rule (multiply-adds per example). Adding an op means adding an enum value here, a row in
 * ops.c (a static_assert checks the table covers every op) and its kernels; docs/adding-an-op.md
 * lists every place. Included by graph.h; never include it alone. */
#ifndef ZN_OPS_H
#define ZN_OPS_H

/* Forward ops, in the order of the table in ops.c. Sources are listed per op in ops.c. */
typedef enum {
    ZN_OP_INPUT,          /* data fed each step (images, or class labels with ZN_NODE_LABEL) */
    ZN_OP_PARAM,          /* trainable parameter or persistent state */
    ZN_OP_CONV2D,         /* x[C,H,W], w[O,C/groups,kh,kw] (, b[O]) -> [O,H',W'] */
    ZN_OP_BATCHNORM,      /* x[C,...], gamma[C], beta[C], running_mean[C], running_var[C] */
    ZN_OP_RELU,
    ZN_OP_MAXPOOL,        /* kernel, stride, pad over H and W */
    ZN_OP_AVGPOOL,
    ZN_OP_GLOBAL_MAXPOOL, /* [C,H,W] -> [C] */
    ZN_OP_GLOBAL_AVGPOOL,
    ZN_OP_LINEAR,         /* x[I], w[O,I] (, b[O]) -> [O] */
    ZN_OP_ADD,            /* two tensors of one shape */
    ZN_OP_SCALE,          /* y = attr.scale * x */
    ZN_OP_CONCAT,         /* any number of inputs along per-example attr.axis */
    ZN_OP_RESAMPLE,       /* down by max/avg or up by nearest, by attr.factor or to attr.size */
    ZN_OP_TRANSPOSE,      /* per-example axes permuted by attr.perm */
    ZN_OP_FLATTEN,        /* [C,H,W] -> [C*H*W] */
    ZN_OP_STITCH,         /* R_k[C_k,H_k,W_k] -> Z[S, sum C_k, S]; see docs/ops.md */
    ZN_OP_XENT,           /* logits[K], label(class) -> scalar loss (softmax cross-entropy) */
    ZN_OP_COUNT
} zn_op;

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
};

typedef struct {
    const char *name;
    int min_src, max_src; /* max_src -1: any number */
    /* Sets g->nodes[id].shape from its sources; false with a message in err on mismatch. */
    bool (*infer)(zn_graph *g, int id, char *err, size_t errlen);
    /* Multiply-adds per example of the forward op (0 for data movement). */
    int64_t (*macs)(const zn_graph *g, int id);
    bool differentiable; /* has a gradient rule (autodiff) */
    const char *srcs;    /* the sources' roles for messages, e.g. "x, w[, b]" */
    unsigned attrs;      /* ZN_ATTR_* fields the op reads */
} zn_op_info;

extern const zn_op_info zn_ops[ZN_OP_COUNT];

/* Looks up an op by its table name; returns ZN_OP_COUNT when unknown. */
zn_op zn_op_by_name(const char *name);

#endif
