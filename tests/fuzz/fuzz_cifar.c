/* fuzz_cifar.c: the CIFAR-10 binary reader on any bytes, as one batch file. A file it accepts
 * must hold exactly size / 3,073 images with labels below its class count. */
#include "fuzz.h"
#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = zn_fuzz_file("data_batch_1.bin", data, size);
    zn_dataset ds;
    char err[1024] = "";
    if (zn_cifar10_load_files(&path, 1, &ds, err, sizeof err))
        zn_fuzz_check_dataset(&ds, (long)(size / ZN_CIFAR10_RECORD), 3, 32, 32);
    else
        zn_fuzz_check_refusal(err);
    return 0;
}
