/* recipe_eval.c: the `train { }` section: its settings functions (sgd, piecewise, pad_crop, ...),
 * the check of every key and value, and their conversion into a zn_recipe. Command-line
 * overrides (--set train.KEY=VALUE) replace a key's expression before conversion. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval.h"
#include "graph/budget.h"
#include "recipe_eval.h"

/* Every settings function returns a record of its bound arguments. */
static zn_value lower_record(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                             const zn_ast *call)
{
    (void)at;
    zn_record *r = zn_arena_alloc(ev->arena, sizeof *r);
    r->name = b->name;
    while (r->n < ZN_MAX_ARGS && b->args[r->n].name) r->n++;
    const char **keys = zn_arena_alloc(ev->arena, sizeof(char *) * (r->n + 1));
    r->vals = zn_arena_alloc(ev->arena, sizeof(zn_value) * (r->n + 1));
    for (int i = 0; i < r->n; i++) keys[i] = b->args[i].name, r->vals[i] = a[i];
    r->keys = keys;
    r->span = call->span;
    return (zn_value){.kind = ZN_VAL_RECORD, .rec = r};
}

#define F ZN_ARG_FLOAT
#define B ZN_ARG_BOOL
#define I ZN_ARG_INT
#define S ZN_ARG_STRING
#define NS ZN_ARG_NUMBERS

const zn_builtin zn_train_builtins[] = {
    {"sgd", {{"momentum", F, "0.9"}, {"nesterov", B, "false"}, {"weight_decay", F, "0.0"}}, lower_record},
    {"adam", {{"beta1", F, "0.9"}, {"beta2", F, "0.999"}, {"eps", F, "1e-8"}, {"weight_decay", F, "0.0"}},
     lower_record},
    {"piecewise", {{"epochs", NS, NULL}, {"values", NS, NULL}, {"per_example", B, "false"}}, lower_record},
    {"constant", {{"value", F, NULL}, {"per_example", B, "false"}}, lower_record},
    {"cosine", {{"peak", F, NULL}, {"warmup", F, "0.0"}, {"per_example", B, "false"}}, lower_record},
    {"pad_crop", {{"pad", I, "4"}, {"mode", S, "\"reflect\""}}, lower_record},
    {"flip", {{"p", F, "0.5"}}, lower_record},
    {"cutout", {{"size", I, "8"}}, lower_record},
    {"folder", {{"path", S, "\"\""}, {"size", S, "\"resize\""}}, lower_record},
    {"npy", {{"path", S, "\"\""}, {"layout", S, "\"nhwc\""}, {"classes", I, "10"}}, lower_record},
};
const int zn_n_train_builtins = sizeof zn_train_builtins / sizeof zn_train_builtins[0];

static const char *const train_keys[] = {"data", "batch", "epochs", "seed", "drop_last", "shuffle",
                                         "optimizer", "lr", "momentum", "augment", "mean", "std",
                                         "memory_budget"};
enum { N_KEYS = sizeof train_keys / sizeof train_keys[0] };

static const zn_value *rec_get(const zn_record *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->keys[i], key) == 0) return &r->vals[i];
    return NULL;
}
static double rec_num(const zn_record *r, const char *key) { return zn_val_number(rec_get(r, key)); }

static bool want(zn_eval *ev, bool ok, zn_span at, const char *key, const char *what, const zn_value *v)
{
    if (ok) return true;
    char buf[128];
    zn_diag_error(ev->diag, at, "train: '%s' must be %s, got %s", key, what, zn_val_str(v, buf, sizeof buf));
    return false;
}

static bool is_rec(const zn_value *v, const char *a, const char *b, const char *c)
{
    if (v->kind != ZN_VAL_RECORD) return false;
    const char *n = v->rec->name;
    return strcmp(n, a) == 0 || (b && strcmp(n, b) == 0) || (c && strcmp(n, c) == 0);
}

/* A negative or infinite rate, or a momentum of 1 or more, makes the weights diverge (NaN):
 * refused here, at the setting, rather than as a NaN loss at run time. */
static bool schedule_ok(zn_eval *ev, const zn_schedule *s, zn_span at, const char *key)
{
    bool lr = strcmp(key, "lr") == 0;
    for (int i = 0; i < (s->kind == ZN_LR_PIECEWISE ? s->n_knots : 1); i++) {
        if (lr ? !(s->v[i] >= 0 && isfinite(s->v[i])) : !(s->v[i] >= 0 && s->v[i] < 1)) {
            zn_diag_error(ev->diag, at, "train: '%s' values must be %s, got %g", key,
                          lr ? "finite and not negative" : "in [0, 1)", s->v[i]);
            return false;
        }
        if (!isfinite(s->t[i]) || (s->kind == ZN_LR_COSINE && s->t[i] < 0)) {
            zn_diag_error(ev->diag, at, "train: '%s': %s must be finite%s, got %g", key,
                          s->kind == ZN_LR_COSINE ? "cosine's warmup" : "piecewise's epochs",
                          s->kind == ZN_LR_COSINE ? " and not negative" : "", s->t[i]);
            return false;
        }
    }
    return true;
}

static bool to_schedule(zn_eval *ev, const zn_value *v, zn_span at, const char *key, zn_schedule *s)
{
    memset(s, 0, sizeof *s);
    if (zn_val_is_number(v)) {
        s->kind = ZN_LR_CONSTANT;
        s->v[0] = zn_f32(zn_val_number(v));
        return schedule_ok(ev, s, at, key);
    }
    if (!want(ev, is_rec(v, "piecewise", "constant", "cosine"), at, key,
              "a number, piecewise(epochs, values), constant(value) or cosine(peak)", v))
        return false;
    const zn_record *r = v->rec;
    s->per_example = rec_get(r, "per_example")->i != 0;
    if (strcmp(r->name, "constant") == 0) {
        s->kind = ZN_LR_CONSTANT;
        s->v[0] = zn_f32(rec_num(r, "value"));
    } else if (strcmp(r->name, "cosine") == 0) {
        s->kind = ZN_LR_COSINE;
        s->v[0] = zn_f32(rec_num(r, "peak"));
        s->t[0] = zn_f32(rec_num(r, "warmup"));
    } else {
        const zn_value *t = rec_get(r, "epochs"), *y = rec_get(r, "values");
        if (t->list.n != y->list.n || t->list.n < 1 || t->list.n > ZN_MAX_KNOTS) {
            zn_diag_error(ev->diag, r->span, "piecewise needs as many epochs as values (1 to %d), got %d and %d",
                          ZN_MAX_KNOTS, t->list.n, y->list.n);
            return false;
        }
        s->kind = ZN_LR_PIECEWISE;
        s->n_knots = t->list.n;
        for (int i = 0; i < s->n_knots; i++) {
            s->t[i] = zn_f32(zn_val_number(&t->list.items[i]));
            s->v[i] = zn_f32(zn_val_number(&y->list.items[i]));
            if (i > 0 && !(s->t[i] > s->t[i - 1])) {
                zn_diag_error(ev->diag, r->span, "piecewise: the epochs must increase (%g then %g)",
                              s->t[i - 1], s->t[i]);
                return false;
            }
        }
    }
    return schedule_ok(ev, s, at, key);
}

/* A settings function's integer argument, checked in lo..hi before it is narrowed to an int. */
static bool rec_int(zn_eval *ev, const zn_record *rec, const char *key, int lo, int hi, int *out)
{
    int64_t v = rec_get(rec, key)->i;
    if (v < lo || v > hi) {
        zn_diag_error(ev->diag, rec->span, "%s: %s must be from %d to %d, got %lld", rec->name, key, lo, hi,
                      (long long)v);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool to_augment(zn_eval *ev, const zn_value *v, zn_span at, zn_recipe *r)
{
    if (!want(ev, v->kind == ZN_VAL_LIST && v->list.n <= ZN_MAX_AUGMENT, at, "augment",
              "a list of pad_crop(...), flip(...), cutout(...)", v))
        return false;
    r->n_augment = 0;
    for (int i = 0; i < v->list.n; i++) {
        const zn_value *a = &v->list.items[i];
        if (!want(ev, is_rec(a, "pad_crop", "flip", "cutout"), at, "augment",
                  "a list of pad_crop(...), flip(...), cutout(...)", a))
            return false;
        zn_augment *g = &r->augment[r->n_augment++];
        memset(g, 0, sizeof *g);
        const zn_record *rec = a->rec;
        if (strcmp(rec->name, "pad_crop") == 0) {
            g->kind = ZN_AUG_PAD_CROP;
            if (!rec_int(ev, rec, "pad", 0, 64, &g->size)) return false;
            const char *mode = rec_get(rec, "mode")->s;
            if (strcmp(mode, "reflect") == 0) g->pad = ZN_PAD_REFLECT;
            else if (strcmp(mode, "zero") == 0) g->pad = ZN_PAD_ZERO;
            else {
                zn_diag_error(ev->diag, rec->span, "pad_crop: mode must be \"reflect\" or \"zero\", got \"%s\"", mode);
                return false;
            }
        } else if (strcmp(rec->name, "flip") == 0) {
            g->kind = ZN_AUG_FLIP;
            g->p = zn_f32(rec_num(rec, "p"));
            if (!(g->p >= 0 && g->p <= 1)) {
                zn_diag_error(ev->diag, rec->span, "flip: p must be from 0 to 1, got %g", g->p);
                return false;
            }
        } else {
            g->kind = ZN_AUG_CUTOUT;
            if (!rec_int(ev, rec, "size", 1, 1024, &g->size)) return false;
        }
    }
    return true;
}

static bool to_channels(zn_eval *ev, const zn_value *v, zn_span at, const char *key, float *out, int *n)
{
    bool ok = v->kind == ZN_VAL_LIST && (v->list.n == 1 || v->list.n == 3);
    bool std = strcmp(key, "std") == 0; /* images are divided by it */
    for (int i = 0; ok && i < v->list.n; i++) {
        const zn_value *x = &v->list.items[i];
        float f = zn_val_is_number(x) ? zn_f32(zn_val_number(x)) : NAN;
        ok = isfinite(f) && (!std || f > 0); /* 1e-300 is 0 as a float32 */
    }
    if (!want(ev, ok, at, key, std ? "a list of 1 or 3 positive numbers (0-255 scale)"
                                   : "a list of 1 or 3 numbers (0-255 scale)", v))
        return false;
    for (int i = 0; i < v->list.n; i++) out[i] = zn_f32(zn_val_number(&v->list.items[i]));
    *n = v->list.n;
    return true;
}

static bool int_in(zn_eval *ev, const zn_value *v, zn_span at, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    char what[96];
    snprintf(what, sizeof what, "an integer from %lld to %lld", (long long)lo, (long long)hi);
    if (!want(ev, v->kind == ZN_VAL_INT && v->i >= lo && v->i <= hi, at, key, what, v)) return false;
    *out = v->i;
    return true;
}

/* data = folder(path, size): an image folder (data/image_folder.c); its path may be left to --data. */
static bool to_folder(zn_eval *ev, const zn_record *f, zn_span at, zn_recipe *r)
{
    const char *size = rec_get(f, "size")->s, *path = rec_get(f, "path")->s;
    if (strcmp(size, "resize") != 0 && strcmp(size, "crop") != 0) {
        zn_diag_error(ev->diag, at, "train: folder(size = \"%s\"): size must be \"resize\" or \"crop\"", size);
        return false;
    }
    if (strlen(path) >= sizeof r->data_path) {
        zn_diag_error(ev->diag, at, "train: folder(\"%.40s...\"): the path is longer than %zu bytes", path,
                      sizeof r->data_path - 1);
        return false;
    }
    snprintf(r->data, sizeof r->data, "folder");
    snprintf(r->data_path, sizeof r->data_path, "%s", path);
    r->data_fit = size[0] == 'c' ? ZN_FIT_CROP : ZN_FIT_RESIZE;
    return true;
}

/* data = npy(path, layout, classes): NumPy arrays (docs/data.md). */
static bool to_npy(zn_eval *ev, const zn_record *n, zn_recipe *r)
{
    const char *path = rec_get(n, "path")->s, *layout = rec_get(n, "layout")->s;
    int64_t classes = rec_get(n, "classes")->i;
    if (strlen(path) >= sizeof r->npy.path) {
        zn_diag_error(ev->diag, n->span, "npy: the path is longer than %zu bytes", sizeof r->npy.path - 1);
        return false;
    }
    if (strcmp(layout, "nhwc") != 0 && strcmp(layout, "nchw") != 0) {
        zn_diag_error(ev->diag, n->span, "npy: layout must be \"nhwc\" or \"nchw\", got \"%s\"", layout);
        return false;
    }
    if (classes < 1 || classes > 16) {
        zn_diag_error(ev->diag, n->span, "npy: classes must be from 1 to 16, got %lld", (long long)classes);
        return false;
    }
    snprintf(r->data, sizeof r->data, "npy");
    snprintf(r->npy.path, sizeof r->npy.path, "%s", path);
    r->npy.nchw = layout[1] == 'c';
    r->npy.classes = (int)classes;
    return true;
}

/* Applies one key's value to the recipe; false after reporting. */
static bool apply(zn_eval *ev, const char *key, const zn_value *v, zn_span at, zn_recipe *r)
{
    int64_t i;
    if (v->kind == ZN_VAL_ERROR) return false;
    if (strcmp(key, "data") == 0) {
        if (is_rec(v, "folder", NULL, NULL)) return to_folder(ev, v->rec, at, r);
        if (is_rec(v, "npy", NULL, NULL)) return to_npy(ev, v->rec, r);
        bool ok = v->kind == ZN_VAL_STRING &&
                  (strcmp(v->s, "cifar10") == 0 || strcmp(v->s, "fashion_mnist") == 0);
        if (!want(ev, ok, at, key, "\"cifar10\", \"fashion_mnist\", folder(...) or npy(\"PATH\")", v)) return false;
        snprintf(r->data, sizeof r->data, "%s", v->s);
        r->data_path[0] = '\0';
        memset(&r->npy, 0, sizeof r->npy); /* a file's npy(path) must not become --data for another set */
    } else if (strcmp(key, "batch") == 0) {
        if (!int_in(ev, v, at, key, 1, 65536, &i)) return false;
        r->batch = (int)i;
    } else if (strcmp(key, "epochs") == 0) {
        if (!int_in(ev, v, at, key, 1, 100000, &i)) return false;
        r->epochs = (int)i;
    } else if (strcmp(key, "seed") == 0) {
        if (!int_in(ev, v, at, key, 0, INT64_MAX, &i)) return false;
        r->seed = (unsigned long long)i;
    } else if (strcmp(key, "drop_last") == 0 || strcmp(key, "shuffle") == 0) {
        if (!want(ev, v->kind == ZN_VAL_BOOL, at, key, "true or false", v)) return false;
        *(key[0] == 'd' ? &r->drop_last : &r->shuffle) = v->i != 0;
    } else if (strcmp(key, "optimizer") == 0) {
        if (!want(ev, is_rec(v, "sgd", "adam", NULL), at, key, "sgd(...) or adam(...)", v)) return false;
        const zn_record *o = v->rec;
        zn_optimizer_cfg *c = &r->optimizer;
        c->weight_decay = zn_f32(rec_num(o, "weight_decay"));
        if (strcmp(o->name, "sgd") == 0) {
            c->kind = ZN_OPTIM_SGD;
            c->momentum = zn_f32(rec_num(o, "momentum"));
            c->nesterov = rec_get(o, "nesterov")->i != 0;
            if (!(c->momentum >= 0 && c->momentum < 1)) {
                zn_diag_error(ev->diag, o->span, "sgd: momentum must be in [0, 1), got %g", c->momentum);
                return false;
            }
        } else {
            c->kind = ZN_OPTIM_ADAM;
            c->beta1 = zn_f32(rec_num(o, "beta1"));
            c->beta2 = zn_f32(rec_num(o, "beta2"));
            c->eps = zn_f32(rec_num(o, "eps"));
            /* beta = 1 divides by zero in the bias correction; eps = 0 gives 0/0 at a zero gradient */
            float beta[2] = {c->beta1, c->beta2};
            for (int k = 0; k < 2; k++)
                if (!(beta[k] >= 0 && beta[k] < 1)) {
                    zn_diag_error(ev->diag, o->span, "adam: beta%d must be in [0, 1), got %g", k + 1, beta[k]);
                    return false;
                }
            if (!(c->eps > 0 && isfinite(c->eps))) {
                zn_diag_error(ev->diag, o->span, "adam: eps must be a positive number, got %g", c->eps);
                return false;
            }
        }
        if (!(c->weight_decay >= 0 && c->weight_decay < 1)) {
            zn_diag_error(ev->diag, o->span, "%s: weight_decay must be in [0, 1), got %g", o->name, c->weight_decay);
            return false;
        }
    } else if (strcmp(key, "lr") == 0) {
        return to_schedule(ev, v, at, key, &r->lr);
    } else if (strcmp(key, "momentum") == 0) {
        if (zn_val_is_number(v)) {
            float mu = zn_f32(zn_val_number(v));
            if (!(mu >= 0 && mu < 1)) { /* as sgd(momentum = ...) */
                zn_diag_error(ev->diag, at, "train: 'momentum' must be in [0, 1), got %g", mu);
                return false;
            }
            r->optimizer.momentum = mu;
            r->has_momentum_schedule = false;
            return true;
        }
        r->has_momentum_schedule = true;
        return to_schedule(ev, v, at, key, &r->momentum);
    } else if (strcmp(key, "augment") == 0) {
        return to_augment(ev, v, at, r);
    } else if (strcmp(key, "memory_budget") == 0) { /* the planner fits a training step in it */
        if (v->kind != ZN_VAL_STRING) {
            if (!int_in(ev, v, at, key, 1, INT64_MAX, &i)) return false;
            r->memory_budget = (size_t)i;
        } else if (!want(ev, zn_budget_parse(v->s, &r->memory_budget), at, key,
                         "bytes or a size such as \"512M\", \"1G\" or \"1.5GiB\"", v))
            return false;
    } else if (strcmp(key, "mean") == 0 || strcmp(key, "std") == 0) {
        int n;
        if (!to_channels(ev, v, at, key, key[0] == 'm' ? r->mean : r->std, &n)) return false;
        r->n_norm = n;
    }
    return true;
}

/* at: the setting in the file; a --set override has no place to show (its value would be the
 * caret's target), so its message names the option instead. */
static bool known_key(zn_eval *ev, const char *key, const zn_span *at)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(train_keys[i], key) == 0) return true;
    if (at) zn_diag_error(ev->diag, *at, "unknown train setting '%s'", key);
    else zn_diag_error(ev->diag, (zn_span){0}, "--set train.%s: unknown train setting '%s'", key, key);
    const char *near = zn_did_you_mean(key, (const char *const *)train_keys, N_KEYS);
    if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
    else zn_diag_hint(ev->diag, "settings: data, batch, epochs, seed, drop_last, shuffle, optimizer, lr, "
                                "momentum, augment, mean, std, memory_budget");
    return false;
}

void zn_recipe_eval(zn_eval *ev, zn_scope *model_params, const zn_ast *train, const zn_train_override *ovr,
                   int n_ovr, zn_recipe *r)
{
    zn_recipe_default(r);
    ev->in_train = true;
    for (int i = 0; train && i < train->n_kids; i++) {
        const zn_ast *s = train->kids[i];
        if (s->kind != ZN_AST_ASSIGN || s->flag) {
            zn_diag_error(ev->diag, s->span, "only `key = value` settings are allowed in train");
            continue;
        }
        for (int j = 0; j < i; j++)
            if (train->kids[j]->kind == ZN_AST_ASSIGN && strcmp(train->kids[j]->name, s->name) == 0) {
                zn_diag_error(ev->diag, s->span, "train setting '%s' is given twice", s->name);
                zn_diag_note(ev->diag, train->kids[j]->span, "first given here");
            }
        if (!known_key(ev, s->name, &s->span)) continue;
        bool overridden = false;
        for (int j = 0; j < n_ovr; j++) overridden |= strcmp(ovr[j].key, s->name) == 0;
        if (overridden) continue;
        zn_value v = zn_eval_expr(ev, model_params, s->a);
        apply(ev, s->name, &v, s->a->span, r);
    }
    for (int j = 0; j < n_ovr; j++) {
        if (!known_key(ev, ovr[j].key, NULL)) continue;
        if (!ovr[j].expr) continue;
        zn_value v = zn_eval_expr(ev, model_params, ovr[j].expr);
        apply(ev, ovr[j].key, &v, ovr[j].expr->span, r);
    }
    ev->in_train = false;
}
