/* conv_linear.c: the fully-connected kernels of conv.h, one OpenBLAS sgemm per pool thread over
 * its slice of the rows (batch rows, or output features for the weight gradient). */
#include "backends/cpu/conv.h"

#include <cblas.h>

#include "backends/cpu/threads.h"

typedef struct linear_job {
  int n, in, out;
  const float *x, *w, *b, *dy;
  float *y, *dx, *dw, *db;
} linear_job;

static void forward_job(void *ctx, int t, int count) {
  const linear_job *j = ctx;
  int begin, end;
  zn_cpu_split(j->n, t, count, &begin, &end);
  if (begin == end) return;
  float *y = j->y + (size_t)begin * j->out;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, end - begin, j->out, j->in, 1.0f,
              j->x + (size_t)begin * j->in, j->in, j->w, j->in, 0.0f, y, j->out);
  if (j->b)
    for (int r = 0; r < end - begin; r++)
      for (int o = 0; o < j->out; o++) y[(size_t)r * j->out + o] += j->b[o];
}

void zn_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y) {
  linear_job j = {.n = n, .in = in, .out = out, .x = x, .w = w, .b = b, .y = y};
  zn_cpu_parallel_run(forward_job, &j);
}

static void backward_data_job(void *ctx, int t, int count) {
  const linear_job *j = ctx;
  int begin, end;
  zn_cpu_split(j->n, t, count, &begin, &end);
  if (begin == end) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, end - begin, j->in, j->out, 1.0f,
              j->dy + (size_t)begin * j->out, j->out, j->w, j->in, 0.0f,
              j->dx + (size_t)begin * j->in, j->in);
}

void zn_linear_backward_data(int n, int in, int out, const float *dy, const float *w, float *dx) {
  linear_job j = {.n = n, .in = in, .out = out, .dy = dy, .w = w, .dx = dx};
  zn_cpu_parallel_run(backward_data_job, &j);
}

static void backward_weight_job(void *ctx, int t, int count) {
  const linear_job *j = ctx;
  int begin, end;
  zn_cpu_split(j->out, t, count, &begin, &end);
  if (begin == end) return;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, end - begin, j->in, j->n, 1.0f,
              j->dy + begin, j->out, j->x, j->in, 0.0f, j->dw + (size_t)begin * j->in, j->in);
  if (!j->db) return;
  for (int o = begin; o < end; o++) {
    double sum = 0.0;
    for (int r = 0; r < j->n; r++) sum += j->dy[(size_t)r * j->out + o];
    j->db[o] = (float)sum;
  }
}

void zn_linear_backward_weight(int n, int in, int out, const float *x, const float *dy, float *dw,
                               float *db) {
  linear_job j = {.n = n, .in = in, .out = out, .x = x, .dy = dy, .dw = dw, .db = db};
  zn_cpu_parallel_run(backward_weight_job, &j);
}
