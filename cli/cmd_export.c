/* cmd_export.c: `znet export FILE --weights CKPT -o model.onnx`: the inference graph (batch norm
 * folded where graph/pass_fold_bn.c applies) with the checkpoint's values, as ONNX
 * (export/onnx.h). The recipe's normalisation becomes the graph's first nodes unless
 * --no-normalize; docs/export.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data/dataset.h"
#include "export/onnx.h"
#include "runtime/checkpoint.h"
#include "runtime/session.h"
#include "runtime/train.h"

/* Points values[id] at each PARAM and STATE node's part of the checkpoint's array, which is the
 * plan's parameter region (graph/plan.h: 64-byte aligned offsets); false with a message when the
 * checkpoint is of another model. */
static bool bind_values(const zn_compiled *m, const char *path, const zn_ckpt_meta *meta, const float *params,
                        const float **values)
{
    const zn_graph *g = &m->graph;
    uint64_t want = meta->version == 1 ? m->fingerprint_v1 : m->fingerprint;
    if (meta->graph_hash != want) {
        fprintf(stderr, "znet export: %s was saved from another model (or other --set values) than %s\n", path,
                g->model_name);
        return false;
    }
    const size_t floats = m->plan.region_bytes[ZN_REGION_PARAMS] / sizeof(float);
    if (meta->n_params != floats) {
        fprintf(stderr, "znet export: %s holds %llu parameter and state values; the model has %zu\n", path,
                (unsigned long long)meta->n_params, floats);
        return false;
    }
    for (int id = 0; id < g->n_nodes; id++)
        if (m->plan.region[id] == ZN_REGION_PARAMS) values[id] = params + m->plan.offset[id] / sizeof(float);
    return true;
}

/* The recipe's mean and std, or (when it gives none) its data set's own, from the test split as
 * run and predict find it (a named set, folder() or npy()). */
static bool normalisation(const zn_graph *g, const zn_recipe *r, const char *data_dir, int c, float *mean,
                          float *std)
{
    if (r->n_norm == c) {
        memcpy(mean, r->mean, sizeof(float) * c);
        memcpy(std, r->std, sizeof(float) * c);
        return true;
    }
    char err[1024];
    zn_dataset ds = {0};
    const zn_run_opts o = {.data_dir = data_dir};
    if (!zn_train_load_test(g, r, &o, &ds, err, sizeof err)) {
        fprintf(stderr,
                "znet export: the recipe gives no mean and std, and its data set %s (whose own they would be) "
                "cannot be read: %s; give --set train.mean=[...] --set train.std=[...], --data DIR, or "
                "--no-normalize\n", r->data, err);
        return false;
    }
    memcpy(mean, ds.mean, sizeof(float) * c);
    memcpy(std, ds.std, sizeof(float) * c);
    zn_dataset_free(&ds);
    return true;
}

int zn_cmd_export(int argc, char **argv)
{
    const char *weights = NULL, *out = NULL, *data_dir = NULL;
    bool no_normalize = false;
    const zn_opt opts[] = {
        {"--weights", ZN_OPT_STRING, "CKPT", "the checkpoint whose values are written (required)", &weights, 0, 0},
        {"-o", ZN_OPT_STRING, "FILE", "the ONNX file to write (required)", &out, 0, 0},
        {"--no-normalize", ZN_OPT_FLAG, NULL, "leave the input normalisation out: the graph takes normalised images",
         &no_normalize, 0, 0},
        {"--data", ZN_OPT_STRING, "DIR", "where the data set is, for its mean and std when the recipe gives none",
         &data_dir, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "export --weights CKPT -o FILE.onnx [options] FILE.znet",
                          "Writes the inference graph (batch norm folded) with a checkpoint's values as ONNX\n"
                          "(opset 17): input 'image' [N, C, H, W] of raw pixels on the 0-255 scale (the\n"
                          "recipe's normalisation is the first nodes; --no-normalize: normalised input), one\n"
                          "output per head holding its logits. docs/export.md.",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (!weights || !out) {
        fprintf(stderr, "znet export: %s is required\n", !weights ? "--weights CKPT" : "-o FILE.onnx");
        return ZN_EXIT_USAGE;
    }
    zn_compiled m = {0};
    zn_ckpt_meta meta;
    float *params = NULL, *optim = NULL;
    const float **values = NULL;
    rc = ZN_EXIT_ERROR;
    char err[1024];
    if (!zn_cli_compile(&c, (zn_compile_opts){.mode = ZN_COMPILE_INFERENCE, .batch = 1}, &m)) goto done;
    if (!zn_ckpt_load(weights, &meta, &params, &optim, err, sizeof err)) {
        fprintf(stderr, "znet export: %s\n", err);
        goto done;
    }
    values = calloc((size_t)m.graph.n_nodes, sizeof *values);
    if (!values || !bind_values(&m, weights, &meta, params, values)) goto done;
    int image = -1, label, heads[64], n_heads;
    zn_session_find_io(&m.graph, m.graph.n_nodes, &image, &label, heads, &n_heads);
    float mean[ZN_DATASET_MAX_CHANNELS], std[ZN_DATASET_MAX_CHANNELS];
    const bool norm = !no_normalize && image >= 0;
    if (norm) {
        const zn_node *in = &m.graph.nodes[image];
        if (in->shape.rank != 3 || in->shape.dim[0] > ZN_DATASET_MAX_CHANNELS) {
            char shape[64];
            fprintf(stderr, "znet export: input '%s' is %s, not an image [C, H, W] of at most %d channels that the "
                            "recipe's normalisation applies to; give --no-normalize\n",
                    in->name, zn_shape_str(&in->shape, shape, sizeof shape), ZN_DATASET_MAX_CHANNELS);
            goto done;
        }
        if (!normalisation(&m.graph, &m.recipe, data_dir, (int)in->shape.dim[0], mean, std)) goto done;
    }
    zn_onnx_opts o = {.values = values, .mean = norm ? mean : NULL, .std = norm ? std : NULL,
                      .producer_version = ZNET_VERSION};
    if (!zn_onnx_write(&m.graph, &o, out, err, sizeof err)) {
        fprintf(stderr, "znet export: %s\n", err);
        goto done;
    }
    printf("wrote %s: ONNX opset %d, %d output%s (logits)%s\n", out, ZN_ONNX_OPSET, n_heads, n_heads == 1 ? "" : "s",
           norm ? ", input normalised by its first nodes" : "");
    rc = ZN_EXIT_OK;
done:
    free(values);
    free(params);
    free(optim);
    zn_compiled_free(&m);
    return rc;
}
