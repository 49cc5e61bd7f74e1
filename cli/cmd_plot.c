/* cmd_plot.c: `znet plot LOG.jsonl... [-o FILE.svg] [--title TEXT] [--csv]`: training curves of one or more
 * runs (logs written by `znet run --log`) as a standalone SVG, or their table as CSV; given a
 * sweep folder (`znet sweep`), each configuration's mean curve over its finished runs with a
 * band of one standard deviation either side. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph/util.h"
#include "report/plot.h"
#include "report/stats.h"
#include "runtime/sweep.h"

#define MAX_LOGS 32

/* out = path with its ".jsonl"/".json"/".log" extension (if any) replaced by ".svg". */
static void default_output(const char *path, char *out, size_t len)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t stem = dot && (!slash || dot > slash) && dot != path ? (size_t)(dot - path) : strlen(path);
    snprintf(out, len, "%.*s.svg", (int)stem, path);
}

static bool write_svg(const char *out, const zn_train_log *logs, const zn_train_log *lo, const zn_train_log *hi,
                      int n, const char *title)
{
    bool to_stdout = strcmp(out, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(out, "w");
    if (!f) {
        fprintf(stderr, "znet plot: %s: %s\n", out, strerror(errno));
        return false;
    }
    bool ok = zn_plot_svg_bands(f, logs, lo, hi, n, title);
    if (to_stdout) ok = fflush(f) == 0 && ok;
    else ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "znet plot: writing %s: %s\n", out, strerror(errno));
    else if (!to_stdout) fprintf(stderr, "wrote %s\n", out);
    return ok;
}

static void skipped(const char *path, const char *why, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "znet plot: skipped %s: %s\n", path, why);
}

/* The mean curve and band of every configuration in sweep folder dir with a finished run, into
 * logs, lo, hi (malloc'ed, *n of each, to be freed either way); false after a message. */
static bool load_sweep(const char *dir, zn_train_log **logs, zn_train_log **lo, zn_train_log **hi, int *n)
{
    zn_sweep_entry *e;
    int n_e;
    char err[1024];
    *n = 0;
    if (!zn_sweep_scan(dir, &e, &n_e, skipped, NULL, err, sizeof err)) {
        fprintf(stderr, "znet plot: %s\n", err);
        return false;
    }
    int *of = zn_calloc((size_t)n_e + 1, sizeof *of), k = zn_sweep_configs(e, n_e, of);
    zn_train_log *runs = zn_calloc((size_t)n_e + 1, sizeof *runs);
    *logs = zn_calloc((size_t)k + 1, sizeof **logs);
    *lo = zn_calloc((size_t)k + 1, sizeof **lo);
    *hi = zn_calloc((size_t)k + 1, sizeof **hi);
    *n = 0;
    bool ok = true;
    for (int c = 0; ok && c < k; c++) {
        int m = 0, first = -1;
        for (int i = 0; i < n_e; i++)
            if (of[i] == c && (first < 0 ? first = i : 0, e[i].finished)) runs[m++] = e[i].log;
        if (m == 0) {
            fprintf(stderr, "znet plot: %s: no finished run yet: not drawn\n", e[first].m.config);
            continue;
        }
        zn_train_log *mean = &(*logs)[*n];
        ok = zn_log_band(runs, m, mean, &(*lo)[*n], &(*hi)[*n]);
        if (!ok) fprintf(stderr, "znet plot: %s: out of memory, or more than %d test series\n", e[first].m.config,
                         ZN_LOG_MAX_SERIES);
        snprintf(mean->model, sizeof mean->model, "%s", e[first].m.model_name);
        const zn_sweep_manifest *man = &e[first].m;
        snprintf(mean->file, sizeof mean->file, "%.900s, mean of %d, band ± sd", man->label[0] ? man->label : man->config, m);
        snprintf(mean->path, sizeof mean->path, "%s", mean->file);
        ++*n;
    }
    if (ok && *n == 0) ok = (fprintf(stderr, "znet plot: %s holds no finished run of `znet sweep`\n", dir), false);
    free(runs);
    free(of);
    zn_sweep_entries_free(e, n_e);
    return ok;
}

int zn_cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *title = NULL;
    bool csv = false;
    const zn_opt opts[] = {
        {"-o", ZN_OPT_STRING, "FILE", "write the SVG to FILE ('-': standard output; default: the first\n"
                                      "                    log's name with .svg)", &out, 0, 0},
        {"--title", ZN_OPT_STRING, "TEXT", "the plot's title (default: the model names)", &title, 0, 0},
        {"--csv", ZN_OPT_FLAG, NULL, "print every run's epochs as one CSV table (no SVG unless -o)", &csv, 0, 0},
    };
    zn_cli_common c;
    const char *paths[MAX_LOGS];
    int n;
    int rc = zn_cli_parse_args(argc, argv, "plot LOG.jsonl [LOG2.jsonl ...] | SWEEP_DIR [-o FILE.svg] [--title TEXT] [--csv]",
                               "Draws the training curves of one or more runs, from the logs `znet run --log\n"
                               "FILE` writes: training loss, and accuracy per epoch (train dashed; test of each\n"
                               "head and the vote solid), runs overlaid in different colours. The SVG is\n"
                               "standalone: open it in a browser. Given a `znet sweep` folder, the mean curve\n"
                               "of each configuration's finished runs, with a band of one standard deviation.",
                               opts, (int)(sizeof opts / sizeof opts[0]), &c, paths, MAX_LOGS, &n);
    if (rc >= 0) return rc;
    if (n == 0) {
        fprintf(stderr, "znet plot: no log file given\n"
                        "usage: znet plot LOG.jsonl [LOG2.jsonl ...] [-o FILE.svg] [--title TEXT] [--csv]\n");
        return ZN_EXIT_USAGE;
    }
    if (csv && out && strcmp(out, "-") == 0) {
        fprintf(stderr, "znet plot: --csv and -o - would both write to standard output; pick one\n");
        return ZN_EXIT_USAGE;
    }
    zn_train_log *logs = NULL, *lo = NULL, *hi = NULL;
    bool ok = true, sweep = false;
    int loaded = 0;
    char err[2048], stem[4096];
    for (int i = 0; i < n; i++)
        if (zn_cli_is_folder(paths[i])) {
            if (n > 1) {
                fprintf(stderr, "znet plot: %s is a folder: a sweep folder is plotted alone\n", paths[i]);
                return ZN_EXIT_USAGE;
            }
            /* its default output: DIR.svg beside it, whatever slashes end its name */
            snprintf(stem, sizeof stem, "%s", paths[0]);
            for (size_t k = strlen(stem); k > 1 && stem[k - 1] == '/'; k--) stem[k - 1] = '\0';
            paths[0] = stem;
            sweep = true;
            ok = load_sweep(stem, &logs, &lo, &hi, &loaded); /* loaded: the logs to free, either way */
            n = loaded;
            break;
        }
    if (!sweep) logs = zn_calloc((size_t)n, sizeof *logs);
    for (; ok && !sweep && loaded < n; loaded++) {
        ok = zn_train_log_read(paths[loaded], &logs[loaded], err, sizeof err);
        if (!ok) fprintf(stderr, "znet plot: %s\n", err);
        else if (logs[loaded].incomplete_last_line)
            fprintf(stderr, "znet plot: %s: note: left out an incomplete last line (run still going?)\n", paths[loaded]);
        else if (logs[loaded].n_epochs == 0)
            fprintf(stderr, "znet plot: %s: note: no epochs logged yet\n", paths[loaded]);
    }
    if (!ok && !sweep) loaded--;
    char svg[4200];
    if (ok && !csv && !out) {
        default_output(paths[0], svg, sizeof svg);
        out = svg;
    }
    /* `-o run.jsonl` (or a log named like its default output) would replace a log with the SVG */
    for (int i = 0; ok && !sweep && out && strcmp(out, "-") != 0 && i < n; i++)
        if (zn_same_file(out, paths[i])) {
            fprintf(stderr, "znet plot: the output %s is the log %s; give another -o FILE\n", out, paths[i]);
            ok = false;
        }
    if (ok && out) ok = write_svg(out, logs, lo, hi, n, title);
    if (ok && csv) zn_plot_csv(stdout, logs, n);
    for (int i = 0; i < loaded; i++) {
        zn_train_log_free(&logs[i]);
        if (sweep) zn_train_log_free(&lo[i]), zn_train_log_free(&hi[i]);
    }
    free(logs);
    free(lo);
    free(hi);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
