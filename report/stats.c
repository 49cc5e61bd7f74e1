/* stats.c: means, standard deviations and separation of sweep figures, and mean curves with a
 * band (stats.h). Epochs are matched by their number, series by their name, so runs cut short
 * or resumed (an epoch logged twice) still line up. */
#include "report/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

zn_stat zn_stat_of(const double *v, int n)
{
    zn_stat s = {0, NAN, NAN};
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s.n++, sum += v[i];
    if (s.n == 0) return s;
    s.mean = sum / s.n;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) sq += (v[i] - s.mean) * (v[i] - s.mean);
    if (s.n > 1) s.sd = sqrt(sq / (s.n - 1));
    return s;
}

zn_separation zn_stat_separated(zn_stat a, zn_stat b, double *diff, double *se)
{
    *diff = a.mean - b.mean;
    *se = NAN;
    if (a.n < 2 || b.n < 2) return ZN_SEP_UNKNOWN;
    *se = sqrt(a.sd * a.sd / a.n + b.sd * b.sd / b.n);
    /* rounding aside: equal figures whose means differ in the last bits are not "separated" */
    double slack = 1e-12 * (fabs(a.mean) + fabs(b.mean));
    return fabs(*diff) > 2 * *se + slack ? ZN_SEP_YES : ZN_SEP_NOT;
}

/* The index of series name in log, added when new; -1 when the log holds no more. */
static int series_of(zn_train_log *log, const char *name)
{
    int known = zn_train_log_series(log, name);
    if (known >= 0) return known;
    if (log->n_series == ZN_LOG_MAX_SERIES) return -1;
    snprintf(log->series[log->n_series], ZN_LOG_NAME_MAX, "%s", name);
    return log->n_series++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The last record of epoch e in log, or NULL. */
static const zn_log_epoch *epoch_of(const zn_train_log *log, double e)
{
    for (int i = log->n_epochs - 1; i >= 0; i--)
        if (log->epochs[i].epoch == e) return &log->epochs[i];
    return NULL;
}

/* The doubles of an epoch record the band covers, by offset; test_acc is done series by series. */
static const size_t figures[] = {offsetof(zn_log_epoch, step), offsetof(zn_log_epoch, lr),
                                 offsetof(zn_log_epoch, train_loss), offsetof(zn_log_epoch, train_acc),
                                 offsetof(zn_log_epoch, time), offsetof(zn_log_epoch, img_per_s)};

/* The mean of v[0..n) and the band around it (the mean itself when fewer than two are finite). */
static void band_of(const double *v, int n, double *mean, double *lo, double *hi)
{
    zn_stat st = zn_stat_of(v, n);
    *mean = st.mean;
    *lo = st.n > 1 ? st.mean - st.sd : st.mean;
    *hi = st.n > 1 ? st.mean + st.sd : st.mean;
}

bool zn_log_band(const zn_train_log *runs, int n, zn_train_log *mean, zn_train_log *lo, zn_train_log *hi)
{
    zn_train_log *out[3] = {mean, lo, hi};
    for (int k = 0; k < 3; k++) {
        memset(out[k], 0, sizeof *out[k]);
        out[k]->params = out[k]->batch = out[k]->seed = out[k]->epochs_planned = out[k]->train_time = NAN;
        out[k]->img_per_s = out[k]->planned_bytes = out[k]->high_water_bytes = NAN;
    }
    int total = 0;
    for (int r = 0; r < n; r++) total += runs[r].n_epochs;
    double *epochs = malloc(sizeof *epochs * (size_t)(total + 1)), *v = malloc(sizeof *v * (size_t)(n + 1));
    const zn_log_epoch **rec = malloc(sizeof *rec * (size_t)(n + 1));
    bool ok = epochs && v && rec;
    /* the union of the runs' epoch numbers, sorted, each once */
    int m = 0;
    for (int r = 0; ok && r < n; r++)
        for (int i = 0; i < runs[r].n_epochs; i++) epochs[m++] = runs[r].epochs[i].epoch;
    if (ok) qsort(epochs, (size_t)m, sizeof *epochs, cmp_double);
    int u = 0;
    for (int i = 0; ok && i < m; i++)
        if (isfinite(epochs[i]) && (u == 0 || epochs[i] != epochs[u - 1])) epochs[u++] = epochs[i];
    /* the union of the test series: each run's series s is the band's map[r][s] */
    int(*map)[ZN_LOG_MAX_SERIES] = ok ? malloc(sizeof *map * (size_t)(n + 1)) : NULL;
    ok = ok && map;
    for (int r = 0; ok && r < n; r++)
        for (int s = 0; ok && s < runs[r].n_series; s++) ok = (map[r][s] = series_of(mean, runs[r].series[s])) >= 0;
    for (int k = 1; ok && k < 3; k++) {
        memcpy(out[k]->series, mean->series, sizeof mean->series);
        out[k]->n_series = mean->n_series;
    }
    for (int k = 0; ok && k < 3; k++) ok = (out[k]->epochs = calloc((size_t)u + 1, sizeof *out[k]->epochs)) != NULL;
    for (int i = 0; ok && i < u; i++) {
        zn_log_epoch *e[3];
        for (int k = 0; k < 3; k++) {
            e[k] = &out[k]->epochs[i];
            e[k]->epoch = epochs[i];
            for (int s = 0; s < ZN_LOG_MAX_SERIES; s++) e[k]->test_acc[s] = NAN;
            out[k]->n_epochs = i + 1;
        }
        for (int r = 0; r < n; r++) rec[r] = epoch_of(&runs[r], epochs[i]);
        for (size_t f = 0; f < sizeof figures / sizeof figures[0]; f++) {
            for (int r = 0; r < n; r++) {
                v[r] = NAN;
                if (rec[r]) memcpy(&v[r], (const char *)rec[r] + figures[f], sizeof v[r]);
            }
            double *d[3];
            for (int k = 0; k < 3; k++) d[k] = (double *)((char *)e[k] + figures[f]);
            band_of(v, n, d[0], d[1], d[2]);
        }
        for (int s = 0; s < mean->n_series; s++) {
            for (int r = 0; r < n; r++) {
                v[r] = NAN;
                for (int t = 0; rec[r] && t < runs[r].n_series; t++)
                    if (map[r][t] == s) v[r] = rec[r]->test_acc[t];
            }
            band_of(v, n, &e[0]->test_acc[s], &e[1]->test_acc[s], &e[2]->test_acc[s]);
        }
    }
    free(epochs);
    free(v);
    free(rec);
    free(map);
    return ok;
}
