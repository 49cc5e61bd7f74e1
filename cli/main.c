/* main.c: the `znet` command: dispatches to one function per subcommand (cli/cmd_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/blas_core.h"
#include "backends/cpu/cpu_features.h"
#include "cli.h"

static const zn_command commands[] = {
    {"check", "parse a model file, resolve it and infer every shape", zn_cmd_check, false},
    {"graph", "print the graph as Graphviz DOT (--dot) or text (--text)", zn_cmd_graph, false},
    {"summary", "per-layer table: shapes, parameters, multiply-adds, memory", zn_cmd_summary, false},
    {"run", "train the model with its recipe; per-epoch accuracy, logs, checkpoints", zn_cmd_run, true},
    {"eval", "test accuracy per head and vote, confusion matrix, of a checkpoint", zn_cmd_eval, true},
    {"predict", "top classes of every head and the vote for your own images (PNG, JPEG, .npy)", zn_cmd_predict, true},
    {"export", "write the inference graph and a checkpoint's values as ONNX (opset 17)", zn_cmd_export, false},
    {"sweep", "a grid of settings x seeds as a queue of runs in a folder, resumable", zn_cmd_sweep, false},
    {"compare", "models side by side: parameters, cost, memory, accuracy; a sweep: mean +- sd", zn_cmd_compare, false},
    {"bench", "time training steps and inference: images/s, GFLOP/s, memory", zn_cmd_bench, true},
    {"data", "get a data set (znet data get cifar10) or show where each is found", zn_cmd_data, false},
    {"plot", "plot training logs (znet run --log) as an SVG of loss and accuracy", zn_cmd_plot, false},
};
static const int n_commands = sizeof commands / sizeof commands[0];

static void usage(FILE *f)
{
    fprintf(f, "usage: znet COMMAND [options] FILE.znet\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`znet COMMAND --help` describes a command's options; docs/cli.md has them all.\n"
               "exit codes: 0 success, 1 errors in the model file or its data, 2 bad command line.\n");
}

/* OpenBLAS chose its kernels when it loaded; where it fell back to old ones on a newer CPU, a
 * command that computes starts again with OPENBLAS_CORETYPE set (once: the variable is then set).
 * Where exec fails, it goes on. Other commands skip the restart's few milliseconds. */
static void restart_with_better_blas(char **argv)
{
    const char *core = zn_blas_better_core();
    char self[4096]; /* the binary's own path, so the process keeps its name (ps, pgrep) */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (!core || n <= 0 || n == (ssize_t)sizeof self - 1 || setenv("OPENBLAS_CORETYPE", core, 0) != 0) return;
    self[n] = '\0';
    execv(self, argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return ZN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        const char *core = zn_blas_better_core();
        printf("znet %s (%s; OpenBLAS kernels %s)\ncpu kernel paths:", ZNET_VERSION, ZNET_BUILT_IN,
               core ? core : zn_blas_core());
        for (int p = 0; p < ZN_CPU_PATH_COUNT; p++)
            if (zn_cpu_path_has((zn_cpu_path)p)) printf(" %s", zn_cpu_path_name((zn_cpu_path)p));
        printf(" (this CPU; ZNET_CPU_PATH picks one, default the last)\n");
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (commands[i].computes) restart_with_better_blas(argv);
            return commands[i].run(argc - 1, argv + 1);
        }
    const char *names[16];
    for (int i = 0; i < n_commands; i++) names[i] = commands[i].name;
    fprintf(stderr, "znet: unknown command '%s'\n", argv[1]);
    const char *near = zn_cli_did_you_mean(argv[1], names, n_commands);
    if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
    usage(stderr);
    return ZN_EXIT_USAGE;
}
