/* k_cast.cu: numerics and mixed precision: the non-finite scan behind --check-numerics (the
 * least bad index, found with an integer atomicMin, so the answer does not depend on thread
 * order) and casts between float32 and 16-bit floats (IEEE half, bfloat16) with a multiplier,
 * for loss scaling. 16-bit tensors travel as raw words; the formats' traits pick the conversion. */
#include "backends/cuda/k_util.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

using namespace zn_cuda;

namespace {

struct NonFinite {
    const float *x;
    unsigned long long *first;
    __device__ void operator()(size_t i) const
    {
        if (!isfinite(x[i])) atomicMin(first, (unsigned long long)i);
    }
};

struct F16 {
    using T = __half;
    static __device__ T from_float(float v) { return __float2half_rn(v); }
    static __device__ float to_float(T v) { return __half2float(v); }
};

struct BF16 {
    using T = __nv_bfloat16;
    static __device__ T from_float(float v) { return __float2bfloat16_rn(v); }
    static __device__ float to_float(T v) { return __bfloat162float(v); }
};

template <class H> struct ToHalf {
    float s;
    const float *x;
    typename H::T *y;
    __device__ void operator()(size_t i) const { y[i] = H::from_float(s * x[i]); }
};

template <class H> struct FromHalf {
    float s;
    const typename H::T *x;
    float *y;
    __device__ void operator()(size_t i) const { y[i] = s * H::to_float(x[i]); }
};

template <class H>
cudaError_t to_half(size_t n, float s, const float *x, uint16_t *y, cudaStream_t stream)
{
    return launch_each(n, stream, ToHalf<H>{s, x, reinterpret_cast<typename H::T *>(y)});
}

template <class H>
cudaError_t from_half(size_t n, float s, const uint16_t *x, float *y, cudaStream_t stream)
{
    return launch_each(n, stream,
                       FromHalf<H>{s, reinterpret_cast<const typename H::T *>(x), y});
}

} // namespace

cudaError_t zn_cuda_find_nonfinite(const float *x, size_t n, unsigned long long *first,
                                   cudaStream_t stream)
{
    return launch_each(n, stream, NonFinite{x, first});
}

cudaError_t zn_cuda_cast_to_half(zn_cuda_half t, size_t n, float s, const float *x, uint16_t *y,
                                 cudaStream_t stream)
{
    return t == ZN_CUDA_F16 ? to_half<F16>(n, s, x, y, stream) : to_half<BF16>(n, s, x, y, stream);
}

cudaError_t zn_cuda_cast_from_half(zn_cuda_half t, size_t n, float s, const uint16_t *x,
                                   float *y, cudaStream_t stream)
{
    return t == ZN_CUDA_F16 ? from_half<F16>(n, s, x, y, stream)
                            : from_half<BF16>(n, s, x, y, stream);
}
