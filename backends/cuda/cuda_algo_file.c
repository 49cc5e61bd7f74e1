/* cuda_algo_file.c: the cuDNN algorithm cache file and the backend's environment settings
 * (cuda_algo_file.h). One text line per timed shape after a header line; every field is checked
 * on reading and any bad line rejects the whole file, so a damaged cache is named and ignored.
 * What cuDNN itself thinks of a read entry is checked where it is used (cuda_conv.c). */
#include "backends/cuda/cuda_algo_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/op_list.h"
#include "graph/util.h"

#define HEADER "# znet cuDNN algorithm cache, version 1"
#define FIELDS 23 /* numbers after the device tag */
#define ALGO_MAX 8  /* >= every CUDNN_CONVOLUTION_*_ALGO_COUNT */
#define MATH_MAX 3  /* CUDNN_FMA_MATH, the largest cudnnMathType_t */
#define EXTENT_MAX (1 << 24)

/* The entry's numbers in file order, as pointers so reading and writing share one list. */
static void fields_of(zn_cuda_algo_entry *e, int *f[FIELDS - 1])
{
    zn_cuda_conv_key *k = &e->key;
    int *all[FIELDS - 1] = {&k->op, &k->dtype, &k->n, &k->c, &k->h, &k->w, &k->o, &k->kh,
                            &k->kw, &k->oh, &k->ow, &k->stride[0], &k->stride[1], &k->pad[0],
                            &k->pad[1], &k->dilation[0], &k->dilation[1], &k->groups, &k->fused,
                            &e->deterministic, &e->algo, &e->math};
    memcpy(f, all, sizeof all);
}

/* Inclusive bounds of each field of fields_of: op, dtype (a cudnnDataType_t), the extents,
 * strides, padding, dilations and groups, fused, deterministic, algo, math. */
#define X EXTENT_MAX
static const long field_lo[FIELDS - 1] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1,
                                          0, 0, 0, 0};
static const long field_hi[FIELDS - 1] = {ZN_OP_COUNT - 1, 16, X, X, X, X, X, X, X, X, X, X, X,
                                          X, X, X, X, X, 1, 1, ALGO_MAX - 1, MATH_MAX};
#undef X

static bool is_conv_op(int op)
{
    return op == ZN_OP_CONV2D || op == ZN_OP_CONV2D_BWD_DATA || op == ZN_OP_CONV2D_BWD_FILTER;
}

/* One entry line; false with what is wrong in why. */
static bool parse_line(char *line, zn_cuda_algo_entry *e, char *why, size_t len)
{
    memset(e, 0, sizeof *e); /* keys are compared with memcmp */
    char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok || strlen(tok) >= sizeof e->device)
        return zn_fail(why, len, "the device tag is missing or longer than %zu characters",
                       sizeof e->device - 1);
    memcpy(e->device, tok, strlen(tok) + 1);
    int *f[FIELDS - 1];
    fields_of(e, f);
    for (int i = 0; i < FIELDS; i++) {
        if (!(tok = strtok_r(NULL, " \t\r\n", &save)))
            return zn_fail(why, len, "%d numbers after the device tag, %d expected", i, FIELDS);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(tok, &end, 10);
        if (*end || errno || tok[0] == '-' || tok[0] == '+')
            return zn_fail(why, len, "field %d ('%s') is not a whole number", i + 2, tok);
        if (i == FIELDS - 1) {
            if (v > (unsigned long long)((size_t)-1 / 2))
                return zn_fail(why, len, "workspace %s bytes is too large", tok);
            e->workspace = (size_t)v;
        } else if ((long long)v < field_lo[i] || v > (unsigned long long)field_hi[i]) {
            return zn_fail(why, len, "field %d (%s) is outside %ld..%ld", i + 2, tok, field_lo[i],
                           field_hi[i]);
        } else {
            *f[i] = (int)v;
        }
    }
    if (strtok_r(NULL, " \t\r\n", &save))
        return zn_fail(why, len, "more than %d numbers after the device tag", FIELDS);
    if (!is_conv_op(e->key.op))
        return zn_fail(why, len, "op %d is not a convolution", e->key.op);
    if (e->key.c % e->key.groups || e->key.o % e->key.groups)
        return zn_fail(why, len, "%d groups do not divide %d input and %d output channels",
                       e->key.groups, e->key.c, e->key.o);
    return true;
}

void zn_cuda_algo_file_free(zn_cuda_algo_file *f)
{
    free(f->entries);
    memset(f, 0, sizeof *f);
}

static zn_cuda_algo_entry *find(const zn_cuda_algo_file *f, const char *device,
                                const zn_cuda_conv_key *k, int deterministic)
{
    for (int i = 0; i < f->n; i++) {
        zn_cuda_algo_entry *e = &f->entries[i];
        if (e->deterministic == deterministic && strcmp(e->device, device) == 0 &&
            memcmp(&e->key, k, sizeof *k) == 0)
            return e;
    }
    return NULL;
}

const zn_cuda_algo_entry *zn_cuda_algo_file_find(const zn_cuda_algo_file *f, const char *device,
                                                 const zn_cuda_conv_key *k, int deterministic)
{
    return find(f, device, k, deterministic);
}

bool zn_cuda_algo_file_put(zn_cuda_algo_file *f, const zn_cuda_algo_entry *e)
{
    zn_cuda_algo_entry *old = find(f, e->device, &e->key, e->deterministic);
    if (!old) {
        if (f->n == f->cap) {
            int cap = f->cap ? 2 * f->cap : 32;
            zn_cuda_algo_entry *grown = realloc(f->entries, sizeof *grown * (size_t)cap);
            if (!grown) return false;
            f->entries = grown;
            f->cap = cap;
        }
        old = &f->entries[f->n++];
    }
    *old = *e;
    f->dirty = true;
    return true;
}

bool zn_cuda_algo_file_read(zn_cuda_algo_file *f, const char *path, char *err, size_t len)
{
    zn_cuda_algo_file_free(f);
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT || zn_fail(err, len, "%s: %s", path, strerror(errno));
    char line[1024], why[256];
    bool ok = true;
    for (int no = 1; ok && fgets(line, sizeof line, in); no++) {
        if (!strchr(line, '\n') && !feof(in)) {
            ok = zn_fail(err, len, "%s:%d: a line longer than %zu characters", path, no,
                         sizeof line - 2);
        } else if (no == 1) {
            line[strcspn(line, "\r\n")] = 0;
            if (strcmp(line, HEADER) != 0)
                ok = zn_fail(err, len, "%s:1: not a znet algorithm cache (the first line should "
                             "read \"%s\")", path, HEADER);
        } else {
            zn_cuda_algo_entry e;
            if (!parse_line(line, &e, why, sizeof why))
                ok = zn_fail(err, len, "%s:%d: %s", path, no, why);
            else if (find(f, e.device, &e.key, e.deterministic))
                ok = zn_fail(err, len, "%s:%d: a second entry for the same shape", path, no);
            else if (!zn_cuda_algo_file_put(f, &e))
                ok = zn_fail(err, len, "%s: out of memory at line %d", path, no);
        }
    }
    if (ok && ferror(in)) ok = zn_fail(err, len, "%s: read error", path);
    fclose(in);
    if (!ok) zn_cuda_algo_file_free(f);
    f->dirty = false;
    return ok;
}

/* Makes every folder above path; false with the reason. */
static bool make_parents(const char *path, char *err, size_t len)
{
    char dir[4096];
    if (strlen(path) >= sizeof dir) return zn_fail(err, len, "%s: path too long", path);
    strcpy(dir, path);
    for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return zn_fail(err, len, "cannot make the folder %s: %s", dir, strerror(errno));
        *p = '/';
    }
    return true;
}

bool zn_cuda_algo_file_write(const zn_cuda_algo_file *f, const char *path, char *err, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if (!make_parents(path, err, len)) return false;
    FILE *out = fopen(tmp, "w");
    if (!out) return zn_fail(err, len, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(out, "%s\n", HEADER);
    for (int i = 0; i < f->n; i++) {
        zn_cuda_algo_entry e = f->entries[i];
        int *fields[FIELDS - 1];
        fields_of(&e, fields);
        fprintf(out, "%s", e.device);
        for (int k = 0; k < FIELDS - 1; k++) fprintf(out, " %d", *fields[k]);
        fprintf(out, " %zu\n", e.workspace);
    }
    bool ok = !ferror(out);
    ok = (fclose(out) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int saved = errno;
        remove(tmp);
        return zn_fail(err, len, "cannot write %s: %s", path, strerror(saved));
    }
    return true;
}

void zn_cuda_algo_device_tag(char *out, size_t len, const char *name, int major, int minor,
                             long cudnn, int cudart)
{
    snprintf(out, len, "%s/sm%d%d/cudnn%ld/cudart%d", name, major, minor, cudnn, cudart);
    size_t name_len = strlen(name) < len ? strlen(name) : len - 1;
    for (size_t i = 0; i < name_len; i++)
        if (out[i] == ' ' || out[i] == '\t' || out[i] == '/') out[i] = '_';
}

/* "ZNET_X=value: expected ..." */
static bool bad_value(char *err, size_t len, const char *var, const char *value, const char *want)
{
    return zn_fail(err, len, "%s=%s: expected %s", var, value, want);
}

bool zn_cuda_settings_parse(zn_cuda_settings *s, const char *graph, const char *cache,
                            const char *xdg_cache_home, const char *home, char *err, size_t len)
{
    memset(s, 0, sizeof *s);
    s->graphs = true;
    if (graph) {
        if (strcmp(graph, "off") == 0 || strcmp(graph, "0") == 0) s->graphs = false;
        else if (strcmp(graph, "on") != 0 && strcmp(graph, "1") != 0)
            return bad_value(err, len, "ZNET_CUDA_GRAPH", graph, "on or off");
    }
    const char *where = cache, *leaf = "";
    if (cache && strcmp(cache, "off") == 0) return true;
    if (cache && !*cache)
        return bad_value(err, len, "ZNET_CUDNN_CACHE", "", "a file name or off");
    if (!cache && xdg_cache_home && *xdg_cache_home) where = xdg_cache_home, leaf = "/znet/cudnn-algos.txt";
    else if (!cache && home && *home) where = home, leaf = "/.cache/znet/cudnn-algos.txt";
    if (!where) return true; /* no place for a default: no cache */
    size_t a = strlen(where), b = strlen(leaf);
    if (a + b >= sizeof s->cache)
        return zn_fail(err, len, "the cuDNN algorithm cache path %s%s is too long", where, leaf);
    memcpy(s->cache, where, a);
    memcpy(s->cache + a, leaf, b + 1);
    return true;
}
