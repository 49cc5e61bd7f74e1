/* grad_sync.c: see grad_sync.h. Without NCCL the backend's GRADS region is copied bucket by
 * bucket to one host buffer, summed there in place by MPI and copied back; a device backend's
 * copies synchronise it, so a bucket is sent only once its gradients exist. */
#include "runtime/grad_sync.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "graph/util.h"
#include "runtime/dist.h"
#include "runtime/profile.h"

static bool copy_grad(zn_grad_sync *g, int i, bool to_host)
{
    zn_session *s = g->s;
    int id = g->grads[i];
    zn_backend *be = s->be;
    float *host = g->buf + g->at[i];
    bool ok = to_host ? be->ops->get(be, ZN_REGION_GRADS, s->plan.offset[id], host, s->plan.bytes[id])
                      : be->ops->set(be, ZN_REGION_GRADS, s->plan.offset[id], host, s->plan.bytes[id]);
    if (!ok) snprintf(s->err, sizeof s->err, "%s", be->ops->last_error(be));
    return ok;
}

/* Bucket b summed on the device: one range of the GRADS region, which the plan lays out in node
 * order (the padding between gradients is summed too, and never read). */
static bool bucket_nccl(zn_grad_sync *g, int b)
{
    const zn_plan *p = &g->s->plan;
    int first = g->grads[g->first[b]], last = g->grads[g->first[b + 1] - 1];
    assert(p->offset[first] <= p->offset[last]);
    size_t bytes = p->offset[last] + p->bytes[last] - p->offset[first];
    if (g->nccl_sum(g->s->be, ZN_REGION_GRADS, p->offset[first], bytes / sizeof(float), g->scale != 1.0f)) return true;
    snprintf(g->s->err, sizeof g->s->err, "%s", g->s->be->ops->last_error(g->s->be));
    return false;
}

static bool bucket_ready(void *ctx, int b)
{
    zn_grad_sync *g = ctx;
    if (b == 0) g->t_first = zn_seconds();
    if (g->nccl_sum) return bucket_nccl(g, b);
    for (int i = g->first[b]; i < g->first[b + 1]; i++)
        if (!copy_grad(g, i, true)) return false;
    size_t end = g->first[b + 1] < g->n_grads ? g->at[g->first[b + 1]] : g->floats;
    zn_dist_isum_begin(g->buf + g->at[g->first[b]], end - g->at[g->first[b]]);
    zn_dist_isum_progress();
    return true;
}

static bool buckets_done(void *ctx)
{
    zn_grad_sync *g = ctx;
    g->steps++;
    if (g->nccl_sum) return true; /* the optimizer's kernels follow the sums on the same stream */
    g->waited_s += zn_dist_isum_wait();
    g->in_flight_s += zn_seconds() - g->t_first;
    if (g->scale != 1.0f)
        for (size_t k = 0; k < g->floats; k++) g->buf[k] *= g->scale;
    for (int i = 0; i < g->n_grads; i++)
        if (!copy_grad(g, i, false)) return false;
    return true;
}

/* The CUDA module's NCCL entry points and a communicator over the ranks, the id drawn by rank 0
 * and broadcast; false (the sums then go through the host) when the module has no NCCL. A failure
 * after the first collective ends the job: the other ranks are in it. */
static bool nccl_join(zn_grad_sync *g)
{
    char err[512];
    size_t (*id_bytes)(void) = (size_t (*)(void))zn_cuda_module_symbol("zn_cuda_nccl_id_bytes", err, sizeof err);
    bool (*id)(zn_backend *, void *) = (bool (*)(zn_backend *, void *))zn_cuda_module_symbol("zn_cuda_nccl_id", err, sizeof err);
    bool (*join)(zn_backend *, const void *, int, int) =
        (bool (*)(zn_backend *, const void *, int, int))zn_cuda_module_symbol("zn_cuda_nccl_join", err, sizeof err);
    g->nccl_sum = (bool (*)(zn_backend *, zn_region, size_t, size_t, bool))zn_cuda_module_symbol("zn_cuda_nccl_sum", err, sizeof err);
    g->nccl_leave = (void (*)(void))zn_cuda_module_symbol("zn_cuda_nccl_leave", err, sizeof err);
    if (!id_bytes || !id || !join || !g->nccl_sum || !g->nccl_leave) {
        g->nccl_sum = NULL, g->nccl_leave = NULL;
        return false;
    }
    zn_backend *be = g->s->be;
    size_t n = id_bytes();
    char *buf = zn_calloc(n, 1);
    if (zn_dist_rank() == 0 && !id(be, buf)) zn_dist_abort(1, be->ops->last_error(be));
    zn_dist_bcast(buf, n);
    if (!join(be, buf, zn_dist_rank(), zn_dist_size())) zn_dist_abort(1, be->ops->last_error(be));
    free(buf);
    return true;
}

bool zn_grad_sync_init(zn_grad_sync *g, zn_session *s, size_t bucket_bytes)
{
    memset(g, 0, sizeof *g);
    g->s = s;
    int mean = 0;
    for (int h = 0; h < s->n_heads; h++) mean += s->graph.nodes[s->heads[h]].attr.reduction == ZN_REDUCE_MEAN;
    if (mean && mean != s->n_heads) {
        snprintf(s->err, sizeof s->err, "the heads mix reduction = \"sum\" and \"mean\": their gradients cannot "
                                        "be summed across ranks (give every head the same reduction)");
        return false;
    }
    g->scale = mean ? 1.0f / (float)zn_dist_size() : 1.0f;
    const zn_graph *gr = &s->graph;
    g->grads = zn_malloc(sizeof *g->grads * (gr->n_nodes + 1));
    g->at = zn_malloc(sizeof *g->at * (gr->n_nodes + 1));
    g->points = zn_malloc(sizeof *g->points * (gr->n_nodes + 1));
    g->first = zn_malloc(sizeof *g->first * (gr->n_nodes + 2));
    size_t in_bucket = 0;
    for (int id = s->n_forward; id < gr->n_nodes; id++) {
        if (!(gr->nodes[id].flags & ZN_NODE_GRAD)) continue;
        if (in_bucket == 0) g->first[g->n_buckets] = g->n_grads;
        g->at[g->n_grads] = g->floats;
        g->grads[g->n_grads++] = id;
        g->floats += s->plan.bytes[id] / sizeof(float);
        in_bucket += s->plan.bytes[id];
        if (in_bucket >= bucket_bytes) g->points[g->n_buckets++] = id, in_bucket = 0;
    }
    if (in_bucket) g->points[g->n_buckets++] = g->grads[g->n_grads - 1];
    g->first[g->n_buckets] = g->n_grads;
    g->hook = (zn_grad_hook){g->points, g->n_buckets, bucket_ready, buckets_done, g};
    s->grad_hook = &g->hook;
    if (strcmp(s->be->ops->name, "cuda") == 0 && nccl_join(g)) return true;
    g->buf = zn_malloc(sizeof *g->buf * (g->floats + 1));
    return true;
}

void zn_grad_sync_free(zn_grad_sync *g)
{
    if (g->s) g->s->grad_hook = NULL;
    if (g->nccl_leave) g->nccl_leave();
    free(g->grads);
    free(g->at);
    free(g->points);
    free(g->first);
    free(g->buf);
    memset(g, 0, sizeof *g);
}
