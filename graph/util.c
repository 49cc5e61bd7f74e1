/* util.c: see util.h. */
#include "graph/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void *zn_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "znet: calloc(%zu, %zu) failed: out of memory\n", n, size);
        exit(EXIT_FAILURE);
    }
    return p;
}

bool zn_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}
