/* k_norm_relu.cu: batch norm followed by relu as one op (graph/pass_fuse_bn_relu.c), forward and
 * backward, as backends/cpu/k_norm_relu.c computes them. The forward takes each channel's sums
 * of x (the fixed slices of k_channel_sums.cuh, as the z-tower's training statistics), then
 * writes y = max(a*x + b, 0) in one pass. The backward's coefficients take the same sums of x
 * again, so the same a and b and, rounded alike (--fmad=false), the forward's relu mask; then the
 * masked sums of dy and dy*x in a second pass; dx is one pass over x and dy. y is never read. */
#include "backends/cuda/k_channel_sums.cuh"

using namespace zn_cuda;

namespace {

/* The batch norm's output before the relu: the forward and the backward's mask round it alike. */
__device__ inline float pre_relu(float a, float x, float b)
{
    return a * x + b;
}

/* The relu's gradient: g where a*x + b > 0, else +0 (k_norm_relu.c's masked). a and b: [C]. */
struct ReluMask {
    const float *a, *b;
    __device__ float operator()(int ch, float x, float g) const
    {
        return pre_relu(a[ch], x, b[ch]) > 0.0f ? g : 0.0f;
    }
};

/* a, b [C] of the training forward from the sums of x; the running statistics updated unless
 * they are NULL. */
struct StoreTrainAffine {
    zn_bn_dims d;
    const float *gamma, *beta;
    float *running_mean, *running_var, *a, *b;
    __device__ void operator()(int ch, const ChannelSums &t) const
    {
        train_affine(d, t.x, t.xx, gamma[ch], beta[ch],
                     running_mean ? running_mean + ch : nullptr,
                     running_var ? running_var + ch : nullptr, a + ch, b + ch);
    }
};

/* y = max(a*x + b, 0) with x's channel's a and b, as zn_ew_relu takes the max (NaN gives 0). */
struct ForwardRelu {
    int c, hw;
    const float *a, *b, *x;
    float *y;
    template <class I> __device__ void operator()(I i) const
    {
        int ch = channel_of(i, c, hw);
        float v = pre_relu(a[ch], x[i], b[ch]);
        y[i] = v > 0.0f ? v : 0.0f;
    }
};

/* Rows 0..4 of coef [7, C]: dgamma, dbeta, kx, kb, ka, from the sums of x and the masked ones. */
struct StoreBackwardCoef {
    zn_bn_dims d;
    const float *gamma;
    float *coef;
    __device__ void operator()(int ch, const ChannelSums &t) const
    {
        BackwardCoef k = backward_coef(d, t, gamma[ch]);
        const float rows[5] = {k.dgamma, k.dbeta, k.kx, k.kb, k.ka};
        store_rows(coef, (size_t)d.c, ch, rows, 5);
    }
};

/* dx = kx*x + kb + ka*dy*[a*x + b > 0], rounded in k_norm_relu.c's order; dx may be x or dy
 * (each element is read, then written, by one thread). */
struct BackwardData {
    int c, hw;
    const float *coef, *x, *dy;
    float *dx;
    template <class I> __device__ void operator()(I i) const
    {
        int ch = channel_of(i, c, hw);
        const float *k = coef + ch;
        float xi = x[i];
        float g = ReluMask{coef + 5 * c, coef + 6 * c}(ch, xi, dy[i]);
        dx[i] = k[2 * c] * xi + k[3 * c] + k[4 * c] * g;
    }
};

/* Dims the launchers run: some channels, a batch and a plane (no channel: nothing to do). */
bool runnable(const zn_bn_dims *d)
{
    return d->c > 0 && d->n >= 0 && d->hw > 0;
}

cudaError_t forward_relu(const zn_bn_dims *d, const float *a, const float *b, const float *x,
                         float *y, cudaStream_t stream)
{
    return launch_each((size_t)d->n * d->c * d->hw, stream, ForwardRelu{d->c, d->hw, a, b, x, y});
}

} // namespace

cudaError_t zn_cuda_bn_relu_forward(const zn_bn_dims *d, bool training, const float *x,
                                    const float *gamma, const float *beta, float *running_mean,
                                    float *running_var, double *scratch, float *ab, float *y,
                                    cudaStream_t stream)
{
    if (!runnable(d)) return d->c <= 0 ? cudaSuccess : cudaErrorInvalidValue;
    float *a = ab, *b = ab + d->c;
    cudaError_t e =
        training ? channel_reduce<2>(d->n, d->c, d->hw, x, nullptr, scratch, stream,
                                     StoreTrainAffine{*d, gamma, beta, running_mean, running_var,
                                                      a, b})
                 : zn_cuda_bn_infer_affine(d->c, d->eps, gamma, beta, running_mean, running_var,
                                           a, b, stream);
    if (e != cudaSuccess) return e;
    return forward_relu(d, a, b, x, y, stream);
}

cudaError_t zn_cuda_bn_relu_backward_coef(const zn_bn_dims *d, const float *x,
                                          const float *gamma, const float *beta, const float *dy,
                                          double *scratch, float *coef, cudaStream_t stream)
{
    if (!runnable(d)) return d->c <= 0 ? cudaSuccess : cudaErrorInvalidValue;
    float *a = coef + 5 * (size_t)d->c, *b = coef + 6 * (size_t)d->c;
    /* the forward has updated the running statistics: a and b only */
    cudaError_t e = channel_reduce<2>(d->n, d->c, d->hw, x, nullptr, scratch, stream,
                                      StoreTrainAffine{*d, gamma, beta, nullptr, nullptr, a, b});
    if (e != cudaSuccess) return e;
    return channel_reduce<4>(d->n, d->c, d->hw, x, dy, scratch, stream,
                             StoreBackwardCoef{*d, gamma, coef}, ReluMask{a, b});
}

cudaError_t zn_cuda_bn_relu_backward_data(const zn_bn_dims *d, const float *x, const float *dy,
                                          const float *coef, float *dx, cudaStream_t stream)
{
    if (!runnable(d)) return d->c <= 0 ? cudaSuccess : cudaErrorInvalidValue;
    return launch_each((size_t)d->n * d->c * d->hw, stream,
                       BackwardData{d->c, d->hw, coef, x, dy, dx});
}
