/* test_fetch.c: `znet data get`: MD5 and SHA-256 against their standards' vectors, the tar reader on archives
 * written here (valid, malicious, truncated, corrupt) and by GNU tar, and the whole command
 * against a loopback HTTP server (python3) serving a generated full-size CIFAR-10 archive:
 * download, wrong MD5, resume, offline, HTTP error, a wrong archive, replacing a broken copy,
 * and a second run refused while one holds the folder. */
#define _DEFAULT_SOURCE /* flock */
#define _XOPEN_SOURCE 700 /* nftw */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "data/checksum.h"
#include "data/dataset.h"
#include "data/tar.h"

#define TEST_SECONDS 900 /* the whole file; a hang fails instead of blocking CI */

static char err[2048];

static void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("\"%s\" lacks \"%s\"", text, part);
}

static char *tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", zt_tmpdir(), name);
    return buf;
}

static void make_dir(const char *path) { assert_true(mkdir(path, 0755) == 0 || errno == EEXIST); }

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *s = zt_read_all(f);
    fclose(f);
    return s;
}

/* The names in dir, space-separated and sorted, e.g. "a b c". */
static void list_dir(const char *dir, char *out, size_t len)
{
    char names[32][256];
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) && n < 32;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++) snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", names[i]);
}

/* ---- checksums ---- */

static void assert_digest(zn_digest d, const void *data, size_t n, const char *want)
{
    char hex[ZN_DIGEST_HEX_MAX];
    if (!zn_digest_bytes(d, data, n, hex, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(hex, want);
}

static void test_digest_vectors(void **state)
{
    (void)state;
    static const struct {
        zn_digest d;
        const char *text, *hex;
    } vectors[] = {
        /* RFC 1321, appendix A.5 */
        {ZN_DIGEST_MD5, "", "d41d8cd98f00b204e9800998ecf8427e"},
        {ZN_DIGEST_MD5, "a", "0cc175b9c0f1b6a831c399e269772661"},
        {ZN_DIGEST_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72"},
        {ZN_DIGEST_MD5, "message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {ZN_DIGEST_MD5, "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {ZN_DIGEST_MD5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {ZN_DIGEST_MD5, "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
        /* FIPS 180-2, appendix B, and the empty message */
        {ZN_DIGEST_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {ZN_DIGEST_SHA256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {ZN_DIGEST_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++)
        assert_digest(vectors[v].d, vectors[v].text, strlen(vectors[v].text), vectors[v].hex);
    assert_string_equal(zn_digest_name(ZN_DIGEST_SHA256), "SHA-256");
    assert_true(zn_digest_is_hex(ZN_DIGEST_MD5, "D41D8CD98F00B204E9800998ECF8427E"));
    assert_false(zn_digest_is_hex(ZN_DIGEST_SHA256, "d41d8cd98f00b204e9800998ecf8427e"));
    assert_false(zn_digest_is_hex(ZN_DIGEST_MD5, "d41d8cd98f00b204e9800998ecf8427g"));
}

static void test_digest_file(void **state)
{
    (void)state;
    char hex[ZN_DIGEST_HEX_MAX], path[512];
    /* a million 'a' (the vector both standards' test suites add): many of the file's reads */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    FILE *f = fopen(tmp_path(path, sizeof path, "million-a"), "wb");
    assert_int_equal(fwrite(a, 1, 1000000, f), 1000000);
    fclose(f);
    free(a);
    assert_true(zn_digest_file(ZN_DIGEST_MD5, path, hex, err, sizeof err));
    assert_string_equal(hex, "7707d6ae4e027c70eea2a935c2296f21");
    assert_true(zn_digest_file(ZN_DIGEST_SHA256, path, hex, err, sizeof err));
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    assert_false(zn_digest_file(ZN_DIGEST_MD5, tmp_path(path, sizeof path, "no-such-file"), hex, err, sizeof err));
    assert_has(err, "no-such-file");
    assert_has(err, "No such file");
}

/* ---- tar: a ustar writer of our own, so archives can hold anything (also what is unsafe) ---- */

static void field_octal(char *h, int at, int width, unsigned long long v)
{
    snprintf(h + at, (size_t)width, "%0*llo", width - 1, v);
}

/* A ustar header; prefix may be NULL. The checksum is computed as POSIX defines it. */
static void tar_header(gzFile g, const char *name, char type, unsigned long long size, const char *prefix)
{
    char h[512] = {0};
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    field_octal(h, 100, 8, type == '5' ? 0755 : 0644);
    field_octal(h, 108, 8, 0);
    field_octal(h, 116, 8, 0);
    field_octal(h, 124, 12, size);
    field_octal(h, 136, 12, 1700000000);
    h[156] = type;
    if (type == '1' || type == '2') memcpy(h + 157, "target", 6); /* a link names what it links to */
    memcpy(h + 257, "ustar\0" "00", 8);
    if (prefix) memcpy(h + 345, prefix, strlen(prefix));
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += (unsigned char)h[i];
    snprintf(h + 148, 7, "%06o", sum); /* six digits, NUL, space */
    h[155] = ' ';
    assert_int_equal(gzwrite(g, h, 512), 512);
}

static void tar_pad(gzFile g, unsigned long long size)
{
    static const char zeros[512];
    if (size % 512) assert_true(gzwrite(g, zeros, (unsigned)(512 - size % 512)) > 0);
}

static void tar_file(gzFile g, const char *name, const char *data, size_t n)
{
    tar_header(g, name, '0', n, NULL);
    if (n) assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    tar_pad(g, n);
}

static void tar_end(gzFile g)
{
    static const char zeros[1024];
    assert_int_equal(gzwrite(g, zeros, 1024), 1024);
}

static gzFile tar_open(const char *path)
{
    gzFile g = gzopen(path, "wb1");
    assert_non_null(g);
    return g;
}

static char *patterned(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (char)(i * 131 + i / 7);
    return p;
}

static void assert_file(const char *dir, const char *rel, const char *data, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s was not unpacked", path);
    char *got = malloc(n + 1);
    size_t len = fread(got, 1, n + 1, f);
    fclose(f);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
    free(got);
}

static void test_tar_extracts(void **state)
{
    (void)state;
    char archive[512], dest[512], listing[1024], rel[800];
    char *big = patterned(70000);
    char longdir[160];
    memset(longdir, 'p', 120); /* a path over 100 bytes needs the ustar prefix field */
    longdir[120] = '\0';
    gzFile g = tar_open(tmp_path(archive, sizeof archive, "good.tar.gz"));
    tar_header(g, "d/", '5', 0, NULL);
    tar_file(g, "d/hello.txt", "hello\n", 6);
    tar_file(g, "d/e/big.bin", big, 70000);
    tar_file(g, "d/block.bin", big, 512);
    tar_file(g, "./d/empty", "", 0);
    tar_header(g, "x.txt", '0', 3, longdir);
    assert_int_equal(gzwrite(g, "xyz", 3), 3);
    tar_pad(g, 3);
    tar_end(g);
    assert_int_equal(gzclose(g), Z_OK);

    make_dir(tmp_path(dest, sizeof dest, "good"));
    if (!zn_tar_extract(archive, dest, 0, err, sizeof err)) fail_msg("%s", err);
    assert_file(dest, "d/hello.txt", "hello\n", 6);
    assert_file(dest, "d/e/big.bin", big, 70000);
    assert_file(dest, "d/block.bin", big, 512);
    assert_file(dest, "d/empty", "", 0);
    snprintf(rel, sizeof rel, "%s/x.txt", longdir);
    assert_file(dest, rel, "xyz", 3);
    list_dir(dest, listing, sizeof listing); /* no temporary files left beside them */
    snprintf(rel, sizeof rel, "d %s", longdir);
    assert_string_equal(listing, rel);
    snprintf(rel, sizeof rel, "%s/d", dest);
    list_dir(rel, listing, sizeof listing);
    assert_string_equal(listing, "block.bin e empty hello.txt");

    /* the same files again overwrite the first copies; a size limit refuses the archive */
    assert_true(zn_tar_extract(archive, dest, 0, err, sizeof err));
    assert_false(zn_tar_extract(archive, dest, 70000, err, sizeof err));
    assert_has(err, "more than the 70000 bytes");
    free(big);
}

/* An archive of one entry `name` of type `type`, and its extraction into a fresh folder. */
static bool extract_one(const char *tag, const char *name, char type, char *dest, size_t destlen)
{
    char archive[512], file[64];
    snprintf(file, sizeof file, "%s.tar.gz", tag);
    gzFile g = tar_open(tmp_path(archive, sizeof archive, file));
    tar_header(g, name, type, 2, NULL);
    assert_int_equal(gzwrite(g, "hi", 2), 2);
    tar_pad(g, 2);
    tar_end(g);
    assert_int_equal(gzclose(g), Z_OK);
    make_dir(tmp_path(dest, destlen, tag));
    return zn_tar_extract(archive, dest, 0, err, sizeof err);
}

static void test_tar_refuses_unsafe_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {"../x", "d/../../x", "/tmp/znet-abs-x", "..", "a/.."};
    char dest[512], listing[256], outside[600];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "unsafe%zu", i);
        assert_false(extract_one(tag, bad[i], '0', dest, sizeof dest));
        assert_has(err, bad[i]);
        assert_has(err, "': not unpacked: "); /* with libarchive's reason */
        assert_has(err, i == 2 ? "Path is absolute" : "Path contains '..'");
        list_dir(dest, listing, sizeof listing);
        assert_string_equal(listing, "");
    }
    snprintf(outside, sizeof outside, "%s/x", zt_tmpdir());
    assert_false(exists(outside));
    assert_false(exists("/tmp/znet-abs-x"));
    /* links could point anywhere: refused by type */
    assert_false(extract_one("symlink", "link", '2', dest, sizeof dest));
    assert_has(err, "'link': a symbolic link; only files and folders are unpacked");
    assert_false(extract_one("hardlink", "hard", '1', dest, sizeof dest));
    assert_has(err, "'hard': a hard link");
}

/* good.tar.gz's bytes cut or changed, then extracted. */
static bool extract_mangled(const char *tag, const void *data, size_t n, char *dest, size_t destlen)
{
    char path[512], file[64];
    snprintf(file, sizeof file, "%s.bin", tag);
    FILE *f = fopen(tmp_path(path, sizeof path, file), "wb");
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    make_dir(tmp_path(dest, destlen, tag));
    return zn_tar_extract(path, dest, 0, err, sizeof err);
}

/* An uncompressed archive of one 3000-byte file "t/f.bin", in memory. */
static char *plain_archive(size_t *n)
{
    char path[512];
    gzFile g = gzopen(tmp_path(path, sizeof path, "plain.tar"), "wbT"); /* T: no compression */
    char *data = patterned(3000);
    tar_file(g, "t/f.bin", data, 3000);
    tar_end(g);
    assert_int_equal(gzclose(g), Z_OK);
    free(data);
    char *bytes = read_text(path);
    *n = 512 + 3072 + 1024;
    return bytes;
}

static void test_tar_truncated_and_corrupt(void **state)
{
    (void)state;
    char dest[512], path[600], listing[256];
    size_t n;
    char *tar = plain_archive(&n);
    /* plain tar is read too (gzread passes it through) */
    assert_true(extract_mangled("plain", tar, n, dest, sizeof dest));
    /* cut inside the file's data: refused, and no partial file left under its name */
    assert_false(extract_mangled("cut-data", tar, 2000, dest, sizeof dest));
    assert_has(err, "reading 't/f.bin': Truncated tar archive");
    snprintf(path, sizeof path, "%s/t", dest);
    list_dir(path, listing, sizeof listing);
    assert_string_equal(listing, "");
    /* cut where the end-of-archive blocks should be */
    assert_false(extract_mangled("cut-end", tar, 512 + 3072, dest, sizeof dest));
    assert_has(err, "without its end-of-archive blocks");
    /* a changed header byte */
    tar[10] ^= 1;
    assert_false(extract_mangled("checksum", tar, n, dest, sizeof dest));
    assert_has(err, "Unrecognized archive format");
    tar[10] ^= 1;
    /* not a tar at all */
    assert_false(extract_mangled("text", "just some text, not a tar archive at all", 40, dest, sizeof dest));
    assert_has(err, "archive");
    free(tar);

    /* a gzip stream cut short, and one with a damaged body (caught by inflate or gzip's CRC) */
    char *gz = read_text(tmp_path(path, sizeof path, "good.tar.gz"));
    struct stat st;
    stat(path, &st);
    assert_false(extract_mangled("gz-cut", gz, (size_t)st.st_size / 2, dest, sizeof dest));
    assert_has(err, "the compressed data ends early (truncated download?)");
    /* the last 8 bytes are gzip's CRC-32 and length, which libarchive does not check */
    assert_false(extract_mangled("gz-cut-trailer", gz, (size_t)st.st_size - 3, dest, sizeof dest));
    assert_has(err, "the compressed data ends early");
    gz[st.st_size - 6] ^= 0x55;
    assert_false(extract_mangled("gz-crc", gz, (size_t)st.st_size, dest, sizeof dest));
    assert_has(err, "corrupt compressed data: incorrect data check");
    gz[st.st_size - 6] ^= 0x55;
    gz[st.st_size / 2] ^= 0x55; /* the deflate data itself */
    assert_false(extract_mangled("gz-body", gz, (size_t)st.st_size, dest, sizeof dest));
    assert_has(err, "corrupt compressed data: ");
    free(gz);
}

/* GNU tar's own format (magic "ustar  ", directories, long-ish names) reads the same. */
static void test_tar_reads_gnu_tar(void **state)
{
    (void)state;
    if (system("tar --version >/dev/null 2>&1") != 0) skip();
    char src[512], dest[512], cmd[2048], archive[512];
    make_dir(tmp_path(src, sizeof src, "gnu-src"));
    snprintf(cmd, sizeof cmd, "%s/cifar-10-batches-bin", src);
    make_dir(cmd);
    char *data = patterned(12345);
    snprintf(cmd, sizeof cmd, "%s/cifar-10-batches-bin/data.bin", src);
    FILE *f = fopen(cmd, "wb");
    fwrite(data, 1, 12345, f);
    fclose(f);
    tmp_path(archive, sizeof archive, "gnu.tar.gz");
    snprintf(cmd, sizeof cmd, "tar --format=gnu -czf %s -C %s cifar-10-batches-bin", archive, src);
    assert_int_equal(system(cmd), 0);
    make_dir(tmp_path(dest, sizeof dest, "gnu-dest"));
    if (!zn_tar_extract(archive, dest, 0, err, sizeof err)) fail_msg("%s", err);
    assert_file(dest, "cifar-10-batches-bin/data.bin", data, 12345);
    free(data);
}

/* ---- znet data get against a loopback HTTP server ---- */

/* Serves files under argv[1] on 127.0.0.1 (a free port, printed first), honouring
 * "Range: bytes=N-" so resuming can be tested, and answers /busy with 503 (try later); logs
 * "path range" per request to argv[2]. */
static const char server_py[] =
    "import http.server, os, sys\n"
    "root, log = sys.argv[1], sys.argv[2]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        rng = self.headers.get('Range')\n"
    "        with open(log, 'a') as f: f.write('%s %s\\n' % (self.path, rng))\n"
    "        if self.path == '/busy':\n"
    "            self.send_error(503); return\n"
    "        p = os.path.join(root, self.path.lstrip('/'))\n"
    "        if '..' in self.path or not os.path.isfile(p):\n"
    "            self.send_error(404); return\n"
    "        data = open(p, 'rb').read()\n"
    "        start = 0\n"
    "        if rng and rng.startswith('bytes=') and rng.endswith('-'):\n"
    "            start = int(rng[6:-1])\n"
    "            if start >= len(data):\n"
    "                self.send_response(416)\n"
    "                self.send_header('Content-Range', 'bytes */%d' % len(data))\n"
    "                self.send_header('Content-Length', '0'); self.end_headers(); return\n"
    "            self.send_response(206)\n"
    "            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))\n"
    "        else:\n"
    "            self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(data) - start))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(data[start:])\n"
    "    def log_message(self, *a): pass\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "print(s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

typedef struct {
    char znet[1024];        /* the binary under test */
    char www[512];          /* what the server serves */
    char requests[512];     /* its request log */
    char url[128];          /* of the CIFAR-10 archive */
    char archive_md5[ZN_DIGEST_HEX_MAX];
    char archive_sha256[ZN_DIGEST_HEX_MAX];
    char wrong_url[128];    /* of an archive with no CIFAR-10 in it */
    char wrong_md5[ZN_DIGEST_HEX_MAX];
    pid_t server;
    int port;
} fixture;

static fixture fx;
static const char *skip_why;

/* Full-size batch files (the reader insists on 10,000 records): record r of file k has label
 * r % 10 and first pixel k + 1, everything else zero, so the archive compresses to ~200 KB. */
static void write_cifar_archive(const char *path)
{
    gzFile g = tar_open(path);
    tar_header(g, "cifar-10-batches-bin/", '5', 0, NULL);
    enum { CHUNK = 1000 };
    char *buf = calloc(CHUNK, ZN_CIFAR10_RECORD);
    for (int k = 0; k < 6; k++) {
        char name[64];
        if (k < 5) snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin", k + 1);
        else snprintf(name, sizeof name, "cifar-10-batches-bin/test_batch.bin");
        tar_header(g, name, '0', (unsigned long long)ZN_CIFAR10_FILE_RECORDS * ZN_CIFAR10_RECORD, NULL);
        for (int r0 = 0; r0 < ZN_CIFAR10_FILE_RECORDS; r0 += CHUNK) {
            for (int r = 0; r < CHUNK; r++) {
                buf[(size_t)r * ZN_CIFAR10_RECORD] = (char)((r0 + r) % 10);
                buf[(size_t)r * ZN_CIFAR10_RECORD + 1] = (char)(k + 1);
            }
            assert_int_equal(gzwrite(g, buf, CHUNK * ZN_CIFAR10_RECORD), CHUNK * ZN_CIFAR10_RECORD);
        }
        tar_pad(g, (unsigned long long)ZN_CIFAR10_FILE_RECORDS * ZN_CIFAR10_RECORD);
    }
    static const char meta[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    tar_file(g, "cifar-10-batches-bin/batches.meta.txt", meta, sizeof meta - 1);
    tar_file(g, "cifar-10-batches-bin/readme.html", "<p>test</p>\n", 12);
    tar_end(g);
    assert_int_equal(gzclose(g), Z_OK);
    free(buf);
}

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[2048];
    for (const char *p = path ? path : ""; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, prog);
        if (len && access(buf, X_OK) == 0) return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/* The built znet beside this test's folder (build/tests/test_fetch -> build/znet). */
static bool find_znet(char *out, size_t len)
{
    char self[900];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return false;
    *slash = '\0';
    snprintf(out, len, "%s/../znet", self);
    return access(out, X_OK) == 0;
}

static int setup_server(void **state)
{
    (void)state;
    alarm(TEST_SECONDS);
    if (!find_znet(fx.znet, sizeof fx.znet)) return skip_why = "the znet binary is not built", 0;
    if (!on_path("python3")) return skip_why = "python3 is not installed (it runs the test's HTTP server)", 0;
    char path[600];
    make_dir(tmp_path(fx.www, sizeof fx.www, "www"));
    tmp_path(fx.requests, sizeof fx.requests, "requests.log");
    snprintf(path, sizeof path, "%s/x.tar.gz", fx.www);
    write_cifar_archive(path);
    assert_true(zn_digest_file(ZN_DIGEST_MD5, path, fx.archive_md5, err, sizeof err));
    assert_true(zn_digest_file(ZN_DIGEST_SHA256, path, fx.archive_sha256, err, sizeof err));
    snprintf(path, sizeof path, "%s/wrong.tar.gz", fx.www);
    gzFile g = tar_open(path);
    tar_file(g, "cifar-10-batches-bin/data_batch_1.bin", "too short", 9);
    tar_end(g);
    assert_int_equal(gzclose(g), Z_OK);
    assert_true(zn_digest_file(ZN_DIGEST_MD5, path, fx.wrong_md5, err, sizeof err));

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fx.server = fork();
    assert_true(fx.server >= 0);
    if (fx.server == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", "-c", server_py, fx.www, fx.requests, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[32];
    bool ok = fgets(line, sizeof line, f) && (fx.port = atoi(line)) > 0;
    fclose(f);
    if (!ok) return skip_why = "the python3 HTTP server did not start", 0;
    snprintf(fx.url, sizeof fx.url, "http://127.0.0.1:%d/x.tar.gz", fx.port);
    snprintf(fx.wrong_url, sizeof fx.wrong_url, "http://127.0.0.1:%d/wrong.tar.gz", fx.port);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Stops the server and removes this run's files: several copies of a 184 MB data set. */
static int teardown_server(void **state)
{
    (void)state;
    if (fx.server > 0) {
        kill(fx.server, SIGTERM);
        waitpid(fx.server, NULL, 0);
    }
    nftw(zt_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Runs `znet data get cifar10 --url URL --md5 SUM --dir DIR --retries N` (--sha256 SUM when SUM
 * has 64 digits); returns the exit status, with stdout and stderr together in *out (malloc'd). */
static int run_get_retrying(const char *url, const char *sum, const char *dir, const char *retries, char **out)
{
    char log[600];
    snprintf(log, sizeof log, "%s/znet-output.txt", zt_tmpdir());
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(126);
        alarm(180);
        execl(fx.znet, fx.znet, "data", "get", "cifar10", "--url", url, strlen(sum) == 64 ? "--sha256" : "--md5", sum, "--dir", dir,
              "--retries", retries, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *out = read_text(log);
    if (!WIFEXITED(status)) fail_msg("znet was killed by signal %d; output:\n%s", WTERMSIG(status), *out);
    return WEXITSTATUS(status);
}

static int run_get(const char *url, const char *sum, const char *dir, char **out)
{
    return run_get_retrying(url, sum, dir, "0", out);
}

static void skip_without_server(void)
{
    if (skip_why) {
        print_message("skipped: %s\n", skip_why);
        skip();
    }
}

/* dir/cifar-10-batches-bin holds the served data set: both splits load with their pattern. */
static void assert_installed(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    zn_dataset ds;
    if (!zn_cifar10_load(path, true, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.n, 50000);
    for (int i = 0; i < ds.n; i += 997) {
        assert_int_equal(ds.labels[i], i % 10);
        assert_int_equal(ds.images[(size_t)i * 3072], i / 10000 + 1);
    }
    zn_dataset_free(&ds);
    assert_true(zn_cifar10_load(path, false, &ds, err, sizeof err));
    assert_int_equal(ds.n, 10000);
    assert_int_equal(ds.images[0], 6);
    zn_dataset_free(&ds);
}

static int count_requests(void)
{
    if (!exists(fx.requests)) return 0;
    char *s = read_text(fx.requests);
    int n = 0;
    for (char *p = s; (p = strchr(p, '\n')); p++) n++;
    free(s);
    return n;
}

static void test_get_downloads_and_unpacks(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], listing[256], *out;
    tmp_path(dir, sizeof dir, "get-ok/nested"); /* parents are created */
    int rc = run_get(fx.url, fx.archive_md5, dir, &out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_has(out, "CIFAR-10 is ready in");
    free(out);
    assert_installed(dir);
    list_dir(dir, listing, sizeof listing); /* no archive, .part or staging folder left */
    assert_string_equal(listing, "cifar-10-batches-bin");
    /* again: nothing is downloaded */
    int before = count_requests();
    assert_int_equal(run_get(fx.url, fx.archive_md5, dir, &out), 0);
    assert_has(out, "already in");
    free(out);
    assert_int_equal(count_requests(), before);
}

static void test_get_wrong_md5_unpacks_nothing(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], listing[256], *out;
    static const char bad_md5[] = "0123456789abcdef0123456789abcdef";
    int rc = run_get(fx.url, bad_md5, tmp_path(dir, sizeof dir, "get-md5"), &out);
    assert_int_equal(rc, 1);
    assert_has(out, "MD5 is ");
    assert_has(out, "expected 0123456789abcdef0123456789abcdef");
    assert_has(out, "removed the download");
    assert_has(out, "to get CIFAR-10 by hand"); /* the offline instructions */
    assert_has(out, fx.url);
    assert_has(out, "md5 0123456789abcdef0123456789abcdef");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tar xzf cifar-10-binary.tar.gz -C %s", dir);
    assert_has(out, cmd);
    free(out);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "");
}

static void test_get_resumes_a_partial_download(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], part[700], served[700], *out;
    make_dir(tmp_path(dir, sizeof dir, "get-resume"));
    snprintf(served, sizeof served, "%s/x.tar.gz", fx.www);
    char *whole = read_text(served);
    struct stat st;
    stat(served, &st);
    size_t half = (size_t)st.st_size / 2;
    snprintf(part, sizeof part, "%s/cifar-10-binary.tar.gz.part", dir);
    FILE *f = fopen(part, "wb");
    assert_int_equal(fwrite(whole, 1, half, f), half);
    fclose(f);
    free(whole);
    int rc = run_get(fx.url, fx.archive_md5, dir, &out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_has(out, "resuming");
    free(out);
    assert_installed(dir);
    /* the last request asked for the rest only */
    char *log = read_text(fx.requests), want[64];
    snprintf(want, sizeof want, "/x.tar.gz bytes=%zu-\n", half);
    assert_has(log, want);
    free(log);
    assert_false(exists(part));
}

static void test_get_offline_and_http_errors(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], listing[256], *out, url[128];
    /* nothing listens on port 1 of the loopback address: as good as offline */
    int rc = run_get("http://127.0.0.1:1/cifar-10-binary.tar.gz", fx.archive_md5,
                     tmp_path(dir, sizeof dir, "get-offline"), &out);
    assert_int_equal(rc, 1);
    assert_has(out, "curl error 7 [");
    assert_has(out, "could not connect to the server (offline?)");
    assert_has(out, "to get CIFAR-10 by hand");
    assert_has(out, "tar xzf cifar-10-binary.tar.gz -C ");
    free(out);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "");

    /* while another run holds the folder, nothing is touched */
    int fd = open(dir, O_RDONLY);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    rc = run_get(fx.url, fx.archive_md5, dir, &out);
    close(fd);
    assert_int_equal(rc, 1);
    assert_has(out, "another `znet data get` is working in");
    free(out);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "");

    /* a URL that looks like an option of the curl program is only a URL to libcurl */
    char planted[600], dash_url[620];
    snprintf(planted, sizeof planted, "%s/planted", zt_tmpdir());
    snprintf(dash_url, sizeof dash_url, "-o%s", planted);
    rc = run_get(dash_url, fx.archive_md5, tmp_path(dir, sizeof dir, "get-dash"), &out);
    assert_int_equal(rc, 1);
    assert_has(out, "curl error ");
    free(out);
    assert_false(exists(planted));

    /* a --dir too long for a path is named as such (not as a missing $HOME) */
    char long_dir[5000];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[0] = '/';
    long_dir[sizeof long_dir - 1] = '\0';
    rc = run_get(fx.url, fx.archive_md5, long_dir, &out);
    assert_int_equal(rc, 1);
    assert_has(out, "--dir: a path of 4999 bytes is too long");
    free(out);

    /* "try later" is tried again, --retries times */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/busy", fx.port);
    int before = count_requests();
    rc = run_get_retrying(url, fx.archive_md5, tmp_path(dir, sizeof dir, "get-busy"), "1", &out);
    assert_int_equal(rc, 1);
    assert_has(out, "error: 503; trying again in 1 s (1 try left)");
    assert_has(out, "curl error 22 [");
    free(out);
    assert_int_equal(count_requests(), before + 2);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing.tar.gz", fx.port);
    rc = run_get(url, fx.archive_md5, tmp_path(dir, sizeof dir, "get-404"), &out);
    assert_int_equal(rc, 1);
    assert_has(out, "HTTP error");
    free(out);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "");
}

/* A file:// URL with a SHA-256 to check instead of the MD5: a wrong one removes the copy and
 * names sha256sum in the instructions; the right one installs. */
static void test_get_file_url_and_sha256(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], url[700], listing[256], *out;
    static const char bad[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    snprintf(url, sizeof url, "file://%s/x.tar.gz", fx.www);
    int rc = run_get(url, bad, tmp_path(dir, sizeof dir, "get-file"), &out);
    assert_int_equal(rc, 1);
    assert_has(out, "SHA-256 is ");
    assert_has(out, fx.archive_sha256);
    assert_has(out, "sha256 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff; check it with `sha256sum");
    free(out);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "");
    rc = run_get(url, fx.archive_sha256, dir, &out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_has(out, "checking the SHA-256 of");
    free(out);
    assert_installed(dir);
}

/* An archive with the right MD5 that does not hold a usable CIFAR-10 installs nothing, and a
 * broken copy already there is replaced whole by a good one. */
static void test_get_validates_and_replaces(void **state)
{
    (void)state;
    skip_without_server();
    char dir[512], target[700], listing[256], *out;
    make_dir(tmp_path(dir, sizeof dir, "get-replace"));
    snprintf(target, sizeof target, "%s/cifar-10-batches-bin", dir);
    make_dir(target);
    snprintf(target, sizeof target, "%s/cifar-10-batches-bin/data_batch_1.bin", dir);
    FILE *f = fopen(target, "w");
    fputs("broken", f);
    fclose(f);
    int rc = run_get(fx.wrong_url, fx.wrong_md5, dir, &out);
    assert_int_equal(rc, 1);
    assert_has(out, "has the right MD5 but does not hold CIFAR-10 as expected");
    free(out);
    list_dir(dir, listing, sizeof listing); /* the old copy untouched, no staging left */
    assert_string_equal(listing, "cifar-10-batches-bin");
    snprintf(target, sizeof target, "%s/cifar-10-batches-bin", dir);
    list_dir(target, listing, sizeof listing);
    assert_string_equal(listing, "data_batch_1.bin");

    rc = run_get(fx.url, fx.archive_md5, dir, &out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_has(out, "is there but unusable");
    free(out);
    assert_installed(dir);
    list_dir(dir, listing, sizeof listing);
    assert_string_equal(listing, "cifar-10-batches-bin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_digest_file),
        cmocka_unit_test(test_tar_extracts),
        cmocka_unit_test(test_tar_refuses_unsafe_paths),
        cmocka_unit_test(test_tar_truncated_and_corrupt),
        cmocka_unit_test(test_tar_reads_gnu_tar),
        cmocka_unit_test(test_get_downloads_and_unpacks),
        cmocka_unit_test(test_get_wrong_md5_unpacks_nothing),
        cmocka_unit_test(test_get_resumes_a_partial_download),
        cmocka_unit_test(test_get_offline_and_http_errors),
        cmocka_unit_test(test_get_validates_and_replaces),
        cmocka_unit_test(test_get_file_url_and_sha256),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
