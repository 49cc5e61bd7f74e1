/* parity.c: see parity.h. Both backends run one session each under a separate plan (no tensor
 * overwrites another), nodes one at a time: after each node both outputs are read back and
 * compared, and in lockstep A's output is copied into B before B's next node reads it. The
 * parameters and batch-norm state are compared after the optimizer step. */
#include "runtime/parity.h"

#include "graph/inspect.h"
#include "graph/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "graph/passes.h"
#include "runtime/session.h"

enum { SHOWN_CLOSEST = 10 };

/* Ops whose result sums many terms in an order each backend chooses (fp32); every other op is
 * element-wise or moves data and is held to EXACT, a few roundings. A parameter's tolerance is
 * its optimizer step's. */
#define EXACT 1e-6
static const double op_tolerance[ZN_OP_COUNT] = {
    [ZN_OP_PARAM] = 1e-5,
    [ZN_OP_CONV2D] = 1e-4,
    [ZN_OP_BATCHNORM] = 1e-4,
    [ZN_OP_BATCHNORM_RELU] = 1e-4,
    [ZN_OP_BATCHNORM_RELU_BWD_COEF] = 1e-3,
    [ZN_OP_BATCHNORM_RELU_BWD_DATA] = 1e-3,
    [ZN_OP_GLOBAL_AVGPOOL] = 1e-5,
    [ZN_OP_LINEAR] = 1e-4,
    [ZN_OP_XENT] = 1e-5,
    [ZN_OP_CONV2D_BWD_DATA] = 1e-4,
    [ZN_OP_CONV2D_BWD_FILTER] = 1e-3,
    [ZN_OP_BIAS_BWD] = 1e-3,
    [ZN_OP_BATCHNORM_BWD_DATA] = 1e-3,
    [ZN_OP_BATCHNORM_BWD_GAMMA] = 1e-3,
    [ZN_OP_LINEAR_BWD_DATA] = 1e-4,
    [ZN_OP_LINEAR_BWD_WEIGHT] = 1e-3,
    [ZN_OP_XENT_BWD] = 1e-5,
    [ZN_OP_ZTOWER] = 1e-4,
    [ZN_OP_ZTOWER_COEF] = 1e-3,
    [ZN_OP_ZTOWER_BWD] = 1e-3,
    [ZN_OP_MUL_SUM] = 1e-5, /* double sums over H x W, as GLOBAL_AVGPOOL's */
};

/* The floor of a convolution's or matrix product's tolerance by precision: a few units of the
 * 16-bit rounding of their inputs (10 mantissa bits in fp16, 7 in bf16). */
static const double product_floor[] = {[ZN_PRECISION_FP32] = 0, [ZN_PRECISION_FP16] = 1e-2,
                                       [ZN_PRECISION_BF16] = 5e-2};

static bool product(zn_op op)
{
    return op == ZN_OP_CONV2D || op == ZN_OP_CONV2D_BWD_DATA || op == ZN_OP_CONV2D_BWD_FILTER ||
           op == ZN_OP_LINEAR || op == ZN_OP_LINEAR_BWD_DATA || op == ZN_OP_LINEAR_BWD_WEIGHT ||
           op == ZN_OP_ZTOWER || op == ZN_OP_ZTOWER_COEF || op == ZN_OP_ZTOWER_BWD;
}

/* The z-tower's ops recompute their conv inside the node, so in 16 bits the pool's arg-max can
 * move where two values tie within the rounding, which the lockstep comparison (every other op
 * gets the first backend's inputs) never sees: three times the floor. Seen on an H200: 1.3e-2 on
 * z1's weight gradient, Zee at width 8, batch 16, fp16. */
static double floor_factor(zn_op op)
{
    return op == ZN_OP_ZTOWER || op == ZN_OP_ZTOWER_COEF || op == ZN_OP_ZTOWER_BWD ? 3 : 1;
}

double zn_parity_tolerance(const zn_graph *g, int id, zn_precision p)
{
    const zn_node *n = &g->nodes[id];
    zn_op op = (n->flags & ZN_NODE_STATE) && n->state_of >= 0 ? g->nodes[n->state_of].op : n->op;
    double t = op_tolerance[op] > 0 ? op_tolerance[op] : EXACT;
    return product(op) ? fmax(t, product_floor[p] * floor_factor(op)) : t;
}

zn_optim_step zn_parity_recipe_step(const zn_recipe *r, const zn_graph *g, int batch)
{
    float lr = r->lr.v[0];
    for (int k = 1; k < r->lr.n_knots; k++) lr = fmaxf(lr, r->lr.v[k]);
    bool summed = false; /* Page's convention: with a summed loss, weight decay is per example */
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == ZN_OP_XENT) summed = g->nodes[i].attr.reduction == ZN_REDUCE_SUM;
    return (zn_optim_step){
        .kind = r->optimizer.kind == ZN_OPTIM_ADAM ? ZN_STEP_ADAM : ZN_STEP_SGD,
        .lr = r->lr.per_example ? lr / (float)batch : lr,
        .momentum = r->optimizer.momentum,
        .nesterov = r->optimizer.nesterov,
        .weight_decay = r->optimizer.weight_decay * (summed ? (float)batch : 1.0f),
        .beta1 = r->optimizer.beta1, .beta2 = r->optimizer.beta2, .eps = r->optimizer.eps,
        .t = 1,
    };
}

/* A run in progress. */
typedef struct {
    const zn_parity_opts *o;
    zn_parity_report *r;
    zn_session s[2];
    float *host[2]; /* one tensor read back from each backend */
    double *amax;   /* per node: its largest finite |value| on A, the scale of what reads it */
    char *err;
    size_t errlen;
} check;

static bool session_fail(check *c, int k, const char *what)
{
    snprintf(c->err, c->errlen, "backend %s: %s", c->r->name[k], what);
    return false;
}

static bool backend_fail(check *c, int k)
{
    return session_fail(c, k, c->s[k].be->ops->last_error(c->s[k].be));
}

/* Node id's tensor between backend k and buf, either way (the plans of one graph agree, so an
 * id has one place on both). */
static bool transfer(check *c, int k, int id, float *buf, bool to_backend)
{
    zn_session *s = &c->s[k];
    const zn_region region = s->plan.region[id];
    const size_t offset = s->plan.offset[id], bytes = s->plan.bytes[id];
    bool ok = to_backend ? s->be->ops->set(s->be, region, offset, buf, bytes)
                         : s->be->ops->get(s->be, region, offset, buf, bytes);
    return ok || backend_fail(c, k);
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

/* max |a - b|: infinite where one side is not finite and the other differs (NaN against NaN
 * and equal infinities are no difference). */
static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))) continue;
        double d = fabs((double)a[i] - (double)b[i]);
        if (!isfinite(a[i]) || !isfinite(b[i]) || d > m) m = isfinite(d) ? fmax(d, m) : INFINITY;
    }
    return m;
}

/* Reads node id from both backends and records its difference relative to its scale: the
 * largest magnitude in its output (either backend) or in its float sources (A). */
static bool compare(check *c, int id)
{
    const zn_graph *g = &c->s[0].graph;
    const zn_node *n = &g->nodes[id];
    if (!transfer(c, 0, id, c->host[0], false) || !transfer(c, 1, id, c->host[1], false)) return false;
    const size_t count = c->s[0].plan.bytes[id] / sizeof(float);
    c->amax[id] = max_abs(c->host[0], count);
    double scale = fmax(c->amax[id], max_abs(c->host[1], count));
    for (int k = 0; k < n->n_src; k++)
        if (g->nodes[n->src[k]].shape.dtype == ZN_DTYPE_F32) scale = fmax(scale, c->amax[n->src[k]]);
    const double diff = max_diff(c->host[0], c->host[1], count);
    zn_parity_report *r = c->r;
    zn_parity_entry *e = &r->entry[r->n_entry++];
    e->node = id;
    e->diff = diff == 0 ? 0 : scale > 0 ? diff / scale : INFINITY;
    const zn_precision p0 = c->o->backend[0].precision, p1 = c->o->backend[1].precision;
    const zn_precision p = p0 > p1 ? p0 : p1; /* the looser: the enum runs fp32, fp16, bf16 */
    e->tolerance = c->o->tolerance > 0 ? c->o->tolerance : zn_parity_tolerance(g, id, p);
    if (e->diff > e->tolerance) {
        if (r->first_fail < 0) r->first_fail = r->n_entry - 1;
        r->n_fail++;
    }
    return true;
}

/* The same random batch on both: normal images, labels below their class count. */
static bool feed(check *c)
{
    zn_rng rng;
    zn_rng_init(&rng, zn_rng_derive(c->o->seed, 1));
    const zn_graph *g = &c->s[0].graph;
    for (int id = 0; id < c->s[0].n_forward; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op != ZN_OP_INPUT) continue;
        const size_t count = c->s[0].plan.bytes[id] / sizeof(float);
        for (size_t i = 0; i < count; i++) {
            if (n->flags & ZN_NODE_LABEL)
                ((int32_t *)c->host[0])[i] = (int32_t)zn_rng_below(&rng, (uint32_t)n->attr.out);
            else
                c->host[0][i] = zn_rng_normal(&rng);
        }
        if (!transfer(c, 0, id, c->host[0], true) || !transfer(c, 1, id, c->host[0], true)) return false;
    }
    return true;
}

/* Sessions on both backends, each skipping its options' passes and, with all_backend_passes, the
 * passes that fuse for one backend (graph/passes.h). */
static bool open_sessions(check *c, const zn_graph *g, const zn_backend_ops *const ops[2], bool all_backend_passes)
{
    for (int k = 0; k < 2; k++) {
        zn_backend_opts bo = c->o->backend[k];
        bo.training = c->o->training;
        const char **names = calloc((size_t)(bo.n_no_pass + zn_n_passes), sizeof *names);
        if (!names) return session_fail(c, k, "out of host memory");
        int n = bo.n_no_pass;
        if (n) memcpy(names, bo.no_pass, (size_t)n * sizeof *names);
        for (int p = 0; all_backend_passes && p < zn_n_passes; p++)
            if (zn_passes[p].backend) names[n++] = zn_passes[p].name;
        bo.no_pass = names;
        bo.n_no_pass = n;
        bool ok = zn_session_init_separate(&c->s[k], g, ops[k], &bo, c->o->batch, c->o->training);
        free(names);
        if (!ok) return session_fail(c, k, c->s[k].err);
    }
    return true;
}

static bool same_ops(const zn_graph *a, const zn_graph *b)
{
    if (a->n_nodes != b->n_nodes) return false;
    for (int id = 0; id < a->n_nodes; id++)
        if (a->nodes[id].op != b->nodes[id].op) return false;
    return true;
}

/* Sessions on both backends with one graph, the same weights and batch; the scale of every
 * leaf. Where a backend pass fused for one backend only, both run without the backend passes. */
static bool start(check *c, const zn_graph *g, const zn_backend_ops *const ops[2])
{
    size_t most = sizeof(float);
    if (!open_sessions(c, g, ops, false)) return false;
    if (!same_ops(&c->s[0].graph, &c->s[1].graph)) {
        for (int k = 0; k < 2; k++) zn_session_free(&c->s[k]);
        if (!open_sessions(c, g, ops, true)) return false;
    }
    for (int k = 0; k < 2; k++)
        if (!zn_session_init_params(&c->s[k], c->o->seed)) return session_fail(c, k, c->s[k].err);
    const zn_graph *ga = &c->s[0].graph;
    if (!same_ops(ga, &c->s[1].graph)) return session_fail(c, 1, "internal: its graph differs from A's");
    for (int id = 0; id < ga->n_nodes; id++)
        if (c->s[0].plan.bytes[id] > most) most = c->s[0].plan.bytes[id];
    c->host[0] = malloc(most);
    c->host[1] = malloc(most);
    c->amax = calloc((size_t)ga->n_nodes + 1, sizeof *c->amax);
    c->r->entry = calloc((size_t)ga->n_nodes + 1, sizeof *c->r->entry);
    if (!c->host[0] || !c->host[1] || !c->amax || !c->r->entry) return session_fail(c, 0, "out of host memory");
    if (!feed(c)) return false;
    for (int id = 0; id < c->s[0].n_forward; id++) {
        const zn_node *n = &ga->nodes[id];
        if ((n->op != ZN_OP_INPUT && n->op != ZN_OP_PARAM) || n->shape.dtype != ZN_DTYPE_F32) continue;
        if (!transfer(c, 0, id, c->host[0], false)) return false;
        c->amax[id] = max_abs(c->host[0], c->s[0].plan.bytes[id] / sizeof(float));
    }
    return true;
}

/* Every node on both, compared as it is computed; then the optimizer step and the parameters. */
static bool step(check *c)
{
    const zn_graph *g = &c->s[0].graph;
    const int last = c->o->training ? g->n_nodes - 1 : c->s[0].n_forward - 1;
    for (int k = 0; k < 2; k++)
        if (c->s[k].be->ops->set_training) c->s[k].be->ops->set_training(c->s[k].be, c->o->training);
    for (int id = 0; id <= last; id++) {
        if (g->nodes[id].op == ZN_OP_INPUT || g->nodes[id].op == ZN_OP_PARAM) continue;
        for (int k = 0; k < 2; k++) {
            zn_session *s = &c->s[k];
            if (!s->be->ops->compute(s->be, &s->graph, &s->plan, id, id)) return backend_fail(c, k);
        }
        if (!compare(c, id) || (!c->o->propagate && !transfer(c, 1, id, c->host[0], true))) return false;
    }
    if (!c->o->training) return true;
    for (int k = 0; k < 2; k++) {
        zn_session *s = &c->s[k];
        if (!s->be->ops->optimize(s->be, &s->graph, &s->plan, &c->o->step)) return backend_fail(c, k);
    }
    for (int id = 0; id < c->s[0].n_forward; id++)
        if (g->nodes[id].op == ZN_OP_PARAM && !compare(c, id)) return false;
    return true;
}

bool zn_parity_run(const zn_graph *g, const zn_backend_ops *a, const zn_backend_ops *b,
                   const zn_parity_opts *o, zn_parity_report *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->name[0] = a->name;
    r->name[1] = b->name;
    r->opts = *o;
    r->first_fail = -1;
    check c = {.o = o, .r = r, .err = err, .errlen = errlen};
    const zn_backend_ops *const ops[2] = {a, b};
    bool ok = start(&c, g, ops) && step(&c);
    if (ok) zn_graph_copy(&r->graph, &c.s[0].graph);
    for (int k = 0; k < 2; k++) {
        zn_session_free(&c.s[k]);
        free(c.host[k]);
    }
    free(c.amax);
    if (!ok) zn_parity_free(r);
    return ok;
}

void zn_parity_free(zn_parity_report *r)
{
    zn_graph_free(&r->graph);
    free(r->entry);
    memset(r, 0, sizeof *r);
}

/* ---- the report ------------------------------------------------------------------------- */

static const char *what(const zn_node *n)
{
    if (n->op != ZN_OP_PARAM) return zn_ops[n->op].name;
    return n->flags & ZN_NODE_STATE ? "state after the step" : "param after the step";
}

/* How far over (> 1) or under its tolerance an entry is. */
static double ratio(const zn_parity_entry *e)
{
    return e->diff / e->tolerance;
}

static int by_ratio_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? 1 : -(a > b);
}

void zn_parity_print(const zn_parity_report *r, bool verbose, FILE *f)
{
    const zn_parity_opts *o = &r->opts;
    fprintf(f, "%s (%s) vs %s (%s): %s at batch %d, seed %llu; %s\n", r->name[0],
            zn_precision_name(o->backend[0].precision), r->name[1], zn_precision_name(o->backend[1].precision),
            !o->training ? "one forward pass (inference)"
            : o->step.kind == ZN_STEP_ADAM ? "one training step (adam)" : "one training step (sgd)",
            o->batch, (unsigned long long)o->seed,
            o->propagate ? "each backend on its own values (differences accumulate)"
                         : "lockstep: each node runs on both from the first's values of its sources");
    /* shown: every entry (verbose), else those over tolerance and the SHOWN_CLOSEST nearest it */
    double *ratios = zn_malloc(sizeof *ratios * ((size_t)r->n_entry + 1));
    for (int i = 0; i < r->n_entry; i++) ratios[i] = ratio(&r->entry[i]);
    qsort(ratios, (size_t)r->n_entry, sizeof *ratios, by_ratio_desc);
    const double cut = r->n_entry > SHOWN_CLOSEST ? ratios[SHOWN_CLOSEST - 1] : 0;
    int best = 0;
    bool header = false;
    for (int i = 0; i < r->n_entry; i++) {
        const zn_parity_entry *e = &r->entry[i];
        const zn_node *n = &r->graph.nodes[e->node];
        char where[512];
        if (ratio(e) > ratio(&r->entry[best])) best = i;
        if (!verbose && !(ratio(e) > 1) && (e->diff == 0 || ratio(e) < cut)) continue;
        if (!header) fprintf(f, "  %-6s %9s %9s  %s\n", "", "rel diff", "tolerance", "node (op) at place");
        header = true;
        fprintf(f, "  %-6s %9.2e %9.0e  %s (%s) at %s\n", ratio(e) > 1 ? "FAIL" : "ok",
                e->diff, e->tolerance, n->name, what(n), zn_node_where(n, where, sizeof where));
    }
    free(ratios);
    fprintf(f, "%d tensors compared, %d over tolerance\n", r->n_entry, r->n_fail);
    char where[512];
    if (r->first_fail >= 0) {
        const zn_parity_entry *e = &r->entry[r->first_fail];
        const zn_node *n = &r->graph.nodes[e->node];
        fprintf(f, "first difference over tolerance: %s (%s) at %s: %.1e > %.0e\n", n->name, what(n),
                zn_node_where(n, where, sizeof where), e->diff, e->tolerance);
    } else if (r->n_entry && r->entry[best].diff > 0) {
        const zn_parity_entry *e = &r->entry[best];
        const zn_node *n = &r->graph.nodes[e->node];
        fprintf(f, "every tensor within tolerance; the closest: %s (%s) at %s: %.1e <= %.0e\n", n->name,
                what(n), zn_node_where(n, where, sizeof where), e->diff, e->tolerance);
    } else {
        fprintf(f, "every tensor within tolerance: the backends agree exactly\n");
    }
}
