/* cifar10.c: the CIFAR-10 binary reader. A file is a run of 3,073-byte records (label byte,
 * then the 1,024 red, 1,024 green and 1,024 blue bytes, each plane row-major), which is already
 * the [c][h][w] layout of zn_dataset, so records are split into labels and pixels as read. */
#include "data/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_CLASSES 10
#define CIFAR_PIXELS (ZN_CIFAR10_RECORD - 1)
#define CHUNK_RECORDS 1024 /* records per fread: 3 MB of buffer */

static const char *const cifar10_names[CIFAR_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

static const char cifar10_hint[] =
    "CIFAR-10 (binary version) is needed: download cifar-10-binary.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into ~/.cache/znet/ "
    "(or point --data or ZNET_DATA at the cifar-10-batches-bin folder)";

/* The number of records in path: exactly expect when expect > 0, else any whole, non-zero
 * number. hint (may be NULL) is appended when the file is missing. */
static bool count_records(const char *path, long expect, const char *hint, long *records,
                          char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && hint)
            return zn_dataset_fail(err, errlen, "%s: no such file. %s", path, hint);
        return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return zn_dataset_fail(err, errlen, "%s: not a regular file", path);
    long long size = (long long)st.st_size;
    if (expect > 0 && size != (long long)expect * ZN_CIFAR10_RECORD)
        return zn_dataset_fail(err, errlen,
                               "%s: %lld bytes, expected %lld (%ld records of %d bytes)", path,
                               size, (long long)expect * ZN_CIFAR10_RECORD, expect,
                               ZN_CIFAR10_RECORD);
    if (size == 0 || size % ZN_CIFAR10_RECORD != 0)
        return zn_dataset_fail(err, errlen,
                               "%s: %lld bytes is not a whole, non-zero number of %d-byte records",
                               path, size, ZN_CIFAR10_RECORD);
    if (size / ZN_CIFAR10_RECORD > INT_MAX)
        return zn_dataset_fail(err, errlen, "%s: too many records", path);
    *records = (long)(size / ZN_CIFAR10_RECORD);
    return true;
}

/* Reads `records` records of path into images/labels of out starting at image `first`. */
static bool read_records(const char *path, long records, int first, uint8_t *buf,
                         zn_dataset *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    for (long done = 0; done < records;) {
        long want = records - done < CHUNK_RECORDS ? records - done : CHUNK_RECORDS;
        size_t got = fread(buf, ZN_CIFAR10_RECORD, (size_t)want, f);
        if (got != (size_t)want) {
            bool io_error = ferror(f);
            fclose(f);
            if (io_error)
                return zn_dataset_fail(err, errlen, "%s: read: %s", path, strerror(errno));
            return zn_dataset_fail(err, errlen, "%s: record %ld: file ends early (it shrank while "
                                   "being read?)", path, done + (long)got);
        }
        for (long i = 0; i < want; i++) {
            const uint8_t *rec = buf + i * ZN_CIFAR10_RECORD;
            if (rec[0] >= CIFAR_CLASSES) {
                fclose(f);
                return zn_dataset_fail(err, errlen, "%s: record %ld: label %d is not in 0..%d",
                                       path, done + i, rec[0], CIFAR_CLASSES - 1);
            }
            size_t img = (size_t)first + (size_t)(done + i);
            out->labels[img] = rec[0];
            memcpy(out->images + img * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
        done += want;
    }
    fclose(f);
    return true;
}

static void set_cifar_defaults(zn_dataset *ds)
{
    static const float mean[3] = {125.31f, 122.95f, 113.87f}, std[3] = {62.99f, 62.09f, 66.70f};
    ds->n_classes = CIFAR_CLASSES;
    for (int k = 0; k < CIFAR_CLASSES; k++)
        snprintf(ds->class_names[k], ZN_CLASS_NAME_MAX, "%s", cifar10_names[k]);
    memcpy(ds->mean, mean, sizeof mean);
    memcpy(ds->std, std, sizeof std);
}

static bool load_paths(const char *const *paths, int n_paths, long expect, const char *hint,
                       zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n_paths <= 0) return zn_dataset_fail(err, errlen, "no CIFAR-10 files given");
    long *records = malloc((size_t)n_paths * sizeof *records);
    uint8_t *buf = malloc((size_t)CHUNK_RECORDS * ZN_CIFAR10_RECORD);
    bool ok = records && buf;
    if (!ok) zn_dataset_fail(err, errlen, "malloc: %s", strerror(ENOMEM));
    long total = 0;
    for (int i = 0; ok && i < n_paths; i++) {
        ok = count_records(paths[i], expect, hint, &records[i], err, errlen);
        total += ok ? records[i] : 0;
        if (ok && total > INT_MAX) ok = zn_dataset_fail(err, errlen, "too many CIFAR-10 records");
    }
    ok = ok && zn_dataset_alloc(out, (int)total, 3, 32, 32, err, errlen);
    for (int i = 0, first = 0; ok && i < n_paths; first += (int)records[i], i++)
        ok = read_records(paths[i], records[i], first, buf, out, err, errlen);
    free(records);
    free(buf);
    if (!ok) {
        zn_dataset_free(out);
        return false;
    }
    set_cifar_defaults(out);
    return true;
}

bool zn_cifar10_load_files(const char *const *paths, int n_paths, zn_dataset *out, char *err,
                           size_t errlen)
{
    return load_paths(paths, n_paths, 0, NULL, out, err, errlen);
}

/* Class names from <dir>/batches.meta.txt, one per line (blank lines ignored); a missing file
 * keeps the standard names. */
static bool read_meta(const char *dir, zn_dataset *ds, char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/batches.meta.txt", dir) >= sizeof path)
        return zn_dataset_fail(err, errlen, "%s: path too long", dir);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? true : zn_dataset_fail(err, errlen, "%s: %s", path,
                                                            strerror(errno));
    char names[CIFAR_CLASSES][ZN_CLASS_NAME_MAX];
    char line[256];
    int count = 0;
    bool ok = true;
    for (int lineno = 1; ok && fgets(line, sizeof line, f); lineno++) {
        size_t len = strcspn(line, "\r\n");
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
        line[len] = '\0';
        if (len == 0) continue;
        if (len >= ZN_CLASS_NAME_MAX)
            ok = zn_dataset_fail(err, errlen, "%s: line %d: class name longer than %d characters",
                                 path, lineno, ZN_CLASS_NAME_MAX - 1);
        else if (count == CIFAR_CLASSES)
            ok = zn_dataset_fail(err, errlen, "%s: line %d: more than %d class names", path,
                                 lineno, CIFAR_CLASSES);
        else
            memcpy(names[count++], line, len + 1);
    }
    if (ok && ferror(f)) /* a directory of that name, say: fopen takes it, reading fails */
        ok = zn_dataset_fail(err, errlen, "%s: read: %s", path, strerror(errno));
    fclose(f);
    if (ok && count != CIFAR_CLASSES)
        ok = zn_dataset_fail(err, errlen, "%s: %d class names, expected %d", path, count,
                             CIFAR_CLASSES);
    if (ok) memcpy(ds->class_names, names, sizeof names);
    return ok;
}

bool zn_cifar10_load(const char *dir, bool train, zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char paths[5][4096];
    const char *ptrs[5];
    int n = train ? 5 : 1;
    for (int i = 0; i < n; i++) {
        int len = train ? snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", dir, i + 1)
                        : snprintf(paths[i], sizeof paths[i], "%s/test_batch.bin", dir);
        if (len < 0 || (size_t)len >= sizeof paths[i])
            return zn_dataset_fail(err, errlen, "%s: path too long", dir);
        ptrs[i] = paths[i];
    }
    if (!load_paths(ptrs, n, ZN_CIFAR10_FILE_RECORDS, cifar10_hint, out, err, errlen)) return false;
    if (!read_meta(dir, out, err, errlen)) {
        zn_dataset_free(out);
        return false;
    }
    return true;
}
