/* value.c: naming and printing of evaluation values for diagnostics and summaries. */
#include "value.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* One row per kind: its name ("integer") and the phrase a message uses ("an integer"). */
static const struct {
    const char *name, *phrase;
} kinds[] = {
    [ZN_VAL_ERROR] = {"error", "an error"},
    [ZN_VAL_INT] = {"integer", "an integer"},
    [ZN_VAL_FLOAT] = {"number", "a number"},
    [ZN_VAL_BOOL] = {"boolean", "a boolean"},
    [ZN_VAL_STRING] = {"string", "a string"},
    [ZN_VAL_LIST] = {"list", "a list"},
    [ZN_VAL_TENSOR] = {"tensor", "a tensor"},
    [ZN_VAL_INSTANCE] = {"shared block instance", "a shared block instance"},
    [ZN_VAL_RECORD] = {"setting", "a setting"},
};

const char *zn_val_kind_name(zn_val_kind k) { return kinds[k].name; }

const char *zn_val_kind_phrase(zn_val_kind k) { return kinds[k].phrase; }

bool zn_val_is_number(const zn_value *v) { return v->kind == ZN_VAL_INT || v->kind == ZN_VAL_FLOAT; }

double zn_val_number(const zn_value *v) { return v->kind == ZN_VAL_INT ? (double)v->i : v->f; }

const char *zn_val_str(const zn_value *v, char *buf, size_t len)
{
    switch (v->kind) {
    case ZN_VAL_INT: snprintf(buf, len, "%lld", (long long)v->i); break;
    case ZN_VAL_FLOAT: snprintf(buf, len, "%g", v->f); break;
    case ZN_VAL_BOOL: snprintf(buf, len, "%s", v->i ? "true" : "false"); break;
    case ZN_VAL_STRING: snprintf(buf, len, "\"%s\"", v->s); break;
    case ZN_VAL_LIST: {
        size_t used = 0;
        buf[0] = '\0';
        used += snprintf(buf, len, "[");
        for (int i = 0; i < v->list.n && used + 8 < len; i++) {
            char item[64];
            used += snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                             zn_val_str(&v->list.items[i], item, sizeof item));
        }
        if (used < len) snprintf(buf + used, len - used, "]");
        break;
    }
    case ZN_VAL_RECORD: snprintf(buf, len, "%s(...)", v->rec->name); break;
    default: snprintf(buf, len, "%s", zn_val_kind_name(v->kind)); break;
    }
    return buf;
}

float zn_f32(double x)
{
    if (x > FLT_MAX) return INFINITY;
    if (x < -FLT_MAX) return -INFINITY;
    return (float)x;
}
