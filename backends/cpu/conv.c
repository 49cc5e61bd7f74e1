/* conv.c: 2-D convolution as im2col + OpenBLAS sgemm. Each pool thread takes a contiguous slice
 * of the batch and walks it in chunks of images sized so the GEMM's column count (images x
 * output pixels) stays near ZN_CONV_TARGET_COLS; a 1x1 stride-1 unpadded conv over one image
 * reads its input directly; 3x3 stride-1 "same" convs with few channels per group run all three
 * directions on conv_direct.c's kernels instead (uses_direct), and those winograd.c's rule picks on
 * Winograd's (zn_winograd_chosen). backward-filter accumulates per
 * thread, then the slices are summed in thread order, so a rerun with the same pool gives the
 * same bits. */
#include "backends/cpu/conv.h"

#include <assert.h>
#include <cblas.h>
#include <string.h>

#include "backends/cpu/conv_direct.h"
#include "backends/cpu/im2col.h"
#include "backends/cpu/sums.h"
#include "backends/cpu/threads.h"
#include "backends/cpu/winograd.h"

/* GEMM columns per chunk: enough for OpenBLAS's N-blocking to pay off on 4x4 and 8x8 layers;
 * 256..4096 measured alike within this machine's noise (docs/performance.md). */
#define ZN_CONV_TARGET_COLS 1024
/* The fewest GEMM columns measured as fast as ZN_CONV_TARGET_COLS (the same measurement). */
#define ZN_CONV_MIN_COLS 256

/* Sizes derived from zn_conv_params, shared by the three directions. */
typedef struct conv_geom {
  int ohw;        /* output pixels per image plane */
  size_t hw;      /* input pixels per image plane */
  int cg, og;     /* input, output channels per group */
  int k;          /* GEMM inner size: cg * kh * kw (rows of the column matrix) */
  int pointwise;  /* 1x1, stride 1, no padding: an image's group slice already is its columns */
  int winograd;   /* all three directions run winograd.c's (rule: zn_winograd_chosen) */
  int direct;     /* all three directions run conv_direct.c's kernels (rule: uses_direct) */
  int chunk;      /* images per GEMM */
  int threads;
  size_t col_floats, tmp_floats, dw_floats;  /* per-thread workspace parts */
  size_t wt_floats;  /* shared: backward-data's transposed, flipped weights on the direct path */
} conv_geom;

/* The direct kernels replace im2col + GEMM for 3x3 stride-1 "same" convs (padding = dilation)
 * whose planes fit their tiling, where they measured faster (docs/performance.md, "Direct 3x3
 * kernel", "Grouped 3x3 convs"): up to 64 channels per group each side, or up to 128 on planes
 * of at most 8x8 (where im2col + GEMM is weakest). With 64 -> 128 channels on 32x32 the GEMM's
 * larger blocks win; grouped convs with few channels per group leave the GEMM tiny. One rule for
 * all three directions: backward-filter measured faster or level on every shape it admits. */
static int uses_direct(const zn_conv_params *p) {
  int widest = (p->c > p->o ? p->c : p->o) / p->groups;
  if (widest > ((long)p->h * p->w <= 64 ? 128 : 64)) return 0;
  return p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 &&
         p->dil_h == p->dil_w && p->pad_h == p->dil_h && p->pad_w == p->dil_w &&
         zn_conv_direct_supported(p->h, p->w);
}

/* The direct kernels' shape of p, or of its backward-data conv (dy -> dx) when transposed. */
static zn_direct_shape direct_shape(const zn_conv_params *p, int transposed) {
  return (zn_direct_shape){.c = transposed ? p->o : p->c, .o = transposed ? p->c : p->o,
                           .groups = p->groups, .h = p->h, .w = p->w, .dil = p->dil_h};
}

static conv_geom conv_geom_of(const zn_conv_params *p) {
  assert(p->n > 0 && p->groups > 0 && p->c % p->groups == 0 && p->o % p->groups == 0);
  assert(p->stride_h > 0 && p->stride_w > 0 && p->dil_h > 0 && p->dil_w > 0);
  conv_geom g;
  g.ohw = zn_conv_out_h(p) * zn_conv_out_w(p);
  assert(zn_conv_out_h(p) > 0 && zn_conv_out_w(p) > 0);
  g.hw = (size_t)p->h * p->w;
  g.cg = p->c / p->groups;
  g.og = p->o / p->groups;
  g.k = g.cg * p->kh * p->kw;
  g.pointwise = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                p->pad_h == 0 && p->pad_w == 0;
  g.threads = zn_cpu_threads_count();
  int per_thread = (p->n + g.threads - 1) / g.threads;
  g.chunk = (ZN_CONV_TARGET_COLS + g.ohw - 1) / g.ohw;
  /* A 1x1 conv's columns are its input: one image per GEMM reads it (and writes y, dx) in place,
   * no im2col, packing or col2im, where one image gives the GEMM enough columns. */
  if (g.pointwise && g.ohw >= ZN_CONV_MIN_COLS) g.chunk = 1;
  if (g.chunk > per_thread) g.chunk = per_thread;
  size_t cols = (size_t)g.chunk * g.ohw;
  g.col_floats = (size_t)g.k * cols;
  g.tmp_floats = g.chunk > 1 ? (size_t)g.og * cols : 0;
  g.dw_floats = (size_t)p->o * g.k;
  g.winograd = zn_winograd_chosen(p);
  g.direct = !g.winograd && uses_direct(p);
  g.wt_floats = g.direct ? g.dw_floats : 0;
  if (g.direct) {
    size_t pad = zn_conv_direct_scratch_floats(p->c > p->o ? p->c : p->o, p->h, p->w, p->dil_h) *
                 zn_conv_direct_filter_batch(p->h, p->w);
    if (pad > g.col_floats) g.col_floats = pad;
  }
  return g;
}

size_t zn_conv2d_workspace_bytes(const zn_conv_params *p) {
  conv_geom g = conv_geom_of(p);
  if (g.winograd) return zn_winograd_workspace_bytes(p);
  return sizeof(float) *
         (g.threads * (g.col_floats + g.tmp_floats) + (g.threads - 1) * g.dw_floats +
          g.wt_floats);
}

typedef struct conv_job conv_job;

/* One step of a direction on images [n0, n0 + images) of thread t's slice of the batch; first:
 * the slice's first step. */
typedef void conv_step_fn(const conv_job *j, int t, int n0, int images, int first);

/* A direction: its step on the direct path and on the GEMM path. */
typedef struct conv_direction {
  conv_step_fn *direct, *gemm;
  int filter;  /* backward-filter: direct steps take zn_conv_direct_filter_batch images, and the
                  thread's dw accumulator starts at zero where no GEMM step overwrites it */
} conv_direction;

/* One call's arguments, shared read-only by the pool's threads. */
struct conv_job {
  const zn_conv_params *p;
  conv_geom g;
  const conv_direction *dir;
  const float *x, *w, *b, *dy;  /* inputs of the direction being run (others NULL) */
  float *y, *dx, *dw, *db;      /* its outputs */
  float *ws;
  zn_bn_sums *planes;  /* the epilogue's sums of each image plane of y (forward) or dy
                          (backward-filter), [n * o], or NULL (zn_plane_sums) */
};

static float *thread_col(const conv_job *j, int t) {
  return j->ws + t * (j->g.col_floats + j->g.tmp_floats);
}

static float *thread_tmp(const conv_job *j, int t) { return thread_col(j, t) + j->g.col_floats; }

/* Thread t's private dw accumulator; thread 0 accumulates straight into dw. */
static float *thread_dw(const conv_job *j, int t) {
  if (t == 0) return j->dw;
  return j->ws + j->g.threads * (j->g.col_floats + j->g.tmp_floats) + (t - 1) * j->g.dw_floats;
}

/* Backward-data's weights on the direct path: [c, o / groups, 3, 3], each group's transposed,
 * taps flipped (a 3x3 stride-1 "same" conv's input gradient is the same conv of dy with these). */
static float *transposed_weights(const conv_job *j) {
  return j->ws + j->g.threads * (j->g.col_floats + j->g.tmp_floats) +
         (j->g.threads - 1) * j->g.dw_floats;
}

static void transpose_weights(const conv_job *j) {
  const zn_conv_params *p = j->p;
  float *wt = transposed_weights(j);
  const int cg = j->g.cg, og = j->g.og;
  for (int o = 0; o < p->o; o++)
    for (int c = 0; c < cg; c++) {
      size_t to = (((size_t)(o / og) * cg + c) * og + o % og) * 9, from = ((size_t)o * cg + c) * 9;
      for (int tap = 0; tap < 9; tap++) wt[to + 8 - tap] = j->w[from + tap];
    }
}

/* The column matrix [k, images * ohw] of group grp for images [n0, n0 + images). */
static const float *chunk_columns(const conv_job *j, int t, int n0, int images, int grp) {
  const zn_conv_params *p = j->p;
  const float *x = j->x + (size_t)n0 * p->c * j->g.hw;
  if (j->g.pointwise && images == 1) return x + (size_t)grp * j->g.cg * j->g.hw;
  zn_im2col(p, x, images, grp, thread_col(j, t));
  return thread_col(j, t);
}

/* Moves group grp's rows between the NCHW tensor t4 [n, o, ohw] (images from n0) and the packed
 * matrix m [og, images * ohw]. to_packed: m = t4; else t4 = m + bias (bias may be NULL). */
static void pack_rows(const conv_job *j, float *t4, float *m, int n0, int images, int grp,
                      const float *bias, int to_packed) {
  const conv_geom *g = &j->g;
  for (int o = 0; o < g->og; o++)
    for (int im = 0; im < images; im++) {
      float *plane = t4 + ((size_t)(n0 + im) * j->p->o + (size_t)grp * g->og + o) * g->ohw;
      float *row = m + ((size_t)o * images + im) * g->ohw;
      if (to_packed) {
        memcpy(row, plane, sizeof(float) * g->ohw);
      } else {
        float add = bias ? bias[grp * g->og + o] : 0.0f;
        for (int q = 0; q < g->ohw; q++) plane[q] = row[q] + add;
      }
    }
}

/* dy's group-grp rows for a chunk as an [og, images * ohw] matrix (packed when images > 1). */
static const float *chunk_dy(const conv_job *j, int t, int n0, int images, int grp) {
  const conv_geom *g = &j->g;
  if (images == 1) return j->dy + ((size_t)n0 * j->p->o + (size_t)grp * g->og) * g->ohw;
  pack_rows(j, (float *)j->dy, thread_tmp(j, t), n0, images, grp, NULL, 1);  /* reads dy only */
  return thread_tmp(j, t);
}

/* The epilogue of a step on images [n0, n0 + images): the sums of their planes of y (forward,
 * with squares: batch-norm statistics) or dy (backward-filter: the bias gradient), read while
 * the step has just written or read them and they are still in cache. */
static void planes_sums(const conv_job *j, int n0, int images) {
  const size_t first = (size_t)n0 * j->p->o;
  const int filter = j->dir->filter;
  zn_plane_sums((filter ? j->dy : j->y) + first * j->g.ohw, images * j->p->o, j->g.ohw, !filter,
                j->planes + first);
}

/* Thread t's slice of the batch, step by step in the job's direction (the pool's job function). */
static void slice_job(void *ctx, int t, int count) {
  const conv_job *j = ctx;
  const conv_geom *g = &j->g;
  int begin, end;
  zn_cpu_split(j->p->n, t, count, &begin, &end);
  if (j->dir->filter && (begin == end || g->direct))
    memset(thread_dw(j, t), 0, sizeof(float) * g->dw_floats);
  int step = !g->direct      ? g->chunk
             : j->dir->filter ? zn_conv_direct_filter_batch(j->p->h, j->p->w)
                              : 1;
  for (int n0 = begin; n0 < end; n0 += step) {
    const int images = end - n0 < step ? end - n0 : step;
    (g->direct ? j->dir->direct : j->dir->gemm)(j, t, n0, images, n0 == begin);
    if (j->planes) planes_sums(j, n0, images);
  }
}

/* The pool's job when Winograd ran the direction (its tiles cross images and threads, so it has
 * no epilogue): the planes' sums afterwards, each thread its slice of the batch. */
static void planes_sums_job(void *ctx, int t, int count) {
  const conv_job *j = ctx;
  int begin, end;
  zn_cpu_split(j->p->n, t, count, &begin, &end);
  if (begin < end) planes_sums(j, begin, end - begin);
}

/* One image on the direct path: forward (x -> y), or backward-data (dy -> dx), which is the same
 * conv of dy with the transposed, flipped weights. */
static void image_direct(const conv_job *j, int t, int n, int images, int first) {
  (void)images, (void)first;  /* one image per step */
  const zn_conv_params *p = j->p;
  const int backward = j->dx != NULL;
  const zn_direct_shape s = direct_shape(p, backward);
  const size_t x_at = (size_t)n * p->c * j->g.hw, y_at = (size_t)n * p->o * j->g.ohw;
  if (backward)
    zn_conv_direct_image(&s, j->dy + y_at, transposed_weights(j), NULL, j->dx + x_at,
                         thread_col(j, t));
  else
    zn_conv_direct_image(&s, j->x + x_at, j->w, j->b, j->y + y_at, thread_col(j, t));
}

static void forward_gemm(const conv_job *j, int t, int n0, int images, int first) {
  (void)first;
  const zn_conv_params *p = j->p;
  const conv_geom *g = &j->g;
  int cols = images * g->ohw;
  for (int grp = 0; grp < p->groups; grp++) {
    const float *col = chunk_columns(j, t, n0, images, grp);
    const float *wg = j->w + (size_t)grp * g->og * g->k;
    float *out = images == 1 ? j->y + ((size_t)n0 * p->o + (size_t)grp * g->og) * g->ohw
                             : thread_tmp(j, t);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->og, cols, g->k, 1.0f, wg, g->k,
                col, cols, 0.0f, out, cols);
    if (images > 1 || j->b) pack_rows(j, j->y, out, n0, images, grp, j->b, 0);
  }
}

static const conv_direction FORWARD = {image_direct, forward_gemm, 0};

void zn_conv2d_forward(const zn_conv_params *p, const float *x, const float *w, const float *b,
                       float *y, float *workspace, zn_bn_sums *planes) {
  conv_job j = {.p = p, .g = conv_geom_of(p), .dir = &FORWARD, .x = x, .w = w, .b = b, .y = y,
                .ws = workspace, .planes = planes};
  if (!j.g.winograd) {
    zn_cpu_parallel_run(slice_job, &j);
    return;
  }
  zn_winograd_forward(p, x, w, b, y, workspace);
  if (planes) zn_cpu_parallel_run(planes_sums_job, &j);
}

static void backward_data_gemm(const conv_job *j, int t, int n0, int images, int first) {
  (void)first;
  const zn_conv_params *p = j->p;
  const conv_geom *g = &j->g;
  int cols = images * g->ohw;
  float *dx = j->dx + (size_t)n0 * p->c * g->hw;
  int direct = g->pointwise && images == 1;  /* the GEMM writes dx itself, else col2im does */
  for (int grp = 0; grp < p->groups; grp++) {
    const float *dyg = chunk_dy(j, t, n0, images, grp);
    const float *wg = j->w + (size_t)grp * g->og * g->k;
    float *dcol = direct ? dx + (size_t)grp * g->cg * g->hw : thread_col(j, t);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->k, cols, g->og, 1.0f, wg, g->k, dyg,
                cols, 0.0f, dcol, cols);
    if (!direct) zn_col2im(p, dcol, images, grp, dx);
  }
}

static const conv_direction BACKWARD_DATA = {image_direct, backward_data_gemm, 0};

void zn_conv2d_backward_data(const zn_conv_params *p, const float *dy, const float *w, float *dx,
                             float *workspace) {
  conv_job j = {.p = p, .g = conv_geom_of(p), .dir = &BACKWARD_DATA, .dy = dy, .w = w, .dx = dx,
                .ws = workspace};
  if (j.g.winograd) {
    zn_winograd_backward_data(p, dy, w, dx, workspace);
    return;
  }
  if (j.g.direct) transpose_weights(&j);
  zn_cpu_parallel_run(slice_job, &j);
}

/* Adds the images' contribution to thread t's dw accumulator (zeroed by slice_job). */
static void backward_filter_direct(const conv_job *j, int t, int n0, int images, int first) {
  (void)first;
  const zn_conv_params *p = j->p;
  const zn_direct_shape s = direct_shape(p, 0);
  zn_conv_direct_filter_images(&s, images, j->x + (size_t)n0 * p->c * j->g.hw,
                               j->dy + (size_t)n0 * p->o * j->g.ohw, thread_dw(j, t),
                               thread_col(j, t));
}

/* The slice's first chunk writes thread t's dw accumulator, the others add to it. */
static void backward_filter_gemm(const conv_job *j, int t, int n0, int images, int first) {
  const conv_geom *g = &j->g;
  int cols = images * g->ohw;
  for (int grp = 0; grp < j->p->groups; grp++) {
    /* dy first: the packed dy and the columns live in different workspace parts. */
    const float *dyg = chunk_dy(j, t, n0, images, grp);
    const float *col = chunk_columns(j, t, n0, images, grp);
    float *accg = thread_dw(j, t) + (size_t)grp * g->og * g->k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->og, g->k, cols, 1.0f, dyg, cols, col,
                cols, first ? 0.0f : 1.0f, accg, g->k);
  }
}

static const conv_direction BACKWARD_FILTER = {backward_filter_direct, backward_filter_gemm, 1};

/* Sums the threads' dw accumulators into dw (Winograd leaves one) and computes db, each thread
 * taking a slice: from the epilogue's sums of dy's planes when it took them, else from dy. Both
 * are zn_channel_sum's bits (sums.h). */
static void backward_filter_reduce_job(void *ctx, int t, int count) {
  const conv_job *j = ctx;
  const zn_conv_params *p = j->p;
  int begin, end;
  zn_cpu_split((int)j->g.dw_floats, t, count, &begin, &end);
  for (int s = 1; s < (j->g.winograd ? 1 : j->g.threads); s++) {
    const float *part = thread_dw(j, s);
    for (int i = begin; i < end; i++) j->dw[i] += part[i];
  }
  if (!j->db) return;
  zn_cpu_split(p->o, t, count, &begin, &end);
  for (int o = begin; o < end; o++) {
    zn_bn_sums t = {0, 0, 0, 0};
    if (j->planes && !j->g.winograd)
      t = zn_planes_channel_sums(j->planes, p->n, p->o, o);
    else
      zn_rows_sums_add(j->dy + (size_t)o * j->g.ohw, NULL, p->n, (size_t)p->o * j->g.ohw,
                       j->g.ohw, false, &t);
    j->db[o] = (float)t.x;
  }
}

void zn_conv2d_backward_filter(const zn_conv_params *p, const float *x, const float *dy,
                               float *dw, float *db, float *workspace, zn_bn_sums *planes) {
  conv_job j = {.p = p, .g = conv_geom_of(p), .dir = &BACKWARD_FILTER, .x = x, .dy = dy, .dw = dw,
                .db = db, .ws = workspace, .planes = db ? planes : NULL};
  if (j.g.winograd)
    zn_winograd_backward_filter(p, x, dy, dw, workspace);
  else
    zn_cpu_parallel_run(slice_job, &j);
  zn_cpu_parallel_run(backward_filter_reduce_job, &j);
}
