/* ops.h: the op enum and the static op table: for every op its name, arity, shape rule and
 * cost rule (multiply-adds per example). Adding an op means adding an enum value here, a row in
 * ops.c (a static_assert checks the table covers every op) and its kernels; "How to add an op"
 * in docs/architecture.md lists every place. Included by graph.h; never include it alone. */
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
    ZN_OP_STITCH,         /* R_k[C_k,H_k,W_k] -> Z[S, sum C_k, S]; see docs/passes.md */
    ZN_OP_XENT,           /* logits[K], label(class) -> scalar loss (softmax cross-entropy) */
    ZN_OP_ZTOWER,         /* r_0 .. r_{K-1}, w, gamma, beta, running_mean, running_var -> [F]:
                             gmp(relu(batchnorm(conv2d(stitch(r), w)))) in one node that runs the
                             batch in slices (graph/pass_ztower.c; after XENT so the forward ops'
                             numbers, which graph hashes read, stay) */
    ZN_OP_DROPOUT,        /* x -> x / (1 - attr.drop) where attr.stream's mask keeps it, else 0;
                             the identity outside training (backends/dropout_mask.h) */
    ZN_OP_MUL,            /* a, b -> a * b: b of a's shape, or b[C] a gate over a[C, ...] */

    /* Backward ops, appended by autodiff (graph/autodiff.c). Each node's shape is the shape of the
     * gradient it produces (autodiff copies it from the forward tensor); attrs are the forward
     * op's. "d" = gradient of the loss with respect to. */
    ZN_OP_CONV2D_BWD_DATA,    /* dy, w -> dx */
    ZN_OP_CONV2D_BWD_FILTER,  /* x, dy -> dw [O, C/groups, kh, kw] */
    ZN_OP_BIAS_BWD,           /* dy [C, ...] -> [C]: sum over batch and spatial axes (conv/linear
                                 bias, batch-norm beta) */
    ZN_OP_BATCHNORM_BWD_DATA, /* x, gamma, dy[, dgamma, dbeta] -> dx (training-mode batch statistics
                                 recomputed; with dgamma and dbeta given, dy is not summed again) */
    ZN_OP_BATCHNORM_BWD_GAMMA,/* x, dy -> dgamma [C] */
    ZN_OP_RELU_BWD,           /* y (the relu's output), dy -> dx */
    ZN_OP_MAXPOOL_BWD,        /* x, dy -> dx (to the arg-max, recomputed from x) */
    ZN_OP_AVGPOOL_BWD,        /* dy -> dx */
    ZN_OP_GLOBAL_MAXPOOL_BWD, /* x, dy -> dx */
    ZN_OP_GLOBAL_AVGPOOL_BWD, /* dy -> dx */
    ZN_OP_LINEAR_BWD_DATA,    /* dy, w -> dx */
    ZN_OP_LINEAR_BWD_WEIGHT,  /* x, dy -> dw [O, I] */
    ZN_OP_SLICE,              /* dy -> the part of a concat's output that one input gave:
                                 attr.axis, offset attr.size[0]; length from the node's shape */
    ZN_OP_RESAMPLE_BWD,       /* x, dy -> dx */
    ZN_OP_RESHAPE,            /* x -> the same elements under the node's shape (flatten backward) */
    ZN_OP_STITCH_BWD,         /* r_0 .. r_{K-1}, dz -> d r_k for k = attr.axis (one node per input;
                                 each reads only its own columns of dz) */
    ZN_OP_XENT_BWD,           /* logits, label -> dlogits, times attr.weight (and 1/N for mean) */
    ZN_OP_ZTOWER_COEF,        /* r_0 .. r_{K-1}, w, gamma, beta, dz -> [7 * F] (not batched): the
                                 batch norm's forward affine a, b, its backward affine kx, kb, ka
                                 (dx = kx*x + kb + ka*dy), dgamma and dbeta (docs/passes.md) */
    ZN_OP_ZTOWER_BWD,         /* r_0 .. r_{K-1}, w, coef, dz -> d r_k for k = attr.axis
                                 < K, dw for attr.axis = K */
    ZN_OP_MUL_SUM,            /* dy[C, ...], a[C, ...] -> [C]: per channel, the sum of dy * a
                                 (the gradient of a MUL's gate) */

    /* Inference ops, built by inference passes (graph/pass_fold_bn.c) from the parameters of
     * layers they fold; never differentiated. */
    ZN_OP_BN_FOLD_WEIGHT,     /* w[O, ...], gamma[O], running_var[O] -> w * gamma/sqrt(var + eps) */
    ZN_OP_BN_FOLD_BIAS,       /* gamma, beta, running_mean, running_var[, b] ->
                                 beta + (b - mean) * gamma/sqrt(var + eps), b = 0 when absent */
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
    ZN_ATTR_DROP = 1u << 18, /* drop and stream */
};

/* A forward op's gradient rule (graph/grad_rules.c). dy is the node holding the gradient of node
 * id's output, or -1 for a loss head, which seeds the backward pass itself. The rule appends the
 * backward nodes and sets dsrc[k] (which arrives as -1) to the node holding the gradient of
 * source k for every k with want[k]; it builds nothing for the others. */
typedef void (*zn_grad_rule)(zn_graph *g, int id, int dy, const bool *want, int *dsrc);

typedef struct {
    const char *name;
    int min_src, max_src; /* max_src -1: any number */
    /* Sets g->nodes[id].shape from its sources; false with a message in err on mismatch. */
    bool (*infer)(zn_graph *g, int id, char *err, size_t errlen);
    /* Multiply-adds per example (0 for data movement); a backward op of conv or linear counts
     * as many as its forward op, so training FLOPs are the sum over every node. */
    int64_t (*macs)(const zn_graph *g, int id);
    bool differentiable; /* a forward op with a gradient rule (grad is not NULL) */
    const char *srcs;    /* the sources' roles for messages, e.g. "x, w[, b]" */
    unsigned attrs;      /* ZN_ATTR_* fields the op reads */
    zn_grad_rule grad;   /* forward ops: builds the backward nodes (autodiff); NULL otherwise */
} zn_op_info;

extern const zn_op_info zn_ops[ZN_OP_COUNT];

/* The three kinds of op, by their place in the enum. */
static inline bool zn_op_is_backward(zn_op op)
{
    return op >= ZN_OP_CONV2D_BWD_DATA && op < ZN_OP_BN_FOLD_WEIGHT;
}

static inline bool zn_op_is_inference(zn_op op)
{
    return op >= ZN_OP_BN_FOLD_WEIGHT && op < ZN_OP_COUNT;
}

/* Looks up an op by its table name; returns ZN_OP_COUNT when unknown. */
zn_op zn_op_by_name(const char *name);

#endif
