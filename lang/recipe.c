/* recipe.c: the default training recipe (Page's DavidNet recipe, ../docs/training.md). */
#include "lang/recipe.h"

#include <string.h>

void zn_recipe_default(zn_recipe *r)
{
    memset(r, 0, sizeof *r);
    strcpy(r->data, "cifar10");
    r->batch = 512;
    r->epochs = 24;
    r->drop_last = true;
    r->shuffle = true;
    r->seed = 0;
    r->optimizer = (zn_optimizer_cfg){.kind = ZN_OPTIM_SGD, .momentum = 0.9f, .nesterov = true,
                                      .weight_decay = 5e-4f, .beta1 = 0.9f, .beta2 = 0.999f,
                                      .eps = 1e-8f};
    r->lr = (zn_schedule){.kind = ZN_LR_PIECEWISE, .n_knots = 3, .t = {0, 5, 24},
                          .v = {0, 0.4f, 0}, .per_example = true};
    r->augment[0] = (zn_augment){.kind = ZN_AUG_PAD_CROP, .size = 4, .pad = ZN_PAD_REFLECT};
    r->augment[1] = (zn_augment){.kind = ZN_AUG_FLIP, .p = 0.5f};
    r->augment[2] = (zn_augment){.kind = ZN_AUG_CUTOUT, .size = 8};
    r->n_augment = 3;
}
