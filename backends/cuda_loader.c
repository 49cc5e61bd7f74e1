/* cuda_loader.c: the "cuda" registry entry. The CUDA backend is a module (libznet_cuda.so, built
 * when CMake finds the CUDA toolkit and cuDNN) that this file dlopen()s on first use, so znet
 * links no CUDA library and a CPU-only user never needs one. available() loads the module and
 * asks it whether a driver and a GPU are there; create() hands over to the module's vtable (the
 * backend it returns carries that vtable, so this entry has no other functions).
 * Search order: $ZNET_CUDA_MODULE alone when set; else the installed one (PREFIX/lib/znet/ for
 * PREFIX/bin/znet, first so that an installed znet never loads a build tree's module), the build's
 * own module, the one next to the znet binary, then the soname on the library path. */
#include "backends/backend.h"
#include "graph/util.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULE_NAME "libznet_cuda.so"

static void *module; /* the dlopen() handle, once loaded */

#ifdef ZNET_CUDA_MODULE_PATH
static char module_error[PATH_MAX + 1024]; /* why it could not be loaded (later calls repeat it) */
#endif

static bool load_module(char *err, size_t errlen)
{
    if (module) return true;
#ifndef ZNET_CUDA_MODULE_PATH
    snprintf(err, errlen, "this znet was built without the CUDA backend: configure with the CUDA "
             "toolkit and cuDNN installed (see docs/cuda.md)");
    return false;
#else
    if (!module_error[0]) {
        char why[PATH_MAX + 512], places[PATH_MAX + 256];
        if ((module = zn_module_open(MODULE_NAME, "ZNET_CUDA_MODULE", ZNET_CUDA_MODULE_PATH, RTLD_NOW | RTLD_LOCAL,
                                     why, sizeof why)))
            return true;
        zn_module_places("ZNET_CUDA_MODULE", ZNET_CUDA_MODULE_PATH, places, sizeof places);
        if (why[0]) snprintf(module_error, sizeof module_error, "cannot load the CUDA backend module %s", why);
        else snprintf(module_error, sizeof module_error, "the CUDA backend module %s was not found (%s)", MODULE_NAME,
                      places);
    }
    snprintf(err, errlen, "%s", module_error);
    return false;
#endif
}

void *zn_cuda_module_symbol(const char *symbol, char *err, size_t errlen)
{
    if (!load_module(err, errlen)) return NULL;
    dlerror();
    void *sym = dlsym(module, symbol);
    if (!sym) {
        const char *why = dlerror();
        snprintf(err, errlen, "the CUDA backend module has no %s: %s", symbol,
                 why ? why : "NULL symbol");
    }
    return sym;
}

/* The module's own vtable. */
static const zn_backend_ops *module_ops(char *err, size_t errlen)
{
    const zn_backend_ops *(*entry)(void) = NULL;
    void *sym = zn_cuda_module_symbol("zn_cuda_backend_ops", err, errlen);
    if (!sym) return NULL;
    memcpy(&entry, &sym, sizeof entry); /* object to function pointer, as POSIX allows */
    return entry();
}

static bool loader_available(char *why, size_t len)
{
    const zn_backend_ops *ops = module_ops(why, len);
    return ops && ops->available(why, len);
}

static zn_backend *loader_create(const zn_backend_opts *opts, char *err, size_t errlen)
{
    const zn_backend_ops *ops = module_ops(err, errlen);
    return ops ? ops->create(opts, err, errlen) : NULL;
}

/* Only name, available and create: a backend create() returns carries the module's own vtable,
 * which every caller uses (be->ops). */
const zn_backend_ops zn_cuda_backend = {
    .name = "cuda",
    .available = loader_available,
    .create = loader_create,
};
