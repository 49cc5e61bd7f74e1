/* sweep.h: a sweep's queue on disk (`znet sweep`, docs/sweep.md): the --set grids (V1,V2,...
 * split at top-level commas), each run's folder name and its manifest (model, fingerprint,
 * settings, seed, the CPUs it ran on), where a run stands (new, part-way, finished), and the
 * runs of a sweep folder read back for `znet compare DIR` and `znet plot DIR`. */
#ifndef ZN_SWEEP_H
#define ZN_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang/program.h"
#include "report/plot.h"

#define ZN_SWEEP_MANIFEST "manifest.json"
#define ZN_SWEEP_LOG "log.jsonl"
#define ZN_SWEEP_CKPT "run.ckpt"
#define ZN_SWEEP_OUTPUT "output.txt" /* the run's stdout and stderr, every attempt appended */
#define ZN_SWEEP_MAX_CPUS 8
#define ZN_SWEEP_TEXT 1024

/* The values of one --set grid, "V1,V2,...", split at the commas outside brackets, parentheses
 * and quotes ("[8],[8,16]" is two values); each value malloc'ed into out[0..*n) (at most max).
 * false with err naming what is wrong ("an empty value", "an unclosed '['", ...). */
bool zn_sweep_split(const char *text, char **out, int max, int *n, char *err, size_t len);
void zn_sweep_free_values(char **values, int n);

typedef struct {
    char config[ZN_SWEEP_TEXT];     /* what the runs of one configuration share: "fashion_small width=8" */
    char label[ZN_SWEEP_TEXT];      /* its name in tables and plots (`znet sweep --name`); "": config */
    char model[ZN_SWEEP_TEXT];      /* the model file as the sweep was given it */
    char model_name[64];            /* the model's name in the file */
    uint64_t fingerprint;           /* the model's (checkpoints match it) */
    long seed;
    int n_cpus;
    char cpus[ZN_SWEEP_MAX_CPUS][128]; /* the CPU models it ran on, in order (/proc/cpuinfo) */
    char adopted[ZN_SWEEP_TEXT];    /* the log it was taken from (`znet sweep --adopt`); "": the
                                       sweep trained it */
} zn_sweep_manifest;

/* The folder name of a run: the configuration made safe for a file name (at most 80 bytes), a
 * hash of it (so configurations that look alike once made safe stay apart), and the seed. */
void zn_sweep_folder(const char *config, long seed, char *out, size_t len);

/* This machine's CPU model ("model name" in /proc/cpuinfo; "unknown CPU" without one). */
void zn_sweep_cpu(char *out, size_t len);

/* DIR/ZN_SWEEP_MANIFEST written whole (a temporary file renamed over it) or read back; false
 * with err naming the file. */
bool zn_sweep_manifest_write(const char *dir, const zn_sweep_manifest *m, char *err, size_t len);
bool zn_sweep_manifest_read(const char *dir, zn_sweep_manifest *m, char *err, size_t len);

/* Makes folder dir the run of m from log_path, a finished run made outside the sweep
 * (m->adopted names it): the log copied in, its manifest written, the log renamed into place.
 * Refused (false with err) when dir holds a run's manifest or log already, or log_path is that
 * log; a failure part-way takes back what it wrote. Whether the log fits m's configuration is
 * the caller's check. */
bool zn_sweep_adopt(const char *dir, const zn_sweep_manifest *m, const char *log_path, char *err, size_t len);

typedef enum {
    ZN_SWEEP_NEW,      /* no checkpoint: start from the beginning */
    ZN_SWEEP_PARTIAL,  /* a checkpoint: continue from it */
    ZN_SWEEP_FINISHED, /* its log holds the final record */
} zn_sweep_state;

/* Where the run in folder dir stands. A last log line cut short (the run killed while writing
 * it) is cut off, so that the resumed run appends whole lines. false with err when its log
 * cannot be read (the run cannot be continued: err says so). */
bool zn_sweep_state_of(const char *dir, zn_sweep_state *state, char *err, size_t len);

typedef struct {
    char dir[4096];        /* the run's folder */
    zn_sweep_manifest m;
    zn_train_log log;      /* its log (n_epochs 0 before the first epoch) */
    bool finished;         /* the log has its final record */
} zn_sweep_entry;

/* The runs in sweep folder dir, by folder name. Every entry that is not a run (no manifest, a
 * manifest or log that does not read, a log of another model or seed than its manifest says)
 * is named through skip(path, why, ctx) and left out. false with err when dir cannot be read. */
bool zn_sweep_scan(const char *dir, zn_sweep_entry **out, int *n,
                   void (*skip)(const char *path, const char *why, void *ctx), void *ctx, char *err, size_t len);
void zn_sweep_entries_free(zn_sweep_entry *e, int n);
/* The configurations of e[0..n), numbered in order of first appearance into config_of[i];
 * returns how many there are. */
int zn_sweep_configs(const zn_sweep_entry *e, int n, int *config_of);

#endif
