/* md5.c: MD5 as RFC 1321 describes it (section 3), one 64-byte block at a time, with the
 * per-round constants K[i] = floor(abs(sin(i + 1)) * 2^32) tabled rather than computed so the
 * result never depends on the platform's libm. */
#include "data/md5.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

/* left-rotation amounts, four per round */
static const int R[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void md5_block(uint32_t s[4], const uint8_t *p)
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++) /* little-endian words, whatever the host's order */
        x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3];
    for (int i = 0; i < 64; i++) {
        int round = i / 16;
        uint32_t f;
        int g;
        switch (round) {
        case 0: f = (b & c) | (~b & d); g = i; break;
        case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
        case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
        default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + K[i] + x[g], R[round][i % 4]);
        a = t;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
}

void zn_md5_init(zn_md5 *m)
{
    m->state[0] = 0x67452301;
    m->state[1] = 0xefcdab89;
    m->state[2] = 0x98badcfe;
    m->state[3] = 0x10325476;
    m->bytes = 0;
}

void zn_md5_update(zn_md5 *m, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t used = (size_t)(m->bytes % 64);
    m->bytes += n;
    if (used) {
        size_t take = n < 64 - used ? n : 64 - used;
        memcpy(m->block + used, p, take);
        p += take;
        n -= take;
        if (used + take < 64) return;
        md5_block(m->state, m->block);
    }
    for (; n >= 64; p += 64, n -= 64) md5_block(m->state, p);
    memcpy(m->block, p, n);
}

void zn_md5_final(zn_md5 *m, char hex[33])
{
    /* padding: a 1 bit, zeros up to 56 mod 64 bytes, then the bit length, little-endian */
    uint64_t bits = m->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t used = (size_t)(m->bytes % 64);
    size_t n_pad = used < 56 ? 56 - used : 120 - used;
    for (int i = 0; i < 8; i++) pad[n_pad + i] = (uint8_t)(bits >> (8 * i));
    zn_md5_update(m, pad, n_pad + 8);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned)(m->state[i / 4] >> (8 * (i % 4))) & 0xffu);
}

bool zn_md5_file(const char *path, char hex[33], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    zn_md5 m;
    zn_md5_init(&m);
    uint8_t buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) zn_md5_update(&m, buf, got);
    bool ok = !ferror(f);
    if (!ok) snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
    fclose(f);
    if (ok) zn_md5_final(&m, hex);
    return ok;
}
