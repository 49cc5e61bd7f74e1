/* emu.cpp (tests/cuda_host/): the launches of cuda_runtime.h. The block's threads are made once
 * per launch and walk the blocks in order, all finishing one before any starts the next, so a
 * __shared__ static belongs to one block at a time. */
#include "cuda_runtime.h"

#include <cassert>
#include <memory>
#include <thread>
#include <vector>

thread_local zn_host_index threadIdx, blockIdx;
zn_host_index blockDim, gridDim;

namespace zn_host {
std::barrier<> *block_barrier;
std::barrier<> *warp_barrier[32];
unsigned char lanes[32][32][8];

void launch(dim3 g, dim3 b, const std::function<void()> &body)
{
    assert(b.x % 32 == 0 && b.x <= 1024 && b.y == 1 && b.z == 1 && g.z == 1);
    gridDim = {g.x, g.y, 1};
    blockDim = {b.x, 1, 1};
    std::barrier<> block(b.x), done(b.x);
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    block_barrier = &block;
    for (unsigned w = 0; w < b.x / 32; w++) {
        warps.push_back(std::make_unique<std::barrier<>>(32));
        warp_barrier[w] = warps.back().get();
    }
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < b.x; t++)
        threads.emplace_back([&, t] {
            threadIdx = {t, 0, 0};
            for (unsigned y = 0; y < g.y; y++)
                for (unsigned x = 0; x < g.x; x++) {
                    blockIdx = {x, y, 0};
                    body();
                    done.arrive_and_wait();
                }
        });
    for (auto &t : threads) t.join();
}
}
