/* cmd_compare.c: `znet compare A.znet [--set ...] [--log A.jsonl] B.znet ...`: one Markdown
 * table of models side by side: trainable parameters, multiply-adds per example, planned
 * training memory at one batch size and, from run logs, test accuracy per head and vote, time
 * per epoch, images/s and the measured peak memory; or, given a sweep folder, its
 * configurations' statistics over seeds (compare_sweep.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "report/plot.h"

#define MAX_ENTRIES 32

typedef struct {
    const char *file, *log, *name;
    zn_setting sets[ZN_MAX_SETTINGS];
    int n_sets;
} entry;

static const char *const usage =
    "compare [--batch N] [--set K=V]... MODEL.znet [--set K=V]... [--log RUN.jsonl] [--name LABEL] "
    "MODEL.znet ...";

static void help(void)
{
    printf("usage: znet %s\n       znet compare SWEEP_DIR\n\n"
           "Prints one Markdown table comparing models: trainable parameters, multiply-adds per\n"
           "example, planned memory of a training step at one batch size and, for each model\n"
           "given a run log (`znet run --log`), the last test accuracy of every head and of the\n"
           "vote, the best vote, the epochs done (\"9 of 24\" while a run is unfinished),\n"
           "seconds per epoch, training images/s and the measured peak\n"
           "memory. --set before the first model applies to all; after a model, to that model.\n"
           "Given a folder of `znet sweep` instead, one row per configuration: its parameters and\n"
           "each figure's mean ± standard deviation over its finished runs (models with other heads\n"
           "also side by side on each one's last head), then every pair's differences, marked\n"
           "\"not separated\" within two standard errors (docs/sweep.md).\n\n"
           "options:\n"
           "  --batch N         batch size for the planned memory (default: each model's recipe)\n"
           "  --memory-budget SIZE  fit the training plan in SIZE (512M, 1G; docs/memory.md), as --set\n"
           "  --set KEY=VALUE   a model parameter or train setting (see docs/cli.md)\n"
           "  --log FILE        the run log of the model before it\n"
           "  --name LABEL      the row's label (default: file name and its --set values)\n"
           "  --help            this text\n"
           "example:\n"
           "  znet compare --set width=16 models/davidnet_multisoft.znet --log ms.jsonl \\\n"
           "      models/davidnet_zee.znet --log zee.jsonl > table.md\n",
           usage);
}

/* Splits argv into entries; -1 to go on, else an exit code. */
static int parse(int argc, char **argv, entry *e, int *n, entry *global, long *batch)
{
    *n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        entry *cur = *n ? &e[*n - 1] : global;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return ZN_EXIT_OK;
        }
        if (a[0] != '-') {
            if (*n == MAX_ENTRIES) {
                fprintf(stderr, "znet compare: at most %d models\n", MAX_ENTRIES);
                return ZN_EXIT_USAGE;
            }
            e[(*n)++] = (entry){.file = a};
            continue;
        }
        /* --opt=VALUE as well as --opt VALUE, as every other command takes them */
        char opt[24], quoted[64];
        const char *eq_at = strchr(a, '='), *v = NULL;
        if (eq_at && (size_t)(eq_at - a) < sizeof opt) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq_at - a), a);
            a = opt;
            v = eq_at + 1;
        }
        bool known = strcmp(a, "--set") == 0 || strcmp(a, "--log") == 0 || strcmp(a, "--name") == 0 ||
                     strcmp(a, "--batch") == 0 || strcmp(a, "--memory-budget") == 0;
        if (!known) {
            static const char *const opts[] = {"--set", "--log", "--name", "--batch", "--memory-budget", "--help"};
            fprintf(stderr, "znet compare: unknown option '%s'\n", a);
            const char *near = zn_cli_did_you_mean(a, opts, 6);
            if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
            return ZN_EXIT_USAGE;
        }
        if (!v && i + 1 >= argc) {
            fprintf(stderr, "znet compare: %s needs a value\n", a);
            return ZN_EXIT_USAGE;
        }
        if (!v) v = argv[++i];
        if (strcmp(a, "--batch") == 0) {
            char *end;
            *batch = strtol(v, &end, 10);
            if (*end || *batch < 1 || *batch > 65536) {
                fprintf(stderr, "znet compare: --batch needs an integer from 1 to 65536, got '%s'\n", v);
                return ZN_EXIT_USAGE;
            }
        } else if (strcmp(a, "--set") == 0 || strcmp(a, "--memory-budget") == 0) {
            char budget[sizeof ZN_CLI_BUDGET_KEY + sizeof quoted]; /* as --set train.memory_budget="SIZE" */
            if (a[2] == 'm') {
                if (!zn_cli_budget_quote("compare", v, quoted, sizeof quoted)) return ZN_EXIT_USAGE;
                snprintf(budget, sizeof budget, "%s=%s", ZN_CLI_BUDGET_KEY, quoted);
                v = zn_strndup(budget, strlen(budget)); /* lives as long as the process */
            }
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "znet compare: --set needs KEY=VALUE, got '%s'\n", v);
                return ZN_EXIT_USAGE;
            }
            /* a model gets the --set options before the first model and its own: all must fit */
            if ((cur == global ? 0 : global->n_sets) + cur->n_sets == ZN_MAX_SETTINGS) {
                fprintf(stderr, "znet compare: too many --set options at '%s' (at most %d for a model, counting "
                                "those before the first model)\n", v, ZN_MAX_SETTINGS);
                return ZN_EXIT_USAGE;
            }
            char *key = zn_strndup(v, (size_t)(eq - v)); /* lives as long as the process */
            cur->sets[cur->n_sets++] = (zn_setting){key, eq + 1};
        } else if (cur == global) {
            fprintf(stderr, "znet compare: %s belongs after a model file\n", a);
            return ZN_EXIT_USAGE;
        } else {
            *(a[2] == 'l' ? &cur->log : &cur->name) = v;
        }
    }
    if (*n == 0) {
        fprintf(stderr, "znet compare: no model file given\nusage: znet %s\n", usage);
        return ZN_EXIT_USAGE;
    }
    return -1;
}

static void cell_acc(double v)
{
    if (isnan(v)) printf(" – |");
    else printf(" %.4f |", v);
}

/* One table row; false after printing an error. */
static bool row(const entry *e, const entry *global, long batch_opt, bool *over_budget)
{
    zn_cli_common c = {.file = e->file};
    for (int k = 0; k < global->n_sets; k++) c.settings[c.n_settings++] = global->sets[k];
    for (int k = 0; k < e->n_sets; k++) c.settings[c.n_settings++] = e->sets[k]; /* (parse kept the sum in bounds) */
    zn_compiled m; /* the training graph, planned */
    zn_compile_opts o = {.mode = ZN_COMPILE_TRAINING, .batch = batch_opt ? (int)batch_opt : ZN_COMPILE_RECIPE_BATCH};
    char err[512];
    bool ok = zn_cli_compile(&c, o, &m);
    *over_budget |= m.over_budget;
    zn_train_log log = {0};
    if (ok && e->log && !(ok = zn_train_log_read(e->log, &log, err, sizeof err)))
        fprintf(stderr, "znet compare: %s\n", err);
    if (ok) {
        char label[512] = "", mem[32], peak[32] = "–";
        if (e->name) snprintf(label, sizeof label, "%s", e->name);
        else {
            const char *base = strrchr(e->file, '/') ? strrchr(e->file, '/') + 1 : e->file;
            size_t used = snprintf(label, sizeof label, "%.*s", (int)(strcspn(base, ".")), base);
            for (int k = 0; k < e->n_sets && used < sizeof label; k++)
                used += snprintf(label + used, sizeof label - used, " %s=%s", e->sets[k].key, e->sets[k].value);
        }
        char count[32];
        printf("| %s | %s | %.1f | %s |", label, zn_format_count(zn_graph_param_count(&m.graph), count, sizeof count),
               zn_graph_macs(&m.graph) / 1e6, zn_format_bytes(zn_plan_total(&m.plan), mem, sizeof mem));
        if (e->log && log.n_epochs > 0) {
            const zn_log_epoch *last = &log.epochs[log.n_epochs - 1];
            printf(" ");
            for (int s = 0; s < log.n_series; s++)
                if (strcmp(log.series[s], "vote") != 0)
                    printf("%s%s %.4f", s ? " · " : "", log.series[s], last->test_acc[s]);
            printf(" |");
            int s = zn_train_log_series(&log, "vote");
            cell_acc(s >= 0 ? last->test_acc[s] : NAN);
            cell_acc(zn_train_log_best(&log, s));
            if (!isnan(log.high_water_bytes)) zn_format_bytes((size_t)log.high_water_bytes, peak, sizeof peak);
            /* a run without its final record, short of its recipe's epochs, is unfinished: "9 of 24" */
            char done[48];
            if (isnan(log.train_time) && log.epochs_planned > log.n_epochs && log.epochs_planned < 1e9)
                snprintf(done, sizeof done, "%d of %.0f", log.n_epochs, log.epochs_planned);
            else
                snprintf(done, sizeof done, "%d", log.n_epochs);
            printf(" %s | %.1f | %.0f | %s |\n", done, last->time / log.n_epochs,
                   isnan(log.img_per_s) ? last->img_per_s : log.img_per_s, peak);
        } else {
            printf(" – | – | – | – | – | – | – |\n");
        }
    }
    zn_train_log_free(&log);
    zn_compiled_free(&m);
    return ok;
}

int zn_cmd_compare(int argc, char **argv)
{
    static entry entries[MAX_ENTRIES];
    static entry global;
    long batch = 0;
    int n;
    int rc = parse(argc, argv, entries, &n, &global, &batch);
    if (rc >= 0) return rc;
    for (int i = 0; i < n; i++) {
        if (!zn_cli_is_folder(entries[i].file)) continue;
        if (n > 1 || batch || global.n_sets || entries[i].n_sets || entries[i].log || entries[i].name) {
            fprintf(stderr, "znet compare: %s is a folder: a sweep folder is compared alone, with no --batch, --set, "
                            "--log or --name (znet compare DIR)\n", entries[i].file);
            return ZN_EXIT_USAGE;
        }
        return zn_compare_sweep(entries[i].file);
    }
    printf("| model | parameters | MMACs/example | planned training memory (batch %s) | last test accuracy per head "
           "| vote | best vote | epochs | s/epoch | train img/s | measured peak (arena) |\n",
           batch ? "as given" : "of each recipe");
    printf("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    bool ok = true, over_budget = false;
    for (int i = 0; i < n; i++) ok = row(&entries[i], &global, batch, &over_budget) && ok;
    return ok ? ZN_EXIT_OK : over_budget ? ZN_EXIT_USAGE : ZN_EXIT_ERROR;
}
