/* k_eltwise.cu: elementwise kernels (the element-wise ops of graph/op_list.h, add, accumulate,
 * scale, fill, copy), one functor each over a grid-stride loop; outputs may alias inputs (each
 * element is read, then written, by one thread). The element-wise ops' math is
 * backends/eltwise_math.h, which backends/cpu/k_eltwise.c compiles too; the others have the
 * CPU's formulas. */
#include "backends/cuda/k_util.cuh"
#include "backends/eltwise_math.h"

using namespace zn_cuda;

namespace {

/* Each EW row of the op list gives two functors: y = f(x) and dx = f'(v) dy. */
#define EW_FUNCTORS(OP, E, fn, reads)                                                             \
    struct E##_forward {                                                                          \
        const float *x;                                                                           \
        float *y;                                                                                 \
        __device__ void operator()(size_t i) const { y[i] = zn_ew_##fn(x[i]); }                   \
    };                                                                                            \
    struct E##_backward {                                                                         \
        const float *v, *dy;                                                                      \
        float *dx;                                                                                \
        __device__ void operator()(size_t i) const { dx[i] = zn_ew_##fn##_bwd(v[i], dy[i]); }     \
    };
ZN_OP_LIST(ZN_OP_SKIP, EW_FUNCTORS)
#undef EW_FUNCTORS

struct Add {
    const float *a, *b;
    float *y;
    __device__ void operator()(size_t i) const { y[i] = a[i] + b[i]; }
};

struct Accumulate {
    const float *a;
    float *y;
    __device__ void operator()(size_t i) const { y[i] += a[i]; }
};

struct Scale {
    float s;
    const float *x;
    float *y;
    __device__ void operator()(size_t i) const { y[i] = s * x[i]; }
};

struct Fill {
    float v;
    float *y;
    __device__ void operator()(size_t i) const { y[i] = v; }
};

} // namespace

cudaError_t zn_cuda_eltwise_forward(zn_op op, size_t n, const float *x, float *y,
                                    cudaStream_t stream)
{
    switch (op) {
#define EW_CASE(OP, E, fn, reads) \
    case ZN_OP_##E: return launch_each(n, stream, E##_forward{x, y});
        ZN_OP_LIST(ZN_OP_SKIP, EW_CASE)
#undef EW_CASE
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t zn_cuda_eltwise_backward(zn_op op, size_t n, const float *v, const float *dy,
                                     float *dx, cudaStream_t stream)
{
    switch (op) {
#define EW_CASE(OP, E, fn, reads) \
    case ZN_OP_##E##_BWD: return launch_each(n, stream, E##_backward{v, dy, dx});
        ZN_OP_LIST(ZN_OP_SKIP, EW_CASE)
#undef EW_CASE
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t zn_cuda_add_forward(size_t n, const float *a, const float *b, float *y,
                                cudaStream_t stream)
{
    return launch_each(n, stream, Add{a, b, y});
}

cudaError_t zn_cuda_accumulate(size_t n, const float *a, float *y, cudaStream_t stream)
{
    return launch_each(n, stream, Accumulate{a, y});
}

cudaError_t zn_cuda_scale_forward(size_t n, float s, const float *x, float *y,
                                  cudaStream_t stream)
{
    return launch_each(n, stream, Scale{s, x, y});
}

cudaError_t zn_cuda_fill(size_t n, float v, float *y, cudaStream_t stream)
{
    return launch_each(n, stream, Fill{v, y});
}

cudaError_t zn_cuda_copy(size_t n, const float *x, float *y, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    return cudaMemcpyAsync(y, x, n * sizeof *y, cudaMemcpyDeviceToDevice, stream);
}
