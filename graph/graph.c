/* graph.c: storage of the graph IR (nodes, metrics, and the string pool that owns their names
 * and source arrays), the checks every node passes before and after its op's shape rule, and
 * the small shape helpers. The shape rules themselves live in ops.c. */
#include "graph/graph.h"

#include <assert.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

/* The most elements a tensor may hold per example: larger is a typo, and the bound keeps every
 * product of inferred extents far from int64 overflow. */
#define ZN_MAX_NUMEL ((int64_t)1 << 31)


/* An arena: a list of chunks freed together with the graph. */
typedef struct zn_strpool_chunk {
    struct zn_strpool_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} zn_strpool_chunk;

struct zn_strpool {
    zn_strpool_chunk *head; /* the chunk being filled; older ones follow */
};

enum { ZN_STRPOOL_CHUNK = 16384 };

static void *pool_alloc(struct zn_strpool *p, size_t bytes)
{
    const size_t align = alignof(max_align_t);
    bytes = (bytes + align - 1) / align * align;
    zn_strpool_chunk *c = p->head;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = bytes > ZN_STRPOOL_CHUNK ? bytes : ZN_STRPOOL_CHUNK;
        c = zn_malloc(sizeof *c + cap);
        c->next = p->head;
        c->used = 0;
        c->cap = cap;
        p->head = c;
    }
    void *mem = c->data + c->used;
    c->used += bytes;
    return mem;
}

static const char *pool_strdup(struct zn_strpool *p, const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    return memcpy(pool_alloc(p, n), s, n);
}

static int *pool_ints(struct zn_strpool *p, const int *v, int n)
{
    return n > 0 ? memcpy(pool_alloc(p, (size_t)n * sizeof *v), v, (size_t)n * sizeof *v) : NULL;
}

void zn_graph_init(zn_graph *g, const char *model_name)
{
    memset(g, 0, sizeof *g);
    g->strings = zn_malloc(sizeof *g->strings);
    g->strings->head = NULL;
    g->model_name = pool_strdup(g->strings, model_name);
}

void zn_graph_free(zn_graph *g)
{
    if (g->strings) {
        for (zn_strpool_chunk *c = g->strings->head, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        free(g->strings);
    }
    free(g->nodes);
    free(g->metrics);
    memset(g, 0, sizeof *g);
}

int zn_graph_add(zn_graph *g, zn_op op, const int *src, int n_src, const zn_attrs *attr,
                 const char *name, const char *block, zn_span span)
{
    assert(op >= 0 && op < ZN_OP_COUNT && n_src >= 0);
    for (int i = 0; i < n_src; i++)
        assert(src[i] >= 0 && src[i] < g->n_nodes); /* topological order */
    if (g->n_nodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 64;
        g->nodes = zn_realloc(g->nodes, (size_t)g->cap_nodes * sizeof *g->nodes);
    }
    int id = g->n_nodes++;
    g->nodes[id] = (zn_node){
        .op = op,
        .src = pool_ints(g->strings, src, n_src),
        .n_src = n_src,
        .attr = attr ? *attr : zn_attrs_default(),
        .name = pool_strdup(g->strings, name),
        .block = pool_strdup(g->strings, block),
        .span = span,
        .grad_of = -1,
        .state_of = -1,
    };
    return id;
}

int zn_graph_add_metric(zn_graph *g, zn_metric_kind kind, const int *heads, int n_heads,
                        const char *name, zn_span span)
{
    for (int i = 0; i < n_heads; i++)
        assert(heads[i] >= 0 && heads[i] < g->n_nodes);
    if (g->n_metrics == g->cap_metrics) {
        g->cap_metrics = g->cap_metrics ? 2 * g->cap_metrics : 4;
        g->metrics = zn_realloc(g->metrics, (size_t)g->cap_metrics * sizeof *g->metrics);
    }
    int id = g->n_metrics++;
    g->metrics[id] = (zn_metric){
        .kind = kind,
        .heads = pool_ints(g->strings, heads, n_heads),
        .n_heads = n_heads,
        .name = pool_strdup(g->strings, name),
        .span = span,
    };
    return id;
}

void zn_graph_copy(zn_graph *dst, const zn_graph *src)
{
    zn_graph_init(dst, src->model_name);
    for (int i = 0; i < src->n_nodes; i++) {
        const zn_node *n = &src->nodes[i];
        int id = zn_graph_add(dst, n->op, n->src, n->n_src, &n->attr, n->name, n->block, n->span);
        zn_node *d = &dst->nodes[id];
        d->shape = n->shape;
        d->flags = n->flags;
        d->grad_of = n->grad_of;
        d->state_of = n->state_of;
    }
    for (int i = 0; i < src->n_metrics; i++) {
        const zn_metric *m = &src->metrics[i];
        zn_graph_add_metric(dst, m->kind, m->heads, m->n_heads, m->name, m->span);
    }
    dst->model_hash = src->model_hash;
    dst->model_hash_v1 = src->model_hash_v1;
}

/* The arity message, e.g. "needs 2 to 3 sources (x, w[, b]), got 1". */
static bool check_arity(const zn_node *n, char *err, size_t errlen)
{
    const zn_op_info *info = &zn_ops[n->op];
    if (n->n_src >= info->min_src && (info->max_src < 0 || n->n_src <= info->max_src)) return true;
    char count[48];
    if (info->max_src < 0)
        snprintf(count, sizeof count, "at least %d", info->min_src);
    else if (info->max_src == info->min_src)
        snprintf(count, sizeof count, "%d", info->min_src);
    else
        snprintf(count, sizeof count, "%d to %d", info->min_src, info->max_src);
    bool one = info->max_src == 1 || (info->max_src < 0 && info->min_src == 1);
    snprintf(err, errlen, "needs %s source%s%s%s%s, got %d", count, one ? "" : "s",
             *info->srcs ? " (" : "", info->srcs,
             *info->srcs ? ")" : "", n->n_src);
    return false;
}

/* Rank in range, every extent >= 1, and at most ZN_MAX_NUMEL elements, checked without
 * overflowing on shapes that a user wrote. */
static bool check_size(const zn_shape *s, char *err, size_t errlen)
{
    if (s->rank < 0 || s->rank > ZN_MAX_RANK) {
        snprintf(err, errlen, "rank %d is outside 0..%d", s->rank, ZN_MAX_RANK);
        return false;
    }
    char text[96];
    int64_t numel = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] < 1) {
            snprintf(err, errlen, "shape %s has an extent below 1",
                     zn_shape_str(s, text, sizeof text));
            return false;
        }
        if (s->dim[i] > ZN_MAX_NUMEL / numel) {
            snprintf(err, errlen, "shape %s has more than 2^31 elements per example",
                     zn_shape_str(s, text, sizeof text));
            return false;
        }
        numel *= s->dim[i];
    }
    return true;
}

bool zn_graph_infer(zn_graph *g, int id, char *err, size_t errlen)
{
    assert(id >= 0 && id < g->n_nodes);
    zn_node *n = &g->nodes[id];
    /* Messages start with the op's name; the checks and the rule write the rest. */
    size_t used = (size_t)snprintf(err, errlen, "%s: ", zn_ops[n->op].name);
    if (used >= errlen) used = errlen ? errlen - 1 : 0;
    char *msg = err + used;
    size_t msglen = errlen - used;
    if (!check_arity(n, msg, msglen)) return false;
    if (!zn_ops[n->op].infer(g, id, msg, msglen)) return false;
    if (!check_size(&n->shape, msg, msglen)) return false;
    if (errlen) err[0] = '\0';
    return true;
}

zn_attrs zn_attrs_default(void)
{
    return (zn_attrs){
        .stride = {1, 1},
        .dilation = {1, 1},
        .groups = 1,
        .factor = {1, 1},
        .perm = {0, 1, 2, 3},
        .scale = 1.0f,
        .eps = 1e-5f,
        .momentum = 0.9f,
        .weight = 1.0f,
    };
}

const char *zn_shape_str(const zn_shape *s, char *buf, size_t len)
{
    if (!len) return buf;
    size_t at = 0;
    int rank = s->rank < 0 ? 0 : s->rank > ZN_MAX_RANK ? ZN_MAX_RANK : s->rank;
    const char *sep = "";
    buf[0] = '\0';
    at += (size_t)snprintf(buf, len, "[%s", s->batched ? "N" : "");
    if (s->batched) sep = ", ";
    for (int i = 0; i < rank && at < len; i++) {
        at += (size_t)snprintf(buf + at, len - at, "%s%" PRId64, sep, s->dim[i]);
        sep = ", ";
    }
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

int64_t zn_shape_numel(const zn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

bool zn_shape_eq(const zn_shape *a, const zn_shape *b)
{
    if (a->rank != b->rank || a->batched != b->batched || a->dtype != b->dtype) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}
