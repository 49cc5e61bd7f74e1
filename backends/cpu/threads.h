/* threads.h: the CPU backend's worker pool. One fixed set of threads, started once, runs
 * "one call per thread" jobs (each thread takes its own slice of the work); OpenBLAS is kept
 * single-threaded inside them so the two never oversubscribe the cores. */
#ifndef ZN_CPU_THREADS_H
#define ZN_CPU_THREADS_H

#include <stddef.h>

/* Starts n - 1 workers (n <= 0: one per online CPU) and pins OpenBLAS to one thread. Call once
 * before any kernel; without it everything runs on the calling thread. Returns 0, or -1 after
 * printing the failed system call to stderr (the pool then runs on fewer threads). */
int zn_cpu_threads_init(int n);
/* Stops the workers; the pool is back to one thread. */
void zn_cpu_threads_free(void);
/* Threads in the pool, the caller included (>= 1). */
int zn_cpu_threads_count(void);

/* Runs fn(ctx, t, count) for every t in [0, count) at once, one per thread, the caller taking
 * t = 0; returns when all have finished. count = zn_cpu_threads_count(). The split by t is
 * fixed, so results do not depend on thread timing. Not reentrant. */
typedef void (*zn_cpu_job_fn)(void *ctx, int t, int count);
void zn_cpu_parallel_run(zn_cpu_job_fn fn, void *ctx);

/* Runs fn(ctx, begin, end) over a fixed split of [0, n) into one slice per thread, or over all
 * of it on the calling thread when n < serial_below (too little work to wake the pool). */
typedef void (*zn_cpu_range_fn)(void *ctx, size_t begin, size_t end);
void zn_cpu_parallel_for(size_t n, size_t serial_below, zn_cpu_range_fn fn, void *ctx);

/* The half-open slice [*begin, *end) of n items that thread t of count takes. */
void zn_cpu_split(int n, int t, int count, int *begin, int *end);

#endif
