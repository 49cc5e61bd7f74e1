/* recipe_eval.h: evaluation of the train section into a zn_recipe (recipe_eval.c). */
#ifndef ZN_RECIPE_EVAL_H
#define ZN_RECIPE_EVAL_H

#include "eval.h"
#include "lang/recipe.h"

typedef struct {
    const char *key;    /* a train setting, e.g. "epochs" */
    const zn_ast *expr; /* its new value (parsed from the command line) */
} zn_train_override;

/* Starts from the default recipe, applies the section's settings (model parameters are
 * visible), then the overrides. Errors are reported through ev->diag. */
void zn_recipe_eval(zn_eval *ev, zn_scope *model_params, const zn_ast *train,
                   const zn_train_override *ovr, int n_ovr, zn_recipe *r);

#endif
