/* onnx.c: the inference graph as an ONNX ModelProto, built from protobuf-c's generated messages
 * (onnx.pb-c.h, made by protoc-c from ONNX's onnx.proto at build time) and packed by protobuf-c.
 * Every string, array and message lives in one list of blocks freed at the end, so the model is
 * built without per-field ownership. Parameters, state and the batch-norm fold nodes are written
 * as initializers the first time a node reads them. */
#include "export/onnx.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"
#include "onnx.pb-c.h"

typedef struct {
    const zn_graph *g;
    const zn_onnx_opts *o;
    void **blocks; /* everything allocated for the model */
    int n_blocks, cap_blocks;
    char **tensor; /* [n_nodes]: the ONNX tensor holding each node's output (NULL: not yet) */
    Onnx__GraphProto *graph;
    char *err;
    size_t errlen;
    bool failed;
} builder;

static void *alloc(builder *b, size_t bytes)
{
    if (b->n_blocks == b->cap_blocks) {
        b->cap_blocks = b->cap_blocks ? 2 * b->cap_blocks : 256;
        b->blocks = zn_realloc(b->blocks, sizeof *b->blocks * b->cap_blocks);
    }
    return b->blocks[b->n_blocks++] = zn_calloc(1, bytes ? bytes : 1);
}

static char *fmt(builder *b, const char *f, ...)
{
    va_list ap, aq;
    va_start(ap, f);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = alloc(b, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, f, aq);
    va_end(aq);
    return s;
}

/* Appends p to an array of pointers *arr holding *n (grown one block at a time). */
static void push(builder *b, void ***arr, size_t *n, void *p)
{
    void **grown = alloc(b, sizeof *grown * (*n + 1));
    if (*n) memcpy(grown, *arr, sizeof *grown * *n);
    grown[(*n)++] = p;
    *arr = grown;
}
#define PUSH(b, arr, n, p) push(b, (void ***)&(arr), &(n), p)

static Onnx__NodeProto *add_node(builder *b, const char *op, const char *name, int n_in,
                                 const char *const *in, const char *out)
{
    Onnx__NodeProto *n = alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = fmt(b, "%s", op);
    n->name = fmt(b, "%s", name);
    for (int i = 0; i < n_in; i++) PUSH(b, n->input, n->n_input, fmt(b, "%s", in[i]));
    PUSH(b, n->output, n->n_output, fmt(b, "%s", out));
    PUSH(b, b->graph->node, b->graph->n_node, n);
    return n;
}

static Onnx__AttributeProto *add_attr(builder *b, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = fmt(b, "%s", name);
    a->has_type = 1;
    a->type = type;
    PUSH(b, n->attribute, n->n_attribute, a);
    return a;
}

static void attr_int(builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_float(builder *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void attr_ints(builder *b, Onnx__NodeProto *n, const char *name, int count, const int64_t *v)
{
    Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->ints = alloc(b, sizeof *a->ints * count);
    memcpy(a->ints, v, sizeof *a->ints * count);
    a->n_ints = count;
}

static void attr_str(builder *b, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)fmt(b, "%s", v);
    a->s.len = strlen(v);
}

/* A float initializer (data is copied) or, with data NULL, an int64 one from i64. */
static const char *add_init(builder *b, const char *name, int rank, const int64_t *dims,
                            const float *data, const int64_t *i64)
{
    Onnx__TensorProto *t = alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = fmt(b, "%s", name);
    t->dims = alloc(b, sizeof *t->dims * rank);
    int64_t count = 1;
    for (int i = 0; i < rank; i++) count *= t->dims[i] = dims[i];
    t->n_dims = rank;
    t->has_data_type = 1;
    if (data) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->float_data = alloc(b, sizeof(float) * count);
        memcpy(t->float_data, data, sizeof(float) * count);
        t->n_float_data = count;
    } else if (i64) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->int64_data = alloc(b, sizeof(int64_t) * count);
        memcpy(t->int64_data, i64, sizeof(int64_t) * count);
        t->n_int64_data = count;
    }
    PUSH(b, b->graph->initializer, b->graph->n_initializer, t);
    return t->name;
}

/* A float tensor value [N, dims...] (the batch axis named N) for graph inputs and outputs. */
static Onnx__ValueInfoProto *value_info(builder *b, const char *name, const zn_shape *s)
{
    Onnx__ValueInfoProto *v = alloc(b, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = fmt(b, "%s", name);
    Onnx__TypeProto *t = v->type = alloc(b, sizeof *t);
    onnx__type_proto__init(t);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    Onnx__TypeProto__Tensor *tt = t->tensor_type = alloc(b, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *sh = tt->shape = alloc(b, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    for (int i = -1; i < s->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = alloc(b, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (i < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = fmt(b, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->dim[i];
        }
        PUSH(b, sh->dim, sh->n_dim, d);
    }
    return v;
}

static bool refuse(builder *b, const zn_node *n, const char *why)
{
    snprintf(b->err, b->errlen, "%s:%d: node '%s' (%s): %s", n->span.file ? n->span.file : "?", n->span.line,
             n->name, zn_ops[n->op].name, why);
    b->failed = true;
    return false;
}

/* A tensor name for node id that no earlier node has: its own name, or name#id on a clash. */
static char *unique_name(builder *b, int id)
{
    const zn_node *n = &b->g->nodes[id];
    for (int j = 0; j < id; j++)
        if (strcmp(b->g->nodes[j].name, n->name) == 0) return fmt(b, "%s#%d", n->name, id);
    return fmt(b, "%s", n->name);
}

/* gamma / sqrt(var + eps) per channel, as the CPU kernel computes it (backends/cpu/k_norm.c). */
static float bn_factor(const float *gamma, const float *var, int ch, float eps)
{
    return gamma[ch] / sqrtf(var[ch] + eps);
}

/* The values of a batch-norm fold node, computed from its sources' values. */
static float *fold_values(builder *b, const zn_node *n)
{
    const float *const *v = b->o->values;
    int64_t count = zn_shape_numel(&n->shape);
    float *out = alloc(b, sizeof(float) * count);
    if (n->op == ZN_OP_BN_FOLD_WEIGHT) {
        const float *w = v[n->src[0]], *gamma = v[n->src[1]], *var = v[n->src[2]];
        int64_t per = count / n->shape.dim[0];
        for (int64_t i = 0; i < count; i++) out[i] = w[i] * bn_factor(gamma, var, (int)(i / per), n->attr.eps);
    } else {
        const float *gamma = v[n->src[0]], *beta = v[n->src[1]], *mean = v[n->src[2]], *var = v[n->src[3]];
        const float *bias = n->n_src == 5 ? v[n->src[4]] : NULL;
        for (int64_t c = 0; c < count; c++)
            out[c] = beta[c] + ((bias ? bias[c] : 0.0f) - mean[c]) * bn_factor(gamma, var, (int)c, n->attr.eps);
    }
    return out;
}

/* The tensor holding node id's output; a parameter, state or fold node becomes an initializer
 * on its first read. */
static const char *ref(builder *b, int id)
{
    if (b->tensor[id]) return b->tensor[id];
    const zn_node *n = &b->g->nodes[id];
    const float *data = n->op == ZN_OP_BN_FOLD_WEIGHT || n->op == ZN_OP_BN_FOLD_BIAS ? fold_values(b, n)
                                                                                      : b->o->values[id];
    if (!data) {
        refuse(b, n, "read before it is written (no value for a parameter, or not in topological order)");
        return "";
    }
    int64_t dims[ZN_MAX_RANK];
    for (int i = 0; i < n->shape.rank; i++) dims[i] = n->shape.dim[i];
    return b->tensor[id] = (char *)add_init(b, unique_name(b, id), n->shape.rank, dims, data, NULL);
}

static const char *scalar(builder *b, const char *name, float v)
{
    return add_init(b, name, 0, NULL, &v, NULL);
}

/* Spatial window attributes: kernel_shape, strides, pads (top, left, bottom, right). */
static void window_attrs(builder *b, Onnx__NodeProto *n, const zn_attrs *a)
{
    attr_ints(b, n, "kernel_shape", 2, (const int64_t[]){a->kernel[0], a->kernel[1]});
    attr_ints(b, n, "strides", 2, (const int64_t[]){a->stride[0], a->stride[1]});
    attr_ints(b, n, "pads", 4, (const int64_t[]){a->pad[0], a->pad[1], a->pad[0], a->pad[1]});
}

static void conv(builder *b, const char *name, const char *x, const char *w, const char *bias,
                 const zn_attrs *a, int groups, const char *out)
{
    const char *in[3] = {x, w, bias};
    Onnx__NodeProto *n = add_node(b, "Conv", name, bias ? 3 : 2, in, out);
    window_attrs(b, n, a);
    attr_ints(b, n, "dilations", 2, (const int64_t[]){a->dilation[0], a->dilation[1]});
    attr_int(b, n, "group", groups);
}

/* x [N, C, h, w] to [N, C, oh, ow] by mode: max or average pooling by an integer factor when
 * smaller, nearest (output (i, j) = input (i / f, j / f)) when larger, the identity when equal. */
static bool resample(builder *b, const zn_node *n, const char *name, const char *x, int h, int w, int oh, int ow,
                     zn_resample_mode mode, const char *out)
{
    if (oh == h && ow == w) {
        add_node(b, "Identity", name, 1, &x, out);
    } else if (oh <= h && ow <= w && h % oh == 0 && w % ow == 0) {
        Onnx__NodeProto *p =
            add_node(b, mode == ZN_RESAMPLE_AVG ? "AveragePool" : "MaxPool", name, 1, &x, out);
        zn_attrs a = {.kernel = {h / oh, w / ow}, .stride = {h / oh, w / ow}};
        window_attrs(b, p, &a);
    } else if (oh >= h && ow >= w && oh % h == 0 && ow % w == 0) {
        const float scales[4] = {1, 1, (float)(oh / h), (float)(ow / w)};
        const char *in[3] = {x, "", add_init(b, fmt(b, "%s/scales", out), 1, (const int64_t[]){4}, scales, NULL)};
        Onnx__NodeProto *r = add_node(b, "Resize", name, 3, in, out);
        attr_str(b, r, "mode", "nearest");
        attr_str(b, r, "coordinate_transformation_mode", "asymmetric");
        attr_str(b, r, "nearest_mode", "floor");
    } else {
        return refuse(b, n, "a resampling that shrinks one axis and enlarges the other has no single ONNX op");
    }
    return true;
}

/* stitch(r_1..r_k, size S): each r resampled to S x S, axes C and H swapped, stacked along C. */
static bool stitch(builder *b, const zn_node *n, int k, int size_h, int size_w, zn_resample_mode mode,
                   const char *out)
{
    const char **parts = alloc(b, sizeof *parts * k);
    for (int i = 0; i < k; i++) {
        const zn_node *r = &b->g->nodes[n->src[i]];
        const char *rs = ref(b, n->src[i]);
        if (r->shape.dim[1] != size_h || r->shape.dim[2] != size_w) { /* an input at size S goes straight on */
            const char *x = rs;
            rs = fmt(b, "%s/resample%d", out, i);
            zn_resample_mode m = r->shape.dim[1] > size_h ? mode : ZN_RESAMPLE_NEAREST;
            if (!resample(b, n, rs, x, (int)r->shape.dim[1], (int)r->shape.dim[2], size_h, size_w, m, rs))
                return false;
        }
        parts[i] = fmt(b, "%s/transpose%d", out, i);
        Onnx__NodeProto *t = add_node(b, "Transpose", parts[i], 1, &rs, parts[i]);
        attr_ints(b, t, "perm", 4, (const int64_t[]){0, 2, 1, 3});
    }
    Onnx__NodeProto *c = add_node(b, "Concat", out, k, parts, out);
    attr_int(b, c, "axis", 2);
    return true;
}

/* global max or average pooling to [N, C]. */
static void global_pool(builder *b, const char *op, const char *name, const char *x, const char *out)
{
    const char *pooled = fmt(b, "%s/pool", out);
    add_node(b, op, pooled, 1, &x, pooled);
    attr_int(b, add_node(b, "Flatten", name, 1, &pooled, out), "axis", 1);
}

/* One forward node as ONNX nodes writing out; false (with b->err) for an op with no ONNX form. */
static bool emit(builder *b, int id, const char *out)
{
    const zn_node *n = &b->g->nodes[id];
    const char *in[3] = {0};
    for (int i = 0; i < n->n_src && i < 3; i++) in[i] = ref(b, n->src[i]);
    const zn_shape *s0 = n->n_src ? &b->g->nodes[n->src[0]].shape : NULL;
    switch (n->op) {
    case ZN_OP_CONV2D:
        conv(b, n->name, in[0], in[1], n->n_src == 3 ? in[2] : NULL, &n->attr, n->attr.groups, out);
        return true;
    case ZN_OP_BATCHNORM: {
        const char *bin[5];
        for (int i = 0; i < 5; i++) bin[i] = ref(b, n->src[i]);
        attr_float(b, add_node(b, "BatchNormalization", n->name, 5, bin, out), "epsilon", n->attr.eps);
        return true;
    }
    case ZN_OP_RELU: add_node(b, "Relu", n->name, 1, in, out); return true;
    case ZN_OP_SIGMOID: add_node(b, "Sigmoid", n->name, 1, in, out); return true;
    case ZN_OP_SILU: {
        const char *sig = fmt(b, "%s/sigmoid", out);
        add_node(b, "Sigmoid", sig, 1, in, sig);
        add_node(b, "Mul", n->name, 2, (const char *[]){in[0], sig}, out);
        return true;
    }
    case ZN_OP_MAXPOOL:
    case ZN_OP_AVGPOOL:
        window_attrs(b, add_node(b, n->op == ZN_OP_MAXPOOL ? "MaxPool" : "AveragePool", n->name, 1, in, out),
                     &n->attr);
        return true;
    case ZN_OP_GLOBAL_MAXPOOL: global_pool(b, "GlobalMaxPool", n->name, in[0], out); return true;
    case ZN_OP_GLOBAL_AVGPOOL: global_pool(b, "GlobalAveragePool", n->name, in[0], out); return true;
    case ZN_OP_LINEAR:
        attr_int(b, add_node(b, "Gemm", n->name, n->n_src, in, out), "transB", 1);
        return true;
    case ZN_OP_ADD: add_node(b, "Add", n->name, 2, in, out); return true;
    case ZN_OP_SCALE:
        add_node(b, "Mul", n->name, 2, (const char *[]){in[0], scalar(b, fmt(b, "%s/scale", out), n->attr.scale)},
                 out);
        return true;
    case ZN_OP_MUL: {
        const zn_shape *s1 = &b->g->nodes[n->src[1]].shape;
        const char *gate = in[1];
        if (s1->rank < s0->rank) { /* a [C] gate over [C, ...]: its trailing axes added */
            int64_t axes[ZN_MAX_RANK];
            int na = 0;
            for (int i = s1->rank; i < s0->rank; i++) axes[na++] = i + 1;
            gate = fmt(b, "%s/gate", out);
            const char *a = add_init(b, fmt(b, "%s/axes", out), 1, (const int64_t[]){na}, NULL, axes);
            add_node(b, "Unsqueeze", gate, 2, (const char *[]){in[1], a}, gate);
        }
        add_node(b, "Mul", n->name, 2, (const char *[]){in[0], gate}, out);
        return true;
    }
    case ZN_OP_DROPOUT: add_node(b, "Identity", n->name, 1, in, out); return true;
    case ZN_OP_CONCAT: {
        const char **cin = alloc(b, sizeof *cin * n->n_src);
        for (int i = 0; i < n->n_src; i++) cin[i] = ref(b, n->src[i]);
        attr_int(b, add_node(b, "Concat", n->name, n->n_src, cin, out), "axis", n->attr.axis + 1);
        return true;
    }
    case ZN_OP_RESAMPLE:
        return resample(b, n, n->name, in[0], (int)s0->dim[1], (int)s0->dim[2], (int)n->shape.dim[1],
                        (int)n->shape.dim[2], n->attr.mode, out);
    case ZN_OP_TRANSPOSE: {
        int64_t perm[ZN_MAX_RANK + 1] = {0};
        for (int i = 0; i < n->shape.rank; i++) perm[i + 1] = n->attr.perm[i] + 1;
        attr_ints(b, add_node(b, "Transpose", n->name, 1, in, out), "perm", n->shape.rank + 1, perm);
        return true;
    }
    case ZN_OP_FLATTEN: attr_int(b, add_node(b, "Flatten", n->name, 1, in, out), "axis", 1); return true;
    case ZN_OP_STITCH:
        return stitch(b, n, n->n_src, (int)n->shape.dim[0], (int)n->shape.dim[2], n->attr.mode, out);
    default:
        return refuse(b, n, zn_ops[n->op].kind == ZN_OP_KIND_FORWARD
                                ? "this op has no ONNX form at opset 17; znet export cannot write it"
                                : "not a node of an inference graph");
    }
}

/* The image input, normalised by (x - mean) / std when o asks for it. */
static void input(builder *b, int id)
{
    const zn_node *n = &b->g->nodes[id];
    PUSH(b, b->graph->input, b->graph->n_input, value_info(b, n->name, &n->shape));
    b->tensor[id] = fmt(b, "%s", n->name);
    if (!b->o->mean) return;
    const int c = (int)n->shape.dim[0];
    const int64_t dims[4] = {1, c, 1, 1};
    const char *mean = add_init(b, fmt(b, "%s/mean", n->name), 4, dims, b->o->mean, NULL);
    const char *std = add_init(b, fmt(b, "%s/std", n->name), 4, dims, b->o->std, NULL);
    const char *centred = fmt(b, "%s/centred", n->name);
    add_node(b, "Sub", centred, 2, (const char *[]){n->name, mean}, centred);
    b->tensor[id] = fmt(b, "%s/normalized", n->name);
    add_node(b, "Div", b->tensor[id], 2, (const char *[]){centred, std}, b->tensor[id]);
}

/* Each head's logits as a graph output named after the head. */
static void output(builder *b, const zn_node *head)
{
    const zn_node *logits = &b->g->nodes[head->src[0]];
    const char *x = ref(b, head->src[0]);
    add_node(b, "Identity", head->name, 1, &x, head->name);
    PUSH(b, b->graph->output, b->graph->n_output, value_info(b, head->name, &logits->shape));
}

static bool build(builder *b)
{
    const zn_graph *g = b->g;
    int heads = 0;
    for (int id = 0; id < g->n_nodes && !b->failed; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op == ZN_OP_INPUT) {
            if (!(n->flags & ZN_NODE_LABEL)) input(b, id);
        } else if (n->op == ZN_OP_XENT) {
            output(b, n);
            heads++;
        } else if (n->op != ZN_OP_PARAM && n->op != ZN_OP_BN_FOLD_WEIGHT && n->op != ZN_OP_BN_FOLD_BIAS) {
            char *out = unique_name(b, id);
            if (emit(b, id, out)) b->tensor[id] = out;
        }
    }
    if (!b->failed && heads == 0) {
        snprintf(b->err, b->errlen, "the model has no head (xent) whose logits could be the output");
        b->failed = true;
    }
    return !b->failed;
}

static bool write_model(builder *b, const char *path)
{
    Onnx__OperatorSetIdProto *opset = alloc(b, sizeof *opset);
    onnx__operator_set_id_proto__init(opset);
    opset->domain = fmt(b, "");
    opset->has_version = 1;
    opset->version = ZN_ONNX_OPSET;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1;
    m.ir_version = 8; /* the IR version that opset 17 came with (ONNX 1.12) */
    m.producer_name = "znet";
    m.producer_version = (char *)(b->o->producer_version ? b->o->producer_version : "");
    m.graph = b->graph;
    m.n_opset_import = 1;
    m.opset_import = &opset;
    size_t size = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = alloc(b, size);
    onnx__model_proto__pack(&m, buf);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        snprintf(b->err, b->errlen, "cannot write %s: %s", path, strerror(errno));
        if (f) remove(path); /* no half-written model left behind */
    }
    return ok;
}

bool zn_onnx_write(const zn_graph *g, const zn_onnx_opts *o, const char *path, char *err, size_t errlen)
{
    builder b = {.g = g, .o = o, .err = err, .errlen = errlen};
    b.tensor = alloc(&b, sizeof *b.tensor * g->n_nodes);
    b.graph = alloc(&b, sizeof *b.graph);
    onnx__graph_proto__init(b.graph);
    b.graph->name = fmt(&b, "%s", g->model_name ? g->model_name : "znet");
    bool ok = build(&b) && write_model(&b, path);
    for (int i = 0; i < b.n_blocks; i++) free(b.blocks[i]);
    free(b.blocks);
    return ok;
}
