/* k_loss.cu: softmax cross-entropy with label smoothing, forward and backward, as
 * backends/cpu/k_loss.c: each row shifted by its maximum, sums in double, one warp per row. The
 * forward is one block (the batch's row losses summed in a fixed order, so the same bits every
 * run); both check the labels and report the first bad row through a device int. */
#include "backends/cuda/k_util.cuh"

#include <climits>

using namespace zn_cuda;

namespace {

constexpr int kLossThreads = 1024;

/* 1 + the first row whose label is outside [0, k), or 0; every thread of the block gets it. */
__device__ int first_bad_label(int n, int k, const int32_t *labels)
{
    int bad = INT_MAX;
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x)
        if (labels[i] < 0 || labels[i] >= k) {
            bad = i;
            break;
        }
    bad = block_reduce(bad, Min{}, INT_MAX);
    return bad == INT_MAX ? 0 : bad + 1;
}

/* log sum_j exp z_j of one row (shifted by its maximum, summed in double); sum_z (if not NULL)
 * gets sum_j z_j in double. The same bits in every lane. */
__device__ double row_logsumexp(const float *z, int k, int lane, double *sum_z)
{
    float m = z[0];
    for (int j = lane; j < k; j += 32) m = Max{}(m, z[j]);
    m = warp_reduce(m, Max{});
    double s = 0.0, t = 0.0;
    for (int j = lane; j < k; j += 32) {
        s += exp((double)z[j] - m);
        t += z[j];
    }
    if (sum_z) *sum_z = warp_reduce(t, Sum{});
    return m + log(warp_reduce(s, Sum{}));
}

__global__ void __launch_bounds__(kLossThreads)
    xent_forward_kernel(zn_xent_dims d, const float *logits, const int32_t *labels, float *loss,
                        int *bad_row)
{
    int bad = first_bad_label(d.n, d.k, labels);
    if (bad) {
        if (threadIdx.x == 0) *bad_row = bad;
        return;
    }
    int lane = (int)(threadIdx.x & 31), warp = (int)(threadIdx.x >> 5);
    double eps = d.smoothing, total = 0.0;
    for (int i = warp; i < d.n; i += (int)(blockDim.x >> 5)) {
        const float *z = logits + (size_t)i * d.k;
        double sum;
        double lse = row_logsumexp(z, d.k, lane, &sum);
        if (lane == 0) total += lse - (1.0 - eps) * z[labels[i]] - eps / d.k * sum;
    }
    total = block_reduce(lane == 0 ? total : 0.0, Sum{}, 0.0);
    if (threadIdx.x == 0) {
        *bad_row = 0;
        *loss = (float)(d.mean ? total / d.n : total);
    }
}

__global__ void __launch_bounds__(kLossThreads)
    check_labels_kernel(int n, int k, const int32_t *labels, int *bad_row)
{
    int bad = first_bad_label(n, k, labels);
    if (threadIdx.x == 0) *bad_row = bad;
}

/* dlogits of row i = scale * (softmax - target); 0 for a row with a bad label. */
struct XentBackward {
    int k;
    double scale, on, off;
    const float *logits;
    const int32_t *labels;
    float *dlogits;
    __device__ void operator()(size_t i, int lane) const
    {
        const float *z = logits + i * k;
        float *g = dlogits + i * k;
        int label = labels[i];
        if (label < 0 || label >= k) {
            for (int j = lane; j < k; j += 32) g[j] = 0.0f;
            return;
        }
        double lse = row_logsumexp(z, k, lane, nullptr);
        for (int j = lane; j < k; j += 32)
            g[j] = (float)(scale * (exp(z[j] - lse) - (j == label ? on : off)));
    }
};

} // namespace

cudaError_t zn_cuda_xent_forward(const zn_xent_dims *d, const float *logits,
                                 const int32_t *labels, float *loss, int *bad_row,
                                 cudaStream_t stream)
{
    if (d->n <= 0 || d->k <= 0) return cudaErrorInvalidValue;
    xent_forward_kernel<<<1, kLossThreads, 0, stream>>>(*d, logits, labels, loss, bad_row);
    return cudaGetLastError();
}

cudaError_t zn_cuda_xent_backward(const zn_xent_dims *d, const float *logits,
                                  const int32_t *labels, float weight, float *dlogits,
                                  int *bad_row, cudaStream_t stream)
{
    if (d->n <= 0 || d->k <= 0) return cudaErrorInvalidValue;
    check_labels_kernel<<<1, kLossThreads, 0, stream>>>(d->n, d->k, labels, bad_row);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    double off = (double)d->smoothing / d->k, on = 1.0 - d->smoothing + off;
    double scale = d->mean ? (double)weight / d->n : weight;
    return launch_each_warp((size_t)d->n, stream,
                            XentBackward{d->k, scale, on, off, logits, labels, dlogits});
}
