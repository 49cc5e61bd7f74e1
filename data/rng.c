/* rng.c: xoshiro256** (Blackman & Vigna) with splitmix64 seeding; see rng.h. */
#include "data/rng.h"

#include <assert.h>
#include <math.h>

static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void zn_rng_init(zn_rng *r, uint64_t seed)
{
    /* splitmix64 outputs are a bijection of distinct counters, so four of them are never all
     * zero: the forbidden xoshiro state cannot arise. */
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64_next(&seed);
}

uint64_t zn_rng_derive(uint64_t seed, uint64_t stream)
{
    uint64_t x = stream;
    uint64_t h = splitmix64_next(&x);
    x = seed ^ h;
    return splitmix64_next(&x);
}

uint64_t zn_rng_u64(zn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t zn_rng_u32(zn_rng *r)
{
    return (uint32_t)(zn_rng_u64(r) >> 32); /* the high bits are the strongest */
}

float zn_rng_uniform(zn_rng *r)
{
    return (float)(zn_rng_u32(r) >> 8) * 0x1.0p-24f;
}

uint32_t zn_rng_below(zn_rng *r, uint32_t n)
{
    assert(n > 0);
    uint64_t m = (uint64_t)zn_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)-n % n; /* 2^32 mod n: the biased low values */
        while (low < threshold) {
            m = (uint64_t)zn_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float zn_rng_normal(zn_rng *r)
{
    double u1 = 1.0 - (double)(zn_rng_u64(r) >> 11) * 0x1.0p-53; /* (0, 1]: log is finite */
    double u2 = (double)(zn_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
