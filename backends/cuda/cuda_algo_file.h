/* cuda_algo_file.h: the convolution shape key and the cuDNN algorithm cache file that keeps each
 * shape's timed choice from run to run (docs/cuda.md, "Convolution algorithms"), and the
 * backend's environment settings. Plain C with no CUDA header, so tests/test_cuda_algo_file.c
 * checks the parsing on machines without a GPU. */
#ifndef ZN_CUDA_ALGO_FILE_H
#define ZN_CUDA_ALGO_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* A convolution's shape: every cuDNN parameter, the batch included. */
typedef struct {
    int op;    /* ZN_OP_CONV2D, ZN_OP_CONV2D_BWD_DATA or ZN_OP_CONV2D_BWD_FILTER */
    int dtype; /* cudnnDataType_t of x, w and y */
    int n, c, h, w, o, kh, kw, oh, ow;
    int stride[2], pad[2], dilation[2], groups;
    int fused; /* 1: a z-tower's slice convolution (no node describes it alone) */
} zn_cuda_conv_key;

/* One timed choice. The device tag names the GPU and the library versions it was timed with; an
 * entry of another tag is kept in the file but never used. */
typedef struct {
    char device[128];      /* no blanks (zn_cuda_algo_device_tag) */
    zn_cuda_conv_key key;
    int deterministic;     /* 1: chosen among deterministic algorithms (--deterministic) */
    int algo;              /* a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    int math;              /* its cudnnMathType_t */
    size_t workspace;      /* its scratch bytes */
} zn_cuda_algo_entry;

typedef struct {
    zn_cuda_algo_entry *entries;
    int n, cap;
    bool dirty; /* entries were added since the file was read */
} zn_cuda_algo_file;

/* Replaces f's entries with those of the file at path; a missing file is an empty cache. false
 * with "PATH:LINE: what is wrong" in err when the file cannot be read or any line is bad (the
 * caller then ignores the whole file: a damaged cache is never trusted in part). */
bool zn_cuda_algo_file_read(zn_cuda_algo_file *f, const char *path, char *err, size_t len);
/* Writes every entry to path (its folder made when missing) through a temporary file renamed
 * over it, so a reader never sees half a file; false with the reason. */
bool zn_cuda_algo_file_write(const zn_cuda_algo_file *f, const char *path, char *err, size_t len);
/* The entry of (device, key, deterministic), or NULL. */
const zn_cuda_algo_entry *zn_cuda_algo_file_find(const zn_cuda_algo_file *f, const char *device,
                                                 const zn_cuda_conv_key *k, int deterministic);
/* Adds e, or replaces the entry of its (device, key, deterministic); false when out of memory. */
bool zn_cuda_algo_file_put(zn_cuda_algo_file *f, const zn_cuda_algo_entry *e);
void zn_cuda_algo_file_free(zn_cuda_algo_file *f);
/* "NVIDIA_H100_80GB_HBM3/sm90/cudnn91900/cudart13000": blanks and '/' of the name become '_'. */
void zn_cuda_algo_device_tag(char *out, size_t len, const char *name, int major, int minor,
                             long cudnn, int cudart);

/* The backend's settings from the environment (docs/cuda.md):
 *   ZNET_CUDA_GRAPH   on (default) | off: replay the training step as a CUDA graph
 *   ZNET_CUDNN_CACHE  FILE | off: the algorithm cache; default $XDG_CACHE_HOME/znet/cudnn-algos.txt,
 *                     else $HOME/.cache/znet/cudnn-algos.txt, else none */
typedef struct {
    bool graphs;
    char cache[4096]; /* "" when off */
} zn_cuda_settings;

/* Reads the settings from the given values (NULL: unset), so a test needs no environment. false
 * with the variable, its value and what is expected in err when a value is bad. */
bool zn_cuda_settings_parse(zn_cuda_settings *s, const char *graph, const char *cache,
                            const char *xdg_cache_home, const char *home, char *err, size_t len);

#endif
