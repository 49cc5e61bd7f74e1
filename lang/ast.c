/* ast.c: the arena that owns every AST node and string, and AST constructors. */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct zn_arena {
    chunk *head;
};

zn_arena *zn_arena_new(void) { return zn_calloc(1, sizeof(zn_arena)); }

void zn_arena_free(zn_arena *a)
{
    if (!a) return;
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *zn_arena_alloc(zn_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->used + size > a->head->cap) {
        size_t cap = size > 65536 ? size : 65536;
        chunk *c = zn_malloc(sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

char *zn_arena_strdup(zn_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = zn_arena_alloc(a, n);
    memcpy(p, s, n);
    return p;
}

zn_ast *zn_ast_new(zn_arena *a, zn_ast_kind kind, zn_span span)
{
    zn_ast *n = zn_arena_alloc(a, sizeof *n);
    n->kind = kind;
    n->span = span;
    return n;
}

void zn_ast_push(zn_arena *a, zn_ast *parent, zn_ast *kid)
{
    if (!kid) return;
    if (parent->n_kids == parent->cap_kids) {
        int cap = parent->cap_kids ? 2 * parent->cap_kids : 4;
        zn_ast **k = zn_arena_alloc(a, sizeof *k * cap);
        if (parent->n_kids) memcpy(k, parent->kids, sizeof *k * parent->n_kids);
        parent->kids = k;
        parent->cap_kids = cap;
    }
    parent->kids[parent->n_kids++] = kid;
}

const char *zn_ast_op_str(zn_ast_op op)
{
    static const char *const names[] = {
        [ZN_BIN_ADD] = "+", [ZN_BIN_SUB] = "-", [ZN_BIN_MUL] = "*", [ZN_BIN_DIV] = "/",
        [ZN_BIN_IDIV] = "//", [ZN_BIN_MOD] = "%", [ZN_BIN_EQ] = "==", [ZN_BIN_NE] = "!=",
        [ZN_BIN_LT] = "<", [ZN_BIN_LE] = "<=", [ZN_BIN_GT] = ">", [ZN_BIN_GE] = ">=",
        [ZN_BIN_AND] = "and", [ZN_BIN_OR] = "or", [ZN_UN_NEG] = "-", [ZN_UN_NOT] = "not",
    };
    return names[op];
}
