/* parse.h: turning .znet text into an AST. The scanner (lexer.l) and parser (parser.y) share
 * the context below; syntax errors go to the diagnostics with their place and continue at the
 * next statement, so one run reports several. */
#ifndef ZN_PARSE_H
#define ZN_PARSE_H

#include "ast.h"
#include "diag.h"

#define ZN_MAX_BRACKETS 64
/* Brackets and braces open at once, all kinds together: past it the parse stops with "nesting
 * deeper than N" at the bracket, so no later stage (whose walks recurse) meets a deeper tree. */
#define ZN_MAX_NESTING 200

typedef struct {
    zn_arena *arena;
    zn_diag *diag;
    const char *file;     /* span.file of every node (the source's path) */
    zn_ast *result;       /* ZN_AST_FILE, or the expression in expression mode */
    int start_token;      /* first token to deliver (selects file or expression grammar) */
    /* scanner state kept by the token filter in parser.y */
    int depth;                      /* open ( and [ : newlines inside are ignored */
    zn_span open[ZN_MAX_BRACKETS];  /* where each open bracket is, for hints */
    int brace_depth;                /* open { */
    int nesting;                    /* open ( [ { together, never reset (ZN_MAX_NESTING) */
    bool too_deep;                  /* nesting passed the limit: the parse stops, said once */
    zn_span brace_open[ZN_MAX_BRACKETS];
    int lex_error_line;             /* last line with a lexical error (its syntax errors are not reported) */
    int need_sep;                   /* the last token needs a separator before } or EOF */
    int pending;                    /* a token held back behind an inserted separator */
    int inserted;                   /* the last separator was inserted: 1 before '}', 2 at the end */
    const char *last_name;          /* text of the last NAME token, for "unexpected name 'x'" */
    zn_span pending_loc;
    int line, col;                  /* scanner position (1-based) */
} zn_parse_ctx;

/* Parses a whole file. Always returns a ZN_AST_FILE (possibly partial); errors are counted in
 * diag. */
zn_ast *zn_parse_source(zn_diag *diag, zn_arena *arena, const zn_source *src);
/* Parses one expression (a --set value); NULL on a syntax error (reported). */
zn_ast *zn_parse_expression(zn_diag *diag, zn_arena *arena, const zn_source *src);

#endif
