/* diag.h: user-facing diagnostics: `file:line:col: error: message`, the source line, a caret
 * under the span and an optional hint. Also owns the source texts (so every message can quote
 * its line) and the did-you-mean helper. */
#ifndef ZN_DIAG_H
#define ZN_DIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graph/graph.h"

typedef struct zn_source {
    char *path;  /* as opened (relative paths kept as the user wrote them) */
    char *text;  /* whole file, NUL-terminated */
    size_t len;
} zn_source;

typedef struct {
    zn_source **sources;
    int n_sources, cap_sources;
    int n_errors;    /* every error reported, shown or not (the "did this fail" count) */
    int n_shown;     /* those shown: not repeats of a recent one, not past max_errors */
    int max_errors;  /* stop showing errors after this many (further errors are counted) */
    FILE *out;       /* stderr unless a test redirects it */
    uint64_t recent[16]; /* fingerprints of the last errors shown (place + text) */
    int n_recent;
    bool stopped;    /* max_errors were shown and "too many errors" said */
    bool muted;      /* the last error was not shown (a repeat, or past max_errors): nor are its
                        hints and notes */
} zn_diag;

void zn_diag_init(zn_diag *d, FILE *out);
void zn_diag_free(zn_diag *d);

/* Reads a file into the diagnostics' source table. NULL (and errno set) when unreadable. */
zn_source *zn_diag_load(zn_diag *d, const char *path);
/* Registers an in-memory text (e.g. a --set value) under a display name. */
zn_source *zn_diag_add_text(zn_diag *d, const char *name, const char *text);

/* Reports an error at span (span.file may be NULL for errors with no place). */
void zn_diag_error(zn_diag *d, zn_span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a `hint:` line to the error just reported. */
void zn_diag_hint(zn_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A `note:` pointing at another place (e.g. the first definition of a duplicate). */
void zn_diag_note(zn_diag *d, zn_span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The errors shown (n_shown): a closing "N errors" line gives this, so that it counts what the
 * reader sees. */
int zn_diag_shown(const zn_diag *d);

/* The candidate closest to name by edit distance, or NULL when none is close enough. */
const char *zn_did_you_mean(const char *name, const char *const *candidates, int n);

#endif
