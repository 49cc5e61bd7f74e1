/* bench_bn_relu.c: times the fused batch norm + relu kernels (k_norm_relu.c) on width-16
 * DavidNet's eight batch-norm shapes: the training forward, and the backward's coefficients and
 * dx run apart (two calls) and in one pass per channel (zn_bn_relu_backward with dx), best of R
 * runs with 64 MiB of other data read between calls; then the sums over one training step. A
 * last column applies given a, b without the statistics (zn_bn_affine): what the forward would
 * cost with its statistics summed elsewhere (a conv epilogue's ceiling).
 * Not a unit test (no test_ name); build and run as docs/performance.md ("Fusion") shows.
 * Usage: bench_bn_relu [batch=128] [reps=15] [threads=2] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backends/cpu/kernels.h"
#include "backends/cpu/threads.h"

#define FLUSH_FLOATS ((size_t)16 << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *buffer(size_t floats, unsigned step)
{
    float *a = malloc(floats * sizeof *a);
    if (!a) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < floats; i++) a[i] = (float)((i * step) % 1000) * 1e-3f - 0.5f;
    return a;
}

/* Reads other data, so the next call starts without the tensors in the core's caches. */
static void flush(float *other)
{
    for (size_t i = 0; i < FLUSH_FLOATS; i += 16) other[i] += 1.0f;
}

typedef struct {
    int c, h, w, uses; /* uses: times one training step runs the shape */
} shape;

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 15;
    zn_cpu_threads_init(argc > 3 ? atoi(argv[3]) : 2);
    const shape shapes[] = {{16, 32, 32, 1}, {32, 32, 32, 1}, {32, 16, 16, 2},
                            {64, 16, 16, 1}, {128, 8, 8, 1}, {128, 4, 4, 2}};
    float *other = buffer(FLUSH_FLOATS, 3);
    double step[4] = {0, 0, 0, 0};
    printf("batch %d, best of %d, ms: forward | backward apart | backward in one pass | a, b only\n",
           n, reps);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        const size_t m = (size_t)n * sh->c * sh->h * sh->w;
        float *x = buffer(m, 7919), *dy = buffer(m, 104729), *out = buffer(m, 1);
        float *gamma = buffer(sh->c, 0), *beta = buffer(sh->c, 13), *coef = buffer(7 * sh->c, 1);
        float *mean = buffer(sh->c, 0), *var = buffer(sh->c, 0);
        zn_bn_dims d = {n, sh->c, sh->h * sh->w, 1e-5f, 1.0f}; /* momentum 1: state unchanged */
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < 4; k++) {
                flush(other);
                double t = now();
                if (k == 0) {
                    zn_bn_relu_forward(&d, true, x, gamma, beta, mean, var, out, NULL);
                } else if (k == 1) {
                    zn_bn_relu_backward(&d, x, gamma, beta, dy, coef, NULL);
                    zn_bn_relu_backward_data(&d, x, dy, coef, out);
                } else if (k == 2) {
                    zn_bn_relu_backward(&d, x, gamma, beta, dy, coef, out);
                } else {
                    zn_bn_affine(&d, gamma, beta, x, NULL, NULL, out);
                }
                t = now() - t;
                if (t < best[k]) best[k] = t;
            }
        printf("%4d x %2d x %2d: %6.2f | %6.2f | %6.2f | %6.2f\n", sh->c, sh->h, sh->w,
               best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3);
        for (int k = 0; k < 4; k++) step[k] += sh->uses * best[k];
        free(x), free(dy), free(out), free(gamma), free(beta), free(coef), free(mean), free(var);
    }
    printf("one training step: %6.2f | %6.2f | %6.2f | %6.2f\n", step[0] * 1e3, step[1] * 1e3,
           step[2] * 1e3, step[3] * 1e3);
    free(other);
    return 0;
}
