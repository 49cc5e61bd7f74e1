/* json.h: a small, strict JSON reader (RFC 8259, no extensions: no comments, trailing commas,
 * NaN or duplicate keys) that builds a tree, for machine-written files such as training logs
 * (one value per line). Errors give the column and what was expected. */
#ifndef ZN_JSON_H
#define ZN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    ZN_JSON_NULL, ZN_JSON_BOOL, ZN_JSON_NUMBER, ZN_JSON_STRING, ZN_JSON_ARRAY, ZN_JSON_OBJECT
} zn_json_kind;

typedef struct zn_json zn_json;
struct zn_json {
    zn_json_kind kind;
    bool boolean;   /* BOOL */
    double number;  /* NUMBER */
    char *string;   /* STRING: decoded to UTF-8, NUL-terminated (\u0000 is refused) */
    char *key;      /* a member of an OBJECT: its name; NULL otherwise */
    zn_json *items; /* ARRAY elements or OBJECT members, in order [n_items] */
    int n_items;
};

/* Parses text[0..len) as exactly one value with optional surrounding whitespace. On failure
 * out is left empty (safe to free) and err reads "column N: message" (1-based, in bytes). */
bool zn_json_parse(const char *text, size_t len, zn_json *out, char *err, size_t errlen);
void zn_json_free(zn_json *v);
/* The member of OBJECT obj named key, or NULL (also when obj is NULL or not an object). */
const zn_json *zn_json_get(const zn_json *obj, const char *key);
/* "null", "a boolean", "a number", ...: for messages. */
const char *zn_json_kind_name(zn_json_kind k);

/* Writers for the logs this reader reads: a string with JSON escapes, and a number (null when
 * it is not finite, since JSON has no NaN). */
void zn_json_write_string(FILE *f, const char *s);
void zn_json_write_number(FILE *f, double v);

#endif
