/* session.c: see session.h. Parameters and batch-norm state live in the backend's PARAMS
 * region at the plan's offsets; the host never keeps a second copy. */
#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/passes.h"
#include "graph/inspect.h"
#include "runtime/rng.h"

static size_t ws_bytes(void *ctx, const zn_graph *g, int id, int batch)
{
    zn_backend *be = ctx;
    return be->ops->workspace_bytes(be, g, id, batch);
}

size_t zn_available_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static bool fail_backend(zn_session *s)
{
    snprintf(s->err, sizeof s->err, "%s", s->be->ops->last_error(s->be));
    return false;
}

void zn_session_find_io(const zn_graph *g, int n, int *image, int *label, int heads[64], int *n_heads)
{
    *image = *label = -1;
    *n_heads = 0;
    for (int i = 0; i < n; i++) {
        const zn_node *node = &g->nodes[i];
        if (node->op == ZN_OP_INPUT && (node->flags & ZN_NODE_LABEL)) *label = i;
        else if (node->op == ZN_OP_INPUT && *image < 0) *image = i;
        if (node->op == ZN_OP_XENT && *n_heads < 64) heads[(*n_heads)++] = i;
    }
}

static bool session_init(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                         const zn_backend_opts *opts, int batch, bool training, bool separate)
{
    memset(s, 0, sizeof *s);
    s->image = s->label = -1;
    s->batch = batch;
    s->training = training;
    zn_graph_copy(&s->graph, g);
    s->fingerprint = g->model_hash ? g->model_hash : zn_graph_hash(g);
    s->fingerprint_v1 = g->model_hash ? g->model_hash_v1 : zn_graph_hash_v1(g);
    if (!zn_passes_finish(&s->graph, training, opts->no_pass, opts->n_no_pass, NULL, s->err, sizeof s->err))
        return false;
    /* the forward nodes come first: a training graph's backward ones (and recomputed copies) follow */
    s->n_forward = training ? g->n_nodes : s->graph.n_nodes;
    zn_session_find_io(&s->graph, s->n_forward, &s->image, &s->label, s->heads, &s->n_heads);
    s->be = ops->create(opts, s->err, sizeof s->err);
    if (!s->be) return false;
    for (int i = 0; i < s->graph.n_nodes; i++)
        if (!s->be->ops->supports(s->be, &s->graph, i)) return fail_backend(s);
    if (!zn_plan_make(&s->plan, &s->graph, batch, ws_bytes, s->be, s->err, sizeof s->err)) return false;
    if (separate) zn_plan_separate(&s->plan);
    size_t need = zn_plan_total(&s->plan);
    size_t avail = s->be->ops->memory_available ? s->be->ops->memory_available(s->be) : zn_available_memory();
    if (avail && need > avail) {
        char a[32], b[32];
        snprintf(s->err, sizeof s->err,
                 "batch %d needs %s by the memory plan (%s step), but only %s is available; "
                 "use a smaller batch",
                 batch, zn_format_bytes(need, a, sizeof a), training ? "training" : "inference",
                 zn_format_bytes(avail, b, sizeof b));
        return false;
    }
    if (!s->be->ops->alloc(s->be, &s->plan) || !s->be->ops->prepare(s->be, &s->graph, &s->plan))
        return fail_backend(s);
    return true;
}

bool zn_session_init(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                     const zn_backend_opts *opts, int batch, bool training)
{
    return session_init(s, g, ops, opts, batch, training, false);
}

bool zn_session_init_separate(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                              const zn_backend_opts *opts, int batch, bool training)
{
    return session_init(s, g, ops, opts, batch, training, true);
}

void zn_session_free(zn_session *s)
{
    if (s->be) s->be->ops->destroy(s->be);
    zn_plan_free(&s->plan);
    zn_graph_free(&s->graph);
    memset(s, 0, sizeof *s);
}

bool zn_session_init_params(zn_session *s, uint64_t seed)
{
    zn_rng rng;
    zn_rng_init(&rng, seed);
    s->seed = seed;
    for (int i = 0; i < s->n_forward; i++) {
        const zn_node *n = &s->graph.nodes[i];
        if (!(n->flags & (ZN_NODE_PARAM | ZN_NODE_STATE))) continue;
        size_t count = s->plan.bytes[i] / sizeof(float);
        float *v = malloc(sizeof *v * (count ? count : 1));
        if (!v) {
            snprintf(s->err, sizeof s->err, "cannot allocate %zu bytes for the initial values of '%s': "
                     "out of memory", s->plan.bytes[i], n->name);
            return false;
        }
        float bound = n->attr.fan_in > 0 ? 1.0f / sqrtf((float)n->attr.fan_in) : 0.0f;
        for (size_t k = 0; k < count; k++) {
            switch (n->attr.init) {
            case ZN_INIT_FAN_IN: v[k] = (2.0f * zn_rng_uniform(&rng) - 1.0f) * bound; break;
            case ZN_INIT_ONES: v[k] = 1.0f; break;
            default: v[k] = 0.0f; break;
            }
        }
        bool ok = s->be->ops->set(s->be, ZN_REGION_PARAMS, s->plan.offset[i], v, s->plan.bytes[i]);
        free(v);
        if (!ok) return fail_backend(s);
    }
    return true;
}

bool zn_session_feed(zn_session *s, const float *images, const int32_t *labels)
{
    zn_backend *be = s->be;
    if (s->image >= 0 && images &&
        !be->ops->set(be, ZN_REGION_ARENA, s->plan.offset[s->image], images, s->plan.bytes[s->image]))
        return fail_backend(s);
    if (s->label >= 0 && labels &&
        !be->ops->set(be, ZN_REGION_ARENA, s->plan.offset[s->label], labels, s->plan.bytes[s->label]))
        return fail_backend(s);
    return true;
}

bool zn_session_forward(zn_session *s, bool training)
{
    if (s->be->ops->set_training) s->be->ops->set_training(s->be, training);
    if (!s->be->ops->compute(s->be, &s->graph, &s->plan, 0, s->n_forward - 1)) return fail_backend(s);
    return true;
}

bool zn_session_train_step(zn_session *s, const zn_optim_step *step)
{
    if (!s->training) {
        snprintf(s->err, sizeof s->err, "internal: a training step on an inference session");
        return false;
    }
    if (s->be->ops->set_training) s->be->ops->set_training(s->be, true);
    if (s->be->ops->set_rng) s->be->ops->set_rng(s->be, s->seed, (uint64_t)step->t);
    if (!s->be->ops->compute(s->be, &s->graph, &s->plan, 0, s->graph.n_nodes - 1) ||
        !s->be->ops->optimize(s->be, &s->graph, &s->plan, step))
        return fail_backend(s);
    return true;
}

bool zn_session_loss(zn_session *s, double *total)
{
    *total = 0;
    for (int h = 0; h < s->n_heads; h++) {
        int id = s->heads[h];
        float v;
        if (!s->be->ops->get(s->be, ZN_REGION_ARENA, s->plan.offset[id], &v, sizeof v)) return fail_backend(s);
        const zn_attrs *a = &s->graph.nodes[id].attr;
        *total += (double)a->weight * v * (a->reduction == ZN_REDUCE_MEAN ? s->batch : 1);
    }
    return true;
}

bool zn_session_logits(zn_session *s, int h, float *out)
{
    int logits = s->graph.nodes[s->heads[h]].src[0];
    if (!s->be->ops->get(s->be, ZN_REGION_ARENA, s->plan.offset[logits], out, s->plan.bytes[logits]))
        return fail_backend(s);
    return true;
}

size_t zn_session_param_floats(const zn_session *s)
{
    return s->plan.region_bytes[ZN_REGION_PARAMS] / sizeof(float);
}

bool zn_session_get_params(zn_session *s, float *out)
{
    if (!s->be->ops->get(s->be, ZN_REGION_PARAMS, 0, out, s->plan.region_bytes[ZN_REGION_PARAMS]))
        return fail_backend(s);
    return true;
}

bool zn_session_set_params(zn_session *s, const float *in)
{
    if (!s->be->ops->set(s->be, ZN_REGION_PARAMS, 0, in, s->plan.region_bytes[ZN_REGION_PARAMS]))
        return fail_backend(s);
    return true;
}

int64_t zn_session_macs(const zn_session *s, bool training)
{
    int64_t total = 0;
    int end = training ? s->graph.n_nodes : s->n_forward;
    for (int i = 0; i < end; i++) {
        const zn_node *n = &s->graph.nodes[i];
        if (zn_ops[n->op].macs) total += zn_ops[n->op].macs(&s->graph, i);
    }
    return total;
}
