/* fetch.c: getting CIFAR-10 (see fetch.h): the download through libcurl, the checksum check,
 * unpacking into a staging folder beside the target, validation with the CIFAR-10 reader, and
 * the final renames. Paths are formed once into a fetch_paths so every step names the same. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE   /* flock */
#include "data/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/checksum.h"
#include "data/libcurl.h"
#include "data/tar.h"

/* the official archive unpacks to 184,380,000 bytes of batches plus two small files */
#define MAX_UNPACKED_BYTES 200000000LL
#define CONNECT_SECONDS 30L
#define STALL_SECONDS 60L /* under a byte a second for this long */

typedef struct {
    char root[4096];    /* the data root */
    char target[4096];  /* root/cifar-10-batches-bin */
    char archive[4096]; /* root/cifar-10-binary.tar.gz */
    char part[4096];    /* the download in progress: archive + ".part" */
} fetch_paths;

static void say(const zn_fetch_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const zn_fetch_opts *o, const char *fmt, ...)
{
    if (!o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
    fputc('\n', o->log);
    fflush(o->log);
}

static const char *url_of(const zn_fetch_opts *o) { return o->url ? o->url : ZN_CIFAR10_URL; }

/* The checksum the archive must have: the one given, else the catalogue's MD5 (CIFAR-10's page
 * publishes no SHA-256). */
typedef struct {
    zn_digest kind;
    const char *hex;
} checksum;

static checksum expected(const zn_fetch_opts *o)
{
    if (o->sha256) return (checksum){ZN_DIGEST_SHA256, o->sha256};
    return (checksum){ZN_DIGEST_MD5, o->md5 ? o->md5 : ZN_CIFAR10_MD5};
}

bool zn_fetch_root(const zn_fetch_opts *o, char *out, size_t outlen)
{
    if (o->dir && o->dir[0]) return zn_data_path_join(out, outlen, o->dir, NULL);
    return zn_data_cache_root(out, outlen);
}

static bool paths_init(const zn_fetch_opts *o, fetch_paths *p, char *err, size_t errlen)
{
    if (!zn_fetch_root(o, p->root, sizeof p->root))
        return o->dir && o->dir[0]
                   ? zn_dataset_fail(err, errlen, "--dir: a path of %zu bytes is too long", strlen(o->dir))
                   : zn_dataset_fail(err, errlen,
                                     "no data folder: neither $XDG_CACHE_HOME nor $HOME is set (use --dir DIR)");
    if (!zn_data_path_join(p->target, sizeof p->target, p->root, ZN_CIFAR10_FOLDER) ||
        !zn_data_path_join(p->archive, sizeof p->archive, p->root, ZN_CIFAR10_ARCHIVE) ||
        (size_t)snprintf(p->part, sizeof p->part, "%s.part", p->archive) >= sizeof p->part)
        return zn_dataset_fail(err, errlen, "%s: path too long", p->root);
    return true;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* mkdir -p */
static bool make_root(const char *root, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", root);
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end) continue;
        *p = '\0';
        struct stat st;
        if (mkdir(path, 0755) != 0 && !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
            return zn_dataset_fail(err, errlen, "mkdir %s: %s", path,
                        errno == EEXIST ? "exists and is not a directory" : strerror(errno));
        if (end) return true;
        *p = '/';
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf of a folder this file created (staging or the replaced data set); best effort. */
static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether dir holds a CIFAR-10 that both splits load from; why not in err. */
static bool cifar_usable(const char *dir, char *err, size_t errlen)
{
    zn_dataset ds;
    for (int train = 1; train >= 0; train--) {
        if (!zn_cifar10_load(dir, train, &ds, err, errlen)) return false;
        zn_dataset_free(&ds);
    }
    return true;
}

static bool sum_matches(const char *path, checksum want, char *err, size_t errlen)
{
    char got[ZN_DIGEST_HEX_MAX];
    if (!zn_digest_file(want.kind, path, got, err, errlen)) return false;
    if (strcasecmp(got, want.hex) == 0) return true;
    return zn_dataset_fail(err, errlen, "%s: %s is %s, expected %s", path, zn_digest_name(want.kind), got, want.hex);
}

/* The part of curl's --retry that a data set download needs: a timeout, a failed name lookup, a
 * connection that broke off, or an HTTP status that says "try later". */
static bool transient(CURLcode rc, long http)
{
    return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
           (rc == CURLE_HTTP_RETURNED_ERROR && (http == 408 || http == 429 || (http >= 500 && http != 501)));
}

/* One transfer of the URL, appended to p->part from its current size (an HTTP range request
 * when it is not empty). The reason for a failure goes to why; *http gets the last status. */
static CURLcode transfer(const zn_libcurl *curl, const zn_fetch_opts *o, const fetch_paths *p, char why[CURL_ERROR_SIZE],
                         long *http)
{
    FILE *out = fopen(p->part, "ab");
    if (!out) {
        snprintf(why, CURL_ERROR_SIZE, "opening the download: %s", strerror(errno));
        return CURLE_WRITE_ERROR;
    }
    fseeko(out, 0, SEEK_END);
    curl_off_t have = ftello(out);
    CURL *c = curl->easy_init();
    CURLcode rc = CURLE_FAILED_INIT;
    why[0] = '\0';
    *http = 0;
    if (c) {
        bool meter = o->log && isatty(STDERR_FILENO);
        curl->easy_setopt(c, CURLOPT_URL, url_of(o));
        curl->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,ftp,file");
        curl->easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl->easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl->easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_SECONDS);
        curl->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer is a timeout */
        curl->easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
        curl->easy_setopt(c, CURLOPT_USERAGENT, "znet/" ZNET_VERSION);
        curl->easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, have);
        curl->easy_setopt(c, CURLOPT_WRITEDATA, out);
        curl->easy_setopt(c, CURLOPT_ERRORBUFFER, why);
        curl->easy_setopt(c, CURLOPT_NOPROGRESS, meter ? 0L : 1L);
        rc = curl->easy_perform(c);
        curl->easy_getinfo(c, CURLINFO_RESPONSE_CODE, http);
        curl->easy_cleanup(c);
    }
    if (fclose(out) != 0 && rc == CURLE_OK) {
        snprintf(why, CURL_ERROR_SIZE, "writing the download: %s", strerror(errno));
        rc = CURLE_WRITE_ERROR;
    }
    if (!why[0]) snprintf(why, CURL_ERROR_SIZE, "%s", curl->easy_strerror(rc));
    struct stat st;
    if (stat(p->part, &st) == 0 && st.st_size == 0) unlink(p->part); /* nothing came: leave nothing */
    return rc;
}

/* transfer, tried again o->retries times after a transient failure, waiting 1, 2, 4, ... s. */
static CURLcode fetch_url(const zn_libcurl *curl, const zn_fetch_opts *o, const fetch_paths *p, char why[CURL_ERROR_SIZE])
{
    long http;
    CURLcode rc = transfer(curl, o, p, why, &http);
    for (int i = 0, wait = 1; i < o->retries && transient(rc, http); i++, wait = wait < 512 ? 2 * wait : wait) {
        say(o, "%s; trying again in %d s (%d %s left)", why, wait, o->retries - i, o->retries - i > 1 ? "tries" : "try");
        sleep((unsigned)wait);
        rc = transfer(curl, o, p, why, &http);
    }
    return rc;
}

static const char *curl_meaning(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL: return "znet downloads over http, https, ftp or file only";
    case CURLE_URL_MALFORMAT: return "the URL is malformed";
    case CURLE_COULDNT_RESOLVE_HOST: return "could not resolve the host (offline?)";
    case CURLE_COULDNT_CONNECT: return "could not connect to the server (offline?)";
    case CURLE_HTTP_RETURNED_ERROR: return "the server answered with an HTTP error";
    case CURLE_WRITE_ERROR: return "could not write the download (disk full?)";
    case CURLE_OPERATION_TIMEDOUT: return "the connection timed out";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: return "the TLS connection failed";
    case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE: return "the connection broke off";
    default: return "see libcurl's reason in brackets";
    }
}

/* Downloads (or finishes downloading) p->part and renames it to p->archive once its checksum
 * is right. A wrong checksum removes the .part: resuming it again could never fix it. */
static bool download(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    checksum want = expected(o);
    if (!(is_file(p->part) && sum_matches(p->part, want, err, errlen))) {
        say(o, "%s %s\n  to %s", is_file(p->part) ? "resuming" : "downloading", url_of(o), p->part);
        const zn_libcurl *curl = zn_libcurl_open(err, errlen);
        if (!curl) return false;
        if (curl->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return zn_dataset_fail(err, errlen, "curl_global_init failed");
        char why[CURL_ERROR_SIZE];
        CURLcode rc = fetch_url(curl, o, p, why);
        if (rc == CURLE_RANGE_ERROR) {
            say(o, "the server cannot resume a download; starting again");
            unlink(p->part);
            rc = fetch_url(curl, o, p, why);
        }
        curl->global_cleanup();
        if (rc != CURLE_OK)
            return zn_dataset_fail(err, errlen, "downloading %s failed: curl error %d [%s]: %s%s", url_of(o), (int)rc,
                        why, curl_meaning(rc),
                        is_file(p->part) ? " (the partial download is kept; run again to resume)" : "");
        say(o, "checking the %s of %s", zn_digest_name(want.kind), p->part);
        if (!sum_matches(p->part, want, err, errlen)) {
            unlink(p->part);
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, "; removed the download (the wrong file, or corrupted)");
            return false;
        }
    }
    if (rename(p->part, p->archive) != 0)
        return zn_dataset_fail(err, errlen, "rename %s to %s: %s", p->part, p->archive, strerror(errno));
    return true;
}

/* Moves the checked data set `fresh` to p->target, replacing an unusable one there: the old
 * folder goes aside first, so target is at all times either absent or complete. */
static bool install(const fetch_paths *p, const char *fresh, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(p->target, &st) != 0) {
        if (rename(fresh, p->target) == 0) return true;
        return zn_dataset_fail(err, errlen, "rename %s to %s: %s", fresh, p->target, strerror(errno));
    }
    char old[4096], aside[4096];
    if (!zn_data_path_join(old, sizeof old, p->root, ".cifar10-old-XXXXXX") || !mkdtemp(old))
        return zn_dataset_fail(err, errlen, "mkdtemp in %s: %s", p->root, strerror(errno));
    bool ok = zn_data_path_join(aside, sizeof aside, old, ZN_CIFAR10_FOLDER);
    if (!ok) zn_dataset_fail(err, errlen, "%s: path too long", old);
    else if (!(ok = rename(p->target, aside) == 0))
        zn_dataset_fail(err, errlen, "rename %s to %s: %s", p->target, aside, strerror(errno));
    if (ok && rename(fresh, p->target) != 0) {
        ok = zn_dataset_fail(err, errlen, "rename %s to %s: %s", fresh, p->target, strerror(errno));
        rename(aside, p->target);
    }
    remove_tree(old);
    return ok;
}

/* Unpacks p->archive into a staging folder under the root, checks it and installs it. */
static bool unpack(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    char staging[4096], fresh[4096];
    if (!zn_data_path_join(staging, sizeof staging, p->root, ".cifar10-unpack-XXXXXX") || !mkdtemp(staging))
        return zn_dataset_fail(err, errlen, "mkdtemp in %s: %s", p->root, strerror(errno));
    say(o, "unpacking %s", p->archive);
    bool ok = zn_tar_extract(p->archive, staging, MAX_UNPACKED_BYTES, err, errlen) &&
              zn_data_path_join(fresh, sizeof fresh, staging, ZN_CIFAR10_FOLDER);
    if (ok && !cifar_usable(fresh, err, errlen)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err);
        ok = zn_dataset_fail(err, errlen, "%s has the right %s but does not hold CIFAR-10 as expected: %s",
                  p->archive, zn_digest_name(expected(o).kind), why);
    }
    ok = ok && install(p, fresh, err, errlen);
    remove_tree(staging);
    return ok;
}

/* zn_fetch_cifar10's steps, with the root locked. */
static bool get_locked(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    char why[1024];
    if (cifar_usable(p->target, why, sizeof why)) {
        say(o, "CIFAR-10 is already in %s", p->target);
        return true;
    }
    struct stat st;
    if (lstat(p->target, &st) == 0) say(o, "%s is there but unusable (%s); getting it again", p->target, why);
    bool by_hand = is_file(p->archive);
    if (by_hand) {
        say(o, "using %s, which is already there", p->archive);
        if (!sum_matches(p->archive, expected(o), err, errlen)) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (remove it, or replace it with the right file)");
            return false;
        }
    } else if (!download(o, p, err, errlen)) {
        return false;
    }
    bool ok = unpack(o, p, err, errlen);
    if (!by_hand) unlink(p->archive); /* unpacked, or not worth keeping: it failed with the right checksum */
    if (!ok) return false;
    say(o, "CIFAR-10 is ready in %s", p->target);
    return true;
}

/* One `data get` per root at a time: two downloads appending to one .part would corrupt it. The
 * lock is on the root folder itself, so there is no lock file to leave behind. */
static int lock_root(const char *root, char *err, size_t errlen)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return zn_dataset_fail(err, errlen, "open %s: %s", root, strerror(errno)) - 1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
        return zn_dataset_fail(err, errlen, "another `znet data get` is working in %s; wait for it to end", root) - 1;
    return zn_dataset_fail(err, errlen, "flock %s: %s", root, strerror(e)) - 1;
}

bool zn_fetch_cifar10(const zn_fetch_opts *o, char *err, size_t errlen)
{
    fetch_paths p;
    if (!paths_init(o, &p, err, errlen) || !make_root(p.root, err, errlen)) return false;
    int lock = lock_root(p.root, err, errlen);
    if (lock < 0) return false;
    bool ok = get_locked(o, &p, err, errlen);
    close(lock);
    return ok;
}

void zn_fetch_cifar10_manual(const zn_fetch_opts *o, FILE *f)
{
    char root[4096];
    if (!zn_fetch_root(o, root, sizeof root)) snprintf(root, sizeof root, "~/.cache/znet");
    fprintf(f, "to get CIFAR-10 by hand: download\n  %s\n  (", url_of(o));
    if (!o->url) fprintf(f, "%lld bytes, ", ZN_CIFAR10_ARCHIVE_BYTES);
    checksum want = expected(o);
    bool md5 = want.kind == ZN_DIGEST_MD5;
    fprintf(f, "%s %s; check it with `%s %s`)\n"
               "then either unpack it into the data folder:\n  tar xzf %s -C %s\n"
               "or put it at %s/%s and run `znet data get cifar10%s%s` again.\n",
            md5 ? "md5" : "sha256", want.hex, md5 ? "md5sum" : "sha256sum", ZN_CIFAR10_ARCHIVE, ZN_CIFAR10_ARCHIVE,
            root, root, ZN_CIFAR10_ARCHIVE,
            o->dir ? " --dir " : "", o->dir ? o->dir : "");
}
