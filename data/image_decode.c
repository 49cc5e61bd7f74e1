/* image_decode.c: PNG through libpng's simplified API (its errors come back in png_image.message)
 * and JPEG through libjpeg-turbo with an error manager that longjmps back here instead of
 * exiting; both refuse oversized images before allocating, so a hostile header costs nothing.
 * Then the channel and size conversions onto a model's input. */
#include "data/image_decode.h"

#include "data/dataset.h" /* zn_dataset_fail */

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static bool size_ok(unsigned long w, unsigned long h, char *err, size_t errlen)
{
    if (w == 0 || h == 0 || w > ZN_IMAGE_MAX_SIDE || h > ZN_IMAGE_MAX_SIDE || w * h > ZN_IMAGE_MAX_PIXELS)
        return zn_dataset_fail(err, errlen, "image of %lu x %lu pixels (at most %d a side and %d pixels)", w, h,
                    ZN_IMAGE_MAX_SIDE, ZN_IMAGE_MAX_PIXELS);
    return true;
}

static bool alloc_image(zn_image *out, int c, int h, int w, char *err, size_t errlen)
{
    out->c = c, out->h = h, out->w = w;
    out->pixels = calloc((size_t)c * h * w, 1);
    return out->pixels || zn_dataset_fail(err, errlen, "out of memory for a %d x %d image", w, h);
}

static bool decode_png(const uint8_t *data, size_t size, zn_image *out, char *err, size_t errlen)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, data, size))
        return zn_dataset_fail(err, errlen, "not a readable PNG: %s", png.message);
    bool ok = size_ok(png.width, png.height, err, errlen);
    png.format = png.format & PNG_FORMAT_FLAG_COLOR ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (ok) ok = alloc_image(out, PNG_IMAGE_PIXEL_CHANNELS(png.format), (int)png.height, (int)png.width, err, errlen);
    if (!ok) {
        png_image_free(&png);
        return false;
    }
    const png_color black = {0, 0, 0}; /* transparency is composited onto black */
    if (!png_image_finish_read(&png, &black, out->pixels, 0, NULL)) {
        zn_image_free(out);
        return zn_dataset_fail(err, errlen, "corrupt PNG: %s", png.message);
    }
    return true;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf back;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->back, 1);
}

/* libjpeg only warns about damaged data (and fills in gray); a damaged file is refused instead. */
static void jpeg_emit(j_common_ptr cinfo, int level)
{
    if (level < 0) jpeg_error_exit(cinfo);
}

static bool decode_jpeg(const uint8_t *data, size_t size, zn_image *out, char *err, size_t errlen)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err e;
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_error_exit;
    e.mgr.emit_message = jpeg_emit;
    /* out is written inside the setjmp region, so the cleanup reads it through memory */
    zn_image *volatile img = out;
    img->pixels = NULL;
    if (setjmp(e.back)) {
        jpeg_destroy_decompress(&cinfo);
        zn_image_free(img);
        return zn_dataset_fail(err, errlen, "corrupt JPEG: %s", e.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    bool ok = size_ok(cinfo.image_width, cinfo.image_height, err, errlen);
    if (ok && cinfo.num_components != 1 && cinfo.num_components != 3)
        ok = zn_dataset_fail(err, errlen, "JPEG with %d colour components (CMYK?): only gray and colour are read",
                  cinfo.num_components);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (ok) ok = alloc_image(img, cinfo.num_components, (int)cinfo.image_height, (int)cinfo.image_width, err, errlen);
    if (!ok) {
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img->pixels + (size_t)cinfo.output_scanline * img->w * img->c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return true;
}

bool zn_image_decode(const uint8_t *data, size_t size, zn_image *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, png_sig, 8) == 0) return decode_png(data, size, out, err, errlen);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(data, size, out, err, errlen);
    return zn_dataset_fail(err, errlen, "neither a PNG nor a JPEG (no signature of either in its first bytes)");
}

void zn_image_free(zn_image *im)
{
    free(im->pixels);
    memset(im, 0, sizeof *im);
}

/* Channel ch of the pixel at (y, x) of im, as c channels: gray repeated, RGB averaged. */
static float channel(const zn_image *im, int c, int y, int x, int ch)
{
    const uint8_t *p = im->pixels + ((size_t)y * im->w + x) * im->c;
    if (im->c == c) return p[ch];
    if (im->c == 1) return p[0];
    return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

void zn_image_convert(const zn_image *im, int c, int h, int w, zn_image_fit fit, uint8_t *dst)
{
    /* the source window that maps onto the output: the whole image, or for crop the centre
     * part with the output's aspect ratio */
    double sh = im->h, sw = im->w;
    if (fit == ZN_FIT_CROP) {
        double scale = im->h * (double)w < im->w * (double)h ? (double)im->h / h : (double)im->w / w;
        sh = h * scale, sw = w * scale;
    }
    double y0 = (im->h - sh) / 2, x0 = (im->w - sw) / 2, fy = sh / h, fx = sw / w;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            double sy = y0 + (y + 0.5) * fy - 0.5;
            sy = sy < 0 ? 0 : sy > im->h - 1 ? im->h - 1 : sy;
            int ya = (int)sy, yb = ya + 1 < im->h ? ya + 1 : ya;
            float ty = (float)(sy - ya);
            for (int x = 0; x < w; x++) {
                double sx = x0 + (x + 0.5) * fx - 0.5;
                sx = sx < 0 ? 0 : sx > im->w - 1 ? im->w - 1 : sx;
                int xa = (int)sx, xb = xa + 1 < im->w ? xa + 1 : xa;
                float tx = (float)(sx - xa);
                float top = channel(im, c, ya, xa, ch) * (1 - tx) + channel(im, c, ya, xb, ch) * tx;
                float bot = channel(im, c, yb, xa, ch) * (1 - tx) + channel(im, c, yb, xb, ch) * tx;
                float v = top * (1 - ty) + bot * ty + 0.5f;
                dst[((size_t)ch * h + y) * w + x] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
}

bool zn_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

static bool read_file(const char *path, uint8_t **data, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    *data = n >= 0 ? malloc(n ? (size_t)n : 1) : NULL;
    bool ok = *data && fseek(f, 0, SEEK_SET) == 0 && fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *size = (size_t)n;
    if (!ok) {
        free(*data);
        return zn_dataset_fail(err, errlen, "%s: cannot read it", path);
    }
    return true;
}

bool zn_image_file_load(const char *path, int c, int h, int w, zn_image_fit fit, uint8_t *dst, char *err,
                        size_t errlen)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (!read_file(path, &data, &size, err, errlen)) return false;
    zn_image im;
    char why[512];
    bool ok = zn_image_decode(data, size, &im, why, sizeof why);
    free(data);
    if (!ok) return zn_dataset_fail(err, errlen, "%s: %s", path, why);
    zn_image_convert(&im, c, h, w, fit, dst);
    zn_image_free(&im);
    return true;
}
