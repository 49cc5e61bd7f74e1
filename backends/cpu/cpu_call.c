/* cpu_call.c: what the CPU backend's op runners share: finding a node's tensors through the
 * plan, its extents as the kernels' int arguments, the convolution and stitch geometry that
 * several ops read, and the messages that name a node by its .znet name and place. */
#include "backends/cpu/cpu_backend.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

void *zn_cpu_tensor(const zn_cpu_call *c, int id)
{
    return c->cpu->mem[c->p->region[id]] + c->p->offset[id];
}

size_t zn_cpu_numel(const zn_cpu_call *c, const zn_shape *s)
{
    return (size_t)zn_cpu_batch(c, s) * (size_t)zn_shape_numel(s);
}

int zn_cpu_dim(const zn_shape *s, int i)
{
    assert(i < s->rank && s->dim[i] <= INT32_MAX);
    return (int)s->dim[i];
}

int zn_cpu_inner(const zn_shape *s, int from)
{
    int64_t n = 1;
    for (int i = from; i < s->rank; i++) n *= s->dim[i];
    assert(n <= INT32_MAX);
    return (int)n;
}

void zn_cpu_int_dims(const zn_shape *s, int dims[ZN_MAX_RANK])
{
    for (int i = 0; i < s->rank; i++) dims[i] = zn_cpu_dim(s, i);
}

bool zn_cpu_fail(zn_cpu *cpu, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cpu->err, sizeof cpu->err, fmt, ap);
    va_end(ap);
    return false;
}

const char *zn_cpu_where(const zn_node *n, char *buf, size_t len)
{
    const char *file = n->span.file ? n->span.file : "<built-in>";
    if (n->span.line <= 0)
        snprintf(buf, len, "%s", file);
    else if (n->span.col <= 0)
        snprintf(buf, len, "%s:%d", file, n->span.line);
    else
        snprintf(buf, len, "%s:%d:%d", file, n->span.line, n->span.col);
    return buf;
}

zn_conv_params zn_cpu_conv_params(const zn_graph *g, int id, int batch)
{
    const zn_node *n = &g->nodes[id];
    const zn_shape *x, *w; /* x [C, H, W], w [O, C/groups, kh, kw] */
    switch (n->op) {
    case ZN_OP_CONV2D:
        x = &g->nodes[n->src[0]].shape;
        w = &g->nodes[n->src[1]].shape;
        break;
    case ZN_OP_CONV2D_BWD_DATA: /* dy, w -> dx */
        x = &n->shape;
        w = &g->nodes[n->src[1]].shape;
        break;
    default: /* ZN_OP_CONV2D_BWD_FILTER: x, dy -> dw */
        assert(n->op == ZN_OP_CONV2D_BWD_FILTER);
        x = &g->nodes[n->src[0]].shape;
        w = &n->shape;
        break;
    }
    const zn_attrs *a = &n->attr;
    return (zn_conv_params){
        .n = x->batched ? batch : 1,
        .c = zn_cpu_dim(x, 0),
        .h = zn_cpu_dim(x, 1),
        .w = zn_cpu_dim(x, 2),
        .o = zn_cpu_dim(w, 0),
        .kh = zn_cpu_dim(w, 2),
        .kw = zn_cpu_dim(w, 3),
        .stride_h = a->stride[0],
        .stride_w = a->stride[1],
        .pad_h = a->pad[0],
        .pad_w = a->pad[1],
        .dil_h = a->dilation[0],
        .dil_w = a->dilation[1],
        .groups = a->groups,
    };
}

zn_window_reduce zn_cpu_window(zn_resample_mode m)
{
    return m == ZN_RESAMPLE_MAX ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
}

zn_stitch_dims zn_cpu_stitch_dims(const zn_cpu_call *c, int count, const zn_shape *z)
{
    int *ch = c->cpu->ints, *h = ch + c->cpu->cap, *w = h + c->cpu->cap;
    for (int k = 0; k < count; k++) {
        const zn_shape *r = zn_cpu_src_shape(c, k);
        ch[k] = zn_cpu_dim(r, 0);
        h[k] = zn_cpu_dim(r, 1);
        w[k] = zn_cpu_dim(r, 2);
    }
    return (zn_stitch_dims){zn_cpu_batch(c, z), count, ch, h, w, zn_cpu_dim(z, 0),
                            zn_cpu_dim(z, 2), zn_cpu_window(c->node->attr.mode)};
}

bool zn_cpu_bad_label(const zn_cpu_call *c, int row, int classes)
{
    const int32_t *labels = zn_cpu_tensor(c, c->node->src[1]);
    char where[256];
    return zn_cpu_fail(c->cpu, "head %s (%s): label %d at batch row %d is not in 0..%d",
                       c->node->name, zn_cpu_where(c->node, where, sizeof where), (int)labels[row],
                       row, classes - 1);
}
