/* fetch.h: `znet data get`: downloading a data set's official archive with libcurl, checking
 * its checksum (MD5, or a SHA-256 given) and unpacking it into a data root (the per-user cache by default) so that
 * zn_data_dir_resolve finds it. Only CIFAR-10 is downloaded; Fashion-MNIST comes from a
 * Debian package (see docs/data.md). */
#ifndef ZN_FETCH_H
#define ZN_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ZN_CIFAR10_URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
#define ZN_CIFAR10_MD5 "c32a1d4ab5d03f1284b67883e8d87530"
#define ZN_CIFAR10_ARCHIVE "cifar-10-binary.tar.gz"
#define ZN_CIFAR10_ARCHIVE_BYTES 170052171LL
#define ZN_CIFAR10_FOLDER "cifar-10-batches-bin"

typedef struct {
    const char *url; /* NULL: ZN_CIFAR10_URL (tests and mirrors set another) */
    const char *md5; /* NULL: ZN_CIFAR10_MD5; else 32 hex digits */
    const char *sha256; /* NULL: check the MD5; else 64 hex digits, checked instead */
    const char *dir; /* data root, unpacked into dir/cifar-10-batches-bin; NULL: the cache */
    int retries;     /* tries again after a timeout, a lost connection or an HTTP 408/429/5xx */
    FILE *log;       /* one line per step, and curl's progress meter on a terminal; NULL: quiet */
} zn_fetch_opts;

/* Makes <root>/cifar-10-batches-bin hold CIFAR-10 and checks that zn_cifar10_load reads both
 * splits. Nothing is downloaded when it already does, nor when <root>/cifar-10-binary.tar.gz
 * (placed there by hand) is there with the right checksum. The download goes to <root>/
 * cifar-10-binary.tar.gz.part and resumes from it (an HTTP range request); a .part with the
 * wrong checksum is removed. The archive is unpacked into a staging folder and moved into place only once it
 * loads, so a failure never leaves a half-written data set; a downloaded archive is removed
 * afterwards. One call per root at a time (flock on the root). False with the reason in err
 * (zn_fetch_cifar10_manual says what a user can do instead). */
bool zn_fetch_cifar10(const zn_fetch_opts *o, char *err, size_t errlen);
/* How to get CIFAR-10 by hand for these options: what to download, its checksum, where to unpack. */
void zn_fetch_cifar10_manual(const zn_fetch_opts *o, FILE *f);
/* The data root o->dir names, else the per-user cache ($XDG_CACHE_HOME/znet when that is
 * absolute, else $HOME/.cache/znet); false when neither can be formed. */
bool zn_fetch_root(const zn_fetch_opts *o, char *out, size_t outlen);

#endif
