/* builtins.c: the layer functions a model can call: one per language name of an op in
 * graph/op_list.h (whose lower column picks the lowering here and its parameters with defaults
 * and types) and a few that are no op (class, range, len, shape, error); argument binding with
 * did-you-mean and type errors, and the lowering of each call to graph nodes and parameters. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "eval.h"

const zn_builtin *zn_builtin_find(const zn_builtin *table, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

static int n_params(const zn_builtin *b)
{
    int n = 0;
    while (n < ZN_MAX_ARGS && b->args[n].name) n++;
    return n;
}

const char *zn_builtin_signature(const zn_builtin *b, char *buf, size_t len)
{
    size_t used = snprintf(buf, len, "%s(", b->name);
    for (int i = 0; i < n_params(b) && used < len; i++) {
        const zn_argspec *a = &b->args[i];
        used += snprintf(buf + used, len - used, "%s%s%s%s%s", i ? ", " : "", a->name,
                         a->kind == ZN_ARG_TENSORS ? "..." : "", a->def ? " = " : "", a->def ? a->def : "");
    }
    if (used < len) snprintf(buf + used, len - used, ")");
    return buf;
}

static const char *kind_wanted(zn_arg_kind k)
{
    switch (k) {
    case ZN_ARG_TENSOR: return "a tensor";
    case ZN_ARG_TENSORS: return "tensors";
    case ZN_ARG_INT: return "an integer";
    case ZN_ARG_FLOAT: return "a number";
    case ZN_ARG_BOOL: return "true or false";
    case ZN_ARG_STRING: return "a string";
    case ZN_ARG_PAIR: return "an integer or a list [h, w]";
    case ZN_ARG_NUMBERS: return "a list of numbers";
    default: return "a value";
    }
}

static bool is_int_list(const zn_value *v, int want)
{
    if (v->kind != ZN_VAL_LIST || (want && v->list.n != want)) return false;
    for (int i = 0; i < v->list.n; i++)
        if (v->list.items[i].kind != ZN_VAL_INT) return false;
    return true;
}

static bool type_ok(const zn_value *v, zn_arg_kind k)
{
    switch (k) {
    case ZN_ARG_TENSOR: return v->kind == ZN_VAL_TENSOR;
    case ZN_ARG_INT: return v->kind == ZN_VAL_INT;
    case ZN_ARG_FLOAT: return zn_val_is_number(v);
    case ZN_ARG_BOOL: return v->kind == ZN_VAL_BOOL;
    case ZN_ARG_STRING: return v->kind == ZN_VAL_STRING;
    case ZN_ARG_PAIR: return v->kind == ZN_VAL_INT || is_int_list(v, 2);
    case ZN_ARG_NUMBERS:
        if (v->kind != ZN_VAL_LIST) return false;
        for (int i = 0; i < v->list.n; i++)
            if (!zn_val_is_number(&v->list.items[i])) return false;
        return true;
    case ZN_ARG_TENSORS:
        if (v->kind != ZN_VAL_LIST || v->list.n == 0) return false;
        for (int i = 0; i < v->list.n; i++)
            if (v->list.items[i].kind != ZN_VAL_TENSOR) return false;
        return true;
    default: return true;
    }
}

static const zn_shape *shape_of(zn_eval *ev, const zn_value *v) { return &ev->g->nodes[v->node].shape; }

bool zn_builtin_bind(zn_eval *ev, const zn_builtin *b, const zn_args *args, const zn_ast *call,
                     zn_value *out, zn_span *out_at)
{
    char sig[256];
    int np = n_params(b);
    bool set[ZN_MAX_ARGS] = {0};
    bool ok = true;
    int pos = 0;
    for (int i = 0; i < args->n; i++) {
        int k = -1;
        if (!args->keys[i]) {
            if (pos < np && b->args[pos].kind == ZN_ARG_TENSORS) {
                /* a variadic parameter collects the rest of the positional arguments */
                int n = 0;
                while (i + n < args->n && !args->keys[i + n]) n++;
                zn_value list = args->vals[i];
                if (!(n == 1 && list.kind == ZN_VAL_LIST)) {
                    list = (zn_value){.kind = ZN_VAL_LIST, .list.n = n};
                    list.list.items = zn_arena_alloc(ev->arena, sizeof(zn_value) * n);
                    memcpy(list.list.items, args->vals + i, sizeof(zn_value) * n);
                }
                out[pos] = list;
                out_at[pos] = args->spans[i];
                set[pos++] = true;
                i += n - 1;
                continue;
            }
            if (pos >= np) {
                zn_diag_error(ev->diag, args->spans[i], "%s takes at most %d positional argument%s",
                              b->name, np, np == 1 ? "" : "s");
                zn_diag_hint(ev->diag, "%s", zn_builtin_signature(b, sig, sizeof sig));
                return false;
            }
            k = pos++;
        } else {
            for (int j = 0; j < np; j++)
                if (strcmp(b->args[j].name, args->keys[i]) == 0) k = j;
            if (k < 0) {
                const char *cands[ZN_MAX_ARGS];
                for (int j = 0; j < np; j++) cands[j] = b->args[j].name;
                const char *near = zn_did_you_mean(args->keys[i], cands, np);
                zn_diag_error(ev->diag, args->spans[i], "%s has no parameter '%s'", b->name, args->keys[i]);
                if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
                else zn_diag_hint(ev->diag, "%s", zn_builtin_signature(b, sig, sizeof sig));
                ok = false;
                continue;
            }
            if (set[k]) {
                zn_diag_error(ev->diag, args->spans[i], "argument '%s' of %s is given twice",
                              args->keys[i], b->name);
                ok = false;
                continue;
            }
        }
        out[k] = args->vals[i];
        out_at[k] = args->spans[i];
        set[k] = true;
    }
    for (int k = 0; ok && k < np; k++) {
        const zn_argspec *a = &b->args[k];
        if (!set[k]) {
            if (!a->def) {
                zn_diag_error(ev->diag, call->span, "%s is missing argument '%s'", b->name, a->name);
                zn_diag_hint(ev->diag, "%s", zn_builtin_signature(b, sig, sizeof sig));
                return false;
            }
            out[k] = zn_eval_string_value(ev, a->def, call->span);
            out_at[k] = call->span;
            continue;
        }
        if (!type_ok(&out[k], a->kind)) {
            char got[128];
            zn_diag_error(ev->diag, out_at[k], "%s: '%s' must be %s, got %s %s", b->name, a->name,
                          kind_wanted(a->kind), zn_val_kind_name(out[k].kind),
                          out[k].kind == ZN_VAL_TENSOR ? zn_shape_str(shape_of(ev, &out[k]), got, sizeof got)
                                                       : zn_val_str(&out[k], got, sizeof got));
            ok = false;
        }
    }
    return ok;
}

/* ---- lowering helpers ---- */


static bool need_rank(zn_eval *ev, const zn_builtin *b, const zn_value *x, int rank, zn_span at)
{
    const zn_shape *s = shape_of(ev, x);
    if (s->rank == rank && s->dtype == ZN_DTYPE_F32) return true;
    char buf[96];
    zn_diag_error(ev->diag, at, "%s needs a %s, got %s", b->name,
                  rank == 3 ? "[C, H, W] feature map" : rank == 1 ? "feature vector [C]" : "tensor",
                  zn_shape_str(s, buf, sizeof buf));
    if (rank == 1 && s->rank == 3) zn_diag_hint(ev->diag, "reduce it first with gmp(x), gap(x) or flatten(x)");
    return false;
}

/* An integer argument within [lo, hi], or an error naming it. */
static bool in_range(zn_eval *ev, const zn_builtin *b, const char *what, int64_t v, int64_t lo, int64_t hi,
                     zn_span at)
{
    if (v >= lo && v <= hi) return true;
    zn_diag_error(ev->diag, at, "%s: '%s' must be from %lld to %lld, got %lld", b->name, what,
                  (long long)lo, (long long)hi, (long long)v);
    return false;
}

/* An integer or [h, w] argument into pair[2], each within [lo, hi]. */
static bool get_pair(zn_eval *ev, const zn_builtin *b, int k, const zn_value *a, const zn_span *at,
                     int lo, int hi, int pair[2])
{
    const zn_value *v = &a[k];
    int64_t p[2];
    if (v->kind == ZN_VAL_INT) p[0] = p[1] = v->i;
    else p[0] = v->list.items[0].i, p[1] = v->list.items[1].i;
    for (int i = 0; i < 2; i++) {
        if (!in_range(ev, b, b->args[k].name, p[i], lo, hi, at[k])) return false;
        pair[i] = (int)p[i];
    }
    return true;
}

/* The op a layer function emits: the one whose lang column in graph/op_list.h names it. */
static zn_op op_of(const zn_builtin *b)
{
    for (int op = 0; op < ZN_OP_COUNT; op++)
        for (int k = 0; k < 2; k++)
            if (strcmp(zn_ops[op].lang[k], b->name) == 0) return (zn_op)op;
    assert(!"a layer function's lowering reads op_of only for names from the list");
    return ZN_OP_COUNT;
}

/* The name the op's node gets, used to name its parameters ("b1.conv2d.w"). */
static const char *owner_name(zn_eval *ev, const char *opname, const zn_ast *call)
{
    const char *base = ev->stmt_base ? ev->stmt_base : ev->prefix;
    static char buf[512];
    if (call == ev->stmt_rhs && base && *base) snprintf(buf, sizeof buf, "%s", base);
    else if (base && *base) snprintf(buf, sizeof buf, "%s.%s", base, opname);
    else snprintf(buf, sizeof buf, "%s", opname);
    return zn_arena_strdup(ev->arena, buf);
}

#define MAX_CH (1 << 20)

/* The fan-in the initialiser is given. Past INT_MAX the weight itself has more than 2^31
 * elements and is refused by name, so the clamp only keeps the int from overflowing first. */
static int fan_in_of(int64_t n) { return n < INT_MAX ? (int)n : INT_MAX; }

/* ---- layer functions ---- */

static zn_value lower_conv2d(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                             const zn_ast *call)
{
    if (!need_rank(ev, b, &a[0], 3, at[0])) return zn_val_error();
    int k[2], stride[2], dil[2], pad[2];
    if (!in_range(ev, b, "filters", a[1].i, 1, MAX_CH, at[1]) || !get_pair(ev, b, 2, a, at, 1, 64, k) ||
        !get_pair(ev, b, 3, a, at, 1, 64, stride) || !get_pair(ev, b, 5, a, at, 1, 64, dil) ||
        !in_range(ev, b, "groups", a[6].i, 1, MAX_CH, at[6]))
        return zn_val_error();
    if (a[4].kind == ZN_VAL_STRING) {
        if (strcmp(a[4].s, "same") != 0) {
            zn_diag_error(ev->diag, at[4], "%s: pad must be an integer, [h, w] or \"same\", got \"%s\"",
                          b->name, a[4].s);
            return zn_val_error();
        }
        for (int i = 0; i < 2; i++) pad[i] = dil[i] * (k[i] - 1) / 2;
    } else if (a[4].kind == ZN_VAL_INT || is_int_list(&a[4], 2)) {
        if (!get_pair(ev, b, 4, a, at, 0, 1024, pad)) return zn_val_error();
    } else {
        zn_diag_error(ev->diag, at[4], "%s: pad must be an integer, [h, w] or \"same\"", b->name);
        return zn_val_error();
    }
    int64_t cin = shape_of(ev, &a[0])->dim[0], cout = a[1].i, groups = a[6].i;
    if (cin % groups || cout % groups) {
        zn_diag_error(ev->diag, at[6], "%s: groups = %lld must divide both the input channels (%lld) "
                                       "and the filters (%lld)", b->name, (long long)groups, (long long)cin, (long long)cout);
        return zn_val_error();
    }
    const char *owner = owner_name(ev, b->name, call);
    int fan_in = fan_in_of(cin / groups * k[0] * k[1]);
    int64_t wdims[4] = {cout, cin / groups, k[0], k[1]};
    int src[3] = {a[0].node, zn_eval_param(ev, owner, "w", wdims, 4, ZN_INIT_FAN_IN, fan_in, true, call->span), -1};
    int n_src = 2;
    if (a[7].i) src[n_src++] = zn_eval_param(ev, owner, "b", &cout, 1, ZN_INIT_FAN_IN, fan_in, true, call->span);
    zn_attrs attr = zn_attrs_default();
    for (int i = 0; i < 2; i++) {
        attr.kernel[i] = k[i], attr.stride[i] = stride[i], attr.pad[i] = pad[i], attr.dilation[i] = dil[i];
    }
    attr.groups = (int)groups;
    attr.out = (int)cout;
    return zn_eval_emit(ev, op_of(b), src, n_src, &attr, b->name, call->span, call);
}

static zn_value lower_batchnorm(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                                const zn_ast *call)
{
    const zn_shape *s = shape_of(ev, &a[0]);
    if (s->rank < 1 || s->dtype != ZN_DTYPE_F32) return need_rank(ev, b, &a[0], 3, at[0]), zn_val_error();
    double eps = zn_val_number(&a[1]), mom = zn_val_number(&a[2]);
    if (!(zn_f32(eps) > 0 && eps < 1)) { /* 1e-300 is 0 as a float32: a division by zero */
        zn_diag_error(ev->diag, at[1], "%s: eps must be between 0 and 1, got %g", b->name, eps);
        return zn_val_error();
    }
    if (!(mom >= 0 && mom < 1)) {
        zn_diag_error(ev->diag, at[2], "%s: momentum (the share of the old running value kept) "
                                       "must be in [0, 1), got %g", b->name, mom);
        return zn_val_error();
    }
    const char *owner = owner_name(ev, b->name, call);
    int64_t c = s->dim[0];
    int src[5] = {a[0].node,
                  zn_eval_param(ev, owner, "gamma", &c, 1, ZN_INIT_ONES, 0, true, call->span),
                  zn_eval_param(ev, owner, "beta", &c, 1, ZN_INIT_ZEROS, 0, true, call->span),
                  zn_eval_param(ev, owner, "running_mean", &c, 1, ZN_INIT_ZEROS, 0, false, call->span),
                  zn_eval_param(ev, owner, "running_var", &c, 1, ZN_INIT_ONES, 0, false, call->span)};
    zn_attrs attr = zn_attrs_default();
    attr.eps = zn_f32(eps);
    attr.momentum = zn_f32(mom);
    zn_value v = zn_eval_emit(ev, op_of(b), src, 5, &attr, b->name, call->span, call);
    if (v.kind == ZN_VAL_TENSOR)
        for (int i = 3; i < 5; i++)
            if (ev->g->nodes[src[i]].state_of < 0) ev->g->nodes[src[i]].state_of = v.node;
    return v;
}

/* One tensor in, one op: relu, flatten and the other element-wise ops. */
static zn_value lower_unary(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    (void)at;
    return zn_eval_emit(ev, op_of(b), &a[0].node, 1, NULL, b->name, call->span, call);
}

/* One feature map [C, H, W] in, one op: gmp, gap. */
static zn_value lower_unary_chw(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                                const zn_ast *call)
{
    if (!need_rank(ev, b, &a[0], 3, at[0])) return zn_val_error();
    return lower_unary(ev, b, a, at, call);
}

static zn_value lower_pool(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                           const zn_ast *call)
{
    if (!need_rank(ev, b, &a[0], 3, at[0])) return zn_val_error();
    zn_attrs attr = zn_attrs_default();
    /* stride defaults to the window size: its table default 0 stands for that, so a stride the
     * user gave (whose place differs from the call's own, where defaults are placed) must be >= 1 */
    const zn_span *c = &call->span;
    bool stride_given = at[2].file != c->file || at[2].line != c->line || at[2].col != c->col ||
                        at[2].end_line != c->end_line || at[2].end_col != c->end_col;
    if (!get_pair(ev, b, 1, a, at, 1, 1024, attr.kernel) ||
        !get_pair(ev, b, 2, a, at, stride_given ? 1 : 0, 1024, attr.stride) ||
        !get_pair(ev, b, 3, a, at, 0, 1024, attr.pad))
        return zn_val_error();
    for (int i = 0; i < 2; i++) {
        if (attr.stride[i] == 0) attr.stride[i] = attr.kernel[i];
        if (attr.pad[i] * 2 >= attr.kernel[i] + 1 && attr.pad[i] > 0) {
            zn_diag_error(ev->diag, at[3], "%s: padding %d is more than half the window %d", b->name,
                          attr.pad[i], attr.kernel[i]);
            return zn_val_error();
        }
    }
    return zn_eval_emit(ev, op_of(b), &a[0].node, 1, &attr, b->name, call->span, call);
}

static zn_value lower_linear(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                             const zn_ast *call)
{
    if (!need_rank(ev, b, &a[0], 1, at[0]) || !in_range(ev, b, "out", a[1].i, 1, MAX_CH, at[1]))
        return zn_val_error();
    const char *owner = owner_name(ev, b->name, call);
    int64_t in = shape_of(ev, &a[0])->dim[0], out = a[1].i;
    int64_t wdims[2] = {out, in};
    int src[3] = {a[0].node, zn_eval_param(ev, owner, "w", wdims, 2, ZN_INIT_FAN_IN, fan_in_of(in), true, call->span), -1};
    int n_src = 2;
    if (a[2].i) src[n_src++] = zn_eval_param(ev, owner, "b", &out, 1, ZN_INIT_FAN_IN, fan_in_of(in), true, call->span);
    zn_attrs attr = zn_attrs_default();
    attr.out = (int)out;
    return zn_eval_emit(ev, op_of(b), src, n_src, &attr, b->name, call->span, call);
}

static zn_value lower_add(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                          const zn_ast *call)
{
    (void)at;
    int src[2] = {a[0].node, a[1].node};
    return zn_eval_emit(ev, op_of(b), src, 2, NULL, b->name, call->span, call);
}

static zn_value lower_mul(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                          const zn_ast *call)
{
    (void)b, (void)at;
    return zn_eval_mul(ev, call, a[0].node, a[1].node);
}

/* Each dropout gets its own mask stream: the number of dropouts the model made before it. */
static zn_value lower_dropout(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                              const zn_ast *call)
{
    double p = zn_val_number(&a[1]);
    if (!(p >= 0 && zn_f32(p) < 1)) { /* 0.99999999 is 1 as a float32: a division by zero */
        zn_diag_error(ev->diag, at[1], "%s: p (the share of elements zeroed) must be in [0, 1), got %g",
                      b->name, p);
        return zn_val_error();
    }
    zn_attrs attr = zn_attrs_default();
    attr.drop = zn_f32(p);
    for (int i = 0; i < ev->g->n_nodes; i++) attr.stream += ev->g->nodes[i].op == op_of(b);
    return zn_eval_emit(ev, op_of(b), &a[0].node, 1, &attr, b->name, call->span, call);
}

static zn_value lower_scale(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    (void)b;
    return zn_eval_scale(ev, call, a[0].node, zn_val_number(&a[1]), at[1]);
}

/* The node ids of a ZN_ARG_TENSORS list (at most 256). */
static int tensor_ids(zn_eval *ev, const zn_builtin *b, const zn_value *list, zn_span at, int *ids)
{
    if (list->list.n > 256) {
        zn_diag_error(ev->diag, at, "%s takes at most 256 tensors, got %d", b->name, list->list.n);
        return -1;
    }
    for (int i = 0; i < list->list.n; i++) ids[i] = list->list.items[i].node;
    return list->list.n;
}

static zn_value lower_concat(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                             const zn_ast *call)
{
    int ids[256];
    int n = tensor_ids(ev, b, &a[0], at[0], ids);
    if (n < 0 || !in_range(ev, b, "axis", a[1].i, 0, ZN_MAX_RANK - 1, at[1])) return zn_val_error();
    zn_attrs attr = zn_attrs_default();
    attr.axis = (int)a[1].i;
    return zn_eval_emit(ev, op_of(b), ids, n, &attr, b->name, call->span, call);
}

static bool resample_mode(zn_eval *ev, const zn_builtin *b, const zn_value *v, zn_span at, zn_resample_mode *m)
{
    if (strcmp(v->s, "max") == 0) *m = ZN_RESAMPLE_MAX;
    else if (strcmp(v->s, "avg") == 0) *m = ZN_RESAMPLE_AVG;
    else if (strcmp(v->s, "nearest") == 0) *m = ZN_RESAMPLE_NEAREST;
    else {
        zn_diag_error(ev->diag, at, "%s: mode must be \"max\", \"avg\" or \"nearest\", got \"%s\"", b->name, v->s);
        return false;
    }
    return true;
}

static zn_value lower_resample(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                               const zn_ast *call)
{
    if (!need_rank(ev, b, &a[0], 3, at[0])) return zn_val_error();
    zn_attrs attr = zn_attrs_default();
    if (!resample_mode(ev, b, &a[3], at[3], &attr.mode) || !get_pair(ev, b, 1, a, at, 0, 1024, attr.factor) ||
        !get_pair(ev, b, 2, a, at, 0, 1 << 16, attr.size))
        return zn_val_error();
    bool has_factor = attr.factor[0] || attr.factor[1], has_size = attr.size[0] || attr.size[1];
    if (has_factor == has_size) {
        zn_diag_error(ev->diag, call->span, "%s needs exactly one of factor = ... or size = ...", b->name);
        return zn_val_error();
    }
    if (has_factor && (attr.factor[0] < 1 || attr.factor[1] < 1)) {
        zn_diag_error(ev->diag, at[1], "%s: factor must be at least 1", b->name);
        return zn_val_error();
    }
    if (!has_factor) attr.factor[0] = attr.factor[1] = 1;
    return zn_eval_emit(ev, op_of(b), &a[0].node, 1, &attr, b->name, call->span, call);
}

static zn_value lower_transpose(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                                const zn_ast *call)
{
    const zn_value *perm = &a[1];
    if (!is_int_list(perm, 0) || perm->list.n < 1 || perm->list.n > ZN_MAX_RANK) {
        zn_diag_error(ev->diag, at[1], "%s: perm must be a list of 1 to %d axis numbers", b->name, ZN_MAX_RANK);
        return zn_val_error();
    }
    zn_attrs attr = zn_attrs_default();
    for (int i = 0; i < perm->list.n; i++) {
        int64_t p = perm->list.items[i].i;
        if (!in_range(ev, b, "perm", p, 0, perm->list.n - 1, at[1])) return zn_val_error();
        attr.perm[i] = (int)p;
    }
    if (perm->list.n != shape_of(ev, &a[0])->rank) {
        char buf[96];
        zn_diag_error(ev->diag, at[1], "%s: perm has %d axes but the tensor %s has %d", b->name, perm->list.n,
                      zn_shape_str(shape_of(ev, &a[0]), buf, sizeof buf), shape_of(ev, &a[0])->rank);
        return zn_val_error();
    }
    return zn_eval_emit(ev, op_of(b), &a[0].node, 1, &attr, b->name, call->span, call);
}

static zn_value lower_stitch(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                             const zn_ast *call)
{
    int ids[256];
    int n = tensor_ids(ev, b, &a[0], at[0], ids);
    zn_attrs attr = zn_attrs_default();
    if (n < 0 || !get_pair(ev, b, 1, a, at, 1, 1 << 16, attr.size) || !resample_mode(ev, b, &a[2], at[2], &attr.mode))
        return zn_val_error();
    if (attr.mode == ZN_RESAMPLE_NEAREST) {
        zn_diag_error(ev->diag, at[2], "%s: mode chooses how larger inputs are reduced: \"max\" or \"avg\"",
                      b->name);
        return zn_val_error();
    }
    for (int i = 0; i < n; i++)
        if (!need_rank(ev, b, &a[0].list.items[i], 3, at[0])) return zn_val_error();
    return zn_eval_emit(ev, op_of(b), ids, n, &attr, b->name, call->span, call);
}

static zn_value lower_xent(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                           const zn_ast *call)
{
    const zn_node *label = &ev->g->nodes[a[1].node];
    if (!(label->flags & ZN_NODE_LABEL)) {
        zn_diag_error(ev->diag, at[1], "%s: the label must be a class input, declared as "
                                       "`input label: class(10)`", b->name);
        return zn_val_error();
    }
    if (!need_rank(ev, b, &a[0], 1, at[0])) return zn_val_error();
    zn_attrs attr = zn_attrs_default();
    attr.weight = zn_f32(zn_val_number(&a[2]));
    attr.smoothing = zn_f32(zn_val_number(&a[4]));
    if (!(attr.weight >= 0 && attr.weight <= 1e6)) {
        zn_diag_error(ev->diag, at[2], "%s: weight must be from 0 to 1e6, got %g", b->name, zn_val_number(&a[2]));
        return zn_val_error();
    }
    if (!(attr.smoothing >= 0 && attr.smoothing < 1)) {
        zn_diag_error(ev->diag, at[4], "%s: smoothing must be in [0, 1), got %g", b->name, zn_val_number(&a[4]));
        return zn_val_error();
    }
    if (strcmp(a[3].s, "sum") == 0) attr.reduction = ZN_REDUCE_SUM;
    else if (strcmp(a[3].s, "mean") == 0) attr.reduction = ZN_REDUCE_MEAN;
    else {
        zn_diag_error(ev->diag, at[3], "%s: reduction must be \"sum\" or \"mean\", got \"%s\"", b->name,
                      a[3].s);
        return zn_val_error();
    }
    int src[2] = {a[0].node, a[1].node};
    return zn_eval_emit(ev, op_of(b), src, 2, &attr, b->name, call->span, call);
}

static zn_value lower_class(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    if (!in_range(ev, b, "n", a[0].i, 2, 1 << 20, at[0])) return zn_val_error();
    zn_record *r = zn_arena_alloc(ev->arena, sizeof *r);
    r->name = b->name;
    r->n = 1;
    r->vals = zn_arena_alloc(ev->arena, sizeof(zn_value));
    r->vals[0] = a[0];
    r->span = call->span;
    return (zn_value){.kind = ZN_VAL_RECORD, .rec = r};
}

static zn_value lower_range(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    if (a[1].kind != ZN_VAL_INT && a[1].kind != ZN_VAL_STRING) {
        zn_diag_error(ev->diag, at[1], "%s: the end must be an integer, got %s", b->name, zn_val_kind_name(a[1].kind));
        return zn_val_error();
    }
    int64_t lo = a[1].kind == ZN_VAL_INT ? a[0].i : 0, hi = a[1].kind == ZN_VAL_INT ? a[1].i : a[0].i;
    if (hi > lo && (uint64_t)hi - (uint64_t)lo > ZN_MAX_LIST) { /* unsigned: the difference may not fit int64 */
        zn_diag_error(ev->diag, at[0], "range of more than 1,000,000 numbers");
        return zn_val_error();
    }
    zn_value r = {.kind = ZN_VAL_LIST, .list.n = 0};
    r.list.items = zn_eval_list_items(ev, hi > lo ? hi - lo : 0, call->span);
    if (!r.list.items) return zn_val_error();
    for (int64_t i = lo; i < hi; i++) r.list.items[r.list.n++] = zn_val_int(i);
    return r;
}

static zn_value lower_len(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                          const zn_ast *call)
{
    (void)b, (void)call;
    if (a[0].kind == ZN_VAL_LIST) return zn_val_int(a[0].list.n);
    if (a[0].kind == ZN_VAL_STRING) return zn_val_int((int64_t)strlen(a[0].s));
    zn_diag_error(ev->diag, at[0], "len needs a list or a string, not %s", zn_val_kind_phrase(a[0].kind));
    return zn_val_error();
}

/* error("message"): stops the model with the user's own message (for checks in blocks) */
static zn_value lower_error(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    (void)b, (void)at;
    zn_diag_error(ev->diag, call->span, "%s", a[0].s);
    return zn_val_error();
}

static zn_value lower_shape(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                            const zn_ast *call)
{
    (void)b, (void)at, (void)call;
    const zn_shape *s = shape_of(ev, &a[0]);
    zn_value r = {.kind = ZN_VAL_LIST, .list.n = s->rank};
    r.list.items = zn_arena_alloc(ev->arena, sizeof(zn_value) * (s->rank + 1));
    for (int i = 0; i < s->rank; i++) r.list.items[i] = zn_val_int(s->dim[i]);
    return r;
}

#define T ZN_ARG_TENSOR
#define TS ZN_ARG_TENSORS
#define I ZN_ARG_INT
#define F ZN_ARG_FLOAT
#define B ZN_ARG_BOOL
#define S ZN_ARG_STRING
#define P ZN_ARG_PAIR
#define A ZN_ARG_ANY

/* The parameters of each lowering, by op_list.h's lower column. */
#define ARGS_conv2d {{"x", T, NULL}, {"filters", I, NULL}, {"kernel", P, "3"}, {"stride", P, "1"}, \
                     {"pad", A, "\"same\""}, {"dilation", P, "1"}, {"groups", I, "1"}, {"bias", B, "true"}}
#define ARGS_batchnorm {{"x", T, NULL}, {"eps", F, "1e-5"}, {"momentum", F, "0.9"}}
#define ARGS_unary {{"x", T, NULL}}
#define ARGS_unary_chw ARGS_unary
#define ARGS_pool {{"x", T, NULL}, {"size", P, "2"}, {"stride", P, "0"}, {"pad", P, "0"}}
#define ARGS_linear {{"x", T, NULL}, {"out", I, NULL}, {"bias", B, "true"}}
#define ARGS_add {{"a", T, NULL}, {"b", T, NULL}}
#define ARGS_scale {{"x", T, NULL}, {"by", F, NULL}}
#define ARGS_mul {{"a", T, NULL}, {"b", T, NULL}}
#define ARGS_dropout {{"x", T, NULL}, {"p", F, "0.5"}}
#define ARGS_concat {{"xs", TS, NULL}, {"axis", I, "0"}}
#define ARGS_resample {{"x", T, NULL}, {"factor", P, "0"}, {"size", P, "0"}, {"mode", S, "\"max\""}}
#define ARGS_transpose {{"x", T, NULL}, {"perm", A, NULL}}
#define ARGS_stitch {{"xs", TS, NULL}, {"size", P, NULL}, {"mode", S, "\"max\""}}
#define ARGS_xent {{"logits", T, NULL}, {"label", T, NULL}, {"weight", F, "1.0"}, \
                   {"reduction", S, "\"sum\""}, {"smoothing", F, "0.0"}}

/* One row per language name of each op in graph/op_list.h (the lang column arrives as its count,
 * name and alias), then the functions that are no op. */
#define OP_ROWS(E, name, kind, min_src, max_src, srcs, attrs, infer, macs, grad, in_place,       \
                recompute, lower, lang)                                                          \
    LANG_ROWS(lower, lang)
#define LANG_ROWS(lower, n, name, alias) LANG_ROWS_##n(lower, name, alias)
#define LANG_ROWS_0(lower, name, alias)
#define LANG_ROWS_1(lower, name, alias) {name, ARGS_##lower, lower_##lower},
#define LANG_ROWS_2(lower, name, alias) LANG_ROWS_1(lower, name, "") LANG_ROWS_1(lower, alias, "")

const zn_builtin zn_layer_builtins[] = {
    ZN_OP_EACH(OP_ROWS)
    {"class", {{"n", I, NULL}}, lower_class},
    {"range", {{"a", I, NULL}, {"b", A, "\"none\""}}, lower_range},
    {"len", {{"x", A, NULL}}, lower_len},
    {"shape", {{"x", T, NULL}}, lower_shape},
    {"error", {{"message", S, NULL}}, lower_error},
};
const int zn_n_layer_builtins = sizeof zn_layer_builtins / sizeof zn_layer_builtins[0];
