/* cmd_plot.c: `znet plot LOG.jsonl... [-o FILE.svg] [--title TEXT] [--csv]`: training curves of one or more
 * runs (logs written by `znet run --log`) as a standalone SVG, or their table as CSV. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph/util.h"
#include "report/plot.h"

#define MAX_LOGS 32

/* out = path with its ".jsonl"/".json"/".log" extension (if any) replaced by ".svg". */
static void default_output(const char *path, char *out, size_t len)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t stem = dot && (!slash || dot > slash) && dot != path ? (size_t)(dot - path) : strlen(path);
    snprintf(out, len, "%.*s.svg", (int)stem, path);
}

static bool write_svg(const char *out, const zn_train_log *logs, int n, const char *title)
{
    bool to_stdout = strcmp(out, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(out, "w");
    if (!f) {
        fprintf(stderr, "znet plot: %s: %s\n", out, strerror(errno));
        return false;
    }
    bool ok = zn_plot_svg(f, logs, n, title);
    if (to_stdout) ok = fflush(f) == 0 && ok;
    else ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "znet plot: writing %s: %s\n", out, strerror(errno));
    else if (!to_stdout) fprintf(stderr, "wrote %s\n", out);
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
    int rc = zn_cli_parse_args(argc, argv, "plot LOG.jsonl [LOG2.jsonl ...] [-o FILE.svg] [--title TEXT] [--csv]",
                               "Draws the training curves of one or more runs, from the logs `znet run --log\n"
                               "FILE` writes: training loss, and accuracy per epoch (train dashed; test of each\n"
                               "head and the vote solid), runs overlaid in different colours. The SVG is\n"
                               "standalone: open it in a browser.",
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
    zn_train_log *logs = zn_calloc((size_t)n, sizeof *logs);
    bool ok = true;
    int loaded = 0;
    char err[2048];
    for (; ok && loaded < n; loaded++) {
        ok = zn_train_log_read(paths[loaded], &logs[loaded], err, sizeof err);
        if (!ok) fprintf(stderr, "znet plot: %s\n", err);
        else if (logs[loaded].incomplete_last_line)
            fprintf(stderr, "znet plot: %s: note: left out an incomplete last line (run still going?)\n", paths[loaded]);
        else if (logs[loaded].n_epochs == 0)
            fprintf(stderr, "znet plot: %s: note: no epochs logged yet\n", paths[loaded]);
    }
    if (!ok) loaded--;
    char svg[4096];
    if (ok && !csv && !out) {
        default_output(paths[0], svg, sizeof svg);
        out = svg;
    }
    /* `-o run.jsonl` (or a log named like its default output) would replace a log with the SVG */
    for (int i = 0; ok && out && strcmp(out, "-") != 0 && i < n; i++)
        if (zn_same_file(out, paths[i])) {
            fprintf(stderr, "znet plot: the output %s is the log %s; give another -o FILE\n", out, paths[i]);
            ok = false;
        }
    if (ok && out) ok = write_svg(out, logs, n, title);
    if (ok && csv) zn_plot_csv(stdout, logs, n);
    for (int i = 0; i < loaded; i++) zn_train_log_free(&logs[i]);
    free(logs);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}
