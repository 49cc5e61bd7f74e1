/* k_gate.cu: dropout and the element-wise product of two tensors (a [C] gate broadcast over
 * [C, H, W], or two of one shape) with the gate's gradient, the formulas of backends/cpu/
 * k_dropout.c and k_mul.c. Dropout's mask is dropout_mask.h's hash, shared with the CPU: the
 * same elements are kept, with the same one rounding, bit for bit. */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

struct Dropout {
    zn_dropout_mask m;
    const float *x;
    float *y;
    template <class I> __device__ void operator()(I i) const
    {
        y[i] = zn_dropout_apply(&m, (uint64_t)i, x[i]);
    }
};

struct Mul {
    unsigned long long inner;
    const float *a, *b;
    float *y;
    template <class I> __device__ void operator()(I i) const
    {
        y[i] = a[i] * b[i / (I)inner]; /* inner <= n: it fits I */
    }
};

/* One warp per row: double sums over lanes, then the fixed butterfly (the CPU adds in index
 * order, so the two agree within rounding, not bit for bit). */
struct MulSum {
    size_t inner;
    const float *a, *b;
    float *y;
    __device__ void operator()(size_t r, int lane) const
    {
        const float *ar = a + r * inner, *br = b + r * inner;
        double s = 0.0;
        for (size_t i = lane; i < inner; i += 32) s += (double)ar[i] * br[i];
        s = warp_reduce(s, Sum{});
        if (lane == 0) y[r] = (float)s;
    }
};

} // namespace

cudaError_t zn_cuda_dropout_forward(const zn_dropout_mask *m, size_t n, const float *x, float *y,
                                    cudaStream_t stream)
{
    return launch_each(n, stream, Dropout{*m, x, y});
}

cudaError_t zn_cuda_mul_forward(size_t rows, size_t inner, const float *a, const float *b,
                                float *y, cudaStream_t stream)
{
    if (inner == 0) return cudaSuccess;
    return launch_each(rows * inner, stream, Mul{inner, a, b, y});
}

cudaError_t zn_cuda_mul_sum(size_t rows, size_t inner, const float *a, const float *b, float *y,
                            cudaStream_t stream)
{
    return launch_each_warp(rows, stream, MulSum{inner, a, b, y});
}
