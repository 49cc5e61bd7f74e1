/* compile.h: the one pipeline from a model file to something runnable, which every command, the
 * session and the parity check go through: load (lang/program.h) -> forward passes -> the
 * inference passes, or autodiff and the training passes (graph/passes.h) -> the memory plan for
 * one batch size (graph/plan.h) -> a backend holding it. The caller says where to start (a file,
 * or a forward graph an earlier call made) and where to stop; a failure names its stage. */
#ifndef ZN_COMPILE_H
#define ZN_COMPILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/backend.h"
#include "graph/budget.h"
#include "graph/graph.h"
#include "graph/plan.h"
#include "lang/diag.h"
#include "lang/program.h"
#include "lang/recipe.h"

typedef enum {
    ZN_COMPILE_FORWARD,   /* the optimized forward graph: what check, graph and summary show */
    ZN_COMPILE_INFERENCE, /* the graph an evaluation runs: the inference passes added */
    ZN_COMPILE_TRAINING,  /* the graph a training step runs: autodiff and the training passes added */
} zn_compile_mode;

/* The stages in the order they run; a failure names one (zn_compile_stage_names). */
typedef enum { ZN_COMPILE_LOAD, ZN_COMPILE_PASSES, ZN_COMPILE_PLAN, ZN_COMPILE_BACKEND } zn_compile_stage;
extern const char *const zn_compile_stage_names[]; /* "load", "passes", "plan", "backend" */

enum { ZN_COMPILE_RECIPE_BATCH = -1 }; /* zn_compile_opts.batch: the batch of the file's recipe */

typedef struct {
    const char *path;             /* start from this model file, */
    const zn_setting *settings;   /* with these --set values */
    int n_settings;
    FILE *diag_out;               /* where its diagnostics go (NULL: stderr) */
    const zn_graph *from;         /* or (path NULL) from this forward graph, which an earlier call made;
                                     it must outlive the result, whose spans point into its sources */
    zn_compile_mode mode;
    const char *const *no_pass;   /* optimizer passes to skip (--no-pass) */
    int n_no_pass;
    const char *stop_after;       /* stop right after this pass (a forward one or one of mode's stage):
                                     the graph as it is there, with no plan and no backend */
    FILE *report;                 /* one line per pass as it runs (graph/passes.h); NULL: none */
    int batch;                    /* > 0 (or ZN_COMPILE_RECIPE_BATCH): plan the graph for this batch */
    const zn_backend_ops *backend; /* with a batch: create it, check it supports every node and that the
                                      plan fits its memory, then allocate and prepare the plan on it */
    const zn_backend_opts *backend_opts;
    bool separate;                /* the plan gives every arena tensor a place of its own for the whole
                                     step (zn_plan_separate), so every node's value can be read after it */
    size_t memory_budget;         /* a training graph with a batch: the recompute pass keeps and recomputes
                                     what makes the plan (scratch included) fit these bytes
                                     (graph/budget.h); 0: the file's recipe's memory_budget, if
                                     started from a path, else the pass's fixed rule */
    bool plan_only;               /* with a backend: created for its scratch sizes, nothing allocated */
} zn_compile_opts;

typedef struct {
    zn_graph graph;       /* mode's graph: forward nodes [0, n_forward), then backward ones */
    int n_forward;
    uint64_t fingerprint; /* the model's (zn_graph.model_hash, before any pass): what checkpoints match */
    uint64_t fingerprint_v1; /* the same as checkpoint format version 1 computed it (0: none) */
    zn_recipe recipe;     /* the train section after --set values (started from a path only) */
    zn_diag diag;         /* the source texts, when started from a path (spans point into them) */
    zn_plan plan;         /* with a batch */
    zn_backend *be;       /* with a backend */
    zn_budget_point budget; /* with a memory budget: the rung chosen and its figures */
    zn_graph levered;     /* with a memory budget, while planning: the training graph before the
                             recompute pass with the memory levers run (the z-towers fused), when
                             they change it (n_nodes 0: none); the budget takes the better ladder */
    char *levered_report; /* the lines o->report gets for levered's passes, printed only when the
                             budget takes it (malloc'd; NULL: none) */
    bool over_budget;     /* failed because no rung fits the memory budget (err says what dominates) */
    zn_compile_stage failed; /* where it failed */
    char err[1024];       /* why; from a path, naming the file ("2 errors in FILE" after the
                             diagnostics, "FILE: pass ...") */
} zn_compiled;

/* Runs the pipeline o asks for into c (initialised here). false with c->failed and c->err; what
 * was made is freed by zn_compiled_free either way. */
bool zn_compile(const zn_compile_opts *o, zn_compiled *c);
void zn_compiled_free(zn_compiled *c);

/* The memory curve of the training graph o asks for (a batch, no stop_after; with a backend, its
 * scratch counted and nothing allocated): every rung of graph/budget.h planned, cheapest first,
 * into pts[0..max), then, when the memory levers change the graph, every rung of their ladder
 * (zn_budget_point.levers). c gets the graph before the recompute pass. Returns the count; -1
 * with c->err on failure. */
int zn_compile_curve(const zn_compile_opts *o, zn_compiled *c, zn_budget_point *pts, int max);

#endif
