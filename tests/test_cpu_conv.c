/* test_cpu_conv.c: the CPU convolution and linear kernels (backends/cpu/conv.h) against naive
 * direct loops in double precision written here, over a table of shapes (stride, padding,
 * dilation, groups, 1x1, non-square, bias, batch 1 and 3, the direct 3x3 kernel's planes,
 * groups and dilation) on pools of 1 and 3 threads and on every kernel path this CPU has
 * (cpu_features.h: portable, AVX2, AVX-512, each within the same tolerance), plus a central-difference check that the
 * backward kernels are the gradients of the forward one, a check that backward-filter repeats
 * bit for bit, and that the epilogues' sums are the bits of the sums taken afterwards. */
#include "support.h"

#include <math.h>
#include <stdlib.h>

#include "backends/cpu/conv.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/sums.h"
#include "backends/cpu/threads.h"

typedef struct conv_case {
  const char *name;
  zn_conv_params p;
  int bias;
} conv_case;

/* n, c, h, w, o, kh, kw, stride h/w, pad h/w, dilation h/w, groups */
static const conv_case CASES[] = {
    {"3x3 pad 1", {3, 4, 7, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},
    {"3x3 stride 2", {1, 3, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1}, 0},
    {"3x3 pad 0", {3, 2, 6, 6, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1}, 1},
    {"dilation 2 pad 2", {3, 8, 20, 8, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1}, 0},
    {"groups 2", {3, 4, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 1},
    {"groups 8 stride 2", {1, 16, 9, 7, 8, 3, 3, 2, 2, 1, 1, 1, 1, 8}, 0},
    {"groups 8 dilation 2", {3, 8, 14, 8, 16, 3, 3, 1, 1, 2, 2, 2, 2, 8}, 1},
    {"1x1", {3, 5, 6, 4, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},
    {"1x1 one image per GEMM", {3, 3, 40, 30, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 0},
    /* 1x1 on 256..1023 pixels: one image per GEMM too (no im2col), with groups */
    {"1x1 16x16", {3, 6, 16, 16, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},
    {"1x1 32x8 groups 2", {3, 4, 32, 8, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2}, 0},
    {"1x1 stride 2 groups 2", {3, 4, 7, 6, 2, 1, 1, 2, 2, 0, 0, 1, 1, 2}, 1},
    {"3x3 one image per GEMM", {3, 2, 36, 33, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},
    {"non-square", {3, 3, 11, 9, 4, 3, 2, 2, 1, 1, 0, 1, 2, 1}, 1},
    /* conv_direct.c's planes (w % 8 == 0, h * w % 32 == 0); o = 7, c = 5: 3 + 3 + 1 and 3 + 2 */
    {"3x3 direct 8x16", {3, 5, 8, 16, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},
    {"3x3 direct 4x8", {2, 7, 4, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 0},
    /* backward-filter's tiles of 4 output channels: o = 6 leaves 2, o = 8 none; 11 images of
     * 8x8 go 4 at a time, so each thread's slice ends on a part-filled batch */
    {"3x3 direct 8x8 batches", {11, 3, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},
    {"3x3 direct 16x8", {3, 9, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 0},
    /* the direct kernels per group, "same" padding = dilation: the z-tower's roots convs (1 and
     * 8 inputs, 8 and 16 outputs per group) on 224x8 and 32x8, dense dilation 2, and 3 + 2 */
    {"3x3 direct groups 8 c/g 1", {2, 8, 224, 8, 64, 3, 3, 1, 1, 2, 2, 2, 2, 8}, 1},
    {"3x3 direct groups 8 c/g 8", {3, 64, 32, 8, 128, 3, 3, 1, 1, 2, 2, 2, 2, 8}, 0},
    {"3x3 direct groups 8 224x8", {1, 64, 224, 8, 128, 3, 3, 1, 1, 1, 1, 1, 1, 8}, 1},
    {"3x3 direct dilation 2", {3, 5, 16, 8, 7, 3, 3, 1, 1, 2, 2, 2, 2, 1}, 1},
    {"3x3 direct groups 2 c/g 3", {3, 6, 8, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 0},
    /* AVX-512's 16-float tiles (rows of 16, planes of 64 pixels): 6 channels per forward tile,
     * 8 per gradient tile, so o = 13 leaves 1 and 5, o = 9 leaves 3 and 1; a lone channel per
     * group on 8 x 32 takes the wide tile; 4 x 16 with dilation 2 */
    {"3x3 direct 16x16 o 13", {3, 5, 16, 16, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},
    {"3x3 direct 4x16 dilation 2", {3, 6, 4, 16, 9, 3, 3, 1, 1, 2, 2, 2, 2, 1}, 0},
    {"3x3 direct 8x32 groups 4 o/g 1", {2, 8, 8, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4}, 1},
    {"5x5 pad 2 stride 3", {1, 2, 10, 13, 3, 5, 5, 3, 3, 2, 2, 1, 1, 1}, 0},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

static const int THREAD_COUNTS[] = {1, 3};

/* Deterministic values in [-1, 1). */
static void fill(float *a, size_t n, unsigned seed) {
  unsigned long long s = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }
}

static float *alloc_filled(size_t n, unsigned seed) {
  float *a = malloc(sizeof(float) * (n ? n : 1));
  assert_non_null(a);
  fill(a, n, seed);
  return a;
}

static size_t x_size(const zn_conv_params *p) { return (size_t)p->n * p->c * p->h * p->w; }
static size_t w_size(const zn_conv_params *p) {
  return (size_t)p->o * (p->c / p->groups) * p->kh * p->kw;
}
static size_t y_size(const zn_conv_params *p) {
  return (size_t)p->n * p->o * zn_conv_out_h(p) * zn_conv_out_w(p);
}

/* Calls visit(ctx, xi, wi, yi) for every (input, weight, output) index triple of the conv:
 * y[yi] += x[xi] * w[wi]. The one naive loop nest all three references share. */
typedef void (*tap_fn)(void *ctx, size_t xi, size_t wi, size_t yi);
static void naive_taps(const zn_conv_params *p, tap_fn visit, void *ctx) {
  const int oh = zn_conv_out_h(p), ow = zn_conv_out_w(p), cg = p->c / p->groups,
            og = p->o / p->groups;
  for (int n = 0; n < p->n; n++)
    for (int o = 0; o < p->o; o++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
          for (int c = 0; c < cg; c++)
            for (int i = 0; i < p->kh; i++)
              for (int j = 0; j < p->kw; j++) {
                int iy = oy * p->stride_h - p->pad_h + i * p->dil_h;
                int ix = ox * p->stride_w - p->pad_w + j * p->dil_w;
                if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                int ci = (o / og) * cg + c;
                visit(ctx, (((size_t)n * p->c + ci) * p->h + iy) * p->w + ix,
                      (((size_t)o * cg + c) * p->kh + i) * p->kw + j,
                      (((size_t)n * p->o + o) * oh + oy) * ow + ox);
              }
}

typedef struct ref_ctx {
  const float *a, *b; /* the two known operands */
  double *out;        /* the accumulated unknown */
} ref_ctx;
static void tap_y(void *c, size_t xi, size_t wi, size_t yi) {
  ref_ctx *r = c;
  r->out[yi] += (double)r->a[xi] * r->b[wi];
}
static void tap_dx(void *c, size_t xi, size_t wi, size_t yi) {
  ref_ctx *r = c;
  r->out[xi] += (double)r->a[yi] * r->b[wi];
}
static void tap_dw(void *c, size_t xi, size_t wi, size_t yi) {
  ref_ctx *r = c;
  r->out[wi] += (double)r->a[xi] * r->b[yi];
}

static void assert_close(const char *what, const char *name, int threads, const float *got,
                         const double *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(fabs(got[i] - want[i]) <= 1e-4 * (1.0 + fabs(want[i]))))
      fail_msg("%s: %s (%d threads, %s path): element %zu is %.7g, want %.7g", name, what, threads,
               zn_cpu_path_name(zn_cpu_path_active()), i, got[i], want[i]);
}

static double *zeros(size_t n) {
  double *a = calloc(n ? n : 1, sizeof(double));
  assert_non_null(a);
  return a;
}

/* The workspace p's kernels need, one byte more so that an empty one is still an allocation. */
static float *conv_workspace(const zn_conv_params *p) {
  float *ws = malloc(zn_conv2d_workspace_bytes(p) + 1);
  assert_non_null(ws);
  return ws;
}

/* The epilogues (conv.h): the forward with plane sums writes y's bits (y: the forward's output
 * without them) and the sums zn_plane_sums takes over y afterwards, bit for bit; backward-filter
 * with the scratch writes the dw and db it writes without. */
static void check_epilogues(const zn_conv_params *p, const float *x, const float *w, const float *b,
                     const float *dy, const float *y, float *ws) {
  const size_t ny = y_size(p), planes = (size_t)p->n * p->o, nw = w_size(p);
  float *y2 = alloc_filled(ny, 9), *dw[2], *db[2];
  zn_bn_sums *got = calloc(planes, sizeof *got), *want = calloc(planes, sizeof *want);
  zn_conv2d_forward(p, x, w, b, y2, ws, got);
  assert_memory_equal(y2, y, sizeof(float) * ny);
  zn_plane_sums(y, (int)planes, (int)(ny / planes), true, want);
  assert_memory_equal(got, want, sizeof *got * planes);
  for (int k = 0; k < 2; k++) {
    dw[k] = alloc_filled(nw, 10 + k), db[k] = alloc_filled(p->o, 12 + k);
    zn_conv2d_backward_filter(p, x, dy, dw[k], db[k], ws, k ? got : NULL);
  }
  assert_memory_equal(dw[0], dw[1], sizeof(float) * nw);
  assert_memory_equal(db[0], db[1], sizeof(float) * p->o);
  for (int k = 0; k < 2; k++) free(dw[k]), free(db[k]);
  free(y2), free(got), free(want);
}

static void check_case(const conv_case *cc, int threads) {
  const zn_conv_params *p = &cc->p;
  size_t nx = x_size(p), nw = w_size(p), ny = y_size(p);
  float *x = alloc_filled(nx, 1), *w = alloc_filled(nw, 2), *b = alloc_filled(p->o, 3),
        *dy = alloc_filled(ny, 4);
  float *y = alloc_filled(ny, 5), *dx = alloc_filled(nx, 6), *dw = alloc_filled(nw, 7),
        *db = alloc_filled(p->o, 8); /* garbage: the kernels must overwrite */
  float *ws = conv_workspace(p);
  double *ry = zeros(ny), *rdx = zeros(nx), *rdw = zeros(nw), *rdb = zeros(p->o);

  naive_taps(p, tap_y, &(ref_ctx){x, w, ry});
  naive_taps(p, tap_dx, &(ref_ctx){dy, w, rdx});
  naive_taps(p, tap_dw, &(ref_ctx){x, dy, rdw});
  size_t plane = ny / p->n / p->o;
  for (size_t i = 0; i < ny; i++) {
    size_t o = i / plane % p->o;
    if (cc->bias) ry[i] += b[o];
    rdb[o] += dy[i];
  }

  zn_conv2d_forward(p, x, w, cc->bias ? b : NULL, y, ws, NULL);
  assert_close("forward", cc->name, threads, y, ry, ny);
  check_epilogues(p, x, w, cc->bias ? b : NULL, dy, y, ws);
  zn_conv2d_backward_data(p, dy, w, dx, ws);
  assert_close("backward_data", cc->name, threads, dx, rdx, nx);
  zn_conv2d_backward_filter(p, x, dy, dw, cc->bias ? db : NULL, ws, NULL);
  assert_close("backward_filter dw", cc->name, threads, dw, rdw, nw);
  if (cc->bias) assert_close("backward_filter db", cc->name, threads, db, rdb, p->o);

  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ws);
  free(ry), free(rdx), free(rdw), free(rdb);
}

/* Runs check() with a pool of each of THREAD_COUNTS on each kernel path this CPU has. */
static void on_each_pool(void (*check)(int threads)) {
  for (int path = 0; path < ZN_CPU_PATH_COUNT; path++) {
    if (!zn_cpu_path_force((zn_cpu_path)path)) {
      print_message("skipping the %s path: this CPU lacks it\n", zn_cpu_path_name((zn_cpu_path)path));
      continue;
    }
    for (size_t t = 0; t < sizeof THREAD_COUNTS / sizeof THREAD_COUNTS[0]; t++) {
      assert_int_equal(zn_cpu_threads_init(THREAD_COUNTS[t]), 0);
      assert_int_equal(zn_cpu_threads_count(), THREAD_COUNTS[t]);
      check(THREAD_COUNTS[t]);
    }
  }
  zn_cpu_threads_free();
  assert_true(zn_cpu_path_choose(NULL, 0)); /* back to the environment's path */
}

/* Runs check(p, workspace) on each of shapes[0..n) with a pool of `threads`. */
static void on_each_shape(int threads, const zn_conv_params *shapes, size_t n,
                          void (*check)(const zn_conv_params *p, float *ws)) {
  assert_int_equal(zn_cpu_threads_init(threads), 0);
  for (size_t s = 0; s < n; s++) {
    float *ws = conv_workspace(&shapes[s]);
    check(&shapes[s], ws);
    free(ws);
  }
  zn_cpu_threads_free();
}

static void check_cases(int threads) {
  for (size_t i = 0; i < N_CASES; i++) check_case(&CASES[i], threads);
}

static void test_conv_against_naive(void **state) {
  (void)state;
  on_each_pool(check_cases);
}

/* Backward-filter twice on the same input gives the same dw. */
static void check_repeatable(const zn_conv_params *p, float *ws) {
  float *x = alloc_filled(x_size(p), 31), *dy = alloc_filled(y_size(p), 32),
        *dw1 = alloc_filled(w_size(p), 33), *dw2 = alloc_filled(w_size(p), 34);
  zn_conv2d_backward_filter(p, x, dy, dw1, NULL, ws, NULL);
  zn_conv2d_backward_filter(p, x, dy, dw2, NULL, ws, NULL);
  assert_memory_equal(dw1, dw2, sizeof(float) * w_size(p));
  free(x), free(dy), free(dw1), free(dw2);
}

/* The pool's partial weight gradients are summed in a fixed order, so a rerun with the same
 * thread count gives the same bits (training resumes depend on it). */
static void test_backward_filter_repeatable(void **state) {
  (void)state;
  static const zn_conv_params shapes[] = {{11, 6, 8, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                          {5, 4, 7, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1}};
  on_each_shape(3, shapes, sizeof shapes / sizeof shapes[0], check_repeatable);
}

static void test_output_size(void **state) {
  (void)state;
  zn_conv_params p = {1, 1, 32, 8, 1, 3, 3, 2, 1, 1, 2, 1, 2, 1};
  assert_int_equal(zn_conv_out_h(&p), 16); /* (32 + 2 - 3) / 2 + 1 */
  assert_int_equal(zn_conv_out_w(&p), 8);  /* (8 + 4 - 5) / 1 + 1 */
}

/* sum(y * r) for the probe r: its gradient is backward_data(r) in x and backward_filter in w. */
static double probe_loss(const zn_conv_params *p, const float *x, const float *w, const float *r,
                         float *y, float *ws) {
  zn_conv2d_forward(p, x, w, NULL, y, ws, NULL);
  double s = 0.0;
  for (size_t i = 0; i < y_size(p); i++) s += (double)y[i] * r[i];
  return s;
}

/* Central differences of probe_loss against grad, element by element (perturbs v in place). */
static void check_fd(const char *what, const zn_conv_params *p, float *v, size_t n,
                     const float *grad, const float *x, const float *w, const float *r, float *y,
                     float *ws) {
  const float h = 1e-2f;
  for (size_t i = 0; i < n; i++) {
    float keep = v[i];
    v[i] = keep + h;
    double up = probe_loss(p, x, w, r, y, ws);
    v[i] = keep - h;
    double down = probe_loss(p, x, w, r, y, ws);
    v[i] = keep;
    double fd = (up - down) / (2.0 * h);
    if (!(fabs(fd - grad[i]) <= 1e-2 * (1.0 + fabs(fd))))
      fail_msg("%s: element %zu: finite difference %.6g, kernel %.6g", what, i, fd, grad[i]);
  }
}

/* Both backward kernels against central differences of the forward. */
static void check_gradients(const zn_conv_params *p, float *ws) {
  float *x = alloc_filled(x_size(p), 11), *w = alloc_filled(w_size(p), 12),
        *r = alloc_filled(y_size(p), 13), *y = alloc_filled(y_size(p), 14),
        *dx = alloc_filled(x_size(p), 15), *dw = alloc_filled(w_size(p), 16);
  zn_conv2d_backward_data(p, r, w, dx, ws);
  zn_conv2d_backward_filter(p, x, r, dw, NULL, ws, NULL);
  check_fd("backward_data", p, x, x_size(p), dx, x, w, r, y, ws);
  check_fd("backward_filter", p, w, w_size(p), dw, x, w, r, y, ws);
  free(x), free(w), free(r), free(y), free(dx), free(dw);
}

static void test_finite_differences(void **state) {
  (void)state;
  static const zn_conv_params shapes[] = {{2, 2, 5, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                          {2, 4, 7, 6, 2, 3, 3, 2, 1, 2, 2, 2, 2, 2}};
  on_each_shape(2, shapes, sizeof shapes / sizeof shapes[0], check_gradients);
}

static void check_linear(int threads, int n, int in, int out, int bias) {
  float *x = alloc_filled((size_t)n * in, 21), *w = alloc_filled((size_t)out * in, 22),
        *b = alloc_filled(out, 23), *dy = alloc_filled((size_t)n * out, 24);
  float *y = alloc_filled((size_t)n * out, 25), *dx = alloc_filled((size_t)n * in, 26),
        *dw = alloc_filled((size_t)out * in, 27), *db = alloc_filled(out, 28);
  double *ry = zeros((size_t)n * out), *rdx = zeros((size_t)n * in),
         *rdw = zeros((size_t)out * in), *rdb = zeros(out);
  for (int r = 0; r < n; r++)
    for (int o = 0; o < out; o++) {
      ry[r * out + o] = bias ? b[o] : 0.0;
      rdb[o] += dy[r * out + o];
      for (int i = 0; i < in; i++) {
        ry[r * out + o] += (double)x[r * in + i] * w[o * in + i];
        rdx[r * in + i] += (double)dy[r * out + o] * w[o * in + i];
        rdw[o * in + i] += (double)dy[r * out + o] * x[r * in + i];
      }
    }
  zn_linear_forward(n, in, out, x, w, bias ? b : NULL, y);
  assert_close("linear forward", "linear", threads, y, ry, (size_t)n * out);
  zn_linear_backward_data(n, in, out, dy, w, dx);
  assert_close("linear backward_data", "linear", threads, dx, rdx, (size_t)n * in);
  zn_linear_backward_weight(n, in, out, x, dy, dw, bias ? db : NULL);
  assert_close("linear backward dw", "linear", threads, dw, rdw, (size_t)out * in);
  if (bias) assert_close("linear backward db", "linear", threads, db, rdb, out);
  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
  free(ry), free(rdx), free(rdw), free(rdb);
}

static void check_linears(int threads) {
  check_linear(threads, 5, 7, 3, 1);
  check_linear(threads, 1, 16, 10, 0); /* fewer rows than threads */
  check_linear(threads, 9, 512, 10, 0);
}

static void test_linear_against_naive(void **state) {
  (void)state;
  on_each_pool(check_linears);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_output_size),
      cmocka_unit_test(test_conv_against_naive),
      cmocka_unit_test(test_finite_differences),
      cmocka_unit_test(test_backward_filter_repeatable),
      cmocka_unit_test(test_linear_against_naive),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
