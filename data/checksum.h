/* checksum.h: the digests that check downloads against their published checksums, MD5 (what
 * CIFAR-10's page gives) and SHA-256, computed by OpenSSL's EVP interface. MD5 is only fit to
 * catch a damaged or wrong file, not a forged one; SHA-256 is used wherever a catalogue or the
 * user names one. */
#ifndef ZN_CHECKSUM_H
#define ZN_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { ZN_DIGEST_MD5, ZN_DIGEST_SHA256 } zn_digest;

#define ZN_DIGEST_HEX_MAX 65 /* SHA-256's 64 hex digits and a NUL */

/* "MD5", "SHA-256": for messages. */
const char *zn_digest_name(zn_digest d);
/* The number of hex digits of d's value: 32 or 64. */
size_t zn_digest_hex_len(zn_digest d);
/* Whether s is d's value written in hex (either case). */
bool zn_digest_is_hex(zn_digest d, const char *s);
/* The digest of n bytes, as lowercase hex; false with the reason in err. */
bool zn_digest_bytes(zn_digest d, const void *data, size_t n, char hex[ZN_DIGEST_HEX_MAX], char *err,
                     size_t errlen);
/* The digest of a file's contents, as lowercase hex; false with a message naming the file. */
bool zn_digest_file(zn_digest d, const char *path, char hex[ZN_DIGEST_HEX_MAX], char *err, size_t errlen);

#endif
