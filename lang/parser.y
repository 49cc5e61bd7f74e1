/* parser.y: the grammar of the .znet language (docs/language.md). A pure, located bison
 * parser that only builds the AST; meaning is given by eval.c. Statements end at a newline or
 * ';' (the token filter below inserts one before '}' and at the end of the file); a syntax error
 * skips to the next statement so one run reports several. */
%require "3.6"
%define api.pure full
%define api.prefix {zn_yy}
%define api.location.type {zn_span}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%code requires {
#include "ast.h"
#include "parse.h"
typedef void *yyscan_t;
}

%param {yyscan_t scanner} {zn_parse_ctx *ctx}

%code provides {
int zn_flex_lex(ZN_YYSTYPE *lval, ZN_YYLTYPE *lloc, yyscan_t scanner);
}

%code {
#include <string.h>

#include "lexer.h"

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                  \
    do {                                                             \
        if (N) {                                                     \
            (Cur).file = YYRHSLOC(Rhs, 1).file;                      \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                      \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                        \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;              \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                \
        } else {                                                     \
            (Cur).file = YYRHSLOC(Rhs, 0).file;                      \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line; \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;    \
        }                                                            \
    } while (0)

static int zn_yylex(ZN_YYSTYPE *lval, ZN_YYLTYPE *lloc, yyscan_t scanner, zn_parse_ctx *ctx);
static void zn_yyerror(ZN_YYLTYPE *loc, yyscan_t scanner, zn_parse_ctx *ctx, const char *msg);

#define NEW(kind, loc) zn_ast_new(ctx->arena, (kind), (loc))

static zn_ast *binop(zn_parse_ctx *ctx, zn_ast_op op, zn_ast *a, zn_ast *b, zn_span loc)
{
    zn_ast *n = NEW(ZN_AST_BINOP, loc);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static zn_ast *named(zn_parse_ctx *ctx, zn_ast_kind kind, const char *name, zn_ast *a, zn_span loc)
{
    zn_ast *n = NEW(kind, loc);
    n->name = name;
    n->a = a;
    return n;
}
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    zn_ast *ast;
}

%token START_FILE START_EXPR
%token NEWLINE "end of line"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token <str> NAME "name"
%token <ival> BOOL "true or false"
%token USE "'use'" MODEL "'model'" BLOCK "'block'" INPUT "'input'" HEAD "'head'" METRIC "'metric'"
%token TRAIN "'train'" RETURN "'return'" VAR "'var'" FOR "'for'" IN "'in'" REPEAT "'repeat'"
%token IF "'if'" ELSE "'else'" SHARED "'shared'" AND "'and'" OR "'or'" NOT "'not'"
%token IDIV "'//'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='"

%type <ast> items item params param_list param body stmts stmt if_stmt else_body
%type <ast> expr primary args arg_list arg exprs expr_list

%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' IDIV '%'
%precedence UMINUS

%%

start:
    START_FILE items               { ctx->result = $2; }
  | START_EXPR expr seps           { ctx->result = $2; }
  ;

seps: %empty | seps sep ;
sep: NEWLINE | ';' ;

items:
    %empty                         { $$ = NEW(ZN_AST_FILE, @$); }
  | items sep                      { $$ = $1; }
  | items item sep                 { $$ = $1; zn_ast_push(ctx->arena, $$, $2); }
  | items error sep                { $$ = $1; yyerrok; }
  | items error sep '}'            { $$ = $1; } /* the end of the item the error cut short */
  | items error body sep           { $$ = $1; yyerrok; }
  ;

item:
    USE STRING                     { $$ = NEW(ZN_AST_USE, @$); $$->sval = $2; }
  | BLOCK NAME '(' params ')' body { $$ = named(ctx, ZN_AST_BLOCK, $2, NULL, @2); $$->b = $4; $$->kids = $6->kids; $$->n_kids = $6->n_kids; }
  | MODEL NAME '(' params ')' body { $$ = named(ctx, ZN_AST_MODEL, $2, NULL, @2); $$->b = $4; $$->kids = $6->kids; $$->n_kids = $6->n_kids; }
  | MODEL NAME body                { $$ = named(ctx, ZN_AST_MODEL, $2, NULL, @2); $$->b = NEW(ZN_AST_BODY, @2); $$->kids = $3->kids; $$->n_kids = $3->n_kids; }
  | TRAIN body                     { $$ = NEW(ZN_AST_TRAIN, @1); $$->kids = $2->kids; $$->n_kids = $2->n_kids; }
  ;

params:
    %empty                         { $$ = NEW(ZN_AST_BODY, @$); }
  | param_list                     { $$ = $1; }
  | param_list ','                 { $$ = $1; }
  ;
param_list:
    param                          { $$ = NEW(ZN_AST_BODY, @$); zn_ast_push(ctx->arena, $$, $1); }
  | param_list ',' param           { $$ = $1; zn_ast_push(ctx->arena, $$, $3); }
  ;
param:
    NAME                           { $$ = named(ctx, ZN_AST_PARAM, $1, NULL, @1); }
  | NAME '=' expr                  { $$ = named(ctx, ZN_AST_PARAM, $1, $3, @1); }
  ;

body: '{' stmts '}'                { $$ = $2; } ;

stmts:
    %empty                         { $$ = NEW(ZN_AST_BODY, @$); }
  | stmts sep                      { $$ = $1; }
  | stmts stmt sep                 { $$ = $1; zn_ast_push(ctx->arena, $$, $2); }
  | stmts error sep                { $$ = $1; yyerrok; }
  | stmts ELSE else_body sep       { $$ = $1;
                                     zn_diag_error(ctx->diag, @2, "`else` must be on the line of the '}' that closes its `if`");
                                     zn_diag_hint(ctx->diag, "write `} else {`"); }
  ;
else_body: body { $$ = $1; } | if_stmt { $$ = $1; } ;

stmt:
    NAME '=' expr                  { $$ = named(ctx, ZN_AST_ASSIGN, $1, $3, @1); }
  | VAR NAME '=' expr              { $$ = named(ctx, ZN_AST_ASSIGN, $2, $4, @2); $$->flag = true; }
  | INPUT NAME ':' expr            { $$ = named(ctx, ZN_AST_INPUT, $2, $4, @2); }
  | HEAD NAME '=' expr             { $$ = named(ctx, ZN_AST_HEAD, $2, $4, @2); }
  | METRIC NAME '=' expr           { $$ = named(ctx, ZN_AST_METRIC, $2, $4, @2); }
  | METRIC expr                    { $$ = named(ctx, ZN_AST_METRIC, NULL, $2, @2); }
  | RETURN expr                    { $$ = named(ctx, ZN_AST_RETURN, NULL, $2, @1); }
  | FOR NAME IN expr body          { $$ = named(ctx, ZN_AST_FOR, $2, $4, @1); $$->kids = $5->kids; $$->n_kids = $5->n_kids; }
  | REPEAT expr body               { $$ = named(ctx, ZN_AST_FOR, NULL, $2, @1); $$->kids = $3->kids; $$->n_kids = $3->n_kids; }
  | if_stmt                        { $$ = $1; }
  ;

if_stmt:
    IF expr body                   { $$ = named(ctx, ZN_AST_IF, NULL, $2, @1); $$->kids = $3->kids; $$->n_kids = $3->n_kids; }
  | IF expr body ELSE body         { $$ = named(ctx, ZN_AST_IF, NULL, $2, @1); $$->kids = $3->kids; $$->n_kids = $3->n_kids; $$->b = $5; }
  | IF expr body ELSE if_stmt      { $$ = named(ctx, ZN_AST_IF, NULL, $2, @1); $$->kids = $3->kids; $$->n_kids = $3->n_kids;
                                     $$->b = NEW(ZN_AST_BODY, @5); zn_ast_push(ctx->arena, $$->b, $5); }
  ;

expr:
    primary                        { $$ = $1; }
  | expr '+' expr                  { $$ = binop(ctx, ZN_BIN_ADD, $1, $3, @$); }
  | expr '-' expr                  { $$ = binop(ctx, ZN_BIN_SUB, $1, $3, @$); }
  | expr '*' expr                  { $$ = binop(ctx, ZN_BIN_MUL, $1, $3, @$); }
  | expr '/' expr                  { $$ = binop(ctx, ZN_BIN_DIV, $1, $3, @$); }
  | expr IDIV expr                 { $$ = binop(ctx, ZN_BIN_IDIV, $1, $3, @$); }
  | expr '%' expr                  { $$ = binop(ctx, ZN_BIN_MOD, $1, $3, @$); }
  | expr EQ expr                   { $$ = binop(ctx, ZN_BIN_EQ, $1, $3, @$); }
  | expr NE expr                   { $$ = binop(ctx, ZN_BIN_NE, $1, $3, @$); }
  | expr '<' expr                  { $$ = binop(ctx, ZN_BIN_LT, $1, $3, @$); }
  | expr LE expr                   { $$ = binop(ctx, ZN_BIN_LE, $1, $3, @$); }
  | expr '>' expr                  { $$ = binop(ctx, ZN_BIN_GT, $1, $3, @$); }
  | expr GE expr                   { $$ = binop(ctx, ZN_BIN_GE, $1, $3, @$); }
  | expr AND expr                  { $$ = binop(ctx, ZN_BIN_AND, $1, $3, @$); }
  | expr OR expr                   { $$ = binop(ctx, ZN_BIN_OR, $1, $3, @$); }
  | '-' expr %prec UMINUS          { $$ = NEW(ZN_AST_UNOP, @$); $$->op = ZN_UN_NEG; $$->a = $2; }
  | NOT expr                       { $$ = NEW(ZN_AST_UNOP, @$); $$->op = ZN_UN_NOT; $$->a = $2; }
  ;

primary:
    INT                            { $$ = NEW(ZN_AST_INT, @$); $$->ival = $1; }
  | FLOAT                          { $$ = NEW(ZN_AST_FLOAT, @$); $$->fval = $1; }
  | STRING                         { $$ = NEW(ZN_AST_STRING, @$); $$->sval = $1; }
  | BOOL                           { $$ = NEW(ZN_AST_BOOL, @$); $$->ival = $1; }
  | NAME                           { $$ = named(ctx, ZN_AST_NAME, $1, NULL, @$); }
  | '(' expr ')'                   { $$ = $2; }
  | '[' exprs ']'                  { $$ = $2; $$->span = @$; }
  | NAME '(' args ')'              { $$ = named(ctx, ZN_AST_CALL, $1, NULL, @$); $$->kids = $3->kids; $$->n_kids = $3->n_kids; }
  | SHARED NAME '(' args ')'       { zn_ast *call = named(ctx, ZN_AST_CALL, $2, NULL, @$);
                                     call->kids = $4->kids; call->n_kids = $4->n_kids;
                                     $$ = NEW(ZN_AST_SHARED, @$); $$->a = call; }
  | primary '[' expr ']'           { $$ = NEW(ZN_AST_INDEX, @$); $$->a = $1; $$->b = $3; }
  ;

exprs:
    %empty                         { $$ = NEW(ZN_AST_LIST, @$); }
  | expr_list                      { $$ = $1; }
  | expr_list ','                  { $$ = $1; }
  ;
expr_list:
    expr                           { $$ = NEW(ZN_AST_LIST, @$); zn_ast_push(ctx->arena, $$, $1); }
  | expr_list ',' expr             { $$ = $1; zn_ast_push(ctx->arena, $$, $3); }
  ;

args:
    %empty                         { $$ = NEW(ZN_AST_BODY, @$); }
  | arg_list                       { $$ = $1; }
  | arg_list ','                   { $$ = $1; }
  ;
arg_list:
    arg                            { $$ = NEW(ZN_AST_BODY, @$); zn_ast_push(ctx->arena, $$, $1); }
  | arg_list ',' arg               { $$ = $1; zn_ast_push(ctx->arena, $$, $3); }
  ;
arg:
    expr                           { $$ = named(ctx, ZN_AST_ARG, NULL, $1, @$); }
  | NAME '=' expr                  { $$ = named(ctx, ZN_AST_ARG, $1, $3, @$); }
  ;

%%

/* The token filter between the scanner and the parser: delivers the start token, tracks
 * bracket depth (newlines inside brackets are not separators), and inserts a separator before
 * '}' and at the end of input so the last statement of a body needs no newline. */
static int zn_yylex(ZN_YYSTYPE *lval, ZN_YYLTYPE *lloc, yyscan_t scanner, zn_parse_ctx *ctx)
{
    int tok;
    if (ctx->too_deep) return ZN_YYEOF;
    if (ctx->start_token) {
        tok = ctx->start_token;
        ctx->start_token = 0;
        *lloc = (zn_span){ctx->file, 1, 1, 1, 1};
        return tok;
    }
    if (ctx->pending) {
        tok = ctx->pending;
        *lloc = ctx->pending_loc;
        ctx->pending = 0;
    } else {
        tok = zn_flex_lex(lval, lloc, scanner);
        if ((tok == '}' || tok == ZN_YYEOF) && ctx->need_sep) {
            ctx->pending = tok;
            ctx->pending_loc = *lloc;
            ctx->need_sep = 0;
            ctx->inserted = tok == '}' ? 1 : 2;
            if (tok == ZN_YYEOF) *lloc = (zn_span){ctx->file, ctx->line, ctx->col, ctx->line, ctx->col};
            lloc->end_line = lloc->line;
            lloc->end_col = lloc->col;
            return NEWLINE;
        }
    }
    if (tok == '(' || tok == '[' || tok == '{') {
        if (++ctx->nesting > ZN_MAX_NESTING) {
            zn_diag_error(ctx->diag, *lloc, "nesting deeper than %d brackets and braces", ZN_MAX_NESTING);
            zn_diag_hint(ctx->diag, "name inner parts in statements of their own, or move nested code into a block");
            ctx->too_deep = true;
            return ZN_YYEOF; /* stop here: the parser's own errors about the cut are not shown */
        }
    } else if ((tok == ')' || tok == ']' || tok == '}') && ctx->nesting > 0) {
        ctx->nesting--;
    }
    switch (tok) {
    case '(': case '[':
        if (ctx->depth < ZN_MAX_BRACKETS) ctx->open[ctx->depth] = *lloc;
        ctx->depth++;
        break;
    case ')': case ']':
        if (ctx->depth > 0) ctx->depth--;
        break;
    case '{':
        if (ctx->brace_depth < ZN_MAX_BRACKETS) ctx->brace_open[ctx->brace_depth] = *lloc;
        ctx->brace_depth++;
        ctx->depth = 0; /* a brace inside brackets is an error anyway: resynchronise */
        break;
    case '}':
        if (ctx->brace_depth > 0) ctx->brace_depth--;
        ctx->depth = 0;
        break;
    }
    ctx->need_sep = !(tok == NEWLINE || tok == ';' || tok == '{' || tok == ZN_YYEOF);
    ctx->inserted = 0;
    if (tok == NAME) ctx->last_name = lval->str;
    return tok;
}

/* With parse.error custom, bison calls this only when its stack is full. */
static void zn_yyerror(ZN_YYLTYPE *loc, yyscan_t scanner, zn_parse_ctx *ctx, const char *msg)
{
    (void)scanner;
    zn_diag_error(ctx->diag, *loc, "nesting too deep to parse: %s", msg);
    zn_diag_hint(ctx->diag, "split the expression into several statements");
}

static const char *token_text(yysymbol_kind_t sym)
{
    switch (sym) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_START_FILE: case YYSYMBOL_START_EXPR: return "start";
    default: return yysymbol_name(sym);
    }
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, zn_parse_ctx *ctx)
{
    (void)scanner;
    const zn_span *loc = yypcontext_location(yyctx);
    /* the scanner has reported a bad character or number on this line: that is the error */
    if (loc->line == ctx->lex_error_line || ctx->too_deep) return 0;
    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(yyctx, expected, YYNTOKENS);
    yysymbol_kind_t got = yypcontext_token(yyctx);
    /* a separator the filter inserted is reported as the token it was inserted before */
    const char *got_text = got == YYSYMBOL_NEWLINE && ctx->inserted ? (ctx->inserted == 1 ? "'}'" : "end of file")
                                                                    : token_text(got);
    bool at_end = got == YYSYMBOL_YYEOF || (got == YYSYMBOL_NEWLINE && ctx->inserted == 2);
    char name[96];
    if (got == YYSYMBOL_NAME && ctx->last_name) {
        snprintf(name, sizeof name, "name '%.80s'", ctx->last_name);
        got_text = name;
    }
    char want[256] = "";
    bool sep_ok = false;
    for (int i = 0; i < n; i++) {
        sep_ok |= expected[i] == YYSYMBOL_NEWLINE;
        size_t len = strlen(want);
        if (n < 6)
            snprintf(want + len, sizeof want - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                     token_text(expected[i]));
    }
    if (want[0])
        zn_diag_error(ctx->diag, *loc, "syntax error: unexpected %s; expected %s", got_text, want);
    else
        zn_diag_error(ctx->diag, *loc, "syntax error: unexpected %s", got_text);
    const zn_span *open = ctx->depth > 0 && ctx->depth <= ZN_MAX_BRACKETS ? &ctx->open[ctx->depth - 1] : NULL;
    const zn_span *brace = ctx->brace_depth > 0 && ctx->brace_depth <= ZN_MAX_BRACKETS
                               ? &ctx->brace_open[ctx->brace_depth - 1] : NULL;
    if (open && (loc->line > open->line || at_end))
        zn_diag_hint(ctx->diag, "the bracket opened at %d:%d is not closed", open->line, open->col);
    else if (at_end && brace)
        zn_diag_hint(ctx->diag, "the '{' at %d:%d is not closed", brace->line, brace->col);
    else if (sep_ok && (got == YYSYMBOL_NAME || got == YYSYMBOL_INT))
        zn_diag_hint(ctx->diag, "statements are separated by a newline or ';'");
    return 0;
}

static zn_ast *parse_with(zn_diag *diag, zn_arena *arena, const zn_source *src, int start)
{
    zn_parse_ctx ctx = {.arena = arena, .diag = diag, .file = src->path, .start_token = start,
                        .line = 1, .col = 1};
    yyscan_t scanner;
    if (zn_yylex_init_extra(&ctx, &scanner) != 0) {
        zn_diag_error(diag, (zn_span){src->path, 0, 0, 0, 0}, "out of memory starting the scanner");
        return NULL;
    }
    zn_yy_scan_bytes(src->text, (int)src->len, scanner);
    int errors_before = diag->n_errors;
    int rc = zn_yyparse(scanner, &ctx);
    zn_yylex_destroy(scanner);
    if (rc != 0 && diag->n_errors == errors_before)
        zn_diag_error(diag, (zn_span){src->path, ctx.line, ctx.col, ctx.line, ctx.col}, "cannot parse the file");
    return ctx.result;
}

zn_ast *zn_parse_source(zn_diag *diag, zn_arena *arena, const zn_source *src)
{
    zn_ast *file = parse_with(diag, arena, src, START_FILE);
    return file ? file : zn_ast_new(arena, ZN_AST_FILE, (zn_span){src->path, 1, 1, 1, 1});
}

zn_ast *zn_parse_expression(zn_diag *diag, zn_arena *arena, const zn_source *src)
{
    int before = diag->n_errors;
    zn_ast *e = parse_with(diag, arena, src, START_EXPR);
    return diag->n_errors == before ? e : NULL;
}
