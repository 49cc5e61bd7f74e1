/* compare_sweep.c: `znet compare DIR` for a sweep folder (znet sweep): its finished runs grouped
 * by configuration, one Markdown row each with every figure's mean +- standard deviation over
 * the seeds, then each pair of configurations' differences in accuracy with their standard
 * errors, marked "not separated" within two of them (docs/sweep.md). Models with other heads
 * meet in a "last head" column: each model's last-declared head. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "report/stats.h"
#include "runtime/sweep.h"

#define MAX_COLUMNS (ZN_LOG_MAX_SERIES + 2)

typedef struct {
    const char *config;
    const zn_sweep_entry **runs; /* its finished runs */
    int n, unfinished;
    zn_stat acc[MAX_COLUMNS];    /* [column]: the test series, the last head, the best vote */
    zn_stat params, sec, planned, peak; /* trainable parameters; s/epoch; MiB */
} group;

static void skipped(const char *path, const char *why, void *ctx)
{
    fprintf(stderr, "znet compare: skipped %s: %s\n", path, why);
    ++*(int *)ctx;
}

#define LAST_HEAD "last head"

/* The index of a log's last head: heads come in the model's order, the vote after them; -1 for
 * none. */
static int last_head(const zn_train_log *log)
{
    int s = log->n_series - 1;
    return s >= 0 && strcmp(log->series[s], "vote") == 0 ? s - 1 : s;
}

/* Whether two logs have the same heads, in the same order (and both a vote or neither). */
static bool same_heads(const zn_train_log *a, const zn_train_log *b)
{
    bool same = a->n_series == b->n_series;
    for (int s = 0; same && s < a->n_series; s++) same = strcmp(a->series[s], b->series[s]) == 0;
    return same;
}

/* The accuracy columns: the union of the finished runs' test series, "last head" when the runs'
 * heads differ (so that any two models share a column), then "best vote" when a run has a vote.
 * Returns their number. */
static int columns(const zn_sweep_entry *e, int n, char names[MAX_COLUMNS][ZN_LOG_NAME_MAX])
{
    int k = 0;
    bool vote = false, mixed = false;
    const zn_train_log *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!e[i].finished) continue;
        if (!first) first = &e[i].log;
        mixed |= !same_heads(first, &e[i].log);
        for (int s = 0; s < e[i].log.n_series; s++) {
            bool seen = false;
            for (int c = 0; c < k; c++) seen |= strcmp(names[c], e[i].log.series[s]) == 0;
            vote |= strcmp(e[i].log.series[s], "vote") == 0;
            if (!seen && k < ZN_LOG_MAX_SERIES) snprintf(names[k++], ZN_LOG_NAME_MAX, "%s", e[i].log.series[s]);
        }
    }
    if (mixed) snprintf(names[k++], ZN_LOG_NAME_MAX, LAST_HEAD);
    if (vote) snprintf(names[k++], ZN_LOG_NAME_MAX, "best vote");
    return k;
}

/* Column c of a finished run: the last test accuracy of that series (or of its last head), or
 * the vote's best. */
static double figure(const zn_train_log *log, const char *name)
{
    if (strcmp(name, "best vote") == 0) return zn_train_log_best(log, zn_train_log_series(log, "vote"));
    int s = strcmp(name, LAST_HEAD) == 0 ? last_head(log) : zn_train_log_series(log, name);
    return s >= 0 && log->n_epochs > 0 ? log->epochs[log->n_epochs - 1].test_acc[s] : NAN;
}

/* The statistics of get(run) over the group's runs. */
static zn_stat over(const group *g, double (*get)(const zn_train_log *, const void *), const void *arg, double *buf)
{
    for (int i = 0; i < g->n; i++) buf[i] = get(&g->runs[i]->log, arg);
    return zn_stat_of(buf, g->n);
}

static double acc_of(const zn_train_log *l, const void *name) { return figure(l, name); }
static double params_of(const zn_train_log *l, const void *u) { return (void)u, l->params; }
static double sec_of(const zn_train_log *l, const void *u)
{
    (void)u; /* seconds per epoch: the last epoch record's time over its epoch number */
    return l->n_epochs ? l->epochs[l->n_epochs - 1].time / l->epochs[l->n_epochs - 1].epoch : NAN;
}
static double planned_of(const zn_train_log *l, const void *u) { return (void)u, l->planned_bytes / 1048576; }
static double peak_of(const zn_train_log *l, const void *u) { return (void)u, l->high_water_bytes / 1048576; }

/* "mean ± sd" with `decimals`, "(n = K)" when K differs from the row's runs; "–" for none. */
static void cell(zn_stat s, int runs, int decimals, const char *unit)
{
    if (s.n == 0) {
        printf(" – |");
        return;
    }
    printf(" %.*f", decimals, s.mean);
    if (s.n > 1) printf(" ± %.*f", decimals, s.sd);
    printf("%s", unit);
    if (s.n != runs) printf(" (n = %d)", s.n);
    printf(" |");
}

/* A count: "412,944" where the runs agree (one model's parameters), else as cell() prints it. */
static void count_cell(zn_stat s, int runs)
{
    if (s.n == 0 || (s.n > 1 && s.sd != 0)) {
        cell(s, runs, 0, "");
        return;
    }
    char c[32];
    printf(" %s", zn_format_count((int64_t)s.mean, c, sizeof c));
    if (s.n != runs) printf(" (n = %d)", s.n);
    printf(" |");
}

/* The entries grouped by configuration, in order of first appearance; returns how many. */
static int group_by_config(const zn_sweep_entry *e, int n, group *g)
{
    int *of = zn_calloc((size_t)n, sizeof *of), k = zn_sweep_configs(e, n, of);
    for (int j = 0; j < k; j++) g[j].runs = zn_calloc((size_t)n, sizeof *g->runs);
    for (int i = 0; i < n; i++) {
        group *r = &g[of[i]];
        r->config = e[i].m.label[0] ? e[i].m.label : e[i].m.config;
        if (e[i].finished) r->runs[r->n++] = &e[i];
        else r->unfinished++;
    }
    free(of);
    return k;
}

/* Where the runs' epochs were timed: a note when they ran on more than one CPU model. */
static void cpu_note(const zn_sweep_entry *e, int n)
{
    const char *seen[64];
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < e[i].m.n_cpus; c++) {
            bool known = false;
            for (int j = 0; j < k; j++) known |= strcmp(seen[j], e[i].m.cpus[c]) == 0;
            if (!known && k < 64) seen[k++] = e[i].m.cpus[c];
        }
    if (k < 2) return;
    printf("\nNote: the runs ran on %d CPU models (", k);
    for (int j = 0; j < k; j++) printf("%s%s", j ? "; " : "", seen[j]);
    printf("): compare s/epoch only between runs on the same one (each run's manifest.json lists its own).\n");
}

/* The runs taken in with `znet sweep --adopt`, each with the log it came from. */
static void adopted_note(const zn_sweep_entry *e, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!e[i].m.adopted[0]) continue;
        if (!k++)
            printf("\nAdopted runs (made outside the sweep, taken in with `znet sweep --adopt`; the CPU they "
                   "trained on, and so what their s/epoch means, is not recorded):\n");
        printf("- %s seed %ld: %s\n", e[i].m.label[0] ? e[i].m.label : e[i].m.config, e[i].m.seed, e[i].m.adopted);
    }
}

/* The differences of every pair of configurations with runs, column by column. */
static void differences(const group *g, int n_groups, char names[MAX_COLUMNS][ZN_LOG_NAME_MAX], int n_cols)
{
    int pairs = 0;
    for (int i = 0; i < n_groups; i++)
        for (int j = i + 1; j < n_groups; j++)
            for (int c = 0; c < n_cols; c++) pairs += g[i].acc[c].n && g[j].acc[c].n;
    if (!pairs) return;
    printf("\nDifferences of the means, first configuration minus second, with the standard error of the\n"
           "difference (SE); \"not separated\": |difference| <= 2 SE; no SE with a single run:\n\n| configurations |");
    for (int c = 0; c < n_cols; c++) printf(" %s |", names[c]);
    printf("\n|---|");
    for (int c = 0; c < n_cols; c++) printf("---|");
    printf("\n");
    for (int i = 0; i < n_groups; i++)
        for (int j = i + 1; j < n_groups; j++) {
            bool shared = false; /* pairs of models with no head in common have nothing to compare */
            for (int c = 0; c < n_cols; c++) shared |= g[i].acc[c].n && g[j].acc[c].n;
            if (!shared) continue;
            printf("| %s − %s |", g[i].config, g[j].config);
            for (int c = 0; c < n_cols; c++) {
                double d, se;
                zn_separation sep = zn_stat_separated(g[i].acc[c], g[j].acc[c], &d, &se);
                if (!g[i].acc[c].n || !g[j].acc[c].n) printf(" – |");
                else if (sep == ZN_SEP_UNKNOWN) printf(" %+.4f (no SE) |", d);
                else printf(" %+.4f (SE %.4f)%s |", d, se, sep == ZN_SEP_NOT ? " not separated" : "");
            }
            printf("\n");
        }
}

int zn_compare_sweep(const char *dir)
{
    zn_sweep_entry *e;
    int n, n_skipped = 0;
    char err[1024], names[MAX_COLUMNS][ZN_LOG_NAME_MAX];
    if (!zn_sweep_scan(dir, &e, &n, skipped, &n_skipped, err, sizeof err)) {
        fprintf(stderr, "znet compare: %s\n", err);
        return ZN_EXIT_ERROR;
    }
    if (n == 0) {
        fprintf(stderr, "znet compare: %s holds no runs of `znet sweep`\n", dir);
        zn_sweep_entries_free(e, n);
        return ZN_EXIT_ERROR;
    }
    group *g = zn_calloc((size_t)n, sizeof *g);
    double *buf = zn_calloc((size_t)n, sizeof *buf);
    int n_groups = group_by_config(e, n, g), n_cols = columns(e, n, names);
    printf("| configuration | runs | parameters |");
    for (int c = 0; c < n_cols; c++) printf(" %s |", names[c]);
    printf(" s/epoch | planned memory | measured peak (arena) |\n|---|---:|");
    for (int c = 0; c < n_cols + 4; c++) printf("---:|");
    printf("\n");
    for (int i = 0; i < n_groups; i++) {
        group *r = &g[i];
        for (int c = 0; c < n_cols; c++) r->acc[c] = over(r, acc_of, names[c], buf);
        r->params = over(r, params_of, NULL, buf);
        r->sec = over(r, sec_of, NULL, buf);
        r->planned = over(r, planned_of, NULL, buf);
        r->peak = over(r, peak_of, NULL, buf);
        printf("| %s | %d", r->config, r->n);
        if (r->unfinished) printf(" (+%d unfinished)", r->unfinished);
        printf(" |");
        count_cell(r->params, r->n);
        for (int c = 0; c < n_cols; c++) cell(r->acc[c], r->n, 4, "");
        cell(r->sec, r->n, 1, "");
        cell(r->planned, r->n, 1, " MiB");
        cell(r->peak, r->n, 1, " MiB");
        printf("\n");
    }
    differences(g, n_groups, names, n_cols);
    cpu_note(e, n);
    adopted_note(e, n);
    for (int i = 0; i < n_groups; i++) free(g[i].runs);
    free(g);
    free(buf);
    zn_sweep_entries_free(e, n);
    if (n_skipped) fprintf(stderr, "znet compare: %d entr%s of %s skipped (named above)\n", n_skipped,
                           n_skipped == 1 ? "y" : "ies", dir);
    return n_skipped ? ZN_EXIT_ERROR : ZN_EXIT_OK;
}
