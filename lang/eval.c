/* eval.c: evaluates a model's statements: scopes and names, arithmetic on numbers and lists,
 * tensor operators (+, * by a constant), block calls (with recursion check and instance naming),
 * shared instances (one set of weights), loops and conditionals. Layer functions are in
 * builtins.c; this file only routes calls to them. */
#include "eval.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"
#include "parse.h"


static zn_value eval_call(zn_eval *ev, zn_scope *sc, const zn_ast *call);

/* ---- scopes ---- */

zn_binding *zn_scope_find(zn_scope *sc, const char *name)
{
    for (int i = sc->n - 1; i >= 0; i--)
        if (strcmp(sc->b[i].name, name) == 0) return &sc->b[i];
    return NULL;
}

void zn_scope_set(zn_eval *ev, zn_scope *sc, const char *name, zn_value v, bool is_var, zn_span at)
{
    (void)ev;
    zn_binding *b = zn_scope_find(sc, name);
    if (b) {
        b->val = v;
        return;
    }
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? 2 * sc->cap : 16;
        sc->b = zn_realloc(sc->b, sizeof *sc->b * sc->cap);
    }
    sc->b[sc->n++] = (zn_binding){name, v, is_var, at};
}

void zn_scope_free(zn_scope *sc)
{
    free(sc->b);
    sc->b = NULL;
    sc->n = sc->cap = 0;
}

/* ---- node naming ---- */

static const char *join(zn_eval *ev, const char *a, const char *sep, const char *b)
{
    if (!a || !*a) return zn_arena_strdup(ev->arena, b);
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *s = zn_arena_alloc(ev->arena, n);
    snprintf(s, n, "%s%s%s", a, sep, b);
    return s;
}

/* The slot of name in the hash set: where it is, or the empty slot where it would go. */
static zn_name_slot *name_slot(zn_eval *ev, const char *name)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211u;
    for (size_t i = h & (ev->cap_names - 1);; i = (i + 1) & (ev->cap_names - 1))
        if (!ev->names[i].name || strcmp(ev->names[i].name, name) == 0) return &ev->names[i];
}

static void name_add(zn_eval *ev, const char *name)
{
    if (2 * (ev->n_names + 1) > ev->cap_names) { /* keep the set at most half full */
        zn_name_slot *old = ev->names;
        int old_cap = ev->cap_names;
        ev->cap_names = old_cap ? 2 * old_cap : 256;
        ev->names = zn_calloc(ev->cap_names, sizeof *ev->names);
        for (int i = 0; i < old_cap; i++)
            if (old[i].name) *name_slot(ev, old[i].name) = old[i];
        free(old);
    }
    *name_slot(ev, name) = (zn_name_slot){name, 2};
    ev->n_names++;
}

/* A graph-wide unique name: base, or base#2, base#3... (the suffix search resumes where the
 * last one for this base stopped, so a loop of n layers names them in O(n)). */
static const char *unique_name(zn_eval *ev, const char *base)
{
    zn_name_slot *taken = ev->cap_names ? name_slot(ev, base) : NULL;
    if (!taken || !taken->name) {
        name_add(ev, base);
        return base;
    }
    size_t len = strlen(base) + 16; /* room for "#2147483647" */
    char *name = zn_arena_alloc(ev->arena, len);
    int k = taken->next_suffix;
    do snprintf(name, len, "%s#%d", base, k++);
    while (name_slot(ev, name)->name);
    taken->next_suffix = k;
    name_add(ev, name);
    return name;
}

/* The statement's own result gets the statement's name; inner calls get name.op. */
static const char *node_name(zn_eval *ev, const char *opname, const zn_ast *e)
{
    const char *base = ev->stmt_base ? ev->stmt_base : ev->prefix;
    if (e && e == ev->stmt_rhs && base && *base) return unique_name(ev, base);
    return unique_name(ev, join(ev, base, ".", opname));
}

zn_value zn_eval_emit(zn_eval *ev, zn_op op, const int *src, int n_src, const zn_attrs *attr,
                      const char *opname, zn_span at, const zn_ast *call)
{
    for (int i = 0; i < n_src; i++)
        if (src[i] < 0) return zn_val_error();
    if (ev->g->n_nodes >= 1000000) {
        zn_diag_error(ev->diag, at, "the model has more than 1,000,000 nodes");
        return zn_val_error();
    }
    int id = zn_graph_add(ev->g, op, src, n_src, attr, node_name(ev, opname, call), ev->cluster, at);
    char err[512];
    if (!zn_graph_infer(ev->g, id, err, sizeof err)) {
        size_t n = strlen(opname);
        bool named = strncmp(err, opname, n) == 0 && err[n] == ':'; /* inference names the op itself */
        zn_diag_error(ev->diag, at, "%s%s%s", named ? "" : opname, named ? "" : ": ", err);
        return zn_val_error();
    }
    return zn_val_tensor(id);
}

int zn_eval_param(zn_eval *ev, const char *owner, const char *suffix, const int64_t *dims, int rank,
                  zn_init init, int fan_in, bool trainable, zn_span at)
{
    zn_instance *inst = ev->share;
    if (inst && ev->share_next < inst->n_params) {
        int id = inst->params[ev->share_next++];
        const zn_node *p = &ev->g->nodes[id];
        bool same = p->shape.rank == rank;
        for (int i = 0; same && i < rank; i++) same = p->shape.dim[i] == dims[i];
        if (!same) {
            zn_shape want = {.rank = rank};
            memcpy(want.dim, dims, sizeof *dims * rank);
            char a[96], b[96];
            zn_diag_error(ev->diag, at,
                          "shared instance '%s' needs parameter %s of shape %s here, but its "
                          "first use made it %s",
                          inst->name, suffix, zn_shape_str(&want, a, sizeof a),
                          zn_shape_str(&p->shape, b, sizeof b));
            zn_diag_hint(ev->diag, "a shared block must see inputs with the same channel count at "
                                   "every use");
            return -1;
        }
        return id;
    }
    zn_attrs attr = zn_attrs_default();
    attr.init = init;
    attr.fan_in = fan_in;
    int id = zn_graph_add(ev->g, ZN_OP_PARAM, NULL, 0, &attr,
                          unique_name(ev, join(ev, owner, ".", suffix)), ev->cluster, at);
    zn_node *p = &ev->g->nodes[id];
    p->shape.rank = rank;
    memcpy(p->shape.dim, dims, sizeof *dims * rank);
    p->shape.batched = false;
    p->shape.dtype = ZN_DTYPE_F32;
    p->flags |= trainable ? ZN_NODE_PARAM : ZN_NODE_STATE;
    char err[256];
    if (!zn_graph_infer(ev->g, id, err, sizeof err)) {
        zn_diag_error(ev->diag, at, "%s", err);
        return -1;
    }
    if (inst) {
        if (inst->n_params == inst->cap_params) { /* in the arena, like the instance itself */
            int cap = inst->cap_params ? 2 * inst->cap_params : 8;
            int *params = zn_arena_alloc(ev->arena, sizeof *params * cap);
            if (inst->n_params) memcpy(params, inst->params, sizeof *params * inst->n_params);
            inst->params = params;
            inst->cap_params = cap;
        }
        inst->params[inst->n_params++] = id;
        ev->share_next++;
    }
    return id;
}

/* ---- expressions ---- */

static bool is_tensor(const zn_value *v) { return v->kind == ZN_VAL_TENSOR; }

static zn_value type_error(zn_eval *ev, const zn_ast *e, const zn_value *a, const zn_value *b)
{
    if (b)
        zn_diag_error(ev->diag, e->span, "operator '%s' is not defined for %s and %s",
                      zn_ast_op_str(e->op), zn_val_kind_name(a->kind), zn_val_kind_name(b->kind));
    else
        zn_diag_error(ev->diag, e->span, "operator '%s' is not defined for %s", zn_ast_op_str(e->op),
                      zn_val_kind_name(a->kind));
    if (b && (is_tensor(a) || is_tensor(b)))
        zn_diag_hint(ev->diag, "tensors support t1 + t2 (same shape), t1 * t2 (same shape, or one "
                               "a [C] gate) and t * number");
    return zn_val_error();
}

zn_value zn_eval_scale(zn_eval *ev, const zn_ast *e, int node, double s, zn_span at)
{
    zn_attrs attr = zn_attrs_default();
    attr.scale = zn_f32(s);
    if (!isfinite(attr.scale)) {
        zn_diag_error(ev->diag, at, "scale factor %g is beyond the range of float32 (about 3.4e38)", s);
        return zn_val_error();
    }
    return zn_eval_emit(ev, ZN_OP_SCALE, &node, 1, &attr, "scale", e->span, e);
}

zn_value zn_eval_mul(zn_eval *ev, const zn_ast *e, int a, int b)
{
    const bool swap = ev->g->nodes[a].shape.rank < ev->g->nodes[b].shape.rank;
    int src[2] = {swap ? b : a, swap ? a : b};
    return zn_eval_emit(ev, ZN_OP_MUL, src, 2, NULL, "mul", e->span, e);
}

zn_value *zn_eval_list_items(zn_eval *ev, int64_t n, zn_span at)
{
    if (n > ZN_MAX_LIST) {
        zn_diag_error(ev->diag, at, "a list of %lld items is longer than the limit of %d", (long long)n, ZN_MAX_LIST);
        return NULL;
    }
    ev->list_items += n;
    if (ev->list_items > ZN_MAX_LIST_TOTAL) {
        if (ev->list_items - n <= ZN_MAX_LIST_TOTAL) /* report the first list past the budget only */
            zn_diag_error(ev->diag, at, "the model builds more than %d list items in all", ZN_MAX_LIST_TOTAL);
        return NULL;
    }
    return zn_arena_alloc(ev->arena, sizeof(zn_value) * (n + 1));
}

static zn_value list_concat(zn_eval *ev, const zn_ast *e, const zn_value *a, const zn_value *b)
{
    zn_value r = {.kind = ZN_VAL_LIST};
    r.list.n = a->list.n + b->list.n;
    r.list.items = zn_eval_list_items(ev, (int64_t)a->list.n + b->list.n, e->span);
    if (!r.list.items) return zn_val_error();
    memcpy(r.list.items, a->list.items, sizeof(zn_value) * a->list.n);
    memcpy(r.list.items + a->list.n, b->list.items, sizeof(zn_value) * b->list.n);
    return r;
}

static zn_value int_arith(zn_eval *ev, const zn_ast *e, int64_t x, int64_t y)
{
    int64_t r = 0;
    bool overflow = false;
    switch (e->op) {
    case ZN_BIN_ADD: overflow = __builtin_add_overflow(x, y, &r); break;
    case ZN_BIN_SUB: overflow = __builtin_sub_overflow(x, y, &r); break;
    case ZN_BIN_MUL: overflow = __builtin_mul_overflow(x, y, &r); break;
    case ZN_BIN_IDIV:
    case ZN_BIN_MOD:
        if (y == 0) {
            zn_diag_error(ev->diag, e->span, "division by zero");
            return zn_val_error();
        }
        if (y == -1) { /* INT64_MIN // -1 overflows; C's INT64_MIN % -1 does too, but is 0 */
            if (e->op == ZN_BIN_IDIV) overflow = __builtin_sub_overflow(0, x, &r);
            break;
        }
        r = x % y; /* rounded toward zero: floor it (r and y of opposite signs: no overflow) */
        if (e->op == ZN_BIN_IDIV)
            r = x / y - (r != 0 && (r < 0) != (y < 0));
        else if (r != 0 && (r < 0) != (y < 0))
            r += y;
        break;
    default: break;
    }
    if (overflow) {
        zn_diag_error(ev->diag, e->span, "integer overflow in %lld %s %lld", (long long)x,
                      zn_ast_op_str(e->op), (long long)y);
        return zn_val_error();
    }
    return zn_val_int(r);
}

static zn_value compare(zn_eval *ev, const zn_ast *e, const zn_value *a, const zn_value *b)
{
    int c;
    if (zn_val_is_number(a) && zn_val_is_number(b)) {
        double x = zn_val_number(a), y = zn_val_number(b);
        c = (x > y) - (x < y);
    } else if (a->kind == ZN_VAL_STRING && b->kind == ZN_VAL_STRING) {
        c = strcmp(a->s, b->s);
    } else if (a->kind == ZN_VAL_BOOL && b->kind == ZN_VAL_BOOL &&
               (e->op == ZN_BIN_EQ || e->op == ZN_BIN_NE)) {
        c = (int)(a->i != b->i);
    } else {
        return type_error(ev, e, a, b);
    }
    switch (e->op) {
    case ZN_BIN_EQ: return zn_val_bool(c == 0);
    case ZN_BIN_NE: return zn_val_bool(c != 0);
    case ZN_BIN_LT: return zn_val_bool(c < 0);
    case ZN_BIN_LE: return zn_val_bool(c <= 0);
    case ZN_BIN_GT: return zn_val_bool(c > 0);
    default: return zn_val_bool(c >= 0);
    }
}

static zn_value eval_binop(zn_eval *ev, zn_scope *sc, const zn_ast *e)
{
    zn_value a = zn_eval_expr(ev, sc, e->a);
    if (e->op == ZN_BIN_AND || e->op == ZN_BIN_OR) {
        if (a.kind == ZN_VAL_ERROR) return a;
        if (a.kind != ZN_VAL_BOOL) return type_error(ev, e, &a, NULL);
        if ((e->op == ZN_BIN_AND) != (a.i != 0)) return a; /* short circuit */
        zn_value b = zn_eval_expr(ev, sc, e->b);
        if (b.kind != ZN_VAL_BOOL && b.kind != ZN_VAL_ERROR) return type_error(ev, e, &b, NULL);
        return b;
    }
    zn_value b = zn_eval_expr(ev, sc, e->b);
    if (a.kind == ZN_VAL_ERROR || b.kind == ZN_VAL_ERROR) return zn_val_error();
    if (e->op >= ZN_BIN_EQ && e->op <= ZN_BIN_GE) return compare(ev, e, &a, &b);

    if (is_tensor(&a) || is_tensor(&b)) {
        if (e->op == ZN_BIN_ADD && is_tensor(&a) && is_tensor(&b)) {
            int src[2] = {a.node, b.node};
            return zn_eval_emit(ev, ZN_OP_ADD, src, 2, NULL, "add", e->span, e);
        }
        if (e->op == ZN_BIN_MUL && is_tensor(&a) && is_tensor(&b))
            return zn_eval_mul(ev, e, a.node, b.node);
        if (e->op == ZN_BIN_MUL && is_tensor(&a) && zn_val_is_number(&b))
            return zn_eval_scale(ev, e, a.node, zn_val_number(&b), e->b->span);
        if (e->op == ZN_BIN_MUL && is_tensor(&b) && zn_val_is_number(&a))
            return zn_eval_scale(ev, e, b.node, zn_val_number(&a), e->a->span);
        if (e->op == ZN_BIN_DIV && is_tensor(&a) && zn_val_is_number(&b) && zn_val_number(&b) != 0)
            return zn_eval_scale(ev, e, a.node, 1.0 / zn_val_number(&b), e->b->span);
        return type_error(ev, e, &a, &b);
    }
    if (a.kind == ZN_VAL_LIST && b.kind == ZN_VAL_LIST && e->op == ZN_BIN_ADD)
        return list_concat(ev, e, &a, &b);
    if (a.kind == ZN_VAL_STRING && b.kind == ZN_VAL_STRING && e->op == ZN_BIN_ADD) {
        if (strlen(a.s) + strlen(b.s) > ZN_MAX_LIST) {
            zn_diag_error(ev->diag, e->span, "a string longer than %d characters", ZN_MAX_LIST);
            return zn_val_error();
        }
        return (zn_value){.kind = ZN_VAL_STRING, .s = join(ev, a.s, "", b.s)};
    }
    if (a.kind == ZN_VAL_LIST && b.kind == ZN_VAL_INT && e->op == ZN_BIN_MUL) {
        if (b.i < 0 || b.i > ZN_MAX_LIST || (a.list.n > 0 && b.i > ZN_MAX_LIST / a.list.n)) {
            zn_diag_error(ev->diag, e->span, "list repetition count %lld is out of range",
                          (long long)b.i);
            return zn_val_error();
        }
        zn_value r = {.kind = ZN_VAL_LIST, .list.n = 0};
        r.list.items = zn_eval_list_items(ev, a.list.n * b.i, e->span);
        if (!r.list.items) return zn_val_error();
        for (int64_t k = 0; k < b.i; k++)
            for (int j = 0; j < a.list.n; j++) r.list.items[r.list.n++] = a.list.items[j];
        return r;
    }
    if (!zn_val_is_number(&a) || !zn_val_is_number(&b)) return type_error(ev, e, &a, &b);
    if (a.kind == ZN_VAL_INT && b.kind == ZN_VAL_INT && e->op != ZN_BIN_DIV)
        return int_arith(ev, e, a.i, b.i);
    double x = zn_val_number(&a), y = zn_val_number(&b);
    switch (e->op) {
    case ZN_BIN_ADD: return zn_val_float(x + y);
    case ZN_BIN_SUB: return zn_val_float(x - y);
    case ZN_BIN_MUL: return zn_val_float(x * y);
    default:
        if (y == 0) {
            zn_diag_error(ev->diag, e->span, "division by zero");
            return zn_val_error();
        }
        if (e->op == ZN_BIN_DIV) return zn_val_float(x / y);
        zn_diag_error(ev->diag, e->span, "operator '%s' needs integers", zn_ast_op_str(e->op));
        return zn_val_error();
    }
}

static zn_value eval_index(zn_eval *ev, zn_scope *sc, const zn_ast *e)
{
    zn_value a = zn_eval_expr(ev, sc, e->a), i = zn_eval_expr(ev, sc, e->b);
    if (a.kind == ZN_VAL_ERROR || i.kind == ZN_VAL_ERROR) return zn_val_error();
    if (a.kind != ZN_VAL_LIST) {
        zn_diag_error(ev->diag, e->a->span, "only lists can be indexed, not %s",
                      zn_val_kind_phrase(a.kind));
        return zn_val_error();
    }
    if (i.kind != ZN_VAL_INT) {
        zn_diag_error(ev->diag, e->b->span, "a list index must be an integer, not %s",
                      zn_val_kind_phrase(i.kind));
        return zn_val_error();
    }
    int64_t k = i.i < 0 ? i.i + a.list.n : i.i;
    if (k < 0 || k >= a.list.n) {
        zn_diag_error(ev->diag, e->b->span, "index %lld is out of range for a list of %d",
                      (long long)i.i, a.list.n);
        return zn_val_error();
    }
    return a.list.items[k];
}

static void unknown_name(zn_eval *ev, zn_scope *sc, const zn_ast *e)
{
    const char **cands = zn_malloc(sizeof *cands * (sc->n + 1));
    for (int i = 0; i < sc->n; i++) cands[i] = sc->b[i].name;
    const char *near = zn_did_you_mean(e->name, cands, sc->n);
    zn_diag_error(ev->diag, e->span, "unknown name '%s'", e->name);
    /* a --set value's source is named "--set KEY" (program.c): there a bare word is most often
     * a string whose double quotes the shell took away */
    bool from_set = e->span.file && strncmp(e->span.file, "--set ", 6) == 0;
    if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
    else if (ev->in_train && zn_builtin_find(zn_train_builtins, zn_n_train_builtins, e->name))
        zn_diag_hint(ev->diag, "'%s' is a settings function: write %s(...)", e->name, e->name);
    else if (from_set)
        zn_diag_hint(ev->diag, "a string keeps its double quotes, so quote them for the shell: %s='\"%s\"'",
                     e->span.file, e->name);
    else if (ev->in_train) zn_diag_hint(ev->diag, "data sets and modes are strings: \"%s\"", e->name);
    free(cands);
}

static zn_value eval_expr(zn_eval *ev, zn_scope *sc, const zn_ast *e)
{
    switch (e->kind) {
    case ZN_AST_INT: return zn_val_int(e->ival);
    case ZN_AST_FLOAT: return zn_val_float(e->fval);
    case ZN_AST_BOOL: return zn_val_bool(e->ival != 0);
    case ZN_AST_STRING: return (zn_value){.kind = ZN_VAL_STRING, .s = e->sval};
    case ZN_AST_NAME: {
        zn_binding *b = zn_scope_find(sc, e->name);
        if (b) return b->val;
        unknown_name(ev, sc, e);
        return zn_val_error();
    }
    case ZN_AST_LIST: {
        zn_value r = {.kind = ZN_VAL_LIST, .list.n = e->n_kids};
        r.list.items = zn_eval_list_items(ev, e->n_kids, e->span);
        if (!r.list.items) return zn_val_error();
        for (int i = 0; i < e->n_kids; i++) {
            r.list.items[i] = zn_eval_expr(ev, sc, e->kids[i]);
            if (r.list.items[i].kind == ZN_VAL_ERROR) return zn_val_error();
        }
        return r;
    }
    case ZN_AST_BINOP: return eval_binop(ev, sc, e);
    case ZN_AST_UNOP: {
        zn_value a = zn_eval_expr(ev, sc, e->a);
        if (a.kind == ZN_VAL_ERROR) return a;
        if (e->op == ZN_UN_NOT) return a.kind == ZN_VAL_BOOL ? zn_val_bool(!a.i) : type_error(ev, e, &a, NULL);
        if (a.kind == ZN_VAL_INT && a.i == INT64_MIN) {
            zn_diag_error(ev->diag, e->span, "integer overflow in -(%lld)", (long long)a.i);
            return zn_val_error();
        }
        if (a.kind == ZN_VAL_INT) return zn_val_int(-a.i);
        if (a.kind == ZN_VAL_FLOAT) return zn_val_float(-a.f);
        if (a.kind == ZN_VAL_TENSOR) return zn_eval_scale(ev, e, a.node, -1.0, e->span);
        return type_error(ev, e, &a, NULL);
    }
    case ZN_AST_INDEX: return eval_index(ev, sc, e);
    case ZN_AST_CALL: return eval_call(ev, sc, e);
    case ZN_AST_SHARED: {
        const zn_ast *call = e->a;
        const zn_ast *blk = NULL;
        for (int i = 0; i < ev->n_blocks; i++)
            if (strcmp(ev->blocks[i]->name, call->name) == 0) blk = ev->blocks[i];
        if (!blk) {
            zn_diag_error(ev->diag, call->span, "'shared' needs a block defined with `block %s(...)`",
                          call->name);
            if (zn_builtin_find(zn_layer_builtins, zn_n_layer_builtins, call->name))
                zn_diag_hint(ev->diag, "'%s' is a layer function; wrap it in a block to share it",
                             call->name);
            return zn_val_error();
        }
        zn_instance *inst = zn_arena_alloc(ev->arena, sizeof *inst);
        inst->block = blk;
        inst->call = call;
        inst->n_bound = call->n_kids;
        inst->bound = zn_arena_alloc(ev->arena, sizeof(zn_value) * (call->n_kids + 1));
        inst->bound_names = zn_arena_alloc(ev->arena, sizeof(char *) * (call->n_kids + 1));
        inst->name = ev->stmt_base ? ev->stmt_base : blk->name;
        for (int i = 0; i < call->n_kids; i++) {
            inst->bound[i] = zn_eval_expr(ev, sc, call->kids[i]->a);
            inst->bound_names[i] = call->kids[i]->name;
            if (inst->bound[i].kind == ZN_VAL_ERROR) return zn_val_error();
        }
        return (zn_value){.kind = ZN_VAL_INSTANCE, .inst = inst};
    }
    default:
        zn_diag_error(ev->diag, e->span, "this is not an expression");
        return zn_val_error();
    }
}

/* A left-nested chain such as 1 + 1 + ... + 1 is as deep as it is long: the depth is capped so
 * a pathological file gets a message instead of a stack overflow. */
zn_value zn_eval_expr(zn_eval *ev, zn_scope *sc, const zn_ast *e)
{
    bool leaf = e->kind <= ZN_AST_NAME; /* literals and names do not recurse */
    if (ev->expr_depth >= ZN_MAX_EXPR_DEPTH && !leaf) {
        zn_diag_error(ev->diag, e->span, "expression nested more than %d deep", ZN_MAX_EXPR_DEPTH);
        zn_diag_hint(ev->diag, "split it into several statements");
        return zn_val_error();
    }
    ev->expr_depth++;
    zn_value v = eval_expr(ev, sc, e);
    ev->expr_depth--;
    return v;
}

/* ---- calls ---- */

static bool eval_args(zn_eval *ev, zn_scope *sc, const zn_ast *call, zn_args *out, int extra)
{
    int n = call->n_kids + extra;
    out->n = 0;
    out->vals = zn_arena_alloc(ev->arena, sizeof(zn_value) * (n + 1));
    out->keys = zn_arena_alloc(ev->arena, sizeof(char *) * (n + 1));
    out->spans = zn_arena_alloc(ev->arena, sizeof(zn_span) * (n + 1));
    bool ok = true, seen_kw = false;
    for (int i = 0; i < call->n_kids; i++) {
        const zn_ast *arg = call->kids[i];
        if (arg->name) seen_kw = true;
        else if (seen_kw) {
            zn_diag_error(ev->diag, arg->span, "positional argument after a keyword argument");
            ok = false;
        }
        for (int j = 0; arg->name && j < out->n; j++)
            if (out->keys[j] && strcmp(out->keys[j], arg->name) == 0) {
                zn_diag_error(ev->diag, arg->span, "argument '%s' of %s is given twice", arg->name, call->name);
                ok = false;
            }
        out->vals[out->n] = zn_eval_expr(ev, sc, arg->a);
        out->keys[out->n] = arg->name;
        out->spans[out->n] = arg->name ? arg->span : arg->a->span; /* a keyword: `key = value` */
        if (out->vals[out->n].kind == ZN_VAL_ERROR) ok = false;
        out->n++;
    }
    return ok;
}

static const char *block_signature(const zn_ast *blk, char *buf, size_t len)
{
    size_t used = snprintf(buf, len, "%s(", blk->name);
    for (int i = 0; i < blk->b->n_kids && used < len; i++)
        used += snprintf(buf + used, len - used, "%s%s%s", i ? ", " : "", blk->b->kids[i]->name,
                         blk->b->kids[i]->a ? " = ..." : "");
    if (used < len) snprintf(buf + used, len - used, ")");
    return buf;
}

/* Binds a block's parameters in a fresh scope: positional, then keywords, then defaults. */
static bool bind_block(zn_eval *ev, const zn_ast *blk, const zn_args *args, const zn_ast *call,
                       zn_scope *sc)
{
    const zn_ast *params = blk->b;
    char sig[256];
    bool ok = true;
    int n_pos = 0;
    while (n_pos < args->n && !args->keys[n_pos]) n_pos++;
    if (n_pos > params->n_kids) {
        zn_diag_error(ev->diag, args->spans[params->n_kids], "%s takes %d argument%s, got %d",
                      blk->name, params->n_kids, params->n_kids == 1 ? "" : "s", n_pos);
        zn_diag_hint(ev->diag, "%s", block_signature(blk, sig, sizeof sig));
        return false;
    }
    zn_value *vals = zn_calloc(params->n_kids + 1, sizeof *vals);
    bool *set = zn_calloc(params->n_kids + 1, sizeof *set);
    for (int i = 0; i < n_pos; i++) vals[i] = args->vals[i], set[i] = true;
    for (int i = n_pos; i < args->n; i++) {
        int k = -1;
        for (int j = 0; j < params->n_kids; j++)
            if (strcmp(params->kids[j]->name, args->keys[i]) == 0) k = j;
        if (k < 0) {
            const char *cands[ZN_MAX_ARGS * 4];
            int nc = 0;
            for (int j = 0; j < params->n_kids && nc < ZN_MAX_ARGS * 4; j++) cands[nc++] = params->kids[j]->name;
            const char *near = zn_did_you_mean(args->keys[i], cands, nc);
            zn_diag_error(ev->diag, args->spans[i], "%s has no parameter '%s'", blk->name, args->keys[i]);
            if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
            else zn_diag_hint(ev->diag, "%s", block_signature(blk, sig, sizeof sig));
            ok = false;
        } else if (set[k]) {
            zn_diag_error(ev->diag, args->spans[i], "argument '%s' of %s is given twice", args->keys[i], blk->name);
            ok = false;
        } else {
            vals[k] = args->vals[i], set[k] = true;
        }
    }
    for (int j = 0; ok && j < params->n_kids; j++) {
        const zn_ast *p = params->kids[j];
        if (!set[j] && !p->a) {
            zn_diag_error(ev->diag, call->span, "%s is missing argument '%s'", blk->name, p->name);
            zn_diag_hint(ev->diag, "%s", block_signature(blk, sig, sizeof sig));
            ok = false;
            break;
        }
        /* defaults see the parameters before them */
        zn_value v = set[j] ? vals[j] : zn_eval_expr(ev, sc, p->a);
        zn_scope_set(ev, sc, p->name, v, false, p->span);
    }
    free(vals);
    free(set);
    return ok;
}

static zn_value call_block(zn_eval *ev, const zn_ast *blk, const zn_args *args, const zn_ast *call,
                           zn_instance *inst)
{
    for (int i = 0; i < ev->depth; i++) {
        if (ev->stack[i] != blk) continue;
        char chain[512] = "";
        size_t used = 0;
        for (int j = i; j < ev->depth && used < sizeof chain; j++)
            used += snprintf(chain + used, sizeof chain - used, "%s -> ", ev->stack[j]->name);
        if (used < sizeof chain) snprintf(chain + used, sizeof chain - used, "%s", blk->name);
        zn_diag_error(ev->diag, call->span, "block recursion: %s", chain);
        zn_diag_hint(ev->diag, "blocks cannot call themselves; use a loop (for i in range(n) { ... })");
        return zn_val_error();
    }
    if (ev->depth == (int)(sizeof ev->stack / sizeof ev->stack[0])) {
        zn_diag_error(ev->diag, call->span, "blocks nested more than 64 deep");
        return zn_val_error();
    }
    /* The instance path: the statement's name when the call is its whole expression. */
    const char *base = ev->stmt_base ? ev->stmt_base : ev->prefix;
    const char *prefix = call == ev->stmt_rhs && base && *base ? base : join(ev, base, ".", blk->name);
    size_t outer = strlen(ev->prefix);
    assert(strncmp(prefix, ev->prefix, outer) == 0);
    const char *local = prefix + outer + (outer && prefix[outer] == '.'); /* "h.cbr" of "b1.h.cbr" */

    zn_eval saved = *ev;
    ev->stack[ev->depth++] = blk;
    ev->prefix = prefix;
    /* One cluster per call (graph.h): a second call with the same local name gets "#2". The
     * key's leading '/' keeps cluster paths apart from node names in the one name set. */
    const char *key = join(ev, "/", "", join(ev, saved.cluster, "/", join(ev, blk->name, ":", local)));
    ev->cluster = unique_name(ev, key) + 1;
    if (inst) {
        ev->share = inst;
        ev->share_next = 0;
    }
    zn_scope sc = {0};
    zn_value ret = zn_val_error();
    ev->stmt_base = NULL;
    ev->stmt_rhs = NULL;
    if (bind_block(ev, blk, args, call, &sc)) {
        int errors = ev->diag->n_errors;
        ret = zn_eval_body(ev, &sc, blk, true);
        if (ev->diag->n_errors != errors)
            zn_diag_note(ev->diag, call->span, "in this call of %s '%s'", inst ? "shared instance" : "block",
                         inst ? inst->name : blk->name);
    }
    zn_scope_free(&sc);
    ev->depth = saved.depth;
    ev->prefix = saved.prefix;
    ev->cluster = saved.cluster;
    ev->stmt_base = saved.stmt_base;
    ev->stmt_rhs = saved.stmt_rhs;
    if (inst) {
        ev->share = saved.share;
        ev->share_next = saved.share_next;
    }
    return ret;
}

static zn_value call_instance(zn_eval *ev, zn_scope *sc, zn_instance *inst, const zn_ast *call)
{
    zn_args args;
    if (!eval_args(ev, sc, call, &args, inst->n_bound)) return zn_val_error();
    /* the instance's bound arguments follow the call's own: positional after positional */
    int n_pos = 0;
    while (n_pos < args.n && !args.keys[n_pos]) n_pos++;
    zn_args all = args;
    all.n = 0;
    all.vals = zn_arena_alloc(ev->arena, sizeof(zn_value) * (args.n + inst->n_bound + 1));
    all.keys = zn_arena_alloc(ev->arena, sizeof(char *) * (args.n + inst->n_bound + 1));
    all.spans = zn_arena_alloc(ev->arena, sizeof(zn_span) * (args.n + inst->n_bound + 1));
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < args.n; i++)
            if ((args.keys[i] != NULL) == pass) {
                all.vals[all.n] = args.vals[i], all.keys[all.n] = args.keys[i];
                all.spans[all.n++] = args.spans[i];
            }
        for (int i = 0; i < inst->n_bound; i++)
            if ((inst->bound_names[i] != NULL) == pass) {
                all.vals[all.n] = inst->bound[i], all.keys[all.n] = inst->bound_names[i];
                all.spans[all.n++] = inst->call->kids[i]->span;
            }
    }
    return call_block(ev, inst->block, &all, call, inst);
}

static const char *const metric_names[] = {"vote"};

static zn_value eval_call(zn_eval *ev, zn_scope *sc, const zn_ast *call)
{
    zn_binding *bound = zn_scope_find(sc, call->name);
    if (bound) {
        if (bound->val.kind == ZN_VAL_INSTANCE) return call_instance(ev, sc, bound->val.inst, call);
        if (bound->val.kind == ZN_VAL_ERROR) return zn_val_error();
        zn_diag_error(ev->diag, call->span, "'%s' is %s, not something that can be called",
                      call->name, zn_val_kind_phrase(bound->val.kind));
        return zn_val_error();
    }
    for (int i = 0; i < ev->n_blocks; i++)
        if (strcmp(ev->blocks[i]->name, call->name) == 0) {
            if (ev->in_train) break;
            zn_args args;
            if (!eval_args(ev, sc, call, &args, 0)) return zn_val_error();
            return call_block(ev, ev->blocks[i], &args, call, NULL);
        }
    const zn_builtin *table = ev->in_train ? zn_train_builtins : zn_layer_builtins;
    int n_table = ev->in_train ? zn_n_train_builtins : zn_n_layer_builtins;
    const zn_builtin *b = zn_builtin_find(table, n_table, call->name);
    if (b) {
        zn_args args;
        if (!eval_args(ev, sc, call, &args, 0)) return zn_val_error();
        zn_value vals[ZN_MAX_ARGS];
        zn_span at[ZN_MAX_ARGS];
        if (!zn_builtin_bind(ev, b, &args, call, vals, at)) return zn_val_error();
        return b->lower(ev, b, vals, at, call);
    }
    /* unknown: suggest from every callable name */
    int n = n_table + (ev->in_train ? 0 : ev->n_blocks) + sc->n + 1;
    const char **cands = zn_malloc(sizeof *cands * n);
    int k = 0;
    for (int i = 0; i < n_table; i++) cands[k++] = table[i].name;
    for (int i = 0; !ev->in_train && i < ev->n_blocks; i++) cands[k++] = ev->blocks[i]->name;
    for (int i = 0; i < sc->n; i++)
        if (sc->b[i].val.kind == ZN_VAL_INSTANCE) cands[k++] = sc->b[i].name;
    const char *near = zn_did_you_mean(call->name, cands, k);
    free(cands);
    if (strcmp(call->name, metric_names[0]) == 0) {
        zn_diag_error(ev->diag, call->span, "vote(...) is a metric, not a value");
        zn_diag_hint(ev->diag, "write it as a statement: metric vote(h1, h2, h3)");
    } else {
        zn_diag_error(ev->diag, call->span, "unknown %s '%s'",
                      ev->in_train ? "setting function" : "layer or block", call->name);
        bool is_layer = zn_builtin_find(zn_layer_builtins, zn_n_layer_builtins, call->name) != NULL;
        for (int i = 0; !is_layer && i < ev->n_blocks; i++) is_layer = strcmp(ev->blocks[i]->name, call->name) == 0;
        if (ev->in_train && is_layer)
            zn_diag_hint(ev->diag, "'%s' is a layer function or block: it belongs in the model", call->name);
        else if (!ev->in_train && zn_builtin_find(zn_train_builtins, zn_n_train_builtins, call->name))
            zn_diag_hint(ev->diag, "'%s' is a train setting: it belongs in the train section", call->name);
        else if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
    }
    return zn_val_error();
}

zn_value zn_eval_string_value(zn_eval *ev, const char *text, zn_span at)
{
    zn_source src = {.path = (char *)"<default>", .text = (char *)text, .len = strlen(text)};
    zn_ast *e = zn_parse_expression(ev->diag, ev->arena, &src);
    if (!e) {
        zn_diag_error(ev->diag, at, "internal: bad default '%s'", text);
        return zn_val_error();
    }
    zn_scope empty = {0};
    return zn_eval_expr(ev, &empty, e);
}

/* ---- statements ---- */

static void define(zn_eval *ev, zn_scope *sc, const zn_ast *s, zn_value v, bool is_var)
{
    zn_binding *old = zn_scope_find(sc, s->name);
    if (old && (is_var || !old->is_var)) {
        zn_diag_error(ev->diag, s->span, "'%s' is already defined", s->name);
        if (!is_var && s->kind == ZN_AST_ASSIGN)
            zn_diag_hint(ev->diag, "declare it with `var %s = ...` to assign it again", s->name);
        if (old->at.line > 0) zn_diag_note(ev->diag, old->at, "'%s' was first defined here", s->name);
        return;
    }
    zn_scope_set(ev, sc, s->name, v, is_var, s->span);
}

static bool as_bool(zn_eval *ev, const zn_ast *e, zn_value v, bool *out)
{
    if (v.kind == ZN_VAL_ERROR) return false;
    if (v.kind != ZN_VAL_BOOL) {
        zn_diag_error(ev->diag, e->span, "a condition must be true or false, not %s",
                      zn_val_kind_phrase(v.kind));
        return false;
    }
    *out = v.i != 0;
    return true;
}

static void eval_stmt(zn_eval *ev, zn_scope *sc, const zn_ast *s, zn_value *ret, bool *returned);

/* input NAME: [C, H, W]  or  input NAME: class(K) */
static void eval_input(zn_eval *ev, zn_scope *sc, const zn_ast *s)
{
    zn_value v = zn_eval_expr(ev, sc, s->a);
    if (v.kind == ZN_VAL_ERROR) {
        define(ev, sc, s, v, false);
        return;
    }
    zn_attrs attr = zn_attrs_default();
    zn_shape shape = {.batched = true, .dtype = ZN_DTYPE_F32};
    unsigned flags = ZN_NODE_INPUT;
    if (v.kind == ZN_VAL_RECORD && strcmp(v.rec->name, "class") == 0) {
        attr.out = (int)v.rec->vals[0].i;
        shape.dtype = ZN_DTYPE_I32;
        flags |= ZN_NODE_LABEL;
    } else if (v.kind == ZN_VAL_LIST && v.list.n >= 1 && v.list.n <= 3) {
        shape.rank = v.list.n;
        for (int i = 0; i < v.list.n; i++) {
            const zn_value *d = &v.list.items[i];
            if (d->kind != ZN_VAL_INT || d->i < 1 || d->i > (1 << 20)) {
                char buf[64];
                zn_diag_error(ev->diag, s->a->span, "input sizes must be integers from 1 to %d; got %s",
                              1 << 20, zn_val_str(d, buf, sizeof buf));
                define(ev, sc, s, zn_val_error(), false);
                return;
            }
            shape.dim[i] = d->i;
        }
    } else {
        zn_diag_error(ev->diag, s->a->span, "an input is a shape such as [3, 32, 32] or class(10), "
                                            "not %s", zn_val_kind_phrase(v.kind));
        define(ev, sc, s, zn_val_error(), false);
        return;
    }
    zn_binding *old = zn_scope_find(sc, s->name);
    if (old) {
        define(ev, sc, s, zn_val_error(), false);
        return;
    }
    int id = zn_graph_add(ev->g, ZN_OP_INPUT, NULL, 0, &attr, unique_name(ev, s->name), "", s->span);
    ev->g->nodes[id].shape = shape;
    ev->g->nodes[id].flags |= flags;
    char err[256];
    if (!zn_graph_infer(ev->g, id, err, sizeof err)) {
        zn_diag_error(ev->diag, s->a->span, "%s", err);
        return;
    }
    define(ev, sc, s, zn_val_tensor(id), false);
}

static bool is_loss(zn_eval *ev, zn_value v) { return v.kind == ZN_VAL_TENSOR && ev->g->nodes[v.node].op == ZN_OP_XENT; }

/* head NAME = xent(logits, label, weight = w) */
static void eval_head(zn_eval *ev, zn_scope *sc, const zn_ast *s)
{
    zn_value v = zn_eval_expr(ev, sc, s->a);
    if (v.kind == ZN_VAL_ERROR) {
        define(ev, sc, s, v, false);
        return;
    }
    if (!is_loss(ev, v)) {
        zn_diag_error(ev->diag, s->a->span, "a head must be a loss, such as xent(logits, label), not %s",
                      zn_val_kind_phrase(v.kind));
        define(ev, sc, s, zn_val_error(), false);
        return;
    }
    if (ev->g->nodes[v.node].flags & ZN_NODE_LOSS) {
        zn_diag_error(ev->diag, s->a->span, "this loss is already a head");
        zn_diag_hint(ev->diag, "each loss can be one head; compute a second xent(...) for another");
        define(ev, sc, s, zn_val_error(), false);
        return;
    }
    ev->g->nodes[v.node].flags |= ZN_NODE_LOSS;
    define(ev, sc, s, v, false);
}

/* metric [NAME =] vote(h1, h2, ...) */
static void eval_metric(zn_eval *ev, zn_scope *sc, const zn_ast *s)
{
    const zn_ast *call = s->a;
    if (call->kind != ZN_AST_CALL || strcmp(call->name, "vote") != 0) {
        zn_diag_error(ev->diag, call->span, "unknown metric; the metric is vote(head, head, ...)");
        if (call->kind == ZN_AST_CALL && zn_did_you_mean(call->name, (const char *[]){"vote"}, 1))
            zn_diag_hint(ev->diag, "did you mean 'vote'?");
        return;
    }
    if (call->n_kids < 2) {
        zn_diag_error(ev->diag, call->span, "vote needs at least two heads, got %d", call->n_kids);
        return;
    }
    int heads[64];
    int n = 0;
    for (int i = 0; i < call->n_kids; i++) {
        const zn_ast *arg = call->kids[i];
        zn_value v = zn_eval_expr(ev, sc, arg->a);
        if (v.kind == ZN_VAL_ERROR) return;
        if (arg->name || !is_loss(ev, v) || !(ev->g->nodes[v.node].flags & ZN_NODE_LOSS)) {
            zn_diag_error(ev->diag, arg->span, "vote's arguments must be heads (declared with `head`)");
            return;
        }
        if (n == 64) {
            zn_diag_error(ev->diag, arg->span, "vote takes at most 64 heads");
            return;
        }
        for (int j = 0; j < n; j++)
            if (heads[j] == v.node) {
                zn_diag_error(ev->diag, arg->span, "this head is already in the vote");
                return;
            }
        heads[n++] = v.node;
    }
    const char *name = s->name ? s->name : "vote";
    for (int i = 0; i < ev->g->n_metrics; i++)
        if (strcmp(ev->g->metrics[i].name, name) == 0) {
            zn_diag_error(ev->diag, s->span, "metric '%s' is already defined", name);
            zn_diag_note(ev->diag, ev->g->metrics[i].span, "first defined here");
            return;
        }
    zn_graph_add_metric(ev->g, ZN_METRIC_VOTE, heads, n, name, s->span);
}

static void eval_for(zn_eval *ev, zn_scope *sc, const zn_ast *s, zn_value *ret, bool *returned)
{
    zn_value it = zn_eval_expr(ev, sc, s->a);
    if (it.kind == ZN_VAL_ERROR) return;
    int64_t count;
    if (!s->name) {
        if (it.kind != ZN_VAL_INT || it.i < 0 || it.i > ZN_MAX_LIST) {
            char buf[64];
            zn_diag_error(ev->diag, s->a->span, "repeat needs a count from 0 to %d, got %s", ZN_MAX_LIST,
                          it.kind == ZN_VAL_INT ? zn_val_str(&it, buf, sizeof buf) : zn_val_kind_name(it.kind));
            return;
        }
        count = it.i;
    } else {
        if (it.kind != ZN_VAL_LIST) {
            zn_diag_error(ev->diag, s->a->span, "for ... in needs a list, not %s",
                          zn_val_kind_phrase(it.kind));
            zn_diag_hint(ev->diag, "use range(n) for 0, 1, ..., n-1");
            return;
        }
        zn_binding *old = zn_scope_find(sc, s->name);
        if (old && !old->is_var) {
            zn_diag_error(ev->diag, s->span, "loop variable '%s' is already defined", s->name);
            return;
        }
        count = it.list.n;
    }
    for (int64_t i = 0; i < count && !*returned; i++) {
        if (s->name) zn_scope_set(ev, sc, s->name, it.list.items[i], true, s->span);
        int errors = ev->diag->n_errors;
        for (int k = 0; k < s->n_kids && !*returned; k++) eval_stmt(ev, sc, s->kids[k], ret, returned);
        if (ev->diag->n_errors != errors) return; /* one report, not one per iteration */
    }
}

static void eval_stmt(zn_eval *ev, zn_scope *sc, const zn_ast *s, zn_value *ret, bool *returned)
{
    if (--ev->budget < 0) {
        if (ev->budget == -1) {
            zn_diag_error(ev->diag, s->span, "the model runs more than 10,000,000 statements");
            zn_diag_hint(ev->diag, "check loop counts");
        }
        *returned = true;
        return;
    }
    const char *saved_base = ev->stmt_base;
    const zn_ast *saved_rhs = ev->stmt_rhs;
    switch (s->kind) {
    case ZN_AST_ASSIGN: {
        ev->stmt_base = join(ev, ev->prefix, ".", s->name);
        ev->stmt_rhs = s->a;
        zn_value v = zn_eval_expr(ev, sc, s->a);
        define(ev, sc, s, v, s->flag);
        break;
    }
    case ZN_AST_RETURN:
        if (ev->depth == 0) {
            zn_diag_error(ev->diag, s->span, "`return` is only allowed in a block");
            zn_diag_hint(ev->diag, "a model's results are its `head` statements");
            break;
        }
        ev->stmt_base = ev->prefix;
        ev->stmt_rhs = s->a;
        *ret = zn_eval_expr(ev, sc, s->a);
        *returned = true;
        break;
    case ZN_AST_FOR:
        eval_for(ev, sc, s, ret, returned);
        break;
    case ZN_AST_IF: {
        bool c;
        if (!as_bool(ev, s->a, zn_eval_expr(ev, sc, s->a), &c)) break;
        if (c)
            for (int k = 0; k < s->n_kids && !*returned; k++) eval_stmt(ev, sc, s->kids[k], ret, returned);
        else if (s->b)
            for (int k = 0; k < s->b->n_kids && !*returned; k++) eval_stmt(ev, sc, s->b->kids[k], ret, returned);
        break;
    }
    case ZN_AST_INPUT:
    case ZN_AST_HEAD:
    case ZN_AST_METRIC:
        if (ev->depth > 0 || ev->in_train) {
            zn_diag_error(ev->diag, s->span, "'%s' belongs in the model, not in a %s",
                          s->kind == ZN_AST_INPUT ? "input" : s->kind == ZN_AST_HEAD ? "head" : "metric",
                          ev->in_train ? "train section" : "block");
            break;
        }
        ev->stmt_base = s->name ? join(ev, ev->prefix, ".", s->name) : NULL;
        ev->stmt_rhs = s->a;
        if (s->kind == ZN_AST_INPUT) eval_input(ev, sc, s);
        else if (s->kind == ZN_AST_HEAD) eval_head(ev, sc, s);
        else eval_metric(ev, sc, s);
        break;
    default:
        zn_diag_error(ev->diag, s->span, "this statement is not allowed here");
    }
    ev->stmt_base = saved_base;
    ev->stmt_rhs = saved_rhs;
}

zn_value zn_eval_body(zn_eval *ev, zn_scope *sc, const zn_ast *owner, bool need_return)
{
    bool returned = false;
    zn_value r = zn_val_error();
    int errors = ev->diag->n_errors;
    for (int i = 0; i < owner->n_kids && !returned; i++) eval_stmt(ev, sc, owner->kids[i], &r, &returned);
    if (need_return && !returned && errors == ev->diag->n_errors) {
        zn_diag_error(ev->diag, owner->span, "block '%s' ends without `return`", owner->name);
        zn_diag_hint(ev->diag, "end the block with `return <tensor>`");
    }
    return r;
}
