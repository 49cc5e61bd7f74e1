/* dist.c: dist.h for every build. Outside a launcher znet is a group of one and never touches
 * MPI; under one it dlopen()s the MPI module (libznet_mpi.so, dist_mpi.c, built when CMake found
 * MPI) and hands every call to it, so znet itself links no MPI library (which cost every start
 * milliseconds). Search order, as for the CUDA module (backends/cuda_loader.c): $ZNET_MPI_MODULE
 * alone when set; else PREFIX/lib/znet/ for PREFIX/bin/znet, the build's own module, the one next
 * to the binary, then the soname on the library path. A build without MPI refuses several ranks. */
#include "runtime/dist.h"
#include "graph/util.h"
#include "runtime/dist_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const zn_dist_ops *mpi; /* the module's table while this process is in a group */

#ifdef ZNET_MPI_MODULE_PATH
#define MODULE_NAME "libznet_mpi.so"

/* The module's table, or NULL after saying why on stderr. RTLD_GLOBAL: OpenMPI's own plugins look
 * up libmpi's symbols in the global namespace. */
static const zn_dist_ops *load_module(const char *launcher)
{
    char why[PATH_MAX + 1024], places[PATH_MAX + 256];
    const char *env = getenv("ZNET_MPI_MODULE");
    void *h = zn_module_open(MODULE_NAME, "ZNET_MPI_MODULE", ZNET_MPI_MODULE_PATH, RTLD_NOW | RTLD_GLOBAL, why,
                             sizeof why);
    if (!h && !why[0]) {
        zn_module_places("ZNET_MPI_MODULE", ZNET_MPI_MODULE_PATH, places, sizeof places);
        snprintf(why, sizeof why, "%s: not found (%s)", MODULE_NAME, places);
    }
    zn_dist_module_entry *entry = NULL;
    void *sym = h ? dlsym(h, ZN_DIST_MODULE_ENTRY) : NULL;
    if (h && !sym) snprintf(why, sizeof why, "%s has no %s", env && *env ? env : MODULE_NAME, ZN_DIST_MODULE_ENTRY);
    if (sym) {
        memcpy(&entry, &sym, sizeof entry); /* object to function pointer, as POSIX allows */
        return entry();
    }
    fprintf(stderr, "znet: started by %s, but cannot load the MPI module %s (docs/distributed.md)\n",
            launcher, why);
    return NULL;
}
#endif

int zn_dist_start(void)
{
    const char *launcher;
    int n = zn_dist_env_size(&launcher);
    if (n < 0) return -1;
#ifdef ZNET_MPI_MODULE_PATH
    const zn_dist_ops *ops = load_module(launcher);
    if (!ops) return 2;
    int rc = ops->start(launcher);
    if (rc < 0) mpi = ops;
    return rc;
#else
    if (n <= 1) return -1;
    fprintf(stderr, "znet: started by %s as one of %d processes, but this znet was built without MPI "
                    "(-DZNET_MPI=OFF, or CMake found no MPI): install libopenmpi-dev and rebuild, or run "
                    "one process (docs/distributed.md)\n", launcher, n);
    return 2;
#endif
}

/* The module stays loaded: MPI cannot be initialised twice, and its libraries keep threads. */
void zn_dist_end(void)
{
    if (mpi) mpi->end();
    mpi = NULL;
}

bool zn_dist_active(void) { return mpi != NULL; }
int zn_dist_rank(void) { return mpi ? mpi->rank() : 0; }
int zn_dist_size(void) { return mpi ? mpi->size() : 1; }
int zn_dist_local_rank(void) { return mpi ? mpi->local_rank() : 0; }
void zn_dist_sum(double *v, int n) { if (mpi) mpi->sum(v, n); }
void zn_dist_sum_long(long *v, int n) { if (mpi) mpi->sum_long(v, n); }
int zn_dist_max(int v) { return mpi ? mpi->max(v) : v; }
void zn_dist_bcast(void *buf, size_t bytes) { if (mpi) mpi->bcast(buf, bytes); }
void zn_dist_isum_begin(float *v, size_t n) { if (mpi) mpi->isum_begin(v, n); }
void zn_dist_isum_progress(void) { if (mpi) mpi->isum_progress(); }
double zn_dist_isum_wait(void) { return mpi ? mpi->isum_wait() : 0; }

_Noreturn void zn_dist_abort(int rc, const char *why)
{
    if (mpi) mpi->abort(rc, why);
    fprintf(stderr, "znet: %s\n", why);
    exit(rc);
}
