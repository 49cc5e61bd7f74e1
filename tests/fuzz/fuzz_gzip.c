/* fuzz_gzip.c: the IDX reader's gzip path: the input is a gzip'd image file (mutations hit its
 * header, deflate blocks, CRC and length trailer, and what follows the stream). The label file
 * is made to match the image count the input's own decompressed header claims, so an input
 * that decompresses well reaches the image data. */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "fuzz_dataset.h"

enum { MAX_LABELS = 1 << 16 };

/* The image count of the decompressed IDX header (bytes 4..7), or 1 when it cannot be read. */
static uint32_t claimed_count(const uint8_t *data, size_t size)
{
    uint8_t head[8];
    z_stream z = {.next_in = (Bytef *)data, .avail_in = (uInt)size, .next_out = head,
                  .avail_out = sizeof head};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return 1;
    while (z.avail_out > 0 && inflate(&z, Z_NO_FLUSH) == Z_OK) {}
    inflateEnd(&z);
    return z.avail_out ? 1 : (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 | head[7];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t labels[8 + MAX_LABELS] = {0, 0, 8, 1}; /* magic 2049, count, zero labels */
    uint32_t count = claimed_count(data, size);
    for (int i = 0; i < 4; i++) labels[4 + i] = (uint8_t)(count >> (24 - 8 * i));
    const char *ipath = zn_fuzz_file("images-idx3-ubyte.gz", data, size);
    const char *lpath = zn_fuzz_file("labels-idx1-ubyte", labels, 8 + (count < MAX_LABELS ? count : MAX_LABELS));
    zn_dataset ds;
    char err[1024] = "";
    if (zn_idx_load(ipath, lpath, true, &ds, err, sizeof err))
        zn_fuzz_check_dataset(&ds, count, 1, 32, 32);
    else
        zn_fuzz_check_refusal(err);
    return 0;
}
