/* batcher.c: see batcher.h. The prefetch thread fills slot k % 2 with batch k once the caller
 * has released batch k - 2, which held that slot; the caller releases a batch by asking for the
 * next one. Each batch's augmentation draws from its own stream, so order of work cannot
 * change the bytes. */
#include "data/batcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SHUFFLE_STREAM 0 /* batch k augments from stream k + 1 */

int zn_batches_per_epoch(int n, int batch, bool drop_last)
{
    return drop_last ? n / batch : (n + batch - 1) / batch;
}

static void shuffle(int32_t *order, int n, uint64_t seed)
{
    zn_rng rng;
    zn_rng_init(&rng, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)zn_rng_below(&rng, (uint32_t)i + 1);
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void prepare(zn_batcher *b, int k)
{
    int slot = k % 2, first = k * b->batch;
    int count = b->ds->n - first < b->batch ? b->ds->n - first : b->batch;
    const int32_t *idx = b->order + first;
    zn_rng rng;
    zn_rng_init(&rng, zn_rng_derive(b->epoch_seed, (uint64_t)k + 1));
    zn_augmenter_apply(&b->aug, b->ds, idx, count, &rng, b->images[slot]);
    for (int i = 0; i < count; i++) b->labels[slot][i] = b->ds->labels[idx[i]];
    b->count[slot] = count;
}

static void *prefetch(void *arg)
{
    zn_batcher *b = arg;
    for (int k = 0; k < b->n_batches; k++) {
        pthread_mutex_lock(&b->mu);
        while (!b->stop && k >= b->released + 2) pthread_cond_wait(&b->cv, &b->mu);
        bool stop = b->stop;
        pthread_mutex_unlock(&b->mu);
        if (stop) break;
        prepare(b, k);
        pthread_mutex_lock(&b->mu);
        b->produced = k + 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
    return NULL;
}

static bool init_buffers(zn_batcher *b, int n, size_t image_floats, char *err, size_t errlen)
{
    b->order = malloc((size_t)n * sizeof *b->order);
    bool ok = b->order != NULL;
    for (int s = 0; s < 2; s++) {
        b->images[s] = malloc((size_t)b->batch * image_floats * sizeof(float));
        b->labels[s] = malloc((size_t)b->batch * sizeof(int32_t));
        ok = ok && b->images[s] && b->labels[s];
    }
    if (!ok) return zn_dataset_fail(err, errlen, "malloc of batch buffers (%d images): %s",
                                    b->batch, strerror(ENOMEM));
    for (int i = 0; i < n; i++) b->order[i] = i;
    return true;
}

static void free_buffers(zn_batcher *b)
{
    zn_augmenter_free(&b->aug);
    free(b->order);
    for (int s = 0; s < 2; s++) {
        free(b->images[s]);
        free(b->labels[s]);
    }
}

bool zn_batcher_init(zn_batcher *b, const zn_dataset *ds, const zn_recipe *recipe, bool train,
                     int epoch, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (recipe->batch < 1)
        return zn_dataset_fail(err, errlen, "batch size %d is not positive", recipe->batch);
    if (recipe->n_norm != 0 && recipe->n_norm != ds->c)
        return zn_dataset_fail(err, errlen, "the recipe normalises %d channels but the data has "
                               "%d", recipe->n_norm, ds->c);
    const float *mean = recipe->n_norm ? recipe->mean : ds->mean;
    const float *std = recipe->n_norm ? recipe->std : ds->std;
    if (!zn_augmenter_init(&b->aug, ds->c, ds->h, ds->w, mean, std, recipe->augment,
                           train ? recipe->n_augment : 0, err, errlen))
        return false;
    b->ds = ds;
    b->batch = recipe->batch;
    b->n_batches = zn_batches_per_epoch(ds->n, b->batch, train && recipe->drop_last);
    b->epoch_seed = zn_rng_derive(recipe->seed, (uint64_t)epoch);
    if (!init_buffers(b, ds->n, (size_t)ds->c * ds->h * ds->w, err, errlen)) {
        free_buffers(b);
        return false;
    }
    if (train && recipe->shuffle)
        shuffle(b->order, ds->n, zn_rng_derive(b->epoch_seed, SHUFFLE_STREAM));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    int rc = pthread_create(&b->thread, NULL, prefetch, b);
    if (rc != 0) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        free_buffers(b);
        return zn_dataset_fail(err, errlen, "pthread_create of the prefetch thread: %s",
                               strerror(rc));
    }
    return true;
}

bool zn_batcher_next(zn_batcher *b, float **images, int32_t **labels, int *n)
{
    pthread_mutex_lock(&b->mu);
    b->released = b->next; /* the caller is done with the batch the last call returned */
    pthread_cond_broadcast(&b->cv);
    if (b->next >= b->n_batches) {
        pthread_mutex_unlock(&b->mu);
        return false;
    }
    while (b->produced <= b->next) pthread_cond_wait(&b->cv, &b->mu);
    int slot = b->next % 2;
    b->next++;
    pthread_mutex_unlock(&b->mu);
    *images = b->images[slot];
    *labels = b->labels[slot];
    *n = b->count[slot];
    return true;
}

void zn_batcher_free(zn_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free_buffers(b);
    memset(b, 0, sizeof *b);
}
