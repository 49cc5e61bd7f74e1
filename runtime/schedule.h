/* schedule.h: learning-rate and momentum schedules over fractional epochs (t = step / steps per
 * epoch): piecewise linear (numpy.interp, constant beyond the ends), constant, and cosine with a
 * linear warm-up. */
#ifndef ZN_SCHEDULE_H
#define ZN_SCHEDULE_H

#include "lang/recipe.h"

/* The schedule's value at epoch t of a run of `epochs`; per_example divides by batch. */
float zn_schedule_at(const zn_schedule *s, double t, int epochs, int batch);

#endif
