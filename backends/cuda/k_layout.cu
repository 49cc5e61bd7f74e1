/* k_layout.cu: data movement between layouts, as backends/cpu/k_layout.c: concat and slice over
 * an [outer, len, inner] view (one strided block copy), and the permutation of per-example axes
 * (one thread per output element, which gathers its input element). */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

constexpr int kPermRank = 4;

/* rows blocks of chunk floats from src (blocks `from` apart) to dst (blocks `to` apart). */
struct CopyBlocks {
    size_t chunk;
    const float *src;
    size_t from;
    float *dst;
    size_t to;
    template <class I> __device__ void operator()(I i) const
    {
        size_t o = i / (I)chunk, r = i % (I)chunk;
        dst[o * to + r] = src[o * from + r];
    }
};

cudaError_t copy_blocks(size_t rows, size_t chunk, const float *src, size_t from, float *dst,
                        size_t to, cudaStream_t stream)
{
    return launch_each(rows * chunk, stream, CopyBlocks{chunk, src, from, dst, to});
}

/* The output padded to rank 4 with leading unit axes: extents e and the input stride s of each
 * output axis; size: the elements of one example. */
struct Transpose {
    size_t e[kPermRank], s[kPermRank], size;
    const float *x;
    float *y;
    template <class I> __device__ void operator()(I i) const
    {
        I q = i % (I)size;
        size_t at = (size_t)(i / (I)size) * size;
        for (int a = kPermRank - 1; a >= 0; a--) {
            at += (size_t)(q % (I)e[a]) * s[a];
            q /= (I)e[a];
        }
        y[i] = x[at];
    }
};

} // namespace

cudaError_t zn_cuda_concat_forward(size_t outer, size_t inner, int count, const int *len,
                                   const float *const *x, float *y, cudaStream_t stream)
{
    size_t total = 0, at = 0;
    for (int k = 0; k < count; k++) total += (size_t)len[k];
    total *= inner;
    for (int k = 0; k < count; k++) {
        size_t chunk = (size_t)len[k] * inner;
        cudaError_t e = copy_blocks(outer, chunk, x[k], chunk, y + at, total, stream);
        if (e != cudaSuccess) return e;
        at += chunk;
    }
    return cudaSuccess;
}

cudaError_t zn_cuda_slice_forward(size_t outer, size_t inner, size_t total, size_t offset,
                                  size_t len, const float *x, float *y, cudaStream_t stream)
{
    return copy_blocks(outer, len * inner, x + offset * inner, total * inner, y, len * inner,
                       stream);
}

cudaError_t zn_cuda_transpose_forward(int n, int rank, const int *dims, const int *perm,
                                      const float *x, float *y, cudaStream_t stream)
{
    if (rank < 1 || rank > kPermRank) return cudaErrorInvalidValue;
    size_t in_stride[kPermRank], size = 1;
    for (int i = rank - 1; i >= 0; i--) {
        in_stride[i] = size;
        size *= (size_t)dims[i];
    }
    Transpose t{{}, {}, size, x, y};
    int pad = kPermRank - rank;
    for (int i = 0; i < kPermRank; i++) {
        t.e[i] = i < pad ? 1 : (size_t)dims[perm[i - pad]];
        t.s[i] = i < pad ? 0 : in_stride[perm[i - pad]];
    }
    if (size == 0) return cudaSuccess;
    return launch_each((size_t)n * size, stream, t);
}

cudaError_t zn_cuda_transpose_backward(int n, int rank, const int *dims, const int *perm,
                                       const float *dy, float *dx, cudaStream_t stream)
{
    if (rank < 1 || rank > kPermRank) return cudaErrorInvalidValue;
    int inv[kPermRank], ydims[kPermRank];
    for (int i = 0; i < rank; i++) {
        inv[perm[i]] = i;
        ydims[i] = dims[perm[i]];
    }
    return zn_cuda_transpose_forward(n, rank, ydims, inv, dy, dx, stream);
}
