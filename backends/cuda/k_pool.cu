/* k_pool.cu: global max and average pooling [N, C, H, W] -> [N, C], forward and backward, one
 * warp per plane (a plane can hold thousands of values: the z-tower's are [sum C, 8]). The
 * rules are backends/cpu/k_pool.c's: max takes the plane's FIRST maximum in row-major order,
 * average sums in double. Windowed max/avg pooling is cuDNN's. */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

/* The index the CPU's sequential scan (`x[i] > x[best]`) finds, computed by the warp: the least
 * index holding the greatest non-NaN value, except that a NaN first element is never replaced.
 * Every lane gets it. */
__device__ long long plane_argmax(const float *x, long long len, int lane)
{
    long long best = -1;
    float v = 0.0f;
    const bool first_nan = x[0] != x[0]; /* read before any lane may write over x (in place) */
    for (long long i = lane; i < len; i += 32)
        if (x[i] == x[i] && (best < 0 || x[i] > v)) {
            best = i;
            v = x[i];
        }
    for (int o = 16; o > 0; o >>= 1) {
        long long ob = __shfl_xor_sync(kFullMask, best, o);
        float ov = __shfl_xor_sync(kFullMask, v, o);
        if (ob >= 0 && (best < 0 || ov > v || (ov == v && ob < best))) {
            best = ob;
            v = ov;
        }
    }
    return best < 0 || first_nan ? 0 : best;
}

/* The plane's sum in double, the same bits in every lane. */
__device__ double plane_sum(const float *x, long long len, int lane)
{
    double s = 0.0;
    for (long long i = lane; i < len; i += 32) s += x[i];
    return warp_reduce(s, Sum{});
}

struct Forward {
    zn_window_reduce r;
    long long hw;
    const float *x;
    float *y;
    __device__ void operator()(size_t p, int lane) const
    {
        const float *xp = x + p * hw;
        float v = r == ZN_WINDOW_MAX ? xp[plane_argmax(xp, hw, lane)]
                                     : (float)(plane_sum(xp, hw, lane) / hw);
        if (lane == 0) y[p] = v;
    }
};

/* dx = 0 + g at the maximum (max) or everywhere (avg, g = dy / HW), 0 elsewhere, as the CPU's
 * zeroed plane plus its one addition. */
struct Backward {
    zn_window_reduce r;
    long long hw;
    const float *x, *dy;
    float *dx;
    __device__ void operator()(size_t p, int lane) const
    {
        float g = dy[p];
        long long at = -1;
        if (r == ZN_WINDOW_MAX) at = plane_argmax(x + p * hw, hw, lane);
        else g /= (float)hw;
        float *dp = dx + p * hw;
        for (long long i = lane; i < hw; i += 32) dp[i] = at < 0 || i == at ? 0.0f + g : 0.0f;
    }
};

} // namespace

cudaError_t zn_cuda_global_pool_forward(zn_window_reduce r, int n, int c, int h, int w,
                                        const float *x, float *y, cudaStream_t stream)
{
    long long hw = (long long)h * w;
    if (hw <= 0) return cudaErrorInvalidValue;
    return launch_each_warp((size_t)n * c, stream, Forward{r, hw, x, y});
}

cudaError_t zn_cuda_global_pool_backward(zn_window_reduce r, int n, int c, int h, int w,
                                         const float *x, const float *dy, float *dx,
                                         cudaStream_t stream)
{
    long long hw = (long long)h * w;
    if (hw <= 0) return cudaErrorInvalidValue;
    return launch_each_warp((size_t)n * c, stream, Backward{r, hw, x, dy, dx});
}
