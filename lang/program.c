/* program.c: loads a model file and its imports (`use`, relative to the importing file, then the
 * stdlib; cycles reported), applies --set values to model parameters and train settings,
 * evaluates the model body and checks the result (heads exist, every loss is a head). */
#include "program.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval.h"
#include "graph/util.h"
#include "parse.h"
#include "recipe_eval.h"

typedef struct {
    zn_eval *ev;
    const char *stdlib;
    const char *loading[32]; /* import chain being loaded (cycle check) */
    int n_loading;
    const char **loaded;     /* every file already loaded */
    int n_loaded;
    const zn_ast *model, *train;
    const zn_ast **blocks;
    int n_blocks, cap_blocks;
    bool too_many_blocks;    /* more than MAX_BLOCKS: said once */
} zn_loader;

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Candidate paths for `use "name"` from file `from`: beside it, in the stdlib, in its parent. */
static bool resolve_use(const zn_loader *L, const char *from, const char *name, char *out, size_t len,
                        char *tried, size_t tried_len)
{
    char cand[3][4096];
    const char *slash = strrchr(from, '/');
    int dir_len = slash && name[0] != '/' ? (int)(slash - from) : 0;
    int lens[3] = {
        dir_len ? snprintf(cand[0], sizeof cand[0], "%.*s/%s", dir_len, from, name)
                : snprintf(cand[0], sizeof cand[0], "%s", name),
        snprintf(cand[1], sizeof cand[1], "%s/%s", L->stdlib, name),
        snprintf(cand[2], sizeof cand[2], "%s/../%s", L->stdlib, name),
    };
    tried[0] = '\0';
    for (int i = 0; i < 3; i++) {
        if (lens[i] >= (int)sizeof cand[i]) continue; /* too long to be a path */
        if (file_exists(cand[i]) && snprintf(out, len, "%s", cand[i]) < (int)len) return true;
        size_t used = strlen(tried);
        if (snprintf(tried + used, tried_len - used, "%s%s", i ? ", " : "", cand[i]) >= (int)(tried_len - used))
            break;
    }
    return false;
}

static void load_file(zn_loader *L, const char *path, zn_span at, bool is_main);

/* Blocks a program may define: each new one is checked against all before it, so an absurd
 * number (a generated file of 100,000) would take minutes. */
#define MAX_BLOCKS 10000

static void add_block(zn_loader *L, const zn_ast *blk)
{
    zn_eval *ev = L->ev;
    if (L->n_blocks == MAX_BLOCKS) {
        if (!L->too_many_blocks) zn_diag_error(ev->diag, blk->span, "more than %d blocks", MAX_BLOCKS);
        L->too_many_blocks = true;
        return;
    }
    for (int i = 0; i < L->n_blocks; i++)
        if (strcmp(L->blocks[i]->name, blk->name) == 0) {
            zn_diag_error(ev->diag, blk->span, "block '%s' is already defined", blk->name);
            zn_diag_note(ev->diag, L->blocks[i]->span, "first defined here");
            return;
        }
    if (zn_builtin_find(zn_layer_builtins, zn_n_layer_builtins, blk->name)) {
        zn_diag_error(ev->diag, blk->span, "block '%s' has the name of a built-in layer function", blk->name);
        return;
    }
    const zn_ast *params = blk->b;
    for (int i = 0; i < params->n_kids; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(params->kids[i]->name, params->kids[j]->name) == 0)
                zn_diag_error(ev->diag, params->kids[i]->span, "parameter '%s' appears twice", params->kids[i]->name);
    if (L->n_blocks == L->cap_blocks) {
        L->cap_blocks = L->cap_blocks ? 2 * L->cap_blocks : 16;
        L->blocks = zn_realloc(L->blocks, sizeof *L->blocks * L->cap_blocks);
    }
    L->blocks[L->n_blocks++] = blk;
}

static void load_items(zn_loader *L, const zn_ast *file, const char *path, bool is_main)
{
    zn_eval *ev = L->ev;
    for (int i = 0; i < file->n_kids; i++) {
        const zn_ast *it = file->kids[i];
        switch (it->kind) {
        case ZN_AST_USE: {
            char found[4096], tried[8192];
            if (!resolve_use(L, path, it->sval, found, sizeof found, tried, sizeof tried)) {
                zn_diag_error(ev->diag, it->span, "cannot find \"%s\"", it->sval);
                zn_diag_hint(ev->diag, "looked for %s", tried);
                break;
            }
            load_file(L, found, it->span, false);
            break;
        }
        case ZN_AST_BLOCK: add_block(L, it); break;
        case ZN_AST_MODEL:
        case ZN_AST_TRAIN: {
            const char *what = it->kind == ZN_AST_MODEL ? "model" : "train section";
            const zn_ast **slot = it->kind == ZN_AST_MODEL ? &L->model : &L->train;
            if (!is_main) {
                zn_diag_error(ev->diag, it->span, "an imported file may only define blocks; this is a %s", what);
                zn_diag_hint(ev->diag, "move shared blocks into a file of their own and `use` that");
            } else if (*slot) {
                zn_diag_error(ev->diag, it->span, "a file has one %s; this is a second", what);
                zn_diag_note(ev->diag, (*slot)->span, "the first is here");
            } else {
                *slot = it;
            }
            break;
        }
        default: break;
        }
    }
}

static void load_file(zn_loader *L, const char *path, zn_span at, bool is_main)
{
    zn_eval *ev = L->ev;
    for (int i = 0; i < L->n_loading; i++)
        if (zn_same_file(L->loading[i], path)) {
            char chain[2048] = "";
            size_t used = 0;
            for (int j = i; j < L->n_loading && used < sizeof chain; j++)
                used += snprintf(chain + used, sizeof chain - used, "%s -> ", L->loading[j]);
            if (used < sizeof chain) snprintf(chain + used, sizeof chain - used, "%s", path);
            zn_diag_error(ev->diag, at, "import cycle: %s", chain);
            return;
        }
    for (int i = 0; i < L->n_loaded; i++)
        if (zn_same_file(L->loaded[i], path)) return; /* already imported through another path */
    if (L->n_loading == (int)(sizeof L->loading / sizeof L->loading[0])) {
        zn_diag_error(ev->diag, at, "imports nested more than 32 deep");
        return;
    }
    zn_source *src = zn_diag_load(ev->diag, path);
    if (!src) {
        zn_diag_error(ev->diag, at, "cannot read '%s': %s", path, strerror(errno));
        return;
    }
    L->loaded = zn_realloc(L->loaded, sizeof *L->loaded * (L->n_loaded + 1));
    L->loaded[L->n_loaded++] = src->path;
    L->loading[L->n_loading++] = src->path;
    int before = ev->diag->n_errors;
    zn_ast *file = zn_parse_source(ev->diag, ev->arena, src);
    if (ev->diag->n_errors == before) load_items(L, file, src->path, is_main);
    L->n_loading--;
}

/* Parses the --set values; model parameters go to *params, train settings to *ovr. */
static bool parse_settings(zn_loader *L, const zn_load_opts *o, zn_train_override *ovr, int *n_ovr,
                           const zn_ast **param_vals)
{
    zn_eval *ev = L->ev;
    const zn_ast *params = L->model->b;
    bool ok = true;
    *n_ovr = 0;
    for (int i = 0; i < o->n_settings; i++) {
        const zn_setting *s = &o->settings[i];
        char name[128];
        snprintf(name, sizeof name, "--set %s", s->key);
        zn_source *src = zn_diag_add_text(ev->diag, name, s->value);
        zn_ast *e = zn_parse_expression(ev->diag, ev->arena, src);
        if (!e) {
            ok = false;
            continue;
        }
        if (strncmp(s->key, "train.", 6) == 0) {
            ovr[(*n_ovr)++] = (zn_train_override){s->key + 6, e};
            continue;
        }
        int k = -1;
        const char *cands[64];
        int nc = 0;
        for (int j = 0; j < params->n_kids; j++) {
            if (strcmp(params->kids[j]->name, s->key) == 0) k = j;
            if (nc < 64) cands[nc++] = params->kids[j]->name;
        }
        if (k < 0) {
            zn_diag_error(ev->diag, (zn_span){0}, "--set %s: model '%s' has no parameter '%s'", s->key,
                          L->model->name, s->key);
            const char *near = zn_did_you_mean(s->key, cands, nc);
            if (near) zn_diag_hint(ev->diag, "did you mean '%s'?", near);
            else if (nc) {
                char list[512] = "";
                for (int j = 0, used = 0; j < nc && used < 480; j++)
                    used += snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", cands[j]);
                zn_diag_hint(ev->diag, "its parameters: %s; train settings are set as train.KEY", list);
            }
            ok = false;
            continue;
        }
        param_vals[k] = e;
    }
    return ok;
}

/* Every loss must be a head, and a model needs at least one. */
static void check_model(zn_eval *ev, const zn_ast *model)
{
    int heads = 0;
    for (int i = 0; i < ev->g->n_nodes; i++) {
        const zn_node *n = &ev->g->nodes[i];
        if (n->op != ZN_OP_XENT) continue;
        if (n->flags & ZN_NODE_LOSS) heads++;
        else {
            zn_diag_error(ev->diag, n->span, "this loss is not a head, so nothing would train on it");
            zn_diag_hint(ev->diag, "write `head NAME = xent(...)`");
        }
    }
    if (heads == 0) {
        zn_diag_error(ev->diag, model->span, "model '%s' has no loss head", model->name);
        zn_diag_hint(ev->diag, "add one, e.g. `head out = xent(logits, label)` with `input label: class(10)`");
    }
}

/* The standard library's folder: the caller's, $ZNET_STDLIB, the installed one (PREFIX/share/znet/
 * stdlib for PREFIX/bin/znet, so an installed znet needs no source tree), else the stdlib/ of the
 * source tree this build was configured from. buf holds the installed path when that is chosen. */
static const char *stdlib_dir(const zn_load_opts *o, char *buf, size_t len)
{
    const char *env = getenv("ZNET_STDLIB");
    struct stat st;
    if (o->stdlib_dir) return o->stdlib_dir;
    if (env && *env) return env;
    if (zn_beside_exe("../share/znet/stdlib", buf, len) && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return buf;
    return ZNET_STDLIB_DIR;
}

bool zn_program_load(const zn_load_opts *o, zn_diag *d, zn_graph *g, zn_recipe *r)
{
    zn_arena *arena = zn_arena_new();
    zn_graph_init(g, "");
    zn_recipe_default(r);
    zn_eval ev = {.diag = d, .arena = arena, .g = g, .prefix = "", .cluster = "", .budget = 10000000};
    char installed[PATH_MAX];
    zn_loader L = {.ev = &ev, .stdlib = stdlib_dir(o, installed, sizeof installed)};
    int before = d->n_errors;
    load_file(&L, o->path, (zn_span){o->path, 0, 0, 0, 0}, true);
    if (d->n_errors == before && !L.model) {
        zn_diag_error(d, (zn_span){o->path, 0, 0, 0, 0}, "no model in this file");
        zn_diag_hint(d, "a model file has `model NAME(params) { ... }`");
    }
    if (d->n_errors == before) {
        ev.blocks = L.blocks;
        ev.n_blocks = L.n_blocks;
        zn_graph_free(g); /* still empty: start again under the model's name */
        zn_graph_init(g, L.model->name);
        const zn_ast *params = L.model->b;
        const zn_ast **given = zn_calloc(params->n_kids + 1, sizeof *given);
        zn_train_override *ovr = zn_calloc(o->n_settings + 1, sizeof *ovr);
        int n_ovr = 0;
        zn_scope sc = {0};
        if (parse_settings(&L, o, ovr, &n_ovr, given)) {
            for (int i = 0; i < params->n_kids; i++) {
                const zn_ast *p = params->kids[i];
                for (int j = 0; j < i; j++)
                    if (strcmp(params->kids[j]->name, p->name) == 0)
                        zn_diag_error(d, p->span, "parameter '%s' appears twice", p->name);
                const zn_ast *e = given[i] ? given[i] : p->a;
                if (!e) {
                    zn_diag_error(d, p->span, "model parameter '%s' has no default; give it with --set %s=VALUE",
                                  p->name, p->name);
                    continue;
                }
                zn_scope_set(&ev, &sc, p->name, zn_eval_expr(&ev, &sc, e), false, p->span);
            }
            if (d->n_errors == before) {
                zn_recipe_eval(&ev, &sc, L.train, ovr, n_ovr, r);
                zn_eval_body(&ev, &sc, L.model, false);
                if (d->n_errors == before) check_model(&ev, L.model);
            }
        }
        zn_scope_free(&sc);
        free(given);
        free(ovr);
    }
    free(L.blocks);
    free(L.loaded);
    free(ev.names);
    zn_arena_free(arena);
    return d->n_errors == before;
}
