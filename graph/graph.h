/* graph.h: the graph IR. One node struct serves every op (forward and backward); the op list
 * (op_list.h, expanded into ops.h's table) says what each op means. Shapes are per example: a
 * batched tensor gets a leading batch axis N only when a plan is made for a batch size, so one
 * graph serves every batch. Nodes are stored in topological order (sources always precede their
 * users). */
#ifndef ZN_GRAPH_H
#define ZN_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZN_MAX_RANK 4

/* A place in a .znet file: 1-based line and column of the first character, and of the last. */
typedef struct {
    const char *file; /* path as the user gave it (owned by the source manager) */
    int line, col;
    int end_line, end_col;
} zn_span;

typedef enum { ZN_DTYPE_F32, ZN_DTYPE_I32 } zn_dtype;

typedef struct {
    int rank;                  /* number of per-example axes (0 = scalar) */
    int64_t dim[ZN_MAX_RANK];  /* per-example extents, e.g. {C, H, W} */
    bool batched;              /* true: a leading batch axis N precedes dim[] */
    zn_dtype dtype;
} zn_shape;

typedef struct zn_graph zn_graph;
#include "ops.h"

enum {
    ZN_NODE_INPUT = 1u << 0,    /* fed from data each step */
    ZN_NODE_LABEL = 1u << 1,    /* an INPUT holding class indices */
    ZN_NODE_PARAM = 1u << 2,    /* trainable parameter */
    ZN_NODE_STATE = 1u << 3,    /* persistent, not trained (batch-norm running stats) */
    ZN_NODE_LOSS = 1u << 4,     /* a loss head */
    ZN_NODE_BACKWARD = 1u << 5, /* appended by autodiff */
    ZN_NODE_GRAD = 1u << 6,     /* the final gradient of a PARAM (optimizer reads it) */
};

typedef enum { ZN_RESAMPLE_MAX, ZN_RESAMPLE_AVG, ZN_RESAMPLE_NEAREST } zn_resample_mode;
typedef enum { ZN_REDUCE_SUM, ZN_REDUCE_MEAN } zn_reduction;
typedef enum {
    ZN_INIT_NONE,         /* state filled by the op itself, or a non-parameter */
    ZN_INIT_FAN_IN,       /* uniform(+-1/sqrt(fan_in)), PyTorch's default for conv/linear */
    ZN_INIT_ZEROS,
    ZN_INIT_ONES,
} zn_init;

/* Attributes of every op in one struct; the op table says which fields an op reads. */
typedef struct {
    int kernel[2], stride[2], pad[2], dilation[2]; /* {h, w} for conv and pooling */
    int groups;                /* conv channel groups */
    int out;                   /* output channels/features (conv, linear); classes (label input) */
    int axis;                  /* per-example axis (concat) */
    int factor[2];             /* resample factor {h, w}; >1 down for max/avg, up for nearest */
    int size[2];               /* stitch / resample target {h, w}; 0 = use factor */
    zn_resample_mode mode;     /* resample mode; for stitch: how larger inputs are downsampled */
    int perm[ZN_MAX_RANK];     /* transpose: output axis i takes input axis perm[i] */
    float scale;               /* scale: y = scale * x */
    float eps, momentum;       /* batchnorm; momentum = share of the old running value kept */
    float smoothing;           /* cross-entropy label smoothing */
    float weight;              /* loss-head weight in the total loss */
    zn_reduction reduction;    /* cross-entropy over the batch */
    zn_init init;              /* parameters and state */
    int fan_in;                /* parameters initialised with ZN_INIT_FAN_IN */
    float drop;                /* dropout: the share of elements zeroed in training, [0, 1) */
    int stream;                /* dropout: its mask's stream, the count of dropouts made before
                                  it in the model (so its backward and every backend agree) */
} zn_attrs;

typedef struct {
    zn_op op;
    int *src;          /* source node ids, n_src of them (owned by the graph) */
    int n_src;
    zn_attrs attr;
    zn_shape shape;    /* output shape, set by shape inference */
    unsigned flags;    /* ZN_NODE_* */
    const char *name;  /* the user's dotted name, e.g. "b1.res.conv"; owned by the graph */
    const char *block; /* the block calls it is in, outermost first, for DOT clusters ("" at
                        * model level): "layer:b1/cbr:h.cbr" is block cbr called as b1.h.cbr; one
                        * entry per call, the second call of a name in a caller "cbr:cbr#2" */
    zn_span span;      /* where the user wrote it */
    int grad_of;       /* ZN_NODE_GRAD: id of the parameter; -1 otherwise */
    int state_of;      /* ZN_NODE_STATE: id of the node that updates it; -1 otherwise */
} zn_node;

typedef enum { ZN_METRIC_VOTE } zn_metric_kind;

typedef struct {
    zn_metric_kind kind;
    int *heads; /* node ids of loss heads, in the order given */
    int n_heads;
    const char *name;
    zn_span span;
} zn_metric;

struct zn_graph {
    zn_node *nodes;
    int n_nodes, cap_nodes;
    zn_metric *metrics;
    int n_metrics, cap_metrics;
    const char *model_name;
    struct zn_strpool *strings; /* owns every name and source array */
    uint64_t model_hash; /* zn_graph_hash of the graph as the model built it, set by zn_passes_run
                            before its passes (0 before): checkpoints keep it, so one saved with
                            some passes off loads with them on. That holds while no pass
                            reorders parameter or state nodes (none does; the parameter count is
                            checked too): a checkpoint stores them in graph order */
    uint64_t model_hash_v1; /* zn_graph_hash_v1 of the same graph, set with model_hash: what a
                               checkpoint of format version 1 holds */
};

/* The z-tower ops (ZTOWER, ZTOWER_COEF, ZTOWER_BWD) read their stitched inputs first, then the
 * conv's weight, then their own: ztower gamma, beta, running_mean, running_var; ztower_coef
 * gamma, beta, dz; ztower_bwd coef, dz. The number of stitched inputs (the weight's index). */
static inline int zn_ztower_inputs(const zn_node *n)
{
    return n->n_src - (n->op == ZN_OP_ZTOWER ? 5 : n->op == ZN_OP_ZTOWER_COEF ? 4 : 3);
}

void zn_graph_init(zn_graph *g, const char *model_name);
void zn_graph_free(zn_graph *g);

/* Appends a node and returns its id. name and block are copied. Shape is not inferred here. */
int zn_graph_add(zn_graph *g, zn_op op, const int *src, int n_src, const zn_attrs *attr,
                 const char *name, const char *block, zn_span span);

/* Infers the shape of node id from its sources. On failure writes a one-line message
 * (naming both shapes where two disagree) to err and returns false. INPUT and PARAM nodes get
 * rank and dim from their creator; inference checks them and sets batched and dtype (a
 * ZN_NODE_LABEL input: rank 0, I32, attr.out classes). Every output has dims > 0 and at most
 * 2^31 elements per example, so numel products of inferred shapes never overflow int64. */
bool zn_graph_infer(zn_graph *g, int id, char *err, size_t errlen);

int zn_graph_add_metric(zn_graph *g, zn_metric_kind kind, const int *heads, int n_heads,
                        const char *name, zn_span span);

/* A fingerprint of the forward graph (ops by name, shapes, attributes, names) for checkpoints. */
uint64_t zn_graph_hash(const zn_graph *g);
/* The fingerprint as checkpoint format version 1 computed it (ops by their version-1 enum
 * numbers); 0 for a graph with an op version 1 did not have. */
uint64_t zn_graph_hash_v1(const zn_graph *g);

/* A copy with its own storage (passes rewrite copies). */
void zn_graph_copy(zn_graph *dst, const zn_graph *src);

/* Default attributes: every stride, dilation and factor 1, groups 1, eps 1e-5, momentum 0.9;
 * also perm the identity, scale 1 and weight 1 (kernel, pad, size and out stay 0). */
zn_attrs zn_attrs_default(void);

/* Formats "[64, 32, 32]" (a batched shape as "[N, 64, 32, 32]") into buf; returns buf. */
const char *zn_shape_str(const zn_shape *s, char *buf, size_t len);
int64_t zn_shape_numel(const zn_shape *s); /* per example */
bool zn_shape_eq(const zn_shape *a, const zn_shape *b);

#endif
