/* k_optim.cu: optimizer updates over a flat parameter array, with backends/cpu/k_optim.c's
 * formulas (PyTorch semantics: weight decay added to the gradient, SGD momentum without
 * dampening, Adam with bias correction), one thread per parameter. */
#include "backends/cuda/k_util.cuh"

#include <cmath>

using namespace zn_cuda;

namespace {

struct Sgd {
    zn_sgd o;
    float *w;
    const float *g;
    float *v;
    __device__ void operator()(size_t i) const
    {
        float gi = g[i] + o.weight_decay * w[i];
        v[i] = o.momentum * v[i] + gi;
        w[i] -= o.lr * (o.nesterov ? gi + o.momentum * v[i] : v[i]);
    }
};

struct Adam {
    zn_adam o;
    float step_size, bc2_sqrt; /* lr / (1 - beta1^t), sqrt(1 - beta2^t) */
    float *w;
    const float *g;
    float *m, *v;
    __device__ void operator()(size_t i) const
    {
        float gi = g[i] + o.weight_decay * w[i];
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
        w[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + o.eps);
    }
};

} // namespace

cudaError_t zn_cuda_sgd_step(const zn_sgd *o, size_t n, float *w, const float *g, float *v,
                             cudaStream_t stream)
{
    return launch_each(n, stream, Sgd{*o, w, g, v});
}

cudaError_t zn_cuda_adam_step(const zn_adam *o, long step, size_t n, float *w, const float *g,
                              float *m, float *v, cudaStream_t stream)
{
    float step_size = (float)(o->lr / (1.0 - std::pow(o->beta1, (double)step)));
    float bc2_sqrt = (float)std::sqrt(1.0 - std::pow(o->beta2, (double)step));
    return launch_each(n, stream, Adam{*o, step_size, bc2_sqrt, w, g, m, v});
}
