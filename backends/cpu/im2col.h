/* im2col.h: unfolding a chunk of NCHW images into the column matrix a convolution's GEMM reads,
 * and folding a column matrix back (the adjoint, used by backward-data). */
#ifndef ZN_CPU_IM2COL_H
#define ZN_CPU_IM2COL_H

#include "backends/cpu/conv.h"

/* col [cg * kh * kw, images * oh * ow]: row (c, i, j) holds, for every image of the chunk and
 * output pixel, input channel group * cg + c at kernel tap (i, j), or 0 in the padding.
 * x points at the chunk's first image (full c channels); cg = p->c / p->groups. */
void zn_im2col(const zn_conv_params *p, const float *x, int images, int group, float *col);
/* x = fold(col): the transpose of zn_im2col, overwriting group's channels of x (a pixel no tap
 * reaches gets 0). */
void zn_col2im(const zn_conv_params *p, const float *col, int images, int group, float *x);

#endif
