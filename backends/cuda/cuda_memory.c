/* cuda_memory.c: the CUDA backend's memory: one device allocation for every region of the plan
 * and the workspace (alloc), set/get by (region, offset), the staging of inputs through pinned
 * memory and a copy stream (prepare), the status words kernels report through, and the
 * measured arena high-water mark. Nothing here allocates after prepare. */
#include "backends/cuda/cuda_backend.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_util.h"

/* alloc fills the arena with this byte: every word then reads 0xFFFFFFFF, a NaN no kernel
 * writes (a computed NaN is 0x7FFFFFFF), so arena_high_water finds the last word written and a
 * kernel reading a tensor nobody wrote sees NaNs (caught by --check-numerics). */
#define ARENA_SENTINEL 0xFF
#define HIGH_WATER_CHUNK ((size_t)4 << 20) /* bytes copied back at a time by arena_high_water */

static zn_cuda *cuda_of(zn_backend *be)
{
    return (zn_cuda *)be;
}

bool zn_cuda_quiesce(zn_cuda *cu)
{
    return ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->copy_stream) &&
           ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream);
}

void zn_cuda_release_plan(zn_cuda *cu)
{
    zn_cuda_replay_reset(cu); /* its graphs hold the plan's addresses */
    if (cu->block) cudaFree(cu->block);
    cu->block = cu->workspace = NULL;
    cu->workspace_bytes = 0;
    for (int r = 0; r < ZN_REGION_COUNT; r++) {
        cu->mem[r] = NULL;
        cu->bytes[r] = 0;
    }
}

void zn_cuda_release_staging(zn_cuda *cu)
{
    zn_cuda_replay_reset(cu); /* its graphs hold the status words' addresses */
    for (int i = 0; i < cu->n_inputs; i++) {
        if (cu->inputs[i].copied) cudaEventDestroy(cu->inputs[i].copied);
        if (cu->inputs[i].consumed) cudaEventDestroy(cu->inputs[i].consumed);
    }
    free(cu->inputs);
    cu->inputs = NULL;
    cu->n_inputs = 0;
    if (cu->pinned) cudaFreeHost(cu->pinned);
    if (cu->staging) cudaFree(cu->staging);
    cu->pinned = cu->staging = NULL;
    cu->bad_row = cu->bad_row_host = NULL;
    cu->nonfinite = cu->nonfinite_host = NULL;
    cu->n_status = 0;
    cu->labels_pending = false;
}

bool zn_cuda_alloc(zn_backend *be, const zn_plan *p)
{
    zn_cuda *cu = cuda_of(be);
    if (!zn_cuda_quiesce(cu)) return false;
    zn_cuda_release_staging(cu); /* its offsets belong to the old plan: prepare makes new ones */
    zn_cuda_release_plan(cu);
    size_t at[ZN_REGION_COUNT], total = 0;
    for (int r = 0; r < ZN_REGION_COUNT; r++) {
        at[r] = total;
        total += zn_cuda_align(p->region_bytes[r]);
    }
    size_t ws_at = total;
    total += zn_cuda_align(p->workspace_bytes);
    if (!total) return true;
    void *block;
    cudaError_t e = cudaMalloc(&block, total);
    if (e != cudaSuccess)
        return zn_cuda_fail(cu, "cuda backend: cudaMalloc of %zu bytes (%.2f GiB: the plan's "
                            "regions and workspace) failed: %s (%s)", total,
                            (double)total / (1u << 30), cudaGetErrorString(e), cudaGetErrorName(e));
    cu->block = block;
    for (int r = 0; r < ZN_REGION_COUNT; r++) {
        cu->mem[r] = cu->block + at[r];
        cu->bytes[r] = p->region_bytes[r];
    }
    cu->workspace = p->workspace_bytes ? cu->block + ws_at : NULL;
    cu->workspace_bytes = p->workspace_bytes;
    /* momentum starts at 0; alignment gaps between tensors read back (checkpoints) as zeros */
    return ZN_RT_AT(cu, NULL, cudaMemsetAsync, cu->block, ARENA_SENTINEL,
                    cu->bytes[ZN_REGION_ARENA], cu->stream) &&
           ZN_RT_AT(cu, NULL, cudaMemsetAsync, cu->mem[ZN_REGION_PARAMS], 0,
                    ws_at - at[ZN_REGION_PARAMS], cu->stream) &&
           ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream);
}

/* Moves a staged input into its arena bytes, on the compute stream once its upload is done. */
static bool flush_one(zn_cuda *cu, zn_cuda_input *in)
{
    if (!ZN_RT_AT(cu, NULL, cudaStreamWaitEvent, cu->stream, in->copied, 0) ||
        !ZN_RT_AT(cu, NULL, cudaMemcpyAsync, cu->mem[ZN_REGION_ARENA] + in->offset, in->dev,
                  in->pending, cudaMemcpyDeviceToDevice, cu->stream) ||
        !ZN_RT_AT(cu, NULL, cudaEventRecord, in->consumed, cu->stream))
        return false;
    in->pending = 0;
    return true;
}

bool zn_cuda_flush_inputs(zn_cuda *cu, size_t offset, size_t bytes)
{
    for (int i = 0; i < cu->n_inputs; i++) {
        zn_cuda_input *in = &cu->inputs[i];
        if (in->pending && in->offset < offset + bytes && offset < in->offset + in->pending &&
            !flush_one(cu, in))
            return false;
    }
    return true;
}

/* The staged input that starts at offset and holds `bytes`, or NULL. */
static zn_cuda_input *input_at(zn_cuda *cu, size_t offset, size_t bytes)
{
    for (int i = 0; i < cu->n_inputs; i++)
        if (cu->inputs[i].offset == offset && bytes <= cu->inputs[i].bytes) return &cu->inputs[i];
    return NULL;
}

const zn_cuda_input *zn_cuda_input_of(const zn_cuda *cu, int node)
{
    for (int i = 0; i < cu->n_inputs; i++)
        if (cu->inputs[i].node == node) return &cu->inputs[i];
    return NULL;
}

/* host -> pinned buffer -> (copy stream) device staging; the caller's buffer is free on return.
 * Waits only for this input's previous upload, and the upload waits only for the previous
 * batch's move into the arena, so it overlaps the step that is computing. */
static bool stage(zn_cuda *cu, zn_cuda_input *in, const void *host, size_t bytes)
{
    if (!ZN_RT_AT(cu, NULL, cudaEventSynchronize, in->copied)) return false;
    memcpy(in->host, host, bytes);
    if (!ZN_RT_AT(cu, NULL, cudaStreamWaitEvent, cu->copy_stream, in->consumed, 0) ||
        !ZN_RT_AT(cu, NULL, cudaMemcpyAsync, in->dev, in->host, bytes, cudaMemcpyHostToDevice,
                  cu->copy_stream) ||
        !ZN_RT_AT(cu, NULL, cudaEventRecord, in->copied, cu->copy_stream))
        return false;
    in->pending = bytes;
    in->fed = true;
    return true;
}

bool zn_cuda_set(zn_backend *be, zn_region r, size_t offset, const void *host, size_t bytes)
{
    zn_cuda *cu = cuda_of(be);
    if (!zn_check_region("cuda", cu->bytes, "set", r, offset, bytes, cu->err, sizeof cu->err))
        return false;
    if (!bytes) return true;
    zn_cuda_input *in = r == ZN_REGION_ARENA ? input_at(cu, offset, bytes) : NULL;
    if (in) return stage(cu, in, host, bytes);
    /* anything else (parameters, checkpoints) synchronously, after staged bytes it overlaps */
    return (r != ZN_REGION_ARENA || zn_cuda_flush_inputs(cu, offset, bytes)) &&
           ZN_RT_AT(cu, NULL, cudaMemcpyAsync, cu->mem[r] + offset, host, bytes,
                    cudaMemcpyHostToDevice, cu->stream) &&
           ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream);
}

/* get waits for the stream and reports what kernels found since (zn_cuda_settle). Staged inputs
 * stay staged unless read: the step that needs them moves them into the arena, whose bytes may
 * still hold the last step's results (losses, logits) until then. */
bool zn_cuda_get(zn_backend *be, zn_region r, size_t offset, void *host, size_t bytes)
{
    zn_cuda *cu = cuda_of(be);
    if (!zn_check_region("cuda", cu->bytes, "get", r, offset, bytes, cu->err, sizeof cu->err))
        return false;
    if (!bytes) return zn_cuda_settle(cu);
    return (r != ZN_REGION_ARENA || zn_cuda_flush_inputs(cu, offset, bytes)) &&
           ZN_RT_AT(cu, NULL, cudaMemcpyAsync, host, cu->mem[r] + offset, bytes,
                    cudaMemcpyDeviceToHost, cu->stream) &&
           zn_cuda_settle(cu);
}

bool zn_cuda_staging_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p)
{
    if (!zn_cuda_quiesce(cu)) return false;
    zn_cuda_release_staging(cu);
    int count = 0;
    size_t total = 0;
    for (int id = 0; id < g->n_nodes; id++)
        if (g->nodes[id].op == ZN_OP_INPUT && p->region[id] == ZN_REGION_ARENA && p->bytes[id]) {
            count++;
            total += zn_cuda_align(p->bytes[id]);
        }
    size_t status_at = total;
    total += zn_cuda_align(sizeof(int) * (size_t)g->n_nodes) + sizeof(unsigned long long);
    cu->inputs = calloc((size_t)(count ? count : 1), sizeof *cu->inputs);
    if (!cu->inputs) return zn_cuda_fail(cu, "cuda backend: calloc of %d inputs failed", count);
    void *pinned, *staging;
    if (!ZN_RT_AT(cu, NULL, cudaHostAlloc, &pinned, total, cudaHostAllocDefault)) return false;
    cu->pinned = pinned;
    if (!ZN_RT_AT(cu, NULL, cudaMalloc, &staging, total)) return false;
    cu->staging = staging;
    size_t at = 0;
    for (int id = 0; id < g->n_nodes; id++) {
        if (g->nodes[id].op != ZN_OP_INPUT || p->region[id] != ZN_REGION_ARENA || !p->bytes[id])
            continue;
        zn_cuda_input *in = &cu->inputs[cu->n_inputs++];
        *in = (zn_cuda_input){.node = id, .offset = p->offset[id], .bytes = p->bytes[id],
                              .host = cu->pinned + at, .dev = cu->staging + at};
        at += zn_cuda_align(p->bytes[id]);
        if (!ZN_RT_AT(cu, &g->nodes[id], cudaEventCreateWithFlags, &in->copied,
                      cudaEventDisableTiming) ||
            !ZN_RT_AT(cu, &g->nodes[id], cudaEventCreateWithFlags, &in->consumed,
                      cudaEventDisableTiming))
            return false;
    }
    size_t word_at = status_at + zn_cuda_align(sizeof(int) * (size_t)g->n_nodes);
    cu->bad_row = (int *)(cu->staging + status_at);
    cu->bad_row_host = (int *)(cu->pinned + status_at);
    cu->nonfinite = (unsigned long long *)(cu->staging + word_at);
    cu->nonfinite_host = (unsigned long long *)(cu->pinned + word_at);
    cu->n_status = g->n_nodes;
    memset(cu->bad_row_host, 0, sizeof(int) * (size_t)g->n_nodes);
    return ZN_RT_AT(cu, NULL, cudaMemsetAsync, cu->bad_row, 0, sizeof(int) * (size_t)g->n_nodes,
                    cu->stream);
}

size_t zn_cuda_arena_high_water(zn_backend *be)
{
    zn_cuda *cu = cuda_of(be);
    size_t words = cu->bytes[ZN_REGION_ARENA] / 4, chunk = HIGH_WATER_CHUNK / 4;
    uint32_t *buf = malloc(HIGH_WATER_CHUNK);
    if (!buf) {
        zn_cuda_fail(cu, "cuda backend: malloc of %zu bytes failed", HIGH_WATER_CHUNK);
        return 0;
    }
    size_t mark = 0;
    bool ok = zn_cuda_flush_inputs(cu, 0, SIZE_MAX / 2);
    while (ok && words && !mark) {
        size_t n = words < chunk ? words : chunk, from = words - n;
        ok = ZN_RT_AT(cu, NULL, cudaMemcpyAsync, buf, cu->mem[ZN_REGION_ARENA] + 4 * from, 4 * n,
                      cudaMemcpyDeviceToHost, cu->stream) &&
             ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream);
        for (size_t i = n; ok && i > 0 && !mark; i--)
            if (buf[i - 1] != UINT32_MAX) mark = 4 * (from + i);
        words = from;
    }
    free(buf);
    return mark;
}

size_t zn_cuda_memory_available(zn_backend *be)
{
    size_t free_bytes = 0, total = 0;
    return ZN_RT_AT(cuda_of(be), NULL, cudaMemGetInfo, &free_bytes, &total) ? free_bytes : 0;
}
