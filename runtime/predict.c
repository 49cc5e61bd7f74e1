/* predict.c: see predict.h. One inference session at batch 1; images decoded by data/'s decoder
 * and converted as an image folder converts them, so a picture is seen as the model saw its
 * training data. */
#include "runtime/predict.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/augment.h"
#include "data/image_decode.h"
#include "graph/util.h"
#include "report/json.h"
#include "runtime/metrics.h"
#include "runtime/session.h"

typedef struct {
    const zn_predict_opts *p;
    zn_session s;
    zn_dataset info;  /* the test split: class names, mean, std */
    int c, h, w, classes;
    float mean[ZN_DATASET_MAX_CHANNELS], inv_std[ZN_DATASET_MAX_CHANNELS];
    zn_image_fit fit;
    bool vote;
    uint8_t *pixels;  /* [c, h, w] */
    float *image;     /* normalised */
    float *probs;     /* [heads][classes] */
    int failed;
} predictor;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const char *class_name(const predictor *P, int k, char *buf, size_t len)
{
    if (k < P->info.n_classes && P->info.class_names[k][0]) return P->info.class_names[k];
    snprintf(buf, len, "%d", k);
    return buf;
}

/* The indices of the top n probabilities of row, highest first (ties: the lower index). */
static void top_classes(const float *row, int classes, int n, int *out)
{
    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int k = 0; k < classes; k++) {
            bool taken = false;
            for (int j = 0; j < i; j++) taken |= out[j] == k;
            if (!taken && (best < 0 || row[k] > row[best])) best = k;
        }
        out[i] = best;
    }
}

/* Softmax of head h's logits into P->probs, in double as the loss computes it. */
static void softmax(predictor *P, const float *logits, int h)
{
    float *row = P->probs + (size_t)h * P->classes;
    double most = logits[0], sum = 0;
    for (int k = 1; k < P->classes; k++) most = fmax(most, logits[k]);
    for (int k = 0; k < P->classes; k++) sum += exp((double)logits[k] - most);
    for (int k = 0; k < P->classes; k++) row[k] = (float)(exp((double)logits[k] - most) / sum);
}

/* A file not answered: message is "PATH: what went wrong", as data/'s readers word it. */
static void report_failure(predictor *P, const char *path, const char *message)
{
    fprintf(stderr, "znet predict: %s\n", message);
    if (P->p->json) {
        json_t *o = json_object();
        json_object_set_new(o, "file", zn_json_text(path));
        json_object_set_new(o, "error", zn_json_text(message));
        zn_json_write_line(stdout, o);
    }
    P->failed++;
}

/* report_failure of path with errno's text. */
static void report_errno(predictor *P, const char *path)
{
    char message[1024];
    snprintf(message, sizeof message, "%s: %s", path, strerror(errno));
    report_failure(P, path, message);
}

static void print_answer(predictor *P, const char *path)
{
    int n = P->p->top < P->classes ? P->p->top : P->classes, top[ZN_DATASET_MAX_CLASSES];
    int pred[64];
    char buf[16];
    json_t *o = P->p->json ? json_object() : NULL, *heads = o ? json_object() : NULL;
    if (o) json_object_set_new(o, "file", zn_json_text(path));
    else printf("%s\n", path);
    for (int h = 0; h < P->s.n_heads; h++) {
        const float *row = P->probs + (size_t)h * P->classes;
        top_classes(row, P->classes, n, top);
        pred[h] = top[0];
        const char *head = P->s.graph.nodes[P->s.heads[h]].name;
        json_t *list = o ? json_array() : NULL;
        if (!o) printf("  %-10s", head);
        for (int i = 0; i < n; i++) {
            const char *name = class_name(P, top[i], buf, sizeof buf);
            if (!o) {
                printf("%s %s %.3f", i ? "," : "", name, (double)row[top[i]]);
                continue;
            }
            json_t *e = json_object();
            json_object_set_new(e, "class", zn_json_text(name));
            json_object_set_new(e, "index", json_integer(top[i]));
            json_object_set_new(e, "p", zn_json_number(row[top[i]], "%.6g"));
            json_array_append_new(list, e);
        }
        if (o) json_object_set_new(heads, head, list);
        else printf("\n");
    }
    if (o) json_object_set_new(o, "heads", heads);
    if (P->vote) {
        int v = zn_vote(pred, P->s.n_heads), agree = 0;
        for (int h = 0; h < P->s.n_heads; h++) agree += pred[h] == v;
        const char *name = class_name(P, v, buf, sizeof buf);
        if (!o) {
            printf("  %-10s %s (%d of %d heads)\n", "vote", name, agree, P->s.n_heads);
        } else {
            json_t *e = json_object();
            json_object_set_new(e, "class", zn_json_text(name));
            json_object_set_new(e, "index", json_integer(v));
            json_object_set_new(e, "heads", json_integer(agree));
            json_object_set_new(o, "vote", e);
        }
    }
    if (o) zn_json_write_line(stdout, o);
}

/* Runs one image, pixels [c][h][w] of the model's size, and reports its answer as path's. */
static void run_image(predictor *P, const char *path, const uint8_t *pixels)
{
    zn_aug_normalize(pixels, P->c, P->h * P->w, P->mean, P->inv_std, P->image);
    const int32_t label = 0;
    float logits[ZN_DATASET_MAX_CLASSES];
    bool ok = zn_session_feed(&P->s, P->image, &label) && zn_session_forward(&P->s, false);
    for (int h = 0; ok && h < P->s.n_heads; h++)
        if ((ok = zn_session_logits(&P->s, h, logits))) softmax(P, logits, h);
    if (ok) {
        print_answer(P, path);
        return;
    }
    char message[sizeof P->s.err + 512];
    snprintf(message, sizeof message, "%.500s: %s", path, P->s.err);
    report_failure(P, path, message);
}

/* Reads, converts and runs one image file; its answer or its failure is reported. */
static void predict_file(predictor *P, const char *path)
{
    char err[1024];
    if (zn_image_file_load(path, P->c, P->h, P->w, P->fit, P->pixels, err, sizeof err)) run_image(P, path, P->pixels);
    else report_failure(P, path, err);
}

/* Every image of a .npy array file (NHWC, or NCHW when the recipe's npy() says so), each answered
 * as PATH[i]; the array's images must have the model's channels and size. */
static void predict_array(predictor *P, const char *path, bool nchw)
{
    char err[1024];
    zn_dataset a;
    if (!zn_npy_images(path, nchw, &a, err, sizeof err)) {
        report_failure(P, path, err);
        return;
    }
    if (a.c == P->c && a.h == P->h && a.w == P->w) {
        for (int i = 0; i < a.n; i++) {
            char name[600];
            snprintf(name, sizeof name, "%.500s[%d]", path, i);
            run_image(P, name, a.images + (size_t)i * a.c * a.h * a.w);
        }
    } else {
        snprintf(err, sizeof err, "%.500s: its images are [%d, %d, %d]; the model takes [%d, %d, %d] (arrays are not "
                 "resized: give images, or arrays of the model's size)", path, a.c, a.h, a.w, P->c, P->h, P->w);
        report_failure(P, path, err);
    }
    zn_dataset_free(&a);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every PNG or JPEG file in folder dir, in its subfolders too, in sorted path order. */
static void predict_folder(predictor *P, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        report_errno(P, dir);
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            names = zn_realloc(names, (n + 1) * sizeof *names);
            size_t len = strlen(dir) + strlen(e->d_name) + 2;
            names[n] = zn_malloc(len);
            snprintf(names[n++], len, "%s/%s", dir, e->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode)) predict_folder(P, names[i]);
        else if (zn_image_name(names[i])) predict_file(P, names[i]);
        free(names[i]);
    }
    free(names);
}

/* The session, its weights, the data set's names and normalisation; false after saying why. */
static bool open_predictor(predictor *P, const zn_graph *g, const zn_recipe *r, const zn_run_opts *o)
{
    char err[1024];
    zn_ckpt_meta meta;
    if (!zn_train_load_test(g, r, o, &P->info, err, sizeof err)) {
        fprintf(stderr, "znet predict: %s (its class names and normalisation are needed; --data DIR says where "
                        "it is)\n", err);
        return false;
    }
    if (!zn_session_init(&P->s, g, o->backend, &o->backend_opts, 1, false)) {
        fprintf(stderr, "znet predict: %s\n", P->s.err);
        return false;
    }
    if (!zn_session_restore(&P->s, P->p->weights, false, &meta, err, sizeof err)) {
        fprintf(stderr, "znet predict: %s\n", err);
        return false;
    }
    const zn_node *img = &P->s.graph.nodes[P->s.image];
    P->c = (int)img->shape.dim[0], P->h = (int)img->shape.dim[1], P->w = (int)img->shape.dim[2];
    P->classes = P->s.graph.nodes[P->s.label].attr.out;
    if (P->c != 1 && P->c != 3) {
        fprintf(stderr, "znet predict: model input '%s' has %d channels; images are read as 1 (gray) or 3 (RGB)\n",
                img->name, P->c);
        return false;
    }
    const float *mean = r->n_norm ? r->mean : P->info.mean, *std = r->n_norm ? r->std : P->info.std;
    for (int ch = 0; ch < P->c; ch++) P->mean[ch] = mean[ch], P->inv_std[ch] = 1.0f / std[ch];
    P->fit = r->data_fit;
    P->vote = g->n_metrics > 0;
    P->pixels = zn_malloc((size_t)P->c * P->h * P->w);
    P->image = zn_malloc(sizeof(float) * P->c * P->h * P->w);
    P->probs = zn_malloc(sizeof(float) * (size_t)P->s.n_heads * P->classes);
    return true;
}

int zn_predict(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, const zn_predict_opts *p)
{
    predictor P = {.p = p};
    bool ok = open_predictor(&P, g, r, o);
    for (int i = 0; ok && i < p->n_inputs; i++) {
        struct stat st;
        if (stat(p->inputs[i], &st) != 0) report_errno(&P, p->inputs[i]);
        else if (S_ISDIR(st.st_mode)) predict_folder(&P, p->inputs[i]);
        else if (has_suffix(p->inputs[i], ".npy")) predict_array(&P, p->inputs[i], r->npy.nchw);
        else predict_file(&P, p->inputs[i]);
    }
    if (ok && P.failed)
        fprintf(stderr, "znet predict: %d of the inputs could not be answered (named above)\n", P.failed);
    free(P.pixels);
    free(P.image);
    free(P.probs);
    zn_dataset_free(&P.info);
    zn_session_free(&P.s);
    return ok && !P.failed ? 0 : 1;
}
