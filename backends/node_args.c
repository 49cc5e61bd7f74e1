/* node_args.c: see node_args.h. */
#include "backends/node_args.h"

#include <assert.h>
#include <stdint.h>

size_t zn_arg_numel(const zn_shape *s, int batch)
{
    return (size_t)(s->batched ? batch : 1) * (size_t)zn_shape_numel(s);
}

int zn_arg_dim(const zn_shape *s, int i)
{
    assert(i < s->rank && s->dim[i] <= INT32_MAX);
    return (int)s->dim[i];
}

int zn_arg_inner(const zn_shape *s, int from)
{
    int64_t n = 1;
    for (int i = from; i < s->rank; i++) n *= s->dim[i];
    assert(n <= INT32_MAX);
    return (int)n;
}

void zn_arg_int_dims(const zn_shape *s, int dims[ZN_MAX_RANK])
{
    for (int i = 0; i < s->rank; i++) dims[i] = zn_arg_dim(s, i);
}

zn_pool_dims zn_arg_pool_dims(const zn_shape *x, const zn_attrs *a, int n)
{
    return (zn_pool_dims){n, zn_arg_dim(x, 0), zn_arg_dim(x, 1), zn_arg_dim(x, 2),
                          {a->kernel[0], a->kernel[1]}, {a->stride[0], a->stride[1]},
                          {a->pad[0], a->pad[1]}};
}

zn_window_reduce zn_arg_window(zn_resample_mode m)
{
    return m == ZN_RESAMPLE_MAX ? ZN_WINDOW_MAX : ZN_WINDOW_AVG;
}

zn_stitch_dims zn_arg_stitch_dims(const zn_graph *g, const zn_node *n, int count,
                                  const zn_shape *z, int batch, int *ints, int cap)
{
    int *ch = ints, *h = ch + cap, *w = h + cap;
    for (int k = 0; k < count; k++) {
        const zn_shape *r = &g->nodes[n->src[k]].shape;
        ch[k] = zn_arg_dim(r, 0);
        h[k] = zn_arg_dim(r, 1);
        w[k] = zn_arg_dim(r, 2);
    }
    return (zn_stitch_dims){batch, count, ch, h, w, zn_arg_dim(z, 0), zn_arg_dim(z, 2),
                            zn_arg_window(n->attr.mode)};
}

zn_shape zn_arg_ztower_stitch(const zn_graph *g, const zn_node *n)
{
    int64_t channels = 0;
    for (int k = 0; k < zn_ztower_inputs(n); k++) channels += g->nodes[n->src[k]].shape.dim[0];
    return (zn_shape){.rank = 3, .dim = {n->attr.size[0], channels, n->attr.size[1]},
                      .batched = true, .dtype = ZN_DTYPE_F32};
}

void zn_concat_split(int n, int rank, const int *dims, int axis, size_t *outer, size_t *inner)
{
    assert(axis >= 0 && axis < rank);
    *outer = (size_t)n;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= (size_t)dims[i];
    for (int i = axis + 1; i < rank; i++) *inner *= (size_t)dims[i];
}
