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
#define INSTALLED_MODULE "../lib/znet/" MODULE_NAME /* where `cmake --install` puts it, from bin/ */

static void *module; /* the dlopen() handle, once loaded */

#ifdef ZNET_CUDA_MODULE_PATH
static char module_error[PATH_MAX + 1024]; /* why it could not be loaded (later calls repeat it) */

/* dlopen(path). A failure is kept as the reason when the path was asked for explicitly or the
 * file exists: a missing dependency such as libcudnn says more than "not found". */
static bool try_open(const char *path, bool asked)
{
    module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module) return true;
    const char *why = dlerror();
    if (!module_error[0] && (asked || access(path, F_OK) == 0))
        snprintf(module_error, sizeof module_error, "cannot load the CUDA backend module %s: %s",
                 path, why ? why : "unknown error");
    return false;
}

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
        const char *env = getenv("ZNET_CUDA_MODULE");
        char beside[PATH_MAX], installed[PATH_MAX];
        if (env && *env ? try_open(env, true)
                        : (zn_beside_exe(INSTALLED_MODULE, installed, sizeof installed) &&
                           try_open(installed, false)) ||
                              try_open(ZNET_CUDA_MODULE_PATH, false) ||
                              (zn_beside_exe(MODULE_NAME, beside, sizeof beside) && try_open(beside, false)) ||
                              try_open(MODULE_NAME, false))
            return true;
        if (!module_error[0])
            snprintf(module_error, sizeof module_error,
                     "the CUDA backend module %s was not found (looked in ../lib/znet/ "
                     "from the znet binary, at %s, next to the binary and on the library path; $ZNET_CUDA_MODULE names another)",
                     MODULE_NAME, ZNET_CUDA_MODULE_PATH);
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
