/* cuda_graph.c: compute ranges replayed as CUDA graphs (ZNET_CUDA_GRAPH, docs/cuda.md). A
 * range's first call runs eagerly (warm-up: the libraries finish their lazy setup), its second is
 * captured on the compute stream and launched, later ones launch the graph: one launch instead of
 * hundreds of kernel and library calls. A graph bakes in addresses and kernel arguments, so
 * ranges with per-step arguments (dropout's seed) or host waits (--check-numerics) stay eager,
 * graphs are dropped with the plan's memory, and a capture that fails says why once on stderr and
 * leaves its range eager. */
#include "backends/cuda/cuda_backend.h"

#include <stdio.h>

void zn_cuda_replay_reset(zn_cuda *cu)
{
    for (int i = 0; i < cu->n_replays; i++)
        if (cu->replays[i].exec) cudaGraphExecDestroy(cu->replays[i].exec);
    cu->n_replays = 0;
}

/* Whether nodes first..last have the same arguments every step. */
static bool capturable(const zn_cuda *cu, const zn_graph *g, int first, int last)
{
    if (!cu->settings.graphs || cu->opts.check_numerics) return false;
    for (int id = first; id <= last; id++)
        if (g->nodes[id].op == ZN_OP_DROPOUT) return false;
    return true;
}

/* The range's record, made on its first call; NULL when all are taken. */
static zn_cuda_replay *replay_of(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first,
                                 int last)
{
    bool training = cu->opts.training;
    for (int i = 0; i < cu->n_replays; i++) {
        zn_cuda_replay *r = &cu->replays[i];
        if (r->g == g && r->p == p && r->first == first && r->last == last &&
            r->training == training)
            return r;
    }
    if (cu->n_replays == ZN_CUDA_REPLAYS) return NULL;
    zn_cuda_replay *r = &cu->replays[cu->n_replays++];
    *r = (zn_cuda_replay){.g = g, .p = p, .first = first, .last = last, .training = training};
    for (int id = first; id <= last; id++)
        if (g->nodes[id].op == ZN_OP_XENT || g->nodes[id].op == ZN_OP_XENT_BWD) r->labels = true;
    return r;
}

/* Captures r's nodes into r->exec; false (r made eager, the reason on stderr, no error left
 * behind) when any part of it fails. Nothing runs while capturing. */
static bool capture(zn_cuda *cu, zn_cuda_replay *r)
{
    char why[1100] = "";
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "cudaStreamBeginCapture: %s", cudaGetErrorString(e));
    } else {
        bool ran = zn_cuda_run_nodes(cu, r->g, r->p, r->first, r->last);
        if (!ran) snprintf(why, sizeof why, "%s", cu->err);
        e = cudaStreamEndCapture(cu->stream, &graph);
        if (ran && e != cudaSuccess)
            snprintf(why, sizeof why, "cudaStreamEndCapture: %s", cudaGetErrorString(e));
        if (!why[0] && (e = cudaGraphInstantiate(&r->exec, graph, 0)) != cudaSuccess)
            snprintf(why, sizeof why, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
        if (graph) cudaGraphDestroy(graph);
    }
    if (!why[0]) return true;
    (void)cudaGetLastError(); /* a refused capture leaves its error for the next call to find */
    cu->err[0] = 0;
    r->exec = NULL;
    r->eager = true;
    fprintf(stderr, "znet: cuda backend: nodes %d..%d run eagerly, not as a CUDA graph (%s; "
            "ZNET_CUDA_GRAPH=off skips the attempt)\n", r->first, r->last, why);
    return false;
}

bool zn_cuda_replay_compute(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first, int last)
{
    zn_cuda_replay *r = capturable(cu, g, first, last) ? replay_of(cu, g, p, first, last) : NULL;
    if (!r || r->eager || r->calls++ == 0 || (!r->exec && !capture(cu, r)))
        return zn_cuda_run_nodes(cu, g, p, first, last);
    if (!ZN_RT_AT(cu, NULL, cudaGraphLaunch, r->exec, cu->stream)) return false;
    if (r->labels) cu->labels_pending = true;
    return true;
}
