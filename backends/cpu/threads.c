/* threads.c: the CPU backend's worker pool (see threads.h) on OpenMP: oneDNN's convolutions run
 * on the same OpenMP team, so kernels and convolutions never have two sets of threads competing
 * for the cores (docs/performance.md measures this against a pthread pool). */
#include "backends/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

#define ZN_CPU_MAX_THREADS 64

static int pool_count = 1; /* threads including the caller */

int zn_cpu_threads_init(int n) {
  if (n <= 0) n = omp_get_num_procs();
  if (n < 1) n = 1;
  if (n > ZN_CPU_MAX_THREADS) n = ZN_CPU_MAX_THREADS;
  openblas_set_num_threads(1);
  omp_set_dynamic(0);
  omp_set_num_threads(n);
  pool_count = n;
  return 0;
}

void zn_cpu_threads_free(void) {
  pool_count = 1;
  omp_set_num_threads(1);
}

int zn_cpu_threads_count(void) { return pool_count; }

void zn_cpu_parallel_run(zn_cpu_job_fn fn, void *ctx) {
  const int count = pool_count;
  if (count == 1) {
    fn(ctx, 0, 1);
    return;
  }
  /* A smaller team than asked for (OpenMP may give one) still runs every slice t. */
#pragma omp parallel num_threads(count)
  for (int t = omp_get_thread_num(); t < count; t += omp_get_num_threads()) fn(ctx, t, count);
}

void zn_cpu_split(int n, int t, int count, int *begin, int *end) {
  *begin = (int)((long long)n * t / count);
  *end = (int)((long long)n * (t + 1) / count);
}

typedef struct range_job {
  size_t n;
  zn_cpu_range_fn fn;
  void *ctx;
} range_job;

static void range_slice(void *ctx, int t, int count) {
  const range_job *j = ctx;
  size_t begin = j->n * (size_t)t / (size_t)count, end = j->n * (size_t)(t + 1) / (size_t)count;
  if (begin < end) j->fn(j->ctx, begin, end);
}

void zn_cpu_parallel_for(size_t n, size_t serial_below, zn_cpu_range_fn fn, void *ctx) {
  if (n < serial_below || pool_count == 1) {
    if (n) fn(ctx, 0, n);
    return;
  }
  range_job j = {n, fn, ctx};
  zn_cpu_parallel_run(range_slice, &j);
}
