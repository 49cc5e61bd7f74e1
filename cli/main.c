/* main.c: the `znet` command: dispatches to one function per subcommand (cli/cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "backends/cpu/cpu_features.h"
#include "cli.h"

static const zn_command commands[] = {
    {"check", "parse a model file, resolve it and infer every shape", zn_cmd_check},
    {"graph", "print the graph as Graphviz DOT (--dot) or text (--text)", zn_cmd_graph},
    {"summary", "per-layer table: shapes, parameters, multiply-adds, memory", zn_cmd_summary},
    {"run", "train the model with its recipe; per-epoch accuracy, logs, checkpoints", zn_cmd_run},
    {"eval", "test accuracy per head and vote, confusion matrix, of a checkpoint", zn_cmd_eval},
    {"predict", "top classes of every head and the vote for your own images (PNG, JPEG, .npy)", zn_cmd_predict},
    {"export", "write the inference graph and a checkpoint's values as ONNX (opset 17)", zn_cmd_export},
    {"compare", "models side by side: parameters, cost, memory, accuracy from run logs", zn_cmd_compare},
    {"bench", "time training steps and inference: images/s, GFLOP/s, memory", zn_cmd_bench},
    {"data", "get a data set (znet data get cifar10) or show where each is found", zn_cmd_data},
    {"plot", "plot training logs (znet run --log) as an SVG of loss and accuracy", zn_cmd_plot},
};
static const int n_commands = sizeof commands / sizeof commands[0];

static void usage(FILE *f)
{
    fprintf(f, "usage: znet COMMAND [options] FILE.znet\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`znet COMMAND --help` describes a command's options; docs/cli.md has them all.\n"
               "exit codes: 0 success, 1 errors in the model file or its data, 2 bad command line.\n");
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
        printf("znet %s (%s)\ncpu kernel paths:", ZNET_VERSION, ZNET_BUILT_IN);
        for (int p = 0; p < ZN_CPU_PATH_COUNT; p++)
            if (zn_cpu_path_has((zn_cpu_path)p)) printf(" %s", zn_cpu_path_name((zn_cpu_path)p));
        printf(" (this CPU; ZNET_CPU_PATH picks one, default the last)\n");
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    const char *names[16];
    for (int i = 0; i < n_commands; i++) names[i] = commands[i].name;
    fprintf(stderr, "znet: unknown command '%s'\n", argv[1]);
    const char *near = zn_cli_did_you_mean(argv[1], names, n_commands);
    if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
    usage(stderr);
    return ZN_EXIT_USAGE;
}
