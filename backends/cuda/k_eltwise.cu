/* k_eltwise.cu: elementwise kernels (relu, add, accumulate, scale, fill, copy), one functor each
 * over a grid-stride loop; outputs may alias inputs (each element is read, then written, by one
 * thread). Same formulas as backends/cpu/k_eltwise.c. */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

struct Relu {
    const float *x;
    float *y;
    __device__ void operator()(size_t i) const { y[i] = x[i] > 0.0f ? x[i] : 0.0f; }
};

struct ReluBackward {
    const float *xy, *dy;
    float *dx;
    __device__ void operator()(size_t i) const
    {
        float g = dy[i];
        dx[i] = xy[i] > 0.0f ? g : 0.0f;
    }
};

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

cudaError_t zn_cuda_relu_forward(size_t n, const float *x, float *y, cudaStream_t stream)
{
    return launch_each(n, stream, Relu{x, y});
}

cudaError_t zn_cuda_relu_backward(size_t n, const float *xy, const float *dy, float *dx,
                                  cudaStream_t stream)
{
    return launch_each(n, stream, ReluBackward{xy, dy, dx});
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
