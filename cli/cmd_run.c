/* cmd_run.c: `znet run FILE` (train with the file's recipe), `znet eval FILE --weights CKPT` and
 * `znet predict FILE --weights CKPT IMAGES...`: the commands that run a model on its data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "graph/util.h"
#include "runtime/dist.h"
#include "runtime/predict.h"
#include "runtime/train.h"

/* Options both commands take, filled into o. */
#define RUN_COMMON_OPTS(o, backend, threads)                                                                 \
    {"--data", ZN_OPT_STRING, "DIR", "where the data set is (default: as `znet data where` shows)",         \
     &(o).data_dir, 0, 0},                                                                                  \
    {"--backend", ZN_OPT_STRING, "NAME", "backend to run on (default cpu)", &(backend), 0, 0},               \
    {"--threads", ZN_OPT_INT, "N", "CPU threads (default: every core)", &(threads), 0, 1024},               \
    {"--test-limit", ZN_OPT_INT, "N", "evaluate on the first N test examples only", &(o).test_limit_l, 1,   \
     1 << 30},                                                                                             \
    {"--check-numerics", ZN_OPT_FLAG, NULL, "stop at the first NaN/Inf and name the node that made it",    \
     &(o).check_numerics, 0, 0},                                                                            \
    {"--precision", ZN_OPT_STRING, "P", "fp32 (default), fp16 or bf16 convolutions and matrix products "    \
     "(cuda backend)", &(o).precision, 0, 0},                                                               \
    {"--deterministic", ZN_OPT_FLAG, NULL, "only algorithms that give the same bits every run",            \
     &(o).deterministic, 0, 0}

typedef struct {
    zn_run_opts run;
    const char *data_dir;
    long limit_l, test_limit_l, log_every_l;
    bool check_numerics, no_save, quiet, deterministic;
    const char *precision;
    const char *save, *log, *resume, *weights;
} run_args;

/* Writes s to f as one word for a POSIX shell: as it is when it holds only characters no shell
 * treats specially, else in single quotes (a quote inside as '\''). */
static void shell_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=/.,:@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

/* The command that continues this run from checkpoint ckpt after an interrupt: this program (by
 * its full path, so it works from the same folder whatever PATH holds), then the user's own
 * arguments without any --resume, then --resume ckpt. malloc'ed; NULL when out of memory. */
static char *resume_command(int argc, char **argv, const char *ckpt)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = '\0';
    else snprintf(exe, sizeof exe, "znet");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) return NULL;
    shell_word(f, exe);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--resume") == 0) i++;
        else if (strncmp(argv[i], "--resume=", 9) != 0) fputc(' ', f), shell_word(f, argv[i]);
    }
    fputs(" --resume ", f);
    shell_word(f, ckpt);
    return fclose(f) == 0 ? out : (free(out), NULL);
}

/* Finds the backend and compiles the model's forward graph for run and eval (the session makes the
 * rest of the pipeline); returns -1 to go on, else an exit code. */
static int prepare(run_args *a, zn_cli_common *c, const char *backend, long threads, zn_compiled *m)
{
    zn_precision precision = ZN_PRECISION_FP32;
    if (a->precision && !zn_cli_precision(NULL, a->precision, &precision)) return ZN_EXIT_USAGE;
    int rc = zn_cli_backend(NULL, backend, &a->run.backend);
    if (rc >= 0) return rc;
    if (!zn_cli_compile(c, (zn_compile_opts){.mode = ZN_COMPILE_FORWARD}, m)) return ZN_EXIT_ERROR;
    a->run.file = c->file;
    a->run.data_dir = a->data_dir;
    a->run.limit = (int)a->limit_l;
    a->run.test_limit = (int)a->test_limit_l;
    a->run.backend_opts = (zn_backend_opts){.check_numerics = a->check_numerics, .threads = (int)threads,
                                            .no_pass = c->no_pass, .n_no_pass = c->n_no_pass,
                                            .precision = precision, .deterministic = a->deterministic};
    return -1;
}

int zn_cmd_run(int argc, char **argv)
{
    run_args a = {0};
    const char *backend = "cpu";
    long threads = 0;
    const zn_opt opts[] = {
        RUN_COMMON_OPTS(a, backend, threads),
        {"--limit", ZN_OPT_INT, "N", "train on the first N training examples only", &a.limit_l, 1, 1 << 30},
        {"--log", ZN_OPT_STRING, "FILE", "write per-epoch figures as JSON lines (.jsonl) or CSV (.csv)", &a.log, 0, 0},
        {"--log-every", ZN_OPT_INT, "K", "also log the loss and lr of every K-th step (a JSON-lines --log)",
         &a.log_every_l, 1, 1 << 30},
        {"--save", ZN_OPT_STRING, "CKPT", "checkpoint path (default MODEL.ckpt), written every epoch and on Ctrl-C",
         &a.save, 0, 0},
        {"--no-save", ZN_OPT_FLAG, NULL, "write no checkpoint", &a.no_save, 0, 0},
        {"--resume", ZN_OPT_STRING, "CKPT", "continue a run from its checkpoint", &a.resume, 0, 0},
        {"--quiet", ZN_OPT_FLAG, NULL, "no progress bar (one line per epoch only)", &a.quiet, 0, 0},
        {"--sync-bn", ZN_OPT_FLAG, NULL, "under mpirun: batch norm's statistics over all ranks' rows (cpu backend)",
         &a.run.sync_bn, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "run [options] FILE.znet",
                          "Trains the model with the recipe of its train section (each setting can be\n"
                          "changed: --epochs 2, --set train.lr=0.1). Each epoch prints train loss and\n"
                          "accuracy, the test accuracy of every head and of the vote, lr and time; a\n"
                          "checkpoint is saved every epoch. Ctrl-C or SIGTERM finishes the step, saves a\n"
                          "checkpoint, prints the command that resumes the run and exits 130 or 143; a\n"
                          "second Ctrl-C stops at once. Example:\n"
                          "  znet run models/davidnet_zee.znet --set width=16 --epochs 24 --log zee.jsonl\n"
                          "Data-parallel on R processes (a build with MPI; docs/distributed.md):\n"
                          "  mpirun -np R znet run ... (or srun): the recipe's batch is split over the\n"
                          "ranks (R must divide it), gradients are summed, rank 0 logs and saves; batch\n"
                          "norm keeps statistics per rank unless --sync-bn.",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    size_t n = a.log ? strlen(a.log) : 0;
    if (a.log_every_l && (!a.log || (n > 4 && strcmp(a.log + n - 4, ".csv") == 0))) {
        fprintf(stderr, "znet run: --log-every writes step records, which only a JSON-lines log holds: "
                        "give --log FILE.jsonl\n");
        return ZN_EXIT_USAGE;
    }
    if ((rc = zn_dist_start()) >= 0) return rc;
    zn_compiled m = {0};
    rc = prepare(&a, &c, backend, threads, &m);
    if (rc < 0) rc = zn_cli_budget("run", &m.graph, &m.recipe, a.run.backend, &a.run.backend_opts, m.recipe.batch);
    if (rc < 0) {
        char save[4096];
        snprintf(save, sizeof save, "%s.ckpt", m.graph.model_name);
        a.run.save_path = a.no_save ? NULL : a.save ? a.save : save;
        a.run.log_path = a.log;
        a.run.log_every = (int)a.log_every_l;
        a.run.resume = a.resume;
        a.run.progress = !a.quiet && isatty(STDERR_FILENO);
        char *resume = a.run.save_path ? resume_command(argc, argv, a.run.save_path) : NULL;
        a.run.resume_command = resume;
        rc = zn_train_run(&m.graph, &m.recipe, &a.run);
        free(resume);
    }
    zn_compiled_free(&m);
    zn_dist_end();
    return rc;
}

int zn_cmd_eval(int argc, char **argv)
{
    run_args a = {0};
    const char *backend = "cpu";
    long threads = 0;
    const zn_opt opts[] = {
        RUN_COMMON_OPTS(a, backend, threads),
        {"--weights", ZN_OPT_STRING, "CKPT", "the checkpoint to evaluate (required)", &a.weights, 0, 0},
    };
    zn_cli_common c;
    int rc = zn_cli_parse(argc, argv, "eval --weights CKPT [options] FILE.znet",
                          "Evaluates a trained checkpoint on the test set: accuracy of every head and of\n"
                          "the vote, and the confusion matrix. The model file and --set values must be\n"
                          "those the checkpoint was trained with.",
                          opts, (int)(sizeof opts / sizeof opts[0]), &c);
    if (rc >= 0) return rc;
    if (!a.weights) {
        fprintf(stderr, "znet eval: --weights CKPT is required\n");
        return ZN_EXIT_USAGE;
    }
    if ((rc = zn_dist_start()) >= 0) return rc;
    zn_compiled m = {0};
    rc = prepare(&a, &c, backend, threads, &m);
    if (rc < 0) rc = zn_train_eval(&m.graph, &m.recipe, &a.run, a.weights);
    zn_compiled_free(&m);
    zn_dist_end();
    return rc;
}

int zn_cmd_predict(int argc, char **argv)
{
    run_args a = {0};
    const char *backend = "cpu";
    long threads = 0, top = 3;
    bool json = false;
    const zn_opt opts[] = {
        RUN_COMMON_OPTS(a, backend, threads),
        {"--weights", ZN_OPT_STRING, "CKPT", "the trained checkpoint (required)", &a.weights, 0, 0},
        {"--top", ZN_OPT_INT, "K", "classes shown per head (default 3)", &top, 1, ZN_DATASET_MAX_CLASSES},
        {"--json", ZN_OPT_FLAG, NULL, "one JSON object per image (file, heads' top classes, vote) instead of text",
         &json, 0, 0},
    };
    enum { MAX_INPUTS = 4096 };
    const char **inputs = zn_calloc(MAX_INPUTS, sizeof *inputs);
    int n_inputs = 0;
    zn_cli_common c;
    int rc = zn_cli_parse_model_args(
        argc, argv, "predict --weights CKPT [options] FILE.znet IMAGE|FOLDER|ARRAY.npy...",
        "Answers a trained checkpoint's model for your own PNG or JPEG images (a folder: every\n"
        "image in it and its subfolders): each image is converted to the model's input as an\n"
        "image folder's are (gray <-> RGB; size by the recipe's folder(size = ...), resize by\n"
        "default), takes raw 0-255 pixels, normalised as in training (the recipe's mean and std,\n"
        "else its data set's, found as run finds it: --data DIR), and gets the top classes of\n"
        "every head with their probabilities and the vote. A .npy array of images of the model's\n"
        "size is answered image by image. A file that cannot be read is named\n"
        "and the rest are still answered; the exit status is then 1. Example:\n"
        "  znet predict models/davidnet_zee.znet --weights zee.ckpt cat.png photos/",
        opts, (int)(sizeof opts / sizeof opts[0]), &c, inputs, MAX_INPUTS, &n_inputs);
    if (rc < 0 && !a.weights) {
        fprintf(stderr, "znet predict: --weights CKPT is required\n");
        rc = ZN_EXIT_USAGE;
    }
    if (rc < 0 && n_inputs == 0) {
        fprintf(stderr, "znet predict: no image or folder given after the model file\n");
        rc = ZN_EXIT_USAGE;
    }
    zn_compiled m = {0};
    if (rc < 0) rc = prepare(&a, &c, backend, threads, &m);
    if (rc < 0) {
        const zn_predict_opts p = {.weights = a.weights, .inputs = inputs, .n_inputs = n_inputs, .top = (int)top,
                                   .json = json};
        rc = zn_predict(&m.graph, &m.recipe, &a.run, &p);
    }
    zn_compiled_free(&m);
    free(inputs);
    return rc;
}
