/* k_util.cuh: what the CUDA kernels (k_*.cu) share: grid-stride launches of a functor over n
 * items or over n warp-sized items, and deterministic warp and block reductions (a fixed
 * butterfly, then a fixed order over the warps: the same bits every run). Device code only;
 * included by the .cu files, never by C. */
#ifndef ZN_CUDA_K_UTIL_CUH
#define ZN_CUDA_K_UTIL_CUH

#include "backends/cuda/cuda_kernels.h"

namespace zn_cuda {

constexpr int kThreads = 256;          /* threads per block of the grid-stride launches */
constexpr unsigned kMaxBlocks = 1u << 16; /* beyond this the threads loop */
constexpr unsigned kFullMask = 0xffffffffu;

inline unsigned blocks_for(size_t threads)
{
    size_t b = (threads + kThreads - 1) / kThreads;
    return b < kMaxBlocks ? (unsigned)b : kMaxBlocks;
}

/* f(i) for every i < n, i of type I. */
template <class I, class F> __global__ void each_kernel(I n, F f)
{
    I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

/* The index is 32 bits wide where n allows (i + stride then cannot wrap): a functor whose
 * operator() is a template on the index type splits it into coordinates with 32-bit divisions,
 * many times cheaper than 64-bit ones, which made such kernels compute-bound. */
template <class F> cudaError_t launch_each(size_t n, cudaStream_t stream, F f)
{
    if (n == 0) return cudaSuccess;
    if (n <= 0x7fffffffu)
        each_kernel<unsigned><<<blocks_for(n), kThreads, 0, stream>>>((unsigned)n, f);
    else
        each_kernel<size_t><<<blocks_for(n), kThreads, 0, stream>>>(n, f);
    return cudaGetLastError();
}

/* f(item, lane) for every item < n, one whole warp per item (so f may use warp shuffles). */
template <class F> __global__ void each_warp_kernel(size_t n, F f)
{
    size_t stride = ((size_t)gridDim.x * blockDim.x) / 32;
    int lane = (int)(threadIdx.x & 31);
    for (size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; i < n; i += stride)
        f(i, lane);
}

template <class F> cudaError_t launch_each_warp(size_t n, cudaStream_t stream, F f)
{
    if (n == 0) return cudaSuccess;
    each_warp_kernel<<<blocks_for(n * 32), kThreads, 0, stream>>>(n, f);
    return cudaGetLastError();
}

struct Sum {
    template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct Min {
    template <class T> __device__ T operator()(T a, T b) const { return b < a ? b : a; }
};
struct Max {
    template <class T> __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};

/* Every lane gets op over the warp's 32 values. The butterfly gives all lanes the same bits:
 * each step combines the same two values on both partners (op is commutative). */
template <class T, class Op> __device__ T warp_reduce(T v, Op op)
{
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}

/* Every thread gets op over the block's values (blockDim.x a multiple of 32, at most 1024);
 * id is op's identity. Called by every thread of the block. */
template <class T, class Op> __device__ T block_reduce(T v, Op op, T id)
{
    __shared__ T part[32];
    __shared__ T result;
    int lane = (int)(threadIdx.x & 31), warp = (int)(threadIdx.x >> 5);
    int warps = (int)(blockDim.x >> 5);
    v = warp_reduce(v, op);
    __syncthreads(); /* an earlier call's readers are done with part and result */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = warp_reduce(lane < warps ? part[lane] : id, op);
        if (lane == 0) result = w;
    }
    __syncthreads();
    return result;
}

} // namespace zn_cuda

#endif
