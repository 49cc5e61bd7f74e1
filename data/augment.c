/* augment.c: normalisation and the data augmentations of a training recipe; see augment.h. */
#include "data/augment.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool check_op(const zn_augment *op, int h, int w, char *err, size_t errlen)
{
    int side = h < w ? h : w;
    switch (op->kind) {
    case ZN_AUG_PAD_CROP:
        if (op->size < 0)
            return zn_dataset_fail(err, errlen, "pad_crop(%d): padding is negative", op->size);
        if (op->pad == ZN_PAD_REFLECT && op->size >= side)
            return zn_dataset_fail(err, errlen, "pad_crop(%d, reflect): reflect padding must be "
                                   "smaller than the image side %d", op->size, side);
        return true;
    case ZN_AUG_FLIP:
        if (!(op->p >= 0.0f && op->p <= 1.0f))
            return zn_dataset_fail(err, errlen, "flip(%g): probability is not in [0, 1]",
                                   (double)op->p);
        return true;
    case ZN_AUG_CUTOUT:
        if (op->size < 1 || op->size > side)
            return zn_dataset_fail(err, errlen, "cutout(%d): the square side must be in 1..%d",
                                   op->size, side);
        return true;
    }
    return zn_dataset_fail(err, errlen, "unknown augmentation kind %d", (int)op->kind);
}

bool zn_augmenter_init(zn_augmenter *a, int c, int h, int w, const float *mean, const float *std,
                       const zn_augment *ops, int n_ops, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (c < 1 || c > ZN_DATASET_MAX_CHANNELS || h < 1 || w < 1)
        return zn_dataset_fail(err, errlen, "augment: bad image shape %d x %d x %d", c, h, w);
    if (n_ops < 0 || n_ops > ZN_MAX_AUGMENT)
        return zn_dataset_fail(err, errlen, "augment: %d augmentations, at most %d", n_ops,
                               ZN_MAX_AUGMENT);
    for (int i = 0; i < n_ops; i++)
        if (!check_op(&ops[i], h, w, err, errlen)) return false;
    for (int ch = 0; ch < c; ch++) {
        if (!(std[ch] > 0.0f))
            return zn_dataset_fail(err, errlen, "normalisation: std %g of channel %d is not "
                                   "positive", (double)std[ch], ch);
        a->mean[ch] = mean[ch];
        a->inv_std[ch] = 1.0f / std[ch];
        a->zero_fill[ch] = -mean[ch] / std[ch];
    }
    a->scratch = malloc((size_t)c * h * w * sizeof *a->scratch);
    if (!a->scratch)
        return zn_dataset_fail(err, errlen, "malloc of an augmentation buffer: %s",
                               strerror(ENOMEM));
    a->c = c;
    a->h = h;
    a->w = w;
    memcpy(a->ops, ops, (size_t)n_ops * sizeof *ops);
    a->n_ops = n_ops;
    return true;
}

void zn_augmenter_free(zn_augmenter *a)
{
    free(a->scratch);
    memset(a, 0, sizeof *a);
}

void zn_aug_normalize(const uint8_t *src, int c, int hw, const float *mean, const float *inv_std,
                      float *dst)
{
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < hw; k++)
            dst[ch * hw + k] = ((float)src[ch * hw + k] - mean[ch]) * inv_std[ch];
}

/* Index i in [-(n-1), 2n-1) mirrored into [0, n) without repeating the edge. */
static int reflect(int i, int n)
{
    if (i < 0) return -i;
    if (i >= n) return 2 * n - 2 - i;
    return i;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Output columns [from, to) of one row whose source columns fall outside the image. */
static void pad_edge(float *drow, const float *srow, int from, int to, int shift, int w,
                     zn_pad_mode mode, float fill)
{
    for (int x = from; x < to; x++)
        drow[x] = mode == ZN_PAD_ZERO ? fill : srow[reflect(x + shift, w)];
}

void zn_aug_pad_crop(float *img, float *scratch, int c, int h, int w, int pad, zn_pad_mode mode,
                     const float *fill, int dy, int dx)
{
    assert(dy >= 0 && dy <= 2 * pad && dx >= 0 && dx <= 2 * pad);
    memcpy(scratch, img, (size_t)c * h * w * sizeof *img);
    int shift = dx - pad;                           /* source column = x + shift */
    int lo = clamp(-shift, 0, w);                   /* first column inside the source */
    int hi = clamp(w - shift, lo, w);               /* first column past it */
    for (int ch = 0; ch < c; ch++) {
        const float *src = scratch + (size_t)ch * h * w;
        float *dst = img + (size_t)ch * h * w;
        for (int y = 0; y < h; y++) {
            int sy = y + dy - pad;
            float *drow = dst + (size_t)y * w;
            if (mode == ZN_PAD_ZERO && (sy < 0 || sy >= h)) {
                for (int x = 0; x < w; x++) drow[x] = fill[ch];
                continue;
            }
            const float *srow = src + (size_t)reflect(sy, h) * w;
            pad_edge(drow, srow, 0, lo, shift, w, mode, fill[ch]);
            memcpy(drow + lo, srow + lo + shift, (size_t)(hi - lo) * sizeof *drow);
            pad_edge(drow, srow, hi, w, shift, w, mode, fill[ch]);
        }
    }
}

void zn_aug_flip(float *img, int c, int h, int w)
{
    for (int row = 0; row < c * h; row++) {
        float *r = img + (size_t)row * w;
        for (int x = 0; x < w / 2; x++) {
            float t = r[x];
            r[x] = r[w - 1 - x];
            r[w - 1 - x] = t;
        }
    }
}

void zn_aug_cutout(float *img, int c, int h, int w, int size, int y0, int x0)
{
    assert(y0 >= 0 && x0 >= 0 && y0 + size <= h && x0 + size <= w);
    for (int ch = 0; ch < c; ch++)
        for (int y = y0; y < y0 + size; y++)
            memset(img + ((size_t)ch * h + y) * w + x0, 0, (size_t)size * sizeof *img);
}

static void apply_op(const zn_augmenter *a, const zn_augment *op, float *img, zn_rng *rng)
{
    switch (op->kind) {
    case ZN_AUG_PAD_CROP: {
        int dy = (int)zn_rng_below(rng, 2u * (unsigned)op->size + 1);
        int dx = (int)zn_rng_below(rng, 2u * (unsigned)op->size + 1);
        zn_aug_pad_crop(img, a->scratch, a->c, a->h, a->w, op->size, op->pad, a->zero_fill, dy,
                        dx);
        break;
    }
    case ZN_AUG_FLIP:
        if (zn_rng_uniform(rng) < op->p) zn_aug_flip(img, a->c, a->h, a->w);
        break;
    case ZN_AUG_CUTOUT: {
        int y0 = (int)zn_rng_below(rng, (unsigned)(a->h - op->size + 1));
        int x0 = (int)zn_rng_below(rng, (unsigned)(a->w - op->size + 1));
        zn_aug_cutout(img, a->c, a->h, a->w, op->size, y0, x0);
        break;
    }
    }
}

void zn_augmenter_apply(zn_augmenter *a, const zn_dataset *ds, const int32_t *idx, int n,
                        zn_rng *rng, float *out)
{
    assert(ds->c == a->c && ds->h == a->h && ds->w == a->w);
    size_t hw = (size_t)a->h * a->w, chw = (size_t)a->c * hw;
    for (int i = 0; i < n; i++) {
        assert(idx[i] >= 0 && idx[i] < ds->n);
        float *img = out + (size_t)i * chw;
        zn_aug_normalize(ds->images + (size_t)idx[i] * chw, a->c, (int)hw, a->mean, a->inv_std,
                         img);
        for (int k = 0; k < a->n_ops; k++) apply_op(a, &a->ops[k], img, rng);
    }
}
