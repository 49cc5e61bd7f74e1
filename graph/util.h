/* util.h: helpers every library needs: allocations that stop the program with the failed call's
 * name when memory runs out (an internal condition, not a user error; sizes a user chooses are
 * checked where they are chosen), a path's folder, a path beside the running binary, whether two paths name one file, and a
 * formatter for the `char *err, size_t errlen` convention that returns false. */
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
/* Whether paths a and b name one file: the same text, or one existing file (device and inode),
 * so that an output is never written over an input given under another name; false for NULL. */
bool zn_same_file(const char *a, const char *b);
/* "<folder of the running binary>/rel" into out (from /proc/self/exe, so an installed znet finds
 * what was installed beside it, wherever the prefix is); false when unknown or too long. */
bool zn_beside_exe(const char *rel, char *out, size_t len);
/* dlopen(path, flags) of one of znet's modules (the CUDA backend, the MPI part) where it may be:
 * $env_var's path alone when set; else PREFIX/lib/znet/name for PREFIX/bin/znet, build_path (the
 * build's own), name beside the binary, name on the library path. NULL when none loads; why then
 * holds "PATH: dlerror" for the first that exists or was named (a missing dependency such as
 * libcudnn says more than "not found"), else "" (nothing found: zn_module_places says where it
 * looked). */
void *zn_module_open(const char *name, const char *env_var, const char *build_path, int flags, char *why,
                     size_t len);
/* "looked in ../lib/znet/ from the znet binary, at BUILD_PATH, ...; $ENV_VAR names another" */
void zn_module_places(const char *env_var, const char *build_path, char *out, size_t len);
bool zn_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
