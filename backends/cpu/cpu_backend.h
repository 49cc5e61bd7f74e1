/* cpu_backend.h: what the CPU backend's files share (internal to backends/cpu): the backend's
 * state, the per-node call every op runner receives, and the runner tables of the forward ops
 * (cpu_forward.c) and backward ops (cpu_backward.c) that cpu_backend.c dispatches through. */
#ifndef ZN_CPU_BACKEND_H
#define ZN_CPU_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"
#include "backends/cpu/conv.h"
#include "backends/cpu/k_ztower.h"
#include "backends/cpu/kernels.h"
#include "backends/node_args.h"
#include "graph/util.h"

typedef struct {
    zn_backend base; /* first, so a zn_backend * is a zn_cpu * */
    zn_backend_opts opts;
    unsigned char *mem[ZN_REGION_COUNT]; /* one allocation per region of the plan */
    size_t bytes[ZN_REGION_COUNT];
    float *workspace; /* kernel scratch, the plan's workspace_bytes */
    size_t workspace_bytes;
 /* the zn_optim_step kind the state belongs to; -1 before the first step */
    /* Argument arrays for ops with any number of sources (concat, stitch), cap entries each. */
    const float **ptrs;
    int *ints; /* 3 * cap */
    int cap;
    uint64_t rng_seed, rng_step; /* set_rng: the key of dropout's masks */
    /* The sums per image plane that a conv's epilogue hands to the node paired with it
     * (zn_cpu_planes), planes_cap of them; pairs: node pairs run as one so far (tests read it). */
    zn_bn_sums *planes;
    size_t planes_cap;
    long pairs;
    char err[1024];
} zn_cpu;

/* One node being computed. */
typedef struct {
    zn_cpu *cpu;
    const zn_graph *g;
    const zn_plan *p;
    int id;
    const zn_node *node;
    int last;      /* the last node of this compute call: a runner may run later nodes up to it */
    int *ran_to;   /* a runner that ran later nodes too sets the last of them here */
} zn_cpu_call;

typedef bool (*zn_cpu_runner)(const zn_cpu_call *c);

/* Indexed by op; NULL where the file has no runner for the op. */
extern const zn_cpu_runner zn_cpu_forward_runners[ZN_OP_COUNT];
extern const zn_cpu_runner zn_cpu_backward_runners[ZN_OP_COUNT];

/* The tensor of node id under the plan: its region's base plus its offset. */
void *zn_cpu_tensor(const zn_cpu_call *c, int id);

static inline float *zn_cpu_out(const zn_cpu_call *c)
{
    return zn_cpu_tensor(c, c->id);
}

static inline float *zn_cpu_src(const zn_cpu_call *c, int k)
{
    return zn_cpu_tensor(c, c->node->src[k]);
}

static inline const zn_shape *zn_cpu_src_shape(const zn_cpu_call *c, int k)
{
    return &c->g->nodes[c->node->src[k]].shape;
}

/* The batch extent of a tensor of shape s: the plan's batch when batched, else 1. */
static inline int zn_cpu_batch(const zn_cpu_call *c, const zn_shape *s)
{
    return s->batched ? c->p->batch : 1;
}

/* Elements of a tensor of shape s, its batch axis included. */
static inline size_t zn_cpu_numel(const zn_cpu_call *c, const zn_shape *s)
{
    return zn_arg_numel(s, c->p->batch);
}

/* Writes "cpu backend: ..." style messages into the backend's last error; false. */
#define zn_cpu_fail(cpu, ...) zn_fail((cpu)->err, sizeof (cpu)->err, __VA_ARGS__)

/* The convolution of node id (CONV2D or either of its backward ops) at this batch. */
zn_conv_params zn_cpu_conv_params(const zn_graph *g, int id, int batch);
/* A stitch of the node's sources 0..count-1 into z [S_h, sum C_k, S_w]; the per-input arrays
 * live in the backend's ints[]. */
static inline zn_stitch_dims zn_cpu_stitch_dims(const zn_cpu_call *c, int count, const zn_shape *z)
{
    return zn_arg_stitch_dims(c->g, c->node, count, z, zn_cpu_batch(c, z), c->cpu->ints,
                              c->cpu->cap);
}
/* A z-tower node's geometry at this batch (per-input arrays in ints, cap entries each) and the
 * workspace it needs: its slice tensors, then the conv's scratch. */
zn_ztower_dims zn_cpu_ztower_dims(const zn_graph *g, int id, int batch, int *ints, int cap);
size_t zn_cpu_ztower_workspace(const zn_ztower_dims *d);
/* A z-tower node being run: its geometry, its stitched inputs in the backend's ptrs[], and the
 * workspace split into the slice tensors and the conv's scratch. */
typedef struct {
    zn_ztower_dims d;
    float *scratch, *conv_ws;
} zn_cpu_ztower;
zn_cpu_ztower zn_cpu_ztower_call(const zn_cpu_call *c);
/* The node this compute call runs after node id, skipping parameters and inputs (no work), or
 * -1 when id is the call's last: a runner may run it with its own (pairing). */
int zn_cpu_next_node(const zn_cpu_call *c);
/* Whether node b's bytes overlap node a's (both in the same region of the plan). */
bool zn_cpu_overlaps(const zn_plan *p, int a, int b);
/* Scratch for count plane sums, grown as needed; NULL when it cannot grow (the runner then runs
 * its node alone: a pairing is never needed for a result). */
zn_bn_sums *zn_cpu_planes(zn_cpu *cpu, size_t count);
/* Records that the runner ran node `to` with its own (ran_to and the pair count). */
void zn_cpu_ran_pair(const zn_cpu_call *c, int to);

/* FLATTEN and RESHAPE: the same elements under another shape. */
bool zn_cpu_run_copy(const zn_cpu_call *c);
/* The message for a label outside 0..K-1 at batch row `row` of an XENT or XENT_BWD node. */
bool zn_cpu_bad_label(const zn_cpu_call *c, int row, int classes);

#endif
