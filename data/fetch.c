/* fetch.c: getting CIFAR-10 (see fetch.h): curl run as a child process (no shell), MD5 check,
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
#include <sys/wait.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/md5.h"
#include "data/tar.h"

/* the official archive unpacks to 184,380,000 bytes of batches plus two small files */
#define MAX_UNPACKED_BYTES 200000000LL
#define CURL_RANGE_ERROR 33 /* the server ignored the byte range asked for when resuming */

typedef struct {
    char root[4096];    /* the data root */
    char target[4096];  /* root/cifar-10-batches-bin */
    char archive[4096]; /* root/cifar-10-binary.tar.gz */
    char part[4096];    /* the download in progress: archive + ".part" */
} fetch_paths;

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

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
static const char *md5_of(const zn_fetch_opts *o) { return o->md5 ? o->md5 : ZN_CIFAR10_MD5; }

static bool join(char *out, size_t outlen, const char *a, const char *b)
{
    int n = b ? snprintf(out, outlen, "%s/%s", a, b) : snprintf(out, outlen, "%s", a);
    return n >= 0 && (size_t)n < outlen;
}

bool zn_fetch_root(const zn_fetch_opts *o, char *out, size_t outlen)
{
    if (o->dir && o->dir[0]) return join(out, outlen, o->dir, NULL);
    return zn_data_cache_root(out, outlen);
}

static bool paths_init(const zn_fetch_opts *o, fetch_paths *p, char *err, size_t errlen)
{
    if (!zn_fetch_root(o, p->root, sizeof p->root))
        return o->dir && o->dir[0]
                   ? fail(err, errlen, "--dir: a path of %zu bytes is too long", strlen(o->dir))
                   : fail(err, errlen, "no data folder: neither $XDG_CACHE_HOME nor $HOME is set (use --dir DIR)");
    if (!join(p->target, sizeof p->target, p->root, ZN_CIFAR10_FOLDER) ||
        !join(p->archive, sizeof p->archive, p->root, ZN_CIFAR10_ARCHIVE) ||
        (size_t)snprintf(p->part, sizeof p->part, "%s.part", p->archive) >= sizeof p->part)
        return fail(err, errlen, "%s: path too long", p->root);
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
            return fail(err, errlen, "mkdir %s: %s", path,
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

static bool md5_matches(const char *path, const char *want, char got[33], char *err, size_t errlen)
{
    if (!zn_md5_file(path, got, err, errlen)) return false;
    if (strcasecmp(got, want) == 0) return true;
    return fail(err, errlen, "%s: MD5 is %s, expected %s", path, got, want);
}

/* The curl program on $PATH, into out. */
static bool find_curl(char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    if (!path || !path[0]) path = "/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        if (len && (size_t)snprintf(out, outlen, "%.*s/curl", (int)len, p) < outlen &&
            access(out, X_OK) == 0)
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/* Runs curl to fetch the URL into p->part, resuming what is there; returns its exit status, or
 * -1 after putting the reason in err. */
static int run_curl(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    char curl[4096], retries[16];
    if (!find_curl(curl, sizeof curl)) {
        fail(err, errlen, "the curl program is not on $PATH (install it: apt-get install curl)");
        return -1;
    }
    snprintf(retries, sizeof retries, "%d", o->retries);
    bool meter = o->log && isatty(STDERR_FILENO);
    char *argv[] = {curl, "-fL", meter ? "--progress-bar" : "-sS", "--retry", retries,
                    "--connect-timeout", "30", "-C", "-", "-o", (char *)p->part,
                    "--url", (char *)url_of(o), NULL}; /* --url: a URL starting with '-' is no option */
    if (o->log) fflush(o->log);
    pid_t pid = fork();
    if (pid < 0) {
        fail(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execv(curl, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fail(err, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
    if (WIFSIGNALED(status)) {
        fail(err, errlen, "curl was killed by signal %d", WTERMSIG(status));
        return -1;
    }
    return WEXITSTATUS(status);
}

static const char *curl_meaning(int rc)
{
    switch (rc) {
    case 6: return "could not resolve the host (offline?)";
    case 7: return "could not connect to the server (offline?)";
    case 22: return "the server answered with an HTTP error";
    case 28: return "the connection timed out";
    case 35: case 60: return "the TLS connection failed";
    case 56: return "the connection broke off";
    case 127: return "curl could not be started";
    default: return "see curl's message above";
    }
}

/* Downloads (or finishes downloading) p->part and renames it to p->archive once its MD5 is
 * right. A wrong MD5 removes the .part: resuming it again could never fix it. */
static bool download(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    char got[33];
    if (!(is_file(p->part) && md5_matches(p->part, md5_of(o), got, err, errlen))) {
        say(o, "%s %s\n  to %s", is_file(p->part) ? "resuming" : "downloading", url_of(o), p->part);
        int rc = run_curl(o, p, err, errlen);
        if (rc == CURL_RANGE_ERROR) {
            say(o, "the server cannot resume a download; starting again");
            unlink(p->part);
            rc = run_curl(o, p, err, errlen);
        }
        if (rc < 0) return false;
        if (rc != 0)
            return fail(err, errlen, "downloading %s failed: curl exit status %d: %s%s", url_of(o),
                        rc, curl_meaning(rc),
                        is_file(p->part) ? " (the partial download is kept; run again to resume)" : "");
        say(o, "checking the MD5 of %s", p->part);
        if (!md5_matches(p->part, md5_of(o), got, err, errlen)) {
            unlink(p->part);
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, "; removed the download (the wrong file, or corrupted)");
            return false;
        }
    }
    if (rename(p->part, p->archive) != 0)
        return fail(err, errlen, "rename %s to %s: %s", p->part, p->archive, strerror(errno));
    return true;
}

/* Moves the checked data set `fresh` to p->target, replacing an unusable one there: the old
 * folder goes aside first, so target is at all times either absent or complete. */
static bool install(const fetch_paths *p, const char *fresh, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(p->target, &st) != 0) {
        if (rename(fresh, p->target) == 0) return true;
        return fail(err, errlen, "rename %s to %s: %s", fresh, p->target, strerror(errno));
    }
    char old[4096], aside[4096];
    if (!join(old, sizeof old, p->root, ".cifar10-old-XXXXXX") || !mkdtemp(old))
        return fail(err, errlen, "mkdtemp in %s: %s", p->root, strerror(errno));
    bool ok = join(aside, sizeof aside, old, ZN_CIFAR10_FOLDER);
    if (!ok) fail(err, errlen, "%s: path too long", old);
    else if (!(ok = rename(p->target, aside) == 0))
        fail(err, errlen, "rename %s to %s: %s", p->target, aside, strerror(errno));
    if (ok && rename(fresh, p->target) != 0) {
        ok = fail(err, errlen, "rename %s to %s: %s", fresh, p->target, strerror(errno));
        rename(aside, p->target);
    }
    remove_tree(old);
    return ok;
}

/* Unpacks p->archive into a staging folder under the root, checks it and installs it. */
static bool unpack(const zn_fetch_opts *o, const fetch_paths *p, char *err, size_t errlen)
{
    char staging[4096], fresh[4096];
    if (!join(staging, sizeof staging, p->root, ".cifar10-unpack-XXXXXX") || !mkdtemp(staging))
        return fail(err, errlen, "mkdtemp in %s: %s", p->root, strerror(errno));
    say(o, "unpacking %s", p->archive);
    bool ok = zn_tar_extract(p->archive, staging, MAX_UNPACKED_BYTES, err, errlen) &&
              join(fresh, sizeof fresh, staging, ZN_CIFAR10_FOLDER);
    if (ok && !cifar_usable(fresh, err, errlen)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err);
        ok = fail(err, errlen, "%s has the right MD5 but does not hold CIFAR-10 as expected: %s",
                  p->archive, why);
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
    char got[33];
    if (by_hand) {
        say(o, "using %s, which is already there", p->archive);
        if (!md5_matches(p->archive, md5_of(o), got, err, errlen)) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (remove it, or replace it with the right file)");
            return false;
        }
    } else if (!download(o, p, err, errlen)) {
        return false;
    }
    bool ok = unpack(o, p, err, errlen);
    if (!by_hand) unlink(p->archive); /* unpacked, or not worth keeping: it failed with the right MD5 */
    if (!ok) return false;
    say(o, "CIFAR-10 is ready in %s", p->target);
    return true;
}

/* One `data get` per root at a time: two curls appending to one .part would corrupt it. The
 * lock is on the root folder itself (no lock file to leave behind) and curl inherits it, so a
 * download that outlives an interrupted znet still holds it. */
static int lock_root(const char *root, char *err, size_t errlen)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return fail(err, errlen, "open %s: %s", root, strerror(errno)) - 1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
        return fail(err, errlen, "another `znet data get` (or its curl) is working in %s; wait for it to end", root) - 1;
    return fail(err, errlen, "flock %s: %s", root, strerror(e)) - 1;
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
    fprintf(f, "md5 %s; check it with `md5sum %s`)\n"
               "then either unpack it into the data folder:\n  tar xzf %s -C %s\n"
               "or put it at %s/%s and run `znet data get cifar10%s%s` again.\n",
            md5_of(o), ZN_CIFAR10_ARCHIVE, ZN_CIFAR10_ARCHIVE, root, root, ZN_CIFAR10_ARCHIVE,
            o->dir ? " --dir " : "", o->dir ? o->dir : "");
}
