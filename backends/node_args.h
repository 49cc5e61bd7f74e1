/* node_args.h: what every backend's op runners read off a node, whatever the device: its extents
 * as the kernels' int arguments, its element count at a batch, its pooling window, how a
 * resample or stitch mode reduces and its stitch geometry. Built into the CPU backend and into
 * the CUDA module. */
#ifndef ZN_NODE_ARGS_H
#define ZN_NODE_ARGS_H

#include <stddef.h>

#include "backends/kernel_args.h"
#include "graph/graph.h"

/* Elements of a tensor of shape s at this batch, its batch axis included. */
size_t zn_arg_numel(const zn_shape *s, int batch);
/* Extent i of s as an int (per-example extents fit: at most 2^31 elements per example). */
int zn_arg_dim(const zn_shape *s, int i);
/* The product of extents from..rank of s (1 when from >= rank): H*W of [C, H, W] from 1. */
int zn_arg_inner(const zn_shape *s, int from);
/* Per-example extents of s as ints (the kernels' dims[] arguments). */
void zn_arg_int_dims(const zn_shape *s, int dims[ZN_MAX_RANK]);
/* The pooling window of attributes a over x [C, H, W] with batch extent n. */
zn_pool_dims zn_arg_pool_dims(const zn_shape *x, const zn_attrs *a, int n);
/* How a resample or stitch mode reduces (nearest has one-element windows: either works). */
zn_window_reduce zn_arg_window(zn_resample_mode m);
/* A stitch of node n's sources 0..count-1 into z [S_h, sum C_k, S_w] with batch extent batch;
 * the per-input C_k, H_k, W_k go to ints[0..count), ints[cap..), ints[2 * cap..). */
zn_stitch_dims zn_arg_stitch_dims(const zn_graph *g, const zn_node *n, int count,
                                  const zn_shape *z, int batch, int *ints, int cap);
/* A z-tower node's (zn_ztower_inputs) stitched tensor, per example: [S_h, sum C_k, S_w]. */
zn_shape zn_arg_ztower_stitch(const zn_graph *g, const zn_node *n);
/* A concat along per-example `axis` of N-batched tensors of per-example shape dims[rank], seen
 * as [outer, len_k, inner]: outer = N * dims[0..axis), inner = dims(axis..rank). */
void zn_concat_split(int n, int rank, const int *dims, int axis, size_t *outer, size_t *inner);

#endif
