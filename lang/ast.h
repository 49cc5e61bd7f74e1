/* ast.h: the syntax tree the parser builds. One node struct for every construct; each node
 * carries its source span. Nodes live in an arena owned by the program (ast.c) and are never
 * freed one by one. */
#ifndef ZN_AST_H
#define ZN_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/graph.h"

typedef enum {
    /* expressions */
    ZN_AST_INT,     /* ival */
    ZN_AST_FLOAT,   /* fval */
    ZN_AST_STRING,  /* sval */
    ZN_AST_BOOL,    /* ival 0/1 */
    ZN_AST_NAME,    /* name */
    ZN_AST_LIST,    /* kids: elements */
    ZN_AST_BINOP,   /* op, a, b */
    ZN_AST_UNOP,    /* op, a */
    ZN_AST_CALL,    /* name: callee, kids: ZN_AST_ARG */
    ZN_AST_ARG,     /* name: keyword or NULL, a: value */
    ZN_AST_INDEX,   /* a[b] */
    ZN_AST_SHARED,  /* shared <call a>: a block instance with its own weights */
    /* statements */
    ZN_AST_ASSIGN,  /* name = a; flag: declared with `var` */
    ZN_AST_INPUT,   /* input name: a */
    ZN_AST_HEAD,    /* head name = a */
    ZN_AST_METRIC,  /* metric [name =] a (a call) */
    ZN_AST_RETURN,  /* return a */
    ZN_AST_FOR,     /* for name in a { kids } ; name NULL for `repeat a { }` */
    ZN_AST_IF,      /* if a { kids } else { b: ZN_AST_BODY or nested IF } */
    ZN_AST_BODY,    /* kids: statements */
    /* top level */
    ZN_AST_USE,     /* use sval */
    ZN_AST_PARAM,   /* name, a: default or NULL */
    ZN_AST_BLOCK,   /* block name(params b->kids) { kids } */
    ZN_AST_MODEL,   /* model name(params b->kids) { kids } */
    ZN_AST_TRAIN,   /* train { kids: ZN_AST_ASSIGN } */
    ZN_AST_FILE,    /* kids: top-level items */
} zn_ast_kind;

typedef enum {
    ZN_BIN_ADD, ZN_BIN_SUB, ZN_BIN_MUL, ZN_BIN_DIV, ZN_BIN_IDIV, ZN_BIN_MOD,
    ZN_BIN_EQ, ZN_BIN_NE, ZN_BIN_LT, ZN_BIN_LE, ZN_BIN_GT, ZN_BIN_GE,
    ZN_BIN_AND, ZN_BIN_OR,
    ZN_UN_NEG, ZN_UN_NOT,
} zn_ast_op;

typedef struct zn_ast zn_ast;
struct zn_ast {
    zn_ast_kind kind;
    zn_span span;
    const char *name;
    const char *sval;
    int64_t ival;
    double fval;
    zn_ast_op op;
    bool flag;
    zn_ast *a, *b;
    zn_ast **kids;
    int n_kids, cap_kids;
};

typedef struct zn_arena zn_arena;

zn_arena *zn_arena_new(void);
void zn_arena_free(zn_arena *a);
void *zn_arena_alloc(zn_arena *a, size_t size); /* zeroed */
char *zn_arena_strdup(zn_arena *a, const char *s);

zn_ast *zn_ast_new(zn_arena *a, zn_ast_kind kind, zn_span span);
void zn_ast_push(zn_arena *a, zn_ast *parent, zn_ast *kid);
const char *zn_ast_op_str(zn_ast_op op);

#endif
