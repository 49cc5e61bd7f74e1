/* diag.c: error reporting with source excerpts and carets, and the source table. Output stops
 * after max_errors messages so a file full of garbage does not flood the terminal. */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/util.h"

void zn_diag_init(zn_diag *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out ? out : stderr;
    d->max_errors = 20;
}

void zn_diag_free(zn_diag *d)
{
    for (int i = 0; i < d->n_sources; i++) {
        free(d->sources[i]->path);
        free(d->sources[i]->text);
        free(d->sources[i]);
    }
    free(d->sources);
    d->sources = NULL;
    d->n_sources = 0;
}

static zn_source *diag_push(zn_diag *d, const char *path, char *text, size_t len)
{
    if (d->n_sources == d->cap_sources) {
        d->cap_sources = d->cap_sources ? 2 * d->cap_sources : 8;
        d->sources = zn_realloc(d->sources, sizeof *d->sources * d->cap_sources);
    }
    zn_source *s = zn_calloc(1, sizeof *s);
    s->path = zn_strdup(path);
    s->text = text;
    s->len = len;
    d->sources[d->n_sources++] = s;
    return s;
}

zn_source *zn_diag_load(zn_diag *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    /* the file's size is the user's: too large for memory is a read failure (ENOMEM) the
     * caller reports with the path, not the end of the program */
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    int err = buf ? 0 : ENOMEM;
    while (!err && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 < cap) continue;
        char *grown = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (grown) {
            buf = grown;
            cap *= 2;
        } else {
            err = ENOMEM;
        }
    }
    if (!err && ferror(f)) err = errno ? errno : EIO;
    fclose(f);
    if (err) { /* errno tells the caller why */
        free(buf);
        errno = err;
        return NULL;
    }
    buf[len] = '\0';
    return diag_push(d, path, buf, len);
}

zn_source *zn_diag_add_text(zn_diag *d, const char *name, const char *text)
{
    return diag_push(d, name, zn_strdup(text), strlen(text));
}

static const zn_source *diag_find(const zn_diag *d, const char *path)
{
    for (int i = d->n_sources - 1; i >= 0; i--)
        if (d->sources[i]->path == path || strcmp(d->sources[i]->path, path) == 0)
            return d->sources[i];
    return NULL;
}

/* Prints the span's first line and a caret line under it (tabs copied so columns align). A long
 * line is cut to a window around the span's start. */
static void diag_excerpt(zn_diag *d, zn_span sp)
{
    enum { WINDOW = 100 }; /* columns shown of a longer line */
    const zn_source *s = sp.file ? diag_find(d, sp.file) : NULL;
    if (!s || sp.line < 1) return;
    /* memchr, not strchr: a NUL byte in the file (an error of its own) must not hide later lines */
    const char *p = s->text, *end_text = s->text + s->len;
    for (int l = 1; l < sp.line && p; l++) {
        p = memchr(p, '\n', (size_t)(end_text - p));
        if (p) p++;
    }
    if (!p || p >= end_text) return;
    const char *e = memchr(p, '\n', (size_t)(end_text - p));
    int len = (int)((e ? e : end_text) - p);
    if (len > 0 && p[len - 1] == '\r') len--;
    int start = sp.col < 1 ? 1 : sp.col;
    int end = (sp.end_line == sp.line && sp.end_col >= start) ? sp.end_col : len;
    if (end > len) end = len > start ? len : start;
    int from = 1, to = len; /* the columns shown */
    if (len > WINDOW) {
        from = start > WINDOW / 2 ? start - WINDOW / 2 : 1;
        to = from + WINDOW - 1 < len ? from + WINDOW - 1 : len;
        if (end > to) end = to > start ? to : start;
    }
    const char *cut = from > 1 ? "..." : "";
    fprintf(d->out, "  %s%.*s%s\n  %s", cut, to - from + 1, p + from - 1, to < len ? "..." : "",
            from > 1 ? "   " : "");
    /* columns count bytes; a UTF-8 continuation byte takes no place on the screen */
    for (int c = from; c < start && c <= to; c++)
        if (((unsigned char)p[c - 1] & 0xc0) != 0x80) fputc(p[c - 1] == '\t' ? '\t' : ' ', d->out);
    for (int c = start; c <= end; c++)
        if (c > len || c == start || ((unsigned char)p[c - 1] & 0xc0) != 0x80) fputc(c == start ? '^' : '~', d->out);
    fputc('\n', d->out);
}

static void diag_vreport(zn_diag *d, const char *kind, zn_span sp, const char *fmt, va_list ap)
{
    if (sp.file && sp.line > 0)
        fprintf(d->out, "%s:%d:%d: %s: ", sp.file, sp.line, sp.col, kind);
    else if (sp.file)
        fprintf(d->out, "%s: %s: ", sp.file, kind);
    else
        fprintf(d->out, "znet: %s: ", kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    diag_excerpt(d, sp);
}

/* An error at the same place with the same text as one shown recently (a block called several
 * times failing the same way) is counted but not shown again. */
static void diag_report(zn_diag *d, const char *kind, zn_span sp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(d, kind, sp, fmt, ap);
    va_end(ap);
}

static bool diag_repeat(zn_diag *d, zn_span sp, const char *text)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const char *parts[2] = {sp.file ? sp.file : "", text};
    for (int k = 0; k < 2; k++)
        for (const char *c = parts[k]; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    h = (h ^ (uint64_t)sp.line * 65599u ^ (uint64_t)sp.col) * 0x100000001b3ull;
    int n = d->n_recent < 16 ? d->n_recent : 16;
    for (int i = 0; i < n; i++)
        if (d->recent[i] == h) return true;
    d->recent[d->n_recent++ % 16] = h;
    return false;
}

void zn_diag_error(zn_diag *d, zn_span sp, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    d->n_errors++;
    bool full = d->n_shown == d->max_errors;
    if (full && !d->stopped) /* after the last shown error's hints and notes */
        fprintf(d->out, "znet: too many errors; stopping the report here\n");
    d->stopped |= full;
    d->muted = full || diag_repeat(d, sp, text);
    if (d->muted) return;
    d->n_shown++;
    diag_report(d, "error", sp, "%s", text);
}

int zn_diag_shown(const zn_diag *d) { return d->n_shown; }

void zn_diag_hint(zn_diag *d, const char *fmt, ...)
{
    if (d->muted) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("  hint: ", d->out);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}

void zn_diag_note(zn_diag *d, zn_span sp, const char *fmt, ...)
{
    if (d->muted) return;
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(d, "note", sp, fmt, ap);
    va_end(ap);
}

/* Edit distance where swapping two neighbours ("crb" for "cbr") counts as one edit. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int rows[3][65]; /* rows i-2, i-1, i (mod 3) */
    for (size_t j = 0; j <= lb; j++) rows[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

const char *zn_did_you_mean(const char *name, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 99;
    int limit = strlen(name) <= 3 ? 1 : strlen(name) <= 6 ? 2 : 3;
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int dist = edit_distance(name, cands[i]);
        if (dist < best_d) best_d = dist, best = cands[i];
    }
    return best_d <= limit ? best : NULL;
}
