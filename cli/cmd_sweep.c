/* cmd_sweep.c: `znet sweep DIR MODEL.znet... [--set K=V1,V2]... [--seeds 0,1,2] [--jobs N]`: the
 * grid of configurations x seeds as a queue of runs in DIR (runtime/sweep.h keeps it on disk),
 * each run a child process `znet run` of this same binary, so that a crash ends one run, not the
 * sweep. A second invocation continues part-way runs and skips finished ones; SIGINT/SIGTERM is
 * passed on once to every run, which saves and stops (docs/sweep.md). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "graph/inspect.h"
#include "graph/util.h"
#include "runtime/profile.h"
#include "runtime/sweep.h"

#define MAX_VALUES 256
#define MAX_SEEDS 1024
#define MAX_RUNS 10000 /* a sweep of 10,000 runs is months of CPU; its queue takes ~70 MB */
#define MAX_JOBS 64

/* The options of `znet run` a sweep passes to every run. in_config: they change the result, so
 * they are part of the configuration (its name and folder); the others only say how to run. */
typedef struct {
    zn_opt opt;
    bool in_config;
} passed_opt;

typedef struct {
    const char *data, *backend, *precision;
    long limit, test_limit, log_every;
    bool check_numerics, deterministic;
} run_flags;

typedef struct {
    char dir[4096];
    zn_sweep_manifest m;
    zn_setting *settings; /* [n_settings], pointing into the grid */
    int n_settings;
    const char *model;
    zn_sweep_state state;
    int lock; /* fd holding the run's lock while this sweep has it queued */
    pid_t pid;
    double started; /* zn_seconds() when its child began: a monotonic clock for the minutes it ran */
    int64_t params; /* what a log taken in with --adopt must record: parameters, batch, epochs */
    int batch, epochs;
} sweep_run;

/* Signals: the first asks every run to save and stop, and no new run to start; each is passed
 * on to the runs at once (a second makes them stop without saving, as `znet run` does). */
static volatile sig_atomic_t stop_signal;
static volatile pid_t children[MAX_JOBS];

static void on_signal(int sig)
{
    stop_signal = sig;
    for (int i = 0; i < MAX_JOBS; i++)
        if (children[i] > 0) kill(children[i], sig);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "znet sweep: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n  see `znet sweep --help`\n");
    va_end(ap);
    return ZN_EXIT_USAGE;
}

/* --seeds "0,1,2" into seeds[0..*n); -1 to go on, else an exit code. */
static int parse_seeds(const char *text, long *seeds, int *n)
{
    *n = 0;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || v < 0 || v > 2147483647L)
            return usage_error("--seeds needs integers from 0 to 2147483647 separated by commas, got '%s'", text);
        for (int i = 0; i < *n; i++)
            if (seeds[i] == v) return usage_error("--seeds '%s' names a seed twice", text);
        if (*n == MAX_SEEDS) return usage_error("--seeds '%s': at most %d seeds", text, MAX_SEEDS);
        seeds[(*n)++] = v;
        if (!*end) return -1;
        p = end + 1;
    }
}

typedef struct {
    const char *key;
    char *values[MAX_VALUES];
    int n;
} axis;

/* Every --set into an axis of the grid; -1 to go on, else an exit code. */
static int parse_grid(const zn_cli_common *c, axis *axes, long *points)
{
    *points = 1;
    for (int i = 0; i < c->n_settings; i++) {
        const zn_setting *s = &c->settings[i];
        char err[512];
        axes[i].key = s->key;
        if (strcmp(s->key, "train.seed") == 0)
            return usage_error("the seeds are given with --seeds 0,1,2, not as %s", s->key);
        for (int k = 0; k < i; k++)
            if (strcmp(axes[k].key, s->key) == 0)
                return usage_error("--set %s is given twice: give its values as one list (--set %s=V1,V2)", s->key,
                                   s->key);
        if (!zn_sweep_split(s->value, axes[i].values, MAX_VALUES, &axes[i].n, err, sizeof err)) {
            fprintf(stderr, "znet sweep: --set %s=%s: %s\n", s->key, s->value, err);
            return ZN_EXIT_USAGE;
        }
        *points *= axes[i].n;
        if (*points > MAX_RUNS) return usage_error("the --set grids make more than %d configurations", MAX_RUNS);
    }
    return -1;
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(buf);
    if (used < len) snprintf(buf + used, len - used, fmt, a, b);
}

/* A run's command line: this binary's `run` with the configuration's settings, the seed, the
 * run's own log and checkpoint (resumed from when it has one) and the options passed on. */
static char **child_argv(const sweep_run *r, const zn_cli_common *c, const passed_opt *po, int n_po, long threads)
{
    char **argv = zn_calloc((size_t)(2 * r->n_settings + 2 * c->n_no_pass + 2 * n_po + 24), sizeof *argv);
    int n = 0;
    char buf[4300];
    argv[n++] = zn_strdup("znet");
    argv[n++] = zn_strdup("run");
    argv[n++] = zn_strdup(r->model);
    for (int i = 0; i < r->n_settings; i++) {
        argv[n++] = zn_strdup("--set");
        snprintf(buf, sizeof buf, "%s=%s", r->settings[i].key, r->settings[i].value);
        argv[n++] = zn_strdup(buf);
    }
    for (int i = 0; i < c->n_no_pass; i++) argv[n++] = zn_strdup("--no-pass"), argv[n++] = zn_strdup(c->no_pass[i]);
    snprintf(buf, sizeof buf, "train.seed=%ld", r->m.seed);
    argv[n++] = zn_strdup("--set");
    argv[n++] = zn_strdup(buf);
    snprintf(buf, sizeof buf, "%ld", threads);
    argv[n++] = zn_strdup("--threads");
    argv[n++] = zn_strdup(buf);
    argv[n++] = zn_strdup("--quiet");
    const char *files[][2] = {{"--log", ZN_SWEEP_LOG}, {"--save", ZN_SWEEP_CKPT}, {"--resume", ZN_SWEEP_CKPT}};
    for (int k = 0; k < (r->state == ZN_SWEEP_PARTIAL ? 3 : 2); k++) {
        snprintf(buf, sizeof buf, "%s/%s", r->dir, files[k][1]);
        argv[n++] = zn_strdup(files[k][0]);
        argv[n++] = zn_strdup(buf);
    }
    for (int i = 0; i < n_po; i++) {
        const zn_opt *o = &po[i].opt;
        if (o->kind == ZN_OPT_FLAG && *(bool *)o->dest) argv[n++] = zn_strdup(o->name);
        if (o->kind == ZN_OPT_STRING && *(const char **)o->dest)
            argv[n++] = zn_strdup(o->name), argv[n++] = zn_strdup(*(const char **)o->dest);
        if (o->kind == ZN_OPT_INT && *(long *)o->dest) {
            snprintf(buf, sizeof buf, "%ld", *(long *)o->dest);
            argv[n++] = zn_strdup(o->name), argv[n++] = zn_strdup(buf);
        }
    }
    return argv;
}

static void free_argv(char **argv)
{
    for (char **a = argv; *a; a++) free(*a);
    free(argv);
}

/* Run r's output file opened for appending, its new attempt's header begun ("== znet sweep: DATE
 * on CPU:", the caller says what follows); -1 after a message. */
static int open_output(const sweep_run *r)
{
    char path[4200], cpu[128], when[64];
    snprintf(path, sizeof path, "%s/%s", r->dir, ZN_SWEEP_OUTPUT);
    int out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) {
        fprintf(stderr, "znet sweep: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&wall.tv_sec));
    zn_sweep_cpu(cpu, sizeof cpu);
    dprintf(out, "== znet sweep: %s on %s:", when, cpu);
    return out;
}

/* Starts run r as a child process, its output appended to its output file after a line saying
 * when, where and how; false (r not started) after a message. Signals are held off meanwhile so
 * that a stop either comes before (nothing starts) or finds the child in `children`. */
static bool launch(sweep_run *r, int slot, char **argv)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    int out = stop_signal ? -1 : open_output(r);
    bool ok = out >= 0;
    if (ok) {
        for (char **a = argv; *a; a++) dprintf(out, " %s", *a);
        dprintf(out, "\n");
        pid_t parent = getpid();
        r->pid = fork();
        if (r->pid == 0) {
            /* its own process group, so that a Ctrl-C at the terminal reaches it once, through
             * the sweep; and SIGTERM should the sweep die without passing one on */
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(143);
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGPIPE, SIG_DFL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            int in = open("/dev/null", O_RDONLY);
            if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(126);
            execv("/proc/self/exe", argv);
            dprintf(2, "znet sweep: cannot run /proc/self/exe: %s\n", strerror(errno));
            _exit(127);
        }
        if (r->pid < 0) fprintf(stderr, "znet sweep: fork: %s\n", strerror(errno));
        ok = r->pid > 0;
        if (ok) children[slot] = r->pid, r->started = zn_seconds();
        close(out);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return ok;
}

/* The last line of a run's output (for the message when it fails) into out. */
static void last_line(const char *dir, char *out, size_t len)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/%s", dir, ZN_SWEEP_OUTPUT);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (line[strspn(line, " \t\n")]) snprintf(out, len, "%.*s", (int)strcspn(line, "\n"), line);
    if (f) fclose(f);
}

typedef struct {
    int finished, failed, stopped;
} tally;

/* A run's child has ended with wait status st: says how, and counts it. */
static void ended(sweep_run *r, int st, int k, int total, tally *t)
{
    char why[64], line[1024];
    int mins = (int)((zn_seconds() - r->started + 30) / 60);
    zn_sweep_state state = ZN_SWEEP_NEW;
    char err[1024];
    bool read = zn_sweep_state_of(r->dir, &state, err, sizeof err);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && read && state == ZN_SWEEP_FINISHED) {
        printf("[%d/%d] finished %s seed %ld after %d min: %s/%s\n", k, total, r->m.config, r->m.seed, mins, r->dir,
               ZN_SWEEP_LOG);
        t->finished++;
        return;
    }
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 130 || WEXITSTATUS(st) == 143) && state == ZN_SWEEP_PARTIAL) {
        printf("[%d/%d] stopped %s seed %ld after %d min; saved, the next `znet sweep` continues it\n", k, total,
               r->m.config, r->m.seed, mins);
        t->stopped++;
        return;
    }
    if (WIFSIGNALED(st)) snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(st));
    else if (WEXITSTATUS(st) == 0) snprintf(why, sizeof why, "ended without its final log record");
    else snprintf(why, sizeof why, "exit %d", WEXITSTATUS(st));
    last_line(r->dir, line, sizeof line);
    printf("[%d/%d] FAILED %s seed %ld (%s): see %s/%s\n", k, total, r->m.config, r->m.seed, why, r->dir,
           ZN_SWEEP_OUTPUT);
    if (!read) printf("        %s\n", err);
    else if (line[0]) printf("        %s\n", line);
    t->failed++;
}

/* The configuration's name: the model's name, its settings and the options that change results. */
static void config_name(const char *model_name, const zn_setting *s, int n, const passed_opt *po, int n_po,
                        char *out, size_t len)
{
    snprintf(out, len, "%s", model_name);
    for (int i = 0; i < n; i++) append(out, len, " %s=%s", s[i].key, s[i].value);
    for (int i = 0; i < n_po; i++) {
        char v[32];
        if (!po[i].in_config) continue;
        if (po[i].opt.kind == ZN_OPT_INT && *(long *)po[i].opt.dest)
            snprintf(v, sizeof v, "%ld", *(long *)po[i].opt.dest), append(out, len, " %s %s", po[i].opt.name, v);
        if (po[i].opt.kind == ZN_OPT_STRING && *(const char **)po[i].opt.dest)
            append(out, len, " %s %s", po[i].opt.name, *(const char **)po[i].opt.dest);
    }
}

/* Makes run r's folder and takes its lock: 1 taken, 0 another sweep holds it (counted in *busy),
 * -1 failed; the last two after a message. */
static int lock_run(sweep_run *r, int *busy)
{
    char path[4200];
    if (mkdir(r->dir, 0777) != 0 && errno != EEXIST) {
        printf("FAILED %s seed %ld: cannot make %s: %s\n", r->m.config, r->m.seed, r->dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/lock", r->dir);
    r->lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock >= 0 && flock(r->lock, LOCK_EX | LOCK_NB) == 0) return 1;
    bool held = r->lock >= 0 && errno == EWOULDBLOCK;
    if (held) printf("skipped %s seed %ld: another znet sweep is running it (%s)\n", r->m.config, r->m.seed, r->dir);
    else printf("FAILED %s seed %ld: cannot lock %s: %s\n", r->m.config, r->m.seed, path, strerror(errno));
    if (r->lock >= 0) close(r->lock);
    r->lock = -1;
    *busy += held;
    return held ? 0 : -1;
}

/* Readies run r (its folder, lock, state, manifest) for the queue: 1 queued, 0 nothing to do
 * (finished, or another sweep has it), -1 failed (said why). */
static int prepare_run(sweep_run *r, int *finished_before, int *busy)
{
    char err[1024], cpu[128];
    int locked = lock_run(r, busy);
    if (locked <= 0) return locked;
    zn_sweep_manifest old;
    bool have = zn_sweep_manifest_read(r->dir, &old, err, sizeof err);
    if (have && old.fingerprint != r->m.fingerprint) {
        printf("%s %s seed %ld: %s was made from another version of the model (fingerprint %016llx, now %016llx)%s\n",
               r->state == ZN_SWEEP_FINISHED ? "note:" : "FAILED", r->m.config, r->m.seed, r->dir,
               (unsigned long long)old.fingerprint, (unsigned long long)r->m.fingerprint,
               "; remove the folder to run it again");
        return r->state == ZN_SWEEP_FINISHED ? (++*finished_before, 0) : -1;
    }
    if (!zn_sweep_state_of(r->dir, &r->state, err, sizeof err)) {
        printf("FAILED %s seed %ld: %s\n", r->m.config, r->m.seed, err);
        return -1;
    }
    /* the CPUs a run's epochs were timed on and the log a finished run was adopted from (an
     * adoption cut short has none: the sweep trains it): its manifest keeps them; the label is
     * this invocation's, finished runs included */
    if (have) {
        memcpy(r->m.cpus, old.cpus, sizeof old.cpus), r->m.n_cpus = old.n_cpus;
        if (r->state == ZN_SWEEP_FINISHED) memcpy(r->m.adopted, old.adopted, sizeof old.adopted);
    }
    zn_sweep_cpu(cpu, sizeof cpu);
    bool seen = r->state == ZN_SWEEP_FINISHED;
    for (int i = 0; i < r->m.n_cpus; i++) seen |= strcmp(r->m.cpus[i], cpu) == 0;
    if (!seen && r->m.n_cpus < ZN_SWEEP_MAX_CPUS) snprintf(r->m.cpus[r->m.n_cpus++], sizeof r->m.cpus[0], "%s", cpu);
    if (!zn_sweep_manifest_write(r->dir, &r->m, err, sizeof err)) {
        printf("FAILED %s seed %ld: %s\n", r->m.config, r->m.seed, err);
        return -1;
    }
    return r->state == ZN_SWEEP_FINISHED ? (++*finished_before, 0) : 1;
}

/* Runs queue[0..n) at most jobs at once; returns the tally. */
static tally run_queue(sweep_run *queue, int n, int jobs, const zn_cli_common *c, const passed_opt *po, int n_po,
                       long threads)
{
    tally t = {0};
    int next = 0, active = 0;
    sweep_run *slot_run[MAX_JOBS] = {0};
    int number[MAX_JOBS] = {0};
    while (active > 0 || (next < n && !stop_signal)) {
        for (int s = 0; s < jobs && next < n && !stop_signal; s++) {
            if (slot_run[s]) continue;
            sweep_run *r = &queue[next++];
            char **argv = child_argv(r, c, po, n_po, threads);
            printf("[%d/%d] %s %s seed %ld in %s\n", next, n, r->state == ZN_SWEEP_PARTIAL ? "continue" : "start",
                   r->m.config, r->m.seed, r->dir);
            fflush(stdout);
            if (launch(r, s, argv)) slot_run[s] = r, number[s] = next, active++;
            else if (!stop_signal) t.failed++;
            free_argv(argv);
        }
        int st;
        pid_t pid = wait(&st);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: none left (never while active > 0) */
        }
        for (int s = 0; s < jobs; s++) {
            if (!slot_run[s] || slot_run[s]->pid != pid) continue;
            children[s] = 0;
            ended(slot_run[s], st, number[s], n, &t);
            fflush(stdout);
            slot_run[s] = NULL;
            active--;
        }
    }
    return t;
}

/* Whether log_path, for --adopt, is a finished run of r's configuration: it must record r's
 * model, parameters, batch, planned epochs and seed. false after a message. */
static bool adoptable(const sweep_run *r, const char *log_path)
{
    char err[1024], why[3072] = "";
    zn_train_log log;
    if (!zn_train_log_read(log_path, &log, err, sizeof err)) {
        fprintf(stderr, "znet sweep: cannot adopt %s\n", err);
        return false;
    }
    const char *missing = isnan(log.params) ? "params" : isnan(log.batch) ? "batch"
                        : isnan(log.epochs_planned) ? "epochs" : isnan(log.seed) ? "seed" : NULL;
    if (missing)
        snprintf(why, sizeof why, "its run record has no \"%s\", so it cannot be matched with the configuration",
                 missing);
    else if (isnan(log.train_time))
        snprintf(why, sizeof why, "it has no final record: the run has not finished (finish it with `znet run "
                                  "--resume` first)");
    else if (strcmp(log.model, r->m.model_name) != 0 || log.params != (double)r->params ||
             log.batch != r->batch || log.epochs_planned != r->epochs || log.seed != (double)r->m.seed)
        snprintf(why, sizeof why, "it is a run of %s with %.0f parameters, batch %.0f, %.0f epochs, seed %.0f; "
                 "the configuration %s seed %ld is %s with %lld parameters, batch %d, %d epochs",
                 log.model, log.params, log.batch, log.epochs_planned, log.seed, r->m.config, r->m.seed,
                 r->m.model_name, (long long)r->params, r->batch, r->epochs);
    else if (strlen(log_path) >= sizeof r->m.adopted)
        snprintf(why, sizeof why, "its path is longer than %zu bytes", sizeof r->m.adopted - 1);
    zn_train_log_free(&log);
    if (why[0]) fprintf(stderr, "znet sweep: cannot adopt %s: %s\n", log_path, why);
    return !why[0];
}

/* --adopt: takes log_path (adoptable) into the sweep folder as run r, the one run the command
 * names. Nothing is trained; a refusal leaves no run folder behind that this call made. Returns
 * the exit code. */
static int adopt_run(sweep_run *r, const char *log_path)
{
    char err[1024], lock[4200];
    bool fresh = access(r->dir, F_OK) != 0;
    int busy = 0;
    if (lock_run(r, &busy) <= 0) {
        fprintf(stderr, "znet sweep: cannot adopt %s: its run folder %s is not free (above)\n", log_path, r->dir);
        return ZN_EXIT_ERROR;
    }
    snprintf(r->m.adopted, sizeof r->m.adopted, "%s", log_path);
    bool ok = zn_sweep_adopt(r->dir, &r->m, log_path, err, sizeof err);
    int out = ok ? open_output(r) : -1;
    if (out >= 0) {
        dprintf(out, " adopted %s here, a run made outside this sweep (where it trained is not recorded)\n",
                log_path);
        close(out);
    }
    if (!ok && fresh) {
        snprintf(lock, sizeof lock, "%s/lock", r->dir);
        unlink(lock);
        rmdir(r->dir);
    }
    close(r->lock);
    if (!ok) {
        fprintf(stderr, "znet sweep: cannot adopt %s: %s\n", log_path, err);
        return ZN_EXIT_ERROR;
    }
    printf("adopted %s as %s seed %ld: %s (`znet compare` counts it, `znet sweep` skips it)\n", log_path,
           r->m.config, r->m.seed, r->dir);
    return ZN_EXIT_OK;
}

int zn_cmd_sweep(int argc, char **argv)
{
    run_flags f = {0};
    const char *seeds_text = "0", *name = NULL, *adopt = NULL;
    long jobs = 1, threads = 0;
    passed_opt po[] = {
        {{"--data", ZN_OPT_STRING, "DIR", "where the data set is (as for znet run)", &f.data, 0, 0}, false},
        {{"--backend", ZN_OPT_STRING, "NAME", "backend of every run (default cpu)", &f.backend, 0, 0}, false},
        {{"--limit", ZN_OPT_INT, "N", "train on the first N training examples only", &f.limit, 1, 1 << 30}, true},
        {{"--test-limit", ZN_OPT_INT, "N", "evaluate on the first N test examples only", &f.test_limit, 1, 1 << 30},
         true},
        {{"--precision", ZN_OPT_STRING, "P", "fp32, fp16 or bf16 (cuda backend)", &f.precision, 0, 0}, true},
        {{"--log-every", ZN_OPT_INT, "K", "also log every K-th step's loss and lr", &f.log_every, 1, 1 << 30}, false},
        {{"--deterministic", ZN_OPT_FLAG, NULL, "only algorithms that give the same bits every run",
          &f.deterministic, 0, 0}, false},
        {{"--check-numerics", ZN_OPT_FLAG, NULL, "stop a run at its first NaN/Inf", &f.check_numerics, 0, 0}, false},
    };
    enum { N_PO = sizeof po / sizeof po[0] };
    enum { N_OWN = 5 };
    zn_opt opts[N_PO + N_OWN] = {
        {"--name", ZN_OPT_STRING, "LABEL", "the configurations' name in compare and plot (with the --set values\n"
                                           "                    that vary), instead of the model and its settings", &name, 0, 0},
        {"--seeds", ZN_OPT_STRING, "S1,S2", "the seeds every configuration runs with (default 0)", &seeds_text, 0, 0},
        {"--jobs", ZN_OPT_INT, "N", "runs at once (default 1); the threads are split between them", &jobs, 1, MAX_JOBS},
        {"--threads", ZN_OPT_INT, "N", "CPU threads of all runs together (default: every core)", &threads, 1, 1024},
        {"--adopt", ZN_OPT_STRING, "LOG", "take LOG, a finished `znet run --log` of the one run this command\n"
                                          "                    names, into DIR as that run; nothing is trained", &adopt, 0, 0},
    };
    for (int i = 0; i < N_PO; i++) opts[N_OWN + i] = po[i].opt;
    static const char *models[64];
    int n_models = 0;
    zn_cli_common c;
    int rc = zn_cli_parse_model_args(
        argc, argv, "sweep DIR MODEL.znet... [--set K=V1,V2,...]... [--seeds S1,S2,...] [--jobs N] [options]",
        "Trains every model with every combination of the --set values (a grid: --set width=8,16\n"
        "--set 'filters=[8],[8,16]' is four configurations) and every seed, each run in its own\n"
        "folder of DIR with its log, checkpoint, output and manifest. Run it again to continue:\n"
        "finished runs are skipped, stopped ones resumed from their checkpoint. Ctrl-C or SIGTERM\n"
        "stops every run after its step, saved. A run that fails is named with its output file\n"
        "and the sweep goes on; the exit status is then 1. Several models and sweeps may share\n"
        "DIR. `znet compare DIR` and `znet plot DIR` summarise it (docs/sweep.md). Example:\n"
        "  znet sweep runs models/davidnet_multisoft.znet models/davidnet_zee.znet --set width=16 \\\n"
        "      --seeds 0,1,2 --data ../shared/data/cifar-10-batches-bin",
        opts, N_PO + N_OWN, &c, models, 64, &n_models);
    if (rc >= 0) return rc;
    const char *dir = c.file;
    if (n_models == 0) return usage_error("no model file after the folder %s", dir);
    for (int i = 0; i < n_models; i++)
        for (int k = 0; k < i; k++)
            if (zn_same_file(models[i], models[k]))
                return usage_error("the model %s is given twice (as %s)", models[i], models[k]);
    long seeds[MAX_SEEDS];
    int n_seeds;
    if ((rc = parse_seeds(seeds_text, seeds, &n_seeds)) >= 0) return rc;
    zn_precision precision;
    if (f.precision && !zn_cli_precision("sweep", f.precision, &precision)) return ZN_EXIT_USAGE;
    const zn_backend_ops *be;
    if (f.backend && (rc = zn_cli_backend("sweep", f.backend, &be)) >= 0) return rc;
    static axis axes[ZN_MAX_SETTINGS];
    long points;
    if ((rc = parse_grid(&c, axes, &points)) >= 0) return rc;
    long total = points * n_models * n_seeds;
    if (total > MAX_RUNS) return usage_error("the grid makes more than %d runs", MAX_RUNS);
    if (adopt && total != 1)
        return usage_error("--adopt takes one run: one model, one value per --set and one seed (this names %ld)",
                           total);
    /* every configuration compiled first: a bad value stops the sweep before anything is made */
    sweep_run *queue = zn_calloc((size_t)total, sizeof *queue);
    zn_setting *grid = zn_calloc((size_t)(points * n_models * (c.n_settings + 1)), sizeof *grid);
    int n = 0, finished_before = 0, busy = 0, failed = 0;
    bool ok = true;
    for (int m = 0; ok && m < n_models; m++)
        for (long p = 0; ok && p < points; p++) {
            zn_setting *s = grid + (m * points + p) * (c.n_settings + 1);
            for (long i = c.n_settings - 1, rest = p; i >= 0; rest /= axes[i].n, i--)
                s[i] = (zn_setting){axes[i].key, axes[i].values[rest % axes[i].n]};
            zn_cli_common one = c;
            one.file = models[m];
            memcpy(one.settings, s, sizeof *s * (size_t)c.n_settings);
            zn_compiled cm = {0};
            ok = zn_cli_compile(&one, (zn_compile_opts){.mode = ZN_COMPILE_FORWARD}, &cm);
            sweep_run r = {.settings = s, .n_settings = c.n_settings, .model = models[m], .lock = -1};
            if (ok) {
                snprintf(r.m.model, sizeof r.m.model, "%s", models[m]);
                snprintf(r.m.model_name, sizeof r.m.model_name, "%s", cm.graph.model_name);
                r.m.fingerprint = cm.fingerprint;
                r.params = zn_graph_param_count(&cm.graph), r.batch = cm.recipe.batch, r.epochs = cm.recipe.epochs;
                config_name(cm.graph.model_name, s, c.n_settings, po, N_PO, r.m.config, sizeof r.m.config);
                if (name) snprintf(r.m.label, sizeof r.m.label, "%s", name);
                for (int i = 0; name && i < c.n_settings; i++)
                    if (axes[i].n > 1) append(r.m.label, sizeof r.m.label, " %s=%s", s[i].key, s[i].value);
            } else {
                fprintf(stderr, "znet sweep: in the configuration %s", models[m]);
                for (int i = 0; i < c.n_settings; i++) fprintf(stderr, " %s=%s", s[i].key, s[i].value);
                fprintf(stderr, "; no run was started\n");
            }
            zn_compiled_free(&cm);
            for (int k = 0; ok && k < n_seeds; k++) {
                char name[256];
                r.m.seed = seeds[k];
                zn_sweep_folder(r.m.config, seeds[k], name, sizeof name);
                snprintf(r.dir, sizeof r.dir, "%s/%s", dir, name);
                queue[n++] = r;
            }
        }
    ok = ok && (!adopt || adoptable(&queue[0], adopt)); /* before anything is made */
    if (ok && mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "znet sweep: cannot make the folder %s: %s\n", dir, strerror(errno));
        ok = false;
    }
    if (ok && adopt) {
        rc = adopt_run(&queue[0], adopt);
        n = 0;
    }
    /* the queue keeps the runs that have something to do */
    int kept = 0;
    for (int i = 0; ok && i < n; i++) {
        int got = prepare_run(&queue[i], &finished_before, &busy);
        if (got > 0) queue[kept++] = queue[i];
        else if (queue[i].lock >= 0) close(queue[i].lock);
        failed += got < 0;
    }
    n = ok ? kept : 0;
    if (!ok) rc = ZN_EXIT_ERROR;
    else if (!adopt) {
        long per = (threads ? threads : sysconf(_SC_NPROCESSORS_ONLN)) / jobs;
        per = per < 1 ? 1 : per;
        printf("sweep %s: %ld runs (%ld configurations x %d seeds): %d finished before, %d to run%s, %ld at once "
               "with %ld threads each\n", dir, total, points * n_models, n_seeds, finished_before, n,
               busy ? " (others are another sweep's now)" : "", jobs, per);
        fflush(stdout);
        /* no SA_RESTART: wait() returns. SIGPIPE ignored: a closed terminal or pipe must not end
         * a sweep of days (its runs write to their own files) */
        struct sigaction sa = {.sa_handler = on_signal}, ign = {.sa_handler = SIG_IGN}, old[3];
        sigemptyset(&sa.sa_mask);
        sigemptyset(&ign.sa_mask);
        sigaction(SIGINT, &sa, &old[0]);
        sigaction(SIGTERM, &sa, &old[1]);
        sigaction(SIGPIPE, &ign, &old[2]);
        tally t = run_queue(queue, n, (int)jobs, &c, po, N_PO, per);
        sigaction(SIGINT, &old[0], NULL);
        sigaction(SIGTERM, &old[1], NULL);
        sigaction(SIGPIPE, &old[2], NULL);
        t.failed += failed;
        int left = n - t.finished - (t.failed - failed);
        printf("sweep %s: %d finished (%d now), %d failed, %d left%s\n", dir, finished_before + t.finished,
               t.finished, t.failed, left, left ? ": run the same command again to continue" : "");
        rc = stop_signal ? 128 + stop_signal : t.failed || left ? ZN_EXIT_ERROR : ZN_EXIT_OK;
    }
    for (int i = 0; i < n; i++) close(queue[i].lock);
    for (int i = 0; i < c.n_settings; i++) zn_sweep_free_values(axes[i].values, axes[i].n);
    free(queue);
    free(grid);
    return rc;
}
