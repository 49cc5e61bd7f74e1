/* backend_util.h: what every backend does at its vtable's door, whatever the device: allocating
 * its state, checking that a (region, offset, bytes) handed to set or get lies in what alloc gave
 * and that a plan handed to prepare or compute covers the graph and fits that allocation, and
 * growing the argument arrays to the widest node's sources. Messages start "<backend> backend: ".
 * Built into the CPU backend and into the CUDA module. */
#ifndef ZN_BACKEND_UTIL_H
#define ZN_BACKEND_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"
#include "graph/graph.h"
#include "graph/plan.h"

/* A zeroed backend state of `size` bytes, its first member the zn_backend that runs ops; NULL
 * with a message in err when calloc fails. */
void *zn_backend_alloc(const char *backend, size_t size, const zn_backend_ops *ops, char *err,
                       size_t errlen);

/* What messages call each region: "arena", "params", "grads", "optimizer state". */
extern const char *const zn_region_names[ZN_REGION_COUNT];

/* Whether [offset, offset + bytes) lies in region r, of have[r] bytes; false with a message
 * naming the call ("set", "get") in err. */
bool zn_check_region(const char *backend, const size_t have[ZN_REGION_COUNT], const char *call,
                     zn_region r, size_t offset, size_t bytes, char *err, size_t errlen);

/* Whether plan p has g's nodes and no region larger than alloc gave (have[r] bytes); false with
 * a message in err. */
bool zn_check_plan(const char *backend, const zn_plan *p, const zn_graph *g,
                   const size_t have[ZN_REGION_COUNT], char *err, size_t errlen);

/* Grows *ptrs and *ints (3 per source) from *cap to the sources of the widest node of
 * first..last. false with a message in err when realloc fails (what was there stays). */
bool zn_grow_args(const char *backend, const zn_graph *g, int first, int last,
                  const float ***ptrs, int **ints, int *cap, char *err, size_t errlen);

#endif
