/* bench_layers.h: what the hand-built conv benchmarks share (bench_conv.c, bench_winograd_ab.c):
 * DavidNet's conv layer shapes at widths 64 and 16, the clock, and filled buffers. Header-only
 * because those benchmarks are built by one gcc line each (docs/performance.md, "Commands"). */
#ifndef ZN_TESTS_BENCH_LAYERS_H
#define ZN_TESTS_BENCH_LAYERS_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backends/cpu/conv.h"

typedef struct layer {
  char name[32];
  int c, o, h, w, k, stride, pad, dil, groups;
  int uses; /* times one DavidNet training step runs it (0: not part of DavidNet) */
} layer;

/* DavidNet's six conv layers at width 64, then at width 16, into out[12]; returns 12. */
static int davidnet_layers(layer *out) {
  int n = 0;
  for (int w = 64; w >= 16; w /= 4) {
    const int c[4] = {w, 2 * w, 4 * w, 8 * w};
    const layer davidnet[] = {{"prep", 3, c[0], 32, 32, 3, 1, 1, 1, 1, 1},
                              {"layer1", c[0], c[1], 32, 32, 3, 1, 1, 1, 1, 1},
                              {"res1", c[1], c[1], 16, 16, 3, 1, 1, 1, 1, 2},
                              {"layer2", c[1], c[2], 16, 16, 3, 1, 1, 1, 1, 1},
                              {"layer3", c[2], c[3], 8, 8, 3, 1, 1, 1, 1, 1},
                              {"res3", c[3], c[3], 4, 4, 3, 1, 1, 1, 1, 2}};
    for (size_t i = 0; i < sizeof davidnet / sizeof davidnet[0]; i++) {
      out[n] = davidnet[i];
      snprintf(out[n++].name, sizeof out[0].name, "w%d.%.8s", w, davidnet[i].name);
    }
  }
  return n;
}

static zn_conv_params layer_params(const layer *l, int batch) {
  return (zn_conv_params){batch,     l->c,   l->h,   l->w,   l->o,   l->k,   l->k,
                          l->stride, l->stride, l->pad, l->pad, l->dil, l->dil, l->groups};
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *buffer(size_t floats) {
  float *a = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
  if (!a) {
    perror("aligned_alloc");
    exit(1);
  }
  for (size_t i = 0; i < floats; i++) a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
  return a;
}

#endif
