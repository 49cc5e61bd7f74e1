/* train.h: `znet run` and `znet eval`: the training loop over a data set (augmented batches from
 * the batcher, the recipe's lr schedule and optimizer), evaluation of every head and the vote on
 * the test set each epoch, progress output, JSON-lines/CSV logs and checkpoints. */
#ifndef ZN_TRAIN_LOOP_H
#define ZN_TRAIN_LOOP_H

#include <stdbool.h>

#include "backends/backend.h"
#include "graph/graph.h"
#include "data/dataset.h"
#include "lang/recipe.h"

typedef struct {
    const char *file;       /* the model file, for logs */
    const char *data_dir;   /* --data, or NULL for the usual search */
    const char *log_path;   /* --log: .jsonl or .csv; NULL for none */
    int log_every;          /* --log-every K: a "step" record (loss, lr) every K steps in a JSON
                               log; 0: none */
    const char *save_path;  /* checkpoint written every epoch and at the end; NULL for none */
    const char *resume;     /* checkpoint to continue from, or NULL */
    const char *resume_command; /* printed after SIGINT/SIGTERM: the shell command that continues
                                   the run from save_path (NULL: say "--resume save_path") */
    int limit;              /* train on the first N examples only (0: all) */
    int test_limit;         /* evaluate on the first N test examples only (0: all) */
    bool progress;          /* a live progress bar (on a terminal) */
    bool sync_bn;           /* --sync-bn: batch norm's statistics over every rank's rows */
    const zn_backend_ops *backend;
    zn_backend_opts backend_opts;
} zn_run_opts;

/* Trains g with recipe r. Returns a process exit code: 0, 1 after printing the error, or after
 * SIGINT/SIGTERM (caught while it trains) 130/143 once the step under way is finished and a
 * checkpoint saved (a second signal exits at once). */
int zn_train_run(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o);
/* Loads weights from a checkpoint and prints test accuracy per head and vote, and the confusion
 * matrix. Returns a process exit code. */
int zn_train_eval(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, const char *weights);
/* The test split of r's data set, found and checked against g's input and classes as run and
 * eval find it (its class names, mean and std). false with the reason in err. */
bool zn_train_load_test(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, zn_dataset *test,
                        char *err, size_t len);

#endif
