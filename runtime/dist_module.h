/* dist_module.h: what the MPI module (libznet_mpi.so, dist_mpi.c) hands to its loader (dist.c):
 * dist.h's functions for a joined group, as one table, so that znet links no MPI library and
 * pays for loading it only when a launcher started it (docs/distributed.md, "Building"). */
#ifndef ZN_DIST_MODULE_H
#define ZN_DIST_MODULE_H

#include <stddef.h>

typedef struct zn_dist_ops {
    /* MPI_Init and the rank's place; -1 to go on, else an exit code after saying why not */
    int (*start)(const char *launcher);
    void (*end)(void);
    int (*rank)(void), (*size)(void), (*local_rank)(void);
    void (*sum)(double *v, int n);
    void (*sum_long)(long *v, int n);
    int (*max)(int v);
    void (*bcast)(void *buf, size_t bytes);
    void (*isum_begin)(float *v, size_t n);
    void (*isum_progress)(void);
    double (*isum_wait)(void);
    void (*abort)(int rc, const char *why); /* does not return */
} zn_dist_ops;

/* the module's one exported symbol */
typedef const zn_dist_ops *zn_dist_module_entry(void);
#define ZN_DIST_MODULE_ENTRY "zn_dist_mpi_ops"

#endif
