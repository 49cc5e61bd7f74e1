/* train.c: see train.h. One session (training graph, plan, backend) serves both training steps
 * and evaluation: evaluation runs the forward nodes only, with batch norm on its running
 * statistics, and pads the last partial test batch (padded rows are not counted). On several
 * ranks (runtime/dist.h, docs/distributed.md) each takes its share of every global batch and of
 * the test set; the ranks agree on every figure, on stopping and on failing through collectives
 * reached at the same points, and rank 0 alone writes the log and the checkpoint. */
#include "runtime/train.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/batcher.h"
#include "runtime/checkpoint.h"
#include "data/dataset.h"
#include "report/json.h"
#include "runtime/metrics.h"
#include "report/plot.h"
#include "runtime/schedule.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "runtime/dist.h"
#include "runtime/grad_sync.h"
#include "runtime/profile.h"
#include "runtime/session.h"
#include "data/rng.h"

typedef struct {
    const zn_run_opts *o;
    const zn_recipe *r;
    zn_session s;
    zn_dataset train, test;
    int classes;
    bool vote;
    const char *head_names[ZN_MAX_HEADS];
    float *logits[ZN_MAX_HEADS]; /* [batch, classes] per head */
    FILE *log;
    bool csv;
    double best[ZN_MAX_HEADS + 1];
    int rank, ranks;
    int batch;          /* this rank's share of the recipe's (global) batch: the session's */
    zn_grad_sync sync;  /* the gradient sums, on several ranks */
} zn_run;

/* SIGINT and SIGTERM during training: the first sets the flag, which the loop reads after every
 * step (and evaluation after every batch), so the run stops at a step's end, saves and says how
 * to continue; a second one exits at once (a save under way leaves the previous checkpoint, as
 * every interrupted save does). The handler does only what is async-signal-safe. */
static volatile sig_atomic_t interrupted; /* the signal that asked to stop, 0 if none */

/* One write per message: stderr is unbuffered and mpirun forwards each rank's writes as they come,
 * so a prefix written apart from its message can land between another rank's prefix and message. */
static int fail(const char *fmt, const char *msg)
{
    char body[1200], line[1300];
    snprintf(body, sizeof body, fmt, msg);
    if (zn_dist_size() > 1) snprintf(line, sizeof line, "[rank %d] %s\n", zn_dist_rank(), body);
    else snprintf(line, sizeof line, "%s\n", body);
    fputs(line, stderr);
    return 1;
}

/* train.data = folder(...): the image folder, converted to the model's image input. */
static bool load_folder(zn_run *R, const zn_node *img, bool need_train, char *err, size_t len)
{
    char dir[900];
    if (!zn_image_folder_root(R->o->data_dir, R->r->data_path, dir, sizeof dir)) {
        snprintf(err, len, "train.data = folder() names no folder: give it one, folder(\"DIR\"), or --data DIR");
        return false;
    }
    const int64_t *d = img->shape.dim;
    if (img->shape.rank != 3 || (d[0] != 1 && d[0] != 3) || d[1] > 4096 || d[2] > 4096) {
        snprintf(err, len, "model input '%s' must be [1 or 3, H, W] (H, W up to 4096) to read an image folder", img->name);
        return false;
    }
    int c = (int)d[0], h = (int)d[1], w = (int)d[2];
    return (!need_train || zn_image_folder_load(dir, true, c, h, w, R->r->data_fit, &R->train, err, len)) &&
           zn_image_folder_load(dir, false, c, h, w, R->r->data_fit, &R->test, err, len);
}

/* Loads the data set the recipe names and checks it against the model's image input and class
 * count and against the recipe (limits, full batches, drop_last). It runs before the session is
 * made: a refusal here costs no graph passes, no plan and none of the batch's memory. */
/* A data set found by name (cifar10, fashion_mnist) or npy arrays, in --data, the recipe's
 * npy(path) or the data folders (zn_data_dir_resolve). */
static bool load_named(zn_run *R, bool pad, bool need_train, char *err, size_t len)
{
    char dir[900];
    const char *given = R->o->data_dir && R->o->data_dir[0] ? R->o->data_dir : R->r->npy.path;
    const bool npy = strcmp(R->r->data, "npy") == 0;
    if (!zn_data_dir_resolve(given, R->r->data, dir, sizeof dir)) {
        if (snprintf(err, len, "data set %s not found; %s %s (see %s%s%sdocs/data.md)", R->r->data,
                     npy ? "give npy(\"PATH\") or --data PATH, or put the arrays in" : "put it in", dir,
                     npy ? "" : "`znet data get ", npy ? "" : R->r->data, npy ? "" : "` and ") >= (int)len)
            err[len - 1] = '\0';
        return false;
    }
    for (int train = need_train; train >= 0; train--) {
        zn_dataset *ds = train ? &R->train : &R->test;
        if (npy ? !zn_npy_load(dir, train, R->r->npy.nchw, R->r->npy.classes, ds, err, len)
                : !zn_dataset_load(R->r->data, dir, train, pad, ds, err, len))
            return false;
    }
    return true;
}

static bool load_data(zn_run *R, const zn_node *img, bool need_train, char *err, size_t len)
{
    bool pad = img->shape.rank == 3 && img->shape.dim[1] == 32;
    if (strcmp(R->r->data, "folder") == 0 ? !load_folder(R, img, need_train, err, len)
                                           : !load_named(R, pad, need_train, err, len))
        return false;
    const zn_dataset *ds = &R->test;
    if (img->shape.rank != 3 || img->shape.dim[0] != ds->c || img->shape.dim[1] != ds->h ||
        img->shape.dim[2] != ds->w) {
        char buf[64];
        snprintf(err, len, "model input '%s' is %s but %s images are [%d, %d, %d]%s", img->name,
                 zn_shape_str(&img->shape, buf, sizeof buf), R->r->data, ds->c, ds->h, ds->w,
                 img->shape.dim[0] != ds->c ? "; the models in models/ take --set channels=" : "");
        if (img->shape.dim[0] != ds->c) snprintf(err + strlen(err), len - strlen(err), "%d", ds->c);
        return false;
    }
    if (R->classes != ds->n_classes) {
        snprintf(err, len, "the model's label has %d classes but %s has %d", R->classes, R->r->data, ds->n_classes);
        return false;
    }
    if (R->o->limit > 0 && need_train && R->o->limit < R->train.n) R->train.n = R->o->limit;
    if (R->o->test_limit > 0 && R->o->test_limit < R->test.n) R->test.n = R->o->test_limit;
    if (need_train && R->train.n < R->r->batch) {
        snprintf(err, len, "%d training examples make no full batch of %d", R->train.n, R->r->batch);
        return false;
    }
    if (need_train && !R->r->drop_last && R->train.n % R->r->batch) {
        snprintf(err, len, "train.drop_last = false is not supported yet: the memory plan is made for one "
                           "batch size, and %d examples leave a last batch of %d (set train.drop_last = true, "
                           "or --limit to a multiple of %d)",
                 R->train.n, R->train.n % R->r->batch, R->r->batch);
        return false;
    }
    return true;
}

/* The model's image input, its class count and whether it has a head, read from the graph as
 * loaded (zn_session_find_io, as the session will): its forward nodes are the session's. */
static const zn_node *model_inputs(const zn_graph *g, int *classes)
{
    int image, label, heads[64], n_heads;
    zn_session_find_io(g, g->n_nodes, &image, &label, heads, &n_heads);
    *classes = label >= 0 ? g->nodes[label].attr.out : -1;
    return image >= 0 && n_heads > 0 && *classes > 0 ? &g->nodes[image] : NULL;
}

bool zn_train_load_test(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, zn_dataset *test,
                        char *err, size_t len)
{
    zn_run R = {.o = o, .r = r};
    const zn_node *img = model_inputs(g, &R.classes);
    if (!img) {
        snprintf(err, len, "the model needs an image input, a class input and a head");
        return false;
    }
    bool ok = load_data(&R, img, false, err, len);
    *test = R.test;
    if (!ok) zn_dataset_free(test);
    return ok;
}

/* --sync-bn reaches the CPU backend's batch-norm kernels, not cuDNN's (the CPU backend refuses
 * the fused nodes that keep their own statistics, so their passes leave them apart): false after
 * saying so. */
static bool sync_bn_possible(const zn_run_opts *o)
{
    if (!o->backend_opts.bn_sync || strcmp(o->backend->name, "cpu") == 0) return true;
    fail("znet: --sync-bn %s", "runs on the cpu backend only (cuDNN's batch norm keeps its statistics per rank)");
    return false;
}

/* The gradient bucket's size: ZNET_BUCKET_MB MiB, 25 (PyTorch DDP's) by default; 0 when the
 * variable is not a positive number. */
static size_t bucket_bytes(void)
{
    const char *v = getenv("ZNET_BUCKET_MB");
    char *end;
    double mb = v ? strtod(v, &end) : 25;
    return v && (end == v || *end || !(mb > 0 && mb < 1e6)) ? 0 : (size_t)(mb * (1 << 20)) + 1;
}

static bool run_init(zn_run *R, const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, bool training)
{
    memset(R, 0, sizeof *R);
    R->o = o;
    R->r = r;
    R->rank = zn_dist_rank();
    R->ranks = zn_dist_size();
    R->batch = r->batch / R->ranks;
    char err[1024];
    if (r->batch % R->ranks) {
        snprintf(err, sizeof err, "the batch of %d does not split evenly over %d ranks: give a --batch that %d "
                                  "divides (the recipe's batch is the global one; docs/distributed.md)",
                 r->batch, R->ranks, R->ranks);
        fail("znet: %s", err);
        return false;
    }
    const zn_node *img = model_inputs(g, &R->classes);
    if (!img) {
        fail("znet: %s", "the model needs an image input, a class input and a head to train");
        return false;
    }
    if (!load_data(R, img, training, err, sizeof err)) {
        fail("znet: %s", err);
        return false;
    }
    if (!zn_session_init(&R->s, g, o->backend, &o->backend_opts, R->batch, training)) {
        fail("znet: %s", R->s.err);
        return false;
    }
    assert(R->s.image >= 0 && R->s.label >= 0 && R->s.n_heads > 0 &&
           R->s.graph.nodes[R->s.label].attr.out == R->classes);
    R->vote = g->n_metrics > 0;
    for (int h = 0; h < R->s.n_heads && h < ZN_MAX_HEADS; h++) {
        R->head_names[h] = R->s.graph.nodes[R->s.heads[h]].name;
        R->logits[h] = zn_malloc(sizeof(float) * R->batch * R->classes);
    }
    if (training && zn_dist_active() && !bucket_bytes()) {
        fail("znet: ZNET_BUCKET_MB=%s is not a number of MiB above 0", getenv("ZNET_BUCKET_MB"));
        return false;
    }
    if (training && zn_dist_active() && !zn_grad_sync_init(&R->sync, &R->s, bucket_bytes())) {
        fail("znet: %s", R->s.err);
        return false;
    }
    return true;
}

static void run_free(zn_run *R)
{
    for (int h = 0; h < ZN_MAX_HEADS; h++) free(R->logits[h]);
    zn_grad_sync_free(&R->sync);
    zn_dataset_free(&R->train);
    zn_dataset_free(&R->test);
    if (R->log) fclose(R->log);
    zn_session_free(&R->s);
}

/* The sums of every rank's metrics, on every rank. */
static void metrics_reduce(zn_metrics *m)
{
    zn_dist_sum_long(&m->total, 1);
    zn_dist_sum_long(m->correct, m->n_heads);
    zn_dist_sum_long(&m->vote_correct, 1);
    zn_dist_sum_long(m->confusion, m->classes * m->classes);
}

/* Test-set accuracy of every head and the vote (into m, initialised here). Each rank evaluates
 * every ranks-th batch of the session's size and the counts are summed. */
static bool evaluate(zn_run *R, zn_metrics *m)
{
    zn_metrics_init(m, R->s.n_heads, R->classes, R->vote);
    zn_recipe er = *R->r;
    er.batch = R->batch;
    er.drop_last = false;
    zn_batcher b;
    char err[512];
    if (!zn_batcher_init(&b, &R->test, &er, false, 0, err, sizeof err)) {
        if (R->ranks > 1) zn_dist_abort(1, err);
        fail("znet: %s", err);
        return false;
    }
    size_t img_floats = R->s.plan.bytes[R->s.image] / sizeof(float);
    float *pad_img = zn_calloc(img_floats, sizeof *pad_img);
    int32_t *pad_lab = zn_calloc(R->batch, sizeof *pad_lab);
    float *images;
    int32_t *labels;
    int n;
    bool ok = true;
    for (long k = 0; ok && !interrupted && zn_batcher_next(&b, &images, &labels, &n); k++) {
        if (k % R->ranks != R->rank) continue;
        if (n < R->batch) { /* the last partial batch: pad it to the planned size */
            memcpy(pad_img, images, img_floats / R->batch * n * sizeof *pad_img);
            memcpy(pad_lab, labels, sizeof *pad_lab * n);
            images = pad_img, labels = pad_lab;
        }
        ok = zn_session_feed(&R->s, images, labels) && zn_session_forward(&R->s, false);
        for (int h = 0; ok && h < R->s.n_heads; h++) ok = zn_session_logits(&R->s, h, R->logits[h]);
        if (ok) zn_metrics_add(m, (const float *const *)R->logits, labels, n);
    }
    if (!ok && R->ranks > 1) zn_dist_abort(1, R->s.err); /* the others wait in the sum below */
    if (!ok) fail("znet: evaluation failed: %s", R->s.err);
    free(pad_img);
    free(pad_lab);
    zn_batcher_free(&b);
    if (ok) metrics_reduce(m);
    return ok;
}

static void progress_bar(int epoch, int epochs, int step, int steps, double loss, double rate, double eta)
{
    int width = 24, done = steps ? step * width / steps : width;
    fprintf(stderr, "\r  epoch %d/%d [", epoch, epochs);
    for (int i = 0; i < width; i++) fputc(i < done ? '=' : i == done ? '>' : ' ', stderr);
    fprintf(stderr, "] %3d%%  %7.1f img/s  loss %.4f  ETA %d:%02d ", steps ? step * 100 / steps : 100, rate, loss,
            (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

static void log_header(zn_run *R)
{
    if (!R->log) return;
    if (R->csv) {
        fprintf(R->log, "epoch,step,lr,train_loss,train_acc");
        for (int h = 0; h < R->s.n_heads; h++) fprintf(R->log, ",test_acc_%s", R->head_names[h]);
        if (R->vote) fprintf(R->log, ",test_acc_vote");
        fprintf(R->log, ",time,img_per_s\n");
        return;
    }
    int64_t params = zn_graph_param_count(&R->s.graph); /* summary's count: `sweep --adopt` matches them */
    json_t *heads = json_array();
    for (int h = 0; h < R->s.n_heads; h++) json_array_append_new(heads, zn_json_text(R->head_names[h]));
    zn_json_write_line(R->log, json_pack("{s:s, s:o, s:o, s:I, s:i, s:i, s:o, s:I, s:o, s:b}",
                                         "type", "run", "model", zn_json_text(R->s.graph.model_name),
                                         "file", zn_json_text(R->o->file ? R->o->file : ""),
                                         "params", (json_int_t)params, "batch", R->r->batch, "epochs", R->r->epochs,
                                         "data", zn_json_text(R->r->data), "seed", (json_int_t)R->r->seed,
                                         "heads", heads, "vote", R->vote));
    fflush(R->log);
}

/* An object of every head's accuracy (and the vote's) from acc(head), head -1 = vote. */
static json_t *json_heads(const zn_run *R, double (*acc)(const void *, int), const void *ctx)
{
    json_t *o = json_object();
    for (int h = 0; h < R->s.n_heads; h++)
        json_object_set_new(o, R->head_names[h], zn_json_number(acc(ctx, h), "%.6g"));
    if (R->vote) json_object_set_new(o, "vote", zn_json_number(acc(ctx, -1), "%.6g"));
    return o;
}

static double metrics_acc(const void *m, int h) { return zn_metrics_acc(m, h); }
static double best_acc(const void *R, int h) { return ((const zn_run *)R)->best[h < 0 ? ZN_MAX_HEADS : h]; }

/* A "step" record after step `step` (--log-every): the batch's loss per example and the lr, at
 * x = epochs completed (a fraction), the axis the epoch records are plotted on. */
static void log_step(zn_run *R, long step, int steps_per_epoch, float lr, double loss)
{
    if (!R->log || R->csv) return;
    zn_json_write_line(R->log, json_pack("{s:s, s:o, s:I, s:o, s:o}", "type", "step",
                                         "epoch", zn_json_number((double)step / steps_per_epoch, "%.6g"),
                                         "step", (json_int_t)step, "lr", zn_json_number(lr, "%.6g"),
                                         "loss", zn_json_number(loss, "%.6g")));
}

static void log_epoch(zn_run *R, int epoch, long step, float lr, double loss, double acc, const zn_metrics *m,
                      double elapsed, double rate)
{
    /* the plain line, always */
    /* the train accuracy is the last head's (train_epoch): named, as the test accuracies are */
    const char *acc_head = R->head_names[R->s.n_heads - 1];
    printf("epoch %2d/%d  lr %.4g  train loss %.4f acc %s %.4f  test", epoch, R->r->epochs, lr, loss, acc_head, acc);
    for (int h = 0; h < R->s.n_heads; h++) printf(" %s %.4f", R->head_names[h], zn_metrics_acc(m, h));
    if (R->vote) printf(" vote %.4f", zn_metrics_acc(m, -1));
    printf("  %.1fs  %.0f img/s\n", elapsed, rate);
    fflush(stdout);
    if (!R->log) return;
    if (R->csv) {
        fprintf(R->log, "%d,%ld,%g,%.6f,%.6f", epoch, step, lr, loss, acc);
        for (int h = 0; h < R->s.n_heads; h++) fprintf(R->log, ",%.6f", zn_metrics_acc(m, h));
        if (R->vote) fprintf(R->log, ",%.6f", zn_metrics_acc(m, -1));
        fprintf(R->log, ",%.3f,%.1f\n", elapsed, rate);
    } else {
        zn_json_write_line(R->log, json_pack("{s:s, s:i, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                             "type", "epoch", "epoch", epoch, "step", (json_int_t)step,
                                             "lr", zn_json_number(lr, "%.6g"), "train_loss", zn_json_number(loss, "%.6g"),
                                             "train_acc", zn_json_number(acc, "%.6g"),
                                             "train_acc_head", zn_json_text(acc_head),
                                             "test_acc", json_heads(R, metrics_acc, m),
                                             "time", zn_json_number(elapsed, "%.3f"),
                                             "img_per_s", zn_json_number(rate, "%.1f")));
    }
    fflush(R->log);
}

/* The elapsed time of the last epoch a log holds (the last "time" field of a JSON log, whose step
 * records after it have none; CSV: the last line's column before img_per_s), 0 when there is none: a resumed run's times continue from it. false when it
 * is not a number of seconds a run can have taken (continuing from nan or 1e308 would write
 * lines no JSON reader takes). */
static bool last_logged_time(FILE *f, bool csv, double *out)
{
    char line[4096], last[4096] = "";
    rewind(f);
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n' && (csv || strstr(line, "\"time\":"))) memcpy(last, line, sizeof last);
    fseek(f, 0, SEEK_END);
    const char *t = NULL;
    if (csv) {
        char *c = strrchr(last, ',');
        if (c) *c = 0, t = strrchr(last, ',');
        t = t ? t + 1 : NULL;
    } else {
        t = strstr(last, "\"time\":");
        t = t ? t + 7 : NULL;
    }
    *out = t ? strtod(t, NULL) : 0.0;
    return zn_log_time_ok(*out);
}

/* A new run writes its log afresh; a resumed one appends to the log it is given, so the
 * epochs before the checkpoint stay in it: *appending says whether it does (the log already has
 * lines), *elapsed_before the time its last epoch logged. false when the log cannot be opened. */
static bool open_log(zn_run *R, bool resume, double *elapsed_before, bool *appending)
{
    const char *p = R->o->log_path;
    *elapsed_before = 0;
    *appending = false;
    if (!p) return true;
    size_t n = strlen(p);
    R->csv = n > 4 && strcmp(p + n - 4, ".csv") == 0;
    R->log = resume ? fopen(p, "a+") : NULL;
    if (R->log) {
        if (!last_logged_time(R->log, R->csv, elapsed_before)) {
            fprintf(stderr, "znet: %s: the time on its last line (%g) is not a number of seconds; "
                            "give the resumed run another --log\n", p, *elapsed_before);
            return false;
        }
        *appending = ftell(R->log) > 0;
        return true;
    }
    R->log = fopen(p, "w");
    if (!R->log) {
        fprintf(stderr, "znet: cannot write log %s: %m\n", p);
        return false;
    }
    return true;
}

static bool save(zn_run *R, int epoch, long step, char *err, size_t len)
{
    if (!R->o->save_path) return true;
    size_t np = zn_session_param_floats(&R->s), no = R->s.plan.region_bytes[ZN_REGION_OPTIM] / sizeof(float);
    float *p = zn_malloc(sizeof *p * (np + 1)), *q = zn_malloc(sizeof *q * (no + 1));
    bool ok = zn_session_get_params(&R->s, p) &&
              R->s.be->ops->get(R->s.be, ZN_REGION_OPTIM, 0, q, no * sizeof *q);
    if (!ok) snprintf(err, len, "%s", R->s.err[0] ? R->s.err : R->s.be->ops->last_error(R->s.be));
    zn_ckpt_meta m = {R->s.fingerprint, epoch, step, R->r->seed, np, no, ZN_CKPT_VERSION};
    if (ok) ok = zn_ckpt_save(R->o->save_path, &m, p, q, err, len);
    free(p);
    free(q);
    return ok;
}

static zn_optim_step step_at(const zn_run *R, long step, int steps_per_epoch)
{
    const zn_recipe *r = R->r;
    double t = (double)step / steps_per_epoch;
    /* Page's convention: with a summed loss, weight decay is given per example (x batch) */
    bool summed = R->s.graph.nodes[R->s.heads[0]].attr.reduction == ZN_REDUCE_SUM;
    zn_optim_step s = {
        .kind = r->optimizer.kind == ZN_OPTIM_ADAM ? ZN_STEP_ADAM : ZN_STEP_SGD,
        .lr = zn_schedule_at(&r->lr, t, r->epochs, r->batch),
        .momentum = r->has_momentum_schedule ? zn_schedule_at(&r->momentum, t, r->epochs, r->batch)
                                             : r->optimizer.momentum,
        .nesterov = r->optimizer.nesterov,
        .weight_decay = r->optimizer.weight_decay * (summed ? r->batch : 1),
        .beta1 = r->optimizer.beta1, .beta2 = r->optimizer.beta2, .eps = r->optimizer.eps,
        .t = step + 1,
    };
    return s;
}

/* The log and the checkpoint must not be written over the model file, the checkpoint the run
 * resumes from (the log is appended to) or each other; false after saying which. */
static bool outputs_apart(const zn_run_opts *o)
{
    const char *opt = NULL, *path = NULL, *what = NULL;
    if (zn_same_file(o->log_path, o->file)) opt = "--log", path = o->log_path, what = "the model file";
    else if (zn_same_file(o->save_path, o->file)) opt = "--save", path = o->save_path, what = "the model file";
    else if (zn_same_file(o->log_path, o->resume)) opt = "--log", path = o->log_path, what = "the --resume checkpoint";
    else if (zn_same_file(o->log_path, o->save_path)) opt = "--log", path = o->log_path, what = "the --save checkpoint";
    if (!opt) return true;
    fprintf(stderr, "znet: %s %s is %s: it would be written over; give it another file\n", opt, path, what);
    return false;
}

/* Whether path can be written without changing what it holds now: an existing file is opened
 * for writing without truncation; a missing one is created and removed. errno tells why not. */
static bool can_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno != ENOENT) return false;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    close(fd);
    unlink(path);
    return true;
}

/* --save and --log are checked before the data is read and the first step is taken, so that a
 * bad path is found at once, not after an epoch of training; nothing already there is touched.
 * A checkpoint is replaced by renaming CKPT.tmp over it, so for --save it is the folder that
 * must take a new file. */
static bool outputs_writable(const zn_run_opts *o)
{
    const char *flags[2] = {"--save", "--log"}, *paths[2] = {o->save_path, o->log_path};
    for (int k = 0; k < 2; k++) {
        const char *p = paths[k];
        char probe[4096], dir[4096];
        struct stat st;
        if (!p) continue;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "znet: %s %s is a folder; give a file name\n", flags[k], p);
            return false;
        }
        if (snprintf(probe, sizeof probe, k == 0 ? "%s.tmp" : "%s", p) >= (int)sizeof probe) {
            fprintf(stderr, "znet: %s: the path is too long\n", flags[k]);
            return false;
        }
        if (can_write(probe)) continue;
        int e = errno;
        zn_folder_of(p, dir, sizeof dir);
        if (stat(dir, &st) != 0)
            fprintf(stderr, "znet: %s %s: the folder %s does not exist\n", flags[k], p, dir);
        else if (!S_ISDIR(st.st_mode))
            fprintf(stderr, "znet: %s %s: %s is not a folder\n", flags[k], p, dir);
        else
            fprintf(stderr, "znet: %s %s: cannot write there: %s\n", flags[k], p, strerror(e));
        return false;
    }
    return true;
}

static void on_interrupt(int sig)
{
    static const char again[] = "\nznet: interrupted again: stopping at once\n";
    static const char first[] = "\nznet: interrupted: finishing the step, then saving "
                                "(interrupt again to stop at once)\n";
    if (interrupted) {
        (void)!write(STDERR_FILENO, again, sizeof again - 1);
        _exit(128 + sig);
    }
    interrupted = sig;
    (void)!write(STDERR_FILENO, first, sizeof first - 1);
}

static void interrupts_catch(struct sigaction old[2])
{
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
}

static void interrupts_release(const struct sigaction old[2])
{
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}

/* After an interrupt at a step's end: a checkpoint of where the run stands (epoch: epochs
 * completed; step: steps taken, which may be mid-epoch) and the command that continues it.
 * Returns the exit code: 128 + the signal's number, or 1 when the save fails. */
static int stop_interrupted(zn_run *R, int epoch, long step, int steps_per_epoch)
{
    char err[1024];
    int sig = interrupted;
    if (R->rank > 0) return 128 + sig; /* rank 0 saves and says so */
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    long into = step - (long)epoch * steps_per_epoch;
    char where[128];
    if (step == 0) snprintf(where, sizeof where, "before the first step");
    else if (into)
        snprintf(where, sizeof where, "after step %ld (%ld of %d in epoch %d)", step, into, steps_per_epoch, epoch + 1);
    else snprintf(where, sizeof where, "after step %ld (the end of epoch %d)", step, epoch);
    if (R->log) fflush(R->log);
    if (!R->o->save_path) {
        fprintf(stderr, "znet: stopped by %s %s; nothing was saved (--no-save)\n", name, where);
        return 128 + sig;
    }
    if (!save(R, epoch, step, err, sizeof err)) {
        fail("znet: %s", err);
        return 1;
    }
    fprintf(stderr, "znet: stopped by %s %s; saved %s\ncontinue with:\n  ", name, where, R->o->save_path);
    if (R->o->resume_command) fprintf(stderr, "%s\n", R->o->resume_command);
    else fprintf(stderr, "the same command with --resume %s\n", R->o->save_path);
    return 128 + sig;
}

/* Continues from R->o->resume: parameters, optimizer state and where that run stood: *epoch
 * epochs completed, *first steps of the next one taken (a checkpoint saved on an interrupt),
 * *step steps in all. false after saying what does not fit. */
static bool resume_from(zn_run *R, int steps_per_epoch, int *epoch, int *first, long *step)
{
    const char *path = R->o->resume;
    char err[1024];
    zn_ckpt_meta m;
    bool ok = zn_session_restore(&R->s, path, true, &m, err, sizeof err);
    long into = ok ? (long)(m.step - (int64_t)m.epoch * steps_per_epoch) : 0;
    if (ok && m.seed != R->r->seed) {
        snprintf(err, sizeof err, "%s was trained with seed %llu; resume with --seed %llu", path,
                 (unsigned long long)m.seed, (unsigned long long)m.seed);
        ok = false;
    } else if (ok && m.epoch >= R->r->epochs) { /* else the run would train nothing and exit 0 */
        snprintf(err, sizeof err, "%s is after epoch %d; the run has %d epochs: nothing left to train "
                                  "(raise --epochs to continue it)", path, m.epoch, R->r->epochs);
        ok = false;
    } else if (ok && (into < 0 || into > steps_per_epoch)) { /* its schedule and data order would not fit */
        snprintf(err, sizeof err, "%s is at step %lld after %d epochs, which does not fit this run's %d steps "
                                  "per epoch: resume with the batch, --limit and data set it was trained with",
                 path, (long long)m.step, m.epoch, steps_per_epoch);
        ok = false;
    }
    if (!ok) return fail("znet: %s", err) == 0;
    *epoch = m.epoch;
    *first = (int)into;
    *step = (long)m.step;
    if (into) printf("resumed from %s in epoch %d after its step %ld of %d (step %ld)\n", path, m.epoch + 1, into,
                     steps_per_epoch, *step);
    else printf("resumed from %s after epoch %d (step %ld)\n", path, m.epoch, *step);
    return true;
}

typedef struct {
    double loss_sum;
    long seen, correct;
    float lr;
} epoch_sums;

/* Whether the run stops here: on one rank, whether an interrupt came; on several, whether one
 * came to any rank (a collective every rank reaches at the same point), the signal then being
 * the largest any rank got. */
static bool stop_agreed(const zn_run *R)
{
    if (R->ranks > 1) interrupted = zn_dist_max(interrupted);
    return interrupted != 0;
}

/* The correct answers of the last head among the step's n rows (logits read into R->logits). */
static long count_correct(const zn_run *R, const int32_t *labels, int n)
{
    long correct = 0;
    for (int i = 0; i < n; i++) {
        const float *row = R->logits[R->s.n_heads - 1] + (size_t)i * R->classes;
        int best = 0;
        for (int c = 1; c < R->classes; c++)
            if (row[c] > row[best]) best = c;
        correct += best == labels[i];
    }
    return correct;
}

/* One training step on this rank's rows of the global batch: its loss and correct answers
 * summed over every rank into fig[0], fig[1]. A failure ends the job on several ranks (the
 * others are in the gradient sum); on one, false after saying why. */
static bool train_step(zn_run *R, const float *images, const int32_t *labels, const zn_optim_step *st,
                       double fig[2])
{
    size_t per_image = R->s.plan.bytes[R->s.image] / sizeof(float) / R->batch;
    images += per_image * R->batch * R->rank;
    labels += (size_t)R->batch * R->rank;
    bool ok = zn_session_feed(&R->s, images, labels) && zn_session_train_step(&R->s, st) &&
              zn_session_loss(&R->s, &fig[0]) && zn_session_logits(&R->s, R->s.n_heads - 1, R->logits[R->s.n_heads - 1]);
    if (!ok && R->ranks > 1) {
        char why[1100];
        snprintf(why, sizeof why, "training step failed: %s", R->s.err);
        zn_dist_abort(1, why);
    }
    if (!ok) return fail("znet: training step failed: %s", R->s.err) == 0;
    fig[1] = (double)count_correct(R, labels, R->batch);
    zn_dist_sum(fig, 2);
    return true;
}

/* The training steps of one epoch from its batch `first` on (those before were taken before the
 * checkpoint this run resumed from: their batches are drawn and dropped, so the rest come out as
 * in an uninterrupted run). Stops early after the step during which an interrupt came. */
static bool train_epoch(zn_run *R, int epoch, int first, long *step, int steps_per_epoch, epoch_sums *e)
{
    zn_recipe tr = *R->r;
    tr.drop_last = true; /* (load_data refused drop_last = false unless the batches come out whole) */
    zn_batcher b;
    char err[512];
    if (!zn_batcher_init(&b, &R->train, &tr, true, epoch, err, sizeof err)) return fail("znet: %s", err) == 0;
    double t0 = zn_seconds();
    float *images;
    int32_t *labels;
    int n, k = 0;
    bool ok = true, stop = false;
    while (k < first && zn_batcher_next(&b, &images, &labels, &n)) k++;
    while (ok && !stop && zn_batcher_next(&b, &images, &labels, &n)) {
        zn_optim_step st = step_at(R, *step, steps_per_epoch);
        e->lr = st.lr;
        double fig[2];
        if (!(ok = train_step(R, images, labels, &st, fig))) break;
        double loss = fig[0];
        stop = stop_agreed(R);
        if (!isfinite(loss)) {
            fprintf(stderr, "\nznet: the loss became %f at epoch %d step %ld; rerun with --check-numerics "
                            "to find the node\n", loss, epoch + 1, *step);
            ok = false;
            break;
        }
        e->loss_sum += loss;
        e->correct += (long)fig[1];
        e->seen += n;
        ++*step;
        k++;
        if (R->o->log_every && *step % R->o->log_every == 0) log_step(R, *step, steps_per_epoch, st.lr, loss / n);
        double dt = zn_seconds() - t0;
        if (R->o->progress)
            progress_bar(epoch + 1, R->r->epochs, k, steps_per_epoch, e->loss_sum / e->seen, e->seen / dt,
                         dt / (k - first) * (steps_per_epoch - k));
    }
    zn_batcher_free(&b);
    return ok;
}

/* The last epoch's closing lines: last and best accuracy, times, memory. */
static void report_final(zn_run *R, const zn_metrics *m, double total, double train_time, long images_seen)
{
    printf("\nfinal: test accuracy (last / best)");
    for (int h = 0; h < R->s.n_heads; h++)
        printf("  %s %.4f / %.4f", R->head_names[h], zn_metrics_acc(m, h), R->best[h]);
    if (R->vote) printf("  vote %.4f / %.4f", zn_metrics_acc(m, -1), R->best[ZN_MAX_HEADS]);
    size_t hw = R->s.be->ops->arena_high_water ? R->s.be->ops->arena_high_water(R->s.be) : 0;
    double rate = images_seen / (train_time > 0 ? train_time : 1);
    char a[32], c[32];
    printf("\n       %.1f s total, %.1f s training, %.0f img/s; memory planned %s, arena high-water %s\n", total,
           train_time, rate, zn_format_bytes(zn_plan_total(&R->s.plan), a, sizeof a), zn_format_bytes(hw, c, sizeof c));
    const zn_grad_sync *g = &R->sync;
    if (g->steps && g->nccl_sum)
        printf("       all-reduce on %d ranks: %.2f MiB of gradients per step in %d bucket%s, by NCCL on the GPU\n",
               R->ranks, g->floats * sizeof(float) / 1048576.0, g->n_buckets, g->n_buckets == 1 ? "" : "s");
    else if (g->steps) /* the gradient sums, on rank 0 (docs/distributed.md, "Measured") */
        printf("       all-reduce on %d ranks: %.2f MiB of gradients per step in %d bucket%s; per step %.2f ms "
               "from the first bucket's start to the last one's end, %.2f ms of it waited after backward\n",
               R->ranks, g->floats * sizeof(float) / 1048576.0, g->n_buckets, g->n_buckets == 1 ? "" : "s",
               1e3 * g->in_flight_s / g->steps, 1e3 * g->waited_s / g->steps);
    if (R->log && !R->csv) {
        zn_json_write_line(R->log, json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:o}",
                                             "type", "final", "time", zn_json_number(total, "%.3f"),
                                             "train_time", zn_json_number(train_time, "%.3f"),
                                             "img_per_s", zn_json_number(rate, "%.1f"),
                                             "planned_bytes", (json_int_t)zn_plan_total(&R->s.plan),
                                             "high_water_bytes", (json_int_t)hw, "best", json_heads(R, best_acc, R)));
    }
}

/* Whether every rank got this far (a collective on several ranks): a rank that failed has said
 * why, and the others leave with it. */
static bool all_ok(bool ok)
{
    return zn_dist_max(!ok) == 0;
}

/* Rank 0's tensors of a region (parameters and batch-norm state, or optimizer state) to every
 * rank. A failure ends the job: the other ranks are in the broadcast. */
static void share_region(zn_run *R, zn_region region)
{
    size_t bytes = R->s.plan.region_bytes[region];
    char *v = zn_malloc(bytes + 1);
    zn_backend *be = R->s.be;
    bool ok = be->ops->get(be, region, 0, v, bytes);
    zn_dist_bcast(v, bytes);
    if (!ok || !be->ops->set(be, region, 0, v, bytes)) zn_dist_abort(1, be->ops->last_error(be));
    free(v);
}

/* The start of training, the same on every rank: rank 0's parameters, optimizer state and
 * position (fresh, or resumed from the checkpoint only rank 0 reads). */
static void share_start(zn_run *R, int *epoch, int *first, long *step)
{
    long at[3] = {*epoch, *first, *step};
    zn_dist_bcast(at, sizeof at);
    *epoch = (int)at[0], *first = (int)at[1], *step = at[2];
    share_region(R, ZN_REGION_PARAMS);
    share_region(R, ZN_REGION_OPTIM);
}

int zn_train_run(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o)
{
    zn_run R;
    char err[1024];
    zn_run_opts own = *o; /* rank 0 alone reads the checkpoint it resumes from and writes */
    if (zn_dist_rank() > 0) own.log_path = own.save_path = own.resume = NULL, own.progress = false;
    if (o->sync_bn && zn_dist_size() > 1) own.backend_opts.bn_sync = zn_dist_sum;
    o = &own;
    bool ok = outputs_apart(o) && outputs_writable(o) && sync_bn_possible(o), made = ok;
    if (ok) ok = run_init(&R, g, r, o, true);
    int steps_per_epoch = ok ? zn_batches_per_epoch(R.train.n, r->batch, true) : 0;
    int start_epoch = 0, first = 0;
    long step = 0;
    double elapsed_before = 0;
    bool appending = false;
    if (ok && !(ok = zn_session_init_params(&R.s, r->seed))) fail("znet: %s", R.s.err);
    if (ok && o->resume) ok = resume_from(&R, steps_per_epoch, &start_epoch, &first, &step);
    if ((ok = all_ok(ok)) && zn_dist_active()) {
        share_start(&R, &start_epoch, &first, &step);
        /* each rank's dropout masks over its own rows: keyed by a seed of its own */
        if (R.rank > 0) R.s.seed = zn_rng_derive(r->seed, (uint64_t)R.rank);
    }
    /* the log is opened last: a run refused before this point leaves an earlier log as it was */
    if (!all_ok(ok && open_log(&R, o->resume != NULL, &elapsed_before, &appending))) {
        if (made) run_free(&R);
        return 1;
    }
    struct sigaction old[2];
    interrupts_catch(old); /* before the line below, which tells a script that it may interrupt */
    char mem[32], ranks[64] = "";
    if (R.ranks > 1) snprintf(ranks, sizeof ranks, " (%d on each of %d ranks)", R.batch, R.ranks);
    printf("training %s: %d train / %d test examples of %s, batch %d%s, %d steps per epoch, %d epochs, "
           "planned memory %s\n",
           g->model_name, R.train.n, R.test.n, r->data, r->batch, ranks, steps_per_epoch, r->epochs,
           zn_format_bytes(zn_plan_total(&R.s.plan), mem, sizeof mem));
    fflush(stdout);
    if (!appending) log_header(&R);
    double t_start = zn_seconds() - elapsed_before, train_time = 0;
    long images_seen = 0;
    int rc = 0;
    for (int epoch = start_epoch; rc == 0 && epoch < r->epochs; epoch++) {
        epoch_sums e = {0};
        double t0 = zn_seconds();
        if (!train_epoch(&R, epoch, epoch == start_epoch ? first : 0, &step, steps_per_epoch, &e)) {
            rc = 1;
            break;
        }
        double dt = zn_seconds() - t0;
        train_time += dt;
        images_seen += e.seen;
        if (o->progress) fprintf(stderr, "\r%*s\r", 100, "");
        zn_metrics m = {0};
        bool stop = stop_agreed(&R);
        /* every rank evaluates rank 0's batch-norm statistics: the model that is saved */
        if (!stop && R.ranks > 1) share_region(&R, ZN_REGION_PARAMS);
        if (!stop && !evaluate(&R, &m)) rc = 1;
        if (rc == 0 && (stop || stop_agreed(&R))) rc = stop_interrupted(&R, epoch, step, steps_per_epoch);
        if (rc == 0) {
            for (int h = 0; h < R.s.n_heads; h++)
                if (zn_metrics_acc(&m, h) > R.best[h]) R.best[h] = zn_metrics_acc(&m, h);
            if (zn_metrics_acc(&m, -1) > R.best[ZN_MAX_HEADS]) R.best[ZN_MAX_HEADS] = zn_metrics_acc(&m, -1);
            /* a resumed epoch that had all its steps before the checkpoint has no train figures */
            double loss = e.seen ? e.loss_sum / e.seen : NAN, acc = e.seen ? (double)e.correct / e.seen : NAN;
            log_epoch(&R, epoch + 1, step, e.lr, loss, acc, &m, zn_seconds() - t_start, e.seen / dt);
            if (epoch + 1 == r->epochs) report_final(&R, &m, zn_seconds() - t_start, train_time, images_seen);
            if (!save(&R, epoch + 1, step, err, sizeof err)) rc = fail("znet: %s", err);
        }
        zn_metrics_free(&m);
        if (R.ranks > 1) rc = zn_dist_max(rc); /* rank 0's failed save ends every rank's run */
    }
    interrupts_release(old);
    run_free(&R);
    return rc;
}

int zn_train_eval(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, const char *weights)
{
    zn_run R;
    char err[1024];
    if (!all_ok(run_init(&R, g, r, o, false))) {
        run_free(&R);
        return 1;
    }
    zn_ckpt_meta meta;
    bool ok = zn_session_restore(&R.s, weights, false, &meta, err, sizeof err);
    if (!ok) fail("znet: %s", err);
    ok = all_ok(ok);
    zn_metrics m;
    if (ok && (ok = evaluate(&R, &m))) {
        printf("%s (%s after %d epochs) on %d %s test examples\n", g->model_name, weights, meta.epoch, R.test.n, r->data);
        for (int h = 0; h < R.s.n_heads; h++) printf("  head %-10s accuracy %.4f\n", R.head_names[h], zn_metrics_acc(&m, h));
        if (R.vote) printf("  vote            accuracy %.4f\n", zn_metrics_acc(&m, -1));
        printf("confusion matrix (rows: true class, columns: %s prediction)\n", R.vote ? "vote" : "last head");
        for (int i = 0; i < R.classes; i++) {
            printf("  %-10.10s", i < R.test.n_classes && R.test.class_names[i][0] ? R.test.class_names[i] : "");
            for (int j = 0; j < R.classes; j++) printf(" %5ld", m.confusion[i * R.classes + j]);
            printf("\n");
        }
        zn_metrics_free(&m);
    }
    run_free(&R);
    return ok ? 0 : 1;
}
