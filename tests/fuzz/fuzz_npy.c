/* fuzz_npy.c: the NumPy reader on any bytes. An input that starts with "PK" is an .npz; any other
 * is a pair of .npy files (test images, test labels) cut from it as in fuzz_idx (zn_fuzz_split),
 * read as NHWC and as NCHW. An accepted pair must give the image count and size its header
 * claims; every accepted set, labels below its class count. */
#include <string.h>

#include "fuzz.h"
#include "fuzz_dataset.h"

static void load(const char *path, bool nchw, const uint8_t *img, size_t ilen)
{
    zn_dataset ds;
    char err[1024] = "";
    if (!zn_npy_load(path, false, nchw, 10, &ds, err, sizeof err)) {
        zn_fuzz_check_refusal(err);
        return;
    }
    zn_npy_array a;
    long n = ds.n;
    int c = ds.c, h = ds.h, w = ds.w;
    if (img && zn_npy_parse_header(img, ilen, &a, err, sizeof err)) { /* what the folder's header claims */
        n = (long)a.shape[0];
        c = a.rank == 3 ? 1 : (int)a.shape[nchw ? 1 : 3];
        h = (int)a.shape[a.rank == 3 || nchw ? a.rank - 2 : 1];
        w = (int)a.shape[a.rank == 3 || nchw ? a.rank - 1 : 2];
    } else if (img) {
        fprintf(stderr, "accepted images whose header does not parse: %s\n", err);
        abort();
    }
    zn_fuzz_check_dataset(&ds, n, c, h, w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && memcmp(data, "PK", 2) == 0) {
        load(zn_fuzz_file("arrays.npz", data, size), false, NULL, 0);
        return 0;
    }
    const uint8_t *img, *lab;
    size_t ilen, llen;
    zn_fuzz_split(data, size, &img, &ilen, &lab, &llen);
    const char *dir = zn_fuzz_empty_dir("npy");
    zn_fuzz_file("npy/test_images.npy", img, ilen);
    zn_fuzz_file("npy/test_labels.npy", lab, llen);
    for (int nchw = 0; nchw < 2; nchw++) load(dir, nchw, img, ilen);
    return 0;
}
