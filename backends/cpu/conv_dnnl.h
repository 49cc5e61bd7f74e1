/* conv_dnnl.h: the oneDNN convolution path of conv.c (conv_dnnl.c): cached primitives per shape
 * and direction that read and write the same NCHW tensors as the im2col path. */
#ifndef ZN_CPU_CONV_DNNL_H
#define ZN_CPU_CONV_DNNL_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/cpu/conv.h"

typedef enum { ZN_CONV_FWD, ZN_CONV_BWD_DATA, ZN_CONV_BWD_FILTER, ZN_CONV_DIRS } zn_conv_dir;

/* Workspace bytes of direction dir for p; false when oneDNN has no primitive for it. */
bool zn_conv_dnnl_workspace(const zn_conv_params *p, zn_conv_dir dir, size_t *bytes);
/* Runs direction dir: forward (x, w) -> y with bias b; backward-data (dy, w) -> dx;
 * backward-filter (x, dy) -> dw with db into bias. bias may be NULL (none, or not wanted).
 * false when oneDNN has no primitive for p (nothing written). */
bool zn_conv_dnnl_run(const zn_conv_params *p, zn_conv_dir dir, const float *in0,
                      const float *in1, float *out, float *bias, void *workspace);

#endif
