/* k_extra.cu: the pooling backward and batch norm's backward (k_extra.h). The pooling backward
 * finds each window's arg-max first, then gathers: each dx element walks the windows that contain
 * it in row-major order, so no two threads write one element and the sums run in the CPU
 * scatter's order. Batch norm's take a channel's sums in one block (double, a fixed tree), then
 * write dx element by element, so dx may overwrite x or dy (the plan runs it in place). */
#include "backends/cuda/k_extra.h"
#include "backends/cuda/k_util.cuh"

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
    __device__ void operator()(size_t o) const
    {
        int b = (int)(o % (size_t)col.out);
        size_t t = o / (size_t)col.out;
        int a = (int)(t % (size_t)row.out);
        size_t plane = t / (size_t)row.out;
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
    __device__ void operator()(size_t e) const
    {
        int j = (int)(e % (size_t)col.in);
        size_t t = e / (size_t)col.in;
        int i = (int)(t % (size_t)row.in);
        size_t plane = t / (size_t)row.in;
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

/* Channel ch's sums over N and HW in double, every thread of the block getting them: x, x^2,
 * and (dy not NULL) dy and dy*x. */
struct ChannelSums {
    double x, xx, dy, dyx;
};

__device__ ChannelSums channel_sums(const zn_bn_dims &d, const float *x, const float *dy, int ch)
{
    size_t m = (size_t)d.n * d.hw;
    ChannelSums t = {0, 0, 0, 0};
    for (size_t k = threadIdx.x; k < m; k += blockDim.x) {
        size_t at = ((k / d.hw) * d.c + ch) * d.hw + k % d.hw;
        double v = x[at];
        t.x += v;
        t.xx += v * v;
        if (dy) {
            double g = dy[at];
            t.dy += g;
            t.dyx += g * v;
        }
    }
    t.x = block_reduce(t.x, Sum(), 0.0);
    t.xx = block_reduce(t.xx, Sum(), 0.0);
    if (dy) {
        t.dy = block_reduce(t.dy, Sum(), 0.0);
        t.dyx = block_reduce(t.dyx, Sum(), 0.0);
    }
    return t;
}

/* Mean and 1/sqrt(biased variance + eps) from the sums. */
__device__ void channel_stats(const zn_bn_dims &d, const ChannelSums &t, double *mean,
                              double *invstd)
{
    double m = (double)d.n * d.hw;
    *mean = t.x / m;
    *invstd = 1.0 / sqrt(fmax(t.xx / m - *mean * *mean, 0.0) + d.eps);
}

/* One block per channel: dgamma = invstd * (sum dy*x - mean * sum dy). */
__global__ void bn_dgamma_kernel(zn_bn_dims d, const float *x, const float *dy, float *dgamma)
{
    int ch = (int)blockIdx.x;
    ChannelSums t = channel_sums(d, x, dy, ch);
    if (threadIdx.x != 0) return;
    double mean, invstd;
    channel_stats(d, t, &mean, &invstd);
    dgamma[ch] = (float)(invstd * (t.dyx - mean * t.dy));
}

/* One block per channel: dx = kx * x + b + a * dy's three coefficients into coef [3, C]
 * (zn_batchnorm_backward's: a = gamma * invstd, kx = -a * invstd * dgamma / M,
 * b = -a * dbeta / M - kx * mean), the sums over dy taken from dgamma and dbeta when given. */
__global__ void bn_coef_kernel(zn_bn_dims d, const float *x, const float *gamma, const float *dy,
                               const float *dgamma, const float *dbeta, float *coef)
{
    int ch = (int)blockIdx.x;
    bool have = dgamma && dbeta;
    ChannelSums t = channel_sums(d, x, have ? nullptr : dy, ch);
    if (threadIdx.x != 0) return;
    double mean, invstd, m = (double)d.n * d.hw;
    channel_stats(d, t, &mean, &invstd);
    double sdy = have ? dbeta[ch] : t.dy;
    double sdyx = have ? dgamma[ch] : invstd * (t.dyx - mean * t.dy);
    double a = gamma[ch] * invstd, kx = -a * invstd * sdyx / m;
    coef[ch] = (float)kx;
    coef[d.c + ch] = (float)(-a * sdy / m - kx * mean);
    coef[2 * d.c + ch] = (float)a;
}

/* dx[i] = kx * x[i] + b + a * dy[i] with its channel's coefficients; dx may be x or dy. */
struct BnBackwardData {
    int c, hw;
    const float *x, *dy, *coef;
    float *dx;
    __device__ void operator()(size_t i) const
    {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        dx[i] = coef[ch] * x[i] + coef[c + ch] + coef[2 * c + ch] * dy[i];
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
                                     float *dgamma, cudaStream_t stream)
{
    if (d->c == 0) return cudaSuccess;
    bn_dgamma_kernel<<<(unsigned)d->c, kThreads, 0, stream>>>(*d, x, dy, dgamma);
    return cudaGetLastError();
}

cudaError_t zn_cuda_batchnorm_backward_data(const zn_bn_dims *d, const float *x,
                                            const float *gamma, const float *dy,
                                            const float *dgamma, const float *dbeta, float *coef,
                                            float *dx, cudaStream_t stream)
{
    if (d->c == 0) return cudaSuccess;
    bn_coef_kernel<<<(unsigned)d->c, kThreads, 0, stream>>>(*d, x, gamma, dy, dgamma, dbeta, coef);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    size_t n = (size_t)d->n * d->c * d->hw;
    return launch_each(n, stream, BnBackwardData{d->c, d->hw, x, dy, coef, dx});
}
