/* dist.h: data-parallel training across processes (docs/distributed.md): the process group a
 * launcher (mpirun, srun) started, the collectives the training loop needs (sums, broadcast from
 * rank 0, non-blocking gradient sums) and ending the whole job when one rank fails. dist_mpi.c
 * implements it over MPI; dist_none.c, in a build without MPI, is a group of one that refuses to
 * run under a launcher that started several processes. Every wait is bounded (ZNET_DIST_TIMEOUT
 * seconds, default 600): past it the rank says so and ends the job, so no rank hangs forever. */
#ifndef ZN_DIST_H
#define ZN_DIST_H

#include <stdbool.h>
#include <stddef.h>

/* Joins the process group when a launcher started this process (its variables say so), else
 * stays a group of one. Returns -1 to go on, or an exit code after saying why not (2: launched
 * on several ranks by a build without MPI). Ranks other than 0 get /dev/null as stdout: only
 * rank 0 prints results; every rank's errors go to stderr. */
int zn_dist_start(void);
/* Leaves the group (MPI_Finalize); a no-op outside one. */
void zn_dist_end(void);
bool zn_dist_active(void); /* under a launcher, in a group (of one or more) */
int zn_dist_rank(void);
int zn_dist_size(void);
int zn_dist_local_rank(void); /* the rank among those on this machine (its GPU) */

/* Sums v[0..n) (or takes the maximum) across ranks, in place, every rank the same result. */
void zn_dist_sum(double *v, int n);
void zn_dist_sum_long(long *v, int n);
int zn_dist_max(int v);
/* Rank 0's bytes to every rank. */
void zn_dist_bcast(void *buf, size_t bytes);

/* Gradient sums: begin starts a non-blocking sum of v[0..n) (n < 2^31) and returns at once;
 * progress lets the library move the started ones on (MPI makes progress only inside its
 * calls); wait returns when all begun have finished, and the seconds it waited. */
void zn_dist_isum_begin(float *v, size_t n);
void zn_dist_isum_progress(void);
double zn_dist_isum_wait(void);

/* Ends the whole job after this rank's failure: "znet: rank R of N failed: WHY; ending the job"
 * on stderr, then every rank is stopped (MPI_Abort) with exit code rc. Outside a group: exit(rc). */
_Noreturn void zn_dist_abort(int rc, const char *why);

/* The number of processes a launcher says it started (OpenMPI's, PMI's or Slurm's srun
 * variables) and which one said it; -1 when none did (dist_env.c, for both builds). */
int zn_dist_env_size(const char **launcher);

#endif
