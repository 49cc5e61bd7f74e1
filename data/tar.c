/* tar.c: the tar reader (see tar.h). An archive is a run of 512-byte headers, each followed by
 * its data padded to 512 bytes, and ends with zero blocks. Header fields are NUL- or
 * space-terminated octal text; the checksum is the byte sum of the header with its own field
 * read as spaces. */
#include "data/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK 512
#define CHUNK (1 << 16)
#define MAX_PAX (1 << 16) /* pax header data we are willing to read and check */

/* ustar header field offsets and widths (POSIX.1-1988) */
enum {
    H_NAME = 0, H_NAME_LEN = 100, H_SIZE = 124, H_SIZE_LEN = 12, H_CHKSUM = 148, H_CHKSUM_LEN = 8,
    H_TYPE = 156, H_MAGIC = 257, H_PREFIX = 345, H_PREFIX_LEN = 155
};

typedef struct {
    gzFile gz;
    const char *archive;
    char *err;
    size_t errlen;
    char entry[512]; /* the entry being read, for messages */
    uint8_t buf[CHUNK];
} tar_reader;

static bool fail(tar_reader *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(tar_reader *t, const char *fmt, ...)
{
    int n = snprintf(t->err, t->errlen, "%s: ", t->archive);
    if (n >= 0 && (size_t)n < t->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->err + n, t->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* zlib's last error without the "path: " it puts in front (fail names the archive). */
static const char *gz_message(tar_reader *t, int *code)
{
    const char *msg = gzerror(t->gz, code);
    size_t n = strlen(t->archive);
    return strncmp(msg, t->archive, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

/* Why the archive stopped yielding data: cut short (plain EOF, or zlib's "unexpected end of
 * file"), corrupt compressed data, or a read error; `where` says what was being read. */
static bool stopped(tar_reader *t, const char *where)
{
    int code;
    const char *msg = gz_message(t, &code);
    if (code == Z_ERRNO) return fail(t, "read: %s", strerror(errno));
    if (code != Z_OK && code != Z_BUF_ERROR)
        return fail(t, "corrupt compressed data %s: %s", where, msg);
    return fail(t, "archive ends %s (truncated download?)", where);
}

/* Exactly n bytes (n <= CHUNK) into t->buf. */
static bool read_exact(tar_reader *t, size_t n)
{
    if (gzread(t->gz, t->buf, (unsigned)n) == (int)n) return true;
    char where[sizeof t->entry + 16];
    if (t->entry[0]) snprintf(where, sizeof where, "inside '%s'", t->entry);
    else snprintf(where, sizeof where, "without its end-of-archive blocks");
    return stopped(t, where);
}

/* An octal field: optional leading spaces, digits, then only spaces or NULs. The base-256
 * form (high bit set) is only used for sizes over 8 GiB, which no data set here has. */
static bool parse_octal(const uint8_t *f, size_t n, unsigned long long *out)
{
    size_t i = 0;
    while (i < n && f[i] == ' ') i++;
    unsigned long long v = 0;
    size_t digits = 0;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v >> 60) return false;
        v = v * 8 + (unsigned)(f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != '\0') return false;
    *out = v;
    return digits > 0;
}

static bool checksum_ok(const uint8_t *h)
{
    unsigned long long want;
    if (!parse_octal(h + H_CHKSUM, H_CHKSUM_LEN, &want)) return false;
    unsigned long long sum = 0;
    long long ssum = 0; /* some old tars summed signed chars */
    for (int i = 0; i < BLOCK; i++) {
        uint8_t b = i >= H_CHKSUM && i < H_CHKSUM + H_CHKSUM_LEN ? ' ' : h[i];
        sum += b;
        ssum += (signed char)b;
    }
    return sum == want || (unsigned long long)ssum == want;
}

/* The entry's path, prefix/name, into out (for messages even when unsafe). */
static void entry_name(const uint8_t *h, char *out, size_t outlen)
{
    bool posix = memcmp(h + H_MAGIC, "ustar\0", 6) == 0; /* GNU tar uses the prefix area otherwise */
    size_t plen = posix ? strnlen((const char *)h + H_PREFIX, H_PREFIX_LEN) : 0;
    size_t nlen = strnlen((const char *)h + H_NAME, H_NAME_LEN);
    snprintf(out, outlen, "%.*s%s%.*s", (int)plen, (const char *)h + H_PREFIX, plen ? "/" : "",
             (int)nlen, (const char *)h + H_NAME);
}

/* name with empty and "." components dropped, into out; false for an absolute path or a ".."
 * component. out may come back empty ("./"). */
static bool safe_path(const char *name, char *out, size_t outlen)
{
    if (name[0] == '/') return false;
    size_t o = 0;
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        if (len && !(len == 1 && p[0] == '.')) {
            if (o + len + 2 > outlen) return false;
            if (o) out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len + (p[len] == '/');
    }
    out[o] = '\0';
    return true;
}

/* The directories leading to dest/rel, and dest/rel itself when whole; an existing one must be
 * a real directory, never a symlink or a file. */
static bool make_dirs(tar_reader *t, const char *dest, const char *rel, bool whole)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dest, rel);
    if (n < 0 || (size_t)n >= sizeof path) return fail(t, "'%s': path too long", t->entry);
    for (size_t i = strlen(dest) + 1;; i++) {
        bool end = path[i] == '\0';
        if (path[i] != '/' && !end) continue;
        if (end && !whole) return true;
        path[i] = '\0';
        struct stat st;
        if (mkdir(path, 0755) != 0 && !(errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)))
            return fail(t, "'%s': mkdir %s: %s", t->entry, path,
                        errno == EEXIST ? "exists and is not a directory" : strerror(errno));
        if (end) return true;
        path[i] = '/';
    }
}

/* Skips n bytes of the archive. */
static bool skip(tar_reader *t, unsigned long long n)
{
    while (n > 0) {
        size_t take = n < CHUNK ? (size_t)n : CHUNK;
        if (!read_exact(t, take)) return false;
        n -= take;
    }
    return true;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* size bytes of the archive into dest/rel, through a temporary file renamed at the end. */
static bool extract_file(tar_reader *t, const char *dest, const char *rel, unsigned long long size)
{
    char path[4096], tmp[4096];
    const char *slash = strrchr(rel, '/');
    int dir_len = (int)strlen(dest) + (slash ? 1 + (int)(slash - rel) : 0);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dest, rel) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%.*s/.znet-unpack-XXXXXX", dir_len, path) >= sizeof tmp)
        return fail(t, "'%s': path too long", t->entry);
    int fd = mkstemp(tmp);
    if (fd < 0) return fail(t, "'%s': mkstemp %s: %s", t->entry, tmp, strerror(errno));
    bool ok = true;
    for (unsigned long long left = size; ok && left > 0;) {
        size_t take = left < CHUNK ? (size_t)left : CHUNK;
        ok = read_exact(t, take);
        if (ok && !write_all(fd, t->buf, take)) ok = fail(t, "write %s: %s", tmp, strerror(errno));
        left -= take;
    }
    if (ok && fchmod(fd, 0644) != 0) ok = fail(t, "fchmod %s: %s", tmp, strerror(errno));
    if (ok && fsync(fd) != 0) ok = fail(t, "fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && ok) ok = fail(t, "close %s: %s", tmp, strerror(errno));
    if (ok && rename(tmp, path) != 0) ok = fail(t, "rename %s to %s: %s", tmp, path, strerror(errno));
    if (!ok) unlink(tmp);
    return ok;
}

/* A pax extended header may rename or resize the next entry; we only accept those that do not
 * (e.g. timestamps, which bsdtar adds). */
static bool check_pax(tar_reader *t, unsigned long long size)
{
    if (size >= MAX_PAX) return fail(t, "'%s': pax header of %llu bytes is too large", t->entry, size);
    if (!read_exact(t, (size_t)size)) return false;
    t->buf[size] = '\0';
    static const char *const changes[] = {" path=", " linkpath=", " size="};
    for (int i = 0; i < 3; i++)
        if (strstr((const char *)t->buf, changes[i]))
            return fail(t, "'%s': pax header sets%.*s, which is not supported", t->entry,
                        (int)strlen(changes[i]) - 1, changes[i]);
    return true;
}

/* One entry after its header h; *total counts file bytes against max_bytes. */
static bool extract_entry(tar_reader *t, const uint8_t *h, const char *dest, long long max_bytes,
                          unsigned long long *total)
{
    entry_name(h, t->entry, sizeof t->entry);
    if (memcmp(h + H_MAGIC, "ustar", 5) != 0)
        return fail(t, "'%s': not a ustar header (not a tar archive, or an old format)", t->entry);
    unsigned long long size;
    if (!parse_octal(h + H_SIZE, H_SIZE_LEN, &size))
        return fail(t, "'%s': bad size field", t->entry);
    char type = (char)h[H_TYPE];
    char rel[sizeof t->entry];
    bool is_file = type == '0' || type == '\0' || type == '7';
    if ((is_file || type == '5') && !safe_path(t->entry, rel, sizeof rel))
        return fail(t, "'%s': refusing an absolute path or a '..' component", t->entry);
    if (type == 'x' && !check_pax(t, size)) return false;
    if (type == 'g' && !skip(t, size)) return false;
    if (type == 'x' || type == 'g') return skip(t, (BLOCK - size % BLOCK) % BLOCK);
    if (type == '5') {
        if (size != 0) return fail(t, "'%s': directory with %llu bytes of data", t->entry, size);
        return !rel[0] || make_dirs(t, dest, rel, true);
    }
    if (!is_file)
        return fail(t, "'%s': entry type '%c' (a link, device or GNU extension) is not supported",
                    t->entry, type ? type : '0');
    if (!rel[0]) return fail(t, "'%s': a file entry without a name", t->entry);
    *total += size;
    if (max_bytes > 0 && *total > (unsigned long long)max_bytes)
        return fail(t, "'%s': the archive's files add up to more than the %lld bytes expected",
                    t->entry, max_bytes);
    return make_dirs(t, dest, rel, false) && extract_file(t, dest, rel, size) &&
           skip(t, (BLOCK - size % BLOCK) % BLOCK);
}

/* After the end-of-archive blocks: read on to the end so gzip's CRC and length get checked
 * (zlib reports a cut stream at its end as an error code with a plain end of file). */
static bool drain(tar_reader *t)
{
    while (gzread(t->gz, t->buf, CHUNK) > 0) {}
    int code;
    gzerror(t->gz, &code);
    return code == Z_OK || stopped(t, "after its end-of-archive blocks");
}

bool zn_tar_extract(const char *archive, const char *dest, long long max_bytes, char *err,
                    size_t errlen)
{
    tar_reader *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: malloc: %s", archive, strerror(ENOMEM));
        return false;
    }
    *t = (tar_reader){.archive = archive, .err = err, .errlen = errlen};
    errno = 0;
    t->gz = gzopen(archive, "rb");
    bool ok = t->gz != NULL;
    if (!ok) fail(t, "%s", errno ? strerror(errno) : "gzopen failed");
    unsigned long long total = 0;
    int entries = 0;
    while (ok) {
        t->entry[0] = '\0';
        if (!(ok = read_exact(t, BLOCK))) break;
        uint8_t h[BLOCK];
        memcpy(h, t->buf, BLOCK);
        bool zero = true;
        for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
        if (zero) {
            ok = entries > 0 ? drain(t) : fail(t, "an empty archive");
            break;
        }
        if (!checksum_ok(h)) {
            entry_name(h, t->entry, sizeof t->entry);
            ok = fail(t, "header %d ('%.100s'): bad checksum (not a tar archive, or corrupt)",
                      entries + 1, t->entry);
            break;
        }
        ok = extract_entry(t, h, dest, max_bytes, &total);
        entries++;
    }
    if (t->gz) gzclose(t->gz);
    free(t);
    return ok;
}
