/* k_layout.c: data movement between layouts: concat, slice and concat's split backward over an
 * [outer, len, inner] view, and permutation of per-example axes. */
#include "backends/cpu/kernels.h"

#include <assert.h>
#include <string.h>

/* rows blocks of `chunk` floats from src (blocks `from` floats apart) to dst (`to` apart). */
static void copy_blocks(size_t rows, size_t chunk, const float *src, size_t from, float *dst,
                        size_t to)
{
    for (size_t o = 0; o < rows; o++) memcpy(dst + o * to, src + o * from, chunk * sizeof *dst);
}

static size_t total_len(int count, const int *len)
{
    size_t total = 0;
    for (int k = 0; k < count; k++) total += (size_t)len[k];
    return total;
}

void zn_concat_forward(size_t outer, size_t inner, int count, const int *len,
                       const float *const *x, float *y)
{
    size_t total = total_len(count, len) * inner, at = 0;
    for (int k = 0; k < count; k++) {
        size_t chunk = (size_t)len[k] * inner;
        copy_blocks(outer, chunk, x[k], chunk, y + at, total);
        at += chunk;
    }
}

void zn_slice_forward(size_t outer, size_t inner, size_t total, size_t offset, size_t len,
                      const float *x, float *y)
{
    copy_blocks(outer, len * inner, x + offset * inner, total * inner, y, len * inner);
}

void zn_concat_backward(size_t outer, size_t inner, int count, const int *len, const float *dy,
                        float *const *dx)
{
    size_t total = total_len(count, len), at = 0;
    for (int k = 0; k < count; k++) {
        zn_slice_forward(outer, inner, total, at, (size_t)len[k], dy, dx[k]);
        at += (size_t)len[k];
    }
}

#define PERM_RANK 4

void zn_transpose_forward(int n, int rank, const int *dims, const int *perm, const float *x,
                          float *y)
{
    assert(rank >= 1 && rank <= PERM_RANK);
    /* Pad to rank 4 with leading unit axes; s[i]: input stride of output axis i. */
    size_t in_stride[PERM_RANK], size = 1;
    for (int i = rank - 1; i >= 0; i--) {
        in_stride[i] = size;
        size *= (size_t)dims[i];
    }
    int pad = PERM_RANK - rank, e[PERM_RANK];
    size_t s[PERM_RANK];
    for (int i = 0; i < PERM_RANK; i++) {
        e[i] = i < pad ? 1 : dims[perm[i - pad]];
        s[i] = i < pad ? 0 : in_stride[perm[i - pad]];
    }
    for (int b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * size;
        for (int i0 = 0; i0 < e[0]; i0++)
            for (int i1 = 0; i1 < e[1]; i1++)
                for (int i2 = 0; i2 < e[2]; i2++) {
                    const float *p = xb + i0 * s[0] + i1 * s[1] + i2 * s[2];
                    for (int i3 = 0; i3 < e[3]; i3++) *y++ = p[i3 * s[3]];
                }
    }
}

void zn_transpose_backward(int n, int rank, const int *dims, const int *perm, const float *dy,
                           float *dx)
{
    assert(rank >= 1 && rank <= PERM_RANK);
    int inv[PERM_RANK], ydims[PERM_RANK];
    for (int i = 0; i < rank; i++) {
        inv[perm[i]] = i;
        ydims[i] = dims[perm[i]];
    }
    zn_transpose_forward(n, rank, ydims, inv, dy, dx);
}
