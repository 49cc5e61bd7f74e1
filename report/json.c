/* json.c: the JSON lines of json.h over jansson. Reading asks jansson for strictness (duplicate
 * names refused, one value per line, every number a double); writing dumps compact with up to 15
 * significant digits, enough for every number to print as the short form it was rounded to. */
#include "report/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define READ_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL)
#define WRITE_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

json_t *zn_json_parse_line(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(text, len, READ_FLAGS, &e);
    if (!v) snprintf(err, errlen, "column %d: %s", e.column > 0 ? e.column : 1, e.text);
    return v;
}

const char *zn_json_kind_name(const json_t *v)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
        [JSON_INTEGER] = "a number", [JSON_REAL] = "a number", [JSON_TRUE] = "a boolean",
        [JSON_FALSE] = "a boolean", [JSON_NULL] = "null",
    };
    return names[json_typeof(v)];
}

json_t *zn_json_number(double v, const char *format)
{
    if (!isfinite(v)) return json_null();
    char text[64];
    snprintf(text, sizeof text, format, v);
    return json_real(strtod(text, NULL));
}

json_t *zn_json_text(const char *s)
{
    json_t *v = json_string(s);
    if (v) return v;
    char *ascii = strdup(s); /* jansson refuses it as UTF-8: keep what is plain ASCII */
    if (!ascii) return NULL;
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    v = json_string(ascii);
    free(ascii);
    return v;
}

bool zn_json_write_line(FILE *f, json_t *record)
{
    bool ok = record && json_dumpf(record, f, WRITE_FLAGS) == 0 && fputc('\n', f) != EOF;
    json_decref(record);
    return ok;
}
