/* util.h: helpers every library needs: allocations that stop the program with the failed call's
 * name when memory runs out (an internal condition, not a user error; sizes a user chooses are
 * checked where they are chosen), and a formatter for the `char *err, size_t errlen` convention
 * that returns false. */
#ifndef ZN_GRAPH_UTIL_H
#define ZN_GRAPH_UTIL_H

#include <stdbool.h>
#include <stddef.h>

void *zn_calloc(size_t n, size_t size);
void *zn_malloc(size_t bytes);
void *zn_realloc(void *p, size_t bytes);
char *zn_strdup(const char *s);
char *zn_strndup(const char *s, size_t n);
/* The folder part of path into out: "." for a bare name, "/" for a name at the root. */
void zn_folder_of(const char *path, char *out, size_t len);
bool zn_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
