/* fuzz_idx.c: the IDX reader on a pair of plain files (images, labels) cut from one input (see
 * zn_fuzz_split), read as they are and centred in a 32x32 frame. An accepted pair must give the
 * image count and size its header claims. */
#include "fuzz.h"
#include "fuzz_dataset.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *img, *lab;
    size_t ilen, llen;
    zn_fuzz_split(data, size, &img, &ilen, &lab, &llen);
    const char *ipath = zn_fuzz_file("images-idx3-ubyte", img, ilen);
    const char *lpath = zn_fuzz_file("labels-idx1-ubyte", lab, llen);
    for (int pad = 0; pad < 2; pad++) {
        zn_dataset ds;
        char err[1024] = "";
        if (zn_idx_load(ipath, lpath, pad, &ds, err, sizeof err))
            /* accepted, so the header is there: count, rows, columns after the magic */
            zn_fuzz_check_dataset(&ds, be32(img + 4), 1, pad ? 32 : (int)be32(img + 8),
                                  pad ? 32 : (int)be32(img + 12));
        else
            zn_fuzz_check_refusal(err);
    }
    return 0;
}
