/* md5.h: MD5 (RFC 1321), only to check downloads against their published checksums; not for
 * anything that needs collision resistance. Incremental: init, update any number of times, final. */
#ifndef ZN_MD5_H
#define ZN_MD5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[4]; /* A, B, C, D */
    uint64_t bytes;    /* message length so far */
    uint8_t block[64]; /* the pending partial block, bytes % 64 of it used */
} zn_md5;

void zn_md5_init(zn_md5 *m);
void zn_md5_update(zn_md5 *m, const void *data, size_t n);
/* Writes the digest as 32 lowercase hex digits and a NUL; m must be initialised again to reuse. */
void zn_md5_final(zn_md5 *m, char hex[33]);
/* The MD5 of a file's contents, as hex; false with a message naming the file and call in err. */
bool zn_md5_file(const char *path, char hex[33], char *err, size_t errlen);

#endif
