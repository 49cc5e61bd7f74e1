/* dataset.c: the data set container (allocation, release), the by-name loader that dispatches to
 * the format readers, and the error formatting they share. */
#include "data/dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bool zn_dataset_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool zn_dataset_alloc(zn_dataset *out, int n, int c, int h, int w, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n <= 0 || c <= 0 || c > ZN_DATASET_MAX_CHANNELS || h <= 0 || w <= 0)
        return zn_dataset_fail(err, errlen, "bad data set shape %d x %d x %d x %d", n, c, h, w);
    size_t pixels = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    out->images = calloc(pixels, 1);
    out->labels = calloc((size_t)n, 1);
    if (!out->images || !out->labels) {
        zn_dataset_free(out);
        return zn_dataset_fail(err, errlen, "calloc of %zu bytes for %d images: %s", pixels, n,
                               strerror(ENOMEM));
    }
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    return true;
}

void zn_dataset_free(zn_dataset *ds)
{
    if (ds->map) munmap(ds->map, ds->map_len);
    else free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

bool zn_dataset_load(const char *name, const char *dir, bool train, bool pad_to_32,
                     zn_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strcmp(name, "cifar10") == 0) return zn_cifar10_load(dir, train, out, err, errlen);
    if (strcmp(name, "fashion_mnist") == 0)
        return zn_fashion_mnist_load(dir, train, pad_to_32, out, err, errlen);
    return zn_dataset_fail(err, errlen, "unknown data set '%s' (known: cifar10, fashion_mnist)",
                           name);
}
