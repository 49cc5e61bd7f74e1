/* conv_direct_kernels.h: the direct 3x3 kernels' tiles, written once for every vector width and
 * included by conv_direct.c once per instruction-set path (not a normal header). The includer
 * defines DK(name) (the instance's function names), DK_TARGET (its target attribute), DK_VEC and
 * DK_W (vector type, floats per vector), DK_TILE_CH and DK_GRAD_CH (output channels per forward
 * and weight-gradient tile: as many as its registers hold) and the vector operations dk_load,
 * dk_store, dk_zero, dk_bcast (from a float pointer), dk_fma(a, b, c) = a * b + c, dk_add and
 * dk_half (the lane sums folded into one __m256; the identity for 8 floats). */

/* Output channels [o0, o0 + oc) x pixels [p0, p0 + vecs vectors) of one image and group: c is
 * the group's input channels, xp, wt, b (or NULL) and y point at the group's first channel; oc
 * and vecs are constants after inlining, so acc stays in registers. */
DK_TARGET __attribute__((always_inline)) static inline void DK(tile)(
    int oc, int vecs, int c, int h, int w, int d, const float *xp, const float *wt, const float *b,
    float *y, int o0, int p0) {
  const int wp = w + 2 * d;
  const size_t plane = (size_t)(h + 2 * d) * wp, ohw = (size_t)h * w, wrow = (size_t)c * 9;
  int off[WIDE_VECS]; /* padded-buffer offset of each vector's first pixel at tap (0, 0) */
  for (int v = 0; v < vecs; v++) {
    int p = p0 + DK_W * v;
    off[v] = (p / w) * wp + p % w;
  }
  DK_VEC acc[DK_TILE_CH][WIDE_VECS];
  for (int k = 0; k < oc; k++)
    for (int v = 0; v < vecs; v++) acc[k][v] = dk_zero();
  const float *wo = wt + (size_t)o0 * wrow;
  for (int ci = 0; ci < c; ci++) {
    const float *xc = xp + ci * plane, *wc = wo + ci * 9;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) {
        const float *xt = xc + (i * wp + j) * d;
        DK_VEC xv[WIDE_VECS];
#pragma GCC unroll 8
        for (int v = 0; v < vecs; v++) xv[v] = dk_load(xt + off[v]);
#pragma GCC unroll 8 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          DK_VEC wv = dk_bcast(wc + k * wrow + i * 3 + j);
#pragma GCC unroll 8
          for (int v = 0; v < vecs; v++) acc[k][v] = dk_fma(wv, xv[v], acc[k][v]);
        }
      }
  }
  for (int k = 0; k < oc; k++) {
    float bk = b ? b[o0 + k] : 0.0f;
    DK_VEC bias = dk_bcast(&bk);
    float *yo = y + (o0 + k) * ohw + p0;
    for (int v = 0; v < vecs; v++) dk_store(yo + DK_W * v, dk_add(acc[k][v], bias));
  }
}

/* One group: c input channels -> o output channels, pointers as for tile. The last tile's
 * channel count must be a constant, hence one branch per count below a full tile. */
DK_TARGET static void DK(tiles)(int c, int o, int h, int w, int d, const float *xp,
                                const float *wt, const float *b, float *y) {
  const int ohw = h * w, step = DK_W * TILE_VECS;
  int o0 = 0;
  for (; o0 + DK_TILE_CH <= o; o0 += DK_TILE_CH)
    for (int p0 = 0; p0 < ohw; p0 += step)
      DK(tile)(DK_TILE_CH, TILE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
  const int rest = o - o0;
  if (rest == 1 && ohw % (DK_W * WIDE_VECS) == 0) { /* e.g. backward-data of 1 channel per group */
    for (int p0 = 0; p0 < ohw; p0 += DK_W * WIDE_VECS)
      DK(tile)(1, WIDE_VECS, c, h, w, d, xp, wt, b, y, o0, p0);
    return;
  }
#define DK_REST(k)                                                                      \
  if (rest == (k) && (k) < DK_TILE_CH)                                                  \
    for (int p0 = 0; p0 < ohw; p0 += step) DK(tile)((k) < DK_TILE_CH ? (k) : 1, TILE_VECS, c, h, \
                                                    w, d, xp, wt, b, y, o0, p0);
  DK_REST(1) DK_REST(2) DK_REST(3) DK_REST(4) DK_REST(5) DK_REST(6) DK_REST(7)
#undef DK_REST
}

/* y [o, h, w] of one image whose input xp is already padded; pointers at channel 0. */
DK_TARGET static void DK(image)(const zn_direct_shape *s, const float *xp, const float *wt,
                                const float *b, float *y) {
  const int cg = s->c / s->groups, og = s->o / s->groups;
  const size_t plane = zn_conv_direct_scratch_floats(1, s->h, s->w, s->dil),
               ohw = (size_t)s->h * s->w;
  for (int g = 0; g < s->groups; g++)
    DK(tiles)(cg, og, s->h, s->w, s->dil, xp + g * cg * plane, wt + (size_t)g * og * cg * 9,
              b ? b + g * og : NULL, y + g * og * ohw);
}

/* dw [o0 .. o0 + oc, ci, ky, 0..2] += sum over pixels of dy [o, p] * xp [ci, p + d (ky, kx)]
 * within one group: xp, dy and dw point at the group's first channel, images are s->c and s->o
 * channels apart; oc is a constant after inlining, so acc stays in registers. */
DK_TARGET __attribute__((always_inline)) static inline void DK(grad_tile)(
    int oc, const zn_direct_shape *s, int images, const float *xp, const float *dy, float *dw,
    int o0, int ci, int ky) {
  const int h = s->h, w = s->w, d = s->dil, wp = w + 2 * d, cg = s->c / s->groups;
  const size_t ohw = (size_t)h * w, plane = (size_t)(h + 2 * d) * wp;
  DK_VEC acc[DK_GRAD_CH][3];
  for (int k = 0; k < oc; k++)
    for (int kx = 0; kx < 3; kx++) acc[k][kx] = dk_zero();
  for (int im = 0; im < images; im++) {
    const float *xr = xp + ((size_t)im * s->c + ci) * plane + (size_t)ky * d * wp;
    const float *dyo = dy + ((size_t)im * s->o + o0) * ohw;
    for (int r = 0; r < h; r++, xr += wp, dyo += w)
      for (int col = 0; col < w; col += DK_W) {
        DK_VEC xv[3];
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) xv[kx] = dk_load(xr + col + kx * d);
#pragma GCC unroll 8 /* -O2 leaves these rolled and acc in memory */
        for (int k = 0; k < oc; k++) {
          DK_VEC dyv = dk_load(dyo + k * ohw + col);
          ZN_IN_REGISTER(dyv);
#pragma GCC unroll 3
          for (int kx = 0; kx < 3; kx++) acc[k][kx] = dk_fma(dyv, xv[kx], acc[k][kx]);
        }
      }
  }
  for (int k = 0; k < oc; k++) {
    float sums[4];
    _mm_storeu_ps(sums, sum4(dk_half(acc[k][0]), dk_half(acc[k][1]), dk_half(acc[k][2]),
                             _mm256_setzero_ps()));
    float *dwk = dw + ((size_t)(o0 + k) * cg + ci) * 9 + ky * 3;
    for (int kx = 0; kx < 3; kx++) dwk[kx] += sums[kx];
  }
}

/* One group, pointers as for grad_tile; the last tile's channel count a constant as in tiles. */
DK_TARGET static void DK(grad_tiles)(const zn_direct_shape *s, int images, const float *xp,
                                     const float *dy, float *dw) {
  const int c = s->c / s->groups, o = s->o / s->groups;
  int o0 = 0;
  for (; o0 + DK_GRAD_CH <= o; o0 += DK_GRAD_CH)
    for (int ci = 0; ci < c; ci++)
      for (int ky = 0; ky < 3; ky++) DK(grad_tile)(DK_GRAD_CH, s, images, xp, dy, dw, o0, ci, ky);
  const int rest = o - o0;
#define DK_REST(k)                                                                          \
  if (rest == (k) && (k) < DK_GRAD_CH)                                                      \
    for (int ci = 0; ci < c; ci++)                                                          \
      for (int ky = 0; ky < 3; ky++)                                                        \
        DK(grad_tile)((k) < DK_GRAD_CH ? (k) : 1, s, images, xp, dy, dw, o0, ci, ky);
  DK_REST(1) DK_REST(2) DK_REST(3) DK_REST(4) DK_REST(5) DK_REST(6) DK_REST(7)
#undef DK_REST
}

/* dw += the weight gradient over images padded images xp [images, c, ...], dy [images, o, h, w]. */
DK_TARGET static void DK(filter)(const zn_direct_shape *s, int images, const float *xp,
                                 const float *dy, float *dw) {
  const int cg = s->c / s->groups, og = s->o / s->groups;
  const size_t plane = zn_conv_direct_scratch_floats(1, s->h, s->w, s->dil),
               ohw = (size_t)s->h * s->w;
  for (int g = 0; g < s->groups; g++)
    DK(grad_tiles)(s, images, xp + g * cg * plane, dy + g * og * ohw, dw + (size_t)g * og * cg * 9);
}
