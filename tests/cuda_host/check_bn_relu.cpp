/* check_bn_relu.cpp (tests/cuda_host/): the CUDA backend's batch-norm kernels run as host code
 * (cuda_runtime.h) against the CPU kernels, for what no GPU here can run: the fused batch norm +
 * relu (k_norm_relu.cu) forward in training and inference, its coefficients and dx, over several
 * shapes (one and several batch slices, HW 1, a recomputed copy's momentum 1); the backward's a
 * and b are the forward's bits and its mask the forward's y > 0; dx written over x or dy; a rerun
 * gives the same bits. Also the z-tower's pieces that share the fused kernels' helpers
 * (k_ztower.cu) against zn_bn_train_stats and zn_bn_backward_affine given the same sums. Sums
 * differ from the CPU's in order only (double partials against float lanes): 1e-5 relative;
 * what only rounds the same formulas, 1e-6 (bits against the CPU would depend on how its
 * compiler contracts a*b + c). */
#include "cuda_runtime.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

extern "C" {
#include "backends/cpu/kernels.h"
}
#include "cuda_kernels.h"

typedef std::vector<float> floats;

static int failures;

static void expect(bool ok, const char *what, double v)
{
    printf("  %-46s %s (%.3g)\n", what, ok ? "ok" : "FAIL", v);
    failures += !ok;
}

/* max |a - b| / max |a| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, s = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = std::max(d, (double)std::fabs(a[i] - b[i]));
        s = std::max(s, (double)std::fabs(a[i]));
    }
    return d / s;
}

static double rel_diff(const floats &a, const floats &b)
{
    return rel_diff(a.data(), b.data(), a.size());
}

static bool same_bits(const void *a, const void *b, size_t bytes)
{
    return memcmp(a, b, bytes) == 0;
}

static bool same_bits(const floats &a, const floats &b)
{
    return a.size() == b.size() && same_bits(a.data(), b.data(), 4 * a.size());
}

struct Case {
    zn_bn_dims d;
    size_t size;
    floats x, dy, gamma, beta, mean, var;
    std::vector<double> scratch;
};

static Case make_case(int n, int c, int hw, float momentum, unsigned seed)
{
    Case k{{n, c, hw, 1e-5f, momentum}, (size_t)n * c * hw};
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    k.x.resize(k.size);
    k.dy.resize(k.size);
    for (float &v : k.x) v = 2 * normal(rng) + 0.3f;
    for (float &v : k.dy) v = normal(rng);
    for (int i = 0; i < c; i++) { /* every third gamma negative: the mask's other side */
        k.gamma.push_back((i % 3 == 2 ? -1 : 1) * (0.5f + std::fabs(normal(rng))));
        k.beta.push_back(0.5f * normal(rng));
        k.mean.push_back(0.1f * normal(rng));
        k.var.push_back(1 + 0.2f * std::fabs(normal(rng)));
    }
    k.scratch.resize(zn_cuda_channel_scratch_bytes(c) / sizeof(double));
    return k;
}

/* The forward on both; ab gets the CUDA forward's a and b. */
static floats forward(Case &k, bool training, floats &ab)
{
    floats y0(k.size), y1(k.size), m0 = k.mean, v0 = k.var, m1 = k.mean, v1 = k.var;
    ab.assign(2 * k.d.c, 0.0f);
    zn_bn_relu_forward(&k.d, training, k.x.data(), k.gamma.data(), k.beta.data(), m0.data(),
                       v0.data(), y0.data(), nullptr);
    cudaError_t e = zn_cuda_bn_relu_forward(&k.d, training, k.x.data(), k.gamma.data(),
                                            k.beta.data(), m1.data(), v1.data(),
                                            k.scratch.data(), ab.data(), y1.data(), nullptr);
    expect(e == cudaSuccess, training ? "forward, training" : "forward, inference", e);
    expect(rel_diff(y0, y1) < 1e-5, "  y against the cpu", rel_diff(y0, y1));
    double dr = std::max(rel_diff(m0, m1), rel_diff(v0, v1));
    expect(dr < 1e-5, "  running statistics against the cpu", dr);
    if (!training || k.d.momentum >= 1)
        expect(same_bits(m1, k.mean) && same_bits(v1, k.var), "  running statistics untouched", 0);
    return y1;
}

/* The coefficients and dx on both, after a training forward that gave y and ab. */
static void backward(Case &k, const floats &y, const floats &ab)
{
    const int c = k.d.c;
    floats k0(7 * c), k1(7 * c), again(7 * c);
    zn_bn_relu_backward(&k.d, k.x.data(), k.gamma.data(), k.beta.data(), k.dy.data(), k0.data(),
                        nullptr);
    cudaError_t e = zn_cuda_bn_relu_backward_coef(&k.d, k.x.data(), k.gamma.data(),
                                                  k.beta.data(), k.dy.data(), k.scratch.data(),
                                                  k1.data(), nullptr);
    expect(e == cudaSuccess, "coefficients", e);
    for (int r = 0; r < 7; r++) {
        char what[64];
        snprintf(what, sizeof what, "  row %d against the cpu", r);
        double dr = rel_diff(k0.data() + r * c, k1.data() + r * c, c);
        expect(dr < 1e-5, what, dr);
    }
    expect(same_bits(k1.data() + 5 * c, ab.data(), 8 * c), "  a, b: the forward's bits", 0);
    size_t flips = 0;
    for (size_t i = 0; i < k.size; i++) {
        int ch = (int)((i / k.d.hw) % c);
        flips += (y[i] > 0) != (k1[5 * c + ch] * k.x[i] + k1[6 * c + ch] > 0);
    }
    expect(flips == 0, "  the mask: the forward's y > 0", (double)flips);
    zn_cuda_bn_relu_backward_coef(&k.d, k.x.data(), k.gamma.data(), k.beta.data(), k.dy.data(),
                                  k.scratch.data(), again.data(), nullptr);
    expect(same_bits(k1, again), "  a rerun: the same bits", 0);

    floats dx0(k.size), dx1(k.size), over_x = k.x, over_dy = k.dy;
    zn_bn_relu_backward_data(&k.d, k.x.data(), k.dy.data(), k1.data(), dx0.data());
    e = zn_cuda_bn_relu_backward_data(&k.d, k.x.data(), k.dy.data(), k1.data(), dx1.data(),
                                      nullptr);
    expect(e == cudaSuccess, "dx", e);
    expect(rel_diff(dx0, dx1) < 1e-6, "  against the cpu, the same coefficients", rel_diff(dx0, dx1));
    zn_cuda_bn_relu_backward_data(&k.d, over_x.data(), k.dy.data(), k1.data(), over_x.data(),
                                  nullptr);
    zn_cuda_bn_relu_backward_data(&k.d, k.x.data(), over_dy.data(), k1.data(), over_dy.data(),
                                  nullptr);
    expect(same_bits(over_x, dx1) && same_bits(over_dy, dx1), "  over x, over dy: the same bits",
           0);
}

/* The z-tower's statistics and backward affine from its own sums, against the CPU's formulas
 * given those sums. */
static void ztower_pieces(Case &k)
{
    const int c = k.d.c;
    std::vector<zn_bn_sums> stats(c), grads(c);
    floats m1 = k.mean, v1 = k.var, a(c), b(c), kk(5 * c);
    zn_cuda_bn_sums_add(&k.d, k.x.data(), nullptr, k.scratch.data(), stats.data(), nullptr);
    zn_cuda_bn_sums_add(&k.d, k.x.data(), k.dy.data(), k.scratch.data(), grads.data(), nullptr);
    zn_cuda_bn_train_stats(&k.d, stats.data(), k.gamma.data(), k.beta.data(), m1.data(),
                           v1.data(), a.data(), b.data(), nullptr);
    zn_cuda_bn_backward_affine(&k.d, stats.data(), grads.data(), k.gamma.data(), kk.data(),
                               nullptr);
    double worst = 0;
    for (int ch = 0; ch < c; ch++) {
        float m0 = k.mean[ch], v0 = k.var[ch], k3[3];
        zn_bn_train s = zn_bn_train_stats(&k.d, &stats[ch], k.gamma[ch], k.beta[ch], &m0, &v0);
        float dgamma = (float)(s.invstd * (grads[ch].dyx - s.mean * grads[ch].dy));
        float dbeta = (float)grads[ch].dy;
        zn_bn_backward_affine(&k.d, &s, k.gamma[ch], dgamma, dbeta, k3);
        const float want[] = {s.a, s.b, m0, v0, k3[0], k3[1], k3[2], dgamma, dbeta};
        const float got[] = {a[ch], b[ch], m1[ch], v1[ch], kk[ch], kk[c + ch], kk[2 * c + ch],
                             kk[3 * c + ch], kk[4 * c + ch]};
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) /* each to its own scale */
            worst = std::max(worst, rel_diff(want + i, got + i, 1));
    }
    expect(worst < 1e-6, "z-tower statistics, affine against the cpu", worst);
}

static void check(int n, int c, int hw, float momentum, unsigned seed)
{
    printf("n %d, c %d, hw %d, momentum %g\n", n, c, hw, momentum);
    Case k = make_case(n, c, hw, momentum, seed);
    floats ab;
    floats y = forward(k, true, ab);
    backward(k, y, ab);
    forward(k, false, ab);
    ztower_pieces(k);
}

int main()
{
    check(4, 3, 64, 0.9f, 1);
    check(5, 7, 9, 0.9f, 2);
    check(3, 2, 1, 0.9f, 3);    /* [N, C] */
    check(64, 4, 300, 0.9f, 4); /* three batch slices */
    check(6, 3, 25, 1.0f, 5);   /* a recomputed copy's: running statistics untouched */
    zn_bn_dims no_plane = {4, 3, 0, 1e-5f, 0.9f};
    float z[4];
    expect(zn_cuda_bn_relu_backward_data(&no_plane, z, z, z, z, nullptr) == cudaErrorInvalidValue,
           "HW 0 refused", 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
