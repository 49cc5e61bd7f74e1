/* libcurl.h: libcurl, opened when the first download starts rather than linked. Linked, its TLS,
 * LDAP and Kerberos libraries cost every znet command about 5 of its 12 ms start-up, and
 * `znet data get` is the one command that downloads (docs/performance.md, "Start-up").
 * Only the calls fetch.c makes are here; the types and constants are curl's own headers'. */
#ifndef ZN_LIBCURL_H
#define ZN_LIBCURL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

typedef struct {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *c, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *c);
    const char *(*easy_strerror)(CURLcode rc);
} zn_libcurl;

/* libcurl's calls, the library opened on the first call and kept open; NULL, with err saying which
 * library or symbol is missing and which Debian package has it, when it cannot be opened. */
const zn_libcurl *zn_libcurl_open(char *err, size_t errlen);

#endif
