/* augment.h: turns uint8 records into the float batch a model sees: per-channel normalisation,
 * then the recipe's augmentations in the recipe's order (pad + random crop, horizontal flip,
 * cutout). Every random choice comes from the zn_rng handed in, image by image and op by op in
 * order, so the same RNG state gives the same batch bytes. */
#ifndef ZN_AUGMENT_H
#define ZN_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "lang/recipe.h"
#include "data/rng.h"

typedef struct {
    int c, h, w;                                /* image shape */
    float mean[ZN_DATASET_MAX_CHANNELS];        /* 0-255 scale */
    float inv_std[ZN_DATASET_MAX_CHANNELS];     /* 1 / std, 0-255 scale */
    float zero_fill[ZN_DATASET_MAX_CHANNELS];   /* a black (raw 0) pixel after normalisation */
    zn_augment ops[ZN_MAX_AUGMENT];
    int n_ops;
    float *scratch;                             /* [c][h][w]: pad-crop's source copy */
} zn_augmenter;

/* Checks the ops against the image shape (reflect padding must be < the side, cutout fits in the
 * image, 0 <= p <= 1, std > 0) and prepares; false with a message otherwise. mean and std have
 * c entries. One augmenter serves one thread at a time (it owns a scratch image). */
bool zn_augmenter_init(zn_augmenter *a, int c, int h, int w, const float *mean, const float *std,
                       const zn_augment *ops, int n_ops, char *err, size_t errlen);
void zn_augmenter_free(zn_augmenter *a);

/* out[n][c][h][w] = images idx[0..n) of ds, normalised and augmented. ds must match the shape
 * given to init. Per image it draws, per op in order: pad_crop two offsets zn_rng_below(2s+1)
 * (rows, then columns), flip one zn_rng_uniform (flip when < p), cutout two corners
 * zn_rng_below(side-s+1) (rows, then columns). */
void zn_augmenter_apply(zn_augmenter *a, const zn_dataset *ds, const int32_t *idx, int n,
                        zn_rng *rng, float *out);

/* The steps on one image, exposed for tests; img is [c][h][w] float, already normalised.
 * dst[k] = (src[k] - mean[ch]) * inv_std[ch] over hw pixels per channel. */
void zn_aug_normalize(const uint8_t *src, int c, int hw, const float *mean, const float *inv_std,
                      float *dst);
/* Pads by `pad` (reflect: mirror without repeating the edge, as numpy/PyTorch "reflect"; zero:
 * fill[ch], a black pixel) and keeps the h x w window whose top-left corner in the padded image
 * is (dy, dx), 0 <= dy, dx <= 2 * pad. scratch holds c*h*w floats. */
void zn_aug_pad_crop(float *img, float *scratch, int c, int h, int w, int pad, zn_pad_mode mode,
                     const float *fill, int dy, int dx);
/* Mirrors every row. */
void zn_aug_flip(float *img, int c, int h, int w);
/* Sets the size x size square at (y0, x0) to 0 (the mean colour) in every channel; the square
 * must lie inside the image. */
void zn_aug_cutout(float *img, int c, int h, int w, int size, int y0, int x0);

#endif
