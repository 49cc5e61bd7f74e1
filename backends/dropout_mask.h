/* dropout_mask.h: dropout's mask as a counter-based hash, one definition for the CPU kernel and
 * the CUDA kernel (host and device under nvcc), so both keep the same elements bit for bit and a
 * backward regenerates the forward's mask instead of storing it. Element i of a node's batched
 * tensor is kept when splitmix64's output number i + 1 from the node's key, cut to 24 bits, is at
 * least p * 2^24; the key hashes (run seed, step, the node's mask stream). docs/training.md. */
#ifndef ZN_DROPOUT_MASK_H
#define ZN_DROPOUT_MASK_H

#include <stdint.h>

#include "backends/eltwise_math.h" /* ZN_EW_FN: host and device functions under nvcc */

#define ZN_MASK_GOLDEN 0x9E3779B97F4A7C15ull /* splitmix64's increment */

/* splitmix64's finalizer: a bijection of 64-bit words with full avalanche. */
ZN_EW_FN uint64_t zn_mask_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* What one dropout node draws from at one step: each of the three is absorbed in its own round,
 * so nearby seeds, steps and streams give unrelated masks. */
typedef struct {
    uint64_t key;
    uint32_t threshold; /* drop where the 24-bit draw is below it: round-down of p * 2^24 */
    float scale;        /* 1 / (1 - p): the kept values' factor */
} zn_dropout_mask;

static inline zn_dropout_mask zn_dropout_mask_of(uint64_t seed, uint64_t step, uint32_t stream,
                                                 float p)
{
    uint64_t k = zn_mask_mix(seed + ZN_MASK_GOLDEN);
    k = zn_mask_mix(k + (step + 1) * ZN_MASK_GOLDEN);
    k = zn_mask_mix(k + ((uint64_t)stream + 1) * ZN_MASK_GOLDEN);
    zn_dropout_mask m = {k, (uint32_t)((double)p * 16777216.0), 1.0f / (1.0f - p)};
    return m;
}

/* Whether element i is kept. */
ZN_EW_FN int zn_dropout_keeps(const zn_dropout_mask *m, uint64_t i)
{
    return (uint32_t)(zn_mask_mix(m->key + (i + 1) * ZN_MASK_GOLDEN) >> 40) >= m->threshold;
}

/* y = x / (1 - p) where kept, 0 elsewhere: one rounding, the same on every device. */
ZN_EW_FN float zn_dropout_apply(const zn_dropout_mask *m, uint64_t i, float x)
{
    return zn_dropout_keeps(m, i) ? x * m->scale : 0.0f;
}

#endif
