/* k_ztower.cu: batch norm in pieces, as backends/cpu/k_norm.c gives them to the fused z-tower
 * (cuda_ztower.c), which sees its batch one slice at a time: channel sums added slice after slice
 * into double accumulators (the fixed two-stage reduction of k_channel_sums.cuh, one writer per
 * channel, so the same bits every run), the forward and backward coefficients from those sums
 * with k_norm.c's formulas, and the per-channel affine (also batch norm's dx, k_extra.cu). */
#include "backends/cuda/k_channel_sums.cuh"

using namespace zn_cuda;

namespace {

/* sums[ch] += the slice's totals; lane 0 of channel ch's warp is its only writer. */
struct AddSums {
    zn_bn_sums *sums;
    __device__ void operator()(int ch, const ChannelSums &t) const
    {
        zn_bn_sums *s = &sums[ch];
        s->x += t.x;
        s->xx += t.xx;
        s->dy += t.dy;
        s->dyx += t.dyx;
    }
};

struct TrainStats {
    zn_bn_dims d;
    const zn_bn_sums *sums;
    const float *gamma, *beta;
    float *running_mean, *running_var, *a, *b;
    __device__ void operator()(size_t ch) const
    {
        train_affine(d, sums[ch].x, sums[ch].xx, gamma[ch], beta[ch],
                     running_mean ? running_mean + ch : nullptr,
                     running_var ? running_var + ch : nullptr, a + ch, b + ch);
    }
};

struct InferAffine {
    float eps;
    const float *gamma, *beta, *mean, *var;
    float *a, *b;
    __device__ void operator()(size_t ch) const
    {
        float fa = gamma[ch] / sqrtf(var[ch] + eps);
        a[ch] = fa;
        b[ch] = beta[ch] - mean[ch] * fa;
    }
};

/* k [5, C]: kx, kb, ka, dgamma, dbeta (backward_coef). */
struct BackwardAffine {
    zn_bn_dims d;
    const zn_bn_sums *stats, *grads;
    const float *gamma;
    float *k;
    __device__ void operator()(size_t ch) const
    {
        const zn_bn_sums &s = stats[ch], &g = grads[ch];
        BackwardCoef r = backward_coef(d, ChannelSums{s.x, s.xx, g.dy, g.dyx}, gamma[ch]);
        const float rows[5] = {r.kx, r.kb, r.ka, r.dgamma, r.dbeta};
        store_rows(k, (size_t)d.c, (int)ch, rows, 5);
    }
};

/* y[i] = a*x[i] + b (+ k*g[i]) with its channel's coefficients, rounded in k_norm.c's order; y
 * may be x or g (each element is read, then written, by one thread). */
struct Affine {
    int c, hw;
    const float *a, *b, *x, *g, *k;
    float *y;
    template <class I> __device__ void operator()(I i) const
    {
        int ch = channel_of(i, c, hw);
        float v = a[ch] * x[i] + b[ch];
        y[i] = g ? v + k[ch] * g[i] : v;
    }
};

} // namespace

cudaError_t zn_cuda_bn_sums_add(const zn_bn_dims *d, const float *x, const float *dy,
                                double *scratch, zn_bn_sums *sums, cudaStream_t stream)
{
    AddSums add{sums};
    return dy ? channel_reduce<4>(d->n, d->c, d->hw, x, dy, scratch, stream, add)
              : channel_reduce<2>(d->n, d->c, d->hw, x, nullptr, scratch, stream, add);
}

cudaError_t zn_cuda_bn_train_stats(const zn_bn_dims *d, const zn_bn_sums *sums,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *a, float *b, cudaStream_t stream)
{
    return launch_each((size_t)d->c, stream,
                       TrainStats{*d, sums, gamma, beta, running_mean, running_var, a, b});
}

cudaError_t zn_cuda_bn_infer_affine(int c, float eps, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var,
                                    float *a, float *b, cudaStream_t stream)
{
    return launch_each((size_t)c, stream,
                       InferAffine{eps, gamma, beta, running_mean, running_var, a, b});
}

cudaError_t zn_cuda_bn_backward_affine(const zn_bn_dims *d, const zn_bn_sums *stats,
                                       const zn_bn_sums *grads, const float *gamma, float *k,
                                       cudaStream_t stream)
{
    return launch_each((size_t)d->c, stream, BackwardAffine{*d, stats, grads, gamma, k});
}

cudaError_t zn_cuda_bn_affine(const zn_bn_dims *d, const float *a, const float *b, const float *x,
                              const float *g, const float *k, float *y, cudaStream_t stream)
{
    return launch_each((size_t)d->n * d->c * d->hw, stream,
                       Affine{d->c, d->hw, a, b, x, g, k, y});
}
