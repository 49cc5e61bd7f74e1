/* plan_live.c: the live-bytes view of a plan (plan.h): at every step, the arena bytes of the
 * tensors live there, an in-place chain counted once; its peak is the least any placement could
 * take, and what is live at the peak is what a memory optimisation has to remove. */
#include "graph/plan.h"

#include <stdlib.h>

#include "graph/util.h"

size_t zn_plan_live_peak(const zn_plan *p, int *step, int *until)
{
    int n = p->n_nodes;
    int *root = zn_calloc(n, sizeof *root), *last = zn_calloc(n, sizeof *last);
    long long *delta = zn_calloc(n + 1, sizeof *delta);
    for (int i = 0; i < n; i++) {
        root[i] = p->alias[i] < 0 ? i : root[p->alias[i]];
        last[i] = p->last[i];
        if (last[root[i]] < p->last[i]) last[root[i]] = p->last[i];
    }
    for (int i = 0; i < n; i++)
        if (p->region[i] == ZN_REGION_ARENA && root[i] == i) {
            delta[p->first[i]] += (long long)p->bytes[i];
            delta[last[i] + 1] -= (long long)p->bytes[i];
        }
    long long now = 0, peak = 0;
    int at = 0;
    for (int t = 0; t < n; t++) {
        now += delta[t];
        if (now > peak) peak = now, at = t;
    }
    for (int i = 0; until && i < n; i++)
        until[i] = p->region[i] == ZN_REGION_ARENA && root[i] == i && p->first[i] <= at && last[i] >= at ? last[i] : -1;
    if (step) *step = at;
    free(delta), free(last), free(root);
    return (size_t)peak;
}
