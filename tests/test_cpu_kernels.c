/* test_cpu_kernels.c: the CPU kernels of backends/cpu/kernels.h against naive references written
 * here independently (stitch: explicit resample -> transpose -> concat), central-difference
 * checks of every backward, and known values (batch-norm running stats, cross-entropy of
 * uniform logits and with smoothing, optimizer first steps, max-pool ties); the per-channel sums
 * on every kernel path this CPU has. */
#include "support.h"

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/k_ztower.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/threads.h"
#include "backends/node_args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scaffolding: seeded RNG, per-test allocations, comparisons ------------------------- */


static int reset(void **state)
{
    (void)state;
    zt_scratch_free();
    zt_rng_seed(12345);
    return 0;
}

static float *rand_array(size_t n, float lo, float hi)
{
    float *p = zt_talloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * zt_rng_unit());
    return p;
}

/* Distinct values 0.01 apart in random order: no ties, and no arg-max change under a 1e-3 nudge. */
static float *distinct_array(size_t n)
{
    float *p = zt_talloc(n);
    for (size_t i = 0; i < n; i++) p[i] = 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(zt_rng_unit() * (double)i);
        float t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

static void assert_near(const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs((double)want[i]))))
            fail_msg("element %zu: got %.8g, want %.8g", i, got[i], want[i]);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A forward with its inputs behind ctx; writes its ny outputs to y. */
typedef void (*fwd_fn)(void *ctx, float *y);

/* grad must be d<w, f(p)>/dp, as the backward computed it from dy = w; checks every element of p
 * against central differences of step h. */
static void check_grad(fwd_fn f, void *ctx, float *p, size_t np, size_t ny, const float *w,
                       const float *grad, float h)
{
    float *y = zt_talloc(ny);
    for (size_t i = 0; i < np; i++) {
        float save = p[i], up = save + h, down = save - h;
        p[i] = up;
        f(ctx, y);
        double lp = dot(w, y, ny);
        p[i] = down;
        f(ctx, y);
        double lm = dot(w, y, ny);
        p[i] = save;
        double num = (lp - lm) / ((double)up - down);
        if (!(fabs(num - grad[i]) <= 2e-3 + 1e-2 * fabs(num)))
            fail_msg("gradient %zu: numeric %.6g, analytic %.6g", i, num, grad[i]);
    }
}

/* ---- batch norm ------------------------------------------------------------------------- */

typedef struct {
    zn_bn_dims d;
    float *x, *gamma, *beta, *rm, *rv;
} bn_ctx;

static void bn_fwd(void *c, float *y)
{
    bn_ctx *b = c;
    zn_batchnorm_forward_train(&b->d, b->x, b->gamma, b->beta, b->rm, b->rv, y, NULL, NULL);
}

/* Naive training forward: y, batch mean, biased and unbiased variance per channel. */
static void ref_bn(const zn_bn_dims *d, const float *x, const float *gamma, const float *beta,
                   float *y, double *mean, double *var, double *uvar)
{
    for (int c = 0; c < d->c; c++) {
        double s = 0, q = 0, m = (double)d->n * d->hw;
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++) s += x[(n * d->c + c) * d->hw + i];
        mean[c] = s / m;
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++) {
                double t = x[(n * d->c + c) * d->hw + i] - mean[c];
                q += t * t;
            }
        var[c] = q / m;
        uvar[c] = q / (m - 1);
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++) {
                int at = (n * d->c + c) * d->hw + i;
                y[at] = (float)(gamma[c] * (x[at] - mean[c]) / sqrt(var[c] + d->eps) + beta[c]);
            }
    }
}

static void test_batchnorm_forward(void **state)
{
    (void)state;
    const zn_bn_dims shapes[] = {{4, 3, 25, 1e-5f, 0.9f}, {8, 5, 1, 1e-3f, 0.8f}};
    for (int s = 0; s < 2; s++) {
        const zn_bn_dims *d = &shapes[s];
        size_t nx = (size_t)d->n * d->c * d->hw;
        float *x = rand_array(nx, -2, 3), *gamma = rand_array(d->c, 0.5f, 1.5f);
        float *beta = rand_array(d->c, -1, 1), *rm = rand_array(d->c, -1, 1);
        float *rv = rand_array(d->c, 0.5f, 2), *rm0 = zt_talloc(d->c), *rv0 = zt_talloc(d->c);
        memcpy(rm0, rm, d->c * sizeof *rm);
        memcpy(rv0, rv, d->c * sizeof *rv);
        float *y = zt_talloc(nx), *want = zt_talloc(nx), *saved = zt_talloc(2 * d->c);
        double mean[8], var[8], uvar[8];
        ref_bn(d, x, gamma, beta, want, mean, var, uvar);
        zn_batchnorm_forward_train(d, x, gamma, beta, rm, rv, y, saved, NULL);
        assert_near(y, want, nx, 1e-5);
        for (int c = 0; c < d->c; c++) {
            float m = d->momentum;
            float wm = (float)(m * rm0[c] + (1 - m) * mean[c]);
            float wv = (float)(m * rv0[c] + (1 - m) * uvar[c]);
            float wi = (float)(1 / sqrt(var[c] + d->eps)), wmean = (float)mean[c];
            assert_near(&rm[c], &wm, 1, 1e-6);
            assert_near(&rv[c], &wv, 1, 1e-6);
            assert_near(&saved[c], &wmean, 1, 1e-6);
            assert_near(&saved[d->c + c], &wi, 1, 1e-6);
        }
        /* inference with the running stats: the naive forward with them in place of batch stats */
        zn_batchnorm_forward_infer(d, x, gamma, beta, rm, rv, y);
        for (size_t i = 0; i < nx; i++) {
            int c = (int)(i / d->hw % d->c);
            want[i] = gamma[c] * (x[i] - rm[c]) / sqrtf(rv[c] + d->eps) + beta[c];
        }
        assert_near(y, want, nx, 1e-5);
    }
}

/* Channel values 1..4 (batch of 4, [N, C]): mean 2.5, biased var 1.25, unbiased 5/3. */
static void test_batchnorm_running_stats(void **state)
{
    (void)state;
    zn_bn_dims d = {4, 1, 1, 0.0f, 0.9f};
    float x[4] = {1, 2, 3, 4}, y[4], gamma = 1, beta = 0, rm = 0, rv = 1, saved[2];
    zn_batchnorm_forward_train(&d, x, &gamma, &beta, &rm, &rv, y, saved, NULL);
    assert_true(fabsf(rm - 0.25f) < 1e-6f);
    assert_true(fabsf(rv - (0.9f + 0.1f * 5.0f / 3.0f)) < 1e-6f);
    assert_true(fabsf(saved[0] - 2.5f) < 1e-6f);
    assert_true(fabsf(saved[1] - 1 / sqrtf(1.25f)) < 1e-6f);
    assert_true(fabsf(y[0] + 1.5f / sqrtf(1.25f)) < 1e-5f);
}

static void test_batchnorm_backward(void **state)
{
    (void)state;
    const zn_bn_dims shapes[] = {{3, 2, 6, 1e-5f, 0.9f}, {6, 3, 1, 1e-5f, 0.9f}};
    for (int s = 0; s < 2; s++) {
        bn_ctx b = {shapes[s], NULL, NULL, NULL, NULL, NULL};
        int c = b.d.c;
        size_t nx = (size_t)b.d.n * c * b.d.hw;
        b.x = rand_array(nx, -2, 2);
        b.gamma = rand_array(c, 0.5f, 1.5f);
        b.beta = rand_array(c, -1, 1);
        b.rm = zt_talloc(c);
        b.rv = zt_talloc(c);
        float *dy = rand_array(nx, -1, 1), *y = zt_talloc(nx), *saved = zt_talloc(2 * c);
        float *dx = zt_talloc(nx), *dg = zt_talloc(c), *db = zt_talloc(c);
        float *dx2 = zt_talloc(nx), *dg2 = zt_talloc(c), *db2 = zt_talloc(c);
        zn_batchnorm_forward_train(&b.d, b.x, b.gamma, b.beta, b.rm, b.rv, y, saved, NULL);
        zn_batchnorm_backward(&b.d, b.x, b.gamma, dy, saved, dx, dg, db);
        zn_batchnorm_backward(&b.d, b.x, b.gamma, dy, NULL, dx2, dg2, db2);
        assert_near(dx2, dx, nx, 1e-5);
        assert_near(dg2, dg, c, 1e-5);
        assert_near(db2, db, c, 1e-5);
        check_grad(bn_fwd, &b, b.x, nx, nx, dy, dx, 1e-2f);
        check_grad(bn_fwd, &b, b.gamma, c, nx, dy, dg, 1e-2f);
        check_grad(bn_fwd, &b, b.beta, c, nx, dy, db, 1e-2f);
    }
}

/* ---- per-channel sums on each kernel path ------------------------------------------------ */

/* The double sums of channel ch of x [n, c, hw] (and of dy): x, x^2, dy, dy*x, and of |terms|. */
static void ref_sums(const zn_bn_dims *d, const float *x, const float *dy, int ch, double t[4],
                     double mag[4])
{
    for (int k = 0; k < 4; k++) t[k] = mag[k] = 0;
    for (int n = 0; n < d->n; n++)
        for (int i = 0; i < d->hw; i++) {
            size_t at = ((size_t)n * d->c + ch) * d->hw + i;
            double v[4] = {x[at], (double)x[at] * x[at], dy[at], (double)dy[at] * x[at]};
            for (int k = 0; k < 4; k++) t[k] += v[k], mag[k] += fabs(v[k]);
        }
}

static void check_sum(const char *what, int hw, double got, double want, double mag)
{
    if (!(fabs(got - want) <= 1e-6 * mag + 1e-30))
        fail_msg("%s path, hw %d: %s is %.9g, want %.9g", zn_cpu_path_name(zn_cpu_path_active()), hw,
                 what, got, want);
}

/* Every path's sums (bias gradients: zn_channel_sum; batch norm: zn_bn_sums_add) against double
 * sums within float rounding over the terms' magnitude, on rows that fill the widest lanes, leave
 * a tail, or are shorter than a vector; the sum of dy equals zn_channel_sum's of dy bit for bit on
 * one path (the fused z-tower's dbeta relies on it). A path this CPU lacks is skipped by name. */
static void test_channel_sums_paths(void **state)
{
    (void)state;
    const int hws[] = {1, 7, 16, 33, 1024};
    for (int path = 0; path < ZN_CPU_PATH_COUNT; path++) {
        if (!zn_cpu_path_force((zn_cpu_path)path)) {
            print_message("skipping the %s path: this CPU lacks it\n", zn_cpu_path_name((zn_cpu_path)path));
            continue;
        }
        for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++) {
            const zn_bn_dims d = {3, 4, hws[h], 1e-5f, 0.9f};
            size_t nx = (size_t)d.n * d.c * d.hw;
            float *x = rand_array(nx, -2, 3), *dy = rand_array(nx, -1, 1), *sum = zt_talloc(d.c),
                  *dysum = zt_talloc(d.c);
            zn_bn_sums t[4] = {{0, 0, 0, 0}};
            zn_channel_sum(d.n, d.c, d.hw, x, sum);
            zn_channel_sum(d.n, d.c, d.hw, dy, dysum);
            zn_bn_sums_add(&d, x, dy, t);
            for (int ch = 0; ch < d.c; ch++) {
                double want[4], mag[4];
                ref_sums(&d, x, dy, ch, want, mag);
                check_sum("zn_channel_sum", d.hw, sum[ch], want[0], mag[0]);
                check_sum("sum x", d.hw, t[ch].x, want[0], mag[0]);
                check_sum("sum x^2", d.hw, t[ch].xx, want[1], mag[1]);
                check_sum("sum dy", d.hw, t[ch].dy, want[2], mag[2]);
                check_sum("sum dy*x", d.hw, t[ch].dyx, want[3], mag[3]);
                assert_true((float)t[ch].dy == dysum[ch]);
            }
        }
    }
    assert_true(zn_cpu_path_choose(NULL, 0));
}

/* The fused batch norm + relu (k_norm_relu.c) against batch norm then relu: the forward in
 * training and inference, the running statistics, and the backward (dgamma, dbeta and dx, the
 * last written over dy as the plan may place it) against batch norm's backward of the relu's
 * gradient. Shapes with a row shorter than, equal to and longer than the sums' 8 lanes. */
static void test_batchnorm_relu(void **state)
{
    (void)state;
    const zn_bn_dims shapes[] = {{3, 2, 6, 1e-5f, 0.9f}, {6, 3, 1, 1e-5f, 0.9f}, {2, 3, 19, 1e-3f, 0.8f}};
    for (int s = 0; s < 3; s++) {
        const zn_bn_dims *d = &shapes[s];
        const int c = d->c;
        const size_t nx = (size_t)d->n * c * d->hw;
        float *x = rand_array(nx, -2, 2), *gamma = rand_array(c, 0.5f, 1.5f), *beta = rand_array(c, -1, 1);
        float *rm = rand_array(c, -1, 1), *rv = rand_array(c, 0.5f, 2), *rm2 = zt_talloc(c), *rv2 = zt_talloc(c);
        memcpy(rm2, rm, sizeof *rm * c);
        memcpy(rv2, rv, sizeof *rv * c);
        float *y = zt_talloc(nx), *y2 = zt_talloc(nx), *dy = rand_array(nx, -1, 1), *g = zt_talloc(nx);
        for (int training = 0; training < 2; training++) {
            if (training) zn_batchnorm_forward_train(d, x, gamma, beta, rm, rv, y, NULL, NULL);
            else zn_batchnorm_forward_infer(d, x, gamma, beta, rm, rv, y);
            zn_eltwise_forward(ZN_OP_RELU, nx, y, y);
            zn_bn_relu_forward(d, training, x, gamma, beta, rm2, rv2, y2, NULL);
            assert_near(y2, y, nx, 1e-6);
            assert_near(rm2, rm, c, 1e-6);
            assert_near(rv2, rv, c, 1e-6);
        }
        float *dx = zt_talloc(nx), *dg = zt_talloc(c), *db = zt_talloc(c), *coef = zt_talloc(7 * c);
        zn_eltwise_backward(ZN_OP_RELU_BWD, nx, y, dy, g);
        zn_batchnorm_backward(d, x, gamma, g, NULL, dx, dg, db);
        zn_bn_relu_backward(d, x, gamma, beta, dy, coef, NULL);
        float *dx1 = zt_talloc(nx), *coef1 = zt_talloc(7 * c);
        zn_bn_relu_backward(d, x, gamma, beta, dy, coef1, dx1); /* dx in the same pass */
        zn_bn_relu_backward_data(d, x, dy, coef, dy); /* in place */
        assert_near(coef, dg, c, 1e-5);
        assert_near(coef + c, db, c, 1e-5);
        assert_near(dy, dx, nx, 1e-5);
        assert_memory_equal(coef1, coef, sizeof *coef * 7 * c);
        assert_memory_equal(dx1, dy, sizeof *dx1 * nx);
    }
}

/* ---- elementwise ------------------------------------------------------------------------ */

typedef struct {
    size_t n;
    float s, *x;
} elt_ctx;

static void scale_fwd(void *c, float *y)
{
    elt_ctx *e = c;
    zn_scale_forward(e->n, e->s, e->x, y);
}

/* Naive double-precision references of the element-wise ops: f and its derivative f'. A row
 * of graph/op_list.h without them here does not compile. */
static double ref_relu(double x) { return x > 0 ? x : 0; }
static double ref_relu_grad(double x) { return x > 0 ? 1 : 0; }
static double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_sigmoid_grad(double x) { return ref_sigmoid(x) * (1 - ref_sigmoid(x)); }
static double ref_silu(double x) { return x * ref_sigmoid(x); }
static double ref_silu_grad(double x) { return ref_sigmoid(x) + x * ref_sigmoid_grad(x); }
static double ref_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double ref_gelu_grad(double x)
{
    return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * acos(-1.0));
}

typedef struct {
    zn_op op, bwd;
    bool reads_output; /* the backward reads y, not x */
    double (*f)(double), (*grad)(double);
} ew_ref;

#define EW_READS_OUTPUT true
#define EW_READS_INPUT false
#define EW_REF(OP, E, fn, reads) \
    {ZN_OP_##E, ZN_OP_##E##_BWD, EW_READS_##reads, ref_##fn, ref_##fn##_grad},
static const ew_ref ew_refs[] = {ZN_OP_LIST(ZN_OP_SKIP, EW_REF)};
#undef EW_REF

typedef struct {
    zn_op op;
    size_t n;
    const float *x;
} ew_ctx;

static void ew_fwd(void *c, float *y)
{
    ew_ctx *e = c;
    zn_eltwise_forward(e->op, e->n, e->x, y);
}

/* Each element-wise op against its reference, forward and backward, on values from -8 to 8 kept
 * 0.05 from 0 (relu's kink stays out of the finite-difference step) and on values far out
 * (|x| up to 1e4: exact saturation, never NaN); its backward against central differences. */
static void test_eltwise_ops(void **state)
{
    (void)state;
    enum { N = 200, FAR = 8 };
    static const float far[FAR] = {-1e4f, -1e3f, -100, -30, 30, 100, 1e3f, 1e4f};
    for (size_t k = 0; k < sizeof ew_refs / sizeof *ew_refs; k++) {
        const ew_ref *r = &ew_refs[k];
        float *x = rand_array(N + FAR, 0.05f, 8), *y = zt_talloc(N + FAR), *want = zt_talloc(N + FAR);
        for (int i = 0; i < N; i += 2) x[i] = -x[i];
        memcpy(x + N, far, sizeof far);
        for (int i = 0; i < N + FAR; i++) want[i] = (float)r->f(x[i]);
        zn_eltwise_forward(r->op, N + FAR, x, y);
        assert_near(y, want, N + FAR, 1e-6);
        float *dy = rand_array(N + FAR, -1, 1), *dx = zt_talloc(N + FAR);
        zn_eltwise_backward(r->bwd, N + FAR, r->reads_output ? y : x, dy, dx);
        for (int i = 0; i < N + FAR; i++) want[i] = (float)(r->grad(x[i]) * dy[i]);
        assert_near(dx, want, N + FAR, 1e-6);
        ew_ctx e = {r->op, N, x};
        check_grad(ew_fwd, &e, x, N, N, dy, dx, 1e-3f);
    }
    /* relu's backward gives the same from its input as from its output (the same sign test) */
    float *x = rand_array(N, -1, 1), *y = zt_talloc(N), *dy = rand_array(N, -1, 1);
    float *dx = zt_talloc(N), *dx2 = zt_talloc(N);
    zn_eltwise_forward(ZN_OP_RELU, N, x, y);
    zn_eltwise_backward(ZN_OP_RELU_BWD, N, x, dy, dx);
    zn_eltwise_backward(ZN_OP_RELU_BWD, N, y, dy, dx2);
    assert_near(dx2, dx, N, 0);
}

static void test_eltwise(void **state)
{
    (void)state;
    enum { N = 50 };
    float *a = rand_array(N, -1, 1), *b = rand_array(N, -1, 1), *y = zt_talloc(N), *want = zt_talloc(N);
    zn_add_forward(N, a, b, y);
    for (int i = 0; i < N; i++) want[i] = a[i] + b[i];
    assert_near(y, want, N, 0);
    zn_accumulate(N, a, y);
    for (int i = 0; i < N; i++) want[i] += a[i];
    assert_near(y, want, N, 0);
    zn_scale_forward(N, -0.125f, a, y);
    for (int i = 0; i < N; i++) want[i] = -0.125f * a[i];
    assert_near(y, want, N, 0);
    zn_fill(N, 2.5f, y);
    for (int i = 0; i < N; i++) assert_true(y[i] == 2.5f);
    zn_zero(N, y);
    for (int i = 0; i < N; i++) assert_true(y[i] == 0.0f);
    float *dy = rand_array(N, -1, 1), *dx = zt_talloc(N);
    zn_scale_backward(N, -0.125f, dy, dx);
    elt_ctx e = {N, -0.125f, a};
    check_grad(scale_fwd, &e, a, N, N, dy, dx, 1e-2f);
}

/* x [rows, inner] times a per-row gate g (inner 1: two tensors of one shape). */
typedef struct {
    size_t rows, inner;
    float *x, *g;
} mul_ctx;

static void mul_fwd(void *c, float *y)
{
    mul_ctx *m = c;
    zn_mul_forward(m->rows, m->inner, m->x, m->g, y);
}

/* The product against its naive loop over 40,000 elements (past the threads' serial limit, and
 * the same bits on three threads); the x gradient is the product with dy, the gate's is
 * zn_mul_sum, both against differences. */
static void test_mul(void **state)
{
    (void)state;
    static const size_t shapes[][2] = {{2 * 5, 4000}, {40000, 1}, {3, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t rows = shapes[s][0], inner = shapes[s][1], n = rows * inner;
        mul_ctx m = {rows, inner, rand_array(n, -1, 1), rand_array(rows, -1, 1)};
        float *y = zt_talloc(n), *want = zt_talloc(n), *sum = zt_talloc(rows);
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < inner; i++) want[r * inner + i] = m.x[r * inner + i] * m.g[r];
        zn_mul_forward(rows, inner, m.x, m.g, y);
        assert_near(y, want, n, 0);
        float *dy = rand_array(n, -1, 1);
        zn_mul_sum(rows, inner, dy, m.x, sum);
        for (size_t r = 0; r < rows; r++)
            assert_near(&sum[r], &(float){(float)dot(dy + r * inner, m.x + r * inner, inner)}, 1,
                        1e-6);
        if (n > 100) { /* three threads split rows mid-way (the product) and whole (the sums) */
            float *y3 = zt_talloc(n), *sum3 = zt_talloc(rows);
            assert_int_equal(zn_cpu_threads_init(3), 0);
            zn_mul_forward(rows, inner, m.x, m.g, y3);
            zn_mul_sum(rows, inner, dy, m.x, sum3);
            zn_cpu_threads_free();
            assert_memory_equal(y3, y, n * sizeof *y);
            assert_memory_equal(sum3, sum, rows * sizeof *sum);
            continue; /* differences: the small shape */
        }
        float *dx = zt_talloc(n);
        zn_mul_forward(rows, inner, dy, m.g, dx);
        check_grad(mul_fwd, &m, m.x, n, n, dy, dx, 1e-2f);
        check_grad(mul_fwd, &m, m.g, rows, n, dy, sum, 1e-2f);
    }
}

static void test_find_nonfinite(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t at = 99;
    assert_false(zn_find_nonfinite(x, 6, &at));
    x[4] = INFINITY;
    assert_true(zn_find_nonfinite(x, 6, &at));
    assert_int_equal(at, 4);
    x[2] = NAN;
    assert_true(zn_find_nonfinite(x, 6, &at));
    assert_int_equal(at, 2);
    x[0] = -INFINITY;
    assert_true(zn_find_nonfinite(x, 6, NULL));
}

/* ---- pooling ---------------------------------------------------------------------------- */

typedef struct {
    zn_window_reduce r;
    zn_pool_dims d;
    float *x;
} pool_ctx;

static void pool_fwd(void *c, float *y)
{
    pool_ctx *p = c;
    zn_pool_forward(p->r, &p->d, p->x, y);
}

/* Naive pooling: visit every kernel offset, skip the padding. */
static void ref_pool(zn_window_reduce r, const zn_pool_dims *d, const float *x, float *y)
{
    int oh = (d->h + 2 * d->pad[0] - d->kernel[0]) / d->stride[0] + 1;
    int ow = (d->w + 2 * d->pad[1] - d->kernel[1]) / d->stride[1] + 1;
    for (int p = 0; p < d->n * d->c; p++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double best = 0, sum = 0;
                int cnt = 0;
                for (int a = 0; a < d->kernel[0]; a++)
                    for (int b = 0; b < d->kernel[1]; b++) {
                        int ih = i * d->stride[0] - d->pad[0] + a;
                        int iw = j * d->stride[1] - d->pad[1] + b;
                        if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                        double v = x[(p * d->h + ih) * d->w + iw];
                        if (cnt == 0 || v > best) best = v;
                        sum += v;
                        cnt++;
                    }
                y[(p * oh + i) * ow + j] = (float)(r == ZN_WINDOW_MAX ? best : sum / cnt);
            }
}

static void test_pool(void **state)
{
    (void)state;
    const zn_pool_dims dims[] = {
        {2, 3, 6, 6, {2, 2}, {2, 2}, {0, 0}}, {1, 2, 7, 5, {3, 3}, {2, 2}, {1, 1}},
        {2, 2, 5, 6, {3, 3}, {1, 1}, {1, 1}}, {1, 2, 7, 7, {2, 2}, {3, 3}, {0, 0}},
        {2, 1, 6, 7, {3, 2}, {2, 1}, {1, 0}},
    };
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++)
        for (int r = ZN_WINDOW_MAX; r <= ZN_WINDOW_AVG; r++) {
            pool_ctx p = {(zn_window_reduce)r, dims[t], NULL};
            const zn_pool_dims *d = &p.d;
            int oh = zn_pool_out(d->h, d->kernel[0], d->stride[0], d->pad[0]);
            int ow = zn_pool_out(d->w, d->kernel[1], d->stride[1], d->pad[1]);
            size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * oh * ow;
            p.x = distinct_array(nx);
            float *y = zt_talloc(ny), *want = zt_talloc(ny), *dy = rand_array(ny, -1, 1);
            float *dx = zt_talloc(nx);
            zn_pool_forward(p.r, d, p.x, y);
            ref_pool(p.r, d, p.x, want);
            assert_near(y, want, ny, 1e-6);
            zn_pool_backward(p.r, d, p.x, dy, dx);
            check_grad(pool_fwd, &p, p.x, nx, ny, dy, dx, 1e-3f);
        }
}

static void test_maxpool_ties(void **state)
{
    (void)state;
    zn_pool_dims d = {1, 1, 2, 4, {2, 2}, {2, 2}, {0, 0}};
    float x[8] = {5, 5, 1, 3, 5, 5, 3, 2}, dy[2] = {1, 10}, dx[8], y[2];
    zn_pool_forward(ZN_WINDOW_MAX, &d, x, y);
    zn_pool_backward(ZN_WINDOW_MAX, &d, x, dy, dx);
    float want_y[2] = {5, 3}, want_dx[8] = {1, 0, 0, 10, 0, 0, 0, 0};
    assert_near(y, want_y, 2, 0);
    assert_near(dx, want_dx, 8, 0);
}

/* 2x2 max pooling on rows wide enough for the four-window vector loop and its tail, with many
 * ties (three levels, signed zeros among them): every window's first maximum in row-major
 * order gets the gradient and gives y its bits. */
static void test_maxpool_2x2_ties(void **state)
{
    (void)state;
    zn_pool_dims d = {2, 3, 4, 14, {2, 2}, {2, 2}, {0, 0}};
    enum { NX = 2 * 3 * 4 * 14, NY = NX / 4 };
    const float levels[5] = {1.0f, -0.0f, 0.0f, 1.0f, -2.0f};
    float x[NX], y[NY], dy[NY], dx[NX], want_dx[NX] = {0};
    for (int i = 0; i < NX; i++) x[i] = levels[(i * 7 + i / 5) % 5];
    for (int i = 0; i < NY; i++) dy[i] = (float)(i + 1);
    zn_pool_forward(ZN_WINDOW_MAX, &d, x, y);
    zn_pool_backward(ZN_WINDOW_MAX, &d, x, dy, dx);
    for (int p = 0; p < 2 * 3; p++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 7; j++) {
                const int o = (p * 2 + i) * 7 + j, at[4] = {0, 1, 14, 15};
                const float *win = x + p * 56 + i * 28 + 2 * j;
                int best = 0;
                for (int k = 1; k < 4; k++)
                    if (win[at[k]] > win[at[best]]) best = k;
                assert_memory_equal(&y[o], &win[at[best]], sizeof(float));
                want_dx[p * 56 + i * 28 + 2 * j + at[best]] = dy[o];
            }
    assert_memory_equal(dx, want_dx, sizeof dx);
}

/* Global max pooling takes each plane's first maximum as a left-to-right scan keeping the
 * strictly greater finds it: ties, signed zeros, a NaN first (taken) and later (skipped), the
 * maximum in one lane of the vector loop or in its tail; planes of 3, 13 and 37 (each case's
 * first w values); y's bits and dx's one entry checked. */
static void test_global_maxpool_first(void **state)
{
    (void)state;
    enum { W = 37 };
    const struct {
        int at[3];
        float v[3];
    } cases[] = {
        {{5, 21, 30}, {3, 3, 3}},            /* ties: the first 3 */
        {{3, 9, 22}, {-0.0f, 0.0f, -0.0f}},  /* the first zero: -0 */
        {{0, 17, 17}, {NAN, 5, 5}},          /* NaN first: taken */
        {{2, 23, 31}, {NAN, 9, 9}},          /* a later NaN skipped: the first 9 */
        {{14, 14, 14}, {8, 8, 8}},           /* the maximum in one lane */
        {{35, 35, 35}, {0.5f, 0.5f, 0.5f}},  /* the maximum in the tail */
    };
    const int widths[3] = {3, 13, W};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++)
        for (int k = 0; k < 3; k++) {
            const int w = widths[k];
            float x[W], y, dy = 2.5f, dx[W];
            for (int i = 0; i < W; i++) x[i] = -1.0f - (float)(i % 7);
            for (int c = 0; c < 3; c++) x[cases[t].at[c]] = cases[t].v[c];
            zn_global_pool_forward(ZN_WINDOW_MAX, 1, 1, 1, w, x, &y);
            zn_global_pool_backward(ZN_WINDOW_MAX, 1, 1, 1, w, x, &dy, dx);
            int best = 0;
            for (int i = 1; i < w; i++)
                if (x[i] > x[best]) best = i;
            assert_memory_equal(&y, &x[best], sizeof y);
            for (int i = 0; i < w; i++) assert_true(dx[i] == (i == best ? 2.5f : 0.0f));
        }
}

typedef struct {
    zn_window_reduce r;
    int n, c, h, w;
    float *x;
} gpool_ctx;

static void gpool_fwd(void *c, float *y)
{
    gpool_ctx *g = c;
    zn_global_pool_forward(g->r, g->n, g->c, g->h, g->w, g->x, y);
}

static void test_global_pool(void **state)
{
    (void)state;
    for (int r = ZN_WINDOW_MAX; r <= ZN_WINDOW_AVG; r++) {
        gpool_ctx g = {(zn_window_reduce)r, 2, 3, 4, 5, NULL};
        size_t plane = 20, nx = 6 * plane;
        g.x = distinct_array(nx);
        float y[6], want[6], *dy = rand_array(6, -1, 1), *dx = zt_talloc(nx);
        for (int p = 0; p < 6; p++) {
            double best = g.x[p * plane], sum = 0;
            for (size_t i = 0; i < plane; i++) {
                sum += g.x[p * plane + i];
                if (g.x[p * plane + i] > best) best = g.x[p * plane + i];
            }
            want[p] = (float)(r == ZN_WINDOW_MAX ? best : sum / plane);
        }
        zn_global_pool_forward(g.r, 2, 3, 4, 5, g.x, y);
        assert_near(y, want, 6, 1e-6);
        zn_global_pool_backward(g.r, 2, 3, 4, 5, g.x, dy, dx);
        check_grad(gpool_fwd, &g, g.x, nx, 6, dy, dx, 1e-3f);
    }
}

/* ---- resample --------------------------------------------------------------------------- */

/* Naive resample of one plane by the definition: reduce an in/out window or repeat. */
static void ref_resample_plane(zn_window_reduce r, int h, int w, int oh, int ow, const float *x,
                               float *y, size_t y_row_stride)
{
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            int r0 = h >= oh ? i * (h / oh) : i / (oh / h), nr = h >= oh ? h / oh : 1;
            int c0 = w >= ow ? j * (w / ow) : j / (ow / w), nc = w >= ow ? w / ow : 1;
            double best = x[r0 * w + c0], sum = 0;
            for (int a = r0; a < r0 + nr; a++)
                for (int b = c0; b < c0 + nc; b++) {
                    sum += x[a * w + b];
                    if (x[a * w + b] > best) best = x[a * w + b];
                }
            y[i * y_row_stride + j] = (float)(r == ZN_WINDOW_MAX ? best : sum / (nr * nc));
        }
}

typedef struct {
    zn_window_reduce r;
    int n, c, h, w, oh, ow;
    float *x;
} rs_ctx;

static void rs_fwd(void *c, float *y)
{
    rs_ctx *s = c;
    zn_resample_forward(s->r, s->n, s->c, s->h, s->w, s->oh, s->ow, s->x, y);
}

static void test_resample(void **state)
{
    (void)state;
    const int sizes[][4] = {{8, 8, 4, 4}, {8, 8, 2, 2}, {3, 2, 6, 8}, {4, 6, 8, 3}, {5, 5, 5, 5}};
    for (int t = 0; t < 5; t++)
        for (int r = ZN_WINDOW_MAX; r <= ZN_WINDOW_AVG; r++) {
            rs_ctx s = {(zn_window_reduce)r, 2, 3, sizes[t][0], sizes[t][1], sizes[t][2],
                        sizes[t][3], NULL};
            size_t in = (size_t)s.h * s.w, out = (size_t)s.oh * s.ow, nx = 6 * in, ny = 6 * out;
            s.x = distinct_array(nx);
            float *y = zt_talloc(ny), *want = zt_talloc(ny), *dy = rand_array(ny, -1, 1);
            float *dx = zt_talloc(nx);
            for (int p = 0; p < 6; p++)
                ref_resample_plane(s.r, s.h, s.w, s.oh, s.ow, s.x + p * in, want + p * out, s.ow);
            zn_resample_forward(s.r, 2, 3, s.h, s.w, s.oh, s.ow, s.x, y);
            assert_near(y, want, ny, 1e-6);
            zn_resample_backward(s.r, 2, 3, s.h, s.w, s.oh, s.ow, s.x, dy, dx);
            check_grad(rs_fwd, &s, s.x, nx, ny, dy, dx, 1e-3f);
        }
}

/* ---- stitch ----------------------------------------------------------------------------- */

typedef struct {
    zn_stitch_dims d;
    float *r[6];
} st_ctx;

static void st_fwd(void *c, float *z)
{
    st_ctx *s = c;
    zn_stitch_forward(&s->d, (const float *const *)s->r, z);
}

/* Reference by explicit steps: resample each input to [N, C_k, S_h, S_w], transpose it to
 * [N, S_h, C_k, S_w], concatenate along per-example axis 1. */
static void ref_stitch(const zn_stitch_dims *d, float *const *r, float *z)
{
    int total = 0;
    for (int k = 0; k < d->count; k++) total += d->c[k];
    for (int k = 0, off = 0; k < d->count; off += d->c[k], k++) {
        int C = d->c[k], S = d->sh * d->sw;
        float *rs = zt_talloc((size_t)d->n * C * S), *tr = zt_talloc((size_t)d->n * C * S);
        for (int p = 0; p < d->n * C; p++)
            ref_resample_plane(d->down, d->h[k], d->w[k], d->sh, d->sw,
                               r[k] + (size_t)p * d->h[k] * d->w[k], rs + (size_t)p * S, d->sw);
        for (int n = 0; n < d->n; n++)
            for (int c = 0; c < C; c++)
                for (int h = 0; h < d->sh; h++)
                    for (int w = 0; w < d->sw; w++)
                        tr[((n * d->sh + h) * C + c) * d->sw + w] =
                            rs[((n * C + c) * d->sh + h) * d->sw + w];
        for (int n = 0; n < d->n; n++)
            for (int h = 0; h < d->sh; h++)
                for (int c = 0; c < C; c++)
                    for (int w = 0; w < d->sw; w++)
                        z[((n * d->sh + h) * total + off + c) * d->sw + w] =
                            tr[((n * d->sh + h) * C + c) * d->sw + w];
    }
}

typedef struct {
    int count, sh, sw;
    int c[6], h[6], w[6];
} stitch_case;

static void test_stitch(void **state)
{
    (void)state;
    const stitch_case cases[] = {
        {2, 4, 4, {2, 3}, {4, 4}, {4, 4}},                                /* no resampling */
        {5, 4, 4, {2, 3, 1, 2, 1}, {16, 8, 4, 2, 1}, {16, 8, 4, 2, 1}},   /* /4 /2 =1 x2 x4 */
        {1, 4, 4, {3}, {8}, {8}},                                         /* one input */
        {3, 8, 8, {2, 3, 4}, {16, 8, 4}, {16, 8, 4}},                     /* the spec's blocks */
        {2, 4, 2, {2, 1}, {8, 2}, {4, 1}},                                /* non-square, mixed */
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++)
        for (int r = ZN_WINDOW_MAX; r <= ZN_WINDOW_AVG; r++) {
            const stitch_case *sc = &cases[t];
            st_ctx s = {{2, sc->count, sc->c, sc->h, sc->w, sc->sh, sc->sw, (zn_window_reduce)r},
                        {NULL}};
            float *dr[6];
            size_t nr[6], total = 0;
            for (int k = 0; k < sc->count; k++) {
                nr[k] = (size_t)2 * sc->c[k] * sc->h[k] * sc->w[k];
                s.r[k] = distinct_array(nr[k]);
                dr[k] = zt_talloc(nr[k]);
                total += (size_t)sc->c[k];
            }
            size_t nz = 2 * total * sc->sh * sc->sw;
            float *z = zt_talloc(nz), *want = zt_talloc(nz), *dz = rand_array(nz, -1, 1);
            zn_fill(nz, NAN, z); /* every element must be written */
            zn_stitch_forward(&s.d, (const float *const *)s.r, z);
            ref_stitch(&s.d, s.r, want);
            assert_near(z, want, nz, 1e-6);
            zn_stitch_backward(&s.d, (const float *const *)s.r, dz, dr);
            for (int k = 0; k < sc->count; k++)
                check_grad(st_fwd, &s, s.r[k], nr[k], nz, dz, dr[k], 1e-3f);
        }
}

/* ---- concat and transpose --------------------------------------------------------------- */

/* Decodes flat index i of a batched tensor with per-example dims[rank] into idx[0..rank]. */
static void unflatten(size_t i, int rank, const int *dims, int *idx)
{
    for (int a = rank - 1; a >= 0; a--) {
        idx[a + 1] = (int)(i % dims[a]);
        i /= dims[a];
    }
    idx[0] = (int)i;
}

static size_t flatten(int rank, const int *dims, const int *idx)
{
    size_t at = (size_t)idx[0];
    for (int a = 0; a < rank; a++) at = at * dims[a] + idx[a + 1];
    return at;
}

typedef struct {
    size_t outer, inner;
    int count, len[3];
    float *x[3];
} cat_ctx;

static void cat_fwd(void *c, float *y)
{
    cat_ctx *k = c;
    zn_concat_forward(k->outer, k->inner, k->count, k->len, (const float *const *)k->x, y);
}

static void test_concat(void **state)
{
    (void)state;
    const int base[3] = {3, 2, 4}, lens[3] = {2, 1, 3}, N = 2;
    for (int rank = 1; rank <= 3; rank++)
        for (int axis = 0; axis < rank; axis++)
            for (int count = 1; count <= 3; count++) {
                cat_ctx k = {0, 0, count, {0}, {NULL}};
                int odims[3], idims[3][3], idx[4];
                memcpy(odims, base, sizeof odims);
                odims[axis] = 0;
                size_t nx[3], ny = N;
                for (int j = 0; j < count; j++) {
                    k.len[j] = lens[j];
                    memcpy(idims[j], base, sizeof base);
                    idims[j][axis] = lens[j];
                    odims[axis] += lens[j];
                    nx[j] = N;
                    for (int a = 0; a < rank; a++) nx[j] *= (size_t)idims[j][a];
                    k.x[j] = rand_array(nx[j], -1, 1);
                }
                for (int a = 0; a < rank; a++) ny *= (size_t)odims[a];
                float *y = zt_talloc(ny), *want = zt_talloc(ny), *dy = rand_array(ny, -1, 1);
                for (size_t i = 0; i < ny; i++) {
                    unflatten(i, rank, odims, idx);
                    int j = 0;
                    while (idx[axis + 1] >= k.len[j]) idx[axis + 1] -= k.len[j++];
                    want[i] = k.x[j][flatten(rank, idims[j], idx)];
                }
                zn_concat_split(N, rank, idims[0], axis, &k.outer, &k.inner);
                zn_concat_forward(k.outer, k.inner, count, k.len, (const float *const *)k.x, y);
                assert_near(y, want, ny, 0);
                float *dx[3];
                for (int j = 0; j < count; j++) dx[j] = zt_talloc(nx[j]);
                zn_concat_backward(k.outer, k.inner, count, k.len, dy, dx);
                for (int j = 0; j < count; j++)
                    check_grad(cat_fwd, &k, k.x[j], nx[j], ny, dy, dx[j], 1e-2f);
            }
}

typedef struct {
    int n, rank, dims[4], perm[4];
    float *x;
} tr_ctx;

static void tr_fwd(void *c, float *y)
{
    tr_ctx *t = c;
    zn_transpose_forward(t->n, t->rank, t->dims, t->perm, t->x, y);
}

/* Advances perm[0..r) to the next permutation in lexicographic order; false after the last. */
static bool next_perm(int *p, int r)
{
    int i = r - 2;
    while (i >= 0 && p[i] >= p[i + 1]) i--;
    if (i < 0) return false;
    int j = r - 1;
    while (p[j] <= p[i]) j--;
    int t = p[i];
    p[i] = p[j];
    p[j] = t;
    for (int a = i + 1, b = r - 1; a < b; a++, b--) {
        t = p[a];
        p[a] = p[b];
        p[b] = t;
    }
    return true;
}

static void test_transpose(void **state)
{
    (void)state;
    const int base[4] = {2, 3, 4, 5};
    for (int rank = 1; rank <= 4; rank++) {
        tr_ctx t = {2, rank, {0}, {0, 1, 2, 3}, NULL};
        memcpy(t.dims, base + 4 - rank, rank * sizeof(int));
        size_t nx = 2;
        for (int a = 0; a < rank; a++) nx *= (size_t)t.dims[a];
        t.x = rand_array(nx, -1, 1);
        float *y = zt_talloc(nx), *want = zt_talloc(nx), *dy = rand_array(nx, -1, 1), *dx = zt_talloc(nx);
        do {
            int ydims[4], yi[5], xi[5];
            for (int a = 0; a < rank; a++) ydims[a] = t.dims[t.perm[a]];
            for (size_t i = 0; i < nx; i++) {
                unflatten(i, rank, ydims, yi);
                xi[0] = yi[0];
                for (int a = 0; a < rank; a++) xi[t.perm[a] + 1] = yi[a + 1];
                want[i] = t.x[flatten(rank, t.dims, xi)];
            }
            zn_transpose_forward(2, rank, t.dims, t.perm, t.x, y);
            assert_near(y, want, nx, 0);
            zn_transpose_backward(2, rank, t.dims, t.perm, dy, dx);
            check_grad(tr_fwd, &t, t.x, nx, nx, dy, dx, 1e-2f);
        } while (next_perm(t.perm, rank));
    }
}

/* ---- cross-entropy ---------------------------------------------------------------------- */

typedef struct {
    zn_xent_dims d;
    float *logits;
    const int32_t *labels;
} xent_ctx;

static void xent_fwd(void *c, float *y)
{
    xent_ctx *x = c;
    assert_int_equal(zn_xent_forward(&x->d, x->logits, x->labels, y, NULL), ZN_KSTATUS_OK);
}

/* Naive: softmax probabilities, then -sum t log p. */
static double ref_xent(const zn_xent_dims *d, const float *z, const int32_t *labels)
{
    double total = 0;
    for (int i = 0; i < d->n; i++) {
        double s = 0;
        for (int j = 0; j < d->k; j++) s += exp(z[i * d->k + j]);
        for (int j = 0; j < d->k; j++) {
            double t = d->smoothing / d->k + (j == labels[i] ? 1 - d->smoothing : 0);
            total -= t * log(exp(z[i * d->k + j]) / s);
        }
    }
    return d->mean ? total / d->n : total;
}

static void test_xent(void **state)
{
    (void)state;
    enum { N = 5, K = 7 };
    int32_t labels[N] = {0, 6, 3, 3, 1};
    for (int mean = 0; mean <= 1; mean++)
        for (int sm = 0; sm <= 1; sm++) {
            xent_ctx x = {{N, K, sm ? 0.2f : 0.0f, mean}, rand_array(N * K, -3, 3), labels};
            float loss, weight = 0.3f, *g = zt_talloc(N * K);
            assert_int_equal(zn_xent_forward(&x.d, x.logits, labels, &loss, NULL), ZN_KSTATUS_OK);
            float want = (float)ref_xent(&x.d, x.logits, labels);
            assert_near(&loss, &want, 1, 1e-6);
            assert_int_equal(zn_xent_backward(&x.d, x.logits, labels, weight, g, NULL),
                             ZN_KSTATUS_OK);
            check_grad(xent_fwd, &x, x.logits, N * K, 1, &weight, g, 1e-2f);
        }
    /* large logits stay finite (shifted by the row maximum) */
    float big[3] = {1000, 0, -1000}, loss;
    int32_t l0 = 0;
    zn_xent_dims d1 = {1, 3, 0, false};
    assert_int_equal(zn_xent_forward(&d1, big, &l0, &loss, NULL), ZN_KSTATUS_OK);
    assert_true(isfinite(loss) && loss >= 0 && loss < 1e-6f);
}

static void test_xent_known(void **state)
{
    (void)state;
    /* uniform logits: log K per example, smoothing or not */
    float z[4 * 10], loss;
    int32_t labels[4] = {0, 9, 5, 5};
    zn_fill(40, 1.75f, z);
    for (int sm = 0; sm <= 1; sm++) {
        zn_xent_dims sum = {4, 10, sm * 0.1f, false}, mean = {4, 10, sm * 0.1f, true};
        assert_int_equal(zn_xent_forward(&sum, z, labels, &loss, NULL), ZN_KSTATUS_OK);
        assert_true(fabs(loss - 4 * log(10.0)) < 1e-5);
        assert_int_equal(zn_xent_forward(&mean, z, labels, &loss, NULL), ZN_KSTATUS_OK);
        assert_true(fabs(loss - log(10.0)) < 1e-6);
    }
    /* softmax (1/2, 1/4, 1/4), label 0, smoothing 0.3: target (0.8, 0.1, 0.1),
     * loss = -(0.8 log 1/2 + 0.2 log 1/4) = 1.2 log 2; gradient p - t = (-0.3, 0.15, 0.15) */
    float z3[3] = {logf(2), 0, 0}, g[3], want_g[3] = {-0.6f, 0.3f, 0.3f};
    int32_t l0 = 0;
    zn_xent_dims d = {1, 3, 0.3f, false};
    assert_int_equal(zn_xent_forward(&d, z3, &l0, &loss, NULL), ZN_KSTATUS_OK);
    assert_true(fabs(loss - 1.2 * log(2.0)) < 1e-6);
    assert_int_equal(zn_xent_backward(&d, z3, &l0, 2.0f, g, NULL), ZN_KSTATUS_OK);
    assert_near(g, want_g, 3, 1e-6);
}

static void test_xent_bad_label(void **state)
{
    (void)state;
    float z[3 * 4] = {0}, loss = -1, g[12];
    int32_t high[3] = {0, 4, 1}, low[3] = {0, 1, -1};
    int row = -1;
    zn_xent_dims d = {3, 4, 0, false};
    assert_int_equal(zn_xent_forward(&d, z, high, &loss, &row), ZN_KSTATUS_BAD_LABEL);
    assert_int_equal(row, 1);
    assert_true(loss == -1);
    assert_int_equal(zn_xent_backward(&d, z, low, 1, g, &row), ZN_KSTATUS_BAD_LABEL);
    assert_int_equal(row, 2);
    assert_int_equal(zn_xent_forward(&d, z, low, &loss, NULL), ZN_KSTATUS_BAD_LABEL);
}

static void test_argmax_rows(void **state)
{
    (void)state;
    float z[3 * 4] = {0, 2, 1, 2, -1, -3, -2, -1.5f, 4, 4, 4, 4};
    int32_t pred[3];
    zn_argmax_rows(3, 4, z, pred);
    assert_int_equal(pred[0], 1); /* first of the tied maxima */
    assert_int_equal(pred[1], 0);
    assert_int_equal(pred[2], 0);
}

/* ---- optimizers ------------------------------------------------------------------------- */

static void test_sgd(void **state)
{
    (void)state;
    /* one step by hand: g' = 0.5 + 0.1*1 = 0.6, v = 0.6; plain w = 1 - 0.1*0.6;
     * Nesterov w = 1 - 0.1*(0.6 + 0.9*0.6) */
    for (int nest = 0; nest <= 1; nest++) {
        zn_sgd o = {0.1f, 0.9f, 0.1f, nest};
        float w = 1, g = 0.5f, v = 0;
        zn_sgd_step(&o, 1, &w, &g, &v);
        assert_true(fabsf(v - 0.6f) < 1e-7f);
        assert_true(fabsf(w - (nest ? 0.886f : 0.94f)) < 1e-6f);
    }
    /* five steps against a double-precision replay */
    enum { N = 20 };
    for (int nest = 0; nest <= 1; nest++) {
        zn_sgd o = {0.05f, 0.8f, 5e-4f, nest};
        float *w = rand_array(N, -1, 1), *v = zt_talloc(N), *wf = zt_talloc(N);
        double rw[N], rv[N] = {0};
        for (int i = 0; i < N; i++) rw[i] = w[i];
        for (int step = 0; step < 5; step++) {
            float *g = rand_array(N, -1, 1);
            zn_sgd_step(&o, N, w, g, v);
            for (int i = 0; i < N; i++) {
                double gi = g[i] + 5e-4 * rw[i];
                rv[i] = 0.8 * rv[i] + gi;
                rw[i] -= 0.05 * (nest ? gi + 0.8 * rv[i] : rv[i]);
            }
        }
        for (int i = 0; i < N; i++) wf[i] = (float)rw[i];
        assert_near(w, wf, N, 1e-5);
    }
}

static void test_adam(void **state)
{
    (void)state;
    /* first step: m_hat = g, v_hat = g^2, so w moves by lr * g / (|g| + eps) */
    zn_adam o = {0.1f, 0.9f, 0.999f, 1e-8f, 0};
    float w = 1, g = 0.5f, m = 0, v = 0;
    zn_adam_step(&o, 1, 1, &w, &g, &m, &v);
    assert_true(fabsf(w - 0.9f) < 1e-6f);
    enum { N = 20 };
    zn_adam o2 = {1e-2f, 0.8f, 0.99f, 1e-6f, 1e-2f};
    float *ww = rand_array(N, -1, 1), *mm = zt_talloc(N), *vv = zt_talloc(N), *wf = zt_talloc(N);
    double rw[N], rm[N] = {0}, rv[N] = {0};
    for (int i = 0; i < N; i++) rw[i] = ww[i];
    for (int step = 1; step <= 6; step++) {
        float *gg = rand_array(N, -1, 1);
        zn_adam_step(&o2, step, N, ww, gg, mm, vv);
        for (int i = 0; i < N; i++) {
            double gi = gg[i] + 1e-2 * rw[i];
            rm[i] = 0.8 * rm[i] + 0.2 * gi;
            rv[i] = 0.99 * rv[i] + 0.01 * gi * gi;
            double mh = rm[i] / (1 - pow(0.8, step)), vh = rv[i] / (1 - pow(0.99, step));
            rw[i] -= 1e-2 * mh / (sqrt(vh) + 1e-6);
        }
    }
    for (int i = 0; i < N; i++) wf[i] = (float)rw[i];
    assert_near(ww, wf, N, 1e-5);
}

/* The fused z-tower's slice walk (k_ztower.c): a batch of 5 in slices of 2, 2 and 1 against one
 * slice of 5, for the output, the running statistics, the coefficients and every gradient.
 * Not in bits: a slice changes the GEMM's column count (images x pixels), and OpenBLAS may round a
 * column differently for another shape (its AVX-512 small-matrix kernels do, by one unit in the
 * last place). So within float rounding: a sum of K products is exact to about K u relative to
 * the scale of its terms (Higham's first-order bound, u = 2^-24); the longest sum here is the
 * weight gradient's N x OH x OW = 100 products, and every value's scale is within 1 + |value| for
 * these ranges (inputs in [-1, 1], weights in [-0.5, 0.5], batch-norm scale gamma / std near 1). */
#define ZTOWER_TOL (100 * 0x1p-24)

static void test_ztower_slices(void **state)
{
    (void)state;
    enum { N = 5, F = 3, K = 2 };
    static const int c[K] = {2, 3}, h[K] = {8, 4}, w[K] = {8, 4};
    zn_ztower_dims d = {
        .st = {.n = N, .count = K, .c = c, .h = h, .w = w, .sh = 4, .sw = 4, .down = ZN_WINDOW_MAX},
        .conv = {.c = 4, .h = 5, .w = 4, .o = F, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                 .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2, .groups = 1},
        .eps = 1e-5f,
        .momentum = 0.9f,
    };
    const float *r[K] = {rand_array((size_t)N * 2 * 64, -1, 1), rand_array((size_t)N * 3 * 16, -1, 1)};
    const float *wt = rand_array(F * 4 * 9, -0.5f, 0.5f), *gamma = rand_array(F, 0.5f, 1.5f);
    const float *beta = rand_array(F, -0.2f, 0.2f), *dz = rand_array(N * F, -1, 1);
    float *out[2][K + 4];
    for (int run = 0; run < 2; run++) {
        d.conv.n = run ? 2 : N; /* slices of 2, 2, 1; then the whole batch at once */
        float *scratch = zt_talloc(zn_ztower_scratch_floats(&d));
        float *conv_ws = zt_talloc(zn_conv2d_workspace_bytes(&d.conv) / sizeof(float) + 1);
        float *stats = zt_talloc(2 * F), *z = zt_talloc(N * F), *coef = zt_talloc(7 * F);
        for (int f = 0; f < F; f++) stats[f] = 0.1f * (float)f, stats[F + f] = 1.0f;
        zn_ztower_forward(&d, true, r, wt, gamma, beta, stats, stats + F, z, scratch, conv_ws);
        zn_ztower_coef(&d, r, wt, gamma, beta, dz, coef, scratch, conv_ws);
        out[run][0] = z, out[run][1] = stats, out[run][2] = coef;
        for (int k = 0; k <= K; k++) {
            size_t n = k < K ? (size_t)N * c[k] * h[k] * w[k] : F * 4 * 9;
            out[run][3 + k] = zt_talloc(n);
            zn_ztower_backward(&d, k, r, wt, coef, dz, out[run][3 + k], scratch, conv_ws);
        }
    }
    const size_t size[K + 4] = {N * F, 2 * F, 7 * F, N * 2 * 64, N * 3 * 16, F * 4 * 9};
    for (int i = 0; i < K + 4; i++) assert_near(out[0][i], out[1][i], size[i], ZTOWER_TOL);
}

/* The fused forward in one slice against the unfused kernels, in bits: the fused walk takes each
 * plane's maximum or minimum of the conv's output before batch norm and relu (k_ztower.c), which
 * must give the same floats as the maximum of relu(batch norm(y)); gammas of both signs take
 * both. Training and inference (the running statistics the training call left). */
static void test_ztower_forward_unfused(void **state)
{
    (void)state;
    enum { N = 3, F = 4, C = 2, H = 8, W = 8, S = 4 };
    static const int c[1] = {C}, h[1] = {H}, w[1] = {W};
    zn_ztower_dims d = {
        .st = {.n = N, .count = 1, .c = c, .h = h, .w = w, .sh = S, .sw = S, .down = ZN_WINDOW_MAX},
        .conv = {.n = N, .c = S, .h = C, .w = S, .o = F, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                 .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2, .groups = 1},
        .eps = 1e-5f,
        .momentum = 0.9f,
    };
    const float *r[1] = {rand_array((size_t)N * C * H * W, -1, 1)};
    const float *wt = rand_array(F * S * 9, -0.5f, 0.5f), *beta = rand_array(F, -0.2f, 0.2f);
    const float gamma[F] = {0.8f, -1.1f, 1.3f, -0.6f};
    const int hw = zn_conv_out_h(&d.conv) * zn_conv_out_w(&d.conv);
    float *scratch = zt_talloc(zn_ztower_scratch_floats(&d));
    float *conv_ws = zt_talloc(zn_conv2d_workspace_bytes(&d.conv) / sizeof(float) + 1);
    float *zs = zt_talloc((size_t)N * S * C * S), *y = zt_talloc((size_t)N * F * hw);
    float *stats[2] = {zt_talloc(2 * F), zt_talloc(2 * F)}, *got = zt_talloc(N * F), *want = zt_talloc(N * F);
    for (int f = 0; f < F; f++) stats[0][f] = stats[1][f] = 0.1f * (float)f, stats[0][F + f] = stats[1][F + f] = 1.0f;
    zn_stitch_forward(&d.st, r, zs);
    for (int training = 1; training >= 0; training--) {
        zn_ztower_forward(&d, training, r, wt, gamma, beta, stats[0], stats[0] + F, got, scratch, conv_ws);
        zn_conv2d_forward(&d.conv, zs, wt, NULL, y, conv_ws, NULL);
        zn_bn_dims bd = {N, F, hw, d.eps, d.momentum};
        if (training)
            zn_batchnorm_forward_train(&bd, y, gamma, beta, stats[1], stats[1] + F, y, NULL, NULL);
        else
            zn_batchnorm_forward_infer(&bd, y, gamma, beta, stats[1], stats[1] + F, y);
        zn_eltwise_forward(ZN_OP_RELU, (size_t)N * F * hw, y, y);
        zn_global_pool_forward(ZN_WINDOW_MAX, N, F, zn_conv_out_h(&d.conv), zn_conv_out_w(&d.conv), y, want);
        assert_memory_equal(got, want, sizeof(float) * N * F);
        assert_memory_equal(stats[0], stats[1], sizeof(float) * 2 * F);
    }
}

/* The inputs' gradients of a three-input tower, whose data gradient runs on each input's band
 * of rows (k_ztower.c), against the whole stitched gradient computed from the coefficients
 * with the unfused kernels and split by zn_stitch_backward_one. Within ZTOWER_TOL: the band is
 * a conv of another height, which may take another kernel. */
static void test_ztower_band_gradients(void **state)
{
    (void)state;
    enum { N = 3, F = 4, K = 3, S = 4, CS = 2 + 6 + 8 };
    static const int c[K] = {2, 6, 8}, h[K] = {8, 4, 4}, w[K] = {8, 4, 4};
    zn_ztower_dims d = {
        .st = {.n = N, .count = K, .c = c, .h = h, .w = w, .sh = S, .sw = S, .down = ZN_WINDOW_MAX},
        .conv = {.n = N, .c = S, .h = CS, .w = S, .o = F, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                 .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2, .groups = 1},
        .eps = 1e-5f,
        .momentum = 0.9f,
    };
    const float *r[K];
    for (int k = 0; k < K; k++) r[k] = rand_array((size_t)N * c[k] * h[k] * w[k], -1, 1);
    const float *wt = rand_array(F * S * 9, -0.5f, 0.5f), *beta = rand_array(F, -0.2f, 0.2f);
    const float gamma[F] = {0.8f, -1.1f, 1.3f, -0.6f}, *dz = rand_array(N * F, -1, 1);
    const size_t ny = (size_t)N * F * CS * S, nz = (size_t)N * S * CS * S;
    float *scratch = zt_talloc(zn_ztower_scratch_floats(&d)), *coef = zt_talloc(7 * F);
    float *conv_ws = zt_talloc(zn_conv2d_workspace_bytes(&d.conv) / sizeof(float) + 1);
    float *zs = zt_talloc(nz), *y = zt_talloc(ny), *t = zt_talloc(ny), *g = zt_talloc(ny);
    zn_ztower_coef(&d, r, wt, gamma, beta, dz, coef, scratch, conv_ws);
    zn_stitch_forward(&d.st, r, zs);
    zn_conv2d_forward(&d.conv, zs, wt, NULL, y, conv_ws, NULL);
    zn_bn_dims bd = {N, F, CS * S, d.eps, d.momentum};
    zn_bn_affine(&bd, coef, coef + F, y, NULL, NULL, t);
    zn_eltwise_forward(ZN_OP_RELU, ny, t, t);
    zn_global_pool_backward(ZN_WINDOW_MAX, N, F, CS, S, t, dz, g);
    zn_eltwise_backward(ZN_OP_RELU_BWD, ny, t, g, g);
    zn_bn_affine(&bd, coef + 2 * F, coef + 3 * F, y, g, coef + 4 * F, g);
    zn_conv2d_backward_data(&d.conv, g, wt, zs, conv_ws);
    for (int k = 0; k < K; k++) {
        size_t n = (size_t)N * c[k] * h[k] * w[k];
        float *got = zt_talloc(n), *want = zt_talloc(n);
        zn_ztower_backward(&d, k, r, wt, coef, dz, got, scratch, conv_ws);
        zn_stitch_backward_one(&d.st, k, r[k], zs, want);
        assert_near(got, want, n, ZTOWER_TOL);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset, reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_batchnorm_forward), T(test_batchnorm_running_stats), T(test_batchnorm_backward),
        T(test_channel_sums_paths),
        T(test_batchnorm_relu),
        T(test_eltwise_ops), T(test_eltwise), T(test_mul), T(test_find_nonfinite), T(test_pool),
        T(test_maxpool_ties), T(test_maxpool_2x2_ties), T(test_global_maxpool_first), T(test_global_pool), T(test_resample), T(test_stitch),
        T(test_concat), T(test_transpose), T(test_xent), T(test_xent_known),
        T(test_xent_bad_label), T(test_argmax_rows), T(test_sgd), T(test_adam),
        T(test_ztower_slices), T(test_ztower_forward_unfused), T(test_ztower_band_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
