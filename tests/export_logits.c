/* export_logits.c: znet's side of the ONNX export test (tests/run_export.py). Runs a model's
 * inference graph on the CPU backend with a checkpoint over the first 64 test images of its data
 * set, normalised as `znet eval` does (data/augment.c), and writes the raw images (float32
 * [64, C, H, W], 0-255) and every head's logits (float32 [heads][64][K]) for onnxruntime to
 * compare. Usage: export_logits MODEL CKPT DATA_DIR OUT_PREFIX [KEY=VALUE...] (--set values; DATA_DIR
 * "": where `znet data where` finds the data set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "runtime/checkpoint.h"
#include "runtime/compile.h"
#include "runtime/session.h"

enum { BATCH = 64 };

static int die(const char *what, const char *why)
{
    fprintf(stderr, "export_logits: %s: %s\n", what, why);
    return 1;
}

static bool write_floats(const char *prefix, const char *suffix, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(v, sizeof *v, n, f) == n;
    return (f && fclose(f) == 0) && ok;
}

int main(int argc, char **argv)
{
    if (argc < 5) return die("usage", "export_logits MODEL CKPT DATA_DIR OUT_PREFIX [KEY=VALUE...]");
    zn_setting sets[32];
    int n_sets = 0;
    for (int i = 5; i < argc && n_sets < 32; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return die(argv[i], "not KEY=VALUE");
        *eq = '\0';
        sets[n_sets++] = (zn_setting){argv[i], eq + 1};
    }
    zn_compiled m = {0};
    zn_compile_opts co = {.path = argv[1], .settings = sets, .n_settings = n_sets, .mode = ZN_COMPILE_FORWARD};
    if (!zn_compile(&co, &m)) return die(argv[1], m.err);
    zn_session s = {0};
    zn_backend_opts bo = {0};
    if (!zn_session_init(&s, &m.graph, &zn_cpu_backend, &bo, BATCH, false)) return die("session", s.err);
    zn_ckpt_meta meta;
    float *params, *optim;
    char err[1024];
    if (!zn_ckpt_load(argv[2], &meta, &params, &optim, err, sizeof err)) return die(argv[2], err);
    if (meta.n_params != zn_session_param_floats(&s) || !zn_session_set_params(&s, params))
        return die(argv[2], "does not fit the model");
    const zn_node *img = &s.graph.nodes[s.image];
    zn_dataset ds = {0};
    char dir[4096];
    if (!zn_data_dir_resolve(argv[3][0] ? argv[3] : NULL, m.recipe.data, dir, sizeof dir))
        return die(m.recipe.data, "data set not found");
    if (!zn_dataset_load(m.recipe.data, dir, false, img->shape.dim[1] == 32, &ds, err, sizeof err))
        return die(argv[3], err);
    const int c = ds.c, hw = ds.h * ds.w;
    const float *mean = m.recipe.n_norm == c ? m.recipe.mean : ds.mean, *std = m.recipe.n_norm == c ? m.recipe.std : ds.std;
    float inv_std[ZN_DATASET_MAX_CHANNELS], *raw = malloc(sizeof(float) * BATCH * c * hw);
    float *x = malloc(sizeof(float) * BATCH * c * hw);
    int32_t labels[BATCH];
    for (int k = 0; k < c; k++) inv_std[k] = 1.0f / std[k];
    for (int i = 0; i < BATCH; i++) {
        const uint8_t *src = ds.images + (size_t)i * c * hw;
        for (int j = 0; j < c * hw; j++) raw[(size_t)i * c * hw + j] = src[j];
        zn_aug_normalize(src, c, hw, mean, inv_std, x + (size_t)i * c * hw);
        labels[i] = ds.labels[i];
    }
    if (!zn_session_feed(&s, x, labels) || !zn_session_forward(&s, false)) return die("forward", s.err);
    const int k = s.graph.nodes[s.label].attr.out;
    float *logits = malloc(sizeof(float) * s.n_heads * BATCH * k);
    for (int h = 0; h < s.n_heads; h++)
        if (!zn_session_logits(&s, h, logits + (size_t)h * BATCH * k)) return die("logits", s.err);
    if (!write_floats(argv[4], "images.f32", raw, (size_t)BATCH * c * hw) ||
        !write_floats(argv[4], "logits.f32", logits, (size_t)s.n_heads * BATCH * k))
        return die(argv[4], "cannot write");
    printf("%d heads, %d classes, %d images\n", s.n_heads, k, BATCH);
    free(logits), free(raw), free(x), free(params), free(optim);
    zn_dataset_free(&ds);
    zn_session_free(&s);
    zn_compiled_free(&m);
    return 0;
}
