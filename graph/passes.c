/* passes.c: the pass table (autodiff in its place), the drivers that run it stage by stage
 * (skipping, stopping, reporting), and the helpers every pass shares: rebuilding a graph from a
 * subset of its nodes in a new order, fusing chains (zn_pass_fuse) and counting each node's
 * users. The passes themselves live in graph/pass_*.c. */
#include "graph/util.h"
#include "graph/passes.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "graph/autodiff.h"

const zn_pass zn_passes[] = {
    {"dce", "dead-node elimination: drops nodes that no head, metric or input depends on", ZN_STAGE_FORWARD,
     zn_pass_dce, false, false, false},
    {"stitch", "stitch fusion: resample -> transpose [1, 0, 2] -> concat on axis 1 becomes one stitch node",
     ZN_STAGE_FORWARD, zn_pass_stitch, false, false, false},
    {"no_dropout", "dropout is the identity in inference graphs: its readers read its input instead",
     ZN_STAGE_INFERENCE, zn_pass_no_dropout, false, false, false},
    {"fold_bn", "batch norm folded into the conv before it: conv(x, w') + b' (inference graphs)",
     ZN_STAGE_INFERENCE, zn_pass_fold_bn, false, false, false},
    {"ztower", "z-tower fusion: stitch -> conv -> batchnorm -> relu -> global max pool becomes one node run in batch "
     "slices (a memory lever: only where a memory budget needs it)",
     ZN_STAGE_TRAINING, zn_pass_ztower, false, true, true},
    {"fuse_bn_relu", "batchnorm -> relu becomes one node, forward and backward (where the backend runs it)",
     ZN_STAGE_TRAINING, zn_pass_fuse_bn_relu, false, true, false},
    {"autodiff", "appends the backward pass: the gradient of the weighted loss for every parameter (always runs)",
     ZN_STAGE_TRAINING, zn_autodiff, true, false, false},
    {"poolmask", "relu -> max pool: the relu's backward masks the pooled gradient, before the pool's backward",
     ZN_STAGE_TRAINING, zn_pass_poolmask, false, false, false},
    {"recompute", "recomputes cheap stitch/concat -> batchnorm/scale/element-wise(/conv) chains in the backward pass",
     ZN_STAGE_TRAINING, zn_pass_recompute, false, false, false},
    {"sink", "moves each backward node to just before its first reader where that lowers the memory live",
     ZN_STAGE_TRAINING, zn_pass_sink, false, false, false},
};
const int zn_n_passes = (int)(sizeof zn_passes / sizeof zn_passes[0]);
const char *const zn_pass_stage_names[] = {"forward", "inference", "training"};

const zn_pass *zn_pass_find(const char *name)
{
    for (int i = 0; i < zn_n_passes; i++)
        if (strcmp(zn_passes[i].name, name) == 0) return &zn_passes[i];
    return NULL;
}

void zn_pass_count_uses(const zn_graph *g, int *uses)
{
    memset(uses, 0, (size_t)g->n_nodes * sizeof *uses);
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_src; k++) uses[n->src[k]]++;
        if (n->op == ZN_OP_INPUT || (n->flags & ZN_NODE_LOSS)) uses[i]++;
    }
    for (int m = 0; m < g->n_metrics; m++)
        for (int k = 0; k < g->metrics[m].n_heads; k++) uses[g->metrics[m].heads[k]]++;
}

bool zn_pass_rebuild_order(zn_graph *g, const int *order, int n, char *err, size_t errlen)
{
    int *map = zn_calloc((size_t)g->n_nodes, sizeof *map);
    int max_src = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        map[i] = -1;
        if (g->nodes[i].n_src > max_src) max_src = g->nodes[i].n_src;
    }
    int *src = zn_calloc((size_t)max_src, sizeof *src);
    zn_graph out;
    zn_graph_init(&out, g->model_name);
    bool ok = true;
    for (int k = 0; ok && k < n; k++) {
        const zn_node *nd = &g->nodes[order[k]];
        assert(map[order[k]] < 0 && "a node listed twice");
        for (int s = 0; s < nd->n_src; s++) {
            src[s] = map[nd->src[s]];
            assert(src[s] >= 0 && "a node reads one that is dropped or comes later");
        }
        int id = zn_graph_add(&out, nd->op, src, nd->n_src, &nd->attr, nd->name, nd->block, nd->span);
        out.nodes[id].shape = nd->shape; /* INPUT and PARAM keep their creator's dims */
        out.nodes[id].flags = nd->flags;
        char msg[512];
        if (!zn_graph_infer(&out, id, msg, sizeof msg)) {
            snprintf(err, errlen, "%s (%s:%d): %s", nd->name, nd->span.file ? nd->span.file : "?", nd->span.line,
                     msg);
            ok = false;
        }
        map[order[k]] = id;
    }
    for (int i = 0; ok && i < g->n_nodes; i++) {
        const zn_node *nd = &g->nodes[i];
        if (map[i] < 0) continue;
        if (nd->state_of >= 0) {
            out.nodes[map[i]].state_of = map[nd->state_of];
            assert(out.nodes[map[i]].state_of >= 0 && "kept state whose updater was dropped");
        }
        if (nd->grad_of >= 0) {
            out.nodes[map[i]].grad_of = map[nd->grad_of];
            assert(out.nodes[map[i]].grad_of >= 0 && "kept gradient whose parameter was dropped");
        }
    }
    for (int m = 0; ok && m < g->n_metrics; m++) {
        const zn_metric *mt = &g->metrics[m];
        int *heads = zn_calloc((size_t)mt->n_heads, sizeof *heads);
        for (int k = 0; k < mt->n_heads; k++) {
            heads[k] = map[mt->heads[k]];
            assert(heads[k] >= 0 && "a metric's head was dropped");
        }
        zn_graph_add_metric(&out, mt->kind, heads, mt->n_heads, mt->name, mt->span);
        free(heads);
    }
    free(src);
    free(map);
    if (!ok) {
        zn_graph_free(&out);
        return false;
    }
    out.model_hash = g->model_hash;
    out.model_hash_v1 = g->model_hash_v1;
    zn_graph_free(g);
    *g = out;
    return true;
}

bool zn_pass_on_copy(zn_graph *g, zn_pass_fn fn, char *err, size_t errlen)
{
    zn_graph w;
    zn_graph_copy(&w, g);
    if (!fn(&w, err, errlen)) {
        zn_graph_free(&w);
        return false;
    }
    zn_graph_free(g);
    *g = w;
    return true;
}

bool zn_pass_rebuild(zn_graph *g, const bool *keep, char *err, size_t errlen)
{
    int *order = zn_calloc((size_t)g->n_nodes, sizeof *order), n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (keep[i]) order[n++] = i;
    bool ok = zn_pass_rebuild_order(g, order, n, err, errlen);
    free(order);
    return ok;
}

bool zn_pass_fuse(zn_graph *g, zn_pass_fuse_fn fuse, int extra, void *ctx, char *err,
                  size_t errlen)
{
    const int n = g->n_nodes;
    size_t total_src = 0;
    for (int i = 0; i < n; i++) total_src += (size_t)g->nodes[i].n_src + (size_t)extra;
    int *uses = zn_malloc((size_t)n * sizeof *uses);
    bool *keep = zn_malloc((size_t)n * sizeof *keep);
    int *src = zn_malloc(total_src * sizeof *src); /* the fused nodes' sources */
    zn_pass_count_uses(g, uses);
    for (int i = 0; i < n; i++) keep[i] = true;
    int used = 0;
    bool fused = false;
    for (int i = 0; i < n; i++)
        if (fuse(g, uses, i, keep, src + used, ctx)) {
            used += g->nodes[i].n_src;
            fused = true;
        }
    bool ok = !fused || zn_pass_rebuild(g, keep, err, errlen);
    free(src);
    free(keep);
    free(uses);
    return ok;
}

static bool is_disabled(const char *name, const char *const *disabled, int n_disabled)
{
    for (int i = 0; i < n_disabled; i++)
        if (strcmp(disabled[i], name) == 0) return true;
    return false;
}

bool zn_passes_check_disabled(const char *const *disabled, int n_disabled, char *err, size_t errlen)
{
    for (int i = 0; i < n_disabled; i++) {
        const zn_pass *p = zn_pass_find(disabled[i]);
        if (!p) return zn_fail(err, errlen, "no pass is called '%s'", disabled[i]);
        if (p->required) return zn_fail(err, errlen, "pass %s cannot be skipped: %s", p->name, p->help);
    }
    return true;
}

/* Whether trace's backend (if one is known) runs every node of g. */
static bool backend_accepts(const zn_graph *g, const zn_pass_trace *trace)
{
    for (int i = 0; trace && trace->accepts && i < g->n_nodes; i++)
        if (!trace->accepts(trace->accepts_ctx, g, i)) return false;
    return true;
}

/* Runs pass on g; a backend pass's result is dropped (*refused) when the backend refuses a node. */
static bool run_pass(zn_graph *g, const zn_pass *pass, const zn_pass_trace *trace, bool *refused, char *msg,
                     size_t len)
{
    *refused = false;
    if (!pass->backend) return pass->run(g, msg, len);
    zn_graph before;
    zn_graph_copy(&before, g);
    bool ok = pass->run(g, msg, len);
    if (ok && !backend_accepts(g, trace)) {
        *refused = true;
        zn_graph_free(g);
        *g = before;
    } else {
        zn_graph_free(&before);
    }
    return ok;
}

/* Runs the passes of one stage on g, in table order, up to trace's stop_after. */
static bool run_stage(zn_graph *g, zn_pass_stage stage, const char *const *disabled, int n_disabled,
                      const zn_pass_trace *trace, char *err, size_t errlen)
{
    for (int p = 0; p < zn_n_passes; p++) {
        const zn_pass *pass = &zn_passes[p];
        if (pass->stage != stage) continue;
        const bool lever_off = pass->memory && !(trace && trace->memory_levers);
        bool skip = lever_off || is_disabled(pass->name, disabled, n_disabled), refused = false;
        int before = g->n_nodes;
        char msg[512];
        if (!skip && !run_pass(g, pass, trace, &refused, msg, sizeof msg))
            return zn_fail(err, errlen, "pass %s: %s", pass->name, msg);
        if (trace && trace->report) {
            if (skip) fprintf(trace->report, "  %-12s off%s", pass->name, lever_off ? " (a memory lever: only where a memory budget needs it)" : "");
            else if (refused) fprintf(trace->report, "  %-12s off (the backend does not run what it makes)", pass->name);
            else fprintf(trace->report, "  %-12s %d -> %d nodes", pass->name, before, g->n_nodes);
            if (stage != ZN_STAGE_FORWARD) fprintf(trace->report, " (%s graph)", zn_pass_stage_names[stage]);
            fputc('\n', trace->report);
        }
        if (trace && trace->stop_after && strcmp(trace->stop_after, pass->name) == 0) break;
    }
    return true;
}

bool zn_passes_run(zn_graph *g, const char *const *disabled, int n_disabled, const zn_pass_trace *trace,
                   char *err, size_t errlen)
{
    if (!zn_passes_check_disabled(disabled, n_disabled, err, errlen)) return false;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].flags & ZN_NODE_BACKWARD)
            return zn_fail(err, errlen, "internal: passes rewrite forward graphs, and this one has backward nodes");
    if (!g->model_hash) {
        g->model_hash = zn_graph_hash(g);
        g->model_hash_v1 = zn_graph_hash_v1(g);
    }
    return run_stage(g, ZN_STAGE_FORWARD, disabled, n_disabled, trace, err, errlen);
}

bool zn_passes_finish(zn_graph *g, bool training, const char *const *disabled, int n_disabled,
                      const zn_pass_trace *trace, char *err, size_t errlen)
{
    if (!zn_passes_check_disabled(disabled, n_disabled, err, errlen)) return false;
    return run_stage(g, training ? ZN_STAGE_TRAINING : ZN_STAGE_INFERENCE, disabled, n_disabled, trace, err,
                     errlen);
}
