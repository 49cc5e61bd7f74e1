/* compile.c: see compile.h. Each stage is a function that fills its part of the result or says
 * why it cannot; zn_compile runs them in order and stops where the options say. The backend is
 * created before the plan because the plan reserves each kernel's scratch (workspace_bytes). */
#include "runtime/compile.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/inspect.h"
#include "graph/passes.h"
#include "graph/util.h"

const char *const zn_compile_stage_names[] = {"load", "passes", "plan", "backend"};

/* Bytes of memory available to this process (MemAvailable), 0 if unknown: what a backend without
 * memory_available may use. */
static size_t available_memory(void)
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

static bool fail(zn_compiled *c, zn_compile_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(zn_compiled *c, zn_compile_stage stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->failed = stage;
    return false;
}

static bool fail_backend(zn_compiled *c)
{
    return fail(c, ZN_COMPILE_BACKEND, "%s", c->be->ops->last_error(c->be));
}

static bool load(const zn_compile_opts *o, zn_compiled *c)
{
    zn_load_opts lo = {.path = o->path, .settings = o->settings, .n_settings = o->n_settings};
    if (zn_program_load(&lo, &c->diag, &c->graph, &c->recipe)) return true;
    /* the errors shown, as counted on the screen; repeats and those past the limit said apart */
    int n = zn_diag_shown(&c->diag), more = c->diag.n_errors - n;
    char rest[96] = "";
    if (more && c->diag.stopped)
        snprintf(rest, sizeof rest, " (and %d more not shown: past the first %d, or repeats)", more, c->diag.max_errors);
    else if (more) snprintf(rest, sizeof rest, " (and %d repeat%s of %s not shown)", more, more == 1 ? "" : "s",
                            n == 1 ? "it" : "them");
    return fail(c, ZN_COMPILE_LOAD, "%d error%s in %s%s", n, n == 1 ? "" : "s", o->path, rest);
}

/* The graph stage a mode's graph ends with. */
static zn_pass_stage last_stage(zn_compile_mode mode)
{
    return mode == ZN_COMPILE_TRAINING ? ZN_STAGE_TRAINING
           : mode == ZN_COMPILE_INFERENCE ? ZN_STAGE_INFERENCE : ZN_STAGE_FORWARD;
}

/* stop_after names a pass that this mode's graph goes through; *stop gets it (NULL: none). */
static bool find_stop(const zn_compile_opts *o, zn_compiled *c, const zn_pass **stop)
{
    *stop = o->stop_after ? zn_pass_find(o->stop_after) : NULL;
    if (o->stop_after && !*stop) return fail(c, ZN_COMPILE_PASSES, "no pass is called '%s'", o->stop_after);
    zn_pass_stage want = last_stage(o->mode);
    if (*stop && (*stop)->stage != ZN_STAGE_FORWARD && (*stop)->stage != want)
        return fail(c, ZN_COMPILE_PASSES, "pass %s runs on the %s graph, not on the %s graph", (*stop)->name,
                    zn_pass_stage_names[(*stop)->stage], zn_pass_stage_names[want]);
    return true;
}

/* The memory budget: the caller's, else the file's recipe's (0: none). */
static size_t budget_of(const zn_compile_opts *o, const zn_compiled *c)
{
    return o->memory_budget ? o->memory_budget : o->path ? c->recipe.memory_budget : 0;
}

/* Whether the memory budget chooses the recompute pass's work (a training plan is asked for). */
static bool budgeted(const zn_compile_opts *o, const zn_compiled *c)
{
    return budget_of(o, c) && o->mode == ZN_COMPILE_TRAINING && !o->stop_after && o->batch != 0;
}

static bool skipped(const zn_compile_opts *o, const char *pass)
{
    for (int k = 0; k < o->n_no_pass; k++)
        if (strcmp(o->no_pass[k], pass) == 0) return true;
    return false;
}

/* The backend (created before the mode's passes: its fusions depend on what it runs). */
static bool backend_create(const zn_compile_opts *o, zn_compiled *c)
{
    char err[1024];
    c->be = o->backend->create(o->backend_opts, err, sizeof err);
    return c->be || fail(c, ZN_COMPILE_BACKEND, "%s", err);
}

/* Whether the backend runs every node of the graph. */
static bool backend_check(zn_compiled *c)
{
    for (int i = 0; i < c->graph.n_nodes; i++)
        if (!c->be->ops->supports(c->be, &c->graph, i)) return fail_backend(c);
    return true;
}

static bool backend_accepts(void *ctx, const zn_graph *g, int id)
{
    zn_backend *be = ctx;
    return be->ops->supports(be, g, id);
}

/* Whether the training graph is wanted as the start of the memory budget's ladders (a budget, or
 * zn_compile_curve stopping where they start) and a memory lever that is not skipped may change
 * it: then the budget climbs a second ladder on the graph with the levers run (c->levered). */
static bool wants_levers(const zn_compile_opts *o, const zn_compiled *c)
{
    const bool ladder = budgeted(o, c) || (o->mode == ZN_COMPILE_TRAINING && o->batch != 0 && o->stop_after &&
                                           strcmp(o->stop_after, zn_budget_start_pass()) == 0);
    for (int p = 0; ladder && p < zn_n_passes; p++)
        if (zn_passes[p].memory && !skipped(o, zn_passes[p].name)) return true;
    return false;
}

/* The mode's stage on c->graph and, where wants_levers, on a copy with the memory levers into
 * c->levered (kept only when they changed it; its passes are not reported twice). */
static bool finish(const zn_compile_opts *o, zn_compiled *c, const zn_pass_trace *trace)
{
    char err[512];
    const bool levers = wants_levers(o, c);
    if (levers) zn_graph_copy(&c->levered, &c->graph);
    if (!zn_passes_finish(&c->graph, o->mode == ZN_COMPILE_TRAINING, o->no_pass, o->n_no_pass, trace, err,
                          sizeof err))
        return fail(c, ZN_COMPILE_PASSES, "%s", err);
    if (!levers) return true;
    zn_pass_trace with = *trace;
    with.memory_levers = true;
    size_t report_len = 0;
    with.report = trace->report ? open_memstream(&c->levered_report, &report_len) : NULL;
    const bool ok = zn_passes_finish(&c->levered, true, o->no_pass, o->n_no_pass, &with, err, sizeof err);
    if (with.report) fclose(with.report);
    if (!ok) return fail(c, ZN_COMPILE_PASSES, "%s (with the memory levers)", err);
    if (c->levered.n_nodes == c->graph.n_nodes) zn_graph_free(&c->levered); /* a fusion drops nodes */
    return true;
}

/* The forward nodes come first (a training graph's may have been fused, and the memory budget
 * may take the graph with the z-towers fused): backward ones and recomputed copies follow. */
static void count_forward(zn_compiled *c)
{
    c->n_forward = 0;
    while (c->n_forward < c->graph.n_nodes && !(c->graph.nodes[c->n_forward].flags & ZN_NODE_BACKWARD))
        c->n_forward++;
}

/* The forward passes (on a loaded file only: a graph given is already optimized), then, with the
 * backend when one is wanted, those of the mode's stage, up to the pass to stop after (a memory
 * lever runs when it is that pass, so that its graph can be seen). */
static bool passes(const zn_compile_opts *o, zn_compiled *c, const zn_pass *stop, bool with_backend)
{
    zn_pass_trace trace = {.stop_after = budgeted(o, c) ? zn_budget_start_pass() : o->stop_after,
                           .report = o->report,
                           .memory_levers = stop && stop->memory};
    char err[512];
    if (o->path && !zn_passes_run(&c->graph, o->no_pass, o->n_no_pass, &trace, err, sizeof err))
        return fail(c, ZN_COMPILE_PASSES, "%s", err);
    c->fingerprint = c->graph.model_hash ? c->graph.model_hash : zn_graph_hash(&c->graph);
    c->fingerprint_v1 = c->graph.model_hash ? c->graph.model_hash_v1 : zn_graph_hash_v1(&c->graph);
    c->n_forward = c->graph.n_nodes;
    if (o->mode == ZN_COMPILE_FORWARD || (stop && stop->stage == ZN_STAGE_FORWARD)) return true;
    if (with_backend) {
        if (!backend_create(o, c)) return false;
        trace.accepts = backend_accepts;
        trace.accepts_ctx = c->be;
    }
    if (!finish(o, c, &trace)) return false;
    count_forward(c);
    return true;
}

static size_t ws_bytes(void *ctx, const zn_graph *g, int id, int batch)
{
    zn_backend *be = ctx;
    return be->ops->workspace_bytes(be, g, id, batch);
}

/* Multiply-adds per example of every node of a training graph. */
static int64_t step_macs(const zn_graph *g)
{
    return zn_graph_step_macs(g, g->n_nodes);
}

/* The ladder of graph/budget.h over g, c's training graph before the recompute pass or
 * c->levered, whose multiply-adds beyond c's every rung counts. */
static void budget_init(const zn_compile_opts *o, const zn_compiled *c, const zn_graph *g, int batch, zn_budget *b)
{
    zn_budget_opts bo = {.batch = batch, .ws = c->be ? ws_bytes : NULL, .ws_ctx = c->be,
                         .recompute = !skipped(o, "recompute"), .sink = !skipped(o, "sink"),
                         .levers = g == &c->levered,
                         .base_extra_macs = g == &c->levered ? step_macs(g) - step_macs(&c->graph) : 0};
    zn_budget_init(b, g, &bo);
}

/* One ladder's fit (zn_budget_fit) into g, p, pt; *top gets the ladder's top rung. */
static bool fit_ladder(const zn_compile_opts *o, const zn_compiled *c, const zn_graph *from, int batch, zn_graph *g,
                       zn_plan *p, zn_budget_point *pt, int *top, bool *no_fit, char *err, size_t errlen)
{
    zn_budget b;
    budget_init(o, c, from, batch, &b);
    bool ok = zn_budget_fit(&b, budget_of(o, c), g, p, pt, no_fit, err, errlen);
    *top = zn_budget_top(&b);
    zn_budget_free(&b);
    return ok;
}

/* The recompute and sink passes as the memory budget chooses, and their plan (graph/budget.h): the
 * better fit of the ladder on c's graph and, when the memory levers change it, of the one on
 * c->levered; when neither fits, the message of the one that came closer. */
static bool plan_budget(const zn_compile_opts *o, zn_compiled *c, int batch, char *err, size_t errlen)
{
    zn_graph g[2] = {0};
    zn_plan p[2] = {0};
    zn_budget_point pt[2] = {{.rung = -2}, {.rung = -2}};
    int top[2] = {0}, n = c->levered.n_nodes ? 2 : 1, best = 0;
    bool ok[2] = {false}, no_fit[2] = {false};
    char why[2][768];
    for (int k = 0; k < n && !(k && ok[0] && !pt[0].extra_macs); k++) { /* nothing recomputed: no better */
        ok[k] = fit_ladder(o, c, k ? &c->levered : &c->graph, batch, &g[k], &p[k], &pt[k], &top[k], &no_fit[k],
                           why[k], sizeof why[k]);
        if (!ok[k] && !no_fit[k]) { /* a pass or the plan failed */
            if (k && ok[0]) zn_plan_free(&p[0]), zn_graph_free(&g[0]);
            return zn_fail(err, errlen, "%s", why[k]);
        }
        if (k && zn_budget_better(&pt[1], &pt[0], budget_of(o, c))) best = 1;
    }
    for (int k = 0; k < n; k++)
        if (k != best && ok[k]) zn_plan_free(&p[k]), zn_graph_free(&g[k]);
    zn_graph_free(&c->levered);
    c->budget = pt[best];
    c->over_budget = !ok[best];
    if (!ok[best]) /* the figures are the fused graph's, whose floor can lie above the other's */
        return zn_fail(err, errlen, "%s%s", why[best],
                       best ? " (figures with the z-towers fused, the lower ladder)" : "");
    zn_graph_free(&c->graph);
    c->graph = g[best];
    c->plan = p[best];
    count_forward(c); /* the fused towers' graph has fewer forward nodes */
    if (o->report) {
        char a[32], t[32], what[128];
        if (best && c->levered_report) /* the passes above were the other graph's */
            fprintf(o->report, "  the budget fits better with the memory levers; their graph's passes:\n%s",
                    c->levered_report);
        fprintf(o->report, "  %-12s %s: rung %d of %d, recomputing %s; plan %s (training graph)\n", "budget",
                zn_format_bytes(budget_of(o, c), a, sizeof a), c->budget.rung, top[best],
                zn_budget_describe(&c->budget, what, sizeof what), zn_format_bytes(c->budget.total, t, sizeof t));
    }
    return true;
}

static bool plan(const zn_compile_opts *o, zn_compiled *c)
{
    assert(o->batch > 0 || (o->batch == ZN_COMPILE_RECIPE_BATCH && o->path));
    int batch = o->batch > 0 ? o->batch : c->recipe.batch;
    char err[768];
    if (budgeted(o, c) ? !plan_budget(o, c, batch, err, sizeof err)
                    : !zn_plan_make(&c->plan, &c->graph, batch, c->be ? ws_bytes : NULL, c->be, err, sizeof err))
        return fail(c, ZN_COMPILE_PLAN, "%s", err);
    if (o->separate) zn_plan_separate(&c->plan);
    return true;
}

/* The plan on the backend: refused, before anything is allocated, when larger than the memory
 * available to it. */
static bool backend_place(const zn_compile_opts *o, zn_compiled *c)
{
    size_t need = zn_plan_total(&c->plan);
    size_t avail = c->be->ops->memory_available ? c->be->ops->memory_available(c->be) : available_memory();
    if (avail && need > avail) {
        char a[32], b[32];
        return fail(c, ZN_COMPILE_BACKEND,
                    "batch %d needs %s by the memory plan (%s step), but only %s is available; "
                    "use a smaller batch",
                    c->plan.batch, zn_format_bytes(need, a, sizeof a),
                    o->mode == ZN_COMPILE_TRAINING ? "training" : "inference", zn_format_bytes(avail, b, sizeof b));
    }
    if (!c->be->ops->alloc(c->be, &c->plan) || !c->be->ops->prepare(c->be, &c->graph, &c->plan))
        return fail_backend(c);
    return true;
}

static bool run(const zn_compile_opts *o, zn_compiled *c)
{
    const zn_pass *stop;
    if (!find_stop(o, c, &stop)) return false;
    if (o->path && !load(o, c)) return false;
    if (o->from) zn_graph_copy(&c->graph, o->from);
    const bool graph_only = stop || o->batch == 0; /* a graph is all that was asked for */
    assert(graph_only || !o->backend || o->backend_opts);
    const bool with_backend = !graph_only && o->backend;
    if (!passes(o, c, stop, with_backend)) return false;
    if (graph_only) return true;
    if (with_backend && !c->be && !backend_create(o, c)) return false; /* a forward graph's */
    return (!with_backend || backend_check(c)) && plan(o, c) &&
           (!with_backend || o->plan_only || backend_place(o, c));
}

bool zn_compile(const zn_compile_opts *o, zn_compiled *c)
{
    assert(!o->path != !o->from && "start from a file or from a graph");
    memset(c, 0, sizeof *c);
    zn_diag_init(&c->diag, o->diag_out ? o->diag_out : stderr);
    if (run(o, c)) return true;
    if (o->path && c->failed != ZN_COMPILE_LOAD) { /* name the file, as the load's count does */
        char why[sizeof c->err];
        memcpy(why, c->err, sizeof why);
        snprintf(c->err, sizeof c->err, "%.512s: %.500s", o->path, why);
    }
    return false;
}

void zn_compiled_free(zn_compiled *c)
{
    if (c->be) c->be->ops->destroy(c->be);
    zn_plan_free(&c->plan);
    zn_graph_free(&c->graph);
    zn_graph_free(&c->levered);
    free(c->levered_report);
    zn_diag_free(&c->diag);
    memset(c, 0, sizeof *c);
}

int zn_compile_curve(const zn_compile_opts *o, zn_compiled *c, zn_budget_point *pts, int max)
{
    assert(o->mode == ZN_COMPILE_TRAINING && !o->stop_after && o->batch > 0);
    zn_compile_opts upto = *o;
    upto.stop_after = zn_budget_start_pass();
    if (!zn_compile(&upto, c) || (o->backend && !backend_create(o, c))) return -1;
    int n = 0;
    for (int k = 0; k < (c->levered.n_nodes ? 2 : 1); k++) { /* c's ladder, then the levers' */
        zn_budget b;
        budget_init(o, c, k ? &c->levered : &c->graph, o->batch, &b);
        for (int r = -1; r <= zn_budget_top(&b) && n < max; r++) {
            zn_graph g;
            zn_plan p;
            if (!zn_budget_make(&b, r, &g, &p, &pts[n], c->err, sizeof c->err)) {
                zn_budget_free(&b);
                return -1;
            }
            n++;
            zn_plan_free(&p);
            zn_graph_free(&g);
        }
        zn_budget_free(&b);
    }
    return n;
}
