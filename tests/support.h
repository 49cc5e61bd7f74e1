/* support.h: helpers shared by the CMocka tests: paths into the source tree, temporary files,
 * reading a file whole, loading a model and running the optimizer passes (failing the test on an
 * error), and the data directory (skipping cleanly when it is absent). */
#ifndef ZN_TEST_SUPPORT_H
#define ZN_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "graph/graph.h"
#include "lang/program.h"

/* "<source dir>/rel" in a static buffer (valid until the next call). */
const char *zt_src_path(const char *rel);
/* A fresh temporary directory for this test process (created once). */
const char *zt_tmpdir(void);
/* Writes text to <tmpdir>/name and returns the path (static buffer). */
const char *zt_write_file(const char *name, const char *text);
/* The whole of the open file f, from its start, NUL-terminated (free it). */
char *zt_read_all(FILE *f);
/* Calls fn(rel_path, ctx) for every .znet file in models/ ("models/x.znet"); returns how many. */
int zt_each_model(void (*fn)(const char *rel, void *ctx), void *ctx);
/* Loads the model file at path under these --set values into g (its recipe is not kept); the
 * file names g's spans point to stay valid until the test process ends. */
void zt_load(const char *path, const zn_setting *sets, int n, zn_graph *g);
/* Runs the optimizer passes on g but the n_disabled named ones. */
void zt_run_passes(zn_graph *g, const char *const *disabled, int n_disabled);
/* How many of g's nodes run op; how many have any bit of flag. */
int zt_count_op(const zn_graph *g, zn_op op);
int zt_count_flag(const zn_graph *g, unsigned flag);
/* How many of g's nodes have a name that ends in suffix (" (recompute)") after something else. */
int zt_count_suffix(const zn_graph *g, const char *suffix);
/* A seeded RNG (splitmix64) for test data: zt_rng_unit() is uniform in [0, 1). */
void zt_rng_seed(uint64_t seed);
double zt_rng_unit(void);
/* Zeroed float arrays that live until zt_scratch_free() (a test's teardown). */
float *zt_talloc(size_t n);
void zt_scratch_free(void);
/* The CIFAR-10 directory from ZNET_TEST_CIFAR or ../shared/data, or NULL. */
const char *zt_cifar_dir(void);

#endif
