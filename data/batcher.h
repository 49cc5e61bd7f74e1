/* batcher.h: one epoch of batches from a data set: the epoch's order (a seeded Fisher-Yates
 * shuffle), augmentation and normalisation to float, labels as int32, prepared by a prefetch
 * thread one batch ahead of the caller into a double buffer. Every random draw comes from
 * streams derived from (recipe seed, epoch, batch index), never from thread timing, so a seed
 * and an epoch fix the batches bit for bit. */
#ifndef ZN_BATCHER_H
#define ZN_BATCHER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/augment.h"
#include "data/dataset.h"
#include "lang/recipe.h"

typedef struct {
    const zn_dataset *ds;     /* borrowed; must outlive the batcher */
    zn_augmenter aug;         /* the recipe's augmentations (training) or none (evaluation) */
    int batch;                /* images in a full batch */
    int n_batches;            /* batches in this epoch (readable by the caller) */
    uint64_t epoch_seed;      /* zn_rng_derive(recipe seed, epoch) */
    int32_t *order;           /* [ds->n] data set indices in this epoch's order */
    float *images[2];         /* [batch][c][h][w] each, normalised: the double buffer */
    int32_t *labels[2];       /* [batch] each */
    int count[2];             /* images in the batch each slot holds */
    int produced;             /* batches the prefetch thread has finished */
    int released;             /* batches the caller is done with (their slot may be reused) */
    int next;                 /* the batch the next zn_batcher_next returns */
    bool stop;                /* set by free: the thread leaves */
    pthread_t thread;
    pthread_mutex_t mu;       /* guards produced, released, stop */
    pthread_cond_t cv;
} zn_batcher;

/* Batches in an epoch of n images: n / batch when drop_last, else rounded up. */
int zn_batches_per_epoch(int n, int batch, bool drop_last);

/* Starts epoch `epoch` over ds. train: the recipe's shuffle, drop_last and augmentations;
 * otherwise (evaluation) data set order, every image (the last batch may be partial), no
 * augmentation. Normalisation is the recipe's (n_norm == ds->c) or the data set's (n_norm == 0).
 * False with a message for a bad recipe (batch < 1, channel count, augmentation that does not
 * fit the image) or a failed allocation or thread start. */
bool zn_batcher_init(zn_batcher *b, const zn_dataset *ds, const zn_recipe *recipe, bool train,
                     int epoch, char *err, size_t errlen);
/* The next batch: images [n][c][h][w] and labels [n], valid until the next call or free.
 * Returns false at the end of the epoch. */
bool zn_batcher_next(zn_batcher *b, float **images, int32_t **labels, int *n);
/* Stops the prefetch thread (also mid-epoch) and releases everything; only after a successful
 * init (a failed init has released what it took). */
void zn_batcher_free(zn_batcher *b);

#endif
