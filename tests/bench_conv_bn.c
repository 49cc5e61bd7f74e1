/* bench_conv_bn.c: times width-16 DavidNet's convolutions each followed by its batch norm + relu
 * (training forward), the statistics summed by the batch norm's own pass over the conv's output
 * (apart) and in the conv's epilogue as each image is written (conv.h's plane sums), best of R
 * interleaved runs with 64 MiB of other data read before each; then the sums over one step.
 * Not a unit test (no test_ name); build and run as docs/performance.md ("Session 29") shows.
 * Usage: bench_conv_bn [batch=128] [reps=15] [threads=2] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backends/cpu/conv.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/threads.h"

#define FLUSH_FLOATS ((size_t)16 << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void *buffer(size_t bytes)
{
    void *a = malloc(bytes ? bytes : 1);
    if (!a) {
        perror("malloc");
        exit(1);
    }
    return a;
}

static float *filled(size_t floats, unsigned step, float scale)
{
    float *a = buffer(floats * sizeof *a);
    for (size_t i = 0; i < floats; i++) a[i] = ((float)((i * step) % 1000) * 1e-3f - 0.5f) * scale;
    return a;
}

/* Reads other data, so the next call starts without the tensors in the core's caches. */
static void flush(float *other)
{
    for (size_t i = 0; i < FLUSH_FLOATS; i += 16) other[i] += 1.0f;
}

typedef struct {
    int c, o, hw, uses; /* a 3x3 "same" conv c -> o on hw x hw; uses: times per step */
} shape;

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 15;
    zn_cpu_threads_init(argc > 3 ? atoi(argv[3]) : 2);
    const shape shapes[] = {{3, 16, 32, 1},  {16, 32, 32, 1}, {32, 32, 16, 2},
                            {32, 64, 16, 1}, {64, 128, 8, 1}, {128, 128, 4, 2}};
    float *other = filled(FLUSH_FLOATS, 3, 1);
    double step[2] = {0, 0};
    printf("batch %d, best of %d, ms: conv + batch norm + relu, statistics apart | in the "
           "conv's epilogue\n", n, reps);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        const zn_conv_params p = {n, sh->c, sh->hw, sh->hw, sh->o, 3, 3, 1, 1, 1, 1, 1, 1, 1};
        const size_t in = (size_t)n * sh->c * sh->hw * sh->hw, out = (size_t)n * sh->o * sh->hw * sh->hw;
        float *x = filled(in, 7919, 1), *w = filled((size_t)sh->o * sh->c * 9, 104729, 0.2f);
        float *y = filled(out, 1, 1), *z = filled(out, 1, 1), *ws = buffer(zn_conv2d_workspace_bytes(&p));
        float *gamma = filled(sh->o, 0, 1), *beta = filled(sh->o, 13, 1);
        float *mean = filled(sh->o, 0, 1), *var = filled(sh->o, 0, 1);
        zn_bn_sums *planes = buffer((size_t)n * sh->o * sizeof *planes);
        zn_bn_dims d = {n, sh->o, sh->hw * sh->hw, 1e-5f, 1.0f}; /* momentum 1: state unchanged */
        double best[2] = {1e9, 1e9};
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < 2; k++) {
                flush(other);
                double t = now();
                zn_conv2d_forward(&p, x, w, NULL, y, ws, k ? planes : NULL);
                zn_bn_relu_forward(&d, true, y, gamma, beta, mean, var, z, k ? planes : NULL);
                t = now() - t;
                if (t < best[k]) best[k] = t;
            }
        printf("%3d -> %3d on %2d x %2d: %7.2f | %7.2f\n", sh->c, sh->o, sh->hw, sh->hw,
               best[0] * 1e3, best[1] * 1e3);
        for (int k = 0; k < 2; k++) step[k] += sh->uses * best[k];
        free(x), free(w), free(y), free(z), free(ws), free(gamma), free(beta), free(mean);
        free(var), free(planes);
    }
    printf("one training step's forward: %7.2f | %7.2f\n", step[0] * 1e3, step[1] * 1e3);
    free(other);
    return 0;
}
