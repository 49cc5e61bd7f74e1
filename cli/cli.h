/* cli.h: what the subcommands share: exit codes, the option parser (one table per command,
 * with --set and --help handled for all), and compiling the model file (runtime/compile.h) with
 * the common options, its failure printed. */
#ifndef ZN_CLI_H
#define ZN_CLI_H

#include <stdbool.h>

#include "backends/backend.h"
#include "graph/graph.h"
#include "graph/passes.h"
#include "lang/diag.h"
#include "lang/program.h"
#include "lang/recipe.h"
#include "runtime/compile.h"

enum { ZN_EXIT_OK = 0, ZN_EXIT_ERROR = 1, ZN_EXIT_USAGE = 2 };

typedef struct {
    const char *name;
    const char *help;
    int (*run)(int argc, char **argv);
    bool computes; /* trains or evaluates: worth OpenBLAS's best kernels (cli/main.c) */
} zn_command;

typedef enum { ZN_OPT_FLAG, ZN_OPT_INT, ZN_OPT_STRING } zn_opt_kind;

typedef struct {
    const char *name;   /* "--dot" */
    zn_opt_kind kind;
    const char *arg;    /* placeholder for help, e.g. "N" */
    const char *help;
    void *dest;         /* bool*, long*, or const char** */
    long min, max;      /* ZN_OPT_INT range */
} zn_opt;

#define ZN_MAX_SETTINGS 64
#define ZN_MAX_NO_PASS 16

typedef struct {
    const char *file;
    zn_setting settings[ZN_MAX_SETTINGS];
    int n_settings;
    char keybuf[ZN_MAX_SETTINGS][128];
    const char *no_pass[ZN_MAX_NO_PASS]; /* --no-pass NAME: optimizer passes to skip */
    int n_no_pass;
    char budget[64];                     /* --memory-budget SIZE as the .znet string "SIZE" */
} zn_cli_common;

/* Parses argv (argv[0] is the command name). Returns -1 to continue, or an exit code (after
 * printing help or an error). usage is the line after "usage: znet "; about describes it. */
int zn_cli_parse(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                 int n_opts, zn_cli_common *c);

/* zn_compile of c->file with its settings and --no-pass names, as far as o says (its path,
 * settings and passes are filled in here); prints the diagnostics and "znet: ERROR". false: exit
 * with ZN_EXIT_ERROR (out is freed by the caller either way). */
bool zn_cli_compile(const zn_cli_common *c, zn_compile_opts o, zn_compiled *out);

/* --memory-budget SIZE is --set train.memory_budget="SIZE": SIZE checked (zn_budget_parse) and
 * quoted into out; false after printing "znet CMD: --memory-budget needs ...". */
#define ZN_CLI_BUDGET_KEY "train.memory_budget"
bool zn_cli_budget_quote(const char *cmd, const char *size, char *out, size_t len);

/* The exit code of a failed zn_cli_compile: ZN_EXIT_USAGE when no plan fits the memory budget
 * (the user asked for too little), else ZN_EXIT_ERROR. */
int zn_cli_compile_exit(const zn_compiled *c);

/* For commands that train in a session (run, bench, check --backends): the recipe r's memory
 * budget into *bo, and the training plan checked against it before anything runs (a plan-only
 * compile of g, a forward graph, at batch on ops). -1 to go on, else an exit code after printing
 * "znet CMD: ..." (ZN_EXIT_USAGE: no plan fits the budget). */
int zn_cli_budget(const char *cmd, const zn_graph *g, const zn_recipe *r, const zn_backend_ops *ops,
                  zn_backend_opts *bo, int batch);

const char *zn_cli_did_you_mean(const char *name, const char *const *cands, int n);

/* Whether name is a pass (autodiff included); if not, prints "znet CMD: OPT: no pass ..." with a
 * did-you-mean hint (the caller exits with ZN_EXIT_USAGE). */
bool zn_cli_pass_known(const char *cmd, const char *opt, const char *name);

/* --precision NAME into *out; if NAME is not fp32, fp16 or bf16, prints "znet[ CMD]: --precision
 * needs ..." (cmd may be NULL) and returns false (the caller exits with ZN_EXIT_USAGE). */
bool zn_cli_precision(const char *cmd, const char *name, zn_precision *out);

/* The backend called name (--backend, --backends) into *ops: -1 to go on, else an exit code after
 * printing "znet[ CMD]: ..." (cmd may be NULL): ZN_EXIT_USAGE for a name no backend has,
 * ZN_EXIT_ERROR for one that cannot run here (no GPU, built without it). */
int zn_cli_backend(const char *cmd, const char *name, const zn_backend_ops **ops);

/* zn_cli_parse for commands whose arguments are not one model file (no --set or train
 * shorthands): the positional arguments come back in pos[0..*n_pos); more than max_pos is a
 * usage error. */
int zn_cli_parse_args(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                      int n_opts, zn_cli_common *c, const char **pos, int max_pos, int *n_pos);

/* zn_cli_parse for a model file followed by other arguments (predict's images): the first
 * positional argument is c->file, the others come back in pos[0..*n_pos); more than max_pos is a
 * usage error. */
int zn_cli_parse_model_args(int argc, char **argv, const char *usage, const char *about, const zn_opt *opts,
                            int n_opts, zn_cli_common *c, const char **pos, int max_pos, int *n_pos);

int zn_cmd_check(int argc, char **argv);
int zn_cmd_graph(int argc, char **argv);
int zn_cmd_summary(int argc, char **argv);
int zn_cmd_bench(int argc, char **argv);
int zn_cmd_run(int argc, char **argv);
int zn_cmd_compare(int argc, char **argv);
int zn_cmd_sweep(int argc, char **argv);
/* `znet compare DIR` of a sweep folder (compare_sweep.c); returns the exit code. */
int zn_compare_sweep(const char *dir);
/* Whether path is a folder (a sweep's, for compare and plot). */
bool zn_cli_is_folder(const char *path);
int zn_cmd_eval(int argc, char **argv);
int zn_cmd_predict(int argc, char **argv);
int zn_cmd_export(int argc, char **argv);
int zn_cmd_data(int argc, char **argv);
int zn_cmd_plot(int argc, char **argv);

#endif
