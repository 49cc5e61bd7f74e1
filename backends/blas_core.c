/* blas_core.c: see blas_core.h. On an unknown CPU OpenBLAS 0.3.21 runs its SSE3 `Prescott`
 * kernels, 2-3x slower than the AVX-512 ones on the same core (docs/performance.md, "OpenBLAS's
 * kernels"); the names below are the pre-AVX2 cores it falls back to. */
#include "backends/blas_core.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *zn_blas_core(void) { return openblas_get_corename(); }

static int is_fallback_core(const char *name) {
  static const char *const old_cores[] = {"Prescott", "Core2", "Penryn", "Dunnington",
                                          "Nehalem", "Sandybridge", "Atom"};
  for (size_t i = 0; i < sizeof old_cores / sizeof old_cores[0]; i++)
    if (strcasecmp(name, old_cores[i]) == 0) return 1;
  return 0;
}

const char *zn_blas_better_core(void) {
  if (getenv("OPENBLAS_CORETYPE")) return NULL;
  const char *name = zn_blas_core();
  if (!name || !is_fallback_core(name)) return NULL;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}
