/* checksum.c: the digests of checksum.h over OpenSSL's EVP interface: one context per digest,
 * fed from memory or from a file in 64 KiB reads, and the result written as hex. */
#include "data/checksum.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
    size_t bytes;
} digests[] = {
    [ZN_DIGEST_MD5] = {"MD5", EVP_md5, 16},
    [ZN_DIGEST_SHA256] = {"SHA-256", EVP_sha256, 32},
};

const char *zn_digest_name(zn_digest d) { return digests[d].name; }
size_t zn_digest_hex_len(zn_digest d) { return 2 * digests[d].bytes; }

bool zn_digest_is_hex(zn_digest d, const char *s)
{
    size_t n = zn_digest_hex_len(d);
    return strlen(s) == n && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* OpenSSL's reason for the last failure (or the call's name when it queued none). */
static bool evp_fail(const char *what, const char *call, char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    char why[256];
    if (e) ERR_error_string_n(e, why, sizeof why);
    snprintf(err, errlen, "%s: %s failed%s%s", what, call, e ? ": " : "", e ? why : "");
    ERR_clear_error();
    return false;
}

/* A context for d; `what` names the data for a message. */
static EVP_MD_CTX *begin(zn_digest d, const char *what, char *err, size_t errlen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) return evp_fail(what, "EVP_MD_CTX_new", err, errlen), NULL;
    if (EVP_DigestInit_ex(c, digests[d].md(), NULL) == 1) return c;
    EVP_MD_CTX_free(c);
    return evp_fail(what, "EVP_DigestInit_ex", err, errlen), NULL;
}

/* Writes c's digest as hex and frees c. */
static bool finish(EVP_MD_CTX *c, const char *what, char hex[ZN_DIGEST_HEX_MAX], char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    bool ok = EVP_DigestFinal_ex(c, md, &n) == 1 || evp_fail(what, "EVP_DigestFinal_ex", err, errlen);
    EVP_MD_CTX_free(c);
    for (unsigned i = 0; ok && i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return ok;
}

bool zn_digest_bytes(zn_digest d, const void *data, size_t n, char hex[ZN_DIGEST_HEX_MAX], char *err,
                     size_t errlen)
{
    EVP_MD_CTX *c = begin(d, "memory", err, errlen);
    if (!c) return false;
    if (EVP_DigestUpdate(c, data, n) == 1) return finish(c, "memory", hex, err, errlen);
    EVP_MD_CTX_free(c);
    return evp_fail("memory", "EVP_DigestUpdate", err, errlen);
}

bool zn_digest_file(zn_digest d, const char *path, char hex[ZN_DIGEST_HEX_MAX], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    EVP_MD_CTX *c = begin(d, path, err, errlen);
    bool ok = c != NULL;
    unsigned char buf[1 << 16];
    size_t got;
    while (ok && (got = fread(buf, 1, sizeof buf, f)) > 0)
        ok = EVP_DigestUpdate(c, buf, got) == 1 || evp_fail(path, "EVP_DigestUpdate", err, errlen);
    if (ok && ferror(f)) {
        snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    if (ok) return finish(c, path, hex, err, errlen);
    EVP_MD_CTX_free(c);
    return false;
}
