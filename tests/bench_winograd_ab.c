/* bench_winograd_ab.c: an older winograd.c (its functions renamed zn_winograd_* -> base_winograd_*
 * by tests/bench_winograd_ab.sh) against the current one in one process, on the DavidNet layers
 * this CPU's rule puts on Winograd. Calls alternate base, new, new, base, so host noise (other
 * guests' phases, which swing separate runs by 30 %) falls on both alike; per direction it prints
 * both minimums and medians and their ratios, and the sums per training step of the medians.
 * Usage (through the script): bench_winograd_ab [reps=10] [layer prefix] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/threads.h"
#include "backends/cpu/winograd.h"
#include "tests/bench_layers.h"

void base_winograd_forward(const zn_conv_params *p, const float *x, const float *w,
                           const float *b, float *y, float *workspace);
void base_winograd_backward_data(const zn_conv_params *p, const float *dy, const float *w,
                                 float *dx, float *workspace);
void base_winograd_backward_filter(const zn_conv_params *p, const float *x, const float *dy,
                                   float *dw, float *workspace);
size_t base_winograd_workspace_bytes(const zn_conv_params *p);

#define MAX_REPS 200
static const char *const DIRECTIONS[] = {"fwd", "bwd_data", "bwd_filter"};

static double run(int base, int d, const zn_conv_params *p, float *x, float *w, float *y,
                  float *ws) {
  double t = now();
  if (d == 0) (base ? base_winograd_forward : zn_winograd_forward)(p, x, w, NULL, y, ws);
  if (d == 1) (base ? base_winograd_backward_data : zn_winograd_backward_data)(p, y, w, x, ws);
  if (d == 2) (base ? base_winograd_backward_filter : zn_winograd_backward_filter)(p, x, y, w, ws);
  return now() - t;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 10;
  const char *only = argc > 2 ? argv[2] : "";
  if (reps < 2 || reps > MAX_REPS) {
    fprintf(stderr, "bench_winograd_ab: reps %s: expected 2 to %d\n", argv[1], MAX_REPS);
    return 2;
  }
  if (zn_cpu_threads_init(2) != 0) return 1;
  printf("# batch 128, pool threads 2, OpenBLAS threads 1, %d calls each, base/new/new/base\n",
         reps);
  layer layers[12];
  int n = davidnet_layers(layers);
  double sum[2][2] = {{0}}; /* [width 64, 16][base, new]: medians x uses */
  for (int i = 0; i < n; i++) {
    const layer *l = &layers[i];
    zn_conv_params p = layer_params(l, 128);
    if (strncmp(l->name, only, strlen(only)) || !zn_winograd_chosen(&p)) continue;
    size_t nx = (size_t)128 * l->c * l->h * l->w, ny = (size_t)128 * l->o * l->h * l->w;
    size_t a = zn_winograd_workspace_bytes(&p), b = base_winograd_workspace_bytes(&p);
    float *x = buffer(nx), *y = buffer(ny), *w = buffer((size_t)l->o * l->c * 9);
    float *ws = buffer((a > b ? a : b) / sizeof(float));
    for (int d = 0; d < 3; d++) {
      double t[2][MAX_REPS];
      run(1, d, &p, x, w, y, ws), run(0, d, &p, x, w, y, ws); /* warm caches, fault pages in */
      for (int r = 0; r < reps; r++) {
        int first = r % 2 == 0; /* base first in even reps */
        t[!first][r] = run(first, d, &p, x, w, y, ws);
        t[first][r] = run(!first, d, &p, x, w, y, ws);
      }
      qsort(t[0], reps, sizeof(double), by_value);
      qsort(t[1], reps, sizeof(double), by_value);
      double med0 = t[0][reps / 2], med1 = t[1][reps / 2];
      printf("%-11s %-10s base min %7.2f med %7.2f | new min %7.2f med %7.2f ms | new/base "
             "min %.3f med %.3f\n",
             l->name, DIRECTIONS[d], t[0][0] * 1e3, med0 * 1e3, t[1][0] * 1e3, med1 * 1e3,
             t[1][0] / t[0][0], med1 / med0);
      fflush(stdout);
      sum[i / 6][0] += l->uses * med0, sum[i / 6][1] += l->uses * med1;
    }
    free(x), free(y), free(w), free(ws);
  }
  for (int k = 0; k < 2; k++)
    if (sum[k][0] > 0)
      printf("w%d Winograd conv time per training step (medians): base %.1f ms, new %.1f ms, "
             "new/base %.3f\n",
             k ? 16 : 64, sum[k][0] * 1e3, sum[k][1] * 1e3, sum[k][1] / sum[k][0]);
  zn_cpu_threads_free();
  return 0;
}
