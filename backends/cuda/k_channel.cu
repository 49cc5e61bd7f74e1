/* k_channel.cu: per-channel kernels: the channel sum behind every bias gradient (double
 * accumulators over fixed batch slices, k_channel_sums.cuh, so the same bits every run) and the
 * batch-norm folding of inference graphs (k_norm.c's zn_bn_fold_weight/_bias). */
#include "backends/cuda/k_channel_sums.cuh"

using namespace zn_cuda;

namespace {

struct StoreSum {
    float *sum;
    __device__ void operator()(int ch, const ChannelSums &t) const { sum[ch] = (float)t.x; }
};

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

size_t zn_cuda_channel_scratch_bytes(int c)
{
    return 4 * sizeof(double) * (size_t)(c > 0 ? c : 0) * ZN_CUDA_CHANNEL_SLICES;
}

cudaError_t zn_cuda_channel_sum(int n, int c, int hw, const float *x, double *scratch, float *sum,
                                cudaStream_t stream)
{
    return channel_reduce<1>(n, c, hw, x, nullptr, scratch, stream, StoreSum{sum});
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
