/* test_winograd.c: Winograd F(4x4, 3x3) (backends/cpu/winograd.h) against a double-precision direct
 * convolution in all three directions, on whole and part-filled tiles, one tile per image, one
 * and several blocks, rows of tiles the gathers transpose in runs of four, pools of 1 and 3
 * threads, with activations, filters and gradients of realistic magnitudes. The error bound is
 * relative to the largest |term| sum of an output (the scale every float kernel's rounding error
 * grows with), so it holds on any CPU and BLAS. Also: conv.c picks Winograd by its rule (per
 * kernel path) and not when turned off, a rerun repeats bit for bit (and backward-filter's on any
 * pool), the portable and AVX2 transforms agree bit for bit, and a bad ZNET_WINOGRAD stops the
 * process with a message. */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/cpu/conv.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/sums.h"
#include "backends/cpu/threads.h"
#include "backends/cpu/winograd.h"

/* F(4x4, 3x3) in float measured at most 1.4e-6 of the |term| scale on these shapes (all three
 * directions, pools of 1 and 3); the bound leaves room for other BLAS summation orders. */
#define WINO_TOL 2e-5

typedef struct wcase {
  const char *name;
  int n, c, h, w, o;
  size_t block_bytes; /* forward and backward-filter block budget; 0: default */
} wcase;

static const wcase CASES[] = {
    {"8x8 whole tiles", 2, 16, 8, 8, 24, 0},
    {"7x5 part-filled tiles", 3, 8, 7, 5, 12, 0},
    {"4x4 one tile per image", 5, 32, 4, 4, 16, 0},
    {"13x18 several blocks", 3, 12, 13, 18, 20, 1},
    {"16x16 64 channels", 2, 64, 16, 16, 64, 0},
    /* eight tiles to a row: the transposing gathers and scatters (runs of four lanes), with the
     * plane's edges cutting windows on every side */
    {"16x32 whole runs", 2, 8, 16, 32, 8, 0},
    {"14x30 runs cut at the edges", 2, 8, 14, 30, 12, 0},
};

static zn_conv_params params_of(const wcase *k) {
  return (zn_conv_params){k->n, k->c, k->h, k->w, k->o, 3, 3, 1, 1, 1, 1, 1, 1, 1};
}

/* Uniform values in [lo, hi). */
static float *filled(size_t n, double lo, double hi) {
  float *a = zt_talloc(n);
  for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * zt_rng_unit());
  return a;
}

static double *dzeros(size_t n) {
  double *a = calloc(n, sizeof(double));
  assert_non_null(a);
  return a;
}

/* The three directions of a 3x3 pad-1 conv in double, each with its |term| sums:
 * y = x * w, dx = dy * w^T, dw = x^T dy. */
typedef struct reference {
  double *y, *dx, *dw, *ay, *adx, *adw;
} reference;

static reference reference_of(const zn_conv_params *p, const float *x, const float *w,
                              const float *dy) {
  size_t hw = (size_t)p->h * p->w;
  reference r = {dzeros(p->n * p->o * hw), dzeros(p->n * p->c * hw), dzeros(p->o * p->c * 9),
                 dzeros(p->n * p->o * hw), dzeros(p->n * p->c * hw), dzeros(p->o * p->c * 9)};
  for (int n = 0; n < p->n; n++)
    for (int o = 0; o < p->o; o++)
      for (int c = 0; c < p->c; c++)
        for (int k = 0; k < 9; k++)
          for (int y = 0; y < p->h; y++)
            for (int xx = 0; xx < p->w; xx++) {
              int iy = y + k / 3 - 1, ix = xx + k % 3 - 1;
              if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
              size_t xi = ((size_t)n * p->c + c) * hw + (size_t)iy * p->w + ix;
              size_t yi = ((size_t)n * p->o + o) * hw + (size_t)y * p->w + xx;
              size_t wi = ((size_t)o * p->c + c) * 9 + k;
              r.y[yi] += (double)x[xi] * w[wi], r.ay[yi] += fabs((double)x[xi] * w[wi]);
              r.dx[xi] += (double)dy[yi] * w[wi], r.adx[xi] += fabs((double)dy[yi] * w[wi]);
              r.dw[wi] += (double)x[xi] * dy[yi], r.adw[wi] += fabs((double)x[xi] * dy[yi]);
            }
  return r;
}

static void reference_free(reference *r) {
  free(r->y), free(r->dx), free(r->dw), free(r->ay), free(r->adx), free(r->adw);
}

/* max |got - want| / max |term| sum: the error on the scale of the output's rounding. */
static double scaled_error(const float *got, const double *want, const double *terms, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(fabs(got[i] - want[i]) <= err)) err = fabs(got[i] - want[i]); /* NaN too */
    if (terms[i] > scale) scale = terms[i];
  }
  assert_true(scale > 0);
  return err / scale;
}

static void assert_bounded(const char *what, const wcase *k, int threads, const float *got,
                           const double *want, const double *terms, size_t n) {
  double e = scaled_error(got, want, terms, n);
  if (!(e <= WINO_TOL))
    fail_msg("%s, %s (%d threads): error %.3g of the term scale, bound %.3g", k->name, what,
             threads, e, WINO_TOL);
}

static void check_case(const wcase *k, int threads) {
  zn_conv_params p = params_of(k);
  size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.o * p.h * p.w,
         nw = (size_t)p.o * p.c * 9;
  /* post-ReLU activations, He-scaled filters, small signed gradients */
  float *x = filled(nx, 0.0, 2.0), *w = filled(nw, -sqrt(6.0 / (9 * p.c)), sqrt(6.0 / (9 * p.c)));
  float *dy = filled(ny, -1e-3, 1e-3);
  float *y = filled(ny, -9, 9), *dx = filled(nx, -9, 9), *dw = filled(nw, -9, 9);
  zn_winograd_set_block_bytes(k->block_bytes, k->block_bytes);
  float *ws = zt_talloc(zn_winograd_workspace_bytes(&p) / sizeof(float));
  reference r = reference_of(&p, x, w, dy);

  zn_winograd_forward(&p, x, w, NULL, y, ws);
  assert_bounded("forward", k, threads, y, r.y, r.ay, ny);
  zn_winograd_backward_data(&p, dy, w, dx, ws);
  assert_bounded("backward-data", k, threads, dx, r.dx, r.adx, nx);
  zn_winograd_backward_filter(&p, x, dy, dw, ws);
  assert_bounded("backward-filter", k, threads, dw, r.dw, r.adw, nw);

  reference_free(&r);
  zn_winograd_set_block_bytes(0, 0);
  zt_scratch_free();
}

static void test_against_double_reference(void **state) {
  (void)state;
  static const int POOLS[] = {1, 3};
  zt_rng_seed(19);
  for (size_t t = 0; t < sizeof POOLS / sizeof POOLS[0]; t++) {
    assert_int_equal(zn_cpu_threads_init(POOLS[t]), 0);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i], POOLS[t]);
  }
  zn_cpu_threads_free();
}

/* Backward-filter's blocks and sums do not depend on the pool: 1 and 3 threads give the same bits
 * (several blocks, part-filled tiles). */
static void test_filter_pool_independent(void **state) {
  (void)state;
  const wcase k = {"pools", 3, 12, 13, 18, 20, 1};
  zn_conv_params p = params_of(&k);
  size_t nx = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.o * p.c * 9;
  zt_rng_seed(7);
  float *x = filled(nx, 0, 2), *dy = filled((size_t)p.n * p.o * p.h * p.w, -1, 1);
  float *dw[2] = {zt_talloc(nw), zt_talloc(nw)};
  zn_winograd_set_block_bytes(1, 1);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(zn_cpu_threads_init(i ? 3 : 1), 0);
    float *ws = zt_talloc(zn_winograd_workspace_bytes(&p) / sizeof(float));
    zn_winograd_backward_filter(&p, x, dy, dw[i], ws);
  }
  assert_memory_equal(dw[0], dw[1], sizeof(float) * nw);
  zn_winograd_set_block_bytes(0, 0);
  zn_cpu_threads_free();
  zt_scratch_free();
}

/* The portable and the AVX2 transforms (with their different gathers: scalar, and masked loads
 * with transposes on planes under 16 wide) give the same bits in all three directions: every
 * form rounds each product and sum apart, and the gathers only move floats. Every case, so
 * whole and clipped windows, part-filled groups of lanes and 4x4 planes each take both. */
static void test_paths_agree(void **state) {
  (void)state;
  if (!zn_cpu_path_has(ZN_CPU_AVX2)) {
    print_message("skipping: this CPU lacks the avx2 path\n");
    return;
  }
  zt_rng_seed(23);
  assert_int_equal(zn_cpu_threads_init(2), 0);
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    const wcase *k = &CASES[i];
    zn_conv_params p = params_of(k);
    size_t n[3] = {(size_t)p.n * p.o * p.h * p.w, (size_t)p.n * p.c * p.h * p.w,
                   (size_t)p.o * p.c * 9};
    float *x = filled(n[1], 0, 2), *w = filled(n[2], -0.2, 0.2), *dy = filled(n[0], -1, 1);
    zn_winograd_set_block_bytes(k->block_bytes, k->block_bytes);
    float *ws = zt_talloc(zn_winograd_workspace_bytes(&p) / sizeof(float)), *out[2][3];
    for (int avx2 = 0; avx2 < 2; avx2++) {
      assert_true(zn_cpu_path_force(avx2 ? ZN_CPU_AVX2 : ZN_CPU_PORTABLE));
      for (int d = 0; d < 3; d++) out[avx2][d] = filled(n[d], -9, 9);
      zn_winograd_forward(&p, x, w, NULL, out[avx2][0], ws);
      zn_winograd_backward_data(&p, dy, w, out[avx2][1], ws);
      zn_winograd_backward_filter(&p, x, dy, out[avx2][2], ws);
    }
    for (int d = 0; d < 3; d++)
      if (memcmp(out[0][d], out[1][d], sizeof(float) * n[d]))
        fail_msg("%s: direction %d differs between the portable and avx2 paths", k->name, d);
    zt_scratch_free();
  }
  zn_winograd_set_block_bytes(0, 0);
  zn_cpu_threads_free();
  assert_true(zn_cpu_path_choose(NULL, 0)); /* back to the environment's path */
}

/* The forward bias is added to every output. */
static void test_bias(void **state) {
  (void)state;
  const wcase k = {"bias", 2, 8, 6, 9, 5, 0};
  zn_conv_params p = params_of(&k);
  size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.o * p.h * p.w;
  zt_rng_seed(3);
  float *x = filled(nx, -1, 1), *w = filled((size_t)p.o * p.c * 9, -1, 1), *b = filled(p.o, -1, 1);
  float *y0 = zt_talloc(ny), *y1 = zt_talloc(ny);
  float *ws = zt_talloc(zn_winograd_workspace_bytes(&p) / sizeof(float));
  zn_winograd_forward(&p, x, w, NULL, y0, ws);
  zn_winograd_forward(&p, x, w, b, y1, ws);
  for (size_t i = 0; i < ny; i++)
    assert_float_equal(y1[i], y0[i] + b[i / (p.h * p.w) % p.o], 1e-6);
  zt_scratch_free();
}

/* conv.c runs the rule's layers on Winograd, bit for bit the same on a rerun, and turned off it
 * runs them on its own kernels (other bits, same result within the bound). */
static void test_dispatch(void **state) {
  (void)state;
  const zn_conv_params p = {4, 128, 16, 16, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  assert_int_equal(zn_cpu_threads_init(2), 0);
  size_t nx = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.o * p.c * 9;
  zt_rng_seed(5);
  float *x = filled(nx, 0, 2), *w = filled(nw, -0.04, 0.04), *dy = filled(nx, -1, 1);
  float *out[2][3];
  for (int on = 1; on >= 0; on--) {
    zn_winograd_enable(on);
    assert_int_equal(zn_winograd_chosen(&p), on);
    float *ws = zt_talloc(zn_conv2d_workspace_bytes(&p) / sizeof(float));
    out[on][0] = zt_talloc(nx), out[on][1] = zt_talloc(nx), out[on][2] = zt_talloc(nw);
    zn_conv2d_forward(&p, x, w, NULL, out[on][0], ws, NULL);
    zn_conv2d_backward_data(&p, dy, w, out[on][1], ws);
    zn_conv2d_backward_filter(&p, x, dy, out[on][2], NULL, ws, NULL);
    if (!on) break;
    float *again = zt_talloc(nw);
    zn_conv2d_backward_filter(&p, x, dy, again, NULL, ws, NULL);
    assert_memory_equal(again, out[1][2], sizeof(float) * nw);
    /* Winograd has no epilogue: the plane sums and the bias gradient are taken afterwards, the
     * bits of the direct path's epilogues all the same */
    const int planes = p.n * p.o;
    zn_bn_sums *got = calloc(planes, sizeof *got), *want = calloc(planes, sizeof *want);
    zn_conv2d_forward(&p, x, w, NULL, zt_talloc(nx), ws, got);
    zn_plane_sums(out[1][0], planes, p.h * p.w, true, want);
    assert_memory_equal(got, want, sizeof *got * planes);
    float *db[2] = {zt_talloc(p.o), zt_talloc(p.o)};
    for (int k = 0; k < 2; k++)
      zn_conv2d_backward_filter(&p, x, dy, again, db[k], ws, k ? got : NULL); /* dw: again */
    assert_memory_equal(db[0], db[1], sizeof(float) * p.o);
    free(got), free(want);
  }
  size_t n[3] = {nx, nx, nw};
  int differ = 0;
  for (int d = 0; d < 3; d++) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n[d]; i++) {
      scale = fmax(scale, fabs(out[0][d][i]));
      err = fmax(err, fabs(out[1][d][i] - out[0][d][i]));
    }
    assert_true(err <= 1e-4 * scale); /* |term| sums are within a small multiple of |y| here */
    differ |= memcmp(out[0][d], out[1][d], sizeof(float) * n[d]) != 0;
  }
  assert_true(differ); /* the two paths really ran */
  zn_winograd_enable(1);
  zn_cpu_threads_free();
  zt_scratch_free();
}

/* The rule on each kernel path: 32 channels on planes of 16x16 and more take Winograd on the avx2
 * path only (measured against its direct kernels: docs/performance.md, "The avx2 path's rule"),
 * 64 on 8x8 and 128 on 16x16 on every path; 32 on 8x8, 8 channels and stride 2 on none. */
static void test_rule_per_path(void **state) {
  (void)state;
  const zn_conv_params wide = {4, 32, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const zn_conv_params taken[] = {{4, 64, 8, 8, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                  {4, 128, 16, 16, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1}};
  const zn_conv_params left[] = {{4, 32, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                 {4, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                 {4, 128, 16, 16, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1}};
  zn_winograd_enable(1);
  for (int path = 0; path < ZN_CPU_PATH_COUNT; path++) {
    if (!zn_cpu_path_force((zn_cpu_path)path)) {
      print_message("skipping the %s path: this CPU lacks it\n",
                    zn_cpu_path_name((zn_cpu_path)path));
      continue;
    }
    assert_int_equal(zn_winograd_chosen(&wide), path == ZN_CPU_AVX2);
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
      assert_true(zn_winograd_chosen(&taken[i]));
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++)
      assert_false(zn_winograd_chosen(&left[i]));
  }
  assert_true(zn_cpu_path_choose(NULL, 0)); /* back to the environment's path */
}

/* A child with ZNET_WINOGRAD=maybe exits 2 at its first conv, naming the variable and value. Runs
 * first: the variable is read once per process, and the child inherits that state. */
static void test_bad_environment(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    setenv("ZNET_WINOGRAD", "maybe", 1);
    const zn_conv_params p = {1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    zn_winograd_chosen(&p);
    _exit(0);
  }
  close(fds[1]);
  char msg[256] = {0};
  ssize_t r;
  for (size_t got = 0; got < sizeof msg - 1 && (r = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0;)
    got += (size_t)r;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 2);
  assert_non_null(strstr(msg, "ZNET_WINOGRAD=maybe"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_environment),
      cmocka_unit_test(test_against_double_reference),
      cmocka_unit_test(test_filter_pool_independent),
      cmocka_unit_test(test_bias),
      cmocka_unit_test(test_paths_agree),
      cmocka_unit_test(test_dispatch),
      cmocka_unit_test(test_rule_per_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
