/* bench_conv.c: times the CPU conv kernels on DavidNet's layer shapes (widths 64 and 16) and a
 * few Z-tower shapes, forward / backward-data / backward-filter, best of R runs, in GFLOP/s;
 * then the conv time of one training step (residual layers twice, no input gradient for prep).
 * tests/bench_conv_torch.py prints the same lines for PyTorch. Not a unit test (no test_ name).
 * winograd=rule runs each layer as conv.c picks it; off turns Winograd off; all runs every layer
 * Winograd supports on it (for measuring the rule, docs/performance.md "Winograd"). Prints the
 * path beside each line.
 * Usage: bench_conv [batch=128] [reps=3] [pool threads=2] [OpenBLAS threads=1] [layer prefix]
 *                   [winograd=rule|off|all] [Winograd forward block bytes, 0: default] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/conv.h"
#include "backends/cpu/threads.h"
#include "backends/cpu/winograd.h"
#include "tests/bench_layers.h"

typedef enum { FWD, BWD_DATA, BWD_FILTER, N_DIRECTIONS } direction;
static const char *const DIRECTION_NAMES[] = {"fwd", "bwd_data", "bwd_filter"};

/* wino: call winograd.c directly instead of conv.c's choice. */
static double best_time(direction d, const zn_conv_params *p, float *x, float *w, float *y,
                        float *ws, int reps, int wino) {
  double best = 1e30;
  for (int r = 0; r <= reps; r++) { /* run 0 warms caches and page-faults the buffers in */
    double t = now();
    if (d == FWD && wino) zn_winograd_forward(p, x, w, NULL, y, ws);
    if (d == FWD && !wino) zn_conv2d_forward(p, x, w, NULL, y, ws, NULL);
    if (d == BWD_DATA) (wino ? zn_winograd_backward_data : zn_conv2d_backward_data)(p, y, w, x, ws);
    if (d == BWD_FILTER && wino) zn_winograd_backward_filter(p, x, y, w, ws);
    if (d == BWD_FILTER && !wino) zn_conv2d_backward_filter(p, x, y, w, NULL, ws, NULL);
    t = now() - t;
    if (r > 0 && t < best) best = t;
  }
  return best;
}

int main(int argc, char **argv) {
  int batch = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 3;
  int pool = argc > 3 ? atoi(argv[3]) : 2, blas = argc > 4 ? atoi(argv[4]) : 1;
  const char *only = argc > 5 ? argv[5] : "", *mode = argc > 6 ? argv[6] : "rule";
  if (strcmp(mode, "rule") && strcmp(mode, "off") && strcmp(mode, "all")) {
    fprintf(stderr, "bench_conv: winograd=%s: expected rule, off or all\n", mode);
    return 2;
  }
  zn_winograd_enable(strcmp(mode, "off") != 0);
  zn_winograd_set_block_bytes(argc > 7 ? strtoul(argv[7], NULL, 10) : 0, 0);
  if (zn_cpu_threads_init(pool) != 0) return 1;
  openblas_set_num_threads(blas); /* after init, which pins it to 1: only for comparisons */
  printf("# batch %d, pool threads %d, OpenBLAS threads %d, winograd %s\n", batch, pool, blas,
         mode);

  layer layers[32];
  int n = davidnet_layers(layers);
  const layer zee[] = {{"zee.dil2", 8, 8, 896, 8, 3, 1, 2, 2, 1, 0},
                       {"zee.group8", 64, 64, 112, 8, 3, 1, 1, 1, 8, 0},
                       {"zee.1x1", 64, 16, 112, 8, 1, 1, 0, 1, 1, 0},
                       /* roots = true, filters = [8, 16], width 16: the z3 tower's two convs */
                       {"zee.roots1", 8, 64, 224, 8, 3, 1, 2, 2, 8, 0},
                       {"zee.roots2", 64, 128, 224, 8, 3, 1, 2, 2, 8, 0}};
  for (size_t i = 0; i < sizeof zee / sizeof zee[0]; i++) layers[n++] = zee[i];

  double step[2] = {0, 0}; /* conv seconds per training step, width 64 and 16 */
  for (int i = 0; i < n; i++) {
    const layer *l = &layers[i];
    if (strncmp(l->name, only, strlen(only)) != 0) continue;
    zn_conv_params p = layer_params(l, batch);
    size_t nx = (size_t)batch * l->c * l->h * l->w, nw = (size_t)l->o * l->c / l->groups * l->k * l->k;
    size_t ny = (size_t)batch * l->o * zn_conv_out_h(&p) * zn_conv_out_w(&p);
    float *x = buffer(nx), *w = buffer(nw), *y = buffer(ny);
    int wino = !strcmp(mode, "all") && zn_winograd_supported(&p);
    const char *path = wino || zn_winograd_chosen(&p) ? "wino" : "own";
    size_t wsb = zn_conv2d_workspace_bytes(&p), wwsb = zn_winograd_workspace_bytes(&p);
    float *ws = buffer((wino && wwsb > wsb ? wwsb : wsb) / sizeof(float));
    double flop = 2.0 * ny * nw / l->o; /* direct-convolution FLOPs, whatever the path */
    for (direction d = FWD; d < N_DIRECTIONS; d++) {
      double t = best_time(d, &p, x, w, y, ws, reps, wino);
      printf("%-12s %-10s %-4s %9.2f ms %7.1f GFLOP/s\n", l->name, DIRECTION_NAMES[d], path,
             t * 1e3, flop / t * 1e-9);
      fflush(stdout);
      int is_prep_input_grad = d == BWD_DATA && strstr(l->name, ".prep");
      if (l->uses && !is_prep_input_grad) step[i / 6] += l->uses * t; /* layers 0-5: w64, 6-11: w16 */
    }
    free(x), free(w), free(y), free(ws);
  }
  printf("w64 conv time per training step: %.0f ms\n", step[0] * 1e3);
  printf("w16 conv time per training step: %.0f ms\n", step[1] * 1e3);
  zn_cpu_threads_free();
  return 0;
}
