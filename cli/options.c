/* options.c: the option parser shared by every subcommand, and compiling the model for them. Options
 * come from a per-command table; --help is common to all, and commands that read a model file
 * also take --set KEY=VALUE and --epochs/--batch/--seed (shorthands for train settings). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "backends/cpu/cpu_features.h"
#include "cli.h"
#include "graph/budget.h"
#include "graph/util.h"

const char *zn_cli_did_you_mean(const char *name, const char *const *cands, int n)
{
    return zn_did_you_mean(name, cands, n);
}

static const char *const common_help =
    "  --set KEY=VALUE   set a model parameter (--set width=16) or a train setting\n"
    "                    (--set train.epochs=2); VALUE is a .znet expression; repeatable\n"
    "  --epochs N, --batch N, --seed N\n"
    "                    shorthands for --set train.epochs=N etc.\n"
    "  --memory-budget SIZE\n"
    "                    fit a training step in SIZE (512M, 1G, 1.5GiB; powers of 1024) by\n"
    "                    recomputing activations and, where that is cheapest, fusing the\n"
    "                    z-towers (--set train.memory_budget; docs/memory.md)\n"
    "  --no-pass NAME    skip the graph optimizer's pass NAME (repeatable; --passes lists them)\n"
    "  --passes          list the passes (autodiff among them), in the order they run, and exit\n"
    "  --help            this text\n";

static void print_help(const char *usage, const char *about, const zn_opt *opts, int n, bool model)
{
    printf("usage: znet %s\n\n%s\n\noptions:\n", usage, about);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        printf("  %-17s %s\n", left, opts[i].help);
    }
    fputs(model ? common_help : "  --help            this text\n", stdout);
}

static int add_setting(zn_cli_common *c, const char *key, size_t key_len, const char *value)
{
    if (c->n_settings == ZN_MAX_SETTINGS) {
        fprintf(stderr, "znet: too many --set options (at most %d)\n", ZN_MAX_SETTINGS);
        return ZN_EXIT_USAGE;
    }
    if (key_len == 0 || key_len >= sizeof c->keybuf[0]) {
        fprintf(stderr, "znet: --set needs KEY=VALUE with a key of 1 to 127 characters\n");
        return ZN_EXIT_USAGE;
    }
    memcpy(c->keybuf[c->n_settings], key, key_len);
    c->keybuf[c->n_settings][key_len] = '\0';
    c->settings[c->n_settings] = (zn_setting){c->keybuf[c->n_settings], value};
    c->n_settings++;
    return -1;
}

bool zn_cli_pass_known(const char *cmd, const char *opt, const char *name)
{
    if (zn_pass_find(name)) return true;
    const char *names[64];
    int n = 0;
    for (int i = 0; i < zn_n_passes && n < 64; i++) names[n++] = zn_passes[i].name;
    fprintf(stderr, "znet %s: %s: no pass is called '%s'\n", cmd, opt, name);
    const char *near = zn_did_you_mean(name, names, n);
    if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
    fprintf(stderr, "  see `znet %s --passes`\n", cmd);
    return false;
}

bool zn_cli_precision(const char *cmd, const char *name, zn_precision *out)
{
    if (zn_precision_parse(name, out)) return true;
    fprintf(stderr, "znet%s%s: --precision needs fp32, fp16 or bf16, got '%s'\n", cmd ? " " : "", cmd ? cmd : "",
            name);
    return false;
}

int zn_cli_backend(const char *cmd, const char *name, const zn_backend_ops **ops)
{
    char why[512];
    const char *sp = cmd ? " " : "", *cm = cmd ? cmd : "";
    *ops = zn_backend_find(name, why, sizeof why);
    if (!*ops) {
        fprintf(stderr, "znet%s%s: %s\n", sp, cm, why);
        return ZN_EXIT_USAGE;
    }
    /* ZNET_CPU_PATH is part of the command line: a path it cannot take is a usage error (2) */
    if (strcmp(name, "cpu") == 0 && !zn_cpu_path_choose(why, sizeof why)) {
        fprintf(stderr, "znet%s%s: %s\n", sp, cm, why);
        return ZN_EXIT_USAGE;
    }
    if ((*ops)->available && !(*ops)->available(why, sizeof why)) {
        fprintf(stderr, "znet%s%s: backend %s cannot run here: %s\n", sp, cm, name, why);
        return ZN_EXIT_ERROR;
    }
    return -1;
}

/* Stage by stage: forward passes on every graph, then those of inference or training graphs
 * (autodiff first among the training ones); then the plan, which follows them all. */
static void print_passes(void)
{
    printf("passes, in the order they run (--no-pass NAME skips an optimizer pass; znet graph\n"
           "--dump-after NAME shows the graph right after any, or the plan):\n");
    for (int st = ZN_STAGE_FORWARD; st <= ZN_STAGE_TRAINING; st++)
        for (int i = 0; i < zn_n_passes; i++)
            if ((int)zn_passes[i].stage == st)
                printf("  %-12s %-9s %s\n", zn_passes[i].name, zn_pass_stage_names[st], zn_passes[i].help);
    printf("  %-12s %-9s %s\n", "plan", "then", "the memory plan: every tensor's region, offset and lifetime at one "
           "batch size (not a pass: the graph stays as it is)");
}

/* --no-pass NAME: a known pass that may be skipped, at most ZN_MAX_NO_PASS of them. */
static int add_no_pass(zn_cli_common *c, const char *cmd, const char *name)
{
    char err[256];
    if (!zn_cli_pass_known(cmd, "--no-pass", name)) return ZN_EXIT_USAGE;
    if (!zn_passes_check_disabled(&name, 1, err, sizeof err)) {
        fprintf(stderr, "znet %s: --no-pass: %s\n", cmd, err);
        return ZN_EXIT_USAGE;
    }
    if (c->n_no_pass == ZN_MAX_NO_PASS) {
        fprintf(stderr, "znet %s: too many --no-pass options (at most %d)\n", cmd, ZN_MAX_NO_PASS);
        return ZN_EXIT_USAGE;
    }
    c->no_pass[c->n_no_pass++] = name;
    return -1;
}

bool zn_cli_budget_quote(const char *cmd, const char *size, char *out, size_t len)
{
    size_t bytes;
    if (!size || strlen(size) + 3 > len || !zn_budget_parse(size, &bytes)) {
        fprintf(stderr, "znet %s: --memory-budget needs a size such as 512M, 1G or 1.5GiB, got '%s'\n", cmd,
                size ? size : "nothing");
        return false;
    }
    snprintf(out, len, "\"%s\"", size);
    return true;
}

/* --memory-budget SIZE: a shorthand for --set train.memory_budget="SIZE". */
static int add_budget(zn_cli_common *c, const char *cmd, const char *size)
{
    if (!zn_cli_budget_quote(cmd, size, c->budget, sizeof c->budget)) return ZN_EXIT_USAGE;
    return add_setting(c, ZN_CLI_BUDGET_KEY, strlen(ZN_CLI_BUDGET_KEY), c->budget);
}

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "znet: %s needs an integer from %ld to %ld, got '%s'\n", opt, min, max, s);
        return ZN_EXIT_USAGE;
    }
    *out = v;
    return -1;
}

/* The parser behind both entry points. model: the command reads a model file, so --set and the
 * train shorthands apply. Positional arguments go to pos[0..max_pos); more is a usage error. */
static int parse_core(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                      int n_opts, zn_cli_common *c, bool model, const char **pos, int max_pos, int *n_pos)
{
    static const char *const shorthands[] = {"--epochs", "--batch", "--seed"};
    int n_short = model ? 3 : 0;
    memset(c, 0, sizeof *c);
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(usage, about, opts, n_opts, model);
            return ZN_EXIT_OK;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (*n_pos == max_pos) {
                fprintf(stderr, "znet %s: too many arguments ('%s'; at most %d)\nusage: znet %s\n", argv[0], a,
                        max_pos, usage);
                return ZN_EXIT_USAGE;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        /* --opt=value is the same as --opt value */
        const char *eq = strchr(a, '=');
        char name[64];
        size_t name_len = eq && strncmp(a, "--set", 5) != 0 ? (size_t)(eq - a) : strlen(a);
        snprintf(name, sizeof name, "%.*s", (int)name_len, a);
        const char *inline_val = eq && strncmp(a, "--set", 5) != 0 ? eq + 1 : NULL;
        if (model && strcmp(a, "--passes") == 0) {
            print_passes();
            return ZN_EXIT_OK;
        }
        if (model && strcmp(name, "--no-pass") == 0) {
            const char *pass = inline_val ? inline_val : i + 1 < argc ? argv[++i] : NULL;
            if (!pass) {
                fprintf(stderr, "znet %s: --no-pass needs a pass name (see --passes)\n", argv[0]);
                return ZN_EXIT_USAGE;
            }
            int rc = add_no_pass(c, argv[0], pass);
            if (rc >= 0) return rc;
            continue;
        }
        if (model && strcmp(name, "--memory-budget") == 0) {
            int rc = add_budget(c, argv[0], inline_val ? inline_val : i + 1 < argc ? argv[++i] : NULL);
            if (rc >= 0) return rc;
            continue;
        }
        if (model && (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0)) {
            const char *kv = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            const char *sep = kv ? strchr(kv, '=') : NULL;
            if (!sep) {
                fprintf(stderr, "znet %s: --set needs KEY=VALUE, e.g. --set width=16\n", argv[0]);
                return ZN_EXIT_USAGE;
            }
            int rc = add_setting(c, kv, (size_t)(sep - kv), sep + 1);
            if (rc >= 0) return rc;
            continue;
        }
        int found = -1;
        for (int k = 0; k < n_opts; k++)
            if (strcmp(opts[k].name, name) == 0) found = k;
        int sh = -1;
        for (int k = 0; k < n_short; k++)
            if (strcmp(shorthands[k], name) == 0) sh = k;
        if (found < 0 && sh < 0) {
            const char *cands[64];
            int nc = 0;
            for (int k = 0; k < n_opts && nc < 56; k++) cands[nc++] = opts[k].name;
            for (int k = 0; k < n_short; k++) cands[nc++] = shorthands[k];
            if (model) {
                cands[nc++] = "--set";
                cands[nc++] = "--no-pass";
                cands[nc++] = "--passes";
                cands[nc++] = "--memory-budget";
            }
            cands[nc++] = "--help";
            fprintf(stderr, "znet %s: unknown option '%s'\n", argv[0], name);
            const char *near = zn_did_you_mean(name, cands, nc);
            if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
            fprintf(stderr, "  see `znet %s --help`\n", argv[0]);
            return ZN_EXIT_USAGE;
        }
        bool takes_value = sh >= 0 || opts[found].kind != ZN_OPT_FLAG;
        const char *val = inline_val;
        if (takes_value && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "znet %s: %s needs a value\n", argv[0], name);
                return ZN_EXIT_USAGE;
            }
            val = argv[++i];
        }
        if (!takes_value && val) {
            fprintf(stderr, "znet %s: %s takes no value\n", argv[0], name);
            return ZN_EXIT_USAGE;
        }
        if (sh >= 0) {
            long v;
            int rc = parse_long(name, val, sh == 2 ? 0 : 1, sh == 0 ? 100000 : sh == 1 ? 65536 : 2147483647L, &v);
            if (rc >= 0) return rc;
            char key[80];
            snprintf(key, sizeof key, "train.%s", name + 2);
            rc = add_setting(c, key, strlen(key), val);
            if (rc >= 0) return rc;
            continue;
        }
        const zn_opt *o = &opts[found];
        if (o->kind == ZN_OPT_FLAG) *(bool *)o->dest = true;
        else if (o->kind == ZN_OPT_STRING) *(const char **)o->dest = val;
        else {
            int rc = parse_long(name, val, o->min, o->max, (long *)o->dest);
            if (rc >= 0) return rc;
        }
    }
    return -1;
}

int zn_cli_parse(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                 int n_opts, zn_cli_common *c)
{
    const char *file = NULL;
    int n = 0;
    int rc = parse_core(argc, argv, usage, about, opts, n_opts, c, true, &file, 1, &n);
    if (rc >= 0) return rc;
    if (!file) {
        fprintf(stderr, "znet %s: no model file given\nusage: znet %s\n", argv[0], usage);
        return ZN_EXIT_USAGE;
    }
    c->file = file;
    return -1;
}

int zn_cli_parse_args(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                      int n_opts, zn_cli_common *c, const char **pos, int max_pos, int *n_pos)
{
    return parse_core(argc, argv, usage, about, opts, n_opts, c, false, pos, max_pos, n_pos);
}

bool zn_cli_compile(const zn_cli_common *c, zn_compile_opts o, zn_compiled *out)
{
    o.path = c->file;
    o.settings = c->settings;
    o.n_settings = c->n_settings;
    o.no_pass = c->no_pass;
    o.n_no_pass = c->n_no_pass;
    if (zn_compile(&o, out)) return true;
    fprintf(stderr, "znet: %s\n", out->err);
    return false;
}

int zn_cli_parse_model_args(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                            int n_opts, zn_cli_common *c, const char **pos, int max_pos, int *n_pos)
{
    const char **all = zn_calloc((size_t)max_pos + 1, sizeof *all);
    int n = 0, rc = parse_core(argc, argv, usage, about, opts, n_opts, c, true, all, max_pos + 1, &n);
    if (rc < 0 && n == 0) {
        fprintf(stderr, "znet %s: no model file given\nusage: znet %s\n", argv[0], usage);
        rc = ZN_EXIT_USAGE;
    }
    if (rc < 0) {
        c->file = all[0];
        *n_pos = n - 1;
        memcpy(pos, all + 1, sizeof *pos * (size_t)(n - 1));
    }
    free(all);
    return rc;
}

bool zn_cli_is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int zn_cli_compile_exit(const zn_compiled *c)
{
    return c->over_budget ? ZN_EXIT_USAGE : ZN_EXIT_ERROR;
}

int zn_cli_budget(const char *cmd, const zn_graph *g, const zn_recipe *r, const zn_backend_ops *ops,
                  zn_backend_opts *bo, int batch)
{
    bo->memory_budget = r->memory_budget;
    if (!bo->memory_budget) return -1;
    zn_compile_opts o = {.from = g, .mode = ZN_COMPILE_TRAINING, .no_pass = bo->no_pass,
                         .n_no_pass = bo->n_no_pass, .batch = batch, .backend = ops, .backend_opts = bo,
                         .memory_budget = bo->memory_budget, .plan_only = true};
    zn_compiled t;
    bool ok = zn_compile(&o, &t);
    if (!ok) fprintf(stderr, "znet %s: %s\n", cmd, t.err);
    int rc = ok ? -1 : zn_cli_compile_exit(&t);
    zn_compiled_free(&t);
    return rc;
}
