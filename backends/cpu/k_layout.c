/* k_layout.c: data movement between layouts: concat (and its split backward) over an
 * [outer, len, inner] view, and permutation of per-example axes. */
#include "backends/cpu/kernels.h"

#include <assert.h>
#include <string.h>

void zn_concat_split(int n, int rank, const int *dims, int axis, size_t *outer, size_t *inner)
{
    assert(axis >= 0 && axis < rank);
    *outer = (size_t)n;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= (size_t)dims[i];
    for (int i = axis + 1; i < rank; i++) *inner *= (size_t)dims[i];
}

/* Copies between the parts [outer, len_k, inner] and the whole [outer, sum len_k, inner]:
 * gather (forward) fills the whole, otherwise (backward) the parts. */
static void concat_copy(size_t outer, size_t inner, int count, const int *len, float *const *parts,
                        float *whole, bool gather)
{
    size_t total = 0;
    for (int k = 0; k < count; k++) total += (size_t)len[k];
    for (size_t o = 0; o < outer; o++) {
        float *w = whole + o * total * inner;
        for (int k = 0; k < count; k++) {
            size_t chunk = (size_t)len[k] * inner;
            float *p = parts[k] + o * chunk;
            if (gather)
                memcpy(w, p, chunk * sizeof *w);
            else
                memcpy(p, w, chunk * sizeof *w);
            w += chunk;
        }
    }
}

void zn_concat_forward(size_t outer, size_t inner, int count, const int *len,
                       const float *const *x, float *y)
{
    /* concat_copy only reads the parts when gathering */
    concat_copy(outer, inner, count, len, (float *const *)x, y, true);
}

void zn_concat_backward(size_t outer, size_t inner, int count, const int *len, const float *dy,
                        float *const *dx)
{
    /* ... and only reads the whole when scattering */
    concat_copy(outer, inner, count, len, dx, (float *)dy, false);
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
