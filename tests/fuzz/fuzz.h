/* fuzz.h: what the fuzz targets share. Each target is one LLVMFuzzerTestOneInput; the readers it
 * drives take paths, so the input bytes are written to files in a directory private to the
 * process (see fuzz_util.c; removed at exit). libFuzzer calls the targets in fuzz builds; replay.c
 * calls them on corpus and regression files in the normal suite. */
#ifndef ZN_FUZZ_H
#define ZN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to `name` in the process's scratch directory and returns its path (valid until
 * the next call with the same name). Aborts when the scratch file cannot be written: that is
 * the harness's failure, not the input's. */
const char *zn_fuzz_file(const char *name, const uint8_t *data, size_t size);
/* The scratch directory's path joined with name (the file need not exist); at most 8 names. */
const char *zn_fuzz_path(const char *name);
/* Removes everything under the scratch directory's subdirectory `name` and recreates it empty. */
const char *zn_fuzz_empty_dir(const char *name);

/* Splits an input in two: the first two bytes (big-endian) give the length of the first part,
 * clamped to what is there; the rest is the second part. Seeds for two-file readers use it. */
void zn_fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *alen,
                   const uint8_t **b, size_t *blen);

#endif
