/* format.c: text for people: a node's place in the .znet source (the backends' messages), counts
 * with thousands separators and byte sizes in binary units (the summary, bench, compare and the
 * training loop's messages). */
#include <inttypes.h>
#include <stdio.h>

#include "graph/inspect.h"

const char *zn_node_where(const zn_node *n, char *buf, size_t len)
{
    const char *file = n->span.file ? n->span.file : "<built-in>";
    if (n->span.line <= 0)
        snprintf(buf, len, "%s", file);
    else if (n->span.col <= 0)
        snprintf(buf, len, "%s:%d", file, n->span.line);
    else
        snprintf(buf, len, "%s:%d:%d", file, n->span.line, n->span.col);
    return buf;
}

const char *zn_format_count(int64_t v, char *buf, size_t len)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRId64, v);
    int lead = digits[0] == '-';
    size_t at = 0;
    for (int i = 0; i < n && at + 1 < len; i++) {
        if (i > lead && (n - i) % 3 == 0) {
            buf[at++] = ',';
            if (at + 1 >= len) break;
        }
        buf[at++] = digits[i];
    }
    if (len) buf[at] = '\0';
    return buf;
}

const char *zn_format_bytes(size_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 5) v /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}
