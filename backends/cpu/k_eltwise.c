/* k_eltwise.c: elementwise kernels (relu, add, accumulate, scale, fill) and the non-finite scan
 * behind --check-numerics. Outputs may alias inputs. */
#include "backends/cpu/kernels.h"

#include <math.h>
#include <string.h>

void zn_relu_forward(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void zn_relu_backward(size_t n, const float *xy, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) dx[i] = xy[i] > 0.0f ? dy[i] : 0.0f;
}

void zn_add_forward(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void zn_accumulate(size_t n, const float *a, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] += a[i];
}

void zn_scale_forward(size_t n, float s, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = s * x[i];
}

void zn_fill(size_t n, float v, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = v;
}

void zn_zero(size_t n, float *y)
{
    memset(y, 0, n * sizeof *y);
}

bool zn_find_nonfinite(const float *x, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            if (where) *where = i;
            return true;
        }
    return false;
}
