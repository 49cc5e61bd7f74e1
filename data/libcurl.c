/* libcurl.c: opens libcurl by its soname on the first download (see libcurl.h) and looks up the
 * calls fetch.c makes, once for the process. */
#include "data/libcurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* curl's ABI 4 has been the soname since 2006; the Debian package is libcurl4 (libcurl4t64 on
 * newer releases), installed with libcurl4-openssl-dev */
#define LIBCURL_SONAME "libcurl.so.4"

static zn_libcurl api;
static char open_error[512];
static pthread_once_t opened = PTHREAD_ONCE_INIT;

static void open_libcurl(void)
{
    void *lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(open_error, sizeof open_error, "downloading needs libcurl: %s (apt-get install libcurl4)", dlerror());
        return;
    }
    static const struct {
        const char *name;
        size_t offset;
    } calls[] = {
        {"curl_global_init", offsetof(zn_libcurl, global_init)},
        {"curl_global_cleanup", offsetof(zn_libcurl, global_cleanup)},
        {"curl_easy_init", offsetof(zn_libcurl, easy_init)},
        {"curl_easy_setopt", offsetof(zn_libcurl, easy_setopt)},
        {"curl_easy_perform", offsetof(zn_libcurl, easy_perform)},
        {"curl_easy_getinfo", offsetof(zn_libcurl, easy_getinfo)},
        {"curl_easy_cleanup", offsetof(zn_libcurl, easy_cleanup)},
        {"curl_easy_strerror", offsetof(zn_libcurl, easy_strerror)},
    };
    zn_libcurl found;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        void *fn = dlsym(lib, calls[i].name);
        if (!fn) {
            snprintf(open_error, sizeof open_error, "downloading needs libcurl: %s has no %s", LIBCURL_SONAME,
                     calls[i].name);
            dlclose(lib);
            return;
        }
        /* POSIX guarantees a function pointer survives the trip through dlsym's void * */
        memcpy((char *)&found + calls[i].offset, &fn, sizeof fn);
    }
    api = found;
}

const zn_libcurl *zn_libcurl_open(char *err, size_t errlen)
{
    pthread_once(&opened, open_libcurl);
    if (api.easy_init) return &api;
    snprintf(err, errlen, "%s", open_error);
    return NULL;
}
