/* fuzz_tar.c: the tar reader (gzip'd or plain) on any bytes, unpacking into an empty directory
 * made afresh for each input, with a 1 MiB limit on what it may write. Refusals need a message;
 * a crash, a sanitizer report or a write outside the directory (its sibling must stay absent)
 * is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "data/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *archive = zn_fuzz_file("data.tar.gz", data, size);
    const char *dest = zn_fuzz_empty_dir("out");
    char err[1024] = "";
    if (!zn_tar_extract(archive, dest, 1 << 20, err, sizeof err) && !err[0]) {
        fprintf(stderr, "refused an archive without saying why\n");
        abort();
    }
    struct stat st;
    if (stat(zn_fuzz_path("escaped"), &st) == 0) {
        fprintf(stderr, "an entry was written outside the destination\n");
        abort();
    }
    return 0;
}
