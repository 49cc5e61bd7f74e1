/* plot.h: training logs (the JSON lines `znet run --log FILE` writes) read back into per-epoch
 * series, and drawn as a standalone SVG (training loss, and train/test accuracy per head and
 * vote, several runs overlaid) or written as one CSV table. */
#ifndef ZN_PLOT_H
#define ZN_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ZN_LOG_MAX_SERIES 16 /* test accuracy keys of one run: the heads and "vote" */
#define ZN_LOG_NAME_MAX 64

typedef struct {
    double epoch;                          /* as logged, 1 for the first */
    double step, lr;                       /* NAN when absent or null, like every value here */
    double train_loss, train_acc;          /* loss per example; accuracy as a fraction */
    double test_acc[ZN_LOG_MAX_SERIES];    /* [series], fractions */
    double time, img_per_s;                /* seconds since the run started, training images/s */
} zn_log_epoch;

/* A "step" record (`znet run --log-every K`): one training step's loss and learning rate. */
typedef struct {
    double epoch;    /* epochs completed at this step, a fraction (step / steps per epoch): the
                        x of the epoch records, whose epoch 1 ends at step / steps per epoch = 1 */
    double step;     /* steps taken, the first being 1 */
    double loss, lr; /* the step's batch loss per example; its learning rate (NAN when absent) */
} zn_log_step;

typedef struct {
    char path[1024];                                   /* the log file */
    char model[ZN_LOG_NAME_MAX];                       /* the run record's "model" */
    char file[1024];                                   /* its "file" (the .znet path), or "" */
    char series[ZN_LOG_MAX_SERIES][ZN_LOG_NAME_MAX];   /* test_acc keys: heads in order, then "vote" */
    int n_series;
    zn_log_epoch *epochs;                              /* [n_epochs], in file order */
    int n_epochs;
    zn_log_step *steps;                                /* [n_steps], in file order */
    int n_steps;
    bool incomplete_last_line; /* a last line without '\n' that did not parse was left out (the
                                  run may still be writing it) */
    double params, batch, seed; /* from the run record; NAN when absent */
    double epochs_planned;     /* the run record's "epochs" (the recipe's); NAN when absent */
    /* from the final record (NAN when the run has not finished): seconds spent training, its
     * images per second, and the memory planned and measured (bytes) */
    double train_time, img_per_s, planned_bytes, high_water_bytes;
} zn_train_log;

/* Whether a logged time (seconds since a run started) is one a run can have: from 0 to 1e9 s.
 * Reading a log and continuing one (`znet run --resume`) hold its times to this. */
bool zn_log_time_ok(double seconds);

/* Reads a log. A run record must come first; epoch records need "epoch" and may lack any other
 * field; step records need "epoch" and "loss"; other record types (such as "final") are skipped. Errors read "path:line: message". */
bool zn_train_log_read(const char *path, zn_train_log *log, char *err, size_t errlen);
void zn_train_log_free(zn_train_log *log);
/* The index of the test series called name (a head, or "vote") in log; -1 when it has none. */
int zn_train_log_series(const zn_train_log *log, const char *name);
/* The highest test accuracy of series s over log's epochs (compare's "best vote"); NAN when s < 0
 * or no epoch has it. */
double zn_train_log_best(const zn_train_log *log, int s);

/* The SVG of n logs (n >= 1): two panels (loss; accuracy), a third (learning rate per step)
 * under the loss panel when a log has step records, legend, title (NULL: the model names). */
bool zn_plot_svg(FILE *f, const zn_train_log *logs, int n, const char *title);
/* The same with a band around each log's loss and test accuracies, from lo[r] up to hi[r]
 * (zn_log_band makes the three; lo and hi NULL: no bands). */
bool zn_plot_svg_bands(FILE *f, const zn_train_log *logs, const zn_train_log *lo, const zn_train_log *hi, int n,
                       const char *title);
/* The SVG of one curve: the n points (x[i], y[i]) joined and marked, axis labels, a title
 * (znet summary --memory-curve: training memory against recomputed multiply-adds). */
bool zn_plot_curve_svg(FILE *f, const double *x, const double *y, int n, const char *title, const char *xlabel,
                       const char *ylabel);

/* One row per run and epoch: log,model,epoch,step,lr,train_loss,train_acc,test_<key>...,time,
 * img_per_s, with the union of all runs' test keys; absent values are empty fields. */
void zn_plot_csv(FILE *f, const zn_train_log *logs, int n);

#endif
