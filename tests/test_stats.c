/* test_stats.c: the statistics of `znet compare DIR` and the bands of `znet plot DIR` against
 * values computed by hand: mean and sample standard deviation with missing figures left out,
 * "separated" at more than two standard errors (and not for rounding), the mean curve of logs
 * whose epochs and heads differ (an epoch logged twice counts once, its last record); and the
 * sweep's grids split at top-level commas only, its folder names, its manifests read back. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "report/stats.h"
#include "runtime/sweep.h"

static char err[1024];

/* a == b within eps, both printed when not */
#define assert_near(a, b, eps) near_at((a), (b), (eps), #a, __LINE__)
static void near_at(double a, double b, double eps, const char *what, int line)
{
    if (!(fabs(a - b) <= eps)) fail_msg("line %d: %s = %.17g, want %.17g", line, what, a, b);
}

static void test_stat_of(void **state)
{
    (void)state;
    double v[] = {0.90, NAN, 0.91, INFINITY, 0.92};
    zn_stat s = zn_stat_of(v, 5);
    assert_int_equal(s.n, 3);
    assert_near(s.mean, 0.91, 1e-12);
    assert_near(s.sd, 0.01, 1e-12); /* sqrt((.01^2 + 0 + .01^2) / 2) */
    double w[] = {0.88, 0.89, 0.93};
    s = zn_stat_of(w, 3);
    assert_near(s.sd, sqrt(7e-4), 1e-12); /* deviations -.02 -.01 .03 */
    s = zn_stat_of(w, 1);
    assert_int_equal(s.n, 1);
    assert_near(s.mean, 0.88, 0);
    assert_true(isnan(s.sd));
    s = zn_stat_of(v + 1, 1);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean));
}

static void test_separated(void **state)
{
    (void)state;
    double d, se;
    zn_stat a = {3, 0.91, 0.01}, b = {3, 0.90, sqrt(7e-4)};
    assert_int_equal(zn_stat_separated(a, b, &d, &se), ZN_SEP_NOT);
    assert_near(d, 0.01, 1e-12);
    assert_near(se, sqrt(8e-4 / 3), 1e-12); /* 0.01633 */
    zn_stat c = {3, 0.62, 0.02}, e = {3, 0.50, 0};
    assert_int_equal(zn_stat_separated(c, e, &d, &se), ZN_SEP_YES); /* .12 against 2 x .01155 */
    /* just under and just over two standard errors: se = 0.01 exactly (sd .01 sqrt(2) twice, n 4) */
    zn_stat f = {4, 0.5, 0.01 * sqrt(2)}, g = {4, 0.5 - 0.0199, 0.01 * sqrt(2)};
    assert_int_equal(zn_stat_separated(f, g, &d, &se), ZN_SEP_NOT);
    g.mean = 0.5 - 0.0201;
    assert_int_equal(zn_stat_separated(f, g, &d, &se), ZN_SEP_YES);
    /* equal figures with no spread: not separated, even when their means differ in the last bit */
    zn_stat h = {3, 0.8, 0}, k = {3, nextafter(0.8, 1), 0};
    assert_int_equal(zn_stat_separated(h, k, &d, &se), ZN_SEP_NOT);
    zn_stat one = {1, 0.9, NAN};
    assert_int_equal(zn_stat_separated(a, one, &d, &se), ZN_SEP_UNKNOWN);
    assert_near(d, 0.01, 1e-12);
    assert_true(isnan(se));
}

static void read_log(const char *name, const char *text, zn_train_log *log)
{
    if (!zn_train_log_read(zt_write_file(name, text), log, err, sizeof err)) fail_msg("%s", err);
}

static void test_band(void **state)
{
    (void)state;
    zn_train_log runs[3], mean, lo, hi;
    /* run 0 logs epoch 2 twice (resumed after a kill): the second record counts */
    read_log("a.jsonl", "{\"type\":\"run\",\"model\":\"m\",\"heads\":[\"h1\",\"h2\"],\"vote\":true}\n"
                        "{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":2,\"test_acc\":{\"h1\":0.1,\"h2\":0.2,\"vote\":0.3}}\n"
                        "{\"type\":\"epoch\",\"epoch\":2,\"train_loss\":9,\"test_acc\":{\"h1\":0.9,\"h2\":0.9,\"vote\":0.9}}\n"
                        "{\"type\":\"epoch\",\"epoch\":2,\"train_loss\":1,\"test_acc\":{\"h1\":0.5,\"h2\":0.6,\"vote\":0.7}}\n",
             &runs[0]);
    read_log("b.jsonl", "{\"type\":\"run\",\"model\":\"m\",\"heads\":[\"h2\"],\"vote\":false}\n"
                        "{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":4,\"test_acc\":{\"h2\":0.4}}\n"
                        "{\"type\":\"epoch\",\"epoch\":2,\"train_loss\":3,\"test_acc\":{\"h2\":0.8}}\n"
                        "{\"type\":\"epoch\",\"epoch\":3,\"train_loss\":2,\"test_acc\":{\"h2\":0.9}}\n",
             &runs[1]);
    read_log("c.jsonl", "{\"type\":\"run\",\"model\":\"m\",\"heads\":[\"h2\"],\"vote\":false}\n"
                        "{\"type\":\"epoch\",\"epoch\":2,\"train_loss\":null,\"test_acc\":{\"h2\":1.0}}\n",
             &runs[2]);
    assert_true(zn_log_band(runs, 3, &mean, &lo, &hi));
    assert_int_equal(mean.n_epochs, 3);
    assert_int_equal(hi.n_epochs, 3);
    assert_int_equal(mean.n_series, 3);
    assert_string_equal(mean.series[0], "h1");
    assert_string_equal(mean.series[1], "h2");
    assert_string_equal(mean.series[2], "vote");
    assert_string_equal(lo.series[1], "h2");
    for (int e = 0; e < 3; e++) assert_near(mean.epochs[e].epoch, e + 1, 0);
    /* epoch 1: loss 2 and 4: mean 3, sd sqrt(2); h2 .2 and .4 */
    assert_near(mean.epochs[0].train_loss, 3, 1e-12);
    assert_near(hi.epochs[0].train_loss, 3 + sqrt(2), 1e-12);
    assert_near(lo.epochs[0].train_loss, 3 - sqrt(2), 1e-12);
    assert_near(mean.epochs[0].test_acc[1], 0.3, 1e-12);
    /* epoch 2: h2 .6 .8 1.0: mean .8, sd .2; loss 1 and 3 (run 2's is null) */
    assert_near(mean.epochs[1].test_acc[1], 0.8, 1e-12);
    assert_near(lo.epochs[1].test_acc[1], 0.6, 1e-12);
    assert_near(hi.epochs[1].test_acc[1], 1.0, 1e-12);
    assert_near(mean.epochs[1].train_loss, 2, 1e-12);
    /* a figure of one run: the band has no width; of none: missing */
    assert_near(mean.epochs[1].test_acc[0], 0.5, 1e-12);
    assert_near(lo.epochs[1].test_acc[0], 0.5, 1e-12);
    assert_near(hi.epochs[1].test_acc[0], 0.5, 1e-12);
    assert_true(isnan(mean.epochs[2].test_acc[0]));
    assert_near(mean.epochs[2].test_acc[1], 0.9, 1e-12);
    for (int i = 0; i < 3; i++) zn_train_log_free(&runs[i]);
    zn_train_log_free(&mean);
    zn_train_log_free(&lo);
    zn_train_log_free(&hi);
}

static void test_split(void **state)
{
    (void)state;
    char *v[8];
    int n;
    assert_true(zn_sweep_split("[8],[8, 16],\"a,b\",f(1,2)", v, 8, &n, err, sizeof err));
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "[8]");
    assert_string_equal(v[1], "[8, 16]");
    assert_string_equal(v[2], "\"a,b\"");
    assert_string_equal(v[3], "f(1,2)");
    zn_sweep_free_values(v, n);
    assert_true(zn_sweep_split("16", v, 8, &n, err, sizeof err));
    assert_int_equal(n, 1);
    zn_sweep_free_values(v, n);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"8,,16", "an empty value (value 2"}, {"8,", "an empty value (value 2"}, {"", "an empty value (value 1"},
        {"[8,16", "an unclosed '['"},         {"(8],1", "a ']' at column 3 closes nothing"},
        {"\"x,y", "an unclosed \""},          {"1,2,3", "more than 2 values"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(zn_sweep_split(bad[i].text, v, i == 6 ? 2 : 8, &n, err, sizeof err));
        if (!strstr(err, bad[i].want)) fail_msg("'%s': \"%s\" lacks \"%s\"", bad[i].text, err, bad[i].want);
    }
}

static void test_folder_and_manifest(void **state)
{
    (void)state;
    char a[256], b[256];
    zn_sweep_folder("davidnet_zee pool=\"x_axis\" filters=[8,16]", 2, a, sizeof a);
    assert_int_equal(strncmp(a, "davidnet_zee_pool=_x_axis__filters=_8_16__", 42), 0);
    assert_string_equal(a + strlen(a) - 6, "_seed2");
    /* configurations alike once made safe stay apart */
    zn_sweep_folder("davidnet_zee pool='x_axis' filters=[8,16]", 2, b, sizeof b);
    assert_string_not_equal(a, b);
    zn_sweep_manifest m = {.config = "m width=8", .model = "models/m.znet", .model_name = "m",
                           .fingerprint = 0xfedcba9876543210ULL, .seed = 7, .n_cpus = 2,
                           .cpus = {"CPU A", "CPU \"B\""}},
                      back;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/run", zt_tmpdir());
    mkdir(dir, 0777);
    assert_true(zn_sweep_manifest_write(dir, &m, err, sizeof err));
    assert_true(zn_sweep_manifest_read(dir, &back, err, sizeof err));
    assert_string_equal(back.config, m.config);
    assert_string_equal(back.model_name, "m");
    assert_true(back.fingerprint == m.fingerprint);
    assert_int_equal(back.seed, 7);
    assert_int_equal(back.n_cpus, 2);
    assert_string_equal(back.cpus[1], "CPU \"B\"");
    assert_string_equal(back.adopted, ""); /* written only for an adopted run */
    snprintf(m.adopted, sizeof m.adopted, "logs/seed 7.jsonl");
    assert_true(zn_sweep_manifest_write(dir, &m, err, sizeof err));
    assert_true(zn_sweep_manifest_read(dir, &back, err, sizeof err));
    assert_string_equal(back.adopted, "logs/seed 7.jsonl");
    zt_write_file("run/manifest.json", "{\"type\":\"sweep_run\",\"config\":\"x\"}\n");
    assert_false(zn_sweep_manifest_read(dir, &back, err, sizeof err));
    if (!strstr(err, "manifest.json: \"model\" is missing")) fail_msg("%s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_of),
        cmocka_unit_test(test_separated),
        cmocka_unit_test(test_band),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_folder_and_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
