/* k_channel_sums.cuh: per-channel sums over N and HW of x [N, C, HW] (and of x^2, dy and dy*x)
 * in two deterministic stages, for the bias gradient and batch norm's backward. Block (ch, s)
 * sums batch slice s of channel ch into double partials; then one warp per channel adds its
 * slices in a fixed order and hands the totals to a finisher. One block per channel left most of
 * a GPU idle (64 channels on 132 SMs); the slices depend on the shape alone, so the bits do not
 * change between runs. Device code; included by the .cu files. */
#ifndef ZN_CUDA_K_CHANNEL_SUMS_CUH
#define ZN_CUDA_K_CHANNEL_SUMS_CUH

#include "backends/cuda/k_util.cuh"

namespace zn_cuda {

constexpr int kSliceElems = 8192; /* a slice holds at least this many elements of its channel */

/* The slices of a channel of n examples of hw elements: at most one per example, at most
 * ZN_CUDA_CHANNEL_SLICES. */
inline int channel_slices(int n, int hw)
{
    long long s = ((long long)n * hw + kSliceElems - 1) / kSliceElems;
    if (s > n) s = n;
    if (s > ZN_CUDA_CHANNEL_SLICES) s = ZN_CUDA_CHANNEL_SLICES;
    return s < 1 ? 1 : (int)s;
}

/* Totals of one channel: x, x^2, and when dy was given, dy and dy*x. */
struct ChannelSums {
    double x, xx, dy, dyx;
};

/* A channel's mean, biased variance and 1/sqrt(var + eps) from its sums of x and x^2 over m
 * values, as k_norm.c's channel_stats and zn_bn_train_stats compute them. */
__device__ inline void channel_moments(double m, double sx, double sxx, float eps, double *mean,
                                       double *var, double *invstd)
{
    *mean = sx / m;
    *var = fmax(sxx / m - *mean * *mean, 0.0);
    *invstd = 1.0 / sqrt(*var + eps);
}

/* Q sums (1: x; 2: x, x^2; 4: x, x^2, dy, dy*x) of block (ch, s)'s slice into
 * part[(q * c + ch) * slices + s]. */
template <int Q>
__global__ void channel_partials_kernel(int n, int c, int hw, int slices, const float *x,
                                        const float *dy, double *part)
{
    int ch = (int)blockIdx.x, s = (int)blockIdx.y;
    int b0 = (int)((long long)n * s / slices), b1 = (int)((long long)n * (s + 1) / slices);
    unsigned count = (unsigned)(b1 - b0) * (unsigned)hw, uhw = (unsigned)hw;
    double t[4] = {0.0, 0.0, 0.0, 0.0};
    for (unsigned k = threadIdx.x; k < count; k += blockDim.x) {
        size_t at = ((size_t)(b0 + k / uhw) * c + ch) * hw + k % uhw;
        double v = x[at];
        t[0] += v;
        if (Q >= 2) t[1] += v * v;
        if (Q == 4) {
            double g = dy[at];
            t[2] += g;
            t[3] += g * v;
        }
    }
    for (int q = 0; q < Q; q++) {
        double r = block_reduce(t[q], Sum(), 0.0);
        if (threadIdx.x == 0) part[((size_t)q * c + ch) * slices + s] = r;
    }
}

/* One warp per channel: its Q totals from the partials, lane-strided then a fixed butterfly;
 * lane 0 calls finish(ch, totals). */
template <int Q, class Finish>
__global__ void channel_finish_kernel(int c, int slices, const double *part, Finish finish)
{
    int ch = (int)((blockIdx.x * blockDim.x + threadIdx.x) / 32), lane = (int)(threadIdx.x & 31);
    if (ch >= c) return; /* whole warps leave together */
    double v[4] = {0.0, 0.0, 0.0, 0.0};
    for (int q = 0; q < Q; q++) {
        double a = 0.0;
        for (int s = lane; s < slices; s += 32) a += part[((size_t)q * c + ch) * slices + s];
        v[q] = warp_reduce(a, Sum());
    }
    if (lane == 0) finish(ch, ChannelSums{v[0], v[1], v[2], v[3]});
}

/* The Q sums of every channel of x [n, c, hw] (and dy, for Q = 4) into finish; part is device
 * scratch of zn_cuda_channel_scratch_bytes(c). */
template <int Q, class Finish>
cudaError_t channel_reduce(int n, int c, int hw, const float *x, const float *dy, double *part,
                           cudaStream_t stream, Finish finish)
{
    if (c <= 0) return cudaSuccess;
    if (n < 0 || hw <= 0) return cudaErrorInvalidValue;
    int slices = channel_slices(n, hw);
    channel_partials_kernel<Q><<<dim3((unsigned)c, (unsigned)slices), kThreads, 0, stream>>>(
        n, c, hw, slices, x, dy, part);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    unsigned blocks = (unsigned)(((size_t)c * 32 + kThreads - 1) / kThreads);
    channel_finish_kernel<Q><<<blocks, kThreads, 0, stream>>>(c, slices, part, finish);
    return cudaGetLastError();
}

} // namespace zn_cuda

#endif
