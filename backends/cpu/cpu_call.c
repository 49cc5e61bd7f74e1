/* cpu_call.c: what the CPU backend's op runners share: finding a node's tensors through the
 * plan, the convolution geometry that several ops read, and the message that names a node with
 * a bad label (extents and stitch geometry: backends/node_args.h; places: graph/inspect.h). */
#include "backends/cpu/cpu_backend.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>

#include "graph/inspect.h"

void *zn_cpu_tensor(const zn_cpu_call *c, int id)
{
    return c->cpu->mem[c->p->region[id]] + c->p->offset[id];
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
        .c = zn_arg_dim(x, 0),
        .h = zn_arg_dim(x, 1),
        .w = zn_arg_dim(x, 2),
        .o = zn_arg_dim(w, 0),
        .kh = zn_arg_dim(w, 2),
        .kw = zn_arg_dim(w, 3),
        .stride_h = a->stride[0],
        .stride_w = a->stride[1],
        .pad_h = a->pad[0],
        .pad_w = a->pad[1],
        .dil_h = a->dilation[0],
        .dil_w = a->dilation[1],
        .groups = a->groups,
    };
}

bool zn_cpu_bad_label(const zn_cpu_call *c, int row, int classes)
{
    const int32_t *labels = zn_cpu_tensor(c, c->node->src[1]);
    char where[256];
    return zn_cpu_fail(c->cpu, "head %s (%s): label %d at batch row %d is not in 0..%d",
                       c->node->name, zn_node_where(c->node, where, sizeof where), (int)labels[row],
                       row, classes - 1);
}
