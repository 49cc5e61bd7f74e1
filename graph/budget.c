/* budget.c: see budget.h. The rungs are planned for real (the recompute and sink passes, then
 * zn_plan_make with the backend's scratch), so a rung's figure is the memory a session allocates,
 * never an estimate; of the rungs that fit, the one with the fewest multiply-adds recomputed
 * along the ladder. */
#include "graph/budget.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
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
    return b->o.recompute ? 3 * (b->n_convs + 1) : -1;
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
    int family = rung < 1 ? 0 : (rung - 1) / (b->n_convs + 1), n_convs = rung < 1 ? 0 : (rung - 1) % (b->n_convs + 1);
    bool *convs = zn_calloc((size_t)g->n_nodes + 1, sizeof *convs);
    for (int k = 0; k < n_convs; k++) convs[b->convs[k]] = true;
    zn_recompute_choice choice = {convs, rung > 0, family > 0, family > 1};
    bool ok = (rung < 0 || zn_pass_recompute_convs(g, &choice, err, errlen)) &&
              (!b->o.sink || zn_pass_sink(g, err, errlen)) &&
              zn_plan_make(p, g, b->o.batch, b->o.ws, b->o.ws_ctx, err, errlen);
    free(convs);
    if (!ok) {
        zn_graph_free(g);
        return false;
    }
    *pt = (zn_budget_point){.rung = rung, .total = zn_plan_total(p), .extra_macs = b->o.base_extra_macs + extra_macs(g),
                            .convs = n_convs, .split = choice.split, .per_reader = choice.per_reader,
                            .levers = b->o.levers};
    return true;
}

/* The arena bytes node v needs live at once: its arena sources (each once) and its output, unless
 * it may write over a source of its size (op_list.h's in_place). */
static size_t node_need(const zn_graph *g, const zn_plan *p, int v)
{
    const zn_node *n = &g->nodes[v];
    size_t need = 0;
    bool over = false;
    for (int k = 0; k < n->n_src; k++) {
        int x = n->src[k];
        bool again = false;
        for (int j = 0; j < k; j++) again |= n->src[j] == x;
        if (p->region[x] != ZN_REGION_ARENA || again) continue;
        need += p->bytes[x];
        over |= zn_ops[n->op].in_place && p->bytes[x] == p->bytes[v] && g->nodes[x].op != ZN_OP_INPUT;
    }
    return need + (p->region[v] == ZN_REGION_ARENA && !over ? p->bytes[v] : 0);
}

size_t zn_budget_floor(const zn_graph *g, const zn_plan *p, int *node)
{
    *node = 0;
    for (int v = 1; v < g->n_nodes; v++)
        if (node_need(g, p, v) > node_need(g, p, *node)) *node = v;
    return zn_plan_total(p) - p->region_bytes[ZN_REGION_ARENA] + node_need(g, p, *node);
}

/* Appends to the message in err (truncated at errlen, as snprintf does). */
static void append(char *err, size_t errlen, const char *fmt, ...)
{
    size_t n = strlen(err);
    va_list ap;
    va_start(ap, fmt);
    if (n + 1 < errlen) vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
}

/* Why the smallest plan (g, p) misses budget: its parts, the largest single tensor among them,
 * which part dominates, and the floor no rung can go below (zn_budget_floor) with the tensors
 * that make it. */
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
    char s[10][32];
    snprintf(err, errlen,
             "memory budget %s cannot be met at batch %d: the smallest plan takes %s (arena %s, of which the "
             "largest single tensor is %s, '%s'; parameters and state %s; gradients %s; optimizer state %s; "
             "kernel scratch %s); %s dominate%s it",
             zn_format_bytes(budget, s[0], sizeof s[0]), p->batch, zn_format_bytes(zn_plan_total(p), s[1], sizeof s[1]),
             zn_format_bytes(part[0], s[2], sizeof s[2]), zn_format_bytes(big >= 0 ? p->bytes[big] : 0, s[3], sizeof s[3]),
             big >= 0 ? g->nodes[big].name : "none", zn_format_bytes(part[1], s[4], sizeof s[4]),
             zn_format_bytes(part[2], s[5], sizeof s[5]), zn_format_bytes(part[3], s[6], sizeof s[6]),
             zn_format_bytes(part[4], s[7], sizeof s[7]), names[top], top == 4 ? "s" : "");
    int v;
    size_t floor = zn_budget_floor(g, p, &v), fixed = zn_plan_total(p) - part[0];
    append(err, errlen, "; no choice of what to recompute goes below %s: %s '%s' needs %s of the arena live at once (",
           zn_format_bytes(floor, s[8], sizeof s[8]), zn_ops[g->nodes[v].op].name, g->nodes[v].name,
           zn_format_bytes(floor - fixed, s[9], sizeof s[9]));
    for (int k = 0; k < g->nodes[v].n_src; k++) {
        int x = g->nodes[v].src[k];
        if (p->region[x] == ZN_REGION_ARENA)
            append(err, errlen, "'%s' %s, ", g->nodes[x].name, zn_format_bytes(p->bytes[x], s[9], sizeof s[9]));
    }
    append(err, errlen, "its output %s) beside the other parts", zn_format_bytes(p->bytes[v], s[9], sizeof s[9]));
}

bool zn_budget_better(const zn_budget_point *pt, const zn_budget_point *best, size_t budget)
{
    bool fits = pt->total <= budget, best_fits = best->total <= budget;
    if (best->rung < -1 || fits != best_fits) return best->rung < -1 || fits;
    return fits ? pt->extra_macs < best->extra_macs : pt->total < best->total;
}

/* Whether best fits and recomputes nothing beyond what the ladder's graph itself does. */
static bool fits_with_nothing_more(const zn_budget *b, const zn_budget_point *best, size_t budget)
{
    return best->rung >= -1 && best->total <= budget && best->extra_macs == b->o.base_extra_macs;
}

bool zn_budget_fit(const zn_budget *b, size_t budget, zn_graph *g, zn_plan *p, zn_budget_point *pt,
                   bool *no_fit, char *err, size_t errlen)
{
    *no_fit = false;
    zn_budget_point best = {.rung = -2}, now;
    /* every rung, as neither memory nor multiply-adds fall steadily along the ladder (a recomputed
     * conv's copies can outlive what they free; a rung that splits a chain at a new conv's input
     * can recompute less than the one before); a fit that recomputes nothing more ends the search */
    for (int r = -1; r <= zn_budget_top(b) && !fits_with_nothing_more(b, &best, budget); r++) {
        zn_graph tg;
        zn_plan tp;
        if (!zn_budget_make(b, r, &tg, &tp, &now, err, errlen)) {
            if (best.rung >= -1) zn_plan_free(p), zn_graph_free(g);
            return false;
        }
        bool keep = zn_budget_better(&now, &best, budget);
        if (keep && best.rung >= -1) zn_plan_free(p), zn_graph_free(g);
        if (keep) *g = tg, *p = tp, best = now;
        else zn_plan_free(&tp), zn_graph_free(&tg);
    }
    *pt = best;
    if (best.total <= budget) return true;
    explain(g, p, budget, err, errlen); /* the smallest of every rung: what the message names */
    *no_fit = true;
    zn_plan_free(p);
    zn_graph_free(g);
    return false;
}

const char *zn_budget_describe(const zn_budget_point *pt, char *buf, size_t len)
{
    const char *s = pt->convs == 1 ? "" : "s";
    char rung[96];
    if (pt->rung < 0) snprintf(rung, sizeof rung, "nothing");
    else if (pt->rung == 0) snprintf(rung, sizeof rung, "the cheap segments after concats and stitches");
    else if (!pt->split) snprintf(rung, sizeof rung, "the cheap segments after every kept node and %d conv%s", pt->convs, s);
    else
        snprintf(rung, sizeof rung, "split segments: %d conv%s and pooling%s", pt->convs, s,
                 pt->per_reader ? ", each copy for its own reader" : "");
    /* the z-tower fusion is the one memory lever (graph/passes.h) */
    if (!pt->levers) snprintf(buf, len, "%s", rung);
    else if (pt->rung < 0) snprintf(buf, len, "the fused z-towers' convs");
    else snprintf(buf, len, "the fused z-towers' convs and %s", rung);
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
