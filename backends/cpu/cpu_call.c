/* cpu_call.c: what the CPU backend's op runners share: finding a node's tensors through the
 * plan, the convolution geometry that several ops read, and the message that names a node with
 * a bad label (extents and stitch geometry: backends/node_args.h; places: graph/inspect.h). */
#include "backends/cpu/cpu_backend.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

zn_ztower_dims zn_cpu_ztower_dims(const zn_graph *g, int id, int batch, int *ints, int cap)
{
    const zn_node *n = &g->nodes[id];
    const int count = zn_ztower_inputs(n);
    const zn_shape z = zn_arg_ztower_stitch(g, n), *w = &g->nodes[n->src[count]].shape;
    const zn_attrs *a = &n->attr;
    zn_ztower_dims d = {
        .st = zn_arg_stitch_dims(g, n, count, &z, batch, ints, cap),
        .conv = {.c = zn_arg_dim(&z, 0), .h = zn_arg_dim(&z, 1), .w = zn_arg_dim(&z, 2),
                 .o = zn_arg_dim(w, 0), .kh = zn_arg_dim(w, 2), .kw = zn_arg_dim(w, 3),
                 .stride_h = a->stride[0], .stride_w = a->stride[1], .pad_h = a->pad[0],
                 .pad_w = a->pad[1], .dil_h = a->dilation[0], .dil_w = a->dilation[1],
                 .groups = 1},
        .eps = a->eps,
        .momentum = a->momentum,
    };
    d.conv.n = zn_ztower_slice(&d.conv, batch);
    return d;
}

size_t zn_cpu_ztower_workspace(const zn_ztower_dims *d)
{
    return zn_ztower_scratch_floats(d) * sizeof(float) + zn_conv2d_workspace_bytes(&d->conv);
}

zn_cpu_ztower zn_cpu_ztower_call(const zn_cpu_call *c)
{
    zn_cpu_ztower z = {.d = zn_cpu_ztower_dims(c->g, c->id, c->p->batch, c->cpu->ints,
                                              c->cpu->cap)};
    for (int k = 0; k < z.d.st.count; k++) c->cpu->ptrs[k] = zn_cpu_src(c, k);
    z.scratch = c->cpu->workspace;
    z.conv_ws = z.scratch + zn_ztower_scratch_floats(&z.d);
    return z;
}

int zn_cpu_next_node(const zn_cpu_call *c)
{
    for (int id = c->id + 1; id <= c->last; id++) {
        const zn_op op = c->g->nodes[id].op;
        if (op != ZN_OP_PARAM && op != ZN_OP_INPUT) return id;
    }
    return -1;
}

bool zn_cpu_overlaps(const zn_plan *p, int a, int b)
{
    return p->region[a] == p->region[b] && p->offset[a] < p->offset[b] + p->bytes[b] &&
           p->offset[b] < p->offset[a] + p->bytes[a];
}

zn_bn_sums *zn_cpu_planes(zn_cpu *cpu, size_t count)
{
    if (count > cpu->planes_cap) {
        zn_bn_sums *grown = realloc(cpu->planes, count * sizeof *grown);
        if (!grown) return NULL;
        cpu->planes = grown, cpu->planes_cap = count;
    }
    return cpu->planes;
}

void zn_cpu_ran_pair(const zn_cpu_call *c, int to)
{
    *c->ran_to = to;
    c->cpu->pairs++;
}

bool zn_cpu_bad_label(const zn_cpu_call *c, int row, int classes)
{
    const int32_t *labels = zn_cpu_tensor(c, c->node->src[1]);
    char where[256];
    return zn_cpu_fail(c->cpu, "head %s (%s): label %d at batch row %d is not in 0..%d",
                       c->node->name, zn_node_where(c->node, where, sizeof where), (int)labels[row],
                       row, classes - 1);
}
