/* fuzz_dataset.h: the check every data-reader target makes of a data set its reader accepted:
 * the sizes it was asked for, and every label below the class count. */
#ifndef ZN_FUZZ_DATASET_H
#define ZN_FUZZ_DATASET_H

#include <stdio.h>
#include <stdlib.h>

#include "data/dataset.h"

/* Aborts (a finding) when ds is not n images of c x h x w with valid labels; frees ds. */
static inline void zn_fuzz_check_dataset(zn_dataset *ds, long n, int c, int h, int w)
{
    if (ds->n != n || ds->c != c || ds->h != h || ds->w != w) {
        fprintf(stderr, "accepted %d images of %dx%dx%d; the file holds %ld of %dx%dx%d\n", ds->n,
                ds->c, ds->h, ds->w, n, c, h, w);
        abort();
    }
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] >= ds->n_classes) {
            fprintf(stderr, "accepted label %d of image %d (%d classes)\n", ds->labels[i], i, ds->n_classes);
            abort();
        }
    zn_dataset_free(ds);
}

/* Aborts when a reader refused its input without a message. */
static inline void zn_fuzz_check_refusal(const char *err)
{
    if (!err[0]) {
        fprintf(stderr, "refused the input without saying why\n");
        abort();
    }
}

#endif
