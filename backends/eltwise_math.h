/* eltwise_math.h: the math of every element-wise op of graph/op_list.h (its EW rows), one
 * definition that the CPU kernels (backends/cpu/k_eltwise.c) and the CUDA kernels
 * (backends/cuda/k_eltwise.cu) both compile, so the two backends share formulas, not copies.
 * zn_ew_<fn>(x) is y; zn_ew_<fn>_bwd(v, dy) is dx, where v is x or y as the row's reads column
 * says. Both are pure functions of their arguments, which are read unconditionally. */
#ifndef ZN_ELTWISE_MATH_H
#define ZN_ELTWISE_MATH_H

#ifdef __CUDACC__
#define ZN_EW_FN static inline __host__ __device__
#else
#define ZN_EW_FN static inline
#endif

/* relu's backward reads y: relu(x) > 0 exactly where x > 0. dy is read whatever the sign (a
 * conditional load could not be vectorized and mispredicts on random signs). */
ZN_EW_FN float zn_ew_relu(float x) { return x > 0.0f ? x : 0.0f; }
ZN_EW_FN float zn_ew_relu_bwd(float y, float dy) { return y > 0.0f ? dy : 0.0f; }

#endif
