/* plot_log.c: reading a training log (see plot.h) record by record with jansson (json.h):
 * the run record names the model and seeds the test series (heads, then "vote"); each epoch
 * record adds one row, with any test_acc key not seen before as a new series; each step record
 * (--log-every) one point of the per-step loss and learning rate. */
#include "report/plot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report/json.h"

static bool say(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool say(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return false;
}

/* A number or null (NAN) member; absent is NAN too unless required. (A number too large for a
 * double, such as 1e400, never gets here: the reader refuses it.) */
static bool number(const json_t *rec, const char *key, bool required, double *out, char *msg, size_t len)
{
    const json_t *v = json_object_get(rec, key);
    *out = NAN;
    if (!v) return !required || say(msg, len, "the record lacks \"%s\"", key);
    if (json_is_number(v)) *out = json_number_value(v);
    else if (!json_is_null(v))
        return say(msg, len, "\"%s\" is %s, expected a number", key, zn_json_kind_name(v));
    return !(required && json_is_null(v)) || say(msg, len, "\"%s\" is null", key);
}

/* A string member into out (size ZN_LOG_NAME_MAX or 1024); absent leaves out as it is. */
static bool string(const json_t *rec, const char *key, bool required, char *out, size_t outlen,
                   char *msg, size_t len)
{
    const json_t *v = json_object_get(rec, key);
    if (!v) return !required || say(msg, len, "the record lacks \"%s\"", key);
    if (!json_is_string(v))
        return say(msg, len, "\"%s\" is %s, expected a string", key, zn_json_kind_name(v));
    const char *s = json_string_value(v);
    if (strlen(s) >= outlen) return say(msg, len, "\"%s\" is longer than %zu bytes", key, outlen - 1);
    memcpy(out, s, strlen(s) + 1);
    return true;
}

int zn_train_log_series(const zn_train_log *log, const char *name)
{
    for (int i = 0; i < log->n_series; i++)
        if (strcmp(log->series[i], name) == 0) return i;
    return -1;
}

double zn_train_log_best(const zn_train_log *log, int s)
{
    double best = NAN;
    for (int i = 0; s >= 0 && i < log->n_epochs; i++)
        if (isnan(best) || log->epochs[i].test_acc[s] > best) best = log->epochs[i].test_acc[s];
    return best;
}

/* The index of test series name, added when new; -1 after a message. */
static int series_index(zn_train_log *log, const char *name, char *msg, size_t len)
{
    int known = zn_train_log_series(log, name);
    if (known >= 0) return known;
    if (log->n_series == ZN_LOG_MAX_SERIES)
        return say(msg, len, "more than %d test accuracy series", ZN_LOG_MAX_SERIES) - 1;
    if (strlen(name) == 0 || strlen(name) >= ZN_LOG_NAME_MAX)
        return say(msg, len, "a test accuracy name of 0 or %d+ bytes", ZN_LOG_NAME_MAX) - 1;
    memcpy(log->series[log->n_series], name, strlen(name) + 1);
    return log->n_series++;
}

static bool take_run(zn_train_log *log, const json_t *rec, char *msg, size_t len)
{
    if (!string(rec, "model", true, log->model, sizeof log->model, msg, len) ||
        !string(rec, "file", false, log->file, sizeof log->file, msg, len) ||
        !number(rec, "params", false, &log->params, msg, len) || !number(rec, "batch", false, &log->batch, msg, len) ||
        !number(rec, "seed", false, &log->seed, msg, len) ||
        !number(rec, "epochs", false, &log->epochs_planned, msg, len))
        return false;
    const json_t *heads = json_object_get(rec, "heads"), *vote = json_object_get(rec, "vote");
    if (heads && !json_is_array(heads)) return say(msg, len, "\"heads\" must be an array of names");
    for (size_t i = 0; heads && i < json_array_size(heads); i++) {
        const char *name = json_string_value(json_array_get(heads, i));
        if (!name) return say(msg, len, "\"heads\" must be an array of names");
        if (series_index(log, name, msg, len) < 0) return false;
    }
    if (vote && !json_is_boolean(vote)) return say(msg, len, "\"vote\" must be true or false");
    return !json_is_true(vote) || series_index(log, "vote", msg, len) >= 0;
}

/* A byte count of the final record: absent (NAN), or from 0 to 2^63. */
static bool byte_count(double v) { return isnan(v) || (v >= 0 && v < 0x1p63); }

bool zn_log_time_ok(double seconds) { return seconds >= 0 && seconds < 1e9; }

/* A time field: absent (NAN), or one a run can have; anything else would print as nonsense in
 * compare and plot. */
static bool seconds(double v) { return isnan(v) || zn_log_time_ok(v); }

/* Appends the item of `size` bytes to *array of *n, grown 64 items at a time; false when out of
 * memory. */
static bool append(void **array, int *n, const void *item, size_t size)
{
    if (*n % 64 == 0) {
        void *grown = realloc(*array, ((size_t)*n + 64) * size);
        if (!grown) return false;
        *array = grown;
    }
    memcpy((char *)*array + (size_t)*n * size, item, size);
    ++*n;
    return true;
}

static bool take_epoch(zn_train_log *log, const json_t *rec, char *msg, size_t len)
{
    zn_log_epoch e;
    if (!number(rec, "epoch", true, &e.epoch, msg, len) || !number(rec, "step", false, &e.step, msg, len) ||
        !number(rec, "lr", false, &e.lr, msg, len) ||
        !number(rec, "train_loss", false, &e.train_loss, msg, len) ||
        !number(rec, "train_acc", false, &e.train_acc, msg, len) ||
        !number(rec, "time", false, &e.time, msg, len) ||
        !number(rec, "img_per_s", false, &e.img_per_s, msg, len))
        return false;
    if (!seconds(e.time)) return say(msg, len, "\"time\" is not a number of seconds (0 to 1e9)");
    for (int i = 0; i < ZN_LOG_MAX_SERIES; i++) e.test_acc[i] = NAN;
    json_t *acc = json_object_get(rec, "test_acc");
    if (acc && !json_is_object(acc))
        return say(msg, len, "\"test_acc\" is %s, expected an object", zn_json_kind_name(acc));
    const char *key;
    json_t *value;
    json_object_foreach(acc, key, value) {
        int s = series_index(log, key, msg, len);
        if (s < 0 || !number(acc, key, false, &e.test_acc[s], msg, len)) return false;
    }
    return append((void **)&log->epochs, &log->n_epochs, &e, sizeof e) || say(msg, len, "out of memory");
}

static bool take_step(zn_train_log *log, const json_t *rec, char *msg, size_t len)
{
    zn_log_step s;
    if (!number(rec, "epoch", true, &s.epoch, msg, len) || !number(rec, "step", false, &s.step, msg, len) ||
        !number(rec, "loss", true, &s.loss, msg, len) || !number(rec, "lr", false, &s.lr, msg, len))
        return false;
    return append((void **)&log->steps, &log->n_steps, &s, sizeof s) || say(msg, len, "out of memory");
}


static bool take_record(zn_train_log *log, const json_t *rec, bool *have_run, char *msg, size_t len)
{
    if (!json_is_object(rec)) return say(msg, len, "a record must be a JSON object");
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (!type) return say(msg, len, "a record needs a \"type\" string");
    if (strcmp(type, "run") == 0) {
        if (*have_run)
            return say(msg, len, "a second run record (one run per log file: give each run its own --log)");
        *have_run = true;
        return take_run(log, rec, msg, len);
    }
    if (strcmp(type, "final") == 0) {
        if (!number(rec, "train_time", false, &log->train_time, msg, len) ||
            !number(rec, "img_per_s", false, &log->img_per_s, msg, len) ||
            !number(rec, "planned_bytes", false, &log->planned_bytes, msg, len) ||
            !number(rec, "high_water_bytes", false, &log->high_water_bytes, msg, len))
            return false;
        /* byte counts become a size_t (znet compare): out of its range the conversion is undefined */
        const char *bad = !byte_count(log->planned_bytes) ? "planned_bytes"
                          : !byte_count(log->high_water_bytes) ? "high_water_bytes" : NULL;
        if (bad) return say(msg, len, "\"%s\" is not a byte count (0 to 2^63)", bad);
        return seconds(log->train_time) || say(msg, len, "\"train_time\" is not a number of seconds (0 to 1e9)");
    }
    bool epoch = strcmp(type, "epoch") == 0;
    if (!epoch && strcmp(type, "step") != 0) return true;
    if (!*have_run) return say(msg, len, "%s record before the run record", epoch ? "an epoch" : "a step");
    return epoch ? take_epoch(log, rec, msg, len) : take_step(log, rec, msg, len);
}

bool zn_train_log_read(const char *path, zn_train_log *log, char *err, size_t errlen)
{
    memset(log, 0, sizeof *log);
    log->params = log->batch = log->seed = log->epochs_planned = log->train_time = log->img_per_s = NAN;
    log->planned_bytes = log->high_water_bytes = NAN;
    snprintf(log->path, sizeof log->path, "%s", path);
    FILE *f = fopen(path, "r");
    if (!f) return say(err, errlen, "%s: %s", path, strerror(errno));
    char *line = NULL, msg[512];
    size_t cap = 0;
    ssize_t n;
    bool ok = true, have_run = false;
    for (int lineno = 1; ok && (n = getline(&line, &cap, f)) >= 0; lineno++) {
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        json_t *rec = zn_json_parse_line(line, (size_t)n, msg, sizeof msg);
        if (!rec) {
            if (line[n - 1] != '\n') { /* the last line, perhaps being written right now */
                log->incomplete_last_line = true;
                break;
            }
            size_t len = strlen(path);
            bool csv = lineno == 1 && len > 4 && strcmp(path + len - 4, ".csv") == 0;
            ok = say(err, errlen, "%s:%d: %s%s", path, lineno, msg,
                     csv ? " (a CSV log: plot reads the JSON lines of `znet run --log FILE.jsonl`)" : "");
        } else if (!take_record(log, rec, &have_run, msg, sizeof msg)) {
            ok = say(err, errlen, "%s:%d: %s", path, lineno, msg);
        }
        json_decref(rec);
    }
    if (ok && ferror(f)) ok = say(err, errlen, "%s: read: %s", path, strerror(errno));
    if (ok && !have_run)
        ok = say(err, errlen, "%s: no run record (is this a log written by `znet run --log`?)", path);
    free(line);
    fclose(f);
    if (!ok) zn_train_log_free(log);
    return ok;
}

void zn_train_log_free(zn_train_log *log)
{
    free(log->epochs);
    free(log->steps);
    log->epochs = NULL;
    log->steps = NULL;
    log->n_epochs = log->n_steps = 0;
}
