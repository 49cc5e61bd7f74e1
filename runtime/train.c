/* train.c: see train.h. One session (training graph, plan, backend) serves both training steps
 * and evaluation: evaluation runs the forward nodes only, with batch norm on its running
 * statistics, and pads the last partial test batch (padded rows are not counted). */
#include "runtime/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/batcher.h"
#include "runtime/checkpoint.h"
#include "runtime/dataset.h"
#include "runtime/json.h"
#include "runtime/metrics.h"
#include "runtime/plot.h"
#include "runtime/schedule.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "runtime/session.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

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
} zn_run;

static int fail(const char *fmt, const char *msg)
{
    fprintf(stderr, fmt, msg);
    fputc('\n', stderr);
    return 1;
}

/* Loads the data set the recipe names and checks it fits the model's inputs. */
static bool load_data(zn_run *R, bool need_train, char *err, size_t len)
{
    const zn_node *img = &R->s.graph.nodes[R->s.image];
    bool pad = img->shape.rank == 3 && img->shape.dim[1] == 32;
    char dir[900];
    if (!zn_data_dir_resolve(R->o->data_dir, R->r->data, dir, sizeof dir)) {
        if (snprintf(err, len, "data set %s not found; put it in %s (see `znet data get %s` and docs/data.md)",
                     R->r->data, dir, R->r->data) >= (int)len)
            err[len - 1] = '\0';
        return false;
    }
    if (need_train && !zn_dataset_load(R->r->data, dir, true, pad, &R->train, err, len)) return false;
    if (!zn_dataset_load(R->r->data, dir, false, pad, &R->test, err, len)) return false;
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
    if (need_train && !R->r->drop_last && R->train.n % R->r->batch) {
        snprintf(err, len, "train.drop_last = false is not supported yet: the memory plan is made for one "
                           "batch size, and %d examples leave a last batch of %d (set train.drop_last = true, "
                           "or --limit to a multiple of %d)",
                 R->train.n, R->train.n % R->r->batch, R->r->batch);
        return false;
    }
    if (need_train && R->train.n < R->r->batch) {
        snprintf(err, len, "%d training examples make no full batch of %d", R->train.n, R->r->batch);
        return false;
    }
    return true;
}

static bool run_init(zn_run *R, const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, bool training)
{
    memset(R, 0, sizeof *R);
    R->o = o;
    R->r = r;
    char err[1024];
    if (!zn_session_init(&R->s, g, o->backend, &o->backend_opts, r->batch, training)) {
        fail("znet: %s", R->s.err);
        return false;
    }
    if (R->s.image < 0 || R->s.label < 0 || R->s.n_heads == 0) {
        fail("znet: %s", "the model needs an image input, a class input and a head to train");
        return false;
    }
    R->classes = R->s.graph.nodes[R->s.label].attr.out;
    R->vote = g->n_metrics > 0;
    for (int h = 0; h < R->s.n_heads && h < ZN_MAX_HEADS; h++) {
        R->head_names[h] = R->s.graph.nodes[R->s.heads[h]].name;
        R->logits[h] = zn_malloc(sizeof(float) * r->batch * R->classes);
    }
    if (!load_data(R, training, err, sizeof err)) {
        fail("znet: %s", err);
        return false;
    }
    return true;
}

static void run_free(zn_run *R)
{
    for (int h = 0; h < ZN_MAX_HEADS; h++) free(R->logits[h]);
    zn_dataset_free(&R->train);
    zn_dataset_free(&R->test);
    if (R->log) fclose(R->log);
    zn_session_free(&R->s);
}

/* Test-set accuracy of every head and the vote (into m, initialised here). */
static bool evaluate(zn_run *R, zn_metrics *m)
{
    zn_metrics_init(m, R->s.n_heads, R->classes, R->vote);
    zn_recipe er = *R->r;
    er.drop_last = false;
    zn_batcher b;
    char err[512];
    if (!zn_batcher_init(&b, &R->test, &er, false, 0, err, sizeof err)) {
        fail("znet: %s", err);
        return false;
    }
    size_t img_floats = R->s.plan.bytes[R->s.image] / sizeof(float);
    float *pad_img = zn_calloc(img_floats, sizeof *pad_img);
    int32_t *pad_lab = zn_calloc(R->r->batch, sizeof *pad_lab);
    float *images;
    int32_t *labels;
    int n;
    bool ok = true;
    while (ok && zn_batcher_next(&b, &images, &labels, &n)) {
        if (n < R->r->batch) { /* the last partial batch: pad it to the planned size */
            memcpy(pad_img, images, img_floats / R->r->batch * n * sizeof *pad_img);
            memcpy(pad_lab, labels, sizeof *pad_lab * n);
            images = pad_img, labels = pad_lab;
        }
        ok = zn_session_feed(&R->s, images, labels) && zn_session_forward(&R->s, false);
        for (int h = 0; ok && h < R->s.n_heads; h++) ok = zn_session_logits(&R->s, h, R->logits[h]);
        if (ok) zn_metrics_add(m, (const float *const *)R->logits, labels, n);
    }
    if (!ok) fail("znet: evaluation failed: %s", R->s.err);
    free(pad_img);
    free(pad_lab);
    zn_batcher_free(&b);
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
    int64_t params = 0;
    for (int i = 0; i < R->s.n_forward; i++)
        if (R->s.graph.nodes[i].flags & ZN_NODE_PARAM) params += (int64_t)(R->s.plan.bytes[i] / sizeof(float));
    FILE *f = R->log;
    fputs("{\"type\":\"run\",\"model\":", f);
    zn_json_write_string(f, R->s.graph.model_name);
    fputs(",\"file\":", f);
    zn_json_write_string(f, R->o->file ? R->o->file : "");
    fprintf(f, ",\"params\":%lld,\"batch\":%d,\"epochs\":%d,\"data\":", (long long)params, R->r->batch,
            R->r->epochs);
    zn_json_write_string(f, R->r->data);
    fprintf(f, ",\"seed\":%llu,\"heads\":[", R->r->seed);
    for (int h = 0; h < R->s.n_heads; h++) {
        if (h) fputc(',', f);
        zn_json_write_string(f, R->head_names[h]);
    }
    fprintf(f, "],\"vote\":%s}\n", R->vote ? "true" : "false");
    fflush(f);
}

/* "key":value pairs of every head's accuracy (and the vote's) from acc(head), head -1 = vote. */
static void json_heads(const zn_run *R, FILE *f, double (*acc)(const void *, int), const void *ctx)
{
    for (int h = 0; h < R->s.n_heads; h++) {
        if (h) fputc(',', f);
        zn_json_write_string(f, R->head_names[h]);
        fputc(':', f);
        zn_json_write_number(f, acc(ctx, h));
    }
    if (R->vote) {
        fputs(",\"vote\":", f);
        zn_json_write_number(f, acc(ctx, -1));
    }
}

static double metrics_acc(const void *m, int h) { return zn_metrics_acc(m, h); }
static double best_acc(const void *R, int h) { return ((const zn_run *)R)->best[h < 0 ? ZN_MAX_HEADS : h]; }

static void log_epoch(zn_run *R, int epoch, long step, float lr, double loss, double acc, const zn_metrics *m,
                      double elapsed, double rate)
{
    /* the plain line, always */
    printf("epoch %2d/%d  lr %.4g  train loss %.4f acc %.4f  test", epoch, R->r->epochs, lr, loss, acc);
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
        FILE *f = R->log;
        fprintf(f, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"lr\":", epoch, step);
        zn_json_write_number(f, lr);
        fputs(",\"train_loss\":", f);
        zn_json_write_number(f, loss);
        fputs(",\"train_acc\":", f);
        zn_json_write_number(f, acc);
        fputs(",\"test_acc\":{", f);
        json_heads(R, f, metrics_acc, m);
        fprintf(f, "},\"time\":%.3f,\"img_per_s\":%.1f}\n", elapsed, rate);
    }
    fflush(R->log);
}

/* The elapsed time of the last epoch a log holds (its last line's "time" field; CSV: the column
 * before img_per_s), 0 when there is none: a resumed run's times continue from it. false when it
 * is not a number of seconds a run can have taken (continuing from nan or 1e308 would write
 * lines no JSON reader takes). */
static bool last_logged_time(FILE *f, bool csv, double *out)
{
    char line[4096], last[4096] = "";
    rewind(f);
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n') memcpy(last, line, sizeof last);
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
    zn_ckpt_meta m = {R->s.fingerprint, epoch, step, R->r->seed, np, no};
    if (ok) ok = zn_ckpt_save(R->o->save_path, &m, p, q, err, len);
    free(p);
    free(q);
    return ok;
}

/* Loads a checkpoint into the session; with optim, the optimizer state too. */
static bool restore(zn_run *R, const char *path, bool optim, zn_ckpt_meta *m, char *err, size_t len)
{
    float *p, *q;
    if (!zn_ckpt_load(path, m, &p, &q, err, len)) return false;
    bool ok = false;
    size_t np = zn_session_param_floats(&R->s), no = R->s.plan.region_bytes[ZN_REGION_OPTIM] / sizeof(float);
    if (m->graph_hash != R->s.fingerprint || m->n_params != np)
        snprintf(err, len, "%s was saved from another model (or other --set values): its graph fingerprint "
                           "or parameter count (%llu, here %zu) differs", path, (unsigned long long)m->n_params, np);
    else if (optim && m->n_optim != no)
        snprintf(err, len, "%s holds optimizer state of another size (%llu floats, here %zu)", path,
                 (unsigned long long)m->n_optim, no);
    else if (!zn_session_set_params(&R->s, p) ||
             (optim && !R->s.be->ops->set(R->s.be, ZN_REGION_OPTIM, 0, q, no * sizeof *q)))
        snprintf(err, len, "%s", R->s.err[0] ? R->s.err : R->s.be->ops->last_error(R->s.be));
    else
        ok = true;
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

bool zn_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b) return false;
    return strcmp(a, b) == 0 ||
           (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
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

int zn_train_run(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o)
{
    zn_run R;
    char err[1024];
    double elapsed_before;
    bool appending;
    if (!outputs_apart(o)) return 1;
    if (!run_init(&R, g, r, o, true) || !open_log(&R, o->resume != NULL, &elapsed_before, &appending)) {
        run_free(&R);
        return 1;
    }
    int start_epoch = 0;
    long step = 0;
    bool ok = zn_session_init_params(&R.s, r->seed);
    if (ok && o->resume) {
        zn_ckpt_meta m;
        ok = restore(&R, o->resume, true, &m, err, sizeof err);
        if (ok && m.seed != r->seed) {
            snprintf(err, sizeof err, "%s was trained with seed %llu; resume with --seed %llu", o->resume,
                     (unsigned long long)m.seed, (unsigned long long)m.seed);
            ok = false;
        } else if (ok && m.epoch >= r->epochs) { /* else the run would train nothing and exit 0 */
            snprintf(err, sizeof err, "%s is after epoch %d; the run has %d epochs: nothing left to train "
                                      "(raise --epochs to continue it)", o->resume, m.epoch, r->epochs);
            ok = false;
        }
        if (!ok) fail("znet: %s", err);
        start_epoch = m.epoch;
        step = m.step;
        if (ok) printf("resumed from %s after epoch %d (step %ld)\n", o->resume, m.epoch, step);
    } else if (!ok) {
        fail("znet: %s", R.s.err);
    }
    int steps_per_epoch = zn_batches_per_epoch(R.train.n, r->batch, true);
    char mem[32];
    if (ok)
        printf("training %s: %d train / %d test examples of %s, batch %d, %d steps per epoch, %d epochs, "
               "planned memory %s\n",
               g->model_name, R.train.n, R.test.n, r->data, r->batch, steps_per_epoch, r->epochs,
               zn_format_bytes(zn_plan_total(&R.s.plan), mem, sizeof mem));
    if (ok && !appending) log_header(&R);
    else if (!ok && !appending && o->log_path) remove(o->log_path); /* ours, and still empty */
    double t_start = now() - elapsed_before, train_time = 0;
    long images_seen = 0;
    zn_recipe tr = *r;
    tr.drop_last = true; /* (load_data refused drop_last = false unless the batches come out whole) */
    for (int epoch = start_epoch; ok && epoch < r->epochs; epoch++) {
        zn_batcher b;
        if (!zn_batcher_init(&b, &R.train, &tr, true, epoch, err, sizeof err)) {
            fail("znet: %s", err);
            ok = false;
            break;
        }
        double t0 = now(), loss_sum = 0;
        long seen = 0, correct = 0;
        float *images, lr = 0;
        int32_t *labels;
        int n, k = 0;
        int last = R.s.n_heads - 1;
        while (ok && zn_batcher_next(&b, &images, &labels, &n)) {
            zn_optim_step st = step_at(&R, step, steps_per_epoch);
            lr = st.lr;
            double loss = 0;
            ok = zn_session_feed(&R.s, images, labels) && zn_session_train_step(&R.s, &st) &&
                 zn_session_loss(&R.s, &loss) && zn_session_logits(&R.s, last, R.logits[last]);
            if (!ok) {
                fail("znet: training step failed: %s", R.s.err);
                break;
            }
            if (!isfinite(loss)) {
                fprintf(stderr, "\nznet: the loss became %f at epoch %d step %ld; rerun with --check-numerics "
                                "to find the node\n", loss, epoch + 1, step);
                ok = false;
                break;
            }
            loss_sum += loss;
            for (int i = 0; i < n; i++) {
                const float *row = R.logits[last] + (size_t)i * R.classes;
                int best = 0;
                for (int c = 1; c < R.classes; c++)
                    if (row[c] > row[best]) best = c;
                correct += best == labels[i];
            }
            seen += n;
            step++;
            k++;
            double dt = now() - t0;
            if (o->progress)
                progress_bar(epoch + 1, r->epochs, k, steps_per_epoch, loss_sum / seen, seen / dt,
                             dt / k * (steps_per_epoch - k));
        }
        zn_batcher_free(&b);
        if (!ok) break;
        double dt = now() - t0;
        train_time += dt;
        images_seen += seen;
        if (o->progress) fprintf(stderr, "\r%*s\r", 100, "");
        zn_metrics m;
        ok = evaluate(&R, &m);
        if (ok) {
            for (int h = 0; h < R.s.n_heads; h++)
                if (zn_metrics_acc(&m, h) > R.best[h]) R.best[h] = zn_metrics_acc(&m, h);
            if (zn_metrics_acc(&m, -1) > R.best[ZN_MAX_HEADS]) R.best[ZN_MAX_HEADS] = zn_metrics_acc(&m, -1);
            log_epoch(&R, epoch + 1, step, lr, seen ? loss_sum / seen : 0, seen ? (double)correct / seen : 0, &m,
                      now() - t_start, seen / dt);
            if (epoch + 1 == r->epochs) {
                printf("\nfinal: test accuracy (last / best)");
                for (int h = 0; h < R.s.n_heads; h++)
                    printf("  %s %.4f / %.4f", R.head_names[h], zn_metrics_acc(&m, h), R.best[h]);
                if (R.vote) printf("  vote %.4f / %.4f", zn_metrics_acc(&m, -1), R.best[ZN_MAX_HEADS]);
                size_t hw = R.s.be->ops->arena_high_water ? R.s.be->ops->arena_high_water(R.s.be) : 0;
                char a[32], c[32];
                printf("\n       %.1f s total, %.1f s training, %.0f img/s; memory planned %s, arena high-water %s\n",
                       now() - t_start, train_time, images_seen / (train_time > 0 ? train_time : 1),
                       zn_format_bytes(zn_plan_total(&R.s.plan), a, sizeof a), zn_format_bytes(hw, c, sizeof c));
                if (R.log && !R.csv) {
                    fprintf(R.log, "{\"type\":\"final\",\"time\":%.3f,\"train_time\":%.3f,\"img_per_s\":%.1f,"
                                   "\"planned_bytes\":%zu,\"high_water_bytes\":%zu,\"best\":{",
                            now() - t_start, train_time, images_seen / (train_time > 0 ? train_time : 1),
                            zn_plan_total(&R.s.plan), hw);
                    json_heads(&R, R.log, best_acc, &R);
                    fprintf(R.log, "}}\n");
                }
            }
        }
        zn_metrics_free(&m);
        if (ok && !save(&R, epoch + 1, step, err, sizeof err)) {
            fail("znet: %s", err);
            ok = false;
        }
    }
    run_free(&R);
    return ok ? 0 : 1;
}

int zn_train_eval(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, const char *weights)
{
    zn_run R;
    char err[1024];
    if (!run_init(&R, g, r, o, false)) {
        run_free(&R);
        return 1;
    }
    zn_ckpt_meta meta;
    bool ok = restore(&R, weights, false, &meta, err, sizeof err);
    if (!ok) fail("znet: %s", err);
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
