/* test_plot.c: `znet plot`: JSON lines (values, escapes, what strict JSON refuses, a record as
 * the log writes it), reading a training log (values, gaps, errors naming file:line, a
 * half-written last line), the SVG (well-formed, one polyline per series and gap, points on a
 * linear scale in the right order) and the CSV table, and the command line with several logs. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/json.h"
#include "report/plot.h"

static char err[2048];

static void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("\"%s\" lacks \"%s\"", text, part);
}

/* ---- JSON (jansson, with the strictness json.c asks of it) ---- */

static void test_json_values(void **state)
{
    (void)state;
    static const char text[] =
        " {\"n\": -12.5e-1, \"z\": 0, \"big\": 1E2, \"t\": true, \"f\": false, \"nil\": null,\n"
        "  \"s\": \"a\\\"b\\\\c\\/\\n\\t\\u00e9\\ud83d\\ude00\", \"arr\": [1, [], {}, \"x\"], \"o\": {\"k\": [true]}} ";
    json_t *v = zn_json_parse_line(text, strlen(text), err, sizeof err);
    if (!v) fail_msg("%s", err);
    assert_true(json_is_object(v));
    assert_int_equal(json_object_size(v), 9);
    assert_true(json_real_value(json_object_get(v, "n")) == -1.25);
    assert_true(json_is_real(json_object_get(v, "z"))); /* every number is a double */
    assert_true(json_real_value(json_object_get(v, "big")) == 100);
    assert_true(json_is_true(json_object_get(v, "t")));
    assert_true(json_is_false(json_object_get(v, "f")));
    assert_string_equal(zn_json_kind_name(json_object_get(v, "nil")), "null");
    assert_string_equal(zn_json_kind_name(json_object_get(v, "big")), "a number");
    /* é is C3 A9 in UTF-8; U+1F600 (a surrogate pair in JSON) is F0 9F 98 80 */
    assert_string_equal(json_string_value(json_object_get(v, "s")), "a\"b\\c/\n\t\xc3\xa9\xf0\x9f\x98\x80");
    const json_t *arr = json_object_get(v, "arr");
    assert_int_equal(json_array_size(arr), 4);
    assert_string_equal(json_string_value(json_array_get(arr, 3)), "x");
    json_decref(v);
}

static void test_json_refuses(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"", "column 1: unexpected token near end of file"},
        {"01", "column 1: invalid token"},
        {"NaN", "column 3: invalid token near 'NaN'"},
        {"[1,]", "column 4: unexpected token near ']'"},
        {"{\"a\":1,}", "column 8: string or '}' expected near '}'"},
        {"{\"a\":1,\"a\":2}", "duplicate object key"},
        {"1 2", "column 3: end of file expected near '2'"},
        {"\"a\tb\"", "control character 0x9"},
        {"\"\\udc00\"", "invalid Unicode '\\uDC00'"},
        {"\"\\u0000\"", "\\u0000 is not allowed"},
        {"\"\xff\"", "unable to decode byte 0xff"},
        {"1e400", "real number overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = zn_json_parse_line(bad[i][0], strlen(bad[i][0]), err, sizeof err);
        if (v) fail_msg("'%s' was accepted", bad[i][0]);
        if (!strstr(err, bad[i][1])) fail_msg("'%s': message \"%s\" lacks \"%s\"", bad[i][0], err, bad[i][1]);
    }
    /* nesting is bounded, not a stack overflow */
    enum { DEEP = 5000 };
    char *deep = malloc(2 * DEEP);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    assert_null(zn_json_parse_line(deep, 2 * DEEP, err, sizeof err));
    assert_has(err, "maximum parsing depth reached");
    free(deep);
}

/* A record line as the training log writes it: numbers as their format prints them, no NaN,
 * text that is not UTF-8 kept readable. */
static void test_json_write(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    json_t *heads = json_object();
    json_object_set_new(heads, "h1", zn_json_number(0.123456789, "%.6g"));
    json_object_set_new(heads, "vote", zn_json_number(NAN, "%.6g"));
    assert_true(zn_json_write_line(f, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "type", "epoch", "lr",
                                                zn_json_number(0.08f, "%.6g"), "time", zn_json_number(12.3004, "%.3f"),
                                                "rate", zn_json_number(4150.04, "%.1f"), "file",
                                                zn_json_text("m\xe9.znet"), "test_acc", heads, "step", (json_int_t)97)));
    assert_false(zn_json_write_line(f, NULL));
    char line[256] = "";
    rewind(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "{\"type\":\"epoch\",\"lr\":0.08,\"time\":12.3,\"rate\":4150.0,\"file\":\"m?.znet\","
                              "\"test_acc\":{\"h1\":0.123457,\"vote\":null},\"step\":97}\n");
}

/* ---- the training log ---- */

/* Two heads and the vote over 5 epochs; epoch 3's h2 is null (a gap); a "final" record. */
static const char sample_log[] =
    "{\"type\":\"run\",\"model\":\"davidnet_zee\",\"file\":\"models/davidnet_zee.znet\",\"params\":7758464,"
    "\"batch\":512,\"epochs\":5,\"heads\":[\"h1\",\"h2\"],\"vote\":true}\n"
    "{\"type\":\"epoch\",\"epoch\":1,\"step\":97,\"lr\":0.08,\"train_loss\":2.0,\"train_acc\":0.30,"
    "\"test_acc\":{\"h1\":0.40,\"h2\":0.45,\"vote\":0.47},\"time\":12.3,\"img_per_s\":4000.0}\n"
    "{\"type\":\"epoch\",\"epoch\":2,\"step\":194,\"lr\":0.16,\"train_loss\":1.2,\"train_acc\":0.55,"
    "\"test_acc\":{\"h1\":0.60,\"h2\":0.62,\"vote\":0.66},\"time\":12.1,\"img_per_s\":4100.0}\n"
    "{\"type\":\"epoch\",\"epoch\":3,\"step\":291,\"lr\":0.24,\"train_loss\":0.8,\"train_acc\":0.70,"
    "\"test_acc\":{\"h1\":0.70,\"h2\":null,\"vote\":0.74},\"time\":12.0,\"img_per_s\":4150.0}\n"
    "\n"
    "{\"type\":\"epoch\",\"epoch\":4,\"step\":388,\"lr\":0.12,\"train_loss\":0.5,\"train_acc\":0.80,"
    "\"test_acc\":{\"h1\":0.78,\"h2\":0.80,\"vote\":0.83},\"time\":12.0,\"img_per_s\":4150.0}\n"
    "{\"type\":\"epoch\",\"epoch\":5,\"step\":485,\"lr\":0.0,\"train_loss\":0.3,\"train_acc\":0.90,"
    "\"test_acc\":{\"h1\":0.85,\"h2\":0.88,\"vote\":0.91},\"time\":12.0,\"img_per_s\":4150.0}\n"
    "{\"type\":\"final\",\"test_acc\":{\"h1\":0.85,\"h2\":0.88,\"vote\":0.91},\"seconds\":60.4}\n";

static const double sample_loss[5] = {2.0, 1.2, 0.8, 0.5, 0.3};
static const double sample_vote[5] = {0.47, 0.66, 0.74, 0.83, 0.91};

static void test_log_read(void **state)
{
    (void)state;
    zn_train_log log;
    const char *path = zt_write_file("sample.jsonl", sample_log);
    if (!zn_train_log_read(path, &log, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(log.model, "davidnet_zee");
    assert_string_equal(log.file, "models/davidnet_zee.znet");
    assert_int_equal(log.n_series, 3);
    assert_string_equal(log.series[0], "h1");
    assert_string_equal(log.series[1], "h2");
    assert_string_equal(log.series[2], "vote");
    assert_int_equal(log.n_epochs, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(log.epochs[i].epoch == i + 1);
        assert_true(log.epochs[i].train_loss == sample_loss[i]);
        assert_true(log.epochs[i].test_acc[2] == sample_vote[i]);
        assert_true(log.epochs[i].step == 97 * (i + 1));
    }
    assert_true(isnan(log.epochs[2].test_acc[1]));
    assert_true(log.epochs[1].img_per_s == 4100.0);
    assert_false(log.incomplete_last_line);
    zn_train_log_free(&log);

    /* a run still writing its last line: that line is left out, with a flag */
    char text[sizeof sample_log + 64];
    snprintf(text, sizeof text, "%s{\"type\":\"epoch\",\"epoch\":6,\"train_lo", sample_log);
    assert_true(zn_train_log_read(zt_write_file("partial.jsonl", text), &log, err, sizeof err));
    assert_true(log.incomplete_last_line);
    assert_int_equal(log.n_epochs, 5);
    zn_train_log_free(&log);
}

static void test_log_errors_name_the_line(void **state)
{
    (void)state;
    static const char run[] = "{\"type\":\"run\",\"model\":\"m\"}\n";
    static const char *const bad[][2] = {
        {"{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":1.5,}\n", ":2: column 44: string or '}' expected near '}'"},
        {"{\"type\":\"epoch\",\"epoch\":\"two\"}\n", ":2: \"epoch\" is a string, expected a number"},
        {"{\"type\":\"epoch\",\"train_loss\":1}\n", ":2: the record lacks \"epoch\""},
        {"{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":NaN}\n", ":2: column 42: invalid token near 'NaN'"},
        {"{\"type\":\"epoch\",\"epoch\":1,\"test_acc\":[0.5]}\n", ":2: \"test_acc\" is an array, expected an object"},
        {"{\"type\":\"epoch\",\"epoch\":1,\"test_acc\":{\"h\":\"x\"}}\n", ":2: \"h\" is a string, expected a number"},
        {"{\"type\":\"run\",\"model\":\"again\"}\n", ":2: a second run record"},
        {"[1, 2]\n", ":2: a record must be a JSON object"},
        {"{\"epoch\":1}\n", ":2: a record needs a \"type\" string"},
        {"{\"type\":\"epoch\",\"epoch\":1,\"time\":1e400}\n", ":2: column 38: real number overflow"},
        {"{\"type\":\"final\",\"high_water_bytes\":-1}\n", ":2: \"high_water_bytes\" is not a byte count"},
        {"{\"type\":\"final\",\"planned_bytes\":1e300}\n", ":2: \"planned_bytes\" is not a byte count"},
        {"{\"type\":\"epoch\",\"epoch\":1,\"time\":-1e307}\n", ":2: \"time\" is not a number of seconds"},
        {"{\"type\":\"final\",\"train_time\":2e9}\n", ":2: \"train_time\" is not a number of seconds"},
        {"{\"type\":\"step\",\"epoch\":0.5,\"lr\":0.1}\n", ":2: the record lacks \"loss\""},
        {"{\"type\":\"step\",\"loss\":2}\n", ":2: the record lacks \"epoch\""},
        {"{\"type\":\"step\",\"epoch\":0.5,\"loss\":\"2\"}\n", ":2: \"loss\" is a string, expected a number"},
    };
    char text[512];
    zn_train_log log;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s%s{\"type\":\"epoch\",\"epoch\":9}\n", run, bad[i][0]);
        const char *path = zt_write_file("bad.jsonl", text);
        assert_false(zn_train_log_read(path, &log, err, sizeof err));
        if (!strstr(err, bad[i][1]) || strncmp(err, path, strlen(path)) != 0)
            fail_msg("case %zu: message \"%s\" lacks \"%s\" after the path", i, err, bad[i][1]);
    }
    assert_false(zn_train_log_read(zt_write_file("early.jsonl", "{\"type\":\"epoch\",\"epoch\":1}\n"), &log, err, sizeof err));
    assert_has(err, "early.jsonl:1: an epoch record before the run record");
    assert_false(zn_train_log_read(zt_write_file("early.jsonl", "{\"type\":\"step\",\"epoch\":1,\"loss\":1}\n"), &log,
                                   err, sizeof err));
    assert_has(err, "early.jsonl:1: a step record before the run record");
    assert_false(zn_train_log_read(zt_write_file("empty.jsonl", ""), &log, err, sizeof err));
    assert_has(err, "empty.jsonl: no run record");
    assert_false(zn_train_log_read("/nonexistent/znet.jsonl", &log, err, sizeof err));
    assert_has(err, "/nonexistent/znet.jsonl: No such file");
}

/* ---- the SVG ---- */

/* Tags nest and close in order (a check of our own; xmllint below when it is installed). */
static void assert_balanced(const char *svg)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = strchr(svg, '<'); p; p = strchr(p + 1, '<')) {
        if (p[1] == '?') continue;
        const char *end = strchr(p, '>');
        assert_non_null(end);
        bool closing = p[1] == '/', empty = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " />");
        assert_true(len > 0 && len < 32);
        if (closing) {
            assert_true(depth > 0);
            depth--;
            if (strlen(stack[depth]) != len || strncmp(stack[depth], name, len) != 0)
                fail_msg("</%.*s> closes <%s>", (int)len, name, stack[depth]);
        } else if (!empty) {
            assert_true(depth < 64);
            snprintf(stack[depth++], 32, "%.*s", (int)len, name);
        }
    }
    assert_int_equal(depth, 0);
}

typedef struct {
    char cls[8], series[32];
    int run, n;
    double x[64], y[64];
} polyline;

/* Every <polyline> of the SVG, in order. */
static int parse_polylines(const char *svg, polyline *out, int max)
{
    int n = 0;
    for (const char *p = strstr(svg, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        assert_true(n < max);
        polyline *l = &out[n++];
        assert_int_equal(sscanf(p, "<polyline class=\"%7[^\"]\" data-run=\"%d\" data-series=\"%31[^\"]\"", l->cls,
                                &l->run, l->series), 3);
        const char *pts = strstr(p, "points=\"") + 8;
        l->n = 0;
        for (int used; *pts != '"' && sscanf(pts, "%lf,%lf%n", &l->x[l->n], &l->y[l->n], &used) == 2; pts += used) {
            l->n++;
            while (*pts == ' ') pts++;
        }
    }
    return n;
}

/* ys are values mapped by one decreasing linear function (to 0.1 px, as printed). */
static void assert_linear(const double *ys, const double *values, int n)
{
    double slope = (ys[n - 1] - ys[0]) / (values[n - 1] - values[0]);
    assert_true(slope < 0); /* higher values higher up, i.e. smaller y */
    for (int i = 0; i < n; i++) assert_true(fabs(ys[0] + slope * (values[i] - values[0]) - ys[i]) < 0.15);
}

static void test_svg(void **state)
{
    (void)state;
    zn_train_log log;
    assert_true(zn_train_log_read(zt_write_file("svg.jsonl", sample_log), &log, err, sizeof err));
    char path[512];
    snprintf(path, sizeof path, "%s/curves.svg", zt_tmpdir());
    FILE *f = fopen(path, "w+");
    assert_true(zn_plot_svg(f, &log, 1, NULL));
    char *svg = zt_read_all(f);
    fclose(f);
    assert_balanced(svg);
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "xmllint --noout %s", path);
        assert_int_equal(system(cmd), 0);
    } else {
        print_message("xmllint not installed: checked tag balance only\n");
    }
    assert_has(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    assert_has(svg, ">davidnet_zee</text>"); /* the title */
    assert_has(svg, "davidnet_zee (models/davidnet_zee.znet):"); /* the legend */

    /* loss, train accuracy, h1, vote: one line each; h2 has a gap at epoch 3: two lines */
    polyline lines[16];
    int n = parse_polylines(svg, lines, 16);
    assert_int_equal(n, 6);
    static const char *const want[][3] = {{"loss", "loss", "5"}, {"acc", "train", "5"}, {"acc", "h1", "5"},
                                          {"acc", "h2", "2"},    {"acc", "h2", "2"},    {"acc", "vote", "5"}};
    for (int i = 0; i < n; i++) {
        assert_string_equal(lines[i].cls, want[i][0]);
        assert_string_equal(lines[i].series, want[i][1]);
        assert_int_equal(lines[i].n, atoi(want[i][2]));
        assert_int_equal(lines[i].run, 0);
    }
    assert_true(lines[3].x[1] < lines[4].x[0]); /* the gap is between epochs 2 and 4 */
    assert_linear(lines[0].y, sample_loss, 5);
    assert_linear(lines[5].y, sample_vote, 5);
    for (int i = 1; i < 5; i++) { /* epochs evenly spaced, the same x in both panels' own frames */
        assert_true(fabs((lines[0].x[i] - lines[0].x[i - 1]) - (lines[0].x[1] - lines[0].x[0])) < 0.15);
        assert_true(fabs((lines[5].x[i] - lines[5].x[0]) - (lines[0].x[i] - lines[0].x[0])) < 0.15);
    }
    assert_true(lines[5].x[0] > lines[0].x[4]); /* the accuracy panel is right of the loss panel */
    free(svg);

    /* two runs: each its own lines, names that need escaping escaped, a given title */
    zn_train_log logs[2] = {log, log};
    snprintf(logs[1].model, sizeof logs[1].model, "a<b & \"c\"");
    f = tmpfile();
    assert_true(zn_plot_svg(f, logs, 2, "runs & more"));
    svg = zt_read_all(f);
    fclose(f);
    assert_balanced(svg);
    assert_has(svg, ">runs &amp; more</text>");
    assert_has(svg, "a&lt;b &amp; &quot;c&quot;");
    n = parse_polylines(svg, lines, 16);
    assert_int_equal(n, 12);
    assert_int_equal(lines[0].run, 0);
    assert_int_equal(lines[11].run, 1);
    free(svg);
    zn_train_log_free(&log);
}

/* --log-every: step records between the epoch records, read back in order and drawn: the
 * per-step loss behind the epoch loss in its panel, the lr in a third panel under it. */
static void test_steps(void **state)
{
    (void)state;
    static const char text[] =
        "{\"type\":\"run\",\"model\":\"m\",\"heads\":[\"h\"]}\n"
        "{\"type\":\"step\",\"epoch\":0.5,\"step\":2,\"lr\":0.1,\"loss\":2.4}\n"
        "{\"type\":\"step\",\"epoch\":1,\"step\":4,\"lr\":0.2,\"loss\":2.0}\n"
        "{\"type\":\"epoch\",\"epoch\":1,\"step\":4,\"train_loss\":2.2,\"test_acc\":{\"h\":0.3}}\n"
        "{\"type\":\"step\",\"epoch\":1.5,\"step\":6,\"lr\":null,\"loss\":1.6}\n"
        "{\"type\":\"step\",\"epoch\":2,\"step\":8,\"lr\":0.4,\"loss\":1.0}\n"
        "{\"type\":\"epoch\",\"epoch\":2,\"step\":8,\"train_loss\":1.4,\"test_acc\":{\"h\":0.5}}\n";
    zn_train_log log;
    if (!zn_train_log_read(zt_write_file("steps.jsonl", text), &log, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(log.n_epochs, 2);
    assert_int_equal(log.n_steps, 4);
    assert_true(log.steps[2].epoch == 1.5 && log.steps[2].step == 6 && log.steps[2].loss == 1.6);
    assert_true(isnan(log.steps[2].lr));
    FILE *f = tmpfile();
    assert_true(zn_plot_svg(f, &log, 1, NULL));
    char *svg = zt_read_all(f);
    fclose(f);
    assert_balanced(svg);
    assert_has(svg, ">learning rate (per step)</text>");
    assert_has(svg, ">step loss</text>"); /* in the legend */
    polyline lines[16];
    int n = parse_polylines(svg, lines, 16);
    /* lr with a gap at the null; step loss; loss; train accuracy (no values: no line); h */
    static const char *const want[][3] = {{"lr", "lr", "2"}, {"lr", "lr", "1"}, {"step", "step loss", "4"},
                                          {"loss", "loss", "2"}, {"acc", "h", "2"}};
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        assert_string_equal(lines[i].cls, want[i][0]);
        assert_string_equal(lines[i].series, want[i][1]);
        assert_int_equal(lines[i].n, atoi(want[i][2]));
    }
    static const double lr[] = {0.1, 0.2};
    assert_linear(lines[0].y, lr, 2);
    /* one x axis for steps and epochs: the step at epoch 1 sits on epoch 1, in both panels */
    assert_true(fabs(lines[2].x[1] - lines[3].x[0]) < 0.15);
    assert_true(fabs(lines[0].x[1] - lines[3].x[0]) < 0.15);
    assert_true(lines[0].y[0] > lines[3].y[1]); /* the lr panel is under the loss panel */
    free(svg);
    zn_train_log_free(&log);
}

static void test_csv(void **state)
{
    (void)state;
    zn_train_log log;
    assert_true(zn_train_log_read(zt_write_file("csv.jsonl", sample_log), &log, err, sizeof err));
    FILE *f = tmpfile();
    zn_plot_csv(f, &log, 1);
    char *csv = zt_read_all(f);
    fclose(f);
    assert_has(csv, "log,model,epoch,step,lr,train_loss,train_acc,test_h1,test_h2,test_vote,time,img_per_s\n");
    assert_has(csv, "csv.jsonl,davidnet_zee,3,291,0.24,0.8,0.7,0.7,,0.74,12,4150\n");
    int rows = 0;
    for (const char *p = csv; (p = strchr(p, '\n')); p++) rows++;
    assert_int_equal(rows, 6);
    free(csv);
    zn_train_log_free(&log);
}

/* ---- the command ---- */

static char *run_znet(const char *args, int *status)
{
    char self[900], cmd[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(cmd, sizeof cmd, "%s/../znet", self);
    if (access(cmd, X_OK) != 0) return NULL;
    snprintf(cmd, sizeof cmd, "cd %s && %s/../znet %s 2>&1", zt_tmpdir(), self, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    for (size_t got; (got = fread(out + len, 1, cap - len - 1, p)) > 0;) {
        len += got;
        if (len + 1 == cap) out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    *status = WEXITSTATUS(pclose(p));
    return out;
}

/* Runs znet ARGS and checks its exit status and that its output holds want (NULL: any output). */
static void expect_znet(const char *args, int want_status, const char *want)
{
    int status;
    char *out = run_znet(args, &status);
    assert_non_null(out);
    assert_int_equal(status, want_status);
    if (want) assert_has(out, want);
    free(out);
}

static void test_command_line(void **state)
{
    (void)state;
    zt_write_file("a.jsonl", sample_log);
    zt_write_file("b.jsonl", sample_log);
    int status;
    char *out = run_znet("plot a.jsonl -o - b.jsonl --title T", &status);
    if (!out) {
        print_message("skipped: the znet binary is not built\n");
        skip();
    }
    assert_int_equal(status, 0);
    assert_has(out, "<svg");
    assert_has(out, "davidnet_zee (b.jsonl)"); /* two runs of one model: told apart by file */
    free(out);
    expect_znet("plot a.jsonl", 0, "wrote a.svg"); /* default output: beside the log */
    expect_znet("plot --csv a.jsonl b.jsonl", 0, "b.jsonl,davidnet_zee,5,485,0,0.3,0.9,0.85,0.88,0.91,12,4150\n");
    zt_write_file("bad.jsonl", "{\"type\":\"run\",\"model\":\"m\"}\n{\"type\":\"epoch\",\"epoch\":1,}\n");
    expect_znet("plot a.jsonl bad.jsonl -o x.svg", 1, "znet plot: bad.jsonl:2: column 27: string or '}' expected near '}'");
    expect_znet("plot -o x.svg", 2, "no log file given");
    /* -o naming one of the logs would replace it with the SVG: refused, the log kept */
    expect_znet("plot a.jsonl b.jsonl -o ./b.jsonl", 1,
                "znet plot: the output ./b.jsonl is the log b.jsonl; give another -o FILE");
    expect_znet("plot --csv b.jsonl", 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_refuses),
        cmocka_unit_test(test_json_write),
        cmocka_unit_test(test_log_read),
        cmocka_unit_test(test_log_errors_name_the_line),
        cmocka_unit_test(test_svg),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
