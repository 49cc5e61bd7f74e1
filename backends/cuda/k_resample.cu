/* k_resample.cu: resample and stitch, forward and backward, with the window rules of
 * backends/cpu/k_pool.c. Both map planes [H, W] to planes [OH, OW] and differ only in where an
 * output plane lies (stitch writes its planes transposed into Z), so one geometry struct drives
 * both. The forward computes one output per thread; the backward gathers one input gradient per
 * thread from the outputs its element reaches, in the order the CPU adds them. */
#include "backends/cuda/k_util.cuh"

using namespace zn_cuda;

namespace {

/* One axis from in to out: output o reads inputs [o*k/up, o*k/up + k). Reduction by f is
 * {k = f, up = 1}; nearest repetition by f is {k = 1, up = f}; input a reaches outputs
 * [a*up/k, a*up/k + up). */
struct Axis {
    int in, out, k, up;
};

bool make_axis(int in, int out, Axis *a)
{
    if (in <= 0 || out <= 0) return false;
    if (in >= out) {
        *a = Axis{in, out, in / out, 1};
        return in % out == 0;
    }
    *a = Axis{in, out, 1, out / in};
    return out % in == 0;
}

/* Planes p < planes of x [planes, row.in, col.in]; plane p = n*c + ch writes its output (i, j)
 * at base + n*n_stride + ch*c_stride + i*row_stride + j. */
struct Geometry {
    Axis row, col;
    size_t planes;
    int c;
    size_t base, n_stride, c_stride, row_stride;

    template <class I> __device__ size_t out_at(I p, int i, int j) const
    {
        return base + (size_t)(p / (I)c) * n_stride + (size_t)(p % (I)c) * c_stride +
               (size_t)i * row_stride + j;
    }
};

/* Index in the plane of the window's first maximum in row-major order (k_pool.c's
 * window_argmax: a later element wins only when strictly greater). */
__device__ int window_argmax(const float *x, int w, int r0, int r1, int c0, int c1)
{
    int best = -1;
    for (int i = r0; i < r1; i++)
        for (int j = c0; j < c1; j++) {
            int at = i * w + j;
            if (best < 0 || x[at] > x[best]) best = at;
        }
    return best;
}

struct Forward {
    Geometry g;
    zn_window_reduce r;
    const float *x;
    float *y;
    template <class I> __device__ void operator()(I t) const
    {
        I out = (I)g.row.out * g.col.out, p = t / out;
        int q = (int)(t % out), i = q / g.col.out, j = q % g.col.out;
        int r0 = i * g.row.k / g.row.up, c0 = j * g.col.k / g.col.up;
        int r1 = r0 + g.row.k, c1 = c0 + g.col.k, w = g.col.in;
        const float *xp = x + (size_t)p * g.row.in * w;
        float v;
        if (r == ZN_WINDOW_MAX) {
            v = xp[window_argmax(xp, w, r0, r1, c0, c1)];
        } else {
            double s = 0.0;
            for (int a = r0; a < r1; a++)
                for (int b = c0; b < c1; b++) s += xp[a * w + b];
            v = (float)(s / (g.row.k * g.col.k));
        }
        y[g.out_at(p, i, j)] = v;
    }
};

struct Backward {
    Geometry g;
    zn_window_reduce r;
    const float *x, *dy;
    float *dx;
    template <class I> __device__ void operator()(I t) const
    {
        int w = g.col.in;
        I in = (I)g.row.in * w, p = t / in;
        int at = (int)(t % in), a = at / w, b = at % w;
        int i0 = a * g.row.up / g.row.k, j0 = b * g.col.up / g.col.k;
        const float *xp = x ? x + (size_t)p * in : nullptr;
        float acc = 0.0f;
        for (int i = i0; i < i0 + g.row.up; i++)
            for (int j = j0; j < j0 + g.col.up; j++) {
                float d = dy[g.out_at(p, i, j)];
                if (r == ZN_WINDOW_MAX) {
                    int r0 = i * g.row.k / g.row.up, c0 = j * g.col.k / g.col.up;
                    if (window_argmax(xp, w, r0, r0 + g.row.k, c0, c0 + g.col.k) == at) acc += d;
                } else {
                    d /= (float)(g.row.k * g.col.k);
                    acc += d;
                }
            }
        dx[t] = acc;
    }
};

/* Resampling planes x [planes, h, w] to [oh, ow] laid out as described by the strides. */
bool make_geometry(size_t planes, int c, int h, int w, int oh, int ow, Geometry *g)
{
    g->planes = planes;
    g->c = c;
    return c > 0 && make_axis(h, oh, &g->row) && make_axis(w, ow, &g->col);
}

cudaError_t run_forward(const Geometry &g, zn_window_reduce r, const float *x, float *y,
                        cudaStream_t stream)
{
    return launch_each(g.planes * g.row.out * g.col.out, stream, Forward{g, r, x, y});
}

cudaError_t run_backward(const Geometry &g, zn_window_reduce r, const float *x, const float *dy,
                         float *dx, cudaStream_t stream)
{
    return launch_each(g.planes * g.row.in * g.col.in, stream, Backward{g, r, x, dy, dx});
}

/* Resample: plane p's output is plane p of y [planes, oh, ow]. */
bool resample_geometry(int n, int c, int h, int w, int oh, int ow, Geometry *g)
{
    if (!make_geometry((size_t)n * c, 1, h, w, oh, ow, g)) return false;
    g->base = 0;
    g->n_stride = (size_t)oh * ow;
    g->c_stride = 0;
    g->row_stride = (size_t)ow;
    return true;
}

/* Stitch input k: plane (n, ch) lands at Z[n, :, off_k + ch, :] of Z [N, S_h, total, S_w]. */
bool stitch_geometry(const zn_stitch_dims *d, int k, Geometry *g)
{
    if (k < 0 || k >= d->count ||
        !make_geometry((size_t)d->n * d->c[k], d->c[k], d->h[k], d->w[k], d->sh, d->sw, g))
        return false;
    int off = 0, total = 0;
    for (int i = 0; i < d->count; i++) {
        if (i < k) off += d->c[i];
        total += d->c[i];
    }
    g->base = (size_t)off * d->sw;
    g->n_stride = (size_t)d->sh * total * d->sw;
    g->c_stride = (size_t)d->sw;
    g->row_stride = (size_t)total * d->sw;
    return true;
}

} // namespace

cudaError_t zn_cuda_resample_forward(zn_window_reduce r, int n, int c, int h, int w, int oh,
                                     int ow, const float *x, float *y, cudaStream_t stream)
{
    Geometry g;
    if (!resample_geometry(n, c, h, w, oh, ow, &g)) return cudaErrorInvalidValue;
    return run_forward(g, r, x, y, stream);
}

cudaError_t zn_cuda_resample_backward(zn_window_reduce r, int n, int c, int h, int w, int oh,
                                      int ow, const float *x, const float *dy, float *dx,
                                      cudaStream_t stream)
{
    Geometry g;
    if (!resample_geometry(n, c, h, w, oh, ow, &g)) return cudaErrorInvalidValue;
    return run_backward(g, r, x, dy, dx, stream);
}

cudaError_t zn_cuda_stitch_forward(const zn_stitch_dims *d, const float *const *r, float *z,
                                   cudaStream_t stream)
{
    for (int k = 0; k < d->count; k++) {
        Geometry g;
        if (!stitch_geometry(d, k, &g)) return cudaErrorInvalidValue;
        cudaError_t e = run_forward(g, d->down, r[k], z, stream);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

cudaError_t zn_cuda_stitch_backward_one(const zn_stitch_dims *d, int k, const float *r_k,
                                        const float *dz, float *dr_k, cudaStream_t stream)
{
    Geometry g;
    if (!stitch_geometry(d, k, &g)) return cudaErrorInvalidValue;
    return run_backward(g, d->down, r_k, dz, dr_k, stream);
}
