/* budget.c: see budget.h. The rungs are planned for real (the recompute and sink passes, then
 * zn_plan_make with the backend's scratch), so a rung's figure is the memory a session allocates,
 * never an estimate; the first rung that fits is taken, so the fewest multiply-adds recomputed
 * along the ladder. */
#include "graph/budget.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/inspect.h"
#include "graph/passes.h"
#include "graph/util.h"

/* Multiply-adds per value a conv writes (per example): the price of the memory its recomputation
 * frees. */
static double macs_per_value(const zn_graph *g, int id)
{
    int64_t numel = zn_shape_numel(&g->nodes[id].shape);
    return (double)zn_ops[g->nodes[id].op].macs(g, id) / (double)(numel > 0 ? numel : 1);
}

static const zn_graph *sort_graph; /* qsort has no context argument in C11 */

/* Cheapest per value first; ties in node order (deterministic). */
static int by_price(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    double px = macs_per_value(sort_graph, x), py = macs_per_value(sort_graph, y);
    return px < py ? -1 : px > py ? 1 : x - y;
}

const char *zn_budget_start_pass(void)
{
    int k = (int)(zn_pass_find("recompute") - zn_passes);
    assert(k > 0);
    return zn_passes[k - 1].name;
}

void zn_budget_init(zn_budget *b, const zn_graph *g, const zn_budget_opts *o)
{
    memset(b, 0, sizeof *b);
    zn_graph_copy(&b->base, g);
    b->o = *o;
    int n = o->recompute ? zn_recompute_candidates(g, NULL) : 0;
    b->convs = zn_calloc((size_t)n + 1, sizeof *b->convs);
    b->n_convs = o->recompute ? zn_recompute_candidates(g, b->convs) : 0;
    sort_graph = g;
    qsort(b->convs, (size_t)b->n_convs, sizeof *b->convs, by_price);
}

void zn_budget_free(zn_budget *b)
{
    zn_graph_free(&b->base);
    free(b->convs);
    memset(b, 0, sizeof *b);
}

int zn_budget_top(const zn_budget *b)
{
    return b->o.recompute ? b->n_convs + 1 : -1;
}

/* Multiply-adds per example of the forward ops in the backward pass: the recomputed copies. */
static int64_t extra_macs(const zn_graph *g)
{
    int64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].flags & ZN_NODE_BACKWARD) && !zn_op_is_backward(g->nodes[i].op) && zn_ops[g->nodes[i].op].macs)
            total += zn_ops[g->nodes[i].op].macs(g, i);
    return total;
}

bool zn_budget_make(const zn_budget *b, int rung, zn_graph *g, zn_plan *p, zn_budget_point *pt, char *err,
                    size_t errlen)
{
    assert(rung >= -1 && rung <= zn_budget_top(b));
    zn_graph_copy(g, &b->base);
    bool *convs = zn_calloc((size_t)g->n_nodes + 1, sizeof *convs);
    for (int k = 0; k < rung - 1; k++) convs[b->convs[k]] = true;
    bool ok = (rung < 0 || zn_pass_recompute_convs(g, convs, rung > 0, err, errlen)) &&
              (!b->o.sink || zn_pass_sink(g, err, errlen)) &&
              zn_plan_make(p, g, b->o.batch, b->o.ws, b->o.ws_ctx, err, errlen);
    free(convs);
    if (!ok) {
        zn_graph_free(g);
        return false;
    }
    *pt = (zn_budget_point){rung, zn_plan_total(p), extra_macs(g)};
    return true;
}

/* Why the smallest plan (g, p) misses budget: its parts, the largest single
 * tensor among them, and which part dominates. */
static void explain(const zn_graph *g, const zn_plan *p, size_t budget, char *err, size_t errlen)
{
    int big = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (p->region[i] == ZN_REGION_ARENA && (big < 0 || p->bytes[i] > p->bytes[big])) big = i;
    static const char *const names[] = {"the activations and gradients (arena)", "the parameters and state",
                                        "the parameter gradients", "the optimizer state", "the kernel scratch"};
    size_t part[5] = {p->region_bytes[ZN_REGION_ARENA], p->region_bytes[ZN_REGION_PARAMS],
                      p->region_bytes[ZN_REGION_GRADS], p->region_bytes[ZN_REGION_OPTIM], p->workspace_bytes};
    int top = 0;
    for (int k = 1; k < 5; k++)
        if (part[k] > part[top]) top = k;
    char s[8][32];
    snprintf(err, errlen,
             "memory budget %s cannot be met at batch %d: the smallest plan takes %s (arena %s, of which the "
             "largest single tensor is %s, '%s'; parameters and state %s; gradients %s; optimizer state %s; "
             "kernel scratch %s); %s dominate%s it",
             zn_format_bytes(budget, s[0], sizeof s[0]), p->batch, zn_format_bytes(zn_plan_total(p), s[1], sizeof s[1]),
             zn_format_bytes(part[0], s[2], sizeof s[2]), zn_format_bytes(big >= 0 ? p->bytes[big] : 0, s[3], sizeof s[3]),
             big >= 0 ? g->nodes[big].name : "none", zn_format_bytes(part[1], s[4], sizeof s[4]),
             zn_format_bytes(part[2], s[5], sizeof s[5]), zn_format_bytes(part[3], s[6], sizeof s[6]),
             zn_format_bytes(part[4], s[7], sizeof s[7]), names[top], top == 4 ? "s" : "");
}

/* Keeps the rung planned into (g, p) when it fits budget (the search stops there) or is the
 * smallest yet (best_* hold the kept one); frees it otherwise. */
static void keep_best(zn_graph *g, zn_plan *p, const zn_budget_point *pt, size_t budget, zn_graph *best_g,
                      zn_plan *best_p, zn_budget_point *best)
{
    if (best->rung >= -1 && pt->total > budget && pt->total >= best->total) {
        zn_plan_free(p);
        zn_graph_free(g);
        return;
    }
    if (best->rung >= -1) {
        zn_plan_free(best_p);
        zn_graph_free(best_g);
    }
    *best_g = *g, *best_p = *p, *best = *pt;
}

bool zn_budget_fit(const zn_budget *b, size_t budget, zn_graph *g, zn_plan *p, zn_budget_point *pt,
                   bool *no_fit, char *err, size_t errlen)
{
    *no_fit = false;
    zn_budget_point best = {.rung = -2}, now;
    /* rung by rung, cheapest first, to the first that fits: memory need not fall at every rung (a
     * recomputed conv's copies can outlive what they free), so no rung is skipped */
    for (int r = -1; r <= zn_budget_top(b) && !(best.rung >= -1 && best.total <= budget); r++) {
        zn_graph tg;
        zn_plan tp;
        if (!zn_budget_make(b, r, &tg, &tp, &now, err, errlen)) {
            if (best.rung >= -1) zn_plan_free(p), zn_graph_free(g);
            return false;
        }
        keep_best(&tg, &tp, &now, budget, g, p, &best);
    }
    *pt = best;
    if (best.total <= budget) return true;
    explain(g, p, budget, err, errlen); /* the smallest of every rung: what the message names */
    *no_fit = true;
    zn_plan_free(p);
    zn_graph_free(g);
    return false;
}

const char *zn_budget_describe(int rung, char *buf, size_t len)
{
    if (rung < 0) snprintf(buf, len, "nothing");
    else if (rung == 0) snprintf(buf, len, "the cheap segments after concats and stitches");
    else snprintf(buf, len, "the cheap segments after every kept node and %d conv%s", rung - 1, rung == 2 ? "" : "s");
    return buf;
}

bool zn_budget_parse(const char *s, size_t *out)
{
    static const char units[] = "KMGT";
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isdigit((unsigned char)s[0]) || !isfinite(v)) return false;
    double scale = 1;
    const char *u = strchr(units, toupper((unsigned char)*end));
    if (*end && u) {
        scale = pow(1024, (double)(u - units) + 1);
        end++;
        if (*end == 'i') end++;
    }
    if (*end == 'B' || *end == 'b') end++;
    double bytes = v * scale;
    if (*end || !(bytes >= 1) || bytes >= 0x1p63) return false;
    *out = (size_t)bytes;
    return true;
}
