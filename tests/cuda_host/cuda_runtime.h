/* cuda_runtime.h (tests/cuda_host/): the little of the CUDA runtime and device language the own
 * kernels use, on the host, so tests/run_cuda_host.sh can run them where no GPU is: a launch runs
 * its blocks one after another, each with blockDim.x real threads, __syncthreads a barrier of the
 * block, a warp shuffle an exchange through memory between two barriers of the warp, __shared__
 * a static (one block at a time). Only what k_util.cuh, k_channel_sums.cuh and the kernels built
 * on them need; launches come from translate.py's rewrite of <<<...>>>. C++20 (std::barrier). */
#ifndef ZN_CUDA_HOST_RUNTIME_H
#define ZN_CUDA_HOST_RUNTIME_H

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>

using std::max;
using std::min;

typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
typedef struct CUstream_st *cudaStream_t;
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct zn_host_index {
    unsigned x, y, z;
};
extern thread_local zn_host_index threadIdx, blockIdx;
extern zn_host_index blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __shared__ static

namespace zn_host {
extern std::barrier<> *block_barrier;
extern std::barrier<> *warp_barrier[32];
extern unsigned char lanes[32][32][8]; /* [warp][lane]: a shuffled value's bytes */
/* Runs body on grid g of blocks of b threads (b.x a multiple of 32, at most 1024; 1-D). */
void launch(dim3 g, dim3 b, const std::function<void()> &body);
}

inline void __syncthreads()
{
    zn_host::block_barrier->arrive_and_wait();
}

template <class T> T __shfl_xor_sync(unsigned, T v, int lane_mask)
{
    static_assert(sizeof(T) <= 8, "a shuffled value has at most 8 bytes");
    unsigned w = threadIdx.x / 32, l = threadIdx.x % 32;
    memcpy(zn_host::lanes[w][l], &v, sizeof v);
    zn_host::warp_barrier[w]->arrive_and_wait();
    T r;
    memcpy(&r, zn_host::lanes[w][l ^ (unsigned)lane_mask], sizeof r);
    zn_host::warp_barrier[w]->arrive_and_wait(); /* every lane has read before the next write */
    return r;
}

#endif
