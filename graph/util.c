/* util.c: see util.h. */
#include "graph/util.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names the call that failed and ends the program (exit 1, never an abort). */
static void *checked(void *p, const char *call, size_t a, size_t b)
{
    if (p) return p;
    if (b) fprintf(stderr, "znet: %s(%zu, %zu) failed: out of memory\n", call, a, b);
    else fprintf(stderr, "znet: %s(%zu bytes) failed: out of memory\n", call, a);
    exit(EXIT_FAILURE);
}

/* Zero sizes ask for one byte (or element), so NULL always means out of memory. */
void *zn_calloc(size_t n, size_t size) { return checked(calloc(n ? n : 1, size ? size : 1), "calloc", n, size); }
void *zn_malloc(size_t bytes) { return checked(malloc(bytes ? bytes : 1), "malloc", bytes, 0); }
void *zn_realloc(void *p, size_t bytes) { return checked(realloc(p, bytes ? bytes : 1), "realloc", bytes, 0); }
char *zn_strdup(const char *s) { return checked(strdup(s), "strdup", strlen(s) + 1, 0); }
char *zn_strndup(const char *s, size_t n) { return checked(strndup(s, n), "strndup", n + 1, 0); }

void zn_folder_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, len, ".");
    else snprintf(out, len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

bool zn_beside_exe(const char *rel, char *out, size_t len)
{
    char exe[PATH_MAX], folder[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = '\0';
    zn_folder_of(exe, folder, sizeof folder);
    return (size_t)snprintf(out, len, "%s/%s", folder, rel) < len;
}

/* dlopen(path) unless one is open or a failure was kept; a failure is kept when path was named
 * or exists. dlerror's text is kept alone when it already starts with the path. */
static void *module_try(void *open, const char *path, bool named, int flags, char *why, size_t len)
{
    if (open || why[0]) return open;
    void *h = dlopen(path, flags);
    if (h) return h;
    const char *e = dlerror();
    if (!e) e = "unknown error";
    bool says_path = strncmp(e, path, strlen(path)) == 0;
    if (named || access(path, F_OK) == 0) snprintf(why, len, "%s%s%s", says_path ? "" : path, says_path ? "" : ": ", e);
    return NULL;
}

void *zn_module_open(const char *name, const char *env_var, const char *build_path, int flags, char *why,
                     size_t len)
{
    char installed[PATH_MAX], beside[PATH_MAX], rel[PATH_MAX];
    why[0] = '\0';
    const char *env = getenv(env_var);
    if (env && *env) return module_try(NULL, env, true, flags, why, len);
    void *h = NULL;
    snprintf(rel, sizeof rel, "../lib/znet/%s", name);
    if (zn_beside_exe(rel, installed, sizeof installed)) h = module_try(h, installed, false, flags, why, len);
    h = module_try(h, build_path, false, flags, why, len);
    if (zn_beside_exe(name, beside, sizeof beside)) h = module_try(h, beside, false, flags, why, len);
    return module_try(h, name, false, flags, why, len);
}

void zn_module_places(const char *env_var, const char *build_path, char *out, size_t len)
{
    snprintf(out, len, "looked in ../lib/znet/ from the znet binary, at %s, next to the binary and on the "
             "library path; $%s names another", build_path, env_var);
}

bool zn_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b) return false;
    return strcmp(a, b) == 0 ||
           (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

bool zn_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}
