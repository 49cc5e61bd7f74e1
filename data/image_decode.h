/* image_decode.h: one PNG or JPEG file's bytes to pixels (libpng, libjpeg-turbo), and the
 * conversions an image folder needs to meet a model's input: channels (gray <-> RGB) and size
 * (resize, or resize the shorter side and take the centre). Errors are messages, never aborts. */
#ifndef ZN_IMAGE_DECODE_H
#define ZN_IMAGE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang/recipe.h" /* zn_image_fit */

#define ZN_IMAGE_MAX_SIDE 16384        /* a larger image is refused, not decoded */
#define ZN_IMAGE_MAX_PIXELS (64 << 20) /* nor one of more pixels (a decompression bomb) */

typedef struct {
    int c, h, w;     /* c is 1 (gray) or 3 (RGB): alpha is dropped, palettes expanded */
    uint8_t *pixels; /* [h][w][c], malloc'd */
} zn_image;

/* Decodes a PNG or JPEG (told apart by their signatures) from memory; on failure err says why. */
bool zn_image_decode(const uint8_t *data, size_t size, zn_image *out, char *err, size_t errlen);
void zn_image_free(zn_image *im);

/* Writes im as c x h x w (CHW) into dst: gray repeated into RGB or RGB averaged to gray
 * (ITU-R BT.601 weights), then sized by fit (bilinear, pixel centres aligned). An image
 * already h x w is copied as it is. */
void zn_image_convert(const zn_image *im, int c, int h, int w, zn_image_fit fit, uint8_t *dst);

/* Whether a file name ends in .png, .jpg or .jpeg (any case): what an image folder reads. */
bool zn_image_name(const char *name);
/* Reads, decodes and converts (zn_image_convert) the image file at path into dst [c][h][w];
 * false with the path and the problem in err. */
bool zn_image_file_load(const char *path, int c, int h, int w, zn_image_fit fit, uint8_t *dst, char *err,
                        size_t errlen);

#endif
