/* schedule.c: see schedule.h. */
#include "runtime/schedule.h"

#include <math.h>

static double interp(const zn_schedule *s, double t)
{
    if (t <= s->t[0]) return s->v[0];
    for (int i = 1; i < s->n_knots; i++)
        if (t <= s->t[i]) {
            double f = (t - s->t[i - 1]) / (s->t[i] - s->t[i - 1]);
            return s->v[i - 1] + f * (s->v[i] - s->v[i - 1]);
        }
    return s->v[s->n_knots - 1];
}

float zn_schedule_at(const zn_schedule *s, double t, int epochs, int batch)
{
    double v;
    switch (s->kind) {
    case ZN_LR_PIECEWISE: v = interp(s, t); break;
    case ZN_LR_COSINE: {
        double warm = s->t[0];
        if (t < warm) v = s->v[0] * t / warm;
        else if (t >= epochs) v = 0;
        else v = 0.5 * s->v[0] * (1 + cos(3.14159265358979323846 * (t - warm) / (epochs - warm)));
        break;
    }
    default: v = s->v[0]; break;
    }
    return (float)(s->per_example ? v / batch : v);
}
