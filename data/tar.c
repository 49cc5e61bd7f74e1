/* tar.c: the archive reader (see tar.h) over libarchive: its tar formats (ustar, GNU, pax) and
 * gzip filter read, archive_write_disk writes with the secure-extraction flags, and this file
 * adds what those leave to the caller: gzip's checksum, the type and size checks, fixed
 * permissions, removing a half-written file, and messages naming the archive and the entry. */
#define _DEFAULT_SOURCE /* fchdir */
#include "data/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK_BYTES (1 << 16)
#define WRITE_FLAGS                                                                                   \
    (ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |                     \
     ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SAFE_WRITES)

typedef struct {
    const char *archive;
    char *err;
    size_t errlen;
    struct archive *in, *out;
    char entry[4096]; /* the entry being unpacked, for messages and for removal when it fails */
    bool writing;     /* entry is a file whose data has started to be written */
} unpacker;

static bool fail(unpacker *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(unpacker *u, const char *fmt, ...)
{
    int n = snprintf(u->err, u->errlen, "%s: ", u->archive);
    if (n >= 0 && (size_t)n < u->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(u->err + n, u->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* libarchive's reason for a's last failure, after what was being done. */
static bool lib_fail(unpacker *u, struct archive *a, const char *doing)
{
    const char *why = archive_error_string(a);
    return fail(u, "%s: %s", doing, why ? why : "libarchive gave no reason (a damaged archive?)");
}

/* libarchive's gzip filter leaves gzip's CRC-32 and length unchecked (a TODO in its source), so a
 * damaged stream could unpack as wrong bytes: zlib reads the archive through once first and
 * checks them. A plain tar passes through zlib unchanged. */
static bool gzip_intact(unpacker *u)
{
    errno = 0;
    gzFile g = gzopen(u->archive, "rb");
    if (!g) return fail(u, "%s", errno ? strerror(errno) : "gzopen failed");
    static _Thread_local unsigned char buf[BLOCK_BYTES];
    while (gzread(g, buf, sizeof buf) > 0) {}
    int code;
    const char *msg = gzerror(g, &code), *own = strstr(msg, ": "); /* zlib puts the path first */
    bool ok = code == Z_OK;
    if (code == Z_ERRNO) fail(u, "read: %s", strerror(errno));
    else if (code == Z_BUF_ERROR) fail(u, "the compressed data ends early (truncated download?)");
    else if (!ok) fail(u, "corrupt compressed data: %s", own ? own + 2 : msg);
    gzclose(g);
    return ok;
}

/* What an entry other than a file or a folder is, for the refusal. */
static const char *kind_of(struct archive_entry *e)
{
    switch (archive_entry_filetype(e)) {
    case AE_IFLNK: return "a symbolic link";
    case AE_IFCHR: return "a character device";
    case AE_IFBLK: return "a block device";
    case AE_IFIFO: return "a FIFO";
    case AE_IFSOCK: return "a socket";
    default: return archive_entry_hardlink(e) ? "a hard link" : NULL;
    }
}

/* The entry's data from the archive to the file just created. */
static bool copy_data(unpacker *u)
{
    const void *block;
    size_t n;
    la_int64_t at;
    char doing[sizeof u->entry + 32];
    snprintf(doing, sizeof doing, "reading '%s'", u->entry);
    u->writing = true;
    for (;;) {
        int r = archive_read_data_block(u->in, &block, &n, &at);
        if (r == ARCHIVE_EOF) return true;
        if (r < ARCHIVE_WARN) return lib_fail(u, u->in, doing);
        if (archive_write_data_block(u->out, block, n, at) < ARCHIVE_WARN) {
            snprintf(doing, sizeof doing, "writing '%s'", u->entry);
            return lib_fail(u, u->out, doing);
        }
    }
}

/* One entry after its header: checked, then created under the working directory. */
static bool unpack_entry(unpacker *u, struct archive_entry *e, long long max_bytes, long long *total)
{
    const char *path = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (strlen(path) >= sizeof u->entry)
        return fail(u, "'%.100s...': a path of %zu bytes is too long", path, strlen(path));
    memcpy(u->entry, path, strlen(path) + 1);
    const char *kind = kind_of(e);
    if (kind) return fail(u, "'%s': %s; only files and folders are unpacked", u->entry, kind);
    bool file = archive_entry_filetype(e) == AE_IFREG;
    if (file && max_bytes > 0) {
        la_int64_t size = archive_entry_size(e); /* compared before adding: no overflow */
        if (size > max_bytes - *total)
            return fail(u, "'%s': the archive's files add up to more than the %lld bytes expected", u->entry,
                        max_bytes);
        *total += size;
    }
    archive_entry_set_perm(e, file ? 0644 : 0755);
    char doing[sizeof u->entry + 32];
    snprintf(doing, sizeof doing, "'%s': not unpacked", u->entry);
    if (archive_write_header(u->out, e) < ARCHIVE_WARN) return lib_fail(u, u->out, doing);
    if (file && !copy_data(u)) return false;
    snprintf(doing, sizeof doing, "finishing '%s'", u->entry);
    if (archive_write_finish_entry(u->out) < ARCHIVE_WARN) return lib_fail(u, u->out, doing);
    u->writing = false;
    return true;
}

/* Every entry, then the end: an archive that stops where its end-of-archive blocks should be
 * was cut short (libarchive reads that as a plain end; its position then stays where the next
 * header would start). */
static bool unpack_all(unpacker *u, long long max_bytes)
{
    long long total = 0;
    struct archive_entry *e;
    for (int entries = 0;; entries++) {
        int r = archive_read_next_header(u->in, &e);
        if (r == ARCHIVE_EOF) {
            if (entries == 0) return fail(u, "an empty archive");
            if (archive_filter_bytes(u->in, 0) == archive_read_header_position(u->in))
                return fail(u, "the archive ends without its end-of-archive blocks (truncated download?)");
            return true;
        }
        if (r < ARCHIVE_WARN) {
            char doing[64];
            snprintf(doing, sizeof doing, "header %d", entries + 1);
            return lib_fail(u, u->in, doing);
        }
        if (!unpack_entry(u, e, max_bytes, &total)) return false;
    }
}

/* unpack_all with dest as the working directory, and the old one back afterwards. */
static bool unpack_in(unpacker *u, const char *dest, long long max_bytes)
{
    int home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home < 0) return fail(u, "open the working directory: %s", strerror(errno));
    bool ok = chdir(dest) == 0 || fail(u, "chdir %s: %s", dest, strerror(errno));
    if (ok) {
        u->out = archive_write_disk_new();
        ok = u->out ? archive_write_disk_set_options(u->out, WRITE_FLAGS) == ARCHIVE_OK : fail(u, "out of memory");
        ok = ok && unpack_all(u, max_bytes);
        if (u->out) archive_write_free(u->out);
        if (u->writing) unlink(u->entry); /* libarchive completes it to its size on closing */
        if (fchdir(home) != 0 && ok) ok = fail(u, "back to the working directory: %s", strerror(errno));
    }
    close(home);
    return ok;
}

bool zn_tar_extract(const char *archive, const char *dest, long long max_bytes, char *err, size_t errlen)
{
    unpacker u = {.archive = archive, .err = err, .errlen = errlen};
    if (!gzip_intact(&u)) return false;
    u.in = archive_read_new();
    if (!u.in) return fail(&u, "out of memory");
    bool ok = (archive_read_support_filter_gzip(u.in) == ARCHIVE_OK &&
               archive_read_support_format_tar(u.in) == ARCHIVE_OK &&
               archive_read_open_filename(u.in, archive, BLOCK_BYTES) == ARCHIVE_OK) ||
              lib_fail(&u, u.in, "opening it");
    ok = ok && unpack_in(&u, dest, max_bytes);
    archive_read_free(u.in);
    return ok;
}
