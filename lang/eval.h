/* eval.h: the evaluator's state, shared by eval.c (statements, expressions, scopes, blocks),
 * builtins.c (the layer functions a model calls) and train.c (the train section). Evaluating a
 * model runs its statements once; every layer call appends nodes to the graph. */
#ifndef ZN_EVAL_H
#define ZN_EVAL_H

#include "ast.h"
#include "diag.h"
#include "value.h"

typedef struct zn_binding {
    const char *name;
    zn_value val;
    bool is_var;  /* declared with `var` (or a loop variable): may be reassigned */
    zn_span at;
} zn_binding;

typedef struct zn_scope {
    zn_binding *b;
    int n, cap;
} zn_scope;

typedef struct {
    const char *name;  /* NULL: an empty slot */
    int next_suffix;   /* the k to try first for the next "name#k" */
} zn_name_slot;

typedef struct zn_eval {
    zn_diag *diag;
    zn_arena *arena;
    zn_graph *g;
    const zn_ast **blocks; /* every block definition, from every file */
    int n_blocks;
    const zn_ast *stack[64]; /* blocks being called, innermost last (recursion check) */
    int depth;
    const char *prefix;    /* dotted instance path of the current block call ("" = model) */
    const char *cluster;   /* the calls as zn_node.block spells them, unique per call */
    const char *stmt_base; /* name for the node the current statement produces */
    const zn_ast *stmt_rhs;/* the current statement's expression */
    zn_instance *share;    /* instance whose parameters are being reused, or NULL */
    int share_next;        /* index of the next parameter within that instance */
    long budget;           /* statements left before the model counts as runaway */
    zn_name_slot *names;   /* hash set of node names already taken (for unique naming) */
    int n_names, cap_names;  /* cap_names: a power of two, or 0 */
    bool in_train;         /* evaluating the train section (settings functions allowed) */
    int expr_depth;        /* zn_eval_expr calls active (capped at ZN_MAX_EXPR_DEPTH) */
    int64_t list_items;    /* list items built so far (capped at ZN_MAX_LIST_TOTAL) */
} zn_eval;

/* Arguments of a call after evaluation: positional first, then keywords. */
typedef struct {
    int n;
    zn_value *vals;
    const char **keys;  /* NULL for positional */
    zn_span *spans;
} zn_args;

typedef enum {
    ZN_ARG_TENSOR,
    ZN_ARG_TENSORS,  /* one or more tensors: the rest of the positional arguments, or a list */
    ZN_ARG_INT,
    ZN_ARG_FLOAT,
    ZN_ARG_BOOL,
    ZN_ARG_STRING,
    ZN_ARG_PAIR,     /* an integer, or a list [h, w] */
    ZN_ARG_NUMBERS,  /* a list of numbers */
    ZN_ARG_ANY,
} zn_arg_kind;

typedef struct {
    const char *name;
    zn_arg_kind kind;
    const char *def; /* default as .znet source text; NULL = required */
} zn_argspec;

#define ZN_MAX_EXPR_DEPTH 500
#define ZN_MAX_LIST 1000000        /* items in one list, characters in one string, repeat count */
#define ZN_MAX_LIST_TOTAL 10000000 /* list items a model may build in all (loops included) */

#define ZN_MAX_ARGS 10

typedef struct zn_builtin zn_builtin;
struct zn_builtin {
    const char *name;
    zn_argspec args[ZN_MAX_ARGS];
    /* Receives the bound arguments in args[] order (missing optional ones set to defaults). */
    zn_value (*lower)(zn_eval *ev, const zn_builtin *b, zn_value *a, const zn_span *at,
                      const zn_ast *call);
};

/* Model-level layer functions (builtins.c) and train-section settings functions (train.c). */
extern const zn_builtin zn_layer_builtins[];
extern const int zn_n_layer_builtins;
extern const zn_builtin zn_train_builtins[];
extern const int zn_n_train_builtins;

const zn_builtin *zn_builtin_find(const zn_builtin *table, int n, const char *name);
/* Binds args to a builtin's parameters with type checks; false after reporting an error. */
bool zn_builtin_bind(zn_eval *ev, const zn_builtin *b, const zn_args *args, const zn_ast *call,
                     zn_value *out, zn_span *out_at);
/* Formats "conv2d(x, filters, kernel = 3, ...)" for hints. */
const char *zn_builtin_signature(const zn_builtin *b, char *buf, size_t len);

/* eval.c services used by builtins */
zn_value zn_eval_expr(zn_eval *ev, zn_scope *sc, const zn_ast *e);
/* Runs owner's statements (a block's or the model's). Blocks must end in `return`. */
zn_value zn_eval_body(zn_eval *ev, zn_scope *sc, const zn_ast *owner, bool need_return);
/* Adds a node named after the current statement, infers its shape, reports a failure at at. */
zn_value zn_eval_emit(zn_eval *ev, zn_op op, const int *src, int n_src, const zn_attrs *attr,
                      const char *opname, zn_span at, const zn_ast *call);
/* Creates (or, inside a shared instance, reuses) a parameter of the given shape. */
int zn_eval_param(zn_eval *ev, const char *owner, const char *suffix, const int64_t *dims, int rank,
                  zn_init init, int fan_in, bool trainable, zn_span at);
/* t * s as a scale node (named and placed like zn_eval_emit's); a factor beyond float32's range
 * is refused at `at`. */
zn_value zn_eval_scale(zn_eval *ev, const zn_ast *e, int node, double s, zn_span at);
/* The element-wise product a * b of two tensor nodes (`x * y`, mul(x, y)): a vector operand is
 * put second, where the op takes a per-channel gate. */
zn_value zn_eval_mul(zn_eval *ev, const zn_ast *e, int a, int b);
/* Room for a list of n values (in the arena), or NULL after reporting that it is too long or
 * that the model has built too many list items in all. */
zn_value *zn_eval_list_items(zn_eval *ev, int64_t n, zn_span at);
zn_value zn_eval_string_value(zn_eval *ev, const char *text, zn_span at);
void zn_scope_free(zn_scope *sc);
zn_binding *zn_scope_find(zn_scope *sc, const char *name);
void zn_scope_set(zn_eval *ev, zn_scope *sc, const char *name, zn_value v, bool is_var, zn_span at);

#endif
