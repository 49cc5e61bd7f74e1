/* stats.h: what a sweep's runs say together: the mean, standard deviation and count of one
 * figure over the runs of a configuration, whether two configurations' means are separated by
 * more than two standard errors (docs/sweep.md defines it), and the mean curve of several
 * training logs with a band of one standard deviation either side, for plots. */
#ifndef ZN_STATS_H
#define ZN_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "report/plot.h"

typedef struct {
    int n;       /* the finite values counted */
    double mean; /* NAN when n = 0 */
    double sd;   /* the sample standard deviation (divided by n - 1); NAN when n < 2 */
} zn_stat;

/* The statistics of v[0..n), leaving out values that are not finite (a figure a run lacks). */
zn_stat zn_stat_of(const double *v, int n);

typedef enum {
    ZN_SEP_UNKNOWN, /* either side has fewer than two values: no standard error to judge by */
    ZN_SEP_NOT,     /* |a - b| <= 2 standard errors of the difference (+ 1e-12 of |a| + |b|, for rounding) */
    ZN_SEP_YES,     /* |a - b| > that */
} zn_separation;

/* a.mean - b.mean into *diff and its standard error sqrt(sd_a^2 / n_a + sd_b^2 / n_b) into *se
 * (NAN when unknown), and whether the difference is larger than two of them. */
zn_separation zn_stat_separated(zn_stat a, zn_stat b, double *diff, double *se);

/* Of n >= 1 logs: the mean (*mean) of every epoch figure (loss, accuracies, time, lr) over the
 * runs that logged that epoch (the last record of an epoch when a resumed run logged it twice),
 * and the band around it, mean -+ sd (*lo, *hi; the mean itself where fewer than two runs have
 * the figure). The three share epochs and series (the union of the runs', in order of first
 * appearance) and have no step records; the caller names them (model, file). false when out of
 * memory or the runs have more test series together than a log holds; the three are freed by
 * zn_train_log_free either way. */
bool zn_log_band(const zn_train_log *runs, int n, zn_train_log *mean, zn_train_log *lo, zn_train_log *hi);

#endif
