/* fuzz_checkpoint.c: the checkpoint reader on any bytes. A refusal with a message is fine; a
 * crash, a sanitizer report, or an accepted file whose claimed sizes disagree with its own
 * length is a finding. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "runtime/checkpoint.h"

/* magic, version, graph hash, epoch, step, seed, n_params, n_optim; checksum after the data */
enum { HEADER_BYTES = 8 + 4 + 8 + 4 + 8 + 8 + 8 + 8, CHECKSUM_BYTES = 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zn_ckpt_meta m;
    float *params = NULL, *optim = NULL;
    char err[1024] = "";
    if (zn_ckpt_load(zn_fuzz_file("run.ckpt", data, size), &m, &params, &optim, err, sizeof err)) {
        unsigned long long floats = m.n_params + m.n_optim;
        if (HEADER_BYTES + 4 * floats + CHECKSUM_BYTES != size) {
            fprintf(stderr, "accepted a %zu-byte checkpoint claiming %llu floats\n", size, floats);
            abort();
        }
        /* touch every float: ASan checks that the arrays are as long as claimed */
        volatile float sum = 0;
        for (uint64_t i = 0; i < m.n_params; i++) sum += params[i];
        for (uint64_t i = 0; i < m.n_optim; i++) sum += optim[i];
        (void)sum;
    } else if (!err[0]) {
        fprintf(stderr, "refused a checkpoint without saying why\n");
        abort();
    }
    free(params);
    free(optim);
    return 0;
}
