/* rng.h: the one explicit random number generator (xoshiro256**, seeded through splitmix64).
 * Everything random in znet draws from a zn_rng it was handed, so a seed fixes a run. The state
 * is a plain struct: copying it saves the stream, copying it back restores it (checkpoints). */
#ifndef ZN_RNG_H
#define ZN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* xoshiro256** state; never all zero */
} zn_rng;

/* Seeds r from a 64-bit seed (any value, 0 included). */
void zn_rng_init(zn_rng *r, uint64_t seed);
/* A seed for an independent sub-stream `stream` of `seed` (e.g. one per epoch, one per batch):
 * a hash, so nearby seeds and streams give unrelated generators. */
uint64_t zn_rng_derive(uint64_t seed, uint64_t stream);

uint64_t zn_rng_u64(zn_rng *r);
uint32_t zn_rng_u32(zn_rng *r);
/* Uniform in [0, 1), 24 random bits. */
float zn_rng_uniform(zn_rng *r);
/* Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject); n must be > 0. */
uint32_t zn_rng_below(zn_rng *r, uint32_t n);
/* Standard normal (Box-Muller; one draw of two uniforms per call, no cached spare, so the
 * state stays a plain copyable struct). */
float zn_rng_normal(zn_rng *r);

#endif
