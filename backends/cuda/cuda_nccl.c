/* cuda_nccl.c: the GPU side of data-parallel training (runtime/grad_sync.c, docs/distributed.md):
 * one NCCL communicator over the job's ranks, joined with the unique id rank 0 draws and MPI
 * hands to the others, and in-place sums of a range of a plan region on the compute stream, so a
 * bucket's sum follows the backward kernels that wrote its gradients and the optimizer step
 * follows the sum, with no copy to the host. Built only where CMake finds NCCL. */
#include <nccl.h>
#include <string.h>

#include "backends/cuda/cuda_backend.h"

#define ZN_CUDA_EXPORT __attribute__((visibility("default")))

static ncclComm_t comm; /* the process's one communicator (one backend per process trains) */

static bool nccl_ok(zn_backend *be, ncclResult_t r, const char *call)
{
    return r == ncclSuccess || zn_fail(((zn_cuda *)be)->err, sizeof ((zn_cuda *)be)->err, "%s: %s (NCCL %d)", call,
                                       ncclGetErrorString(r), (int)r);
}

ZN_CUDA_EXPORT size_t zn_cuda_nccl_id_bytes(void)
{
    return sizeof(ncclUniqueId);
}

/* Rank 0: the id every rank joins with. */
ZN_CUDA_EXPORT bool zn_cuda_nccl_id(zn_backend *be, void *id)
{
    return nccl_ok(be, ncclGetUniqueId((ncclUniqueId *)id), "ncclGetUniqueId");
}

ZN_CUDA_EXPORT bool zn_cuda_nccl_join(zn_backend *be, const void *id, int rank, int ranks)
{
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    return nccl_ok(be, ncclCommInitRank(&comm, ranks, u, rank), "ncclCommInitRank");
}

/* floats values of region r from byte offset on, summed (or averaged) over the ranks in place. */
ZN_CUDA_EXPORT bool zn_cuda_nccl_sum(zn_backend *be, zn_region r, size_t offset, size_t floats, bool average)
{
    zn_cuda *cu = (zn_cuda *)be;
    float *p = (float *)(cu->mem[r] + offset);
    return nccl_ok(be, ncclAllReduce(p, p, floats, ncclFloat, average ? ncclAvg : ncclSum, comm, cu->stream),
                   "ncclAllReduce");
}

ZN_CUDA_EXPORT void zn_cuda_nccl_leave(void)
{
    if (comm) ncclCommDestroy(comm);
    comm = NULL;
}
