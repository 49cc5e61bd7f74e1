/* k_pool.c: every kernel that reduces windows of H×W planes: max/avg pooling, global pooling,
 * resample and stitch. They share one window walk (plane_forward/plane_backward); they differ
 * only in the window geometry and in where the output plane lies (stitch writes its planes
 * transposed into Z, so the output side takes a row stride). Planes are independent: the pool's
 * threads take fixed slices of them; 2x2 max pooling and one-element windows (a copy, nearest
 * upsampling) have plane loops of their own. */
#include "backends/cpu/kernels.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/threads.h"

/* Windows along one axis: output o covers input [o*stride/up - pad, ... + kernel), clipped to
 * [0, in). Pooling has up = 1; nearest upsampling by f is kernel 1, stride 1, up f. */
typedef struct {
    int in, out;
    int kernel, stride, pad, up;
} axis_win;

typedef struct {
    axis_win row, col;
} plane_win;

static void axis_range(const axis_win *a, int o, int *lo, int *hi)
{
    int s = o * a->stride / a->up - a->pad;
    int e = s + a->kernel;
    *lo = s < 0 ? 0 : s;
    *hi = e > a->in ? a->in : e;
}

/* Window (i, j) of a plane: input rows [r0, r1) and columns [c0, c1), clipped to the plane. */
typedef struct {
    int r0, r1, c0, c1;
} window;

static window window_at(const plane_win *g, int i, int j)
{
    window b;
    axis_range(&g->row, i, &b.r0, &b.r1);
    axis_range(&g->col, j, &b.c0, &b.c1);
    return b;
}

/* Elements in window b (0 when clipping left it empty). */
static int window_count(const window *b)
{
    return b->r1 > b->r0 && b->c1 > b->c0 ? (b->r1 - b->r0) * (b->c1 - b->c0) : 0;
}

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t m4 __attribute__((vector_size(16)));

/* The first maximum of x[0..n), n > 0, as the scan below finds it (a later element wins only
 * when strictly greater, so a NaN counts only as x[0]): the maximum in 16 lanes, then the
 * first element equal to it. Global pooling's planes, which the scan's chain of loads and
 * compares walked at one element a cycle. */
static ptrdiff_t contiguous_argmax(const float *x, size_t n)
{
    enum { CHAINS = 4 }; /* independent running maxima, so the compares and selects overlap */
    if (x[0] != x[0]) return 0;
    f4 m[CHAINS];
    for (int c = 0; c < CHAINS; c++) m[c] = (f4){x[0], x[0], x[0], x[0]};
    size_t i = 0;
    for (; i + 4 * CHAINS <= n; i += 4 * CHAINS)
        for (int c = 0; c < CHAINS; c++) {
            f4 v;
            memcpy(&v, x + i + 4 * c, sizeof v);
            const m4 up = v > m[c];
            m[c] = (f4)((up & (m4)v) | (~up & (m4)m[c]));
        }
    float top = x[0];
    for (int c = 0; c < CHAINS; c++)
        for (int k = 0; k < 4; k++) top = m[c][k] > top ? m[c][k] : top;
    for (; i < n; i++) top = x[i] > top ? x[i] : top;
    size_t at = 0;
    while (!(x[at] == top)) at++;
    return (ptrdiff_t)at;
}

/* Index (in the plane, w columns) of the first maximum of window b, or -1 for an empty window. */
static ptrdiff_t window_argmax(const float *x, int w, const window *b)
{
    if (b->c0 == 0 && b->c1 == w && b->r1 > b->r0) /* whole rows: one contiguous run */
        return (ptrdiff_t)b->r0 * w +
               contiguous_argmax(x + (size_t)b->r0 * w, (size_t)(b->r1 - b->r0) * w);
    ptrdiff_t best = -1;
    for (int i = b->r0; i < b->r1; i++)
        for (int j = b->c0; j < b->c1; j++) {
            ptrdiff_t at = (ptrdiff_t)i * w + j;
            if (best < 0 || x[at] > x[best]) best = at;
        }
    return best;
}

/* Reduces every window of the plane x [row.in, col.in] into y, whose rows are ys apart. */
static void plane_forward(zn_window_reduce r, const plane_win *g, const float *x, float *y,
                          size_t ys)
{
    int w = g->col.in;
    for (int i = 0; i < g->row.out; i++)
        for (int j = 0; j < g->col.out; j++) {
            const window b = window_at(g, i, j);
            float v = 0.0f;
            if (r == ZN_WINDOW_MAX) {
                ptrdiff_t at = window_argmax(x, w, &b);
                if (at >= 0) v = x[at];
            } else if (window_count(&b)) {
                double s = 0.0;
                for (int row = b.r0; row < b.r1; row++)
                    for (int col = b.c0; col < b.c1; col++) s += x[(size_t)row * w + col];
                v = (float)(s / window_count(&b));
            }
            y[i * ys + j] = v;
        }
}

/* Overwrites the plane dx with the gradient of plane_forward given dy (rows ys apart): max
 * routes to the window's arg-max (recomputed from x), avg spreads evenly. A plane of one max
 * window (global pooling) finds its arg-max first, so dx may be x itself (the plan's in place). */
static void plane_backward(zn_window_reduce r, const plane_win *g, const float *x,
                           const float *dy, size_t ys, float *dx)
{
    int w = g->col.in;
    if (r == ZN_WINDOW_MAX && g->row.out == 1 && g->col.out == 1) {
        const window b = window_at(g, 0, 0);
        ptrdiff_t at = window_argmax(x, w, &b);
        memset(dx, 0, sizeof *dx * (size_t)g->row.in * (size_t)w);
        if (at >= 0) dx[at] += dy[0];
        return;
    }
    memset(dx, 0, sizeof *dx * (size_t)g->row.in * (size_t)w);
    for (int i = 0; i < g->row.out; i++)
        for (int j = 0; j < g->col.out; j++) {
            const window b = window_at(g, i, j);
            float d = dy[i * ys + j];
            if (r == ZN_WINDOW_MAX) {
                ptrdiff_t at = window_argmax(x, w, &b);
                if (at >= 0) dx[at] += d;
            } else if (window_count(&b)) {
                d /= (float)window_count(&b);
                for (int row = b.r0; row < b.r1; row++)
                    for (int col = b.c0; col < b.c1; col++) dx[(size_t)row * w + col] += d;
            }
        }
}

/* Max over 2x2 windows that tile the plane exactly (DavidNet's pooling): the window's first
 * maximum in row-major order, as window_argmax finds it, without the general walk. */
static bool tiles_2x2(zn_window_reduce r, const plane_win *g)
{
    const axis_win *a[2] = {&g->row, &g->col};
    for (int i = 0; i < 2; i++)
        if (a[i]->kernel != 2 || a[i]->stride != 2 || a[i]->pad != 0 || a[i]->up != 1 ||
            a[i]->in != 2 * a[i]->out)
            return false;
    return r == ZN_WINDOW_MAX;
}

/* The window's maximum and which of its four elements (0: top-left, 1: top-right,
 * 2: bottom-left, 3: bottom-right) holds it first, in the order window_argmax walks them (a
 * later one wins only when strictly greater). Selects, no branches, so that the compiler
 * vectorises the row loops below over windows (the branching loop was bound by mispredictions). */
static inline float window_max_2x2(const float *r0, const float *r1, int j, int *which)
{
    float m = r0[2 * j];
    int at = 0;
    at = r0[2 * j + 1] > m ? 1 : at;
    m = r0[2 * j + 1] > m ? r0[2 * j + 1] : m;
    at = r1[2 * j] > m ? 2 : at;
    m = r1[2 * j] > m ? r1[2 * j] : m;
    at = r1[2 * j + 1] > m ? 3 : at;
    m = r1[2 * j + 1] > m ? r1[2 * j + 1] : m;
    *which = at;
    return m;
}

static void plane_forward_2x2(const plane_win *g, const float *x, float *y, size_t ys)
{
    int w = g->col.in;
    for (int i = 0; i < g->row.out; i++) {
        const float *r0 = x + (size_t)2 * i * w;
        float *out = y + i * ys;
        for (int j = 0; j < g->col.out; j++) {
            int which;
            out[j] = window_max_2x2(r0, r0 + w, j, &which);
        }
    }
}

/* Four windows' gradients at once in GCC's vector types (SSE2's width, whose shuffles every
 * x86-64 has; eight lanes became scalar code there): the rows' even and odd elements split
 * apart, the arg-max's masks formed as window_max_2x2 forms them, dy kept where each element
 * holds it (+0 elsewhere), the four interleaved back into the two rows. */
static inline void split4(const float *r, f4 *even, f4 *odd)
{
    f4 lo, hi;
    memcpy(&lo, r, sizeof lo), memcpy(&hi, r + 4, sizeof hi);
    *even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    *odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
}

static inline void join4(f4 even, f4 odd, float *r)
{
    const f4 lo = __builtin_shufflevector(even, odd, 0, 4, 1, 5);
    const f4 hi = __builtin_shufflevector(even, odd, 2, 6, 3, 7);
    memcpy(r, &lo, sizeof lo), memcpy(r + 4, &hi, sizeof hi);
}

static inline void backward_windows4(const float *r0, const float *r1, const float *dy, float *q0,
                                     float *q1)
{
    f4 a, b, c, d, v;
    split4(r0, &a, &b), split4(r1, &c, &d);
    memcpy(&v, dy, sizeof v);
    const m4 to_b = b > a;
    f4 m = (f4)((to_b & (m4)b) | (~to_b & (m4)a));
    const m4 to_c = c > m;
    m = (f4)((to_c & (m4)c) | (~to_c & (m4)m));
    const m4 to_d = d > m, keep_c = to_c & ~to_d, keep_b = to_b & ~to_c & ~to_d;
    const m4 keep_a = ~(to_b | to_c | to_d);
    join4((f4)((m4)v & keep_a), (f4)((m4)v & keep_b), q0);
    join4((f4)((m4)v & keep_c), (f4)((m4)v & to_d), q1);
}

/* dy to each window's arg-max, +0 to the other three. */
static void plane_backward_2x2(const plane_win *g, const float *x, const float *dy, size_t ys,
                               float *dx)
{
    int w = g->col.in;
    for (int i = 0; i < g->row.out; i++) {
        const size_t at = (size_t)2 * i * w;
        const float *r0 = x + at, *r1 = r0 + w, *d = dy + i * ys;
        float *q0 = dx + at, *q1 = q0 + w;
        int j = 0;
        for (; j + 4 <= g->col.out; j += 4)
            backward_windows4(r0 + 2 * j, r1 + 2 * j, d + j, q0 + 2 * j, q1 + 2 * j);
        for (; j < g->col.out; j++) {
            int which;
            window_max_2x2(r0, r1, j, &which);
            const float v = d[j];
            q0[2 * j] = which == 0 ? v : 0.0f, q0[2 * j + 1] = which == 1 ? v : 0.0f;
            q1[2 * j] = which == 2 ? v : 0.0f, q1[2 * j + 1] = which == 3 ? v : 0.0f;
        }
    }
}

/* Windows of one element each: a copy (the stitch of an input already at the stitch's size) or
 * nearest upsampling, where output (i, j) is input (i / up, j / up). Max and average agree. */
static bool one_element_windows(const plane_win *g)
{
    const axis_win *a[2] = {&g->row, &g->col};
    for (int i = 0; i < 2; i++)
        if (a[i]->kernel != 1 || a[i]->stride != 1 || a[i]->pad != 0 || a[i]->out != a[i]->in * a[i]->up)
            return false;
    return true;
}

static void plane_forward_repeat(const plane_win *g, const float *x, float *y, size_t ys)
{
    int w = g->col.in, up = g->col.up;
    for (int i = 0; i < g->row.out; i++) {
        const float *xr = x + (size_t)(i / g->row.up) * w;
        float *yr = y + i * ys;
        if (up == 1) memcpy(yr, xr, sizeof *yr * (size_t)w);
        else
            for (int b = 0; b < w; b++)
                for (int t = 0; t < up; t++) yr[b * up + t] = xr[b];
    }
}

/* The sum over each input element's copies, in the order the general walk adds them (rows,
 * then columns), so the result is the same to the bit. */
static void plane_backward_repeat(const plane_win *g, const float *dy, size_t ys, float *dx)
{
    int w = g->col.in, up = g->col.up;
    memset(dx, 0, sizeof *dx * (size_t)g->row.in * (size_t)w);
    for (int i = 0; i < g->row.out; i++) {
        float *dxr = dx + (size_t)(i / g->row.up) * w;
        const float *dyr = dy + i * ys;
        for (int b = 0; b < w; b++)
            for (int t = 0; t < up; t++) dxr[b] += dyr[b * up + t];
    }
}

/* One plane through the fastest walk its geometry allows. */
static void plane_forward_any(zn_window_reduce r, const plane_win *g, const float *x, float *y,
                              size_t ys)
{
    if (tiles_2x2(r, g)) plane_forward_2x2(g, x, y, ys);
    else if (one_element_windows(g)) plane_forward_repeat(g, x, y, ys);
    else plane_forward(r, g, x, y, ys);
}

static void plane_backward_any(zn_window_reduce r, const plane_win *g, const float *x,
                               const float *dy, size_t ys, float *dx)
{
    if (tiles_2x2(r, g)) plane_backward_2x2(g, x, dy, ys, dx);
    else if (one_element_windows(g)) plane_backward_repeat(g, dy, ys, dx);
    else plane_backward(r, g, x, dy, ys, dx);
}

/* x + at, keeping NULL (average pooling reads no x) NULL. */
static const float *plane_of(const float *x, size_t at)
{
    return x ? x + at : NULL;
}

/* The window walk over contiguous input and output planes; the pool's threads take planes. */
typedef struct planes_job {
    zn_window_reduce r;
    const plane_win *g;
    const float *x, *dy; /* dy NULL: the forward */
    float *y;            /* the forward's y, or the backward's dx */
} planes_job;

static void planes_range(void *ctx, size_t p0, size_t p1)
{
    const planes_job *j = ctx;
    const plane_win *g = j->g;
    size_t in = (size_t)g->row.in * g->col.in, out = (size_t)g->row.out * g->col.out;
    for (size_t p = p0; p < p1; p++) {
        if (!j->dy)
            plane_forward_any(j->r, g, j->x + p * in, j->y + p * out, (size_t)g->col.out);
        else
            plane_backward_any(j->r, g, plane_of(j->x, p * in), j->dy + p * out,
                               (size_t)g->col.out, j->y + p * in);
    }
}

static void planes_forward(zn_window_reduce r, const plane_win *g, size_t planes, const float *x,
                           float *y)
{
    planes_job j = {r, g, x, NULL, y};
    zn_cpu_parallel_for(planes, 8, planes_range, &j);
}

static void planes_backward(zn_window_reduce r, const plane_win *g, size_t planes,
                            const float *x, const float *dy, float *dx)
{
    planes_job j = {r, g, x, dy, dx};
    zn_cpu_parallel_for(planes, 8, planes_range, &j);
}

int zn_pool_out(int in, int kernel, int stride, int pad)
{
    return (in + 2 * pad - kernel) / stride + 1;
}

static plane_win pool_win(const zn_pool_dims *d)
{
    plane_win g;
    int in[2] = {d->h, d->w};
    axis_win *ax[2] = {&g.row, &g.col};
    for (int a = 0; a < 2; a++)
        *ax[a] = (axis_win){in[a], zn_pool_out(in[a], d->kernel[a], d->stride[a], d->pad[a]),
                            d->kernel[a], d->stride[a], d->pad[a], 1};
    return g;
}

void zn_pool_forward(zn_window_reduce r, const zn_pool_dims *d, const float *x, float *y)
{
    plane_win g = pool_win(d);
    planes_forward(r, &g, (size_t)d->n * d->c, x, y);
}

void zn_pool_backward(zn_window_reduce r, const zn_pool_dims *d, const float *x,
                      const float *dy, float *dx)
{
    plane_win g = pool_win(d);
    planes_backward(r, &g, (size_t)d->n * d->c, x, dy, dx);
}

static plane_win global_win(int h, int w)
{
    return (plane_win){{h, 1, h, 1, 0, 1}, {w, 1, w, 1, 0, 1}};
}

void zn_global_pool_forward(zn_window_reduce r, int n, int c, int h, int w, const float *x,
                            float *y)
{
    plane_win g = global_win(h, w);
    planes_forward(r, &g, (size_t)n * c, x, y);
}

void zn_global_pool_backward(zn_window_reduce r, int n, int c, int h, int w, const float *x,
                             const float *dy, float *dx)
{
    plane_win g = global_win(h, w);
    planes_backward(r, &g, (size_t)n * c, x, dy, dx);
}

/* One axis resampled from `in` to `out`: reduce by in/out or repeat out/in times. */
static axis_win resample_axis(int in, int out)
{
    if (in >= out) {
        assert(out > 0 && in % out == 0);
        int f = in / out;
        return (axis_win){in, out, f, f, 0, 1};
    }
    assert(in > 0 && out % in == 0);
    return (axis_win){in, out, 1, 1, 0, out / in};
}

static plane_win resample_win(int h, int w, int oh, int ow)
{
    return (plane_win){resample_axis(h, oh), resample_axis(w, ow)};
}

void zn_resample_forward(zn_window_reduce r, int n, int c, int h, int w, int oh, int ow,
                         const float *x, float *y)
{
    plane_win g = resample_win(h, w, oh, ow);
    planes_forward(r, &g, (size_t)n * c, x, y);
}

void zn_resample_backward(zn_window_reduce r, int n, int c, int h, int w, int oh, int ow,
                          const float *x, const float *dy, float *dx)
{
    plane_win g = resample_win(h, w, oh, ow);
    planes_backward(r, &g, (size_t)n * c, x, dy, dx);
}

/* Z[n, h, off + c, w]: the plane of (n, stacked channel ch) starts here, rows total*sw apart. */
static size_t stitch_plane_at(const zn_stitch_dims *d, int total, int n, int ch)
{
    return ((size_t)n * d->sh * total + ch) * d->sw;
}

static int stitch_channels(const zn_stitch_dims *d)
{
    int total = 0;
    for (int k = 0; k < d->count; k++) total += d->c[k];
    return total;
}

/* The planes of input k, (n, c) flattened, walked forward (into Z) or backward (into dR_k). */
typedef struct {
    const zn_stitch_dims *d;
    int k, off, total; /* input, its first stacked channel, all stacked channels */
    plane_win g;
    const float *r, *dz;
    float *z, *dr;     /* z for forward, dr for backward */
} stitch_job;

static void stitch_range(void *ctx, size_t begin, size_t end)
{
    const stitch_job *j = ctx;
    const zn_stitch_dims *d = j->d;
    size_t plane = (size_t)d->h[j->k] * d->w[j->k], ys = (size_t)j->total * d->sw;
    for (size_t p = begin; p < end; p++) {
        int n = (int)(p / (size_t)d->c[j->k]), c = (int)(p % (size_t)d->c[j->k]);
        size_t at = p * plane, zat = stitch_plane_at(d, j->total, n, j->off + c);
        if (j->z) plane_forward_any(d->down, &j->g, j->r + at, j->z + zat, ys);
        else plane_backward_any(d->down, &j->g, plane_of(j->r, at), j->dz + zat, ys, j->dr + at);
    }
}

static void stitch_input(const zn_stitch_dims *d, int k, const float *r, const float *dz, float *z, float *dr)
{
    stitch_job j = {d, k, 0, stitch_channels(d), resample_win(d->h[k], d->w[k], d->sh, d->sw), r, dz, z, dr};
    for (int i = 0; i < k; i++) j.off += d->c[i];
    zn_cpu_parallel_for((size_t)d->n * d->c[k], 8, stitch_range, &j);
}

void zn_stitch_forward(const zn_stitch_dims *d, const float *const *r, float *z)
{
    for (int k = 0; k < d->count; k++) stitch_input(d, k, r[k], NULL, z, NULL);
}

void zn_stitch_backward_one(const zn_stitch_dims *d, int k, const float *r_k, const float *dz,
                            float *dr_k)
{
    stitch_input(d, k, r_k, dz, NULL, dr_k);
}

void zn_stitch_backward(const zn_stitch_dims *d, const float *const *r, const float *dz,
                        float *const *dr)
{
    for (int k = 0; k < d->count; k++)
        zn_stitch_backward_one(d, k, r ? r[k] : NULL, dz, dr[k]);
}
