/* session.c: see session.h. Parameters and batch-norm state live in the backend's PARAMS
 * region at the plan's offsets; the host never keeps a second copy. */
#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "graph/inspect.h"

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

static bool fail_backend(zn_session *s)
{
    snprintf(s->err, sizeof s->err, "%s", s->be->ops->last_error(s->be));
    return false;
}

/* The rest of the pipeline from g (runtime/compile.h); the session takes over what it made. */
static bool session_init(zn_session *s, const zn_graph *g, const zn_backend_ops *ops,
                         const zn_backend_opts *opts, int batch, bool training, bool separate)
{
    memset(s, 0, sizeof *s);
    s->image = s->label = -1;
    s->batch = batch;
    s->training = training;
    zn_compile_opts o = {.from = g, .mode = training ? ZN_COMPILE_TRAINING : ZN_COMPILE_INFERENCE,
                         .no_pass = opts->no_pass, .n_no_pass = opts->n_no_pass, .batch = batch,
                         .backend = ops, .backend_opts = opts, .separate = separate,
                         .memory_budget = opts->memory_budget};
    zn_compiled c;
    bool ok = zn_compile(&o, &c);
    s->graph = c.graph;
    s->n_forward = c.n_forward;
    s->fingerprint = c.fingerprint;
    s->fingerprint_v1 = c.fingerprint_v1;
    s->plan = c.plan;
    s->be = c.be;
    snprintf(s->err, sizeof s->err, "%s", c.err);
    zn_diag_free(&c.diag); /* holds nothing: the graph's sources are g's */
    if (ok) zn_session_find_io(&s->graph, s->n_forward, &s->image, &s->label, s->heads, &s->n_heads);
    return ok;
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

bool zn_session_compute(zn_session *s, int first, int last, bool training)
{
    if (s->be->ops->set_training) s->be->ops->set_training(s->be, training);
    if (!s->be->ops->compute(s->be, &s->graph, &s->plan, first, last)) return fail_backend(s);
    return true;
}

bool zn_session_synchronize(zn_session *s)
{
    return s->be->ops->synchronize(s->be) || fail_backend(s);
}

bool zn_session_forward(zn_session *s, bool training)
{
    return zn_session_compute(s, 0, s->n_forward - 1, training);
}

bool zn_session_train_step(zn_session *s, const zn_optim_step *step)
{
    if (!s->training) {
        snprintf(s->err, sizeof s->err, "internal: a training step on an inference session");
        return false;
    }
    if (s->be->ops->set_rng) s->be->ops->set_rng(s->be, s->seed, (uint64_t)step->t);
    const zn_grad_hook *h = s->grad_hook;
    int first = 0;
    for (int k = 0; h && k < h->n_points; k++) {
        if (!zn_session_compute(s, first, h->points[k], true) || !h->ready(h->ctx, k)) return false;
        first = h->points[k] + 1;
    }
    if (first < s->graph.n_nodes && !zn_session_compute(s, first, s->graph.n_nodes - 1, true)) return false;
    if (h && !h->finish(h->ctx)) return false;
    if (!s->be->ops->optimize(s->be, &s->graph, &s->plan, step)) return fail_backend(s);
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
    return zn_graph_step_macs(&s->graph, training ? s->graph.n_nodes : s->n_forward);
}

bool zn_session_restore(zn_session *s, const char *path, bool optim, zn_ckpt_meta *m, char *err, size_t len)
{
    float *p, *q;
    if (!zn_ckpt_load(path, m, &p, &q, err, len)) return false;
    bool ok = false;
    size_t np = zn_session_param_floats(s), no = s->plan.region_bytes[ZN_REGION_OPTIM] / sizeof(float);
    uint64_t fingerprint = m->version == 1 ? s->fingerprint_v1 : s->fingerprint;
    if (!fingerprint || m->graph_hash != fingerprint || m->n_params != np)
        snprintf(err, len, "%s was saved from another model (or other --set values): its graph fingerprint "
                           "or parameter count (%llu, here %zu) differs", path, (unsigned long long)m->n_params, np);
    else if (optim && m->n_optim != no)
        snprintf(err, len, "%s holds optimizer state of another size (%llu floats, here %zu)", path,
                 (unsigned long long)m->n_optim, no);
    else if (!zn_session_set_params(s, p) ||
             (optim && !s->be->ops->set(s->be, ZN_REGION_OPTIM, 0, q, no * sizeof *q)))
        snprintf(err, len, "%s", s->err[0] ? s->err : s->be->ops->last_error(s->be));
    else
        ok = true;
    free(p);
    free(q);
    return ok;
}
