/* dist_none.c: dist.h in a build without MPI (-DZNET_MPI=OFF or no MPI found): always a group
 * of one. Launched on several ranks it says so and exits 2 rather than have each process train
 * the whole model alone and write over the others' checkpoints. */
#include "runtime/dist.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

int zn_dist_start(void)
{
    const char *launcher;
    int n = zn_dist_env_size(&launcher);
    if (n <= 1) return -1;
    fprintf(stderr, "znet: started by %s as one of %d processes, but this znet was built without MPI "
                    "(-DZNET_MPI=OFF, or CMake found no MPI): install libopenmpi-dev and rebuild, or run "
                    "one process (docs/distributed.md)\n", launcher, n);
    return 2;
}

void zn_dist_end(void) {}
bool zn_dist_active(void) { return false; }
int zn_dist_rank(void) { return 0; }
int zn_dist_size(void) { return 1; }
int zn_dist_local_rank(void) { return 0; }
void zn_dist_sum(double *v, int n) { (void)v, (void)n; }
void zn_dist_sum_long(long *v, int n) { (void)v, (void)n; }
int zn_dist_max(int v) { return v; }
void zn_dist_bcast(void *buf, size_t bytes) { (void)buf, (void)bytes; }
void zn_dist_isum_begin(float *v, size_t n) { (void)v, (void)n; }
void zn_dist_isum_progress(void) {}
double zn_dist_isum_wait(void) { return 0; }

_Noreturn void zn_dist_abort(int rc, const char *why)
{
    fprintf(stderr, "znet: %s\n", why);
    exit(rc);
}
