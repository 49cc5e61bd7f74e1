/* checkpoint.h: training checkpoints: magic, format version, the graph's fingerprint, where the
 * run stands (epoch, step, seed), every parameter and batch-norm statistic, and the optimizer
 * state, closed by a checksum. Written atomically (PATH.tmp in the same folder, fsync, rename,
 * fsync of the folder), so a kill, a crash or a full disk never replaces a good checkpoint with a
 * bad one; a PATH.tmp left by a killed save is replaced by the next. */
#ifndef ZN_CHECKPOINT_H
#define ZN_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Version 2 holds the fingerprint of graph/hash.c's zn_graph_hash (ops by name); version 1, the
 * same layout, held zn_graph_hash_v1's (ops by enum number). Both load; saves write version 2. */
#define ZN_CKPT_VERSION 2
#define ZN_CKPT_OLDEST 1

typedef struct {
    uint64_t graph_hash;
    int32_t epoch;         /* epochs completed */
    int64_t step;          /* optimizer steps taken: more than epoch x steps per epoch when saved
                              mid-epoch (on an interrupt) */
    uint64_t seed;         /* the run's seed (data order and augmentation derive from it) */
    uint64_t n_params;     /* floats of parameters and state */
    uint64_t n_optim;      /* floats of optimizer state */
    uint32_t version;      /* the file's format version: set by zn_ckpt_load, which fingerprint
                              graph_hash is (a save writes ZN_CKPT_VERSION) */
} zn_ckpt_meta;

bool zn_ckpt_save(const char *path, const zn_ckpt_meta *m, const float *params, const float *optim,
                  char *err, size_t errlen);
/* Reads and checks a checkpoint; params/optim are malloc'ed. Names what is wrong: not a
 * checkpoint, another version, truncated, corrupted (checksum). */
bool zn_ckpt_load(const char *path, zn_ckpt_meta *m, float **params, float **optim, char *err,
                  size_t errlen);

#endif
