/* predict.h: `znet predict`: a trained model's answer for the user's own images: each PNG or JPEG
 * file (or every one in a folder, sorted) is converted to the model's input as an image folder's
 * images are (channels, size by the recipe's fit), normalised as in training, and run; the top-k
 * classes with probabilities of every head and the vote are printed, or written as JSON lines.
 * A .npy array of images of the model's size is answered image by image. */
#ifndef ZN_PREDICT_H
#define ZN_PREDICT_H

#include <stdbool.h>

#include "graph/graph.h"
#include "lang/recipe.h"
#include "runtime/train.h"

typedef struct {
    const char *weights;       /* the checkpoint (required) */
    const char *const *inputs; /* image files, folders and .npy arrays */
    int n_inputs;
    int top;                   /* classes shown per head (clipped to the class count) */
    bool json;                 /* one JSON object per image instead of text */
} zn_predict_opts;

/* Answers every image of p with g (a forward graph) and recipe r; o gives the backend, threads
 * and --data (where the data set is: its class names, and its mean and std when r gives none).
 * A file that cannot be read is named on stderr and the others are still answered. Returns a
 * process exit code: 0 when every image was answered, 1 otherwise. */
int zn_predict(const zn_graph *g, const zn_recipe *r, const zn_run_opts *o, const zn_predict_opts *p);

#endif
