/* value.h: the values a .znet program computes while it is evaluated: numbers, strings, lists,
 * tensors (graph node ids), shared block instances and records (settings such as sgd(...)).
 * Values live in the evaluation arena; ZN_VAL_ERROR marks a value whose error was reported. */
#ifndef ZN_VALUE_H
#define ZN_VALUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"

typedef enum {
    ZN_VAL_ERROR,  /* already reported: operations on it stay silent */
    ZN_VAL_INT,
    ZN_VAL_FLOAT,
    ZN_VAL_BOOL,
    ZN_VAL_STRING,
    ZN_VAL_LIST,
    ZN_VAL_TENSOR,
    ZN_VAL_INSTANCE,
    ZN_VAL_RECORD,
} zn_val_kind;

typedef struct zn_value zn_value;
typedef struct zn_instance zn_instance;
typedef struct zn_record zn_record;

struct zn_value {
    zn_val_kind kind;
    union {
        int64_t i;          /* INT, BOOL */
        double f;           /* FLOAT */
        const char *s;      /* STRING */
        struct {
            zn_value *items;
            int n;
        } list;
        int node;           /* TENSOR: graph node id */
        zn_instance *inst;  /* INSTANCE */
        zn_record *rec;     /* RECORD */
    };
};

/* A call of a settings function (sgd, piecewise, pad_crop, class, ...) with its bound
 * arguments in the function's parameter order. */
struct zn_record {
    const char *name;
    int n;
    const char *const *keys;
    zn_value *vals;
    zn_span span;
};

/* `shared block(args)`: one set of weights reused by every call of the instance. */
struct zn_instance {
    const zn_ast *block;  /* ZN_AST_BLOCK */
    const zn_ast *call;   /* the `shared` call, whose arguments follow each use's */
    zn_value *bound;      /* evaluated arguments of the shared call */
    const char **bound_names; /* keyword per bound argument, NULL for positional */
    int n_bound;
    int *params;          /* parameter node ids in creation order */
    int n_params, cap_params;
    const char *name;     /* the name it was bound to */
};

static inline zn_value zn_val_error(void) { return (zn_value){.kind = ZN_VAL_ERROR}; }
static inline zn_value zn_val_int(int64_t i) { return (zn_value){.kind = ZN_VAL_INT, .i = i}; }
static inline zn_value zn_val_float(double f) { return (zn_value){.kind = ZN_VAL_FLOAT, .f = f}; }
static inline zn_value zn_val_bool(bool b) { return (zn_value){.kind = ZN_VAL_BOOL, .i = b}; }
static inline zn_value zn_val_tensor(int id) { return (zn_value){.kind = ZN_VAL_TENSOR, .node = id}; }

/* "integer", "list", "tensor [64, 32, 32]"... for messages (buf used for tensors). */
const char *zn_val_kind_name(zn_val_kind k);
/* The kind with its article ("an integer", "a list") for "not %s" in messages. */
const char *zn_val_kind_phrase(zn_val_kind k);
/* Writes a short rendering of v ("[8, 16]", "0.125", "\"max\"") into buf. */
const char *zn_val_str(const zn_value *v, char *buf, size_t len);
bool zn_val_is_number(const zn_value *v);
double zn_val_number(const zn_value *v);
/* x as a float32, saturating to +-infinity beyond float's range (a plain cast of such a value
 * is undefined behaviour); NaN stays NaN. Every double the language narrows goes through it,
 * so the range checks after it see infinity, never a wrapped or arbitrary value. */
float zn_f32(double x);

#endif
