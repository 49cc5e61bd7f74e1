/* checkpoint.c: see checkpoint.h. Layout (little-endian): "ZNETCKPT", u32 version, the meta
 * fields, params, optimizer state, then a 64-bit FNV-1a checksum of everything before it. A save
 * writes PATH.tmp in the same folder, fsyncs it, renames it over PATH and fsyncs the folder: a
 * kill at any moment leaves the previous checkpoint or the new one, never a mix. */
#include "runtime/checkpoint.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/util.h"

static const char MAGIC[8] = {'Z', 'N', 'E', 'T', 'C', 'K', 'P', 'T'};

typedef struct {
    FILE *f;
    uint64_t sum;
    bool ok;
} ck_io;

static void sum_bytes(ck_io *io, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) io->sum = (io->sum ^ b[i]) * 0x100000001b3ull;
}

static void put(ck_io *io, const void *p, size_t n)
{
    if (io->ok && fwrite(p, 1, n, io->f) != n) io->ok = false;
    sum_bytes(io, p, n);
}

static bool get(ck_io *io, void *p, size_t n)
{
    if (!io->ok || fread(p, 1, n, io->f) != n) return io->ok = false;
    sum_bytes(io, p, n);
    return true;
}

static void put_meta(ck_io *io, const zn_ckpt_meta *m)
{
    uint32_t version = ZN_CKPT_VERSION;
    put(io, MAGIC, sizeof MAGIC);
    put(io, &version, sizeof version);
    put(io, &m->graph_hash, sizeof m->graph_hash);
    put(io, &m->epoch, sizeof m->epoch);
    put(io, &m->step, sizeof m->step);
    put(io, &m->seed, sizeof m->seed);
    put(io, &m->n_params, sizeof m->n_params);
    put(io, &m->n_optim, sizeof m->n_optim);
}

/* fsync of the folder holding path, so that a rename into it survives a power cut. */
static bool sync_folder(const char *path)
{
    char dir[4096];
    zn_folder_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0 || errno == EINVAL; /* (some file systems cannot sync a folder) */
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

bool zn_ckpt_save(const char *path, const zn_ckpt_meta *m, const float *params, const float *optim,
                  char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "checkpoint path too long");
        return false;
    }
    /* A PATH.tmp left by a killed save (or anything else of that name, a link included) is ours
     * to replace: removed, then made afresh, so the write never goes through a link. */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale %s: %s (the previous checkpoint is kept)", tmp,
                 strerror(errno));
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ck_io io = {.f = fd < 0 ? NULL : fdopen(fd, "wb"), .sum = 0xcbf29ce484222325ull, .ok = true};
    if (!io.f) {
        snprintf(err, errlen, "cannot write checkpoint %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd), unlink(tmp);
        return false;
    }
    put_meta(&io, m);
    put(&io, params, sizeof *params * m->n_params);
    put(&io, optim, sizeof *optim * m->n_optim);
    uint64_t sum = io.sum;
    put(&io, &sum, sizeof sum);
    errno = 0;
    bool ok = io.ok && fflush(io.f) == 0 && fsync(fileno(io.f)) == 0;
    int saved_errno = errno;
    ok = fclose(io.f) == 0 && ok;
    if (!ok) {
        snprintf(err, errlen, "writing checkpoint %s failed: %s (the previous checkpoint is kept)", tmp,
                 strerror(saved_errno ? saved_errno : EIO));
        unlink(tmp);
        return false;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s (the previous checkpoint is kept)", tmp, path,
                 strerror(errno));
        unlink(tmp);
        return false;
    }
    if (!sync_folder(path)) {
        snprintf(err, errlen, "checkpoint %s written, but syncing its folder failed: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* The header as put_meta writes it: magic, version, then the meta fields in this order. */
#define VERSION_END (sizeof MAGIC + sizeof(uint32_t))
static const struct {
    size_t offset, size;
} META_FIELDS[] = {
    {offsetof(zn_ckpt_meta, graph_hash), sizeof(uint64_t)}, {offsetof(zn_ckpt_meta, epoch), sizeof(int32_t)},
    {offsetof(zn_ckpt_meta, step), sizeof(int64_t)},        {offsetof(zn_ckpt_meta, seed), sizeof(uint64_t)},
    {offsetof(zn_ckpt_meta, n_params), sizeof(uint64_t)},   {offsetof(zn_ckpt_meta, n_optim), sizeof(uint64_t)},
};
#define HEADER_BYTES (VERSION_END + 8 + 4 + 8 + 8 + 8 + 8)
#define SUM_BYTES sizeof(uint64_t)

/* Checks the got bytes of header at the start of a file of size bytes, and fills m. Every cut
 * point says truncated (a prefix of the magic too); the sizes the header claims are compared
 * with the file's size, so nothing is allocated from a claim the file cannot back. */
static bool check_header(const char *path, const unsigned char *head, size_t got, unsigned long long size,
                         zn_ckpt_meta *m, char *err, size_t errlen)
{
    size_t magic = got < sizeof MAGIC ? got : sizeof MAGIC;
    uint32_t version = ZN_CKPT_VERSION;
    if (got >= VERSION_END) memcpy(&version, head + sizeof MAGIC, sizeof version);
    if (memcmp(head, MAGIC, magic) != 0) {
        snprintf(err, errlen, "%s is not a znet checkpoint (it does not start with \"ZNETCKPT\")", path);
        return false;
    }
    if (version < ZN_CKPT_OLDEST || version > ZN_CKPT_VERSION) {
        snprintf(err, errlen, "%s is a checkpoint of format version %u; this znet reads versions %d to %d",
                 path, version, ZN_CKPT_OLDEST, ZN_CKPT_VERSION);
        return false;
    }
    m->version = version;
    if (got < HEADER_BYTES) {
        snprintf(err, errlen, "%s is truncated: it ends after %zu bytes, inside its %zu-byte header", path, got,
                 (size_t)HEADER_BYTES);
        return false;
    }
    size_t at = VERSION_END;
    for (size_t i = 0; i < sizeof META_FIELDS / sizeof *META_FIELDS; at += META_FIELDS[i++].size)
        memcpy((char *)m + META_FIELDS[i].offset, head + at, META_FIELDS[i].size);
    assert(at == HEADER_BYTES);
    if (m->n_params > ((uint64_t)1 << 34) || m->n_optim > ((uint64_t)1 << 35) || m->epoch < 0 || m->step < 0 ||
        m->step > ((int64_t)m->epoch + 1) << 30) {
        /* (at most 2^30 steps an epoch: --limit's bound; + 1: a checkpoint saved mid-epoch) */
        snprintf(err, errlen, "%s is corrupted (impossible sizes in its header: epoch %d, step %lld, %llu "
                 "parameter and %llu optimizer floats)", path, (int)m->epoch, (long long)m->step,
                 (unsigned long long)m->n_params, (unsigned long long)m->n_optim);
        return false;
    }
    /* cannot overflow: the bounds above keep it under 2^38 */
    unsigned long long claim = HEADER_BYTES + (m->n_params + m->n_optim) * sizeof(float) + SUM_BYTES;
    if (size < claim)
        snprintf(err, errlen, "%s is truncated: it ends after %llu bytes, the header says %llu", path, size,
                 claim);
    else if (size > claim)
        snprintf(err, errlen, "%s has %llu extra bytes after its checksum (it holds %llu bytes, the header "
                 "says %llu)", path, size - claim, size, claim);
    return size == claim;
}

/* A value that is not finite would make every later prediction NaN without a word. Training stops
 * when its loss stops being finite, so such a value comes from a statistic that diverged without
 * touching the loss (a running variance) or from a file made some other way. */
static bool all_finite(const char *path, const char *what, const float *v, uint64_t n, char *err, size_t errlen)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            snprintf(err, errlen, "%s holds a non-finite %s value (%g at float %llu of %llu): it was not "
                     "written by a run that stayed finite", path, what, v[i], (unsigned long long)i,
                     (unsigned long long)n);
            return false;
        }
    return true;
}

/* After a sound header: the data, allocated as the header (checked against the file) says, and
 * the checksum; every value must be finite. */
static bool read_body(ck_io *io, const char *path, const zn_ckpt_meta *m, float **params, float **optim,
                      char *err, size_t errlen)
{
    uint64_t expect, stored;
    if (!(*params = malloc(sizeof **params * (m->n_params + 1))) ||
        !(*optim = malloc(sizeof **optim * (m->n_optim + 1))))
        snprintf(err, errlen, "out of memory reading %s (%llu floats)", path,
                 (unsigned long long)(m->n_params + m->n_optim));
    else if (!get(io, *params, sizeof **params * m->n_params) || !get(io, *optim, sizeof **optim * m->n_optim) ||
             (expect = io->sum, fread(&stored, sizeof stored, 1, io->f) != 1))
        snprintf(err, errlen, "%s is truncated: it ends early while being read (did it shrink?)", path);
    else if (stored != expect)
        snprintf(err, errlen, "%s is corrupted (checksum mismatch: its bytes are not those that were saved)", path);
    else
        return all_finite(path, "parameter", *params, m->n_params, err, errlen) &&
               all_finite(path, "optimizer state", *optim, m->n_optim, err, errlen);
    return false;
}

bool zn_ckpt_load(const char *path, zn_ckpt_meta *m, float **params, float **optim, char *err,
                  size_t errlen)
{
    *params = *optim = NULL;
    /* O_NONBLOCK: a FIFO is opened at once and refused below as not a regular file, where a
     * plain open would wait for a writer (it changes nothing for a regular file) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ck_io io = {.f = fd < 0 ? NULL : fdopen(fd, "rb"), .sum = 0xcbf29ce484222325ull, .ok = true};
    if (!io.f) {
        snprintf(err, errlen, "cannot open checkpoint %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return false;
    }
    struct stat st;
    unsigned char head[HEADER_BYTES];
    bool ok = false, regular = fstat(fileno(io.f), &st) == 0 && S_ISREG(st.st_mode);
    size_t got = regular ? fread(head, 1, sizeof head, io.f) : 0;
    sum_bytes(&io, head, got);
    if (!regular)
        snprintf(err, errlen, "%s is not a checkpoint: not a regular file", path);
    else if (ferror(io.f))
        snprintf(err, errlen, "cannot read checkpoint %s: %s", path, strerror(errno));
    else
        ok = check_header(path, head, got, (unsigned long long)st.st_size, m, err, errlen) &&
             read_body(&io, path, m, params, optim, err, errlen);
    fclose(io.f);
    if (!ok) {
        free(*params);
        free(*optim);
        *params = *optim = NULL;
    }
    return ok;
}
