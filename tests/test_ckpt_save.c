/* test_ckpt_save.c: the checkpoint writer's side of surviving kills: a PATH.tmp left by a killed
 * save (junk, or a link to another file) is replaced by the next save, not written through and
 * never read as a checkpoint; a save that cannot be made leaves the previous checkpoint loading.
 * (tests/run_kill.sh kills real runs during their saves.) */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/checkpoint.h"

static const float params[5] = {1, 2, 3, 4, 5}, optim[3] = {-1, -2, -3};

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", zt_tmpdir(), name);
    return buf[k];
}

static bool save_step(const char *path, int64_t step, char *err, size_t len)
{
    zn_ckpt_meta m = {.graph_hash = 7, .epoch = 1, .step = step, .seed = 3, .n_params = 5, .n_optim = 3};
    return zn_ckpt_save(path, &m, params, optim, err, len);
}

/* The step of the checkpoint at path; fails the test when it does not load. */
static int64_t loaded_step(const char *path)
{
    zn_ckpt_meta m;
    float *p, *q;
    char err[512];
    if (!zn_ckpt_load(path, &m, &p, &q, err, sizeof err)) fail_msg("%s", err);
    assert_memory_equal(p, params, sizeof params);
    assert_memory_equal(q, optim, sizeof optim);
    free(p);
    free(q);
    return m.step;
}

static void test_stale_tmp_is_replaced(void **state)
{
    (void)state;
    char err[512], tmp[600];
    const char *path = path_in("stale.ckpt");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_true(save_step(path, 10, err, sizeof err));
    zt_write_file("stale.ckpt.tmp", "half a checkpoint from a killed save");
    assert_true(save_step(path, 11, err, sizeof err));
    assert_int_equal(loaded_step(path), 11);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed away */
}

static void test_tmp_link_is_not_written_through(void **state)
{
    (void)state;
    char err[512], tmp[600];
    const char *path = path_in("linked.ckpt"), *victim = path_in("victim.txt");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    zt_write_file("victim.txt", "keep me");
    assert_int_equal(symlink(victim, tmp), 0);
    assert_true(save_step(path, 12, err, sizeof err));
    assert_int_equal(loaded_step(path), 12);
    char buf[16] = {0};
    FILE *f = fopen(victim, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "keep me");
}

static void test_tmp_is_never_read(void **state)
{
    (void)state;
    char err[512], tmp[600];
    const char *path = path_in("only-tmp.ckpt");
    assert_true(save_step(path, 13, err, sizeof err));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(rename(path, tmp), 0); /* a complete checkpoint, but under the temporary name */
    zn_ckpt_meta m;
    float *p, *q;
    assert_false(zn_ckpt_load(path, &m, &p, &q, err, sizeof err));
    assert_non_null(strstr(err, "cannot open checkpoint"));
}

static void test_failed_save_keeps_the_previous(void **state)
{
    (void)state;
    char err[512], tmp[600], inner[700];
    const char *path = path_in("kept.ckpt");
    assert_true(save_step(path, 14, err, sizeof err));
    /* a PATH.tmp that cannot be removed: a folder with a file in it */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(inner, sizeof inner, "%s/x", tmp);
    assert_int_equal(mkdir(tmp, 0755), 0);
    zt_write_file("kept.ckpt.tmp/x", "x");
    assert_false(save_step(path, 15, err, sizeof err));
    assert_non_null(strstr(err, tmp));
    assert_non_null(strstr(err, "previous checkpoint is kept"));
    assert_int_equal(loaded_step(path), 14);
    unlink(inner);
    rmdir(tmp);
    /* and a checkpoint path that is a folder: refused, the folder untouched */
    const char *dir = path_in("a-folder.ckpt");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_false(save_step(dir, 16, err, sizeof err));
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_mid_epoch_checkpoint_loads(void **state)
{
    (void)state;
    char err[512];
    const char *path = path_in("mid.ckpt");
    zn_ckpt_meta m = {.graph_hash = 7, .epoch = 0, .step = 5, .seed = 3, .n_params = 5, .n_optim = 3};
    assert_true(zn_ckpt_save(path, &m, params, optim, err, sizeof err)); /* 5 steps into the first epoch */
    assert_int_equal(loaded_step(path), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_tmp_is_replaced),
        cmocka_unit_test(test_tmp_link_is_not_written_through),
        cmocka_unit_test(test_tmp_is_never_read),
        cmocka_unit_test(test_failed_save_keeps_the_previous),
        cmocka_unit_test(test_mid_epoch_checkpoint_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
