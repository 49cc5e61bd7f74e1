/* backend.c: the registry of compiled-in backends behind --backend NAME: the list, and lookup
 * by name with a message that names every backend there is. */
#include "backends/backend.h"

#include <stdio.h>
#include <string.h>

static const zn_backend_ops *const registry[] = {
    &zn_cpu_backend,
    NULL,
};

const zn_backend_ops *const *zn_backends(void)
{
    return registry;
}

const zn_backend_ops *zn_backend_find(const char *name, char *err, size_t errlen)
{
    for (const zn_backend_ops *const *b = registry; *b; b++)
        if (strcmp((*b)->name, name) == 0) return *b;
    size_t at = (size_t)snprintf(err, errlen, "unknown backend '%s'; the backends are:", name);
    for (const zn_backend_ops *const *b = registry; *b && at < errlen; b++)
        at += (size_t)snprintf(err + at, errlen - at, "%s %s", b == registry ? "" : ",",
                               (*b)->name);
    return NULL;
}
