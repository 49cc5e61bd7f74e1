/* im2col.c: zn_im2col and its adjoint zn_col2im share one walk over (channel, tap, image,
 * output row); each output row splits into a padding prefix, a valid run (a plain copy or add
 * loop when the stride is 1) and a padding suffix, so no per-pixel bounds test remains. The
 * fold zeroes each image's channel plane just before its first tap adds to it, while the plane
 * is about to be in cache, instead of a separate pass over the whole chunk. */
#include "backends/cpu/im2col.h"

#include <string.h>

/* Output positions q in [0, out) whose input q * stride + offset lies in [0, in): [*lo, *hi). */
static void valid_run(int out, int in, int stride, int offset, int *lo, int *hi) {
  int l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int h = offset >= in ? 0 : (in - offset + stride - 1) / stride;
  if (h > out) h = out;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

/* Padding runs are 1 or 2 floats and 4x4 images have 4-float rows: for those an inline loop
 * beats a libc call (4x4 images, 128 channels: im2col 3.5-6.5 -> 1.8-3.2 ms); memcpy wins on
 * longer runs. */
static void fill_zero(float *a, int n) {
  for (int k = 0; k < n; k++) a[k] = 0.0f;
}

static void copy_run(float *out, const float *in, int n) {
  if (n > 8)
    memcpy(out, in, sizeof(float) * n);
  else
    for (int k = 0; k < n; k++) out[k] = in[k];
}

/* to_col: col = unfold(x); otherwise x = fold(col) over group's channels. */
static void im2col_walk(const zn_conv_params *p, float *x, int images, int group, float *col,
                        int to_col) {
  const int oh = zn_conv_out_h(p), ow = zn_conv_out_w(p);
  const int cg = p->c / p->groups, sw = p->stride_w;
  const size_t hw = (size_t)p->h * p->w, image = (size_t)p->c * hw;
  float *row = col;
  for (int c = 0; c < cg; c++)
    for (int i = 0; i < p->kh; i++)
      for (int j = 0; j < p->kw; j++) {
        const int xoff = j * p->dil_w - p->pad_w;
        int lo, hi;
        valid_run(ow, p->w, sw, xoff, &lo, &hi);
        for (int m = 0; m < images; m++) {
          float *plane = x + m * image + (size_t)(group * cg + c) * hw;
          if (!to_col && i == 0 && j == 0) memset(plane, 0, sizeof(float) * hw);
          for (int oy = 0; oy < oh; oy++, row += ow) {
            const int iy = oy * p->stride_h - p->pad_h + i * p->dil_h;
            if (iy < 0 || iy >= p->h) {
              if (to_col) fill_zero(row, ow);
              continue;
            }
            /* in[k * sw] pairs with out[k], k in [0, run): the valid part of this row. */
            float *in = plane + (size_t)iy * p->w + (lo * sw + xoff), *out = row + lo;
            const int run = hi - lo;
            if (to_col) {
              fill_zero(row, lo);
              if (sw == 1)
                copy_run(out, in, run);
              else
                for (int k = 0; k < run; k++) out[k] = in[k * sw];
              fill_zero(row + hi, ow - hi);
            } else if (sw == 1) {
              for (int k = 0; k < run; k++) in[k] += out[k];
            } else {
              for (int k = 0; k < run; k++) in[k * sw] += out[k];
            }
          }
        }
      }
}

void zn_im2col(const zn_conv_params *p, const float *x, int images, int group, float *col) {
  im2col_walk(p, (float *)x, images, group, col, 1);  /* to_col only reads x */
}

void zn_col2im(const zn_conv_params *p, const float *col, int images, int group, float *x) {
  im2col_walk(p, x, images, group, (float *)col, 0);  /* folding only reads col */
}
