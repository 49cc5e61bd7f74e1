/* k_channel.cu: per-channel kernels: the channel sum behind every bias gradient (one block per
 * channel, double accumulators, a fixed reduction tree, so the same bits every run) and the
 * batch-norm folding of inference graphs (k_norm.c's zn_bn_fold_weight/_bias). */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

/* sum[ch] = x [n, c, hw] summed over n and hw; block ch, blockDim.x threads. */
__global__ void channel_sum_kernel(int n, int c, int hw, const float *x, float *sum)
{
    int ch = (int)blockIdx.x;
    size_t count = (size_t)n * hw;
    double s = 0.0;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
        size_t b = e / (size_t)hw, i = e % (size_t)hw;
        s += x[(b * c + ch) * hw + i];
    }
    s = block_reduce(s, Sum{}, 0.0);
    if (threadIdx.x == 0) sum[ch] = (float)s;
}

__device__ float fold_factor(float gamma, float var, float eps)
{
    return gamma / sqrtf(var + eps);
}

struct FoldWeight {
    size_t per;
    float eps;
    const float *w, *gamma, *var;
    float *out;
    __device__ void operator()(size_t i) const
    {
        size_t ch = i / per;
        out[i] = w[i] * fold_factor(gamma[ch], var[ch], eps);
    }
};

struct FoldBias {
    float eps;
    const float *gamma, *beta, *mean, *var, *b;
    float *out;
    __device__ void operator()(size_t ch) const
    {
        float a = fold_factor(gamma[ch], var[ch], eps);
        out[ch] = beta[ch] + ((b ? b[ch] : 0.0f) - mean[ch]) * a;
    }
};

} // namespace

cudaError_t zn_cuda_channel_sum(int n, int c, int hw, const float *x, float *sum,
                                cudaStream_t stream)
{
    if (c <= 0) return cudaSuccess;
    if (n < 0 || hw <= 0) return cudaErrorInvalidValue;
    channel_sum_kernel<<<(unsigned)c, kThreads, 0, stream>>>(n, c, hw, x, sum);
    return cudaGetLastError();
}

cudaError_t zn_cuda_bn_fold_weight(int c, size_t per, float eps, const float *w,
                                   const float *gamma, const float *running_var, float *out,
                                   cudaStream_t stream)
{
    if (per == 0) return cudaSuccess;
    return launch_each((size_t)c * per, stream, FoldWeight{per, eps, w, gamma, running_var, out});
}

cudaError_t zn_cuda_bn_fold_bias(int c, float eps, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 const float *b, float *out, cudaStream_t stream)
{
    return launch_each((size_t)c, stream,
                       FoldBias{eps, gamma, beta, running_mean, running_var, b, out});
}
