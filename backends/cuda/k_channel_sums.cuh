/* k_channel_sums.cuh: per-channel sums over N and HW of x [N, C, HW] (and of x^2, dy and dy*x)
 * in two deterministic stages, for the bias gradient and batch norm's backward. Block (ch, s)
 * sums batch slice s of channel ch into double partials; then one warp per channel adds its
 * slices in a fixed order and hands the totals to a finisher. One block per channel left most of
 * a GPU idle (64 channels on 132 SMs); the slices depend on the shape alone, so the bits do not
 * change between runs. The sums of dy may be taken through a mask (the fused batch norm + relu's:
 * dy where the forward's output is positive). Device code; included by the .cu files. */
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

/* A channel's training affine y = a*x + b from its sums of x and x^2 over the whole batch, and its
 * running statistics updated, as zn_bn_train_stats does (not when running_mean is NULL or
 * d.momentum is 1, a recomputed copy's). */
__device__ inline void train_affine(const zn_bn_dims &d, double sx, double sxx, float gamma,
                                    float beta, float *running_mean, float *running_var,
                                    float *a, float *b)
{
    double m = (double)d.n * d.hw, mean, var, invstd;
    channel_moments(m, sx, sxx, d.eps, &mean, &var, &invstd);
    float fa = (float)(gamma * invstd);
    *a = fa;
    *b = (float)(beta - mean * fa);
    float keep = d.momentum;
    if (!running_mean || !(keep < 1)) return;
    double unbias = m > 1 ? m / (m - 1) : 1.0;
    *running_mean = keep * *running_mean + (1 - keep) * (float)mean;
    *running_var = keep * *running_var + (1 - keep) * (float)(var * unbias);
}

/* A channel's parameter gradients and the backward affine dx = kx*x + kb + ka*dy. */
struct BackwardCoef {
    float dgamma, dbeta, kx, kb, ka;
};

/* From a channel's four sums over the whole batch (dy's already masked where a relu follows):
 * dgamma and dbeta rounded to float first, then the affine from them, as zn_ztower_coef and
 * zn_bn_backward_affine do. */
__device__ inline BackwardCoef backward_coef(const zn_bn_dims &d, const ChannelSums &t,
                                             float gamma)
{
    double m = (double)d.n * d.hw, mean, var, invstd;
    channel_moments(m, t.x, t.xx, d.eps, &mean, &var, &invstd);
    float dgamma = (float)(invstd * (t.dyx - mean * t.dy)), dbeta = (float)t.dy;
    double a = gamma * invstd, kx = -a * invstd * dgamma / m;
    return BackwardCoef{dgamma, dbeta, (float)kx, (float)(-a * dbeta / m - kx * mean), (float)a};
}

/* out[r * c + ch] = v[r] for r < n: channel ch's values in rows of c. */
__device__ inline void store_rows(float *out, size_t c, int ch, const float *v, int n)
{
    for (int r = 0; r < n; r++) out[r * c + ch] = v[r];
}

/* The channel of element i of a [N, C, HW] tensor (32-bit divisions where I is 32 bits). */
template <class I> __device__ int channel_of(I i, int c, int hw)
{
    return (int)((i / (I)hw) % (I)c);
}

/* dy as the sums take it: unchanged. */
struct PlainGrad {
    __device__ float operator()(int, float, float g) const { return g; }
};

/* Q sums (1: x; 2: x, x^2; 4: x, x^2, g, g*x with g = grad(ch, x, dy)) of block (ch, s)'s slice
 * into part[(q * c + ch) * slices + s]. */
template <int Q, class Grad>
__global__ void channel_partials_kernel(int n, int c, int hw, int slices, const float *x,
                                        const float *dy, double *part, Grad grad)
{
    int ch = (int)blockIdx.x, s = (int)blockIdx.y;
    int b0 = (int)((long long)n * s / slices), b1 = (int)((long long)n * (s + 1) / slices);
    unsigned count = (unsigned)(b1 - b0) * (unsigned)hw, uhw = (unsigned)hw;
    double t[4] = {0.0, 0.0, 0.0, 0.0};
    for (unsigned k = threadIdx.x; k < count; k += blockDim.x) {
        size_t at = ((size_t)(b0 + k / uhw) * c + ch) * hw + k % uhw;
        float xv = x[at];
        double v = xv;
        t[0] += v;
        if (Q >= 2) t[1] += v * v;
        if (Q == 4) {
            double g = grad(ch, xv, dy[at]);
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

/* The Q sums of every channel of x [n, c, hw] (and dy through grad, for Q = 4) into finish;
 * part is device scratch of zn_cuda_channel_scratch_bytes(c). */
template <int Q, class Finish, class Grad = PlainGrad>
cudaError_t channel_reduce(int n, int c, int hw, const float *x, const float *dy, double *part,
                           cudaStream_t stream, Finish finish, Grad grad = Grad())
{
    if (c <= 0) return cudaSuccess;
    if (n < 0 || hw <= 0) return cudaErrorInvalidValue;
    int slices = channel_slices(n, hw);
    channel_partials_kernel<Q><<<dim3((unsigned)c, (unsigned)slices), kThreads, 0, stream>>>(
        n, c, hw, slices, x, dy, part, grad);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    unsigned blocks = (unsigned)(((size_t)c * 32 + kThreads - 1) / kThreads);
    channel_finish_kernel<Q><<<blocks, kThreads, 0, stream>>>(c, slices, part, finish);
    return cudaGetLastError();
}

} // namespace zn_cuda

#endif
