/* k_optim.c: optimizer updates over a flat parameter array, with PyTorch's semantics (weight
 * decay added to the gradient; SGD momentum without dampening; Adam with bias correction) so
 * runs can be checked against it. */
#include "backends/cpu/kernels.h"

#include <math.h>

void zn_sgd_step(const zn_sgd *o, size_t n, float *w, const float *g, float *v)
{
    float mu = o->momentum;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + o->weight_decay * w[i];
        v[i] = mu * v[i] + gi;
        w[i] -= o->lr * (o->nesterov ? gi + mu * v[i] : v[i]);
    }
}

void zn_adam_step(const zn_adam *o, long step, size_t n, float *w, const float *g, float *m,
                  float *v)
{
    float step_size = (float)(o->lr / (1.0 - pow(o->beta1, (double)step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, (double)step));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + o->weight_decay * w[i];
        m[i] = o->beta1 * m[i] + (1 - o->beta1) * gi;
        v[i] = o->beta2 * v[i] + (1 - o->beta2) * gi * gi;
        w[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + o->eps);
    }
}
