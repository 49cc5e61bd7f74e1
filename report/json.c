/* json.c: the JSON reader (see json.h): recursive descent over the text with a depth limit,
 * numbers checked against the JSON grammar before strtod reads them, strings decoded with
 * \uXXXX escapes (surrogate pairs joined) into UTF-8. */
#include "report/json.h"

#include <math.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
} json_parser;

static bool fail_at(json_parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_at(json_parser *p, size_t pos, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "column %zu: ", pos + 1);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static int peek(const json_parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static void skip_ws(json_parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

/* What is at pos, for "expected X, found Y" messages. */
static const char *found(const json_parser *p)
{
    static _Thread_local char buf[32];
    int c = peek(p);
    if (c < 0) return "the end of the line";
    if (c < 0x20 || c >= 0x7f) snprintf(buf, sizeof buf, "byte 0x%02x", (unsigned)c);
    else snprintf(buf, sizeof buf, "'%c'", c);
    return buf;
}

static bool parse_value(json_parser *p, zn_json *v, int depth);

/* Grows a string being decoded. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static bool sb_put(strbuf *b, const char *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        while (cap < b->n + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) return false;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, src, n);
    b->n += n;
    b->s[b->n] = '\0';
    return true;
}

static bool sb_put_utf8(strbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    return sb_put(b, u, n);
}

static bool hex4(json_parser *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = peek(p);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail_at(p, p->pos, "\\u needs 4 hex digits, found %s", found(p));
        v = v * 16 + (uint32_t)d;
        p->pos++;
    }
    *out = v;
    return true;
}

/* After the backslash. */
static bool parse_escape(json_parser *p, strbuf *b)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t at = p->pos - 1;
    int c = peek(p);
    const char *k = c > 0 ? strchr(from, c) : NULL;
    p->pos++;
    if (k && c) return sb_put(b, &to[k - from], 1) || fail_at(p, at, "out of memory");
    if (c != 'u') return fail_at(p, at, "unknown escape '\\%c'", c > 0x20 ? c : '?');
    uint32_t cp;
    if (!hex4(p, &cp)) return false;
    if (cp >= 0xdc00 && cp <= 0xdfff) return fail_at(p, at, "a lone low surrogate \\u%04x", (unsigned)cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail_at(p, at, "a high surrogate \\u%04x without its low half", (unsigned)cp);
        p->pos += 2;
        if (!hex4(p, &lo)) return false;
        if (lo < 0xdc00 || lo > 0xdfff)
            return fail_at(p, at, "a high surrogate \\u%04x without its low half", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) return fail_at(p, at, "\\u0000 is not supported");
    return sb_put_utf8(b, cp) || fail_at(p, at, "out of memory");
}

/* At the opening quote; *out is malloc'd. */
static bool parse_string(json_parser *p, char **out)
{
    size_t start = p->pos++;
    strbuf b = {0};
    bool ok = sb_put(&b, "", 0);
    while (ok) {
        int c = peek(p);
        if (c < 0) {
            ok = fail_at(p, start, "string never ends");
        } else if (c == '"') {
            p->pos++;
            break;
        } else if (c < 0x20) {
            ok = fail_at(p, p->pos, "control character 0x%02x in a string (escape it)", (unsigned)c);
        } else if (c == '\\') {
            p->pos++;
            ok = parse_escape(p, &b);
        } else {
            size_t run = p->pos;
            while (run < p->len && p->s[run] != '"' && p->s[run] != '\\' && (unsigned char)p->s[run] >= 0x20) run++;
            ok = sb_put(&b, p->s + p->pos, run - p->pos) || fail_at(p, p->pos, "out of memory");
            p->pos = run;
        }
    }
    if (!ok) {
        free(b.s);
        return false;
    }
    *out = b.s;
    return true;
}

static size_t digits(const json_parser *p, size_t i)
{
    while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    return i;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool parse_number(json_parser *p, double *out)
{
    size_t start = p->pos, i = p->pos;
    if (i < p->len && p->s[i] == '-') i++;
    size_t int_end = digits(p, i);
    if (int_end == i) return fail_at(p, start, "expected a value, found %s", found(p));
    if (p->s[i] == '0' && int_end > i + 1) return fail_at(p, start, "a number with a leading zero");
    i = int_end;
    if (i < p->len && p->s[i] == '.') {
        size_t e = digits(p, i + 1);
        if (e == i + 1) return fail_at(p, i, "a '.' needs digits after it");
        i = e;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (p->s[j] == '+' || p->s[j] == '-')) j++;
        size_t e = digits(p, j);
        if (e == j) return fail_at(p, i, "an exponent needs digits");
        i = e;
    }
    char buf[64];
    if (i - start >= sizeof buf) return fail_at(p, start, "a number of more than %zu characters", sizeof buf - 1);
    memcpy(buf, p->s + start, i - start);
    buf[i - start] = '\0';
    *out = strtod(buf, NULL);
    p->pos = i;
    return true;
}

static bool parse_literal(json_parser *p, zn_json *v)
{
    static const struct { const char *text; zn_json_kind kind; bool value; } lits[] = {
        {"true", ZN_JSON_BOOL, true}, {"false", ZN_JSON_BOOL, false}, {"null", ZN_JSON_NULL, false}};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(lits[k].text);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, lits[k].text, n) == 0) {
            v->kind = lits[k].kind;
            v->boolean = lits[k].value;
            p->pos += n;
            return true;
        }
    }
    return fail_at(p, p->pos, "expected a value, found %s", found(p));
}

static bool push_item(json_parser *p, zn_json *v, int *cap)
{
    if (v->n_items == *cap) {
        int n = *cap ? *cap * 2 : 8;
        zn_json *items = realloc(v->items, (size_t)n * sizeof *items);
        if (!items) return fail_at(p, p->pos, "out of memory");
        v->items = items;
        *cap = n;
    }
    memset(&v->items[v->n_items++], 0, sizeof *v->items);
    return true;
}

/* An array or object, at its opening bracket. */
static bool parse_container(json_parser *p, zn_json *v, int depth)
{
    bool object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    v->kind = object ? ZN_JSON_OBJECT : ZN_JSON_ARRAY;
    if (depth >= MAX_DEPTH) return fail_at(p, p->pos, "nested more than %d deep", MAX_DEPTH);
    p->pos++;
    skip_ws(p);
    if (peek(p) == close) {
        p->pos++;
        return true;
    }
    for (int cap = 0;;) {
        skip_ws(p);
        if (!push_item(p, v, &cap)) return false;
        zn_json *item = &v->items[v->n_items - 1];
        if (object) {
            size_t key_at = p->pos;
            if (peek(p) != '"') return fail_at(p, p->pos, "expected a member name in quotes, found %s", found(p));
            if (!parse_string(p, &item->key)) return false;
            for (int k = 0; k < v->n_items - 1; k++)
                if (strcmp(v->items[k].key, item->key) == 0)
                    return fail_at(p, key_at, "duplicate member \"%s\"", item->key);
            skip_ws(p);
            if (peek(p) != ':') return fail_at(p, p->pos, "expected ':' after the member name, found %s", found(p));
            p->pos++;
            skip_ws(p);
        }
        if (!parse_value(p, item, depth + 1)) return false;
        skip_ws(p);
        int c = peek(p);
        p->pos++;
        if (c == close) return true;
        if (c != ',') {
            p->pos--;
            return fail_at(p, p->pos, "expected ',' or '%c', found %s", close, found(p));
        }
        skip_ws(p);
        if (peek(p) == close) return fail_at(p, p->pos, "a trailing comma before '%c'", close);
    }
}

static bool parse_value(json_parser *p, zn_json *v, int depth)
{
    int c = peek(p);
    if (c == '{' || c == '[') return parse_container(p, v, depth);
    if (c == '"') {
        v->kind = ZN_JSON_STRING;
        return parse_string(p, &v->string);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        v->kind = ZN_JSON_NUMBER;
        return parse_number(p, &v->number);
    }
    return parse_literal(p, v);
}

bool zn_json_parse(const char *text, size_t len, zn_json *out, char *err, size_t errlen)
{
    json_parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    skip_ws(&p);
    bool ok = parse_value(&p, out, 0);
    skip_ws(&p);
    if (ok && p.pos < len) ok = fail_at(&p, p.pos, "unexpected %s after the value", found(&p));
    if (!ok) {
        zn_json_free(out);
        memset(out, 0, sizeof *out);
    }
    return ok;
}

void zn_json_free(zn_json *v)
{
    for (int i = 0; i < v->n_items; i++) zn_json_free(&v->items[i]);
    free(v->items);
    free(v->string);
    free(v->key);
    v->items = NULL;
    v->string = v->key = NULL;
    v->n_items = 0;
}

const zn_json *zn_json_get(const zn_json *obj, const char *key)
{
    if (!obj || obj->kind != ZN_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n_items; i++)
        if (strcmp(obj->items[i].key, key) == 0) return &obj->items[i];
    return NULL;
}

const char *zn_json_kind_name(zn_json_kind k)
{
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[k];
}

void zn_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

void zn_json_write_number(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}
