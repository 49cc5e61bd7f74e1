/* json.h: training logs as JSON lines, over jansson: reading one line into a value (strict: one
 * value, no duplicate member names, numbers as doubles) with a message naming the column, and
 * writing one record per line. A number is stored as its printed form reads back, so a log holds
 * the digits it promises (e.g. "%.6g" of a loss) and reading it gives exactly those. */
#ifndef ZN_JSON_H
#define ZN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* text[0..len) as exactly one value; NULL with "column N: message" in err. */
json_t *zn_json_parse_line(const char *text, size_t len, char *err, size_t errlen);
/* "null", "a boolean", "a number", ...: for messages. */
const char *zn_json_kind_name(const json_t *v);
/* v as printf's format (one double conversion) prints it, read back; null when v is not finite
 * (JSON has no NaN). */
json_t *zn_json_number(double v, const char *format);
/* A string value of s; bytes that are not UTF-8 (JSON text must be) become '?'. */
json_t *zn_json_text(const char *s);
/* Writes record (an object built with the functions above) as one compact line and releases
 * it; false when it is NULL (a value could not be made: out of memory) or the write fails. */
bool zn_json_write_line(FILE *f, json_t *record);

#endif
