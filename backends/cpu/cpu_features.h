/* cpu_features.h: which instruction-set path the CPU kernels take (the direct 3x3 convolution
 * and the per-channel sums), chosen at run time from what the CPU has, or forced by the
 * environment variable ZNET_CPU_PATH=portable|avx2|avx512 (docs/performance.md, "AVX-512").
 * The binary itself needs nothing beyond x86-64: each path's kernels carry their own target. */
#ifndef ZN_CPU_FEATURES_H
#define ZN_CPU_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum zn_cpu_path {
    ZN_CPU_PORTABLE, /* plain C (the compiler's baseline vectors); convs via im2col + GEMM */
    ZN_CPU_AVX2,     /* AVX2 + FMA, 8 floats per vector */
    ZN_CPU_AVX512,   /* AVX-512F/VL + AVX2 + FMA, 16 floats per vector and 32 registers */
    ZN_CPU_PATH_COUNT
} zn_cpu_path;

/* "portable", "avx2", "avx512". */
const char *zn_cpu_path_name(zn_cpu_path path);
/* Whether this CPU runs path's instructions. */
bool zn_cpu_path_has(zn_cpu_path path);
/* The path the kernels take now: the one zn_cpu_path_choose or zn_cpu_path_force set, else
 * ZNET_CPU_PATH when it names a path this CPU has, else the widest this CPU has. */
zn_cpu_path zn_cpu_path_active(void);
/* Reads ZNET_CPU_PATH (unset or empty: the widest path this CPU has) and makes it the active
 * path. false, with why filled, for a value that names no path or a path this CPU lacks; the
 * active path is then left as it was. */
bool zn_cpu_path_choose(char *why, size_t len);
/* Makes path the active one (tests); false, changing nothing, when this CPU lacks it. */
bool zn_cpu_path_force(zn_cpu_path path);

#endif
