/* sweep.c: a sweep's queue on disk (sweep.h): grids, run folders, manifests (JSON through
 * jansson), where a run stands, and a sweep folder read back. The files of a run are its
 * folder's; nothing here starts a run (cli/cmd_sweep.c does, one child process each). */
#include "runtime/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/checksum.h"
#include "graph/util.h"
#include "report/json.h"

bool zn_sweep_split(const char *text, char **out, int max, int *n, char *err, size_t len)
{
    static const char open[] = "[(", close[] = "])";
    char stack[64];
    int depth = 0;
    char quote = 0;
    *n = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (quote) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == quote) quote = 0;
            else if (!*p) break;
            continue;
        }
        if (*p == '"' || *p == '\'') quote = *p;
        else if (*p && strchr(open, *p)) {
            if (depth == (int)sizeof stack) return zn_fail(err, len, "brackets nested more than %d deep", depth);
            stack[depth++] = close[strchr(open, *p) - open];
        } else if (*p && strchr(close, *p)) {
            if (!depth || stack[depth - 1] != *p)
                return zn_fail(err, len, "a '%c' at column %d closes nothing", *p, (int)(p - text) + 1);
            depth--;
        } else if ((*p == ',' && !depth) || !*p) {
            if (p == start) {
                zn_sweep_free_values(out, *n);
                return zn_fail(err, len, "an empty value (value %d; values are separated by single commas)", *n + 1);
            }
            if (*n == max) {
                zn_sweep_free_values(out, *n);
                return zn_fail(err, len, "more than %d values", max);
            }
            out[(*n)++] = zn_strndup(start, (size_t)(p - start));
            start = p + 1;
            if (!*p) break;
        }
    }
    if (quote || depth) {
        zn_sweep_free_values(out, *n);
        return quote ? zn_fail(err, len, "an unclosed %c", quote)
                     : zn_fail(err, len, "an unclosed '%c'", stack[depth - 1] == ']' ? '[' : '(');
    }
    return true;
}

void zn_sweep_free_values(char **values, int n)
{
    for (int i = 0; i < n; i++) free(values[i]);
}

void zn_sweep_folder(const char *config, long seed, char *out, size_t len)
{
    char safe[81], hex[ZN_DIGEST_HEX_MAX], err[256];
    size_t k = 0;
    for (const char *p = config; *p && k < sizeof safe - 1; p++)
        safe[k++] = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.=+-", *p) ? *p : '_';
    safe[k] = '\0';
    if (!zn_digest_bytes(ZN_DIGEST_SHA256, config, strlen(config), hex, err, sizeof err))
        snprintf(hex, sizeof hex, "nohash00"); /* OpenSSL failing on bytes in memory: the name stays readable */
    snprintf(out, len, "%s_%.8s_seed%ld", safe, hex, seed);
}

void zn_sweep_cpu(char *out, size_t len)
{
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon += strspn(colon + 1, " \t") + 1;
        snprintf(out, len, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    if (f) fclose(f);
}

/* dir/name into out; false when it does not fit. */
static bool path_in(const char *dir, const char *name, char *out, size_t len)
{
    return snprintf(out, len, "%s/%s", dir, name) < (int)len;
}

bool zn_sweep_manifest_write(const char *dir, const zn_sweep_manifest *m, char *err, size_t len)
{
    char path[4200], tmp[4210], fp[17];
    if (!path_in(dir, ZN_SWEEP_MANIFEST, path, sizeof path)) return zn_fail(err, len, "%s: path too long", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)m->fingerprint);
    json_t *cpus = json_array();
    for (int i = 0; i < m->n_cpus; i++) json_array_append_new(cpus, zn_json_text(m->cpus[i]));
    FILE *f = fopen(tmp, "w");
    if (!f) {
        json_decref(cpus);
        return zn_fail(err, len, "cannot write %s: %s", tmp, strerror(errno));
    }
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:I, s:o}", "type", "sweep_run", "config",
                          zn_json_text(m->config), "label", zn_json_text(m->label), "model", zn_json_text(m->model),
                          "model_name", zn_json_text(m->model_name), "fingerprint", fp, "seed", (json_int_t)m->seed,
                          "cpus", cpus);
    if (o && m->adopted[0]) json_object_set_new(o, "adopted", zn_json_text(m->adopted));
    bool ok = zn_json_write_line(f, o);
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return true;
    int e = errno;
    unlink(tmp);
    return zn_fail(err, len, "cannot write %s: %s", path, strerror(e));
}

/* A string member into out; false with a message. */
static bool member(json_t *o, const char *key, char *out, size_t outlen, char *msg, size_t len)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) return zn_fail(msg, len, "\"%s\" is missing or not a string", key);
    if (strlen(s) >= outlen) return zn_fail(msg, len, "\"%s\" is longer than %zu bytes", key, outlen - 1);
    memcpy(out, s, strlen(s) + 1);
    return true;
}

bool zn_sweep_manifest_read(const char *dir, zn_sweep_manifest *m, char *err, size_t len)
{
    char path[4200], msg[512], fp[32];
    memset(m, 0, sizeof *m);
    if (!path_in(dir, ZN_SWEEP_MANIFEST, path, sizeof path)) return zn_fail(err, len, "%s: path too long", dir);
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) return zn_fail(err, len, "%s: %s", path, errno == ENOENT ? "no such file" : je.text);
    const json_t *seed = json_object_get(o, "seed"), *cpus = json_object_get(o, "cpus");
    char *end = NULL;
    bool ok = json_is_object(o) && strcmp(json_string_value(json_object_get(o, "type")) ?: "", "sweep_run") == 0;
    if (!ok) zn_fail(msg, sizeof msg, "not a sweep run's manifest (its \"type\" is not \"sweep_run\")");
    ok = ok && member(o, "config", m->config, sizeof m->config, msg, sizeof msg) &&
         member(o, "model", m->model, sizeof m->model, msg, sizeof msg) &&
         member(o, "model_name", m->model_name, sizeof m->model_name, msg, sizeof msg) &&
         member(o, "fingerprint", fp, sizeof fp, msg, sizeof msg);
    if (ok && json_object_get(o, "label")) ok = member(o, "label", m->label, sizeof m->label, msg, sizeof msg);
    if (ok && json_object_get(o, "adopted")) ok = member(o, "adopted", m->adopted, sizeof m->adopted, msg, sizeof msg);
    if (ok) m->fingerprint = strtoull(fp, &end, 16);
    if (ok && (strlen(fp) != 16 || *end)) ok = zn_fail(msg, sizeof msg, "\"fingerprint\" is not 16 hex digits");
    if (ok && !json_is_integer(seed)) ok = zn_fail(msg, sizeof msg, "\"seed\" is missing or not an integer");
    if (ok) m->seed = (long)json_integer_value(seed);
    for (size_t i = 0; ok && json_is_array(cpus) && i < json_array_size(cpus) && m->n_cpus < ZN_SWEEP_MAX_CPUS; i++)
        if (json_is_string(json_array_get(cpus, i)))
            snprintf(m->cpus[m->n_cpus++], sizeof m->cpus[0], "%s", json_string_value(json_array_get(cpus, i)));
    json_decref(o);
    return ok || zn_fail(err, len, "%s: %s", path, msg);
}

/* The file at from copied whole to a new file at to; false with err naming the file and why. */
static bool copy_file(const char *from, const char *to, char *err, size_t len)
{
    FILE *in = fopen(from, "rb");
    if (!in) return zn_fail(err, len, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wbx");
    if (!out) {
        int e = errno;
        fclose(in);
        return zn_fail(err, len, "cannot write %s: %s", to, strerror(e));
    }
    char buf[65536];
    size_t got;
    int e = 0;
    while (!e && (got = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, got, out) != got) e = errno ? errno : EIO;
    if (!e && ferror(in)) e = errno ? errno : EIO;
    fclose(in);
    if (fclose(out) != 0 && !e) e = errno;
    if (!e) return true;
    unlink(to);
    return zn_fail(err, len, "cannot copy %s to %s: %s", from, to, strerror(e));
}

bool zn_sweep_adopt(const char *dir, const zn_sweep_manifest *m, const char *log_path, char *err, size_t len)
{
    char manifest[4200], log[4200], tmp[4210];
    struct stat st, src;
    if (!path_in(dir, ZN_SWEEP_MANIFEST, manifest, sizeof manifest) || !path_in(dir, ZN_SWEEP_LOG, log, sizeof log))
        return zn_fail(err, len, "%s: path too long", dir);
    if (stat(log, &st) == 0 && stat(log_path, &src) == 0 && st.st_dev == src.st_dev && st.st_ino == src.st_ino)
        return zn_fail(err, len, "it is the log of the run folder %s itself (move it out of the folder first)", dir);
    if (stat(manifest, &st) == 0 || stat(log, &st) == 0)
        return zn_fail(err, len, "%s holds a run already (move that folder away to adopt another log as its run)",
                       dir);
    /* the log goes in under its name only once the manifest marks it adopted: a crash between
     * leaves no log that a later sweep could take for one of its own */
    snprintf(tmp, sizeof tmp, "%s.tmp", log);
    unlink(tmp);
    if (!copy_file(log_path, tmp, err, len)) return false;
    if (zn_sweep_manifest_write(dir, m, err, len)) {
        if (rename(tmp, log) == 0) return true;
        zn_fail(err, len, "cannot rename %s to %s: %s", tmp, log, strerror(errno));
        unlink(manifest);
    }
    unlink(tmp);
    return false;
}

/* Cuts a last line without its newline off the file at path (a write the run did not finish). */
static bool cut_partial_line(const char *path, char *err, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) return zn_fail(err, len, "%s: %s", path, strerror(errno));
    long keep = 0, at = 0;
    int c;
    while ((c = getc(f)) != EOF)
        if (at++, c == '\n') keep = at;
    fclose(f);
    if (keep == at) return true;
    return truncate(path, keep) == 0 || zn_fail(err, len, "%s: cannot cut its incomplete last line: %s", path,
                                                strerror(errno));
}

bool zn_sweep_state_of(const char *dir, zn_sweep_state *state, char *err, size_t len)
{
    char log_path[4200], ckpt[4200], msg[1024];
    struct stat st;
    if (!path_in(dir, ZN_SWEEP_LOG, log_path, sizeof log_path) || !path_in(dir, ZN_SWEEP_CKPT, ckpt, sizeof ckpt))
        return zn_fail(err, len, "%s: path too long", dir);
    *state = stat(ckpt, &st) == 0 ? ZN_SWEEP_PARTIAL : ZN_SWEEP_NEW;
    if (stat(log_path, &st) != 0) return true; /* not started, or stopped before its first line */
    if (*state == ZN_SWEEP_PARTIAL && !cut_partial_line(log_path, err, len)) return false;
    zn_train_log log;
    if (!zn_train_log_read(log_path, &log, msg, sizeof msg)) {
        if (*state == ZN_SWEEP_NEW) return true; /* a fresh start writes it anew */
        return zn_fail(err, len, "%s (it cannot be continued; remove %s to run it again)", msg, dir);
    }
    if (!isnan(log.train_time)) *state = ZN_SWEEP_FINISHED;
    zn_train_log_free(&log);
    return true;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entry of run folder path; false with why when it is not a run that can be read. */
static bool entry_of(const char *path, zn_sweep_entry *e, char *why, size_t len)
{
    char log_path[4200], msg[1024];
    struct stat st;
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s", path);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return zn_fail(why, len, "not a run folder (a sweep folder holds one folder per run)");
    if (!zn_sweep_manifest_read(path, &e->m, msg, sizeof msg)) return zn_fail(why, len, "%s", msg);
    if (!path_in(path, ZN_SWEEP_LOG, log_path, sizeof log_path)) return zn_fail(why, len, "path too long");
    if (stat(log_path, &st) != 0) { /* queued, not started: an empty log */
        e->log.train_time = NAN;
        return true;
    }
    if (!zn_train_log_read(log_path, &e->log, msg, sizeof msg)) return zn_fail(why, len, "%s", msg);
    e->finished = !isnan(e->log.train_time);
    if (strcmp(e->log.model, e->m.model_name) != 0 || (!isnan(e->log.seed) && e->log.seed != (double)e->m.seed)) {
        zn_fail(why, len, "%s is a log of %s seed %.0f, but the manifest says %s seed %ld", log_path, e->log.model,
                e->log.seed, e->m.model_name, e->m.seed);
        zn_train_log_free(&e->log);
        return false;
    }
    return true;
}

bool zn_sweep_scan(const char *dir, zn_sweep_entry **out, int *n,
                   void (*skip)(const char *path, const char *why, void *ctx), void *ctx, char *err, size_t len)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return zn_fail(err, len, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    int count = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        if (count % 64 == 0) names = zn_realloc(names, sizeof *names * (size_t)(count + 64));
        names[count++] = zn_strdup(de->d_name);
    }
    closedir(d);
    if (count) qsort(names, (size_t)count, sizeof *names, by_name);
    *out = zn_calloc((size_t)count + 1, sizeof **out);
    for (int i = 0; i < count; i++) {
        char path[4096], why[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (entry_of(path, &(*out)[*n], why, sizeof why)) ++*n;
        else skip(path, why, ctx);
        free(names[i]);
    }
    free(names);
    return true;
}

void zn_sweep_entries_free(zn_sweep_entry *e, int n)
{
    for (int i = 0; i < n; i++) zn_train_log_free(&e[i].log);
    free(e);
}

int zn_sweep_configs(const zn_sweep_entry *e, int n, int *config_of)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < i && strcmp(e[j].m.config, e[i].m.config) != 0) j++;
        config_of[i] = j < i ? config_of[j] : k++;
    }
    return k;
}
