/* sums.h: the per-channel sums of batch norm (x, x^2, dy, dy*x) and of bias gradients, over rows
 * of contiguous floats, in the active kernel path's vector width (cpu_features.h). */
#ifndef ZN_CPU_SUMS_H
#define ZN_CPU_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backends/kernel_args.h"

/* For each of rows rows of n floats, stride floats apart from x (and dy, when not NULL): adds
 * the row's sums to t, row after row, each row summed in float lanes and added in double, so a
 * batch summed in consecutive slices of rows gets the same bits as in one call. squares: also
 * x^2 (always when dy is given); else t->xx is left alone. Every sum of one call takes the same
 * lanes in the same order, so sums of x and of dy over equal data agree bit for bit. */
void zn_rows_sums_add(const float *x, const float *dy, int rows, size_t stride, int n,
                      bool squares, zn_bn_sums *t);

/* The sums of each of planes planes of hw floats from x, one after another (a tensor's images
 * [planes = n * c, hw]), each in out[p] as zn_rows_sums_add gives it from zero: a channel's
 * planes then folded in order of n (zn_bn_sums_fold) are the bits of zn_rows_sums_add over its
 * rows. The convolutions' epilogues take them while an image's output is still in cache
 * (conv.h). */
void zn_plane_sums(const float *x, int planes, int hw, bool squares, zn_bn_sums *out);

/* t += row, field by field: how the sums add a row's (or a plane's) sums to the totals. */
static inline void zn_bn_sums_fold(zn_bn_sums *t, const zn_bn_sums *row)
{
    t->x += row->x, t->xx += row->xx, t->dy += row->dy, t->dyx += row->dyx;
}

/* Channel ch's totals from the plane sums [n * c] of zn_plane_sums, folded in batch order: the
 * bits of zn_rows_sums_add over the channel's n rows. */
static inline zn_bn_sums zn_planes_channel_sums(const zn_bn_sums *planes, int n, int c, int ch)
{
    zn_bn_sums t = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) zn_bn_sums_fold(&t, &planes[(size_t)i * c + ch]);
    return t;
}

/* The same sums of g and g*x only (t->dy, t->dyx), g being dy where a*x + b > 0 and +0 elsewhere
 * (the gradient through a relu after batch norm, zn_relu_masked), in 8 lanes on every path. */
void zn_rows_masked_sums_add(const float *x, const float *dy, float a, float b, int rows,
                             size_t stride, int n, zn_bn_sums *t);

/* Batch norm's output before the relu, a*x + b: one multiply and one add, rounded apart, so the
 * fused forward (k_norm_relu.c) and the backward's mask round it alike. */
static inline float zn_bn_pre_relu(float a, float x, float b)
{
    return a * x + b;
}

/* g where a*x + b > 0, else +0 (the relu's gradient after batch norm), as g's bits and'ed with
 * the compare's mask. */
static inline float zn_relu_masked(float a, float x, float b, float g)
{
    uint32_t bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= -(uint32_t)(zn_bn_pre_relu(a, x, b) > 0.0f);
    memcpy(&g, &bits, sizeof g);
    return g;
}

#endif
