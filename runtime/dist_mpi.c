/* dist_mpi.c: the MPI module (libznet_mpi.so, which dist.c loads under a launcher): dist.h's
 * group over MPI (MPI_COMM_WORLD), as the table of dist_module.h. Errors come back to us (MPI_ERRORS_RETURN) so
 * a failed call is named before the job ends; every wait polls its requests against a deadline
 * instead of blocking in MPI_Wait, so a rank whose peer is stuck or gone says so and ends the job
 * rather than hang. Collectives are issued in the same order on every rank by the training loop. */
#include "runtime/dist_module.h"

#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool active;
static int rank, size = 1, local_rank;
static double timeout_s = 600;
static MPI_Request *pending; /* gradient sums begun and not yet waited for */
static int n_pending, cap_pending;

static _Noreturn void dist_abort(int rc, const char *why);
static double isum_wait(void);

static void check(int rc, const char *call)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING + 128], text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    snprintf(msg, sizeof msg, "%s: %s", call, text);
    dist_abort(1, msg);
}

/* Polls reqs until all are done; past the deadline names what it waited for and ends the job.
 * Returns the seconds waited. */
static double wait_all(MPI_Request *reqs, int n, const char *what)
{
    double t0 = MPI_Wtime();
    for (long polls = 0;; polls++) {
        int done = 0;
        check(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE), what);
        if (done) return MPI_Wtime() - t0;
        if (MPI_Wtime() - t0 > timeout_s) {
            char msg[256];
            snprintf(msg, sizeof msg, "waited %.0f s (ZNET_DIST_TIMEOUT) for %s: another rank has stopped "
                                      "or is stuck", timeout_s, what);
            dist_abort(1, msg);
        }
        /* a peer still computing: leave the core to it (2 ranks often share few cores) */
        if (polls > 1000) nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

/* --backend cuda: each rank on a machine its own GPU, the local-rank-th of those it may use
 * (CUDA_VISIBLE_DEVICES, else all), set before the CUDA module loads. Without enough GPUs the
 * rank finds none and --backend cuda says so. */
static void pick_gpu(void)
{
    const char *seen = getenv("CUDA_VISIBLE_DEVICES");
    char one[64] = "";
    if (!seen) snprintf(one, sizeof one, "%d", local_rank);
    for (int k = 0; seen && *seen; k++) {
        size_t len = strcspn(seen, ",");
        if (k == local_rank && len < sizeof one) memcpy(one, seen, len), one[len] = '\0';
        seen += len + (seen[len] == ',');
    }
    if (*one) setenv("CUDA_VISIBLE_DEVICES", one, 1);
}

static int start(const char *launcher)
{
    const char *t = getenv("ZNET_DIST_TIMEOUT");
    if (t && (timeout_s = atof(t)) <= 0) {
        fprintf(stderr, "znet: ZNET_DIST_TIMEOUT=%s is not a number of seconds above 0\n", t);
        return 2;
    }
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "znet: started by %s, but MPI_Init failed\n", launcher);
        return 1;
    }
    active = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_free(&node);
    pick_gpu();
    if (rank != 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, STDOUT_FILENO), close(fd);
    }
    return -1;
}

static void end(void)
{
    if (!active) return;
    isum_wait(); /* sums a failed step began (one rank: they finish at once) */
    free(pending);
    pending = NULL, cap_pending = 0;
    active = false;
    MPI_Finalize();
}

static int get_rank(void) { return rank; }
static int get_size(void) { return size; }
static int get_local_rank(void) { return local_rank; }

static void sum(void *v, int n, MPI_Datatype type, MPI_Op op, const char *what)
{
    if (!active) return;
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, v, n, type, op, MPI_COMM_WORLD, &r), what);
    wait_all(&r, 1, what);
}

static void sum_double(double *v, int n) { sum(v, n, MPI_DOUBLE, MPI_SUM, "a sum of step figures (MPI_Iallreduce)"); }
static void sum_long(long *v, int n) { sum(v, n, MPI_LONG, MPI_SUM, "a sum of counts (MPI_Iallreduce)"); }

static int max(int v)
{
    sum(&v, 1, MPI_INT, MPI_MAX, "the ranks' agreement to stop (MPI_Iallreduce)");
    return v;
}

static void bcast(void *buf, size_t bytes)
{
    if (!active) return;
    for (size_t at = 0; at < bytes;) { /* counts are ints: 1 GiB at a time */
        int n = bytes - at > (1u << 30) ? 1 << 30 : (int)(bytes - at);
        MPI_Request r;
        check(MPI_Ibcast((char *)buf + at, n, MPI_BYTE, 0, MPI_COMM_WORLD, &r), "MPI_Ibcast");
        wait_all(&r, 1, "rank 0's parameters (MPI_Ibcast)");
        at += (size_t)n;
    }
}

static void isum_begin(float *v, size_t n)
{
    assert(active && n < INT_MAX);
    if (n_pending == cap_pending) {
        cap_pending = cap_pending ? 2 * cap_pending : 64;
        MPI_Request *more = realloc(pending, sizeof *pending * (size_t)cap_pending);
        if (!more) dist_abort(1, "out of memory for the gradient sums' requests");
        pending = more;
    }
    check(MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending[n_pending++]),
          "MPI_Iallreduce of gradients");
}

static void isum_progress(void)
{
    int done;
    if (n_pending) check(MPI_Testall(n_pending, pending, &done, MPI_STATUSES_IGNORE), "MPI_Testall of gradients");
}

static double isum_wait(void)
{
    double t = n_pending ? wait_all(pending, n_pending, "the gradient sums (MPI_Iallreduce)") : 0;
    n_pending = 0;
    return t;
}

static _Noreturn void dist_abort(int rc, const char *why)
{
    if (!active) {
        fprintf(stderr, "znet: %s\n", why);
        exit(rc);
    }
    fprintf(stderr, "znet: rank %d of %d failed: %s; ending the job\n", rank, size, why);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, rc);
    exit(rc); /* MPI_Abort does not return; this keeps _Noreturn honest */
}

__attribute__((visibility("default"))) const zn_dist_ops *zn_dist_mpi_ops(void)
{
    static const zn_dist_ops ops = {
        .start = start, .end = end, .rank = get_rank, .size = get_size, .local_rank = get_local_rank,
        .sum = sum_double, .sum_long = sum_long, .max = max, .bcast = bcast,
        .isum_begin = isum_begin, .isum_progress = isum_progress, .isum_wait = isum_wait,
        .abort = dist_abort,
    };
    return &ops;
}
