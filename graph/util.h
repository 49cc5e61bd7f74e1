/* util.h: two helpers every graph/ file needs: an allocation that stops the program with the
 * failed call's name when memory runs out (an internal condition, not a user error), and a
 * formatter for the `char *err, size_t errlen` convention that returns false. */
#ifndef ZN_GRAPH_UTIL_H
#define ZN_GRAPH_UTIL_H

#include <stdbool.h>
#include <stddef.h>

void *zn_calloc(size_t n, size_t size);
bool zn_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
