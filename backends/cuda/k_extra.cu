/* k_extra.cu: the pooling backward and batch norm's backward (k_extra.h). The pooling backward
 * finds each window's arg-max first, then gathers: each dx element walks the windows that contain
 * it in row-major order, so no two threads write one element and the sums run in the CPU
 * scatter's order. Batch norm's take a channel's sums over fixed batch slices (double,
 * k_channel_sums.cuh), then write dx element by element, so dx may overwrite x or dy (the plan
 * runs it in place). */
#include "backends/cuda/k_extra.h"
#include "backends/cuda/k_channel_sums.cuh"

using namespace zn_cuda;

namespace {

/* Windows along one axis: window o covers [o*stride - pad, o*stride - pad + kernel), clipped to
 * [0, in); out windows in all. */
struct Axis {
    int in, out, kernel, stride, pad;

    __device__ int lo(int o) const { return max(o * stride - pad, 0); }
    __device__ int hi(int o) const { return min(o * stride - pad + kernel, in); }
    /* The first and last window containing position i. */
    __device__ int first_with(int i) const
    {
        int t = i + pad - kernel + 1;
        return t <= 0 ? 0 : (t + stride - 1) / stride;
    }
    __device__ int last_with(int i) const { return min((i + pad) / stride, out - 1); }
};

/* Index in the plane of the window's first maximum (row-major), as window_argmax finds it. */
__device__ int window_argmax(const float *p, int w, int r0, int r1, int c0, int c1)
{
    int best = -1;
    for (int i = r0; i < r1; i++)
        for (int j = c0; j < c1; j++) {
            int at = i * w + j;
            if (best < 0 || p[at] > p[best]) best = at;
        }
    return best;
}

/* For every window (output element): the plane index of its first maximum, -1 if empty. */
struct PoolArgmax {
    Axis row, col;
    const float *x;
    int *argmax;
    template <class I> __device__ void operator()(I o) const
    {
        int b = (int)(o % (I)col.out);
        I t = o / (I)col.out;
        int a = (int)(t % (I)row.out);
        size_t plane = t / (I)row.out;
        argmax[o] = window_argmax(x + plane * row.in * col.in, col.in, row.lo(a), row.hi(a),
                                  col.lo(b), col.hi(b));
    }
};

/* dx element e: the sum, in row-major window order, of the shares of the windows holding it. It
 * reads no x (max uses argmax), so dx may be x itself. */
struct PoolBackward {
    zn_window_reduce r;
    Axis row, col;
    const int *argmax;
    const float *dy;
    float *dx;
    template <class I> __device__ void operator()(I e) const
    {
        int j = (int)(e % (I)col.in);
        I t = e / (I)col.in;
        int i = (int)(t % (I)row.in);
        size_t plane = t / (I)row.in;
        size_t first = plane * row.out * col.out;
        int self = i * col.in + j;
        float acc = 0.0f;
        for (int a = row.first_with(i); a <= row.last_with(i); a++) {
            int r0 = row.lo(a), r1 = row.hi(a);
            for (int b = col.first_with(j); b <= col.last_with(j); b++) {
                int c0 = col.lo(b), c1 = col.hi(b);
                size_t o = first + (size_t)a * col.out + b;
                if (r == ZN_WINDOW_MAX) {
                    if (argmax[o] == self) acc += dy[o];
                } else if (r1 > r0 && c1 > c0) {
                    acc += dy[o] / (float)((r1 - r0) * (c1 - c0));
                }
            }
        }
        dx[e] = acc;
    }
};

/* Mean and 1/sqrt(biased variance + eps) from the sums. */
__device__ void channel_stats(const zn_bn_dims &d, const ChannelSums &t, double *mean,
                              double *invstd)
{
    double var;
    channel_moments((double)d.n * d.hw, t.x, t.xx, d.eps, mean, &var, invstd);
}

/* dgamma = invstd * (sum dy*x - mean * sum dy). */
struct StoreDgamma {
    zn_bn_dims d;
    float *dgamma;
    __device__ void operator()(int ch, const ChannelSums &t) const
    {
        double mean, invstd;
        channel_stats(d, t, &mean, &invstd);
        dgamma[ch] = (float)(invstd * (t.dyx - mean * t.dy));
    }
};

/* dx = kx * x + b + a * dy's three coefficients into coef [3, C] (zn_batchnorm_backward's:
 * a = gamma * invstd, kx = -a * invstd * dgamma / M, b = -a * dbeta / M - kx * mean), the sums
 * over dy taken from dgamma and dbeta when given (then t holds no dy sums). */
struct StoreCoef {
    zn_bn_dims d;
    const float *gamma, *dgamma, *dbeta;
    float *coef;
    __device__ void operator()(int ch, const ChannelSums &t) const
    {
        bool have = dgamma && dbeta;
        double mean, invstd, m = (double)d.n * d.hw;
        channel_stats(d, t, &mean, &invstd);
        double sdy = have ? dbeta[ch] : t.dy;
        double sdyx = have ? dgamma[ch] : invstd * (t.dyx - mean * t.dy);
        double a = gamma[ch] * invstd, kx = -a * invstd * sdyx / m;
        coef[ch] = (float)kx;
        coef[d.c + ch] = (float)(-a * sdy / m - kx * mean);
        coef[2 * d.c + ch] = (float)a;
    }
};

} // namespace

cudaError_t zn_cuda_pool_backward(zn_window_reduce r, const zn_pool_dims *d, const float *x,
                                  const float *dy, int *argmax, float *dx, cudaStream_t stream)
{
    Axis row = {d->h, (d->h + 2 * d->pad[0] - d->kernel[0]) / d->stride[0] + 1, d->kernel[0],
                d->stride[0], d->pad[0]};
    Axis col = {d->w, (d->w + 2 * d->pad[1] - d->kernel[1]) / d->stride[1] + 1, d->kernel[1],
                d->stride[1], d->pad[1]};
    size_t planes = (size_t)d->n * d->c;
    if (r == ZN_WINDOW_MAX) {
        cudaError_t e = launch_each(planes * row.out * col.out, stream,
                                    PoolArgmax{row, col, x, argmax});
        if (e != cudaSuccess) return e;
    }
    return launch_each(planes * d->h * d->w, stream, PoolBackward{r, row, col, argmax, dy, dx});
}

cudaError_t zn_cuda_batchnorm_dgamma(const zn_bn_dims *d, const float *x, const float *dy,
                                     double *scratch, float *dgamma, cudaStream_t stream)
{
    return channel_reduce<4>(d->n, d->c, d->hw, x, dy, scratch, stream, StoreDgamma{*d, dgamma});
}

cudaError_t zn_cuda_batchnorm_backward_data(const zn_bn_dims *d, const float *x,
                                            const float *gamma, const float *dy,
                                            const float *dgamma, const float *dbeta,
                                            double *scratch, float *coef, float *dx,
                                            cudaStream_t stream)
{
    if (d->c == 0) return cudaSuccess;
    StoreCoef store{*d, gamma, dgamma, dbeta, coef};
    cudaError_t e = dgamma && dbeta
                        ? channel_reduce<2>(d->n, d->c, d->hw, x, nullptr, scratch, stream, store)
                        : channel_reduce<4>(d->n, d->c, d->hw, x, dy, scratch, stream, store);
    if (e != cudaSuccess) return e;
    return zn_cuda_bn_affine(d, coef, coef + d->c, x, dy, coef + 2 * d->c, dx, stream);
}
