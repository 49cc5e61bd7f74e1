/* recipe.h: the training recipe of a model file's `train { }` section, as typed values.
 * lang/ fills it (and checks every field); the training loop reads it. Defaults are those of
 * Page's DavidNet recipe so a model without a train section still trains sensibly. */
#ifndef ZN_RECIPE_H
#define ZN_RECIPE_H

#include <stdbool.h>
#include <stddef.h>

#define ZN_MAX_KNOTS 16
#define ZN_MAX_AUGMENT 8

typedef enum { ZN_OPTIM_SGD, ZN_OPTIM_ADAM } zn_optim_kind;
typedef enum { ZN_LR_PIECEWISE, ZN_LR_CONSTANT, ZN_LR_COSINE } zn_lr_kind;
typedef enum { ZN_AUG_PAD_CROP, ZN_AUG_FLIP, ZN_AUG_CUTOUT } zn_aug_kind;
typedef enum { ZN_PAD_REFLECT, ZN_PAD_ZERO } zn_pad_mode;
/* how an image folder's images meet the model's input size: stretched, or the shorter side
 * scaled to fit and the centre taken */
typedef enum { ZN_FIT_RESIZE, ZN_FIT_CROP } zn_image_fit;

typedef struct {
    zn_optim_kind kind;
    float momentum;     /* sgd */
    bool nesterov;      /* sgd */
    float weight_decay; /* per example: applied as weight_decay * batch with a summed loss */
    float beta1, beta2, eps; /* adam */
} zn_optimizer_cfg;

/* A schedule over epochs (fractional: t = step / steps_per_epoch). */
typedef struct {
    zn_lr_kind kind;
    int n_knots;
    float t[ZN_MAX_KNOTS];  /* piecewise: epochs, increasing */
    float v[ZN_MAX_KNOTS];  /* piecewise: values at t; constant: v[0]; cosine: v[0] peak */
    bool per_example;       /* value is divided by the batch size (the DavidNet convention) */
} zn_schedule;

typedef struct {
    zn_aug_kind kind;
    int size;          /* pad_crop: padding; cutout: square side */
    zn_pad_mode pad;   /* pad_crop */
    float p;           /* flip probability */
} zn_augment;

typedef struct {
    char data[64];     /* data set name: "cifar10", "fashion_mnist", "folder", "npy" */
    char data_path[512]; /* folder(path): its root ("" = --data or $ZNET_DATA) */
    zn_image_fit data_fit; /* folder(size = ...) */
    struct {           /* data = npy(path, layout, classes) */
        char path[512];  /* the folder or .npz ("": --data or $ZNET_DATA gives it) */
        bool nchw;       /* layout = "nchw" (else "nhwc") */
        int classes;
    } npy;
    int batch;
    int epochs;
    bool drop_last;
    bool shuffle;
    unsigned long long seed;
    zn_optimizer_cfg optimizer;
    zn_schedule lr;
    bool has_momentum_schedule; /* the original experiment's momentum schedule */
    zn_schedule momentum;
    zn_augment augment[ZN_MAX_AUGMENT];
    int n_augment;
    float mean[3], std[3]; /* per-channel normalisation on the 0-255 scale */
    int n_norm;            /* 0: the data set's own defaults */
    size_t memory_budget;  /* bytes a training step may take (0: no budget; graph/budget.h) */
} zn_recipe;

/* Fills r with Page's DavidNet recipe (batch 512, 24 epochs, Nesterov SGD 0.9, wd 5e-4,
 * lr piecewise [0,5,24] -> [0,0.4,0] per example, pad-crop 4 + flip + cutout 8, seed 0). */
void zn_recipe_default(zn_recipe *r);

#endif
