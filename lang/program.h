/* program.h: the front end's one entry point: a .znet file (with its imports and command-line
 * settings) becomes a graph and a training recipe, or diagnostics. */
#ifndef ZN_PROGRAM_H
#define ZN_PROGRAM_H

#include <stdbool.h>

#include "diag.h"
#include "graph/graph.h"
#include "lang/recipe.h"

typedef struct {
    const char *key;   /* a model parameter ("width") or a train setting ("train.epochs") */
    const char *value; /* .znet expression text ("16", "[8, 16]", "\"x_axis\"") */
} zn_setting;

typedef struct {
    const char *path;
    const zn_setting *settings;
    int n_settings;
    const char *stdlib_dir; /* NULL: $ZNET_STDLIB, the installed one, then the build's stdlib/ */
} zn_load_opts;

/* Parses, resolves imports, evaluates the model into g (initialised here) and the train section
 * into r. Returns false when any error was reported (g is then partial but valid to free). */
bool zn_program_load(const zn_load_opts *opts, zn_diag *d, zn_graph *g, zn_recipe *r);

#endif
