/* threads.c: the CPU backend's worker pool (see threads.h). Workers sleep on a condition
 * variable and wake for each job by generation number; measured in docs/performance.md against
 * OpenBLAS's own threading, which leaves im2col/col2im and reductions on one core. */
#include "backends/cpu/threads.h"

#include <cblas.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ZN_CPU_MAX_THREADS 64

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;      /* a new job (generation changed) or shutdown */
  pthread_cond_t done;      /* pending reached 0 */
  pthread_t workers[ZN_CPU_MAX_THREADS];
  int count;                /* threads including the caller */
  unsigned long generation; /* bumped once per job */
  int pending;              /* workers still running the current job */
  int stopping;
  zn_cpu_job_fn fn;
  void *ctx;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          {0}, 1, 0, 0, 0, NULL, NULL};

typedef struct {
  int t;
  unsigned long seen; /* generation at start: jobs posted before it are not this worker's */
} worker_arg;
static worker_arg worker_args[ZN_CPU_MAX_THREADS];

static void *worker_main(void *arg) {
  int t = ((worker_arg *)arg)->t;
  unsigned long seen = ((worker_arg *)arg)->seen;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    while (!pool.stopping && pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
    if (pool.stopping) break;
    seen = pool.generation;
    zn_cpu_job_fn fn = pool.fn;
    void *ctx = pool.ctx;
    int count = pool.count;
    pthread_mutex_unlock(&pool.lock);
    fn(ctx, t, count);
    pthread_mutex_lock(&pool.lock);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
  }
  pthread_mutex_unlock(&pool.lock);
  return NULL;
}

int zn_cpu_threads_init(int n) {
  zn_cpu_threads_free();
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > ZN_CPU_MAX_THREADS) n = ZN_CPU_MAX_THREADS;
  openblas_set_num_threads(1);
  pool.stopping = 0;
  pool.count = 1;
  for (int t = 1; t < n; t++) {
    worker_args[t].t = t;
    worker_args[t].seen = pool.generation;
    int err = pthread_create(&pool.workers[t], NULL, worker_main, &worker_args[t]);
    if (err) {
      fprintf(stderr, "znet: pthread_create failed: %s (running on %d threads)\n", strerror(err),
              pool.count);
      return -1;
    }
    pool.count = t + 1;
  }
  return 0;
}

void zn_cpu_threads_free(void) {
  pthread_mutex_lock(&pool.lock);
  pool.stopping = 1;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  for (int t = 1; t < pool.count; t++) pthread_join(pool.workers[t], NULL);
  pool.count = 1;
  pool.stopping = 0;
}

int zn_cpu_threads_count(void) { return pool.count; }

void zn_cpu_parallel_run(zn_cpu_job_fn fn, void *ctx) {
  if (pool.count > 1) {
    pthread_mutex_lock(&pool.lock);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.pending = pool.count - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
  }
  fn(ctx, 0, pool.count);
  if (pool.count > 1) {
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
  }
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
  if (n < serial_below || pool.count == 1) {
    if (n) fn(ctx, 0, n);
    return;
  }
  range_job j = {n, fn, ctx};
  zn_cpu_parallel_run(range_slice, &j);
}
