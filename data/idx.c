/* idx.c: the IDX reader (MNIST's format: big-endian 32-bit header, then uint8 data), through
 * zlib so gzip'd and plain files both read, and the Fashion-MNIST loader built on it. Images may
 * be centred in a zero 32x32 frame so the CIFAR-shaped models run on them unchanged. */
#include "data/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 2051u /* 0x00000803: unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 2049u /* 0x00000801: unsigned bytes, 1 dimension */
#define IDX_CLASSES 10
#define IDX_MAX_SIDE 4096
#define PAD_SIDE 32
#define CHUNK_BYTES (1u << 20)

static const char *const fashion_names[IDX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static const char fashion_hint[] =
    "Fashion-MNIST is needed: install Debian's dataset-fashion-mnist package (it puts the files "
    "in /usr/share/datasets/fashion-mnist), or download the four .gz files from "
    "https://github.com/zalandoresearch/fashion-mnist into ~/.cache/znet/fashion-mnist/ "
    "(or point --data or ZNET_DATA at their folder)";

typedef struct {
    gzFile gz;
    const char *path;
    unsigned long long read; /* bytes of data read so far */
} idx_file;

static bool idx_open(idx_file *f, const char *path, char *err, size_t errlen)
{
    f->path = path;
    f->read = 0;
    struct stat st; /* a pipe or a device has no size to check a header against (and may not end) */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return zn_dataset_fail(err, errlen, "%s: not a regular file", path);
    errno = 0; /* gzopen sets errno when the open fails, not when its allocation does */
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOMEM));
    return true;
}

static void idx_close(idx_file *f)
{
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Reads up to n bytes; returns the count, or -1 with err set on a read error or a zlib error
 * (corrupt data, or a compressed stream cut short). `what` says where, for the message. */
static long idx_read(idx_file *f, void *buf, size_t n, const char *what, char *err, size_t errlen)
{
    int got = gzread(f->gz, buf, (unsigned)n);
    int code = Z_OK;
    const char *msg = gzerror(f->gz, &code);
    if (got >= 0 && (code == Z_OK || code == Z_STREAM_END)) {
        f->read += (unsigned long long)got;
        return got;
    }
    if (code == Z_ERRNO)
        zn_dataset_fail(err, errlen, "%s: read at %s: %s", f->path, what, strerror(errno));
    else {
        size_t plen = strlen(f->path); /* gzerror's text starts with the path */
        if (strncmp(msg, f->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
        zn_dataset_fail(err, errlen, "%s: gzip data corrupt or cut short (%s) at %s", f->path,
                        msg, what);
    }
    return -1;
}

/* Reads a header of n big-endian 32-bit fields. */
static bool read_header(idx_file *f, uint32_t *fields, int n, char *err, size_t errlen)
{
    uint8_t raw[16];
    long got = idx_read(f, raw, (size_t)n * 4, "header", err, errlen);
    if (got < 0) return false;
    if (got != n * 4)
        return zn_dataset_fail(err, errlen, "%s: %ld bytes, too short for the %d-byte IDX header",
                               f->path, got, n * 4);
    for (int i = 0; i < n; i++)
        fields[i] = (uint32_t)raw[4 * i] << 24 | (uint32_t)raw[4 * i + 1] << 16 |
                    (uint32_t)raw[4 * i + 2] << 8 | raw[4 * i + 3];
    return true;
}

static bool check_magic(const idx_file *f, uint32_t magic, uint32_t want, const char *kind,
                        char *err, size_t errlen)
{
    if (magic == want) return true;
    return zn_dataset_fail(err, errlen, "%s: magic number %u, expected %u (an IDX %s file)",
                           f->path, magic, want, kind);
}

/* Where read records go: the data set, the file (for messages) and the source image size (the
 * destination may be a larger frame). */
typedef struct {
    zn_dataset *out;
    const idx_file *f;
    int rows, cols;
} idx_target;

typedef bool (*place_fn)(const uint8_t *recs, long first, long count, const idx_target *t,
                         char *err, size_t errlen);

/* A gzip'd file's size and its last four bytes, the length of its stream mod 2^32. */
static bool gzip_tail(const char *path, unsigned long long *size, uint32_t *isize)
{
    FILE *raw = fopen(path, "rb");
    uint8_t tail[4] = {0};
    bool ok = raw && fseek(raw, -4, SEEK_END) == 0 && fread(tail, 1, 4, raw) == 4;
    long end = ok ? ftell(raw) : -1;
    if (raw) fclose(raw);
    *size = end < 0 ? 0 : (unsigned long long)end;
    *isize = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
             (uint32_t)tail[3] << 24;
    return ok && end >= 0;
}

/* Whether a gzip'd file vouches for a stream of `total` bytes without decompressing it: its
 * trailer records exactly that length (below 2^32, so the mod is no ambiguity) and deflate, at
 * most 1032:1, could produce it from the file's size. Bounds any allocation by the file. */
static bool gzip_vouches(const idx_file *f, unsigned long long total)
{
    unsigned long long size;
    uint32_t isize;
    return gzip_tail(f->path, &size, &isize) && total == isize && total / 1032 <= size;
}

/* The length of a gzip'd file's stream after the header, counted through a bounded buffer,
 * then the stream is rewound to just after the header. zlib stops at the end of a gzip stream
 * and ignores bytes after it, which a sound file does not have: its trailer must match too. */
static bool count_stream(idx_file *f, unsigned long long *out, char *err, size_t errlen)
{
    unsigned long long header = f->read;
    uint8_t *buf = malloc(CHUNK_BYTES);
    if (!buf) return zn_dataset_fail(err, errlen, "%s: %s", f->path, strerror(ENOMEM));
    long got;
    do {
        char what[64];
        snprintf(what, sizeof what, "byte %llu", f->read);
        got = idx_read(f, buf, CHUNK_BYTES, what, err, errlen);
    } while (got > 0);
    free(buf);
    if (got < 0) return false;
    unsigned long long size;
    uint32_t isize;
    if (gzip_tail(f->path, &size, &isize) && isize != (uint32_t)f->read)
        return zn_dataset_fail(err, errlen, "%s: bytes after the end of the gzip data (the stream "
                               "holds %llu bytes, the file's last four bytes say %u): a damaged or "
                               "concatenated file?", f->path, f->read, isize);
    *out = f->read - header;
    f->read = header;
    if (gzrewind(f->gz) != 0 || gzseek(f->gz, (z_off_t)header, SEEK_SET) != (z_off_t)header)
        return zn_dataset_fail(err, errlen, "%s: cannot rewind the gzip stream", f->path);
    return true;
}

/* Before anything is allocated: the data after the header holds exactly n records of rec bytes
 * (n * rec cannot overflow: callers bound n by INT_MAX and rec by 2^24). A plain file's size
 * says; a gzip'd file's trailer says when it agrees, else its stream is counted. */
static bool check_claim(idx_file *f, unsigned long long n, unsigned long long rec,
                        const char *noun, char *err, size_t errlen)
{
    unsigned long long need = n * rec, have = 0;
    bool plain = gzdirect(f->gz);
    if (plain) {
        struct stat st;
        if (stat(f->path, &st) != 0)
            return zn_dataset_fail(err, errlen, "%s: %s", f->path, strerror(errno));
        /* a file cut since its header was read holds nothing after it */
        have = (unsigned long long)st.st_size > f->read ? (unsigned long long)st.st_size - f->read : 0;
    } else if (gzip_vouches(f, f->read + need)) {
        return true;
    } else if (!count_stream(f, &have, err, errlen)) {
        return false;
    }
    const char *holder = plain ? "the file holds" : "the gzip stream holds";
    if (have < need)
        return zn_dataset_fail(err, errlen, "%s: truncated: data ends in %s %llu of %llu (the "
                               "header claims %llu bytes of data, %s %llu)", f->path, noun,
                               have / rec, n, need, holder, have);
    if (have > need)
        return zn_dataset_fail(err, errlen, "%s: trailing bytes after %llu %ss (the header "
                               "claims %llu bytes of data, %s %llu)", f->path, n, noun, need,
                               holder, have);
    return true;
}

/* Reads n records of rec bytes each through a buffer, handing each chunk to place(); a short
 * read names the first missing record (a file that shrank after its size was checked, or a
 * gzip stream whose trailer lied), and data past the last record is an error too (reading on
 * makes zlib check the stream's CRC and length). */
static bool read_records(idx_file *f, long n, size_t rec, const char *noun, place_fn place,
                         const idx_target *t, char *err, size_t errlen)
{
    long per_chunk = (long)(CHUNK_BYTES / rec) > 0 ? (long)(CHUNK_BYTES / rec) : 1;
    uint8_t *buf = malloc((size_t)per_chunk * rec);
    if (!buf) return zn_dataset_fail(err, errlen, "%s: %s", f->path, strerror(ENOMEM));
    bool ok = true;
    for (long done = 0; ok && done < n;) {
        long want = n - done < per_chunk ? n - done : per_chunk;
        char what[64];
        snprintf(what, sizeof what, "%s %ld", noun, done);
        long got = idx_read(f, buf, (size_t)want * rec, what, err, errlen);
        if (got >= 0 && got != (long)((size_t)want * rec))
            ok = zn_dataset_fail(err, errlen, "%s: truncated: data ends in %s %ld of %ld",
                                 f->path, noun, done + got / (long)rec, n);
        ok = ok && got >= 0 && place(buf, done, want, t, err, errlen);
        done += want;
    }
    free(buf);
    if (!ok) return false;
    uint8_t extra;
    long got = idx_read(f, &extra, 1, "the end of the data", err, errlen);
    if (got > 0)
        return zn_dataset_fail(err, errlen, "%s: trailing bytes after %ld %ss", f->path, n, noun);
    return got == 0;
}

static bool place_images(const uint8_t *recs, long first, long count, const idx_target *t,
                         char *err, size_t errlen)
{
    (void)err, (void)errlen;
    zn_dataset *out = t->out;
    int top = (out->h - t->rows) / 2, left = (out->w - t->cols) / 2;
    for (long i = 0; i < count; i++) {
        const uint8_t *src = recs + (size_t)i * t->rows * t->cols;
        uint8_t *dst = out->images + (size_t)(first + i) * out->h * out->w;
        for (int y = 0; y < t->rows; y++)
            memcpy(dst + (size_t)(y + top) * out->w + left, src + (size_t)y * t->cols,
                   (size_t)t->cols);
    }
    return true;
}

static bool place_labels(const uint8_t *recs, long first, long count, const idx_target *t,
                         char *err, size_t errlen)
{
    for (long i = 0; i < count; i++) {
        if (recs[i] >= IDX_CLASSES)
            return zn_dataset_fail(err, errlen, "%s: record %ld: label %d is not in 0..%d",
                                   t->f->path, first + i, recs[i], IDX_CLASSES - 1);
        t->out->labels[first + i] = recs[i];
    }
    return true;
}

static bool load_opened(idx_file *img, idx_file *lab, bool pad_to_32, zn_dataset *out, char *err,
                        size_t errlen)
{
    uint32_t ih[4] = {0}, lh[2] = {0}; /* zeroed only to quiet -O3's maybe-uninitialized */
    if (!read_header(img, ih, 4, err, errlen) ||
        !check_magic(img, ih[0], IDX_IMAGES_MAGIC, "image", err, errlen) ||
        !read_header(lab, lh, 2, err, errlen) ||
        !check_magic(lab, lh[0], IDX_LABELS_MAGIC, "label", err, errlen))
        return false;
    uint32_t count = ih[1], rows = ih[2], cols = ih[3];
    if (count == 0 || count > INT_MAX)
        return zn_dataset_fail(err, errlen, "%s: image count %u is not in 1..%d", img->path, count,
                               INT_MAX);
    if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE)
        return zn_dataset_fail(err, errlen, "%s: image size %ux%u is not in 1..%d", img->path,
                               rows, cols, IDX_MAX_SIDE);
    if (lh[1] != count)
        return zn_dataset_fail(err, errlen, "%s holds %u images but %s holds %u labels",
                               img->path, count, lab->path, lh[1]);
    if (pad_to_32 && (rows > PAD_SIDE || cols > PAD_SIDE))
        return zn_dataset_fail(err, errlen, "%s: %ux%u images do not fit a %dx%d frame",
                               img->path, rows, cols, PAD_SIDE, PAD_SIDE);
    if (!check_claim(img, count, (unsigned long long)rows * cols, "image", err, errlen) ||
        !check_claim(lab, count, 1, "label", err, errlen))
        return false;
    int h = pad_to_32 ? PAD_SIDE : (int)rows, w = pad_to_32 ? PAD_SIDE : (int)cols;
    if (!zn_dataset_alloc(out, (int)count, 1, h, w, err, errlen)) return false;
    idx_target ti = {out, img, (int)rows, (int)cols}, tl = {out, lab, 1, 1};
    if (!read_records(img, count, (size_t)rows * cols, "image", place_images, &ti, err, errlen) ||
        !read_records(lab, count, 1, "label", place_labels, &tl, err, errlen)) {
        zn_dataset_free(out);
        return false;
    }
    out->n_classes = IDX_CLASSES;
    for (int k = 0; k < IDX_CLASSES; k++) snprintf(out->class_names[k], ZN_CLASS_NAME_MAX, "%d", k);
    out->mean[0] = 0.0f; /* neutral: maps 0-255 to [0, 1]; zn_fashion_mnist_load sets its own */
    out->std[0] = 255.0f;
    return true;
}

bool zn_idx_load(const char *images_path, const char *labels_path, bool pad_to_32,
                 zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    idx_file img = {0}, lab = {0};
    bool ok = idx_open(&img, images_path, err, errlen) &&
              idx_open(&lab, labels_path, err, errlen) &&
              load_opened(&img, &lab, pad_to_32, out, err, errlen);
    idx_close(&img);
    idx_close(&lab);
    return ok;
}

/* <dir>/<name> (unpacked), else <dir>/<name>.gz; a message naming the .gz when neither is. */
static bool find_idx(const char *dir, const char *name, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    struct stat st;
    if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) + 3 >= outlen)
        return zn_dataset_fail(err, errlen, "%s: path too long", dir);
    if (stat(out, &st) == 0) return true;
    strcat(out, ".gz");
    if (stat(out, &st) == 0) return true;
    return zn_dataset_fail(err, errlen, "%s: no such file. %s", out, fashion_hint);
}

bool zn_fashion_mnist_load(const char *dir, bool train, bool pad_to_32, zn_dataset *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *prefix = train ? "train" : "t10k";
    char name[64], images[4096], labels[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (!find_idx(dir, name, images, sizeof images, err, errlen)) return false;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if (!find_idx(dir, name, labels, sizeof labels, err, errlen)) return false;
    if (!zn_idx_load(images, labels, pad_to_32, out, err, errlen)) return false;
    for (int k = 0; k < IDX_CLASSES; k++)
        snprintf(out->class_names[k], ZN_CLASS_NAME_MAX, "%s", fashion_names[k]);
    /* the 60,000 training images, unpadded: a pad pixel normalises like the black background */
    out->mean[0] = 72.94f;
    out->std[0] = 90.02f;
    return true;
}
