/* conv_linear.c: the fully-connected kernels of conv.h, one OpenBLAS sgemm per pool thread over
 * its slice of the rows (batch rows, or output features for the weight gradient), each slice
 * handed out by zn_cpu_parallel_for. */
#include "backends/cpu/conv.h"

#include <cblas.h>

#include "backends/cpu/threads.h"

typedef struct linear_job {
  int n, in, out;
  const float *x, *w, *b, *dy;
  float *y, *dx, *dw, *db;
} linear_job;

/* Batch rows [begin, end) of y. */
static void forward_rows(void *ctx, size_t begin, size_t end) {
  const linear_job *j = ctx;
  const int rows = (int)(end - begin);
  float *y = j->y + begin * j->out;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, j->out, j->in, 1.0f,
              j->x + begin * j->in, j->in, j->w, j->in, 0.0f, y, j->out);
  if (j->b)
    for (int r = 0; r < rows; r++)
      for (int o = 0; o < j->out; o++) y[(size_t)r * j->out + o] += j->b[o];
}

void zn_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y) {
  linear_job j = {.n = n, .in = in, .out = out, .x = x, .w = w, .b = b, .y = y};
  zn_cpu_parallel_for((size_t)n, 0, forward_rows, &j);
}

/* Batch rows [begin, end) of dx. */
static void backward_data_rows(void *ctx, size_t begin, size_t end) {
  const linear_job *j = ctx;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(end - begin), j->in, j->out, 1.0f,
              j->dy + begin * j->out, j->out, j->w, j->in, 0.0f, j->dx + begin * j->in, j->in);
}

void zn_linear_backward_data(int n, int in, int out, const float *dy, const float *w, float *dx) {
  linear_job j = {.n = n, .in = in, .out = out, .dy = dy, .w = w, .dx = dx};
  zn_cpu_parallel_for((size_t)n, 0, backward_data_rows, &j);
}

/* Output features [begin, end): their rows of dw and entries of db. */
static void backward_weight_rows(void *ctx, size_t begin, size_t end) {
  const linear_job *j = ctx;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(end - begin), j->in, j->n, 1.0f,
              j->dy + begin, j->out, j->x, j->in, 0.0f, j->dw + begin * j->in, j->in);
  if (!j->db) return;
  for (size_t o = begin; o < end; o++) {
    double sum = 0.0;
    for (int r = 0; r < j->n; r++) sum += j->dy[(size_t)r * j->out + o];
    j->db[o] = (float)sum;
  }
}

void zn_linear_backward_weight(int n, int in, int out, const float *x, const float *dy, float *dw,
                               float *db) {
  linear_job j = {.n = n, .in = in, .out = out, .x = x, .dy = dy, .dw = dw, .db = db};
  zn_cpu_parallel_for((size_t)out, 0, backward_weight_rows, &j);
}
