/* fuzz_image.c: the PNG and JPEG decoder of image folders (zn_image_decode, libpng and
 * libjpeg-turbo behind their error handlers) on one file's bytes, and on an accepted image the
 * conversions onto a model's input (gray <-> RGB, resize and centre crop, sizes up and down).
 * An accepted image must be 1 or 3 channels within the size limits. */
#include <stdio.h>
#include <stdlib.h>

#include "data/image_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zn_image im;
    char err[1024] = "";
    if (!zn_image_decode(data, size, &im, err, sizeof err)) {
        if (!err[0]) {
            fprintf(stderr, "refused the input without saying why\n");
            abort();
        }
        return 0;
    }
    if ((im.c != 1 && im.c != 3) || im.h < 1 || im.w < 1 || im.h > ZN_IMAGE_MAX_SIDE || im.w > ZN_IMAGE_MAX_SIDE) {
        fprintf(stderr, "accepted an image of %d x %d x %d\n", im.c, im.h, im.w);
        abort();
    }
    static const int shapes[][3] = {{3, 8, 8}, {1, 5, 7}, {3, 40, 3}};
    uint8_t out[3 * 40 * 8];
    for (int s = 0; s < 3; s++)
        for (int fit = ZN_FIT_RESIZE; fit <= ZN_FIT_CROP; fit++)
            zn_image_convert(&im, shapes[s][0], shapes[s][1], shapes[s][2], (zn_image_fit)fit, out);
    zn_image_free(&im);
    return 0;
}
