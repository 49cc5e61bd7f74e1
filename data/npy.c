/* npy.c: NumPy arrays as a data set: a folder of .npy files or an .npz archive of them (docs/data.md,
 * "NumPy arrays"). The .npy header (versions 1-3) is parsed strictly, and what it claims must be
 * exactly what the file holds. A plain .npy is memory-mapped: uint8 NCHW images are used from the
 * mapping as they are; other layouts and float32 are converted from it. .npz members are read
 * through libarchive (already linked for the downloader), stored or deflated. */
#include "data/dataset.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAX_SIDE 4096

/* An array's bytes: a file mapping, or a buffer read from an archive member. */
typedef struct {
    uint8_t *p;
    size_t len;
    bool mapped;
    char name[300]; /* the file or the archive member, for messages */
} npy_bytes;

static void bytes_free(npy_bytes *b)
{
    if (b->mapped) munmap(b->p, b->len);
    else free(b->p);
    b->p = NULL;
}

/* ---- the header ------------------------------------------------------------------------------ */

static const char *skip_sp(const char *s, const char *end)
{
    while (s < end && *s == ' ') s++;
    return s;
}

/* A quoted string ('...' or "...") into out; NULL when there is none. */
static const char *quoted(const char *s, const char *end, char *out, size_t outlen)
{
    if (s >= end || (*s != '\'' && *s != '"')) return NULL;
    char q = *s++;
    size_t n = 0;
    while (s < end && *s != q) {
        if (n + 1 >= outlen) return NULL;
        out[n++] = *s++;
    }
    out[n] = '\0';
    return s < end ? s + 1 : NULL;
}

static const char *shape_tuple(const char *s, const char *end, zn_npy_array *a)
{
    if (s >= end || *s++ != '(') return NULL;
    a->rank = 0;
    bool comma = false;
    for (;;) {
        s = skip_sp(s, end);
        if (s < end && *s == ')') return a->rank == 1 && !comma ? NULL : s + 1; /* (5) is no tuple */
        if (s >= end || *s < '0' || *s > '9' || a->rank == ZN_NPY_MAX_RANK) return NULL;
        int64_t v = 0;
        while (s < end && *s >= '0' && *s <= '9') {
            if (v > (INT64_MAX - 9) / 10) return NULL;
            v = v * 10 + (*s++ - '0');
        }
        a->shape[a->rank++] = v;
        s = skip_sp(s, end);
        comma = s < end && *s == ',';
        if (comma) s++;
        else if (s >= end || *s != ')') return NULL;
    }
}

/* descr: byte order '<', '>' or '|', then kind u/i/f and the item size. */
static bool parse_descr(const char *d, zn_npy_array *a)
{
    if (strlen(d) != 3 || !strchr("<>|", d[0]) || !strchr("uif", d[1]) || !strchr("1248", d[2]))
        return false;
    a->kind = d[1];
    a->item = d[2] - '0';
    a->big_endian = d[0] == '>';
    if (d[0] == '|' && a->item != 1) return false; /* a multi-byte type needs its byte order */
    return a->kind != 'f' || a->item == 4 || a->item == 8;
}

bool zn_npy_parse_header(const uint8_t *buf, size_t len, zn_npy_array *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return zn_dataset_fail(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
    if (buf[6] < 1 || buf[6] > 3 || buf[7] != 0)
        return zn_dataset_fail(err, errlen, ".npy format version %d.%d is not 1.0, 2.0 or 3.0", buf[6], buf[7]);
    size_t pre = buf[6] == 1 ? 10 : 12;
    if (len < pre) return zn_dataset_fail(err, errlen, "truncated in the .npy header");
    size_t hlen = buf[6] == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                              : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (hlen > len - pre)
        return zn_dataset_fail(err, errlen, "truncated: the header claims %zu bytes, the file holds %zu", hlen,
                               len - pre);
    const char *s = (const char *)buf + pre, *end = s + hlen;
    if (hlen == 0 || end[-1] != '\n') return zn_dataset_fail(err, errlen, "the .npy header does not end in a newline");
    end--;
    while (end > s && end[-1] == ' ') end--;
    s = skip_sp(s, end);
    if (s >= end || *s++ != '{') return zn_dataset_fail(err, errlen, "the .npy header is not a dict");
    bool seen[3] = {false, false, false};
    char descr[16] = "";
    for (;;) {
        s = skip_sp(s, end);
        if (s < end && *s == '}') break;
        char key[32];
        s = quoted(s, end, key, sizeof key);
        if (s) s = skip_sp(s, end);
        if (!s || s >= end || *s++ != ':') return zn_dataset_fail(err, errlen, "the .npy header's dict is malformed");
        s = skip_sp(s, end);
        int k = strcmp(key, "descr") == 0 ? 0 : strcmp(key, "fortran_order") == 0 ? 1 : strcmp(key, "shape") == 0 ? 2 : -1;
        if (k < 0) return zn_dataset_fail(err, errlen, "the .npy header has an unknown key '%s'", key);
        if (seen[k]) return zn_dataset_fail(err, errlen, "the .npy header gives '%s' twice", key);
        seen[k] = true;
        if (k == 0) {
            s = quoted(s, end, descr, sizeof descr);
            if (!s) return zn_dataset_fail(err, errlen, "the .npy header's descr is not a simple type string");
            if (!parse_descr(descr, a))
                return zn_dataset_fail(err, errlen, "dtype '%s' is not an integer or float32/float64 array", descr);
        } else if (k == 1) {
            bool t = (size_t)(end - s) >= 4 && memcmp(s, "True", 4) == 0;
            if (!t && !((size_t)(end - s) >= 5 && memcmp(s, "False", 5) == 0))
                return zn_dataset_fail(err, errlen, "the .npy header's fortran_order is not True or False");
            if (t) return zn_dataset_fail(err, errlen, "fortran_order is True: save a C-ordered array "
                                                       "(numpy.ascontiguousarray)");
            s += 5;
        } else if (!(s = shape_tuple(s, end, a))) {
            return zn_dataset_fail(err, errlen, "the .npy header's shape is not a tuple of up to %d sizes",
                                   ZN_NPY_MAX_RANK);
        }
        s = skip_sp(s, end);
        if (s < end && *s == ',') s++;
        else if (s >= end || *s != '}') return zn_dataset_fail(err, errlen, "the .npy header's dict is malformed");
    }
    if (skip_sp(s + 1, end) != end) return zn_dataset_fail(err, errlen, "bytes after the .npy header's dict");
    if (!seen[0] || !seen[1] || !seen[2])
        return zn_dataset_fail(err, errlen, "the .npy header lacks '%s'",
                               !seen[0] ? "descr" : !seen[1] ? "fortran_order" : "shape");
    a->data_offset = pre + hlen;
    a->count = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->shape[i] && a->count > SIZE_MAX / (size_t)a->item / (size_t)a->shape[i])
            return zn_dataset_fail(err, errlen, "the shape's size overflows");
        a->count *= (size_t)a->shape[i];
    }
    size_t want = a->count * (size_t)a->item, have = len - a->data_offset;
    if (want != have)
        return zn_dataset_fail(err, errlen, "%s: the header claims %zu bytes of data (%s), the file holds %zu",
                               want > have ? "truncated" : "trailing bytes", want, descr, have);
    return true;
}

/* ---- the bytes ------------------------------------------------------------------------------- */

static bool map_file(const char *path, npy_bytes *b, char *err, size_t errlen)
{
    snprintf(b->name, sizeof b->name, "%s", path);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0) return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    bool ok = fstat(fd, &st) == 0;
    if (!ok || !S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return zn_dataset_fail(err, errlen, "%s: %s", path, !ok ? strerror(errno) : st.st_size ? "not a regular file" : "empty file");
    }
    /* private and writable: a reader that changed a pixel would change its copy, never the file */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return zn_dataset_fail(err, errlen, "%s: mmap: %s", path, strerror(errno));
    *b = (npy_bytes){.p = p, .len = (size_t)st.st_size, .mapped = true};
    snprintf(b->name, sizeof b->name, "%s", path);
    return true;
}

/* Members `names` of the .npz at path into out[]; a member is read only up to deflate's largest
 * ratio (1032:1) of the archive's size, so a lying size cannot exhaust memory. */
static bool read_npz(const char *path, const char *const *names, npy_bytes *out, int n, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t cap = (size_t)st.st_size * 1032 + 4096;
    struct archive *ar = archive_read_new();
    archive_read_support_format_zip(ar);
    bool ok = archive_read_open_filename(ar, path, 65536) == ARCHIVE_OK;
    struct archive_entry *e;
    int found = 0;
    while (ok && found < n) {
        int r = archive_read_next_header(ar, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) { ok = false; break; }
        int k = 0;
        while (k < n && strcmp(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", names[k]) != 0) k++;
        if (k == n) continue;
        if (out[k].p) {
            archive_read_close(ar), archive_read_free(ar);
            return zn_dataset_fail(err, errlen, "%s: holds %s twice", path, names[k]);
        }
        snprintf(out[k].name, sizeof out[k].name, "%s[%s]", path, names[k]);
        size_t len = 0, size = 65536;
        uint8_t *p = malloc(size);
        for (la_ssize_t got = 1; p && got > 0;) {
            if (len == size) {
                uint8_t *q = size < cap ? realloc(p, size * 2 < cap ? size * 2 : cap) : NULL;
                if (!q) break;
                p = q, size = size * 2 < cap ? size * 2 : cap;
            }
            got = archive_read_data(ar, p + len, size - len);
            if (got < 0) ok = false;
            else len += (size_t)got;
            if (got == 0) break;
        }
        if (!ok || !p || len == size) {
            free(p);
            bool big = ok && p;
            archive_read_close(ar), archive_read_free(ar);
            return zn_dataset_fail(err, errlen, "%s: %s", out[k].name,
                                   big ? "larger than the archive could hold" : !p ? strerror(ENOMEM) : "corrupt member");
        }
        out[k].p = p, out[k].len = len;
        found++;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s", archive_error_string(ar) ? archive_error_string(ar) : "not a zip archive");
    archive_read_close(ar);
    archive_read_free(ar);
    if (!ok) return zn_dataset_fail(err, errlen, "%s: not a readable .npz: %s", path, msg);
    for (int k = 0; k < n; k++)
        if (!out[k].p) return zn_dataset_fail(err, errlen, "%s: no member %s", path, names[k]);
    return true;
}

/* ---- the data set ---------------------------------------------------------------------------- */

static uint64_t load_uint(const uint8_t *p, int item, bool big)
{
    uint64_t v = 0;
    for (int i = 0; i < item; i++) v |= (uint64_t)p[big ? item - 1 - i : i] << (8 * i);
    return v;
}

/* Element i of an integer array, as a signed value (uint64 above INT64_MAX becomes negative: out
 * of every range a label may have). */
static int64_t int_at(const zn_npy_array *a, const uint8_t *data, size_t i)
{
    uint64_t v = load_uint(data + i * (size_t)a->item, a->item, a->big_endian);
    if (a->kind == 'i' && a->item < 8 && (v >> (8 * a->item - 1)) & 1) v |= ~0ull << (8 * a->item);
    return (int64_t)v;
}

static double float_at(const zn_npy_array *a, const uint8_t *data, size_t i)
{
    uint64_t v = load_uint(data + i * (size_t)a->item, a->item, a->big_endian);
    if (a->item == 8) {
        double d;
        memcpy(&d, &v, 8);
        return d;
    }
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static bool images_into(const zn_npy_array *a, npy_bytes *b, bool nchw, zn_dataset *out, char *err, size_t errlen)
{
    if (!((a->kind == 'u' && a->item == 1) || (a->kind == 'f' && a->item == 4)))
        return zn_dataset_fail(err, errlen, "%s: images must be uint8 or float32, not %s%d", b->name,
                               a->kind == 'f' ? "float" : a->kind == 'u' ? "uint" : "int", a->item * 8);
    if (a->rank != 3 && a->rank != 4)
        return zn_dataset_fail(err, errlen, "%s: images must have 4 dimensions (%s) or 3 (N, H, W), not %d",
                               b->name, nchw ? "N, C, H, W" : "N, H, W, C", a->rank);
    int64_t n = a->shape[0], c = a->rank == 3 ? 1 : a->shape[nchw ? 1 : 3];
    int64_t h = a->shape[a->rank == 3 || nchw ? a->rank - 2 : 1], w = a->shape[a->rank == 3 || nchw ? a->rank - 1 : 2];
    if (n < 1 || n > INT32_MAX || c < 1 || c > ZN_DATASET_MAX_CHANNELS || h < 1 || h > NPY_MAX_SIDE || w < 1 ||
        w > NPY_MAX_SIDE)
        return zn_dataset_fail(err, errlen, "%s: %lld images of %lld channels x %lld x %lld (as %s): need at least one "
                               "image, 1 to %d channels, sides 1 to %d", b->name, (long long)n, (long long)c,
                               (long long)h, (long long)w, nchw ? "NCHW" : "NHWC", ZN_DATASET_MAX_CHANNELS, NPY_MAX_SIDE);
    const uint8_t *data = b->p + a->data_offset;
    if (b->mapped && (nchw || c == 1) && a->kind == 'u') { /* already znet's layout: use the mapping */
        memset(out, 0, sizeof *out);
        *out = (zn_dataset){.n = (int)n, .c = (int)c, .h = (int)h, .w = (int)w, .images = (uint8_t *)data,
                            .map = b->p, .map_len = b->len};
        out->labels = calloc((size_t)n, 1);
        b->p = NULL; /* the data set owns the mapping now */
        if (!out->labels) return zn_dataset_fail(err, errlen, "%s: %s", b->name, strerror(ENOMEM));
        return true;
    }
    if (!zn_dataset_alloc(out, (int)n, (int)c, (int)h, (int)w, err, errlen)) return false;
    size_t hw = (size_t)(h * w), chw = (size_t)c * hw;
    for (size_t img = 0; img < (size_t)n; img++)
        for (size_t px = 0; px < hw; px++)
            for (size_t ch = 0; ch < (size_t)c; ch++) {
                size_t dst = img * chw + ch * hw + px; /* znet's [n][c][h][w] */
                size_t src = nchw ? dst : img * chw + px * (size_t)c + ch;
                if (a->kind == 'u') {
                    out->images[dst] = data[src];
                    continue;
                }
                double v = float_at(a, data, src);
                if (!(v >= 0 && v <= 1))
                    return zn_dataset_fail(err, errlen, "%s: float32 pixel %zu (image %zu) is %g, not in [0, 1]",
                                           b->name, src, img, v);
                out->images[dst] = (uint8_t)lrint(v * 255);
            }
    return true;
}

static bool labels_into(const zn_npy_array *a, const npy_bytes *b, const npy_bytes *imgs, int classes,
                        zn_dataset *out, char *err, size_t errlen)
{
    if (a->kind == 'f')
        return zn_dataset_fail(err, errlen, "%s: labels must be integers, not float%d", b->name, a->item * 8);
    if (a->rank != 1) return zn_dataset_fail(err, errlen, "%s: labels must have 1 dimension, not %d", b->name, a->rank);
    if (a->shape[0] != out->n)
        return zn_dataset_fail(err, errlen, "%s: %lld labels for the %d images of %s", b->name,
                               (long long)a->shape[0], out->n, imgs->name);
    for (int i = 0; i < out->n; i++) {
        int64_t v = int_at(a, b->p + a->data_offset, (size_t)i);
        if (v < 0 || v >= classes)
            return zn_dataset_fail(err, errlen, "%s: label %lld of image %d is out of range (%d classes: 0 to %d)",
                                   b->name, (long long)v, i, classes, classes - 1);
        out->labels[i] = (uint8_t)v;
    }
    out->n_classes = classes;
    for (int k = 0; k < classes; k++) snprintf(out->class_names[k], ZN_CLASS_NAME_MAX, "%d", k);
    return true;
}

/* err so far, with the array's name in front. */
static bool named(const npy_bytes *b, char *err, size_t errlen)
{
    char inner[512];
    snprintf(inner, sizeof inner, "%s", err);
    return zn_dataset_fail(err, errlen, "%s: %s", b->name, inner);
}

bool zn_npy_load(const char *path, bool train, bool nchw, int classes, zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (classes < 1 || classes > ZN_DATASET_MAX_CLASSES)
        return zn_dataset_fail(err, errlen, "npy: %d classes; 1 to %d are possible", classes, ZN_DATASET_MAX_CLASSES);
    const char *names[2] = {train ? "train_images.npy" : "test_images.npy", train ? "train_labels.npy" : "test_labels.npy"};
    npy_bytes b[2] = {0};
    struct stat st;
    bool ok;
    if (stat(path, &st) != 0) return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char p[2][4096];
        ok = true;
        for (int k = 0; k < 2 && ok; k++) {
            ok = zn_data_path_join(p[k], sizeof p[k], path, names[k]);
            ok = ok ? map_file(p[k], &b[k], err, errlen) : zn_dataset_fail(err, errlen, "%s: path too long", path);
        }
    } else {
        ok = read_npz(path, names, b, 2, err, errlen);
    }
    zn_npy_array a[2];
    for (int k = 0; k < 2 && ok; k++)
        if (!zn_npy_parse_header(b[k].p, b[k].len, &a[k], err, errlen)) ok = named(&b[k], err, errlen);
    ok = ok && images_into(&a[0], &b[0], nchw, out, err, errlen) && labels_into(&a[1], &b[1], &b[0], classes, out, err, errlen);
    for (int k = 0; k < 2; k++)
        if (b[k].p) bytes_free(&b[k]);
    for (int ch = 0; ch < ZN_DATASET_MAX_CHANNELS; ch++) /* no known statistics: scale to [0, 1] */
        out->mean[ch] = 0, out->std[ch] = 255;
    if (!ok) zn_dataset_free(out);
    return ok;
}

bool zn_npy_images(const char *path, bool nchw, zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    npy_bytes b = {0};
    zn_npy_array a;
    bool ok = map_file(path, &b, err, errlen) &&
              (zn_npy_parse_header(b.p, b.len, &a, err, errlen) || named(&b, err, errlen)) &&
              images_into(&a, &b, nchw, out, err, errlen);
    if (b.p) bytes_free(&b);
    if (!ok) zn_dataset_free(out);
    return ok;
}
