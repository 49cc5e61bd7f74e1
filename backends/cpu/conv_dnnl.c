/* conv_dnnl.c: 2-D convolution through oneDNN (the library PyTorch's CPU convolutions use).
 * One primitive per (shape, direction, thread count), built on first use and cached until
 * zn_conv2d_release; tensors stay NCHW outside, and each primitive reorders to and from the
 * blocked layouts its kernels want, inside the caller's workspace (docs/performance.md). */
#include "backends/cpu/conv_dnnl.h"

#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/threads.h"

#define ALIGN 64

/* One tensor argument: the caller's NCHW memory and, when the primitive wants another layout,
 * its own copy in the workspace with the reorder between the two. */
typedef struct conv_arg {
  int arg;                  /* DNNL_ARG_* */
  dnnl_memory_t user;       /* the caller's tensor */
  dnnl_memory_t inner;      /* NULL: the primitive reads or writes user directly */
  dnnl_primitive_t reorder; /* user -> inner for inputs, inner -> user for the output */
  size_t at;                /* inner's offset in the workspace */
} conv_arg;

typedef struct conv_prim {
  zn_conv_params p;
  zn_conv_dir dir;
  int threads;
  dnnl_primitive_t prim;    /* NULL when oneDNN has no implementation for the shape */
  conv_arg t[3];            /* the direction's two inputs, then its output */
  dnnl_memory_t bias;       /* [o]: bias (forward) or bias gradient (backward-filter) */
  dnnl_memory_t scratch;    /* the primitive's scratchpad, NULL when it needs none */
  size_t bias_at, scratch_at, bytes; /* workspace offsets and size, ALIGN slack included */
  struct conv_prim *next;
} conv_prim;

static struct {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  conv_prim *prims;
} lib;

/* oneDNN calls that fail after the primitive was built are internal errors: name and stop. */
static void check(dnnl_status_t st, const char *call) {
  if (st == dnnl_success) return;
  fprintf(stderr, "znet: oneDNN %s failed (status %d)\n", call, (int)st);
  abort();
}

static void desc_of(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
  check(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag), "memory_desc_init_by_tag");
}

static size_t reserve(size_t *bytes, size_t size) {
  size_t at = *bytes;
  *bytes += (size + ALIGN - 1) / ALIGN * ALIGN;
  return at;
}

/* Sets up t for the caller's layout `user` and the primitive's `want`; false on failure. */
static bool arg_init(conv_arg *t, int arg, const dnnl_memory_desc_t *user,
                     const dnnl_memory_desc_t *want, bool output, size_t *bytes) {
  t->arg = arg;
  if (dnnl_memory_create(&t->user, user, lib.engine, DNNL_MEMORY_NONE) != dnnl_success)
    return false;
  if (dnnl_memory_desc_equal(user, want)) return true;
  if (dnnl_memory_create(&t->inner, want, lib.engine, DNNL_MEMORY_NONE) != dnnl_success)
    return false;
  t->at = reserve(bytes, dnnl_memory_desc_get_size(want));
  dnnl_primitive_desc_t rpd;
  if (dnnl_reorder_primitive_desc_create(&rpd, output ? want : user, lib.engine,
                                         output ? user : want, lib.engine, NULL) != dnnl_success)
    return false;
  dnnl_status_t st = dnnl_primitive_create(&t->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  return st == dnnl_success;
}

static void arg_free(conv_arg *t) {
  if (t->reorder) dnnl_primitive_destroy(t->reorder);
  if (t->inner) dnnl_memory_destroy(t->inner);
  if (t->user) dnnl_memory_destroy(t->user);
}

static void prim_free(conv_prim *c) {
  for (int i = 0; i < 3; i++) arg_free(&c->t[i]);
  if (c->bias) dnnl_memory_destroy(c->bias);
  if (c->scratch) dnnl_memory_destroy(c->scratch);
  if (c->prim) dnnl_primitive_destroy(c->prim);
  free(c);
}

/* The operation descriptor of direction dir, every layout but the bias left to oneDNN. */
static dnnl_status_t op_desc(dnnl_convolution_desc_t *d, zn_conv_dir dir, const zn_conv_params *p) {
  const int64_t oh = zn_conv_out_h(p), ow = zn_conv_out_w(p), g = p->groups;
  const dnnl_dims_t xd = {p->n, p->c, p->h, p->w}, yd = {p->n, p->o, oh, ow}, bd = {p->o};
  const dnnl_dims_t wd = {g, p->o / g, p->c / g, p->kh, p->kw}, wd1 = {p->o, p->c, p->kh, p->kw};
  dnnl_memory_desc_t x, y, w, b;
  desc_of(&x, 4, xd, dnnl_format_tag_any);
  desc_of(&y, 4, yd, dnnl_format_tag_any);
  desc_of(&w, g > 1 ? 5 : 4, g > 1 ? wd : wd1, dnnl_format_tag_any);
  desc_of(&b, 1, bd, dnnl_a);
  /* oneDNN's right padding makes its output extent match ours (floor mode). */
  const dnnl_dims_t stride = {p->stride_h, p->stride_w}, dil = {p->dil_h - 1, p->dil_w - 1};
  const dnnl_dims_t pl = {p->pad_h, p->pad_w};
  const dnnl_dims_t pr = {(oh - 1) * p->stride_h + (p->kh - 1) * p->dil_h + 1 - p->h - p->pad_h,
                         (ow - 1) * p->stride_w + (p->kw - 1) * p->dil_w + 1 - p->w - p->pad_w};
  const dnnl_alg_kind_t alg = dnnl_convolution_direct;
  switch (dir) {
  case ZN_CONV_FWD:
    return dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_training, alg, &x, &w, &b,
                                                      &y, stride, dil, pl, pr);
  case ZN_CONV_BWD_DATA:
    return dnnl_dilated_convolution_backward_data_desc_init(d, alg, &x, &w, &y, stride, dil, pl,
                                                            pr);
  default:
    return dnnl_dilated_convolution_backward_weights_desc_init(d, alg, &x, &w, &b, &y, stride,
                                                               dil, pl, pr);
  }
}

/* The primitive descriptor of dir (backward ones need the forward's as a hint); NULL if none. */
static dnnl_primitive_desc_t prim_desc(zn_conv_dir dir, const zn_conv_params *p) {
  dnnl_primitive_attr_t attr;
  if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
  dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  dnnl_primitive_desc_t hint = NULL, pd = NULL;
  dnnl_convolution_desc_t d;
  if (dir != ZN_CONV_FWD) hint = prim_desc(ZN_CONV_FWD, p);
  if ((dir == ZN_CONV_FWD || hint) && op_desc(&d, dir, p) == dnnl_success &&
      dnnl_primitive_desc_create(&pd, &d, attr, lib.engine, hint) != dnnl_success)
    pd = NULL;
  if (hint) dnnl_primitive_desc_destroy(hint);
  dnnl_primitive_attr_destroy(attr);
  return pd;
}

/* Which tensors each direction reads (two) and writes (one), in the entry's t[] order. */
static const int DIR_ARGS[ZN_CONV_DIRS][3] = {
    [ZN_CONV_FWD] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
    [ZN_CONV_BWD_DATA] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
    [ZN_CONV_BWD_FILTER] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
};

/* The caller's layout of argument arg: NCHW activations, OIHW (GOIHW) weights. */
static void user_desc(dnnl_memory_desc_t *md, int arg, const zn_conv_params *p) {
  const int64_t g = p->groups;
  const dnnl_dims_t xd = {p->n, p->c, p->h, p->w};
  const dnnl_dims_t yd = {p->n, p->o, zn_conv_out_h(p), zn_conv_out_w(p)};
  const dnnl_dims_t wd = {g, p->o / g, p->c / g, p->kh, p->kw}, wd1 = {p->o, p->c, p->kh, p->kw};
  if (arg == DNNL_ARG_SRC || arg == DNNL_ARG_DIFF_SRC)
    desc_of(md, 4, xd, dnnl_nchw);
  else if (arg == DNNL_ARG_DST || arg == DNNL_ARG_DIFF_DST)
    desc_of(md, 4, yd, dnnl_nchw);
  else if (g > 1)
    desc_of(md, 5, wd, dnnl_goihw);
  else
    desc_of(md, 4, wd1, dnnl_oihw);
}

static bool prim_build(conv_prim *c) {
  dnnl_primitive_desc_t pd = prim_desc(c->dir, &c->p);
  if (!pd) return false;
  bool ok = dnnl_primitive_create(&c->prim, pd) == dnnl_success;
  for (int i = 0; ok && i < 3; i++) {
    int arg = DIR_ARGS[c->dir][i];
    dnnl_memory_desc_t user;
    user_desc(&user, arg, &c->p);
    ok = arg_init(&c->t[i], arg, &user, dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg),
                  i == 2, &c->bytes);
  }
  const dnnl_memory_desc_t *bias = dnnl_primitive_desc_query_md(
      pd, dnnl_query_exec_arg_md, c->dir == ZN_CONV_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS);
  const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (ok && c->dir != ZN_CONV_BWD_DATA) {
    c->bias_at = reserve(&c->bytes, sizeof(float) * (size_t)c->p.o);
    ok = dnnl_memory_create(&c->bias, bias, lib.engine, DNNL_MEMORY_NONE) == dnnl_success;
  }
  if (ok && scratch && dnnl_memory_desc_get_size(scratch) > 0) {
    c->scratch_at = reserve(&c->bytes, dnnl_memory_desc_get_size(scratch));
    ok = dnnl_memory_create(&c->scratch, scratch, lib.engine, DNNL_MEMORY_NONE) == dnnl_success;
  }
  c->bytes += ALIGN; /* the workspace itself may be unaligned */
  dnnl_primitive_desc_destroy(pd);
  return ok;
}

static bool same_params(const zn_conv_params *a, const zn_conv_params *b) {
  return memcmp(a, b, sizeof *a) == 0; /* all ints, no padding */
}

/* The cached entry of (p, dir) at the pool's thread count, built on first use. */
static conv_prim *prim_of(const zn_conv_params *p, zn_conv_dir dir) {
  int threads = zn_cpu_threads_count();
  for (conv_prim *c = lib.prims; c; c = c->next)
    if (c->dir == dir && c->threads == threads && same_params(&c->p, p)) return c;
  if (!lib.engine) {
    check(dnnl_engine_create(&lib.engine, dnnl_cpu, 0), "engine_create");
    check(dnnl_stream_create(&lib.stream, lib.engine, dnnl_stream_default_flags), "stream_create");
  }
  conv_prim *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->p = *p;
  c->dir = dir;
  c->threads = threads;
  if (!prim_build(c)) { /* keep the entry, without a primitive, so the shape is not retried */
    prim_free(c);
    c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->p = *p, c->dir = dir, c->threads = threads;
  }
  c->next = lib.prims;
  lib.prims = c;
  return c;
}

bool zn_conv_dnnl_workspace(const zn_conv_params *p, zn_conv_dir dir, size_t *bytes) {
  conv_prim *c = prim_of(p, dir);
  if (!c || !c->prim) return false;
  *bytes = c->bytes;
  return true;
}

static void set_handle(dnnl_memory_t m, const void *ptr) {
  check(dnnl_memory_set_data_handle(m, (void *)ptr), "memory_set_data_handle");
}

static void run_reorder(const conv_arg *t, bool output) {
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, output ? t->inner : t->user},
                             {DNNL_ARG_TO, output ? t->user : t->inner}};
  check(dnnl_primitive_execute(t->reorder, lib.stream, 2, args), "reorder execute");
}

bool zn_conv_dnnl_run(const zn_conv_params *p, zn_conv_dir dir, const float *in0,
                      const float *in1, float *out, float *bias, void *workspace) {
  conv_prim *c = prim_of(p, dir);
  if (!c || !c->prim) return false;
  unsigned char *ws = (unsigned char *)(((uintptr_t)workspace + ALIGN - 1) / ALIGN * ALIGN);
  const void *user[3] = {in0, in1, out};
  dnnl_exec_arg_t args[5];
  int nargs = 0;
  for (int i = 0; i < 3; i++) {
    const conv_arg *t = &c->t[i];
    set_handle(t->user, user[i]);
    if (t->inner) set_handle(t->inner, ws + t->at);
    args[nargs++] = (dnnl_exec_arg_t){t->arg, t->inner ? t->inner : t->user};
    if (i < 2 && t->inner) run_reorder(t, false);
  }
  if (c->bias) {
    /* no bias: a zero one for the forward, a discarded gradient for backward-filter */
    float *b = bias ? bias : (float *)(ws + c->bias_at);
    if (!bias && dir == ZN_CONV_FWD) memset(b, 0, sizeof(float) * (size_t)p->o);
    set_handle(c->bias, b);
    args[nargs++] = (dnnl_exec_arg_t){dir == ZN_CONV_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS,
                                      c->bias};
  }
  if (c->scratch) {
    set_handle(c->scratch, ws + c->scratch_at);
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, c->scratch};
  }
  check(dnnl_primitive_execute(c->prim, lib.stream, nargs, args), "convolution execute");
  if (c->t[2].inner) run_reorder(&c->t[2], true);
  check(dnnl_stream_wait(lib.stream), "stream_wait");
  return true;
}

void zn_conv2d_release(void) {
  while (lib.prims) {
    conv_prim *c = lib.prims;
    lib.prims = c->next;
    prim_free(c);
  }
  if (lib.stream) dnnl_stream_destroy(lib.stream);
  if (lib.engine) dnnl_engine_destroy(lib.engine);
  lib.stream = NULL;
  lib.engine = NULL;
}
