/* backend_util.c: the door of backend_util.h, shared by the CPU backend and the CUDA module so
 * that both refuse the same bad (region, offset) or plan with the same message. */
#include "backends/backend_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "graph/util.h"

const char *const zn_region_names[ZN_REGION_COUNT] = {"arena", "params", "grads",
                                                      "optimizer state"};

void *zn_backend_alloc(const char *backend, size_t size, const zn_backend_ops *ops, char *err,
                       size_t errlen)
{
    zn_backend *be = calloc(1, size);
    if (!be) {
        snprintf(err, errlen, "%s backend: calloc of %zu bytes failed", backend, size);
        return NULL;
    }
    be->ops = ops;
    return be;
}

bool zn_check_region(const char *backend, const size_t have[ZN_REGION_COUNT], const char *call,
                     zn_region r, size_t offset, size_t bytes, char *err, size_t errlen)
{
    if ((unsigned)r >= ZN_REGION_COUNT)
        return zn_fail(err, errlen, "%s backend: %s: no region %d", backend, call, (int)r);
    if (offset > have[r] || bytes > have[r] - offset)
        return zn_fail(err, errlen, "%s backend: %s of %zu bytes at offset %zu is outside the %s "
                       "region (%zu bytes)", backend, call, bytes, offset, zn_region_names[r],
                       have[r]);
    return true;
}

bool zn_check_plan(const char *backend, const zn_plan *p, const zn_graph *g,
                   const size_t have[ZN_REGION_COUNT], char *err, size_t errlen)
{
    if (p->n_nodes != g->n_nodes)
        return zn_fail(err, errlen, "%s backend: the plan has %d nodes, the graph %d", backend,
                       p->n_nodes, g->n_nodes);
    for (int r = 0; r < ZN_REGION_COUNT; r++)
        if (p->region_bytes[r] > have[r])
            return zn_fail(err, errlen, "%s backend: the plan's %s region (%zu bytes) is larger "
                           "than what alloc gave (%zu bytes): call alloc with this plan", backend,
                           zn_region_names[r], p->region_bytes[r], have[r]);
    return true;
}

bool zn_grow_args(const char *backend, const zn_graph *g, int first, int last,
                  const float ***ptrs, int **ints, int *cap, char *err, size_t errlen)
{
    int need = 1;
    for (int id = first; id <= last; id++)
        if (g->nodes[id].n_src > need) need = g->nodes[id].n_src;
    if (need <= *cap) return true;
    const float **p = realloc(*ptrs, sizeof *p * (size_t)need);
    if (p) *ptrs = p;
    int *n = realloc(*ints, sizeof *n * 3 * (size_t)need);
    if (n) *ints = n;
    if (!p || !n)
        return zn_fail(err, errlen, "%s backend: realloc of %d sources failed", backend, need);
    *cap = need;
    return true;
}
