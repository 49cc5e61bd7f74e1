/* test_cpu_backend.c: the CPU backend through its vtable on small hand-built graphs planned by
 * zn_plan_make. Every forward op against a naive reference written here; every backward op by
 * the adjoint check (the dot of its output with a random direction v against central differences
 * of <dy, forward(x + t v)>); then the backend's own duties: registry lookup, set/get bounds,
 * check-numerics and bad-label messages, the optimizer step and the arena high-water mark. */
#include "support.h"

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "graph/autodiff.h"
#include "graph/plan.h"
#include "lang/program.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scaffolding: seeded RNG, per-test allocations, the graph under test ------------------ */


/* The graph, its plan and the backend of the running test. */
static struct {
    zn_graph g;
    zn_plan plan;
    bool planned;
    zn_backend *be;
    bool training;
} T;

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof T);
    zn_graph_init(&T.g, "test");
    T.training = true;
    zt_rng_seed(12345);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (T.be) T.be->ops->destroy(T.be);
    if (T.planned) zn_plan_free(&T.plan);
    zn_graph_free(&T.g);
    zt_scratch_free();
    return 0;
}

/* Node k is written at line k + 1, column 3 of test.znet. */
static zn_span span_of_next(void)
{
    int line = T.g.n_nodes + 1;
    return (zn_span){"test.znet", line, 3, line, 9};
}

static void infer(int id)
{
    char err[256];
    if (!zn_graph_infer(&T.g, id, err, sizeof err))
        fail_msg("node '%s': %s", T.g.nodes[id].name, err);
}

static int node(zn_op op, const int *src, int n_src, const zn_attrs *a, const char *name)
{
    int id = zn_graph_add(&T.g, op, src, n_src, a, name, "", span_of_next());
    infer(id);
    return id;
}

/* A leaf of per-example shape dims[rank]: an INPUT (batched) or a PARAM (flags say which kind). */
static int leaf(zn_op op, unsigned flags, const char *name, int rank, ...)
{
    int id = zn_graph_add(&T.g, op, NULL, 0, NULL, name, "", span_of_next());
    zn_node *n = &T.g.nodes[id];
    n->flags = flags;
    n->shape.rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) n->shape.dim[i] = va_arg(ap, int);
    va_end(ap);
    infer(id);
    return id;
}

#define INPUT(name, ...) leaf(ZN_OP_INPUT, ZN_NODE_INPUT, name, __VA_ARGS__)
#define PARAM(name, ...) leaf(ZN_OP_PARAM, ZN_NODE_PARAM, name, __VA_ARGS__)
#define STATE(name, ...) leaf(ZN_OP_PARAM, ZN_NODE_STATE, name, __VA_ARGS__)

static int label_input(int classes)
{
    int id = zn_graph_add(&T.g, ZN_OP_INPUT, NULL, 0, NULL, "label", "", span_of_next());
    T.g.nodes[id].flags = ZN_NODE_INPUT | ZN_NODE_LABEL;
    T.g.nodes[id].attr.out = classes;
    infer(id);
    return id;
}

/* A backward node with the forward node's attributes; its shape preset to that of `like`. */
static int bwd(zn_op op, const int *src, int n_src, int fwd, int like, const char *name)
{
    int id = zn_graph_add(&T.g, op, src, n_src, &T.g.nodes[fwd].attr, name, "", span_of_next());
    T.g.nodes[id].shape = T.g.nodes[like].shape;
    T.g.nodes[id].flags = ZN_NODE_BACKWARD;
    infer(id);
    return id;
}

static size_t ws_bytes(void *ctx, const zn_graph *g, int id, int batch)
{
    zn_backend *be = ctx;
    return be->ops->workspace_bytes(be, g, id, batch);
}

static zn_backend *create_backend(bool check_numerics)
{
    char err[256];
    zn_backend_opts o = {.check_numerics = check_numerics, .training = T.training, .threads = 2};
    zn_backend *be = zn_cpu_backend.create(&o, err, sizeof err);
    if (!be) fail_msg("create: %s", err);
    return be;
}

/* The planner lets a tensor nobody reads later share memory with the next one; the op tests
 * read every tensor after compute, so they give each arena tensor a place of its own. */
static void unshare_arena(void)
{
    size_t top = 0;
    for (int i = 0; i < T.plan.n_nodes; i++)
        if (T.plan.region[i] == ZN_REGION_ARENA) {
            T.plan.offset[i] = top;
            top += (T.plan.bytes[i] + 63) / 64 * 64;
        }
    T.plan.region_bytes[ZN_REGION_ARENA] = top;
}

/* Creates the backend, plans the graph for batch (with or without workspace; with or without
 * arena reuse), allocates and prepares; returns what prepare returned. */
static bool plan_with(int batch, bool check_numerics, bool workspace, bool reuse)
{
    T.be = create_backend(check_numerics);
    char err[256];
    if (!zn_plan_make(&T.plan, &T.g, batch, workspace ? ws_bytes : NULL, T.be, err, sizeof err))
        fail_msg("plan: %s", err);
    T.planned = true;
    if (!reuse) unshare_arena();
    assert_true(T.be->ops->alloc(T.be, &T.plan));
    return T.be->ops->prepare(T.be, &T.g, &T.plan);
}

static void plan(int batch)
{
    if (!plan_with(batch, false, true, false)) fail_msg("%s", T.be->ops->last_error(T.be));
}

static size_t floats_of(int id)
{
    return T.plan.bytes[id] / sizeof(float);
}

static void set_node(int id, const void *host)
{
    assert_true(T.be->ops->set(T.be, T.plan.region[id], T.plan.offset[id], host, T.plan.bytes[id]));
}

static float *get_node(int id)
{
    float *v = zt_talloc(floats_of(id));
    assert_true(T.be->ops->get(T.be, T.plan.region[id], T.plan.offset[id], v, T.plan.bytes[id]));
    return v;
}

/* Uniform [lo, hi) values, written to the node; returns the host copy. */
static float *fill(int id, float lo, float hi)
{
    float *v = zt_talloc(floats_of(id));
    for (size_t i = 0; i < floats_of(id); i++) v[i] = (float)(lo + (hi - lo) * zt_rng_unit());
    set_node(id, v);
    return v;
}

/* Distinct values 0.01 apart, none within 0.005 of 0, shuffled: pooling windows have one
 * maximum and relu no kink within a 1e-3 nudge. */
static float *fill_distinct(int id)
{
    size_t n = floats_of(id);
    float *v = zt_talloc(n);
    for (size_t i = 0; i < n; i++) v[i] = 0.01f * ((float)i - (float)n / 2 + 0.5f);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(zt_rng_unit() * (double)i);
        float t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    set_node(id, v);
    return v;
}

static void set_labels(int id, const int32_t *labels)
{
    set_node(id, labels);
}

static void compute(int first, int last)
{
    if (!T.be->ops->compute(T.be, &T.g, &T.plan, first, last))
        fail_msg("compute: %s", T.be->ops->last_error(T.be));
}

static void compute_all(void)
{
    compute(0, T.g.n_nodes - 1);
}

static void assert_near(const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs((double)want[i]))))
            fail_msg("element %zu: got %.8g, want %.8g", i, got[i], want[i]);
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("'%s' does not contain '%s'", text, part);
}

/* ---- forward ops against naive references ---------------------------------------------- */

/* x [N, C, H, W], w [O, C/groups, kh, kw], b [O] or NULL -> y [N, O, OH, OW]. */
static void naive_conv(int n, int c, int h, int w, int o, int kh, int kw, int sh, int sw, int ph,
                       int pw, int groups, const float *x, const float *wt, const float *b,
                       float *y)
{
    int oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
    int cg = c / groups, og = o / groups;
    for (int i = 0; i < n; i++)
        for (int f = 0; f < o; f++)
            for (int r = 0; r < oh; r++)
                for (int s = 0; s < ow; s++) {
                    double acc = b ? b[f] : 0.0;
                    for (int k = 0; k < cg; k++)
                        for (int u = 0; u < kh; u++)
                            for (int v = 0; v < kw; v++) {
                                int yy = r * sh - ph + u, xx = s * sw - pw + v;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                                int ch = f / og * cg + k;
                                acc += (double)x[((i * c + ch) * h + yy) * w + xx] *
                                       wt[((f * cg + k) * kh + u) * kw + v];
                            }
                    y[((i * o + f) * oh + r) * ow + s] = (float)acc;
                }
}

static zn_attrs conv_attrs(int kh, int kw, int sh, int sw, int ph, int pw, int groups)
{
    zn_attrs a = zn_attrs_default();
    a.kernel[0] = kh, a.kernel[1] = kw;
    a.stride[0] = sh, a.stride[1] = sw;
    a.pad[0] = ph, a.pad[1] = pw;
    a.groups = groups;
    return a;
}

static void test_conv2d(void **state)
{
    (void)state;
    int x = INPUT("x", 3, 4, 7, 6), w = PARAM("w", 4, 6, 2, 3, 2), b = PARAM("b", 1, 6);
    zn_attrs a = conv_attrs(3, 2, 2, 1, 1, 0, 2);
    int y = node(ZN_OP_CONV2D, (int[]){x, w, b}, 3, &a, "conv");
    int y2 = node(ZN_OP_CONV2D, (int[]){x, w}, 2, &a, "conv_nobias");
    plan(3);
    float *hx = fill(x, -1, 1), *hw = fill(w, -1, 1), *hb = fill(b, -1, 1);
    compute_all();
    assert_int_equal(floats_of(y), 3 * 6 * 4 * 5);
    float *want = zt_talloc(floats_of(y));
    naive_conv(3, 4, 7, 6, 6, 3, 2, 2, 1, 1, 0, 2, hx, hw, hb, want);
    assert_near(get_node(y), want, floats_of(y), 1e-5);
    naive_conv(3, 4, 7, 6, 6, 3, 2, 2, 1, 1, 0, 2, hx, hw, NULL, want);
    assert_near(get_node(y2), want, floats_of(y2), 1e-5);
}

static void test_linear(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 5), w = PARAM("w", 2, 3, 5), b = PARAM("b", 1, 3);
    int y = node(ZN_OP_LINEAR, (int[]){x, w, b}, 3, NULL, "fc");
    plan(4);
    float *hx = fill(x, -1, 1), *hw = fill(w, -1, 1), *hb = fill(b, -1, 1);
    compute_all();
    float want[4 * 3];
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 3; o++) {
            double s = hb[o];
            for (int k = 0; k < 5; k++) s += (double)hx[i * 5 + k] * hw[o * 5 + k];
            want[i * 3 + o] = (float)s;
        }
    assert_near(get_node(y), want, 12, 1e-5);
}

/* Batch norm over x [N, C, HW]: training (batch statistics, running ones updated) and then
 * inference (running statistics) on the same graph. */
static void check_batchnorm(int rank, int hw)
{
    const int n = 4, c = 3;
    int x = rank == 3 ? INPUT("x", 3, c, 2, hw / 2) : INPUT("x", 1, c);
    int gamma = PARAM("gamma", 1, c), beta = PARAM("beta", 1, c);
    int mean = STATE("mean", 1, c), var = STATE("var", 1, c);
    zn_attrs a = zn_attrs_default();
    a.eps = 1e-3f;
    a.momentum = 0.75f;
    int y = node(ZN_OP_BATCHNORM, (int[]){x, gamma, beta, mean, var}, 5, &a, "bn");
    plan(n);
    float *hx = fill(x, -2, 3), *hg = fill(gamma, 0.5f, 1.5f), *hb = fill(beta, -1, 1);
    float *hm = fill(mean, -1, 1), *hv = fill(var, 0.5f, 2);
    compute_all();
    float *got = get_node(y), *want = zt_talloc(floats_of(y)), rm[3], rv[3];
    for (int ch = 0; ch < c; ch++) {
        double s = 0, q = 0, m = n * hw;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) s += hx[(i * c + ch) * hw + k];
        double mu = s / m;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) q += pow(hx[(i * c + ch) * hw + k] - mu, 2);
        double var_b = q / m;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                int at = (i * c + ch) * hw + k;
                want[at] = (float)(hg[ch] * (hx[at] - mu) / sqrt(var_b + 1e-3) + hb[ch]);
            }
        rm[ch] = (float)(0.75 * hm[ch] + 0.25 * mu);
        rv[ch] = (float)(0.75 * hv[ch] + 0.25 * q / (m - 1));
    }
    assert_near(got, want, floats_of(y), 1e-5);
    assert_near(get_node(mean), rm, c, 1e-6);
    assert_near(get_node(var), rv, c, 1e-6);

    T.be->ops->set_training(T.be, false);
    compute_all();
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int k = 0; k < hw; k++) {
                int at = (i * c + ch) * hw + k;
                want[at] = (float)(hg[ch] * (hx[at] - rm[ch]) / sqrt(rv[ch] + 1e-3) + hb[ch]);
            }
    assert_near(get_node(y), want, floats_of(y), 1e-5);
    assert_near(get_node(mean), rm, c, 1e-6); /* inference leaves them */
}

static void test_batchnorm_spatial(void **state)
{
    (void)state;
    check_batchnorm(3, 6);
}

static void test_batchnorm_vector(void **state)
{
    (void)state;
    check_batchnorm(1, 1);
}

static void test_eltwise(void **state)
{
    (void)state;
    int a = INPUT("a", 2, 3, 4), b = INPUT("b", 2, 3, 4);
    int s = node(ZN_OP_ADD, (int[]){a, b}, 2, NULL, "sum");
    zn_attrs half = zn_attrs_default();
    half.scale = -0.5f;
    int h = node(ZN_OP_SCALE, &s, 1, &half, "half");
    int r = node(ZN_OP_RELU, &h, 1, NULL, "relu");
    plan(2);
    float *ha = fill(a, -1, 1), *hb = fill(b, -1, 1);
    compute_all();
    float want[2][24];
    for (int i = 0; i < 24; i++) {
        want[0][i] = -0.5f * (ha[i] + hb[i]);
        want[1][i] = want[0][i] > 0 ? want[0][i] : 0;
    }
    assert_near(get_node(h), want[0], 24, 1e-7);
    assert_near(get_node(r), want[1], 24, 1e-7);
}

/* Pooling of one [H, W] plane, windows clipped to the image (avg over in-image elements). */
static float naive_window(const float *x, int h, int w, int r0, int c0, int kh, int kw, bool max)
{
    double acc = max ? -INFINITY : 0.0;
    int count = 0;
    for (int i = r0; i < r0 + kh; i++)
        for (int j = c0; j < c0 + kw; j++) {
            if (i < 0 || i >= h || j < 0 || j >= w) continue;
            double v = x[i * w + j];
            acc = max ? fmax(acc, v) : acc + v;
            count++;
        }
    return (float)(max ? acc : acc / count);
}

static void test_pools(void **state)
{
    (void)state;
    const int n = 2, c = 3, h = 5, w = 6;
    int x = INPUT("x", 3, c, h, w);
    zn_attrs a = conv_attrs(3, 2, 2, 2, 1, 0, 1);
    int mp = node(ZN_OP_MAXPOOL, &x, 1, &a, "maxpool");
    int ap = node(ZN_OP_AVGPOOL, &x, 1, &a, "avgpool");
    int gm = node(ZN_OP_GLOBAL_MAXPOOL, &x, 1, NULL, "gmp");
    int ga = node(ZN_OP_GLOBAL_AVGPOOL, &x, 1, NULL, "gap");
    plan(n);
    float *hx = fill(x, -1, 1);
    compute_all();
    const int oh = 3, ow = 3;
    float *want_m = zt_talloc(n * c * oh * ow), *want_a = zt_talloc(n * c * oh * ow);
    float *want_gm = zt_talloc(n * c), *want_ga = zt_talloc(n * c);
    for (int p = 0; p < n * c; p++) {
        const float *plane = hx + p * h * w;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) { /* kernel 3x2, stride 2, pad 1 on rows only */
                int at = (p * oh + i) * ow + j;
                want_m[at] = naive_window(plane, h, w, 2 * i - 1, 2 * j, 3, 2, true);
                want_a[at] = naive_window(plane, h, w, 2 * i - 1, 2 * j, 3, 2, false);
            }
        want_gm[p] = naive_window(plane, h, w, 0, 0, h, w, true);
        want_ga[p] = naive_window(plane, h, w, 0, 0, h, w, false);
    }
    assert_near(get_node(mp), want_m, floats_of(mp), 1e-6);
    assert_near(get_node(ap), want_a, floats_of(ap), 1e-6);
    assert_near(get_node(gm), want_gm, n * c, 1e-6);
    assert_near(get_node(ga), want_ga, n * c, 1e-6);
}

static void test_concat(void **state)
{
    (void)state;
    const int n = 2;
    /* the same three [2, 3, 4]-like parts joined along each per-example axis in turn */
    for (int axis = 0; axis < 3; axis++) {
        teardown(NULL);
        setup(NULL);
        int ext[3][3];
        for (int k = 0; k < 3; k++) {
            int base[3] = {2, 3, 4};
            base[axis] = k + 1;
            memcpy(ext[k], base, sizeof base);
        }
        int p0 = INPUT("p0", 3, ext[0][0], ext[0][1], ext[0][2]);
        int p1 = INPUT("p1", 3, ext[1][0], ext[1][1], ext[1][2]);
        int p2 = INPUT("p2", 3, ext[2][0], ext[2][1], ext[2][2]);
        zn_attrs a = zn_attrs_default();
        a.axis = axis;
        int y = node(ZN_OP_CONCAT, (int[]){p0, p1, p2}, 3, &a, "cat");
        plan(n);
        float *parts[3] = {fill(p0, -1, 1), fill(p1, -1, 1), fill(p2, -1, 1)};
        compute_all();
        const zn_shape *ys = &T.g.nodes[y].shape;
        int Y[3] = {(int)ys->dim[0], (int)ys->dim[1], (int)ys->dim[2]};
        float *want = zt_talloc(floats_of(y));
        for (int b = 0; b < n; b++)
            for (int i = 0; i < Y[0]; i++)
                for (int j = 0; j < Y[1]; j++)
                    for (int l = 0; l < Y[2]; l++) {
                        int idx[3] = {i, j, l}, k = 0;
                        while (idx[axis] >= ext[k][axis]) idx[axis] -= ext[k++][axis];
                        const int *e = ext[k];
                        want[((b * Y[0] + i) * Y[1] + j) * Y[2] + l] =
                            parts[k][((b * e[0] + idx[0]) * e[1] + idx[1]) * e[2] + idx[2]];
                    }
        assert_near(get_node(y), want, floats_of(y), 0);
    }
}

/* x [N, C, H, W] resampled to [OH, OW] by the kernels' rule: windows of H/OH x W/OW (max or
 * mean) when shrinking, repetition when enlarging; out[n, c, i, j] at out + ((n C + c) rs + i)
 * cs + j (so a stitch's transposed planes fit too). */
static void naive_resample(const float *plane, int h, int w, int oh, int ow, bool max, float *out,
                           size_t row_stride)
{
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            float v;
            if (h >= oh && w >= ow)
                v = naive_window(plane, h, w, i * (h / oh), j * (w / ow), h / oh, w / ow, max);
            else
                v = plane[(i / (oh / h)) * w + j / (ow / w)];
            out[i * row_stride + j] = v;
        }
}

static void test_resample(void **state)
{
    (void)state;
    const int n = 2, c = 2, h = 4, w = 6;
    int x = INPUT("x", 3, c, h, w);
    zn_attrs mx = zn_attrs_default(), av = zn_attrs_default(), up = zn_attrs_default();
    mx.mode = ZN_RESAMPLE_MAX, mx.size[0] = 2, mx.size[1] = 3;
    av.mode = ZN_RESAMPLE_AVG, av.factor[0] = 2, av.factor[1] = 3;
    up.mode = ZN_RESAMPLE_NEAREST, up.factor[0] = 2, up.factor[1] = 3;
    int ym = node(ZN_OP_RESAMPLE, &x, 1, &mx, "down_max");
    int ya = node(ZN_OP_RESAMPLE, &x, 1, &av, "down_avg");
    int yu = node(ZN_OP_RESAMPLE, &x, 1, &up, "up");
    plan(n);
    float *hx = fill(x, -1, 1);
    compute_all();
    float *want_m = zt_talloc(n * c * 6), *want_a = zt_talloc(n * c * 4), *want_u = zt_talloc(n * c * 144);
    for (int p = 0; p < n * c; p++) {
        naive_resample(hx + p * h * w, h, w, 2, 3, true, want_m + p * 6, 3);
        naive_resample(hx + p * h * w, h, w, 2, 2, false, want_a + p * 4, 2);
        naive_resample(hx + p * h * w, h, w, 8, 18, false, want_u + p * 144, 18);
    }
    assert_near(get_node(ym), want_m, floats_of(ym), 1e-6);
    assert_near(get_node(ya), want_a, floats_of(ya), 1e-6);
    assert_near(get_node(yu), want_u, floats_of(yu), 0);
}

static void test_transpose_flatten(void **state)
{
    (void)state;
    const int n = 2, d[3] = {2, 3, 4};
    int x = INPUT("x", 3, d[0], d[1], d[2]);
    zn_attrs a = zn_attrs_default();
    a.perm[0] = 2, a.perm[1] = 0, a.perm[2] = 1;
    int t = node(ZN_OP_TRANSPOSE, &x, 1, &a, "t");
    int f = node(ZN_OP_FLATTEN, &t, 1, NULL, "flat");
    plan(n);
    float *hx = fill(x, -1, 1);
    compute_all();
    float *want = zt_talloc(n * 24);
    for (int b = 0; b < n; b++)
        for (int i = 0; i < d[2]; i++)
            for (int j = 0; j < d[0]; j++)
                for (int k = 0; k < d[1]; k++)
                    want[((b * d[2] + i) * d[0] + j) * d[1] + k] =
                        hx[((b * d[0] + j) * d[1] + k) * d[2] + i];
    assert_near(get_node(t), want, n * 24, 0);
    assert_near(get_node(f), want, n * 24, 0);
}

/* Stitch of r0 [2, 8, 8], r1 [3, 4, 4], r2 [1, 2, 2] to 4x4: Z[n, h, off_k + c, w], by the mode
 * in *state (TEST_MODE). */
static void test_stitch(void **state)
{
    const zn_resample_mode mode = *(const zn_resample_mode *)*state;
    const int n = 2, C[3] = {2, 3, 1}, S[3] = {8, 4, 2}, total = 6;
    int r[3];
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", k);
        r[k] = INPUT(name, 3, C[k], S[k], S[k]);
    }
    zn_attrs a = zn_attrs_default();
    a.size[0] = a.size[1] = 4;
    a.mode = mode;
    int z = node(ZN_OP_STITCH, r, 3, &a, "z");
    assert_int_equal(T.g.nodes[z].shape.dim[1], total);
    plan(n);
    float *hr[3];
    for (int k = 0; k < 3; k++) hr[k] = fill(r[k], -1, 1);
    compute_all();
    float *want = zt_talloc(n * 4 * total * 4);
    for (int b = 0, off = 0; b < n; b++, off = 0)
        for (int k = 0; k < 3; off += C[k], k++)
            for (int c = 0; c < C[k]; c++)
                naive_resample(hr[k] + (b * C[k] + c) * S[k] * S[k], S[k], S[k], 4, 4,
                               mode == ZN_RESAMPLE_MAX, want + (b * 4 * total + off + c) * 4,
                               (size_t)total * 4);
    assert_near(get_node(z), want, floats_of(z), 1e-6);
}

static void test_xent(void **state)
{
    (void)state;
    const int n = 3, k = 4;
    int x = INPUT("logits", 1, k), y = label_input(k);
    zn_attrs a = zn_attrs_default();
    a.smoothing = 0.1f;
    a.weight = 0.5f;
    a.reduction = ZN_REDUCE_MEAN;
    int loss = node(ZN_OP_XENT, (int[]){x, y}, 2, &a, "h1");
    plan(n);
    float *hx = fill(x, -3, 3);
    int32_t labels[3] = {2, 0, 3};
    set_labels(y, labels);
    compute_all();
    double total = 0;
    for (int i = 0; i < n; i++) {
        double m = -INFINITY, s = 0;
        for (int j = 0; j < k; j++) m = fmax(m, hx[i * k + j]);
        for (int j = 0; j < k; j++) s += exp(hx[i * k + j] - m);
        for (int j = 0; j < k; j++) {
            double t = 0.1 / k + (j == labels[i] ? 0.9 : 0.0);
            total -= t * (hx[i * k + j] - m - log(s));
        }
    }
    float want = (float)(total / n); /* unweighted: the caller applies attr.weight */
    assert_near(get_node(loss), &want, 1, 1e-6);
}

/* ---- backward ops: the adjoint check against their forward -------------------------------- */

/* <dy, y> in double; dy NULL: y is a scalar loss, scaled by `weight`. */
static double objective(int fwd, const float *dy, double weight)
{
    const float *y = get_node(fwd);
    if (!dy) return weight * y[0];
    double s = 0;
    for (size_t i = 0; i < floats_of(fwd); i++) s += (double)dy[i] * y[i];
    return s;
}

/* Node `grad` holds the gradient of <dy, fwd> (or weight * fwd) with respect to leaf `wrt`:
 * its dot with random directions matches central differences of the forward. The graph has
 * been computed (every leaf set); the leaf is restored afterwards. */
static void check_grad(int fwd, const float *dy, double weight, int grad, int wrt)
{
    const size_t n = floats_of(wrt);
    assert_int_equal(floats_of(grad), n);
    const float *g = get_node(grad);
    float *x0 = get_node(wrt), *x = zt_talloc(n), *v = zt_talloc(n);
    const double h = 1e-3;
    for (int trial = 0; trial < 3; trial++) {
        double want = 0, f[2];
        for (size_t i = 0; i < n; i++) {
            v[i] = (float)(2 * zt_rng_unit() - 1);
            want += (double)g[i] * v[i];
        }
        for (int side = 0; side < 2; side++) {
            for (size_t i = 0; i < n; i++) x[i] = x0[i] + (float)((side ? -h : h) * v[i]);
            set_node(wrt, x);
            compute(0, fwd);
            f[side] = objective(fwd, dy, weight);
        }
        double got = (f[0] - f[1]) / (2 * h);
        if (!(fabs(got - want) <= 2e-3 * (fabs(want) + 1)))
            fail_msg("d/d%s by '%s': central difference %.6g, backward %.6g",
                     T.g.nodes[wrt].name, T.g.nodes[grad].name, got, want);
    }
    set_node(wrt, x0);
}

static int dy_input(int fwd)
{
    int id = zn_graph_add(&T.g, ZN_OP_INPUT, NULL, 0, NULL, "dy", "", span_of_next());
    T.g.nodes[id].shape = T.g.nodes[fwd].shape;
    T.g.nodes[id].flags = ZN_NODE_INPUT;
    infer(id);
    return id;
}

/* y = op(x, w, b) (conv2d or linear) on batch `batch` and its three backward ops, the data and
 * weight gradients named by bwd_data and bwd_weight: each checked by the adjoint. */
static void check_weighted_bwd(zn_op op, zn_op bwd_data, zn_op bwd_weight, int x, int w, int b,
                               const zn_attrs *a, int batch)
{
    int y = node(op, (int[]){x, w, b}, 3, a, zn_ops[op].name);
    int dy = dy_input(y);
    const int leaves[3] = {x, w, b};
    int grads[3]; /* added one by one: an initializer list's calls have no fixed order */
    grads[0] = bwd(bwd_data, (int[]){dy, w}, 2, y, x, "x.grad");
    grads[1] = bwd(bwd_weight, (int[]){x, dy}, 2, y, w, "w.grad");
    grads[2] = bwd(ZN_OP_BIAS_BWD, &dy, 1, y, b, "b.grad");
    plan(batch);
    for (int i = 0; i < 3; i++) fill(leaves[i], -1, 1);
    float *hdy = fill(dy, -1, 1);
    compute_all();
    for (int i = 0; i < 3; i++) check_grad(y, hdy, 1, grads[i], leaves[i]);
}

static void test_conv2d_bwd(void **state)
{
    (void)state;
    int x = INPUT("x", 3, 4, 7, 6), w = PARAM("w", 4, 6, 2, 3, 2), b = PARAM("b", 1, 6);
    zn_attrs a = conv_attrs(3, 2, 2, 1, 1, 0, 2);
    check_weighted_bwd(ZN_OP_CONV2D, ZN_OP_CONV2D_BWD_DATA, ZN_OP_CONV2D_BWD_FILTER, x, w, b, &a,
                       3);
}

static void test_batchnorm_bwd(void **state)
{
    (void)state;
    const int c = 3;
    int x = INPUT("x", 3, c, 2, 3), gamma = PARAM("gamma", 1, c), beta = PARAM("beta", 1, c);
    int mean = STATE("mean", 1, c), var = STATE("var", 1, c);
    int y = node(ZN_OP_BATCHNORM, (int[]){x, gamma, beta, mean, var}, 5, NULL, "bn");
    int dy = dy_input(y);
    int dx = bwd(ZN_OP_BATCHNORM_BWD_DATA, (int[]){x, gamma, dy}, 3, y, x, "bn.x.grad");
    int dg = bwd(ZN_OP_BATCHNORM_BWD_GAMMA, (int[]){x, dy}, 2, y, gamma, "bn.gamma.grad");
    int db = bwd(ZN_OP_BIAS_BWD, &dy, 1, y, beta, "bn.beta.grad");
    /* the form autodiff builds when gamma and beta have gradients: their sums read, not redone */
    int dx5 = bwd(ZN_OP_BATCHNORM_BWD_DATA, (int[]){x, gamma, dy, dg, db}, 5, y, x, "bn.x.grad5");
    plan(4);
    fill(x, -2, 2);
    fill(gamma, 0.5f, 1.5f);
    fill(beta, -1, 1);
    fill(mean, 0, 0);
    fill(var, 1, 1);
    float *hdy = fill(dy, -1, 1);
    compute_all();
    check_grad(y, hdy, 1, dx, x);
    check_grad(y, hdy, 1, dx5, x);
    check_grad(y, hdy, 1, dg, gamma);
    check_grad(y, hdy, 1, db, beta);
}

/* The fused batch norm + relu y's backward coefficients ([7 * C]) from x, gamma, beta, dy. */
static int bn_relu_coef(const int src[4], int y, const char *name)
{
    const int c = (int)T.g.nodes[src[0]].shape.dim[0];
    int id = zn_graph_add(&T.g, ZN_OP_BATCHNORM_RELU_BWD_COEF, src, 4, &T.g.nodes[y].attr, name, "",
                          span_of_next());
    T.g.nodes[id].shape = (zn_shape){.rank = 1, .dim = {7 * c}, .dtype = ZN_DTYPE_F32};
    T.g.nodes[id].flags = ZN_NODE_BACKWARD;
    infer(id);
    return id;
}

/* The graph run node by node, then in one compute call, each time from the values host[k] of
 * the nodes at[k] (the outputs out[] first set to 7s: nothing left from the run before): the
 * outputs hold the same bits. */
static void assert_same_bits_in_one_call(const int *at, float *const *host, int n_at, const int *out,
                                         int n_out)
{
    float *want[8];
    assert_true(n_out <= 8);
    for (int together = 0; together < 2; together++) {
        for (int k = 0; k < n_out; k++) fill(out[k], 7, 7);
        for (int k = 0; k < n_at; k++) set_node(at[k], host[k]);
        if (together) {
            compute_all();
        } else {
            for (int id = 0; id < T.g.n_nodes; id++) compute(id, id);
        }
        for (int k = 0; k < n_out; k++) {
            float *got = get_node(out[k]);
            if (!together) want[k] = got;
            else assert_memory_equal(got, want[k], T.plan.bytes[out[k]]);
        }
    }
}

/* Node pairs the CPU backend has run as one so far (cpu_backend.h). */
static long pairs_run(void)
{
    return ((const zn_cpu *)T.be)->pairs;
}

/* The fused batch norm + relu's backward twice: coefficients, a node between, dx (kept apart);
 * then as autodiff lays it out, coefficients then dx, which the backend runs in one pass when
 * both are in one compute call, dx over x or dy (the planner's reuse on: both die there). Run
 * in one call, the nodes give the bits they give run one by one. */
static void test_batchnorm_relu_bwd_pairing(void **state)
{
    (void)state;
    const int c = 5;
    int xin = INPUT("xin", 3, c, 3, 7), gamma = PARAM("gamma", 1, c), beta = PARAM("beta", 1, c);
    int mean = STATE("mean", 1, c), var = STATE("var", 1, c);
    int x = node(ZN_OP_SCALE, &xin, 1, NULL, "x"); /* arena tensors, which dx may overwrite */
    int y = node(ZN_OP_BATCHNORM_RELU, (int[]){x, gamma, beta, mean, var}, 5, NULL, "bnr");
    int dyin = dy_input(y), dy = node(ZN_OP_SCALE, &dyin, 1, NULL, "dy");
    int coef[2], dx[2];
    for (int k = 0; k < 2; k++) {
        /* the first with gamma and beta swapped: other coefficients in what may be the same bytes */
        const int gb[2] = {k ? gamma : beta, k ? beta : gamma};
        coef[k] = bn_relu_coef((int[]){x, gb[0], gb[1], dy}, y, k ? "coef2" : "coef");
        if (!k) bwd(ZN_OP_RELU_BWD, (int[]){y, dy}, 2, y, y, "between");
        dx[k] = bwd(ZN_OP_BATCHNORM_RELU_BWD_DATA, (int[]){x, dy, coef[k]}, 3, y, x,
                    k ? "dx2" : "dx");
    }
    if (!plan_with(4, false, true, true)) fail_msg("%s", T.be->ops->last_error(T.be));
    assert_int_not_equal(T.plan.alias[dx[1]], -1);
    const int at[] = {xin, gamma, beta, mean, var, dyin};
    float *host[6];
    for (int k = 0; k < 6; k++) host[k] = fill(at[k], k == 4 ? 0.5f : -1.5f, 1.5f);
    const long before = pairs_run();
    assert_same_bits_in_one_call(at, host, 6, (int[]){coef[0], dx[0], coef[1], dx[1]}, 4);
    assert_int_equal(pairs_run() - before, 1); /* the second: a node between the first two */
}

/* The epilogues (docs/performance.md, "Session 29"): a conv followed by the batch norm of its
 * output (plain, and with relu; its parameters between, as the language lays them out) runs
 * as one pair, the statistics summed as each image's output is written, and a filter gradient
 * followed by its bias gradient as another; a batch norm of another conv's output does not
 * pair. In one compute call: three pairs, and the bits of the nodes run one by one (running
 * statistics included); in inference, none. */
static void test_conv_epilogue_pairing(void **state)
{
    (void)state;
    const int o = 6;
    int x = INPUT("x", 3, 4, 8, 8), w = PARAM("w", 4, o, 4, 3, 3), b = PARAM("b", 1, o);
    zn_attrs a = conv_attrs(3, 3, 1, 1, 1, 1, 1);
    int at[16] = {x, w, b}, n_at = 3, out[8], n_out = 0, y[3];
    for (int k = 0; k < 3; k++) { /* the third batch norm reads the first conv, not its own */
        y[k] = node(ZN_OP_CONV2D, (int[]){x, w, b}, k == 1 ? 3 : 2, &a, "conv");
        int gamma = PARAM("gamma", 1, o), beta = PARAM("beta", 1, o), mean = STATE("mean", 1, o),
            var = STATE("var", 1, o);
        const zn_op op = k == 1 ? ZN_OP_BATCHNORM_RELU : ZN_OP_BATCHNORM;
        out[n_out++] = node(op, (int[]){y[k < 2 ? k : 0], gamma, beta, mean, var}, 5, NULL, "bn");
        if (k < 2) out[n_out++] = mean, out[n_out++] = var;
        at[n_at++] = gamma, at[n_at++] = beta, at[n_at++] = mean, at[n_at++] = var;
    }
    int dy = dy_input(y[1]);
    at[n_at++] = dy;
    bwd(ZN_OP_CONV2D_BWD_FILTER, (int[]){x, dy}, 2, y[1], w, "w.grad"); /* dw: the adjoint tests */
    out[n_out++] = bwd(ZN_OP_BIAS_BWD, &dy, 1, y[1], b, "b.grad");
    plan(3);
    float *host[16];
    for (int k = 0; k < n_at; k++) host[k] = fill(at[k], 0.5f, 1.5f);
    const long before = pairs_run();
    assert_same_bits_in_one_call(at, host, n_at, out, n_out);
    assert_int_equal(pairs_run() - before, 3);
}

/* The epilogues on each of the conv's paths (GEMM chunks of several images ending part-filled,
 * 1x1 writing y itself, groups, bias, Winograd, an unbatched input): conv + batch norm and
 * filter + bias gradient pair, with the bits of the nodes run one by one. */
static void test_conv_epilogue_paths(void **state)
{
    (void)state;
    static const struct { int batch, c, hw, o, k, stride, groups, bias, batched; } CASES[] = {
        {5, 3, 7, 4, 3, 2, 1, 1, 1},     /* GEMM, several images per chunk */
        {3, 4, 16, 6, 1, 1, 2, 1, 1},    /* 1x1: one image per GEMM, y written by it */
        {3, 8, 8, 8, 3, 1, 4, 0, 1},     /* grouped, direct */
        {2, 64, 8, 64, 3, 1, 1, 0, 1},   /* Winograd */
        {1, 3, 6, 5, 3, 1, 1, 1, 0},     /* unbatched x */
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        teardown(NULL), setup(NULL); /* a graph and backend of its own per case */
        const int c = CASES[i].c, o = CASES[i].o, k = CASES[i].k, hw = CASES[i].hw;
        int x = CASES[i].batched ? INPUT("x", 3, c, hw, hw) : PARAM("x", 3, c, hw, hw);
        int w = PARAM("w", 4, o, c / CASES[i].groups, k, k), b = PARAM("b", 1, o);
        zn_attrs a = conv_attrs(k, k, CASES[i].stride, CASES[i].stride, k / 2, k / 2,
                                CASES[i].groups);
        int y = node(ZN_OP_CONV2D, (int[]){x, w, b}, CASES[i].bias ? 3 : 2, &a, "conv");
        int gamma = PARAM("gamma", 1, o), beta = PARAM("beta", 1, o), mean = STATE("mean", 1, o),
            var = STATE("var", 1, o);
        int bn = node(ZN_OP_BATCHNORM, (int[]){y, gamma, beta, mean, var}, 5, NULL, "bn");
        int dy = dy_input(y);
        int dw = bwd(ZN_OP_CONV2D_BWD_FILTER, (int[]){x, dy}, 2, y, w, "w.grad");
        int db = bwd(ZN_OP_BIAS_BWD, &dy, 1, y, b, "b.grad");
        plan(CASES[i].batch);
        const int at[] = {x, w, b, gamma, beta, mean, var, dy};
        float *host[8];
        for (int j = 0; j < 8; j++) host[j] = fill(at[j], j == 6 ? 0.5f : -1.5f, 1.5f);
        const long before = pairs_run();
        assert_same_bits_in_one_call(at, host, 8, (int[]){y, bn, mean, var, dw, db}, 6);
        if (pairs_run() - before != 2) fail_msg("case %zu: %ld pairs", i, pairs_run() - before);
    }
}

/* x [c, hw, hw], w [o, c, k, k], y = conv(x, w) ("same", no bias), then batch norm `op` of y
 * after its parameters, as the language lays them out; id[]: x, w, gamma, beta, mean, var. */
static void conv_then_norm(int c, int hw, int o, int k, zn_op op, int id[6])
{
    id[0] = INPUT("x", 3, c, hw, hw), id[1] = PARAM("w", 4, o, c, k, k);
    zn_attrs a = conv_attrs(k, k, 1, 1, k / 2, k / 2, 1);
    int y = node(ZN_OP_CONV2D, id, 2, &a, "conv");
    id[2] = PARAM("gamma", 1, o), id[3] = PARAM("beta", 1, o), id[4] = STATE("mean", 1, o);
    id[5] = STATE("var", 1, o);
    node(op, (int[]){y, id[2], id[3], id[4], id[5]}, 5, NULL, "bn");
}

/* x and w uniform in [lo, hi), the batch norm's parameters and state its identity. */
static void fill_conv_then_norm(const int id[6], float lo, float hi)
{
    fill(id[0], lo, hi), fill(id[1], lo, hi), fill(id[2], 1, 1), fill(id[3], 0, 0);
    fill(id[4], 0, 0), fill(id[5], 1, 1);
}

/* In inference a batch norm uses its running statistics: nothing to sum, no pair. */
static void test_conv_epilogue_not_in_inference(void **state)
{
    (void)state;
    T.training = false;
    int id[6];
    conv_then_norm(4, 8, 6, 3, ZN_OP_BATCHNORM_RELU, id);
    plan(2);
    fill_conv_then_norm(id, -1, 1);
    compute_all();
    assert_int_equal(pairs_run(), 0);
}

/* gamma or beta computed in the arena, read by the coefficients alone, so dead when dx is
 * written: a plan may give dx their bytes (here by hand, each tensor apart otherwise). Paired,
 * the coefficients of later channels would read dx's values there; the backend runs the two
 * apart instead, and the bits are those of a run node by node. */
static void test_batchnorm_relu_bwd_pairing_dead_sources(void **state)
{
    (void)state;
    const int c = 5;
    int xin = INPUT("xin", 3, c, 3, 7), gin = PARAM("g", 1, c), bin = PARAM("b", 1, c);
    int mean = STATE("mean", 1, c), var = STATE("var", 1, c);
    int x = node(ZN_OP_SCALE, &xin, 1, NULL, "x");
    const int gb[2] = {node(ZN_OP_SCALE, &gin, 1, NULL, "gamma"),
                       node(ZN_OP_SCALE, &bin, 1, NULL, "beta")};
    int y = node(ZN_OP_BATCHNORM_RELU, (int[]){x, gb[0], gb[1], mean, var}, 5, NULL, "bnr");
    int dyin = dy_input(y), dy = node(ZN_OP_SCALE, &dyin, 1, NULL, "dy");
    int coef = bn_relu_coef((int[]){x, gb[0], gb[1], dy}, y, "coef");
    int dx = bwd(ZN_OP_BATCHNORM_RELU_BWD_DATA, (int[]){x, dy, coef}, 3, y, x, "dx");
    T.be = create_backend(false);
    char err[256];
    if (!zn_plan_make(&T.plan, &T.g, 4, ws_bytes, T.be, err, sizeof err)) fail_msg("plan: %s", err);
    T.planned = true;
    unshare_arena();
    assert_true(T.be->ops->alloc(T.be, &T.plan));
    const int at[] = {xin, gin, bin, mean, var, dyin};
    float *host[6];
    for (int k = 0; k < 6; k++) host[k] = fill(at[k], k == 4 ? 0.5f : -1.5f, 1.5f);
    for (int dead = 0; dead < 2; dead++) { /* dx over gamma, then over beta */
        const size_t top = T.plan.region_bytes[ZN_REGION_ARENA];
        T.plan.offset[gb[dead]] = T.plan.offset[dx] = top; /* the other keeps its own place */
        T.plan.region_bytes[ZN_REGION_ARENA] = top + (T.plan.bytes[dx] + 63) / 64 * 64;
        char why[256];
        if (!zn_plan_verify(&T.plan, &T.g, why, sizeof why)) fail_msg("the plan: %s", why);
        assert_true(T.be->ops->alloc(T.be, &T.plan));
        assert_true(T.be->ops->prepare(T.be, &T.g, &T.plan));
        const long before = pairs_run();
        assert_same_bits_in_one_call(at, host, 6, (int[]){coef, dx}, 2);
        assert_int_equal(pairs_run(), before); /* run apart */
    }
}

static void test_linear_bwd(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 5), w = PARAM("w", 2, 3, 5), b = PARAM("b", 1, 3);
    check_weighted_bwd(ZN_OP_LINEAR, ZN_OP_LINEAR_BWD_DATA, ZN_OP_LINEAR_BWD_WEIGHT, x, w, b, NULL,
                       4);
}

/* relu, the four pools and a nearest/max/avg resample of one distinct-valued x [2, 4, 6]. */
static void test_window_bwd(void **state)
{
    (void)state;
    int x = INPUT("x", 3, 2, 4, 6);
    zn_attrs win = conv_attrs(3, 2, 2, 2, 1, 0, 1);
    zn_attrs mx = zn_attrs_default(), av = zn_attrs_default(), up = zn_attrs_default();
    mx.mode = ZN_RESAMPLE_MAX, mx.factor[0] = 2, mx.factor[1] = 3;
    av.mode = ZN_RESAMPLE_AVG, av.factor[0] = 4, av.factor[1] = 2;
    up.mode = ZN_RESAMPLE_NEAREST, up.factor[0] = 2, up.factor[1] = 3;
    struct {
        zn_op op, bwd;
        const zn_attrs *a;
        bool reads_x; /* the backward's sources: (x, dy) or (dy) */
    } cases[] = {
        {ZN_OP_RELU, ZN_OP_RELU_BWD, NULL, true},
        {ZN_OP_MAXPOOL, ZN_OP_MAXPOOL_BWD, &win, true},
        {ZN_OP_AVGPOOL, ZN_OP_AVGPOOL_BWD, &win, false},
        {ZN_OP_GLOBAL_MAXPOOL, ZN_OP_GLOBAL_MAXPOOL_BWD, NULL, true},
        {ZN_OP_GLOBAL_AVGPOOL, ZN_OP_GLOBAL_AVGPOOL_BWD, NULL, false},
        {ZN_OP_RESAMPLE, ZN_OP_RESAMPLE_BWD, &mx, true},
        {ZN_OP_RESAMPLE, ZN_OP_RESAMPLE_BWD, &av, true},
        {ZN_OP_RESAMPLE, ZN_OP_RESAMPLE_BWD, &up, true},
    };
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    int y[N_CASES], dy[N_CASES], dx[N_CASES];
    for (int i = 0; i < N_CASES; i++) {
        y[i] = node(cases[i].op, &x, 1, cases[i].a, zn_ops[cases[i].op].name);
        dy[i] = dy_input(y[i]);
        /* relu's backward reads the relu's output y, the others read x */
        int first = cases[i].op == ZN_OP_RELU ? y[i] : x;
        dx[i] = cases[i].reads_x ? bwd(cases[i].bwd, (int[]){first, dy[i]}, 2, y[i], x, "dx")
                                 : bwd(cases[i].bwd, &dy[i], 1, y[i], x, "dx");
    }
    plan(2);
    fill_distinct(x);
    float *hdy[N_CASES];
    for (int i = 0; i < N_CASES; i++) hdy[i] = fill(dy[i], -1, 1);
    compute_all();
    for (int i = 0; i < N_CASES; i++) check_grad(y[i], hdy[i], 1, dx[i], x);
}

static void test_concat_flatten_bwd(void **state)
{
    (void)state;
    int p[3] = {INPUT("p0", 3, 2, 1, 4), INPUT("p1", 3, 2, 3, 4), INPUT("p2", 3, 2, 2, 4)};
    zn_attrs a = zn_attrs_default();
    a.axis = 1;
    int y = node(ZN_OP_CONCAT, p, 3, &a, "cat");
    int f = node(ZN_OP_FLATTEN, &y, 1, NULL, "flat");
    int dy = dy_input(y), df = dy_input(f);
    int dp[3];
    for (int k = 0, off = 0; k < 3; off += (int)T.g.nodes[p[k]].shape.dim[1], k++) {
        a.size[0] = off;
        dp[k] = zn_graph_add(&T.g, ZN_OP_SLICE, &dy, 1, &a, "slice", "", span_of_next());
        T.g.nodes[dp[k]].shape = T.g.nodes[p[k]].shape;
        infer(dp[k]);
    }
    int dflat = bwd(ZN_OP_RESHAPE, &df, 1, f, y, "flat.grad");
    plan(2);
    for (int k = 0; k < 3; k++) fill(p[k], -1, 1);
    float *hdy = fill(dy, -1, 1), *hdf = fill(df, -1, 1);
    compute_all();
    for (int k = 0; k < 3; k++) check_grad(y, hdy, 1, dp[k], p[k]);
    assert_near(get_node(dflat), hdf, floats_of(df), 0);
}

static void test_stitch_bwd(void **state)
{
    const zn_resample_mode mode = *(const zn_resample_mode *)*state;
    int r[4] = {INPUT("r0", 3, 2, 8, 8), INPUT("r1", 3, 3, 4, 4), INPUT("r2", 3, 1, 2, 2)};
    zn_attrs a = zn_attrs_default();
    a.size[0] = a.size[1] = 4;
    a.mode = mode;
    int z = node(ZN_OP_STITCH, r, 3, &a, "z");
    r[3] = dy_input(z);
    int dr[3];
    for (int k = 0; k < 3; k++) {
        a.axis = k;
        dr[k] = zn_graph_add(&T.g, ZN_OP_STITCH_BWD, r, 4, &a, "z.grad", "", span_of_next());
        infer(dr[k]);
    }
    plan(2);
    for (int k = 0; k < 3; k++) fill_distinct(r[k]);
    float *hdz = fill(r[3], -1, 1);
    compute_all();
    for (int k = 0; k < 3; k++) check_grad(z, hdz, 1, dr[k], r[k]);
}

static void test_xent_bwd(void **state)
{
    (void)state;
    int x = INPUT("logits", 1, 5), y = label_input(5);
    zn_attrs a = zn_attrs_default();
    a.smoothing = 0.2f;
    a.weight = 0.3f;
    for (int mean = 0; mean < 2; mean++) {
        a.reduction = mean ? ZN_REDUCE_MEAN : ZN_REDUCE_SUM;
        node(ZN_OP_XENT, (int[]){x, y}, 2, &a, "h");
        zn_graph_add(&T.g, ZN_OP_XENT_BWD, (int[]){x, y}, 2, &a, "h.grad", "", span_of_next());
        infer(T.g.n_nodes - 1);
    }
    plan(3);
    fill(x, -2, 2);
    set_labels(y, (int32_t[]){4, 0, 2});
    compute_all();
    check_grad(2, NULL, 0.3, 3, x);
    check_grad(4, NULL, 0.3, 5, x);
}

/* ---- the backend's own duties ------------------------------------------------------------ */

static void test_registry(void **state)
{
    (void)state;
    const zn_backend_ops *const *all = zn_backends();
    assert_ptr_equal(all[0], &zn_cpu_backend);
    char err[256] = "";
    assert_ptr_equal(zn_backend_find("cpu", err, sizeof err), &zn_cpu_backend);
    assert_null(zn_backend_find("cdu", err, sizeof err));
    assert_string_equal(err, "unknown backend 'cdu'; the backends are: cpu, cuda");
    assert_true(zn_cpu_backend.available(err, sizeof err));
}

/* Table-driven: adding an op to the enum without a CPU runner fails here. */
static void test_every_op_supported(void **state)
{
    (void)state;
    T.be = create_backend(false);
    for (int op = 0; op < ZN_OP_COUNT; op++)
        zn_graph_add(&T.g, (zn_op)op, NULL, 0, NULL, zn_ops[op].name, "", span_of_next());
    for (int id = 0; id < T.g.n_nodes; id++)
        if (!T.be->ops->supports(T.be, &T.g, id))
            fail_msg("op %s: %s", zn_ops[id].name, T.be->ops->last_error(T.be));
    T.g.nodes[3].op = ZN_OP_COUNT; /* an op the backend has never heard of */
    assert_false(T.be->ops->supports(T.be, &T.g, 3));
    char want[128];
    snprintf(want, sizeof want,
             "cpu backend: op #%d (batchnorm, test.znet:4:3) is not supported", ZN_OP_COUNT);
    assert_string_equal(T.be->ops->last_error(T.be), want);
}

static void test_set_get_bounds(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 4);
    int w = PARAM("w", 2, 3, 4);
    node(ZN_OP_LINEAR, (int[]){x, w}, 2, NULL, "fc");
    plan(2);
    float v[16] = {1, 2, 3};
    size_t params = T.plan.region_bytes[ZN_REGION_PARAMS];
    assert_true(T.be->ops->set(T.be, ZN_REGION_PARAMS, params - 8, v, 8));
    float back[2];
    assert_true(T.be->ops->get(T.be, ZN_REGION_PARAMS, params - 8, back, 8));
    assert_near(back, v, 2, 0);
    assert_false(T.be->ops->set(T.be, ZN_REGION_PARAMS, params - 8, v, 12));
    char want[160];
    snprintf(want, sizeof want,
             "cpu backend: set of 12 bytes at offset %zu is outside the params region (%zu bytes)",
             params - 8, params);
    assert_string_equal(T.be->ops->last_error(T.be), want);
    assert_false(T.be->ops->get(T.be, ZN_REGION_GRADS, 0, back, 4)); /* no GRAD nodes: empty */
    assert_contains(T.be->ops->last_error(T.be), "get of 4 bytes at offset 0 is outside the grads");
    assert_false(T.be->ops->get(T.be, ZN_REGION_ARENA, SIZE_MAX, back, 4)); /* no wrap-around */
    assert_false(T.be->ops->set(T.be, (zn_region)7, 0, v, 4));
    assert_contains(T.be->ops->last_error(T.be), "no region 7");
}

/* A plan with empty regions (no parameters, so no params, grads or optimizer state: every
 * inference session of `znet eval` and `bench --inference-only` has some) allocates and runs;
 * an empty region is a NULL block, which the allocation must not memset (a UBSan report). */
static void test_alloc_empty_regions(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 4);
    node(ZN_OP_RELU, &x, 1, NULL, "r");
    plan(2);
    assert_int_equal(T.plan.region_bytes[ZN_REGION_PARAMS], 0);
    assert_int_equal(T.plan.region_bytes[ZN_REGION_OPTIM], 0);
    assert_true(T.be->ops->alloc(T.be, &T.plan)); /* again, over the first allocation */
    fill(x, -1, 1);
    compute_all();
}

/* A plan too large for memory is refused with the bytes it asked for; a fitting one then works. */
static void test_alloc_refused(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 4);
    node(ZN_OP_RELU, &x, 1, NULL, "r");
    plan(2);
    zn_plan huge = T.plan;
    huge.region_bytes[ZN_REGION_ARENA] = SIZE_MAX / 2;
    assert_false(T.be->ops->alloc(T.be, &huge));
    char want[128];
    snprintf(want, sizeof want, "cpu backend: cannot allocate %zu bytes", SIZE_MAX / 2);
    assert_contains(T.be->ops->last_error(T.be), want);
    assert_contains(T.be->ops->last_error(T.be), "for the arena: posix_memalign: ");
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, 1)); /* nothing allocated now */
    assert_contains(T.be->ops->last_error(T.be), "call alloc with this plan");
    assert_true(T.be->ops->alloc(T.be, &T.plan));
    fill(x, -1, 1);
    compute_all();
}

static void test_check_numerics(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 4);
    zn_attrs a = zn_attrs_default();
    a.scale = 1e30f;
    int s = node(ZN_OP_SCALE, &x, 1, &a, "b1.h.big");
    node(ZN_OP_RELU, &s, 1, NULL, "b1.h.relu");
    assert_true(plan_with(3, true, true, false));
    float hx[12] = {0};
    set_node(x, hx);
    compute_all();
    hx[6] = NAN;
    set_node(x, hx);
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, T.g.n_nodes - 1));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "node 'b1.h.big' (test.znet:2:3, scale) produced NaN at element 6");
    hx[6] = 0;
    hx[9] = -1e10f;
    set_node(x, hx);
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, T.g.n_nodes - 1));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "node 'b1.h.big' (test.znet:2:3, scale) produced -Inf at element 9");
}

/* --check-numerics checks each node that a runner ran with its own: the batch norm + relu
 * backward's dx, run with the coefficients, overflows at one element of dy near the largest
 * float (ka * dy) while the coefficients stay finite. */
static void test_check_numerics_paired(void **state)
{
    (void)state;
    int xin = INPUT("xin", 3, 1, 2, 2), gamma = PARAM("gamma", 1, 1), beta = PARAM("beta", 1, 1);
    int mean = STATE("mean", 1, 1), var = STATE("var", 1, 1);
    int x = node(ZN_OP_SCALE, &xin, 1, NULL, "x");
    int y = node(ZN_OP_BATCHNORM_RELU, (int[]){x, gamma, beta, mean, var}, 5, NULL, "bnr");
    int dyin = dy_input(y);
    int coef = bn_relu_coef((int[]){x, gamma, beta, dyin}, y, "coef");
    bwd(ZN_OP_BATCHNORM_RELU_BWD_DATA, (int[]){x, dyin, coef}, 3, y, x, "dx");
    if (!plan_with(4, true, true, true)) fail_msg("%s", T.be->ops->last_error(T.be));
    float hx[16], hdy[16];
    for (int i = 0; i < 16; i++) hx[i] = 0.1f * (float)i - 0.75f, hdy[i] = 0.01f;
    hdy[9] = 1e38f; /* x 0.15: above the mean, so through the relu */
    set_node(xin, hx);
    set_node(gamma, (float[]){10});
    set_node(beta, (float[]){0});
    set_node(mean, (float[]){0});
    set_node(var, (float[]){1});
    set_node(dyin, hdy);
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, T.g.n_nodes - 1));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "node 'dx' (test.znet:10:3, batchnorm_relu_bwd_data) produced +Inf at element 9");
}

/* --check-numerics stops at the first node that writes a NaN or infinity, before the next one
 * runs: a conv that overflows stops the compute before its batch norm folds the infinities into
 * the running statistics (the pair would run the batch norm before the conv's check). */
static void test_check_numerics_before_running_stats(void **state)
{
    (void)state;
    int id[6];
    conv_then_norm(1, 4, 2, 1, ZN_OP_BATCHNORM, id);
    if (!plan_with(2, true, true, true)) fail_msg("%s", T.be->ops->last_error(T.be));
    fill_conv_then_norm(id, 1e30f, 1e30f);
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, T.g.n_nodes - 1));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "node 'conv' (test.znet:3:3, conv2d) produced +Inf at element 0");
    assert_memory_equal(get_node(id[4]), ((float[]){0, 0}), sizeof(float[2]));
    assert_memory_equal(get_node(id[5]), ((float[]){1, 1}), sizeof(float[2]));
}

static void test_bad_label(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 10), y = label_input(10);
    node(ZN_OP_XENT, (int[]){x, y}, 2, NULL, "h3");
    plan(6);
    fill(x, -1, 1);
    set_labels(y, (int32_t[]){0, 1, 2, 3, 9, 12});
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, T.g.n_nodes - 1));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "head h3 (test.znet:3:3): label 12 at batch row 5 is not in 0..9");
}

static void test_workspace_and_range_checks(void **state)
{
    (void)state;
    int x = INPUT("x", 3, 2, 6, 6), w = PARAM("w", 4, 3, 2, 3, 3);
    zn_attrs a = conv_attrs(3, 3, 1, 1, 1, 1, 1);
    node(ZN_OP_CONV2D, (int[]){x, w}, 2, &a, "conv");
    assert_false(plan_with(2, false, false, false)); /* planned without asking for scratch */
    assert_contains(T.be->ops->last_error(T.be), "node 'conv' (test.znet:3:3, conv2d) needs ");
    assert_contains(T.be->ops->last_error(T.be), "bytes of workspace, the plan has 0");
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 0, 2));
    assert_contains(T.be->ops->last_error(T.be), "bytes of workspace, the plan has 0");
    assert_false(T.be->ops->compute(T.be, &T.g, &T.plan, 1, 3));
    assert_string_equal(T.be->ops->last_error(T.be),
                        "cpu backend: compute of nodes 1..3 of a graph of 3");
}

/* SGD (Nesterov, weight decay) twice and then, from a zeroed state, Adam once on w, whose gradient node is the
 * LINEAR_BWD_WEIGHT of a linear layer; batch-norm state next to it stays untouched. */
static void test_optimize(void **state)
{
    (void)state;
    int x = INPUT("x", 1, 3), w = PARAM("w", 2, 2, 3), st = STATE("running", 1, 2);
    int y = node(ZN_OP_LINEAR, (int[]){x, w}, 2, NULL, "fc");
    int dy = dy_input(y);
    int g = bwd(ZN_OP_LINEAR_BWD_WEIGHT, (int[]){x, dy}, 2, y, w, "fc.w.grad");
    T.g.nodes[g].flags |= ZN_NODE_GRAD;
    T.g.nodes[g].grad_of = w;
    plan(2);
    float *hw = fill(w, -1, 1), *hs = fill(st, -1, 1);
    fill(x, -1, 1);
    fill(dy, -1, 1);
    compute_all();
    float *grad = get_node(g);
    assert_int_equal(T.plan.region[g], ZN_REGION_GRADS);

    zn_optim_step s = {.kind = ZN_STEP_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = true,
                       .weight_decay = 0.01f};
    double wv[6], v[6] = {0};
    for (int i = 0; i < 6; i++) wv[i] = hw[i];
    for (int step = 0; step < 2; step++) {
        assert_true(T.be->ops->optimize(T.be, &T.g, &T.plan, &s));
        float want[6];
        for (int i = 0; i < 6; i++) { /* the gradient node is not recomputed between steps */
            double gi = grad[i] + 0.01 * wv[i];
            v[i] = 0.9 * v[i] + gi;
            wv[i] -= 0.1 * (gi + 0.9 * v[i]);
            want[i] = (float)wv[i];
        }
        assert_near(get_node(w), want, 6, 1e-6);
    }
    assert_near(get_node(st), hs, 2, 0);

    /* a fresh optimizer: its state region back to zeros (the state is the plan's OPTIM region) */
    size_t optim_bytes = T.plan.region_bytes[ZN_REGION_OPTIM];
    float *zeros = calloc(optim_bytes / sizeof(float) + 1, sizeof(float));
    assert_true(T.be->ops->set(T.be, ZN_REGION_OPTIM, 0, zeros, optim_bytes));
    free(zeros);
    float *w2 = get_node(w), want[6];
    zn_optim_step adam = {.kind = ZN_STEP_ADAM, .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f,
                          .eps = 1e-8f, .t = 1};
    assert_true(T.be->ops->optimize(T.be, &T.g, &T.plan, &adam));
    /* first Adam step: m/(1-b1) = g, v/(1-b2) = g^2, so w moves by lr * sign(g) */
    for (int i = 0; i < 6; i++) want[i] = w2[i] - 0.01f * (grad[i] > 0 ? 1.0f : -1.0f);
    assert_near(get_node(w), want, 6, 1e-5);
}

/* The measured high-water mark is the top of the highest arena tensor the plan placed. */
static size_t plan_peak(void)
{
    size_t peak = 0;
    for (int i = 0; i < T.plan.n_nodes; i++)
        if (T.plan.region[i] == ZN_REGION_ARENA && T.plan.offset[i] + T.plan.bytes[i] > peak)
            peak = T.plan.offset[i] + T.plan.bytes[i];
    return peak;
}

static void test_high_water_small(void **state)
{
    (void)state;
    int x = INPUT("x", 3, 2, 4, 4);
    int r = node(ZN_OP_RELU, &x, 1, NULL, "r");
    node(ZN_OP_GLOBAL_AVGPOOL, &r, 1, NULL, "gap");
    assert_true(plan_with(3, false, true, true));
    assert_int_equal(T.be->ops->arena_high_water(T.be), 0);
    fill(x, -1, 1);
    compute_all();
    assert_int_equal(T.be->ops->arena_high_water(T.be), plan_peak());
}

/* A real model (DavidNet-Zee at width 4: stitch, shared tower, three heads), trained one step:
 * every tensor is written, and none past the plan's peak. */
static void test_high_water_model(void **state)
{
    (void)state;
    zn_graph_free(&T.g);
    const zn_setting sets[] = {{"width", "4"}};
    zn_load_opts o = {.path = zt_src_path("models/davidnet_zee.znet"), .settings = sets,
                      .n_settings = 1};
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_recipe rec;
    bool ok = zn_program_load(&o, &d, &T.g, &rec);
    zn_diag_free(&d);
    assert_true(ok);
    char err[512];
    if (!zn_autodiff(&T.g, err, sizeof err)) fail_msg("autodiff: %s", err);
    if (!plan_with(4, true, true, true)) fail_msg("%s", T.be->ops->last_error(T.be));
    for (int i = 0; i < T.g.n_nodes; i++) {
        const zn_node *n = &T.g.nodes[i];
        if (n->flags & ZN_NODE_LABEL)
            set_labels(i, (int32_t[]){3, 1, 4, 1});
        else if (n->op == ZN_OP_INPUT)
            fill(i, -1, 1);
        else if (n->op == ZN_OP_PARAM)
            fill(i, n->flags & ZN_NODE_STATE ? 0.5f : -0.2f, 0.5f);
    }
    compute_all();
    assert_int_equal(T.be->ops->arena_high_water(T.be), plan_peak());
    assert_true(plan_peak() <= T.plan.region_bytes[ZN_REGION_ARENA]);
    zn_optim_step s = {.kind = ZN_STEP_SGD, .lr = 0.01f, .momentum = 0.9f};
    assert_true(T.be->ops->optimize(T.be, &T.g, &T.plan, &s));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
/* A test run once per stitch mode, its state the mode: TEST_MODE(test_stitch, max) is
 * "test_stitch_max". */
static zn_resample_mode mode_max = ZN_RESAMPLE_MAX, mode_avg = ZN_RESAMPLE_AVG;
#define TEST_MODE(f, mode) {#f "_" #mode, f, setup, teardown, &mode_##mode}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_conv2d),
        TEST(test_linear),
        TEST(test_batchnorm_spatial),
        TEST(test_batchnorm_vector),
        TEST(test_eltwise),
        TEST(test_pools),
        TEST(test_concat),
        TEST(test_resample),
        TEST(test_transpose_flatten),
        TEST_MODE(test_stitch, max),
        TEST_MODE(test_stitch, avg),
        TEST(test_xent),
        TEST(test_conv2d_bwd),
        TEST(test_batchnorm_bwd),
        TEST(test_batchnorm_relu_bwd_pairing),
        TEST(test_conv_epilogue_pairing),
        TEST(test_conv_epilogue_paths),
        TEST(test_conv_epilogue_not_in_inference),
        TEST(test_batchnorm_relu_bwd_pairing_dead_sources),
        TEST(test_linear_bwd),
        TEST(test_window_bwd),
        TEST(test_concat_flatten_bwd),
        TEST_MODE(test_stitch_bwd, max),
        TEST_MODE(test_stitch_bwd, avg),
        TEST(test_xent_bwd),
        TEST(test_registry),
        TEST(test_every_op_supported),
        TEST(test_set_get_bounds),
        TEST(test_alloc_empty_regions),
        TEST(test_alloc_refused),
        TEST(test_check_numerics),
        TEST(test_check_numerics_paired),
        TEST(test_check_numerics_before_running_stats),
        TEST(test_bad_label),
        TEST(test_workspace_and_range_checks),
        TEST(test_optimize),
        TEST(test_high_water_small),
        TEST(test_high_water_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
