/* cpu_backend.c: the CPU backend's vtable (zn_cpu_backend): memory (one 64-byte aligned block
 * per plan region, the kernel workspace, optimizer state), tensor set/get, the compute loop that
 * dispatches every node to its runner (cpu_forward.c, cpu_backward.c) with the optional
 * non-finite check, the optimizer step and the measured arena high-water mark. */
#include "backends/cpu/cpu_backend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_util.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/threads.h"
#include "graph/inspect.h"

/* alloc fills the arena with this word, and arena_high_water finds the last word that no longer
 * holds it. It is a signalling-NaN pattern no kernel writes, so the mark is exact to 4 bytes,
 * and a kernel reading a tensor nobody wrote sees NaNs (caught by check_numerics). */
#define ARENA_SENTINEL UINT32_C(0x7FA5A5A5)

/* The worker pool is process-wide: the first live backend starts it, the last one stops it. */
static int live_backends;

static zn_cpu *cpu_of(zn_backend *be)
{
    return (zn_cpu *)be;
}

static bool cpu_available(char *why, size_t len)
{
    (void)why;
    (void)len;
    return true;
}

static zn_backend *cpu_create(const zn_backend_opts *opts, char *err, size_t errlen)
{
    if (opts->precision != ZN_PRECISION_FP32) {
        snprintf(err, errlen, "cpu backend: --precision %s needs the cuda backend",
                 zn_precision_name(opts->precision));
        return NULL;
    }
    if (!zn_cpu_path_choose(err, errlen)) return NULL; /* ZNET_CPU_PATH names no path it can run */
    zn_cpu *cpu = zn_backend_alloc("cpu", sizeof *cpu, &zn_cpu_backend, err, errlen);
    if (!cpu) return NULL;
    cpu->opts = *opts;
    if (live_backends++ == 0) zn_cpu_threads_init(opts->threads);
    return &cpu->base;
}

static void release_memory(zn_cpu *cpu)
{
    for (int r = 0; r < ZN_REGION_COUNT; r++) {
        free(cpu->mem[r]);
        cpu->mem[r] = NULL;
        cpu->bytes[r] = 0;
    }
    free(cpu->workspace);
    cpu->workspace = NULL;
    cpu->workspace_bytes = 0;
}

static void cpu_destroy(zn_backend *be)
{
    if (!be) return;
    zn_cpu *cpu = cpu_of(be);
    release_memory(cpu);
    free(cpu->ptrs);
    free(cpu->ints);
    free(cpu->planes);
    free(cpu);
    if (--live_backends == 0) zn_cpu_threads_free();
}

static const char *op_name(zn_op op, char *buf, size_t len)
{
    if ((unsigned)op < ZN_OP_COUNT && zn_ops[op].name) return zn_ops[op].name;
    snprintf(buf, len, "#%d", (int)op);
    return buf;
}

/* false (with the message in last_error) for an op this backend has no runner for. */
static bool cpu_supports(zn_backend *be, const zn_graph *g, int id)
{
    const zn_node *n = &g->nodes[id];
    zn_op op = n->op;
    /* the fused batch norm + relu and the fused z-tower have no synchronised statistics: under
     * --sync-bn their passes keep the nodes apart */
    if (cpu_of(be)->opts.bn_sync && (op == ZN_OP_BATCHNORM_RELU || op == ZN_OP_BATCHNORM_RELU_BWD_COEF ||
                                     op == ZN_OP_ZTOWER || op == ZN_OP_ZTOWER_COEF))
        return zn_cpu_fail(cpu_of(be), "cpu backend: %s has no --sync-bn form", zn_ops[op].name);
    if (op == ZN_OP_INPUT || op == ZN_OP_PARAM ||
        ((unsigned)op < ZN_OP_COUNT && (zn_cpu_forward_runners[op] || zn_cpu_backward_runners[op])))
        return true;
    char where[256], name[32];
    return zn_cpu_fail(cpu_of(be), "cpu backend: op %s (%s, %s) is not supported",
                       op_name(op, name, sizeof name), n->name,
                       zn_node_where(n, where, sizeof where));
}

static size_t cpu_workspace_bytes(zn_backend *be, const zn_graph *g, int id, int batch)
{
    (void)be;
    switch (g->nodes[id].op) {
    case ZN_OP_CONV2D:
    case ZN_OP_CONV2D_BWD_DATA:
    case ZN_OP_CONV2D_BWD_FILTER: {
        zn_conv_params p = zn_cpu_conv_params(g, id, batch);
        return zn_conv2d_workspace_bytes(&p);
    }
    case ZN_OP_ZTOWER:
    case ZN_OP_ZTOWER_COEF:
    case ZN_OP_ZTOWER_BWD: {
        int cap = g->nodes[id].n_src;
        int *ints = zn_calloc(3 * (size_t)cap, sizeof *ints);
        zn_ztower_dims d = zn_cpu_ztower_dims(g, id, batch, ints, cap);
        free(ints);
        return zn_cpu_ztower_workspace(&d);
    }
    default:
        return 0;
    }
}

/* 64-byte aligned memory of `bytes` into *out (NULL for 0 bytes); false with a message naming
 * `what` and the bytes asked for. */
static bool alloc_block(zn_cpu *cpu, size_t bytes, const char *what, void **out)
{
    *out = NULL;
    if (!bytes) return true;
    int rc = posix_memalign(out, 64, bytes);
    if (rc == 0) return true;
    *out = NULL;
    return zn_cpu_fail(cpu, "cpu backend: cannot allocate %zu bytes (%.2f GiB) for the %s: "
                       "posix_memalign: %s", bytes, (double)bytes / (1u << 30), what, strerror(rc));
}

static bool cpu_alloc(zn_backend *be, const zn_plan *p)
{
    zn_cpu *cpu = cpu_of(be);
    release_memory(cpu);
    void *block;
    for (int r = 0; r < ZN_REGION_COUNT; r++) {
        if (!alloc_block(cpu, p->region_bytes[r], zn_region_names[r], &block)) {
            release_memory(cpu);
            return false;
        }
        cpu->mem[r] = block;
        cpu->bytes[r] = p->region_bytes[r];
    }
    if (!alloc_block(cpu, p->workspace_bytes, "kernel workspace", &block)) {
        release_memory(cpu);
        return false;
    }
    cpu->workspace = block;
    cpu->workspace_bytes = p->workspace_bytes;
    /* momentum starts at 0; alignment gaps between tensors read back (checkpoints) as zeros */
    for (int r = ZN_REGION_PARAMS; r < ZN_REGION_COUNT; r++) /* (an empty region is NULL: no memset) */
        if (cpu->bytes[r]) memset(cpu->mem[r], 0, cpu->bytes[r]);
    uint32_t *arena = (uint32_t *)cpu->mem[ZN_REGION_ARENA];
    for (size_t i = 0; i < cpu->bytes[ZN_REGION_ARENA] / 4; i++) arena[i] = ARENA_SENTINEL;
    return true;
}

static bool cpu_set(zn_backend *be, zn_region r, size_t offset, const void *host, size_t bytes)
{
    zn_cpu *cpu = cpu_of(be);
    if (!zn_check_region("cpu", cpu->bytes, "set", r, offset, bytes, cpu->err, sizeof cpu->err))
        return false;
    if (bytes) memcpy(cpu->mem[r] + offset, host, bytes);
    return true;
}

static bool cpu_get(zn_backend *be, zn_region r, size_t offset, void *host, size_t bytes)
{
    zn_cpu *cpu = cpu_of(be);
    if (!zn_check_region("cpu", cpu->bytes, "get", r, offset, bytes, cpu->err, sizeof cpu->err))
        return false;
    if (bytes) memcpy(host, cpu->mem[r] + offset, bytes);
    return true;
}

/* Every node of first..last can run: supported, and its scratch fits the plan's workspace. */
static bool check_nodes(zn_cpu *cpu, const zn_graph *g, const zn_plan *p, int first, int last)
{
    for (int id = first; id <= last; id++) {
        const zn_node *n = &g->nodes[id];
        char where[256], name[32];
        if (!cpu_supports(&cpu->base, g, id)) return false;
        size_t ws = cpu_workspace_bytes(&cpu->base, g, id, p->batch);
        if (ws > cpu->workspace_bytes)
            return zn_cpu_fail(cpu, "cpu backend: node '%s' (%s, %s) needs %zu bytes of "
                               "workspace, the plan has %zu", n->name,
                               zn_node_where(n, where, sizeof where),
                               op_name(n->op, name, sizeof name), ws, cpu->workspace_bytes);
    }
    return true;
}

/* The argument arrays hold the sources of the widest node of first..last. */
static bool grow_args(zn_cpu *cpu, const zn_graph *g, int first, int last)
{
    return zn_grow_args("cpu", g, first, last, &cpu->ptrs, &cpu->ints, &cpu->cap, cpu->err,
                        sizeof cpu->err);
}

/* The plan was allocated here and covers this graph. */
static bool check_plan(zn_cpu *cpu, const zn_graph *g, const zn_plan *p)
{
    return zn_check_plan("cpu", p, g, cpu->bytes, cpu->err, sizeof cpu->err);
}

static bool cpu_prepare(zn_backend *be, const zn_graph *g, const zn_plan *p)
{
    zn_cpu *cpu = cpu_of(be);
    return check_plan(cpu, g, p) && check_nodes(cpu, g, p, 0, g->n_nodes - 1) &&
           grow_args(cpu, g, 0, g->n_nodes - 1);
}

/* After node id ran: its float output holds no NaN or infinity. */
static bool check_finite(const zn_cpu_call *c)
{
    const zn_node *n = c->node;
    if (n->shape.dtype != ZN_DTYPE_F32) return true;
    const float *y = zn_cpu_out(c);
    size_t at;
    if (!zn_find_nonfinite(y, zn_cpu_numel(c, &n->shape), &at)) return true;
    char where[256], name[32];
    const char *what = y[at] != y[at] ? "NaN" : y[at] > 0 ? "+Inf" : "-Inf";
    return zn_cpu_fail(c->cpu, "node '%s' (%s, %s) produced %s at element %zu", n->name,
                       zn_node_where(n, where, sizeof where), op_name(n->op, name, sizeof name),
                       what, at);
}

static bool cpu_compute(zn_backend *be, const zn_graph *g, const zn_plan *p, int first, int last)
{
    zn_cpu *cpu = cpu_of(be);
    if (first < 0 || last >= g->n_nodes || first > last)
        return zn_cpu_fail(cpu, "cpu backend: compute of nodes %d..%d of a graph of %d", first,
                           last, g->n_nodes);
    if (!check_plan(cpu, g, p) || !check_nodes(cpu, g, p, first, last) ||
        !grow_args(cpu, g, first, last))
        return false;
    for (int id = first; id <= last; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op == ZN_OP_INPUT || n->op == ZN_OP_PARAM) continue;
        zn_cpu_runner run = zn_cpu_forward_runners[n->op] ? zn_cpu_forward_runners[n->op]
                                                          : zn_cpu_backward_runners[n->op];
        int ran_to = id;
        zn_cpu_call c = {cpu, g, p, id, n, last, &ran_to};
        if (!run(&c)) return false;
        for (; cpu->opts.check_numerics && c.id <= ran_to; c.id++) { /* a pair's nodes too */
            c.node = &g->nodes[c.id];
            const bool work = c.node->op != ZN_OP_INPUT && c.node->op != ZN_OP_PARAM;
            if (work && !check_finite(&c)) return false;
        }
        id = ran_to;
    }
    return true;
}

static bool cpu_optimize(zn_backend *be, const zn_graph *g, const zn_plan *p,
                         const zn_optim_step *s)
{
    zn_cpu *cpu = cpu_of(be);
    bool adam = s->kind == ZN_STEP_ADAM;
    if (!check_plan(cpu, g, p)) return false;
    /* the optimizer state region: momentum / Adam's m at a parameter's offset, v one PARAMS later */
    float *moment[2] = {(float *)cpu->mem[ZN_REGION_OPTIM],
                        (float *)(cpu->mem[ZN_REGION_OPTIM] + cpu->bytes[ZN_REGION_PARAMS])};
    if (cpu->bytes[ZN_REGION_GRADS] && cpu->bytes[ZN_REGION_OPTIM] < 2 * cpu->bytes[ZN_REGION_PARAMS])
        return zn_cpu_fail(cpu, "cpu backend: the plan has no room for the optimizer state");
    const zn_sgd sgd = {s->lr, s->momentum, s->weight_decay, s->nesterov};
    const zn_adam adm = {s->lr, s->beta1, s->beta2, s->eps, s->weight_decay};
    zn_cpu_call c = {.cpu = cpu, .g = g, .p = p};
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        if (!(n->flags & ZN_NODE_GRAD)) continue;
        int param = n->grad_of;
        if (param < 0 || param >= g->n_nodes || p->region[param] != ZN_REGION_PARAMS) {
            char where[256];
            return zn_cpu_fail(cpu, "cpu backend: gradient '%s' (%s) has no parameter to update",
                               n->name, zn_node_where(n, where, sizeof where));
        }
        size_t count = (size_t)zn_shape_numel(&g->nodes[param].shape), slot = p->offset[param] / 4;
        float *w = zn_cpu_tensor(&c, param);
        const float *grad = zn_cpu_tensor(&c, id);
        if (adam)
            zn_adam_step(&adm, s->t, count, w, grad, moment[0] + slot,
                         moment[1] + slot);
        else
            zn_sgd_step(&sgd, count, w, grad, moment[0] + slot);
    }
    return true;
}

static bool cpu_synchronize(zn_backend *be)
{
    (void)be;
    return true;
}

static void cpu_set_training(zn_backend *be, bool training)
{
    cpu_of(be)->opts.training = training;
}

static void cpu_set_rng(zn_backend *be, uint64_t seed, uint64_t step)
{
    cpu_of(be)->rng_seed = seed;
    cpu_of(be)->rng_step = step;
}

static const char *cpu_last_error(zn_backend *be)
{
    return cpu_of(be)->err;
}

static size_t cpu_arena_high_water(zn_backend *be)
{
    zn_cpu *cpu = cpu_of(be);
    const uint32_t *arena = (const uint32_t *)cpu->mem[ZN_REGION_ARENA];
    size_t words = cpu->bytes[ZN_REGION_ARENA] / 4;
    while (words && arena[words - 1] == ARENA_SENTINEL) words--;
    return words * 4;
}

const zn_backend_ops zn_cpu_backend = {
    .name = "cpu",
    .available = cpu_available,
    .create = cpu_create,
    .destroy = cpu_destroy,
    .supports = cpu_supports,
    .workspace_bytes = cpu_workspace_bytes,
    .alloc = cpu_alloc,
    .set = cpu_set,
    .get = cpu_get,
    .prepare = cpu_prepare,
    .compute = cpu_compute,
    .optimize = cpu_optimize,
    .synchronize = cpu_synchronize,
    .set_training = cpu_set_training,
    .set_rng = cpu_set_rng,
    .last_error = cpu_last_error,
    .arena_high_water = cpu_arena_high_water,
};
