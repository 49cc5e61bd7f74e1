/* test_train.c: the training runtime: lr schedules, the vote, checkpoints (round trip, refusal of
 * truncated, corrupted and foreign ones, never replacing a good one), a one-epoch run on a
 * generated CIFAR-format data set (its log's step records read back by plot's reader), and
 * resume: 2 epochs in one run equal 1 + 1 with --resume, bit for bit. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lang/program.h"
#include "report/plot.h"
#include "runtime/checkpoint.h"
#include "runtime/metrics.h"
#include "runtime/schedule.h"
#include "runtime/train.h"

static void test_piecewise_schedule(void **state)
{
    (void)state;
    zn_schedule s = {.kind = ZN_LR_PIECEWISE, .n_knots = 3, .t = {0, 5, 24}, .v = {0, 0.4f, 0}, .per_example = true};
    assert_float_equal(zn_schedule_at(&s, 0, 24, 512), 0, 1e-9);
    assert_float_equal(zn_schedule_at(&s, 5, 24, 512), 0.4 / 512, 1e-9);
    assert_float_equal(zn_schedule_at(&s, 2.5, 24, 512), 0.2 / 512, 1e-9);
    assert_float_equal(zn_schedule_at(&s, 14.5, 24, 512), 0.2 / 512, 1e-9);
    assert_float_equal(zn_schedule_at(&s, 30, 24, 512), 0, 1e-9);
    s.per_example = false;
    assert_float_equal(zn_schedule_at(&s, 5, 24, 512), 0.4, 1e-6);
    zn_schedule c = {.kind = ZN_LR_COSINE, .t = {2}, .v = {1.0f}};
    assert_float_equal(zn_schedule_at(&c, 1, 12, 1), 0.5, 1e-6);  /* warm-up */
    assert_float_equal(zn_schedule_at(&c, 2, 12, 1), 1.0, 1e-6);
    assert_float_equal(zn_schedule_at(&c, 7, 12, 1), 0.5, 1e-6);  /* half way down */
    assert_float_equal(zn_schedule_at(&c, 12, 12, 1), 0.0, 1e-6);
    zn_schedule k = {.kind = ZN_LR_CONSTANT, .v = {0.1f}};
    assert_float_equal(zn_schedule_at(&k, 3, 12, 64), 0.1, 1e-7);
}

static void test_vote(void **state)
{
    (void)state;
    assert_int_equal(zn_vote((int[]){1, 1, 2}, 3), 1);
    assert_int_equal(zn_vote((int[]){1, 2, 2}, 3), 2);
    assert_int_equal(zn_vote((int[]){3, 1, 3}, 3), 3);
    assert_int_equal(zn_vote((int[]){0, 1, 2}, 3), 2);       /* all differ: the last head */
    assert_int_equal(zn_vote((int[]){4, 4, 5, 5}, 4), 5);    /* tie: the latest head's class */
    /* metrics: 2 heads + vote over 3 examples */
    zn_metrics m;
    zn_metrics_init(&m, 3, 3, true);
    const float h1[] = {1, 0, 0, /**/ 0, 1, 0, /**/ 0, 0, 1};
    const float h2[] = {1, 0, 0, /**/ 0, 0, 1, /**/ 1, 0, 0};
    const float h3[] = {0, 1, 0, /**/ 0, 0, 1, /**/ 0, 1, 0};
    const float *const logits[] = {h1, h2, h3};
    const int32_t labels[] = {0, 2, 1};
    zn_metrics_add(&m, logits, labels, 3);
    assert_float_equal(zn_metrics_acc(&m, 0), 1.0 / 3, 1e-9);
    assert_float_equal(zn_metrics_acc(&m, 1), 2.0 / 3, 1e-9);
    assert_float_equal(zn_metrics_acc(&m, 2), 2.0 / 3, 1e-9);
    assert_float_equal(zn_metrics_acc(&m, -1), 1.0, 1e-9); /* 0 (2 of 3), 2 (2 of 3), 1 (last of all-differ) */
    assert_int_equal(m.confusion[0 * 3 + 0], 1);
    zn_metrics_free(&m);
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", zt_tmpdir(), name);
    return buf[k];
}

static void test_checkpoint_round_trip_and_refusals(void **state)
{
    (void)state;
    float params[5] = {1, 2, 3, 4, 5}, optim[10] = {0};
    optim[9] = 7;
    zn_ckpt_meta m = {.graph_hash = 42, .epoch = 3, .step = 291, .seed = 9, .n_params = 5, .n_optim = 10};
    char err[512];
    char path[512];
    snprintf(path, sizeof path, "%s", tmp("a.ckpt"));
    assert_true(zn_ckpt_save(path, &m, params, optim, err, sizeof err));
    zn_ckpt_meta r;
    float *p, *q;
    assert_true(zn_ckpt_load(path, &r, &p, &q, err, sizeof err));
    assert_int_equal(r.epoch, 3);
    assert_int_equal(r.step, 291);
    assert_memory_equal(p, params, sizeof params);
    assert_memory_equal(q, optim, sizeof optim);
    free(p);
    free(q);

    /* truncated and corrupted copies are refused with a reason */
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *cut = tmp("cut.ckpt"), *bad = tmp("bad.ckpt"), *junk = tmp("junk.ckpt");
    f = fopen(cut, "wb");
    fwrite(buf, 1, n - 11, f);
    fclose(f);
    assert_false(zn_ckpt_load(cut, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    buf[60] ^= 0x55; /* inside the parameters */
    f = fopen(bad, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_false(zn_ckpt_load(bad, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "corrupted"));
    f = fopen(junk, "wb");
    fputs("hello, world, this is not a checkpoint", f);
    fclose(f);
    assert_false(zn_ckpt_load(junk, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "not a znet checkpoint"));

    /* a damaged size in the header is refused before anything is allocated (2^34 floats would be
     * 64 GiB), and a step count its epochs could not have taken is refused too */
    unsigned char hdr[4096];
    memcpy(hdr, buf, n);
    uint64_t big = (uint64_t)1 << 34;
    memcpy(hdr + 40, &big, sizeof big); /* n_params: after magic, version, hash, epoch, step, seed */
    f = fopen(bad, "wb");
    fwrite(hdr, 1, n, f);
    fclose(f);
    assert_false(zn_ckpt_load(bad, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    memcpy(hdr, buf, n);
    int64_t step = INT64_MAX;
    memcpy(hdr + 24, &step, sizeof step);
    f = fopen(bad, "wb");
    fwrite(hdr, 1, n, f);
    fclose(f);
    assert_false(zn_ckpt_load(bad, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "impossible sizes"));

    /* a NaN or infinite value under a valid checksum is refused, naming where it is */
    float odd[5] = {1, 2, NAN, 4, 5};
    assert_true(zn_ckpt_save(bad, &m, odd, optim, err, sizeof err));
    assert_false(zn_ckpt_load(bad, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "non-finite parameter value (nan at float 2 of 5)"));
    optim[4] = -INFINITY;
    assert_true(zn_ckpt_save(bad, &m, params, optim, err, sizeof err));
    assert_false(zn_ckpt_load(bad, &r, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "non-finite optimizer state value (-inf at float 4 of 10)"));
    optim[4] = 0;

    /* a failed save (unwritable place) leaves the good checkpoint as it was */
    assert_false(zn_ckpt_save(tmp("no/such/dir/a.ckpt"), &m, params, optim, err, sizeof err));
    assert_true(zn_ckpt_load(path, &r, &p, &q, err, sizeof err));
    free(p);
    free(q);
}

/* A CIFAR-10-format data set of the official file sizes: each class has its own mean colour
 * and noise, so a model can learn something in one epoch. */
static const char *make_cifar(void)
{
    static char dir[512];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", zt_tmpdir());
    mkdir(dir, 0755);
    const char *names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"};
    unsigned char *rec = malloc(3073);
    unsigned state = 12345;
    for (int f = 0; f < 6; f++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        FILE *out = fopen(path, "wb");
        assert_non_null(out);
        for (int i = 0; i < 10000; i++) {
            int label = (i * 7 + f) % 10;
            rec[0] = (unsigned char)label;
            for (int k = 1; k < 3073; k++) {
                state = state * 1103515245u + 12345u;
                int ch = (k - 1) / 1024;
                rec[k] = (unsigned char)(((label * 37 + ch * 91) % 200) + (state >> 27));
            }
            fwrite(rec, 1, 3073, out);
        }
        fclose(out);
    }
    free(rec);
    return dir;
}

static bool load_model(zn_graph *g, zn_recipe *r, int epochs)
{
    char ep[16];
    snprintf(ep, sizeof ep, "%d", epochs);
    const zn_setting sets[] = {{"width", "2"}, {"train.batch", "32"}, {"train.epochs", ep}};
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_load_opts o = {.path = zt_src_path("models/davidnet_zee.znet"), .settings = sets, .n_settings = 3};
    bool ok = zn_program_load(&o, &d, g, r);
    zn_diag_free(&d);
    return ok;
}

/* A run of the width-2 zee on 128 examples, batch 32: 4 steps per epoch; a step record every
 * log_every steps (0: none). */
static int train_logged(int epochs, const char *save, const char *resume, const char *log, int log_every)
{
    zn_graph g;
    zn_recipe r;
    assert_true(load_model(&g, &r, epochs));
    zn_run_opts o = {.file = "davidnet_zee.znet", .data_dir = make_cifar(), .save_path = save, .resume = resume,
                     .log_path = log, .log_every = log_every, .limit = 128, .test_limit = 100,
                     .backend = &zn_cpu_backend, .backend_opts = {.threads = 1}};
    int rc = zn_train_run(&g, &r, &o);
    zn_graph_free(&g);
    return rc;
}

static int train(int epochs, const char *save, const char *resume, const char *log)
{
    return train_logged(epochs, save, resume, log, 0);
}

/* --log-every 3 over 2 epochs of 4 steps: step records after steps 3 and 6, at epochs 0.75 and
 * 1.5 on the epoch records' axis, each with a finite loss and the lr of its step; the epoch
 * records name the head of their train accuracy. A resumed run continues the times of the last
 * epoch record even when step records follow it. */
static void test_step_records(void **state)
{
    (void)state;
    const char *log = tmp("steps.jsonl"), *ckpt = tmp("steps.ckpt");
    assert_int_equal(train_logged(1, ckpt, NULL, log, 3), 0);
    FILE *f = fopen(log, "a"); /* as if an interrupted epoch had logged a step after epoch 1 */
    assert_non_null(f);
    fputs("{\"type\":\"step\",\"epoch\":1.25,\"step\":5,\"lr\":0.001,\"loss\":2.5}\n", f);
    fclose(f);
    assert_int_equal(train_logged(2, ckpt, ckpt, log, 3), 0);
    zn_train_log L;
    char err[512];
    if (!zn_train_log_read(log, &L, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(L.n_epochs, 2);
    assert_int_equal(L.n_steps, 3);
    static const double want_step[] = {3, 5, 6}, want_epoch[] = {0.75, 1.25, 1.5};
    for (int i = 0; i < 3; i++) {
        assert_true(L.steps[i].step == want_step[i]);
        assert_true(fabs(L.steps[i].epoch - want_epoch[i]) < 1e-9);
        assert_true(isfinite(L.steps[i].loss) && L.steps[i].loss > 0);
        assert_true(L.steps[i].lr > 0);
    }
    assert_true(L.epochs[1].time > L.epochs[0].time); /* not restarted from 0 by the step line */
    zn_train_log_free(&L);
    char line[4096];
    f = fopen(log, "r");
    assert_non_null(f);
    int named = 0;
    while (fgets(line, sizeof line, f)) named += strstr(line, "\"train_acc_head\":\"h3\"") != NULL;
    fclose(f);
    assert_int_equal(named, 2);
}

static void test_one_epoch_run_and_log(void **state)
{
    (void)state;
    const char *log = tmp("run.jsonl");
    assert_int_equal(train(1, tmp("one.ckpt"), NULL, log), 0);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "\"type\":\"run\""));
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "\"type\":\"epoch\""));
    assert_non_null(strstr(line, "\"vote\":"));
    fclose(f);
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    const char *two = tmp("two.ckpt"), *half = tmp("half.ckpt"), *log = tmp("half.jsonl");
    assert_int_equal(train(2, two, NULL, NULL), 0);
    assert_int_equal(train(1, half, NULL, log), 0);
    assert_int_equal(train(2, half, half, log), 0); /* resumes from epoch 1, saves over it */
    /* the resumed run appends to the log: one header, epochs 1 and 2, times that grow */
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    int headers = 0, epochs = 0;
    double t[2] = {0, 0};
    while (fgets(line, sizeof line, f)) {
        headers += strstr(line, "\"type\":\"run\"") != NULL;
        const char *at = strstr(line, "\"time\":");
        if (strstr(line, "\"type\":\"epoch\"") && at && epochs < 2) t[epochs++] = strtod(at + 7, NULL);
    }
    fclose(f);
    assert_int_equal(headers, 1);
    assert_int_equal(epochs, 2);
    assert_true(t[1] > t[0]);
    zn_ckpt_meta a, b;
    float *pa, *qa, *pb, *qb;
    char err[512];
    assert_true(zn_ckpt_load(two, &a, &pa, &qa, err, sizeof err));
    assert_true(zn_ckpt_load(half, &b, &pb, &qb, err, sizeof err));
    assert_int_equal(a.step, b.step);
    assert_int_equal(a.n_params, b.n_params);
    assert_memory_equal(pa, pb, sizeof *pa * a.n_params);
    assert_memory_equal(qa, qb, sizeof *qa * a.n_optim);
    free(pa), free(qa), free(pb), free(qb);
    /* resuming a run that has done all its epochs trains nothing: an error, not a silent exit 0 */
    char done[512], three[512], bad_log[512];
    snprintf(done, sizeof done, "%s", half);
    snprintf(three, sizeof three, "%s", tmp("three.ckpt"));
    snprintf(bad_log, sizeof bad_log, "%s", tmp("bad-time.jsonl"));
    assert_int_equal(train(2, NULL, done, NULL), 1);
    /* ... and leaves no half-written log behind (a new --log file is removed, not left empty) */
    char new_log[512];
    snprintf(new_log, sizeof new_log, "%s", tmp("refused.jsonl"));
    assert_int_equal(train(2, NULL, done, new_log), 1);
    assert_int_equal(access(new_log, F_OK), -1);
    /* a log over the checkpoint it resumes from (or the one it saves) would destroy it: refused */
    struct stat before, after;
    assert_int_equal(stat(done, &before), 0);
    assert_int_equal(train(3, three, done, done), 1);
    assert_int_equal(train(3, done, NULL, done), 1);
    assert_int_equal(stat(done, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    /* a log whose last time is not a time (nan) is not continued: lines with "time":nan after it
     * would be no JSON; the run stops before writing to it */
    FILE *bl = fopen(bad_log, "w");
    assert_non_null(bl);
    fputs("{\"type\":\"run\",\"model\":\"davidnet_zee\"}\n{\"type\":\"epoch\",\"epoch\":2,\"time\":nan}\n", bl);
    fclose(bl);
    assert_int_equal(stat(bad_log, &before), 0);
    assert_int_equal(train(3, three, done, bad_log), 1);
    assert_int_equal(stat(bad_log, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
}

static void test_foreign_checkpoint_refused(void **state)
{
    (void)state;
    /* a checkpoint of the width-2 Zee model given to DavidNet */
    const char *ck = tmp("one.ckpt");
    zn_graph g;
    zn_recipe r;
    zn_diag d;
    zn_diag_init(&d, stderr);
    const zn_setting sets[] = {{"width", "2"}, {"train.batch", "32"}};
    zn_load_opts lo = {.path = zt_src_path("models/davidnet.znet"), .settings = sets, .n_settings = 2};
    assert_true(zn_program_load(&lo, &d, &g, &r));
    zn_run_opts o = {.data_dir = make_cifar(), .test_limit = 64, .backend = &zn_cpu_backend, .backend_opts = {.threads = 1}};
    assert_int_equal(zn_train_eval(&g, &r, &o, ck), 1);
    zn_graph_free(&g);
    zn_diag_free(&d);
}

/* The generated data set is 184 MB: remove it when the tests are done. */
static int remove_data(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", zt_tmpdir());
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_piecewise_schedule),
        cmocka_unit_test(test_vote),
        cmocka_unit_test(test_checkpoint_round_trip_and_refusals),
        cmocka_unit_test(test_one_epoch_run_and_log),
        cmocka_unit_test(test_step_records),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_foreign_checkpoint_refused),
    };
    return cmocka_run_group_tests(tests, NULL, remove_data);
}
