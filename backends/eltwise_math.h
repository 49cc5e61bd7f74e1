/* eltwise_math.h: the math of every element-wise op of graph/op_list.h (its EW rows), one
 * definition that the CPU kernels (backends/cpu/k_eltwise.c) and the CUDA kernels
 * (backends/cuda/k_eltwise.cu) both compile, so the two backends share formulas, not copies.
 * zn_ew_<fn>(x) is y; zn_ew_<fn>_bwd(v, dy) is dx, where v is x or y as the row's reads column
 * says. Both are pure functions of their arguments, which are read unconditionally. */
#ifndef ZN_ELTWISE_MATH_H
#define ZN_ELTWISE_MATH_H

#include <math.h>

#ifdef __CUDACC__
#define ZN_EW_FN static inline __host__ __device__
#else
#define ZN_EW_FN static inline
#endif

/* relu's backward reads y: relu(x) > 0 exactly where x > 0. dy is read whatever the sign (a
 * conditional load could not be vectorized and mispredicts on random signs). */
ZN_EW_FN float zn_ew_relu(float x) { return x > 0.0f ? x : 0.0f; }
ZN_EW_FN float zn_ew_relu_bwd(float y, float dy) { return y > 0.0f ? dy : 0.0f; }

/* 1 / (1 + e^-x), with e^-|x| only, which never overflows: exact 0 and 1 far out, never NaN. Its
 * backward reads y: dx = dy y (1 - y). */
ZN_EW_FN float zn_ew_sigmoid(float x)
{
    float e = expf(-fabsf(x)); /* in (0, 1] */
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
ZN_EW_FN float zn_ew_sigmoid_bwd(float y, float dy) { return dy * (y * (1.0f - y)); }

/* silu (swish) x sigmoid(x); dx = dy s (1 + x (1 - s)), s = sigmoid(x). */
ZN_EW_FN float zn_ew_silu(float x) { return x * zn_ew_sigmoid(x); }
ZN_EW_FN float zn_ew_silu_bwd(float x, float dy)
{
    float s = zn_ew_sigmoid(x);
    return dy * (s * (1.0f + x * (1.0f - s)));
}

/* gelu, the exact form with erf (not the tanh approximation): x Phi(x) = x (1 + erf(x/sqrt 2))/2;
 * dx = dy (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi). */
#define ZN_EW_SQRT1_2 0.70710678118654752f  /* 1 / sqrt 2 */
#define ZN_EW_RSQRT_2PI 0.39894228040143268f /* 1 / sqrt(2 pi) */
ZN_EW_FN float zn_ew_gelu(float x) { return 0.5f * x * (1.0f + erff(x * ZN_EW_SQRT1_2)); }
ZN_EW_FN float zn_ew_gelu_bwd(float x, float dy)
{
    float cdf = 0.5f * (1.0f + erff(x * ZN_EW_SQRT1_2));
    float pdf = ZN_EW_RSQRT_2PI * expf(-0.5f * x * x);
    return dy * (cdf + x * pdf);
}

#endif
