/* backend.c: the registry of backends behind --backend NAME (cpu, and cuda: a loader entry that
 * says why it cannot run when the module, the driver or a GPU is missing), lookup by name with a
 * message that names every backend there is, and --precision's names. */
#include "backends/backend.h"

#include <stdio.h>
#include <string.h>

static const zn_backend_ops *const registry[] = {
    &zn_cpu_backend,
    &zn_cuda_backend,
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

bool zn_precision_parse(const char *name, zn_precision *out)
{
    for (int p = ZN_PRECISION_FP32; p <= ZN_PRECISION_BF16; p++)
        if (strcmp(name, zn_precision_name((zn_precision)p)) == 0) {
            *out = (zn_precision)p;
            return true;
        }
    return false;
}
