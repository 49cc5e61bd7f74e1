/* blas_core.h: picks OpenBLAS's kernels where its own CPU detection falls short. OpenBLAS reads
 * OPENBLAS_CORETYPE once, while the library loads, so the only way to change its choice is to set
 * the variable and start the program again (cli/main.c does that, before anything else runs). */
#ifndef ZN_BLAS_CORE_H
#define ZN_BLAS_CORE_H

/* The OpenBLAS core in use ("SkylakeX", "Haswell", "Zen", "Prescott", ...). */
const char *zn_blas_core(void);

/* The core OpenBLAS should use instead of the one it picked, or NULL when its pick is right or the
 * user chose one with OPENBLAS_CORETYPE. Non-NULL only when OpenBLAS did not know the CPU and fell
 * back to a pre-AVX2 core on a CPU that has AVX2 or AVX-512 (Debian's 0.3.21 on Intel family 6
 * model 207, for one). */
const char *zn_blas_better_core(void);

#endif
