/* cuda_backend.h: what the CUDA backend's files share (internal to backends/cuda): the backend's
 * state, the per-node call every op runner receives, the runner tables (cuda_forward.c,
 * cuda_backward.c; convolution in cuda_conv.c), and the checked calls: every CUDA, cuDNN and
 * cuBLAS call goes through ZN_RT / ZN_DNN / ZN_BLAS, whose failure names the call, the status
 * text and the node (its .znet name and place) in last_error. */
#ifndef ZN_CUDA_BACKEND_H
#define ZN_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_algo_file.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/k_extra.h"
#include "backends/node_args.h"
#include "graph/util.h"

/* Scratch a convolution algorithm may take at most (the plan's workspace holds the largest). */
#define ZN_CUDA_CONV_BUDGET ((size_t)512 << 20)
/* fp16 gradients are multiplied by this before the cast to half and divided after (per-op loss
 * scaling, docs/cuda.md); bf16 has float32's range and needs none. */
#define ZN_CUDA_FP16_LOSS_SCALE 1024.0f

/* One INPUT's staging: the runtime's batch goes to pinned host memory, then (copy stream) to a
 * device buffer while the previous step computes, then (compute stream, at the next compute) into
 * the input's arena bytes, which the plan reuses within a step. */
typedef struct {
    int node;
    size_t offset, bytes;  /* the input's place in the arena */
    size_t pending;        /* bytes staged on the device, not yet in the arena (0: none) */
    bool fed;              /* host holds the bytes last fed */
    unsigned char *host, *dev;
    cudaEvent_t copied;    /* the host-to-device copy of the staged bytes finished */
    cudaEvent_t consumed;  /* the staged bytes were moved into the arena */
} zn_cuda_input;

/* The algorithm chosen for one shape: from the cache file or by the heuristics when the plan
 * asks for workspace, then by timing in prepare, within the workspace the plan gave. */
typedef struct {
    zn_cuda_conv_key key;
    int algo;              /* a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t; -1: none */
    cudnnMathType_t math;
    size_t workspace;      /* the algorithm's scratch bytes */
    bool timed;
    bool from_file;        /* read from the algorithm cache file, checked with cuDNN */
    char why[1024];        /* algo -1: why none */
} zn_cuda_conv_algo;

/* One compute range (first..last of a graph under a plan, training or not) replayed as a CUDA
 * graph (cuda_graph.c). */
typedef struct {
    const zn_graph *g;
    const zn_plan *p;
    int first, last;
    bool training;
    int calls;             /* calls so far: the first runs eagerly (warm-up), the second captures */
    bool eager;            /* not capturable: always run eagerly */
    bool labels;           /* the range holds a label check (XENT, XENT_BWD) */
    cudaGraphExec_t exec;  /* NULL until captured */
} zn_cuda_replay;

#define ZN_CUDA_REPLAYS 8 /* ranges kept (a session uses 2 or 3); more run eagerly */
/* cuBLAS's own scratch, allocated once, so a product captured into a graph allocates none */
#define ZN_CUDA_BLAS_WORKSPACE ((size_t)32 << 20)

typedef struct {
    zn_backend base; /* first, so a zn_backend * is a zn_cuda * */
    zn_backend_opts opts;
    int device;
    cudaStream_t stream;      /* every kernel and library call */
    cudaStream_t copy_stream; /* input uploads */
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    /* descriptors set before each cuDNN call (host-side structs: setting one is cheap) */
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t convd;
    cudnnPoolingDescriptor_t poold;
    /* alloc: one device allocation holds every plan region and the workspace */
    unsigned char *block;
    unsigned char *mem[ZN_REGION_COUNT];
    size_t bytes[ZN_REGION_COUNT];
    unsigned char *workspace;
    size_t workspace_bytes;
    /* prepare: input staging and the status words kernels report through, in one pinned and
     * one device allocation */
    zn_cuda_input *inputs;
    int n_inputs;
    unsigned char *pinned, *staging;
    int *bad_row, *bad_row_host;   /* per node: an XENT's label check (0: fine, else 1 + row) */
    unsigned long long *nonfinite, *nonfinite_host; /* the --check-numerics word */
    int n_status;
    bool labels_pending;  /* label checks were copied back but not looked at yet */
    const zn_graph *graph; /* of the last prepare or compute: names nodes in late messages */
    /* the conv algorithm cache, and its file (ZNET_CUDNN_CACHE) for the GPU tagged device_tag */
    zn_cuda_conv_algo *algos;
    int n_algos, cap_algos;
    zn_cuda_settings settings; /* from the environment at create */
    zn_cuda_algo_file algo_file;
    char device_tag[128];
    cudaEvent_t tick[2];       /* timing of algorithm candidates */
    /* CUDA graphs of compute ranges (ZNET_CUDA_GRAPH) */
    zn_cuda_replay replays[ZN_CUDA_REPLAYS];
    int n_replays;
    void *blas_workspace;
    /* argument arrays for ops with any number of sources (concat, stitch), cap entries each */
    const float **ptrs;
    int *ints; /* 3 * cap */
    int cap;
    uint64_t rng_seed, rng_step; /* set_rng: the key of dropout's masks */
    char err[1024];
} zn_cuda;

/* One node being computed. */
typedef struct {
    zn_cuda *cu;
    const zn_graph *g;
    const zn_plan *p;
    int id;
    const zn_node *node;
} zn_cuda_call;

typedef bool (*zn_cuda_runner)(const zn_cuda_call *c);

/* The part of the workspace a node has not taken yet (cuda_call.c hands it out). */
typedef struct {
    unsigned char *at;
    size_t left;
} zn_cuda_ws;

/* Indexed by op; NULL where the file has no runner for the op. */
extern const zn_cuda_runner zn_cuda_forward_runners[ZN_OP_COUNT];
extern const zn_cuda_runner zn_cuda_backward_runners[ZN_OP_COUNT];

/* cuda_forward.c: what the backward runners share with the forward ones. */
/* FLATTEN and RESHAPE: the same elements under another shape. */
bool zn_cuda_run_copy(const zn_cuda_call *c);
/* An XENT or XENT_BWD node's sizes. */
zn_xent_dims zn_cuda_xent_dims(const zn_cuda_call *c);

/* cuda_conv.c: cuDNN convolution, forward and both backward ops. */
bool zn_cuda_run_conv2d(const zn_cuda_call *c);
bool zn_cuda_run_conv2d_bwd_data(const zn_cuda_call *c);
bool zn_cuda_run_conv2d_bwd_filter(const zn_cuda_call *c);
/* Scratch bytes of a convolution node at this batch: its algorithm's, plus the 16-bit copies. */
size_t zn_cuda_conv_workspace(zn_cuda *cu, const zn_graph *g, int id, int batch);
/* Times the algorithms of every convolution, the nodes' and the z-towers' slices', on the
 * allocated plan, and saves new choices to the cache file. */
bool zn_cuda_conv_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p);
/* Chooses the algorithm of convolution k by timing, on operands in the roles of
 * zn_cuda_conv_run (only out is written) within the scratch ws; a choice the cache file holds
 * that cuDNN accepts and that fits is kept without timing. */
bool zn_cuda_conv_time(const zn_cuda_call *c, const zn_cuda_conv_key *k, const float *in0,
                       const float *in1, float *out, zn_cuda_ws ws);
/* Reads the algorithm cache file of the settings (a damaged one is named on stderr and
 * ignored) and tags this GPU; false only on a CUDA error. */
bool zn_cuda_conv_open_cache(zn_cuda *cu);
/* The key of a convolution op (ZN_OP_CONV2D, ZN_OP_CONV2D_BWD_DATA or ZN_OP_CONV2D_BWD_FILTER)
 * over x [n] + per-example x [c, h, w], w [o, c/groups, kh, kw], y [n] + per-example y
 * [o, oh, ow], with a's stride, pad and dilation. fused 1: one no node describes alone (the
 * z-tower's, on a slice of the batch), timed by zn_cuda_ztower_prepare on the tower's scratch. */
zn_cuda_conv_key zn_cuda_conv_key_make(const zn_cuda *cu, int op, int n, const zn_shape *x,
                                       const zn_shape *w, const zn_shape *y, const zn_attrs *a,
                                       int groups, int fused);
/* Scratch bytes of convolution k: its algorithm's (chosen and cached on the first ask; n, the
 * node asking, names it in messages), plus the 16-bit copies. */
size_t zn_cuda_conv_bytes(zn_cuda *cu, const zn_cuda_conv_key *k, const zn_node *n);
/* out = convolution k of in0 and in1, float32 tensors in the roles of k->op (CONV2D: x, w -> y;
 * BWD_DATA: dy, w -> dx; BWD_FILTER: x, dy -> dw), overwritten, with the algorithm cached for k
 * and the scratch in ws; in 16 bits through copies in ws, dy loss-scaled. */
bool zn_cuda_conv_run(const zn_cuda_call *c, const zn_cuda_conv_key *k, const float *in0,
                      const float *in1, float *out, zn_cuda_ws ws);

/* cuda_ztower.c: the fused z-tower (graph op ztower and its backward ops) in batch slices. */
/* Times the slice convolutions of every tower node on its own scratch (zn_cuda_conv_time). */
bool zn_cuda_ztower_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p);
/* Scratch bytes of a ZTOWER, ZTOWER_COEF or ZTOWER_BWD node at this batch. */
size_t zn_cuda_ztower_workspace(zn_cuda *cu, const zn_graph *g, int id, int batch);
/* z [N, F] of a ZTOWER node c: training, batch statistics (running statistics updated, not with
 * momentum 1); otherwise the running statistics. */
bool zn_cuda_ztower_forward(const zn_cuda_call *c, const float *w, const float *gamma,
                            const float *beta, float *running_mean, float *running_var, float *z);
/* coef [7, F] of a ZTOWER_COEF node: a, b, kx, kb, ka, dgamma, dbeta (graph/ops.h). */
bool zn_cuda_ztower_coef(const zn_cuda_call *c, const float *w, const float *gamma,
                         const float *beta, const float *dz, float *coef);
/* The gradient of input k (k < the inputs) or of w (k = the inputs) of a ZTOWER_BWD node. */
bool zn_cuda_ztower_backward(const zn_cuda_call *c, int k, const float *w, const float *coef,
                             const float *dz, float *out);

/* ---- memory (cuda_memory.c) -------------------------------------------------------------- */
bool zn_cuda_alloc(zn_backend *be, const zn_plan *p);
bool zn_cuda_set(zn_backend *be, zn_region r, size_t offset, const void *host, size_t bytes);
bool zn_cuda_get(zn_backend *be, zn_region r, size_t offset, void *host, size_t bytes);
size_t zn_cuda_arena_high_water(zn_backend *be);
size_t zn_cuda_memory_available(zn_backend *be);
/* Waits for both streams. */
bool zn_cuda_quiesce(zn_cuda *cu);
void zn_cuda_release_plan(zn_cuda *cu);
void zn_cuda_release_staging(zn_cuda *cu);
/* Input staging and status words for graph g under plan p. */
bool zn_cuda_staging_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p);
/* Moves the staged inputs overlapping [offset, offset + bytes) of the arena into it. */
bool zn_cuda_flush_inputs(zn_cuda *cu, size_t offset, size_t bytes);
/* The staging of INPUT node `node`, or NULL. */
const zn_cuda_input *zn_cuda_input_of(const zn_cuda *cu, int node);
/* cuda_graph.c: nodes first..last, replayed as a CUDA graph where that is on and possible. */
bool zn_cuda_replay_compute(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first, int last);
/* Drops every captured graph (their addresses and arguments belong to the old plan). */
void zn_cuda_replay_reset(zn_cuda *cu);
/* cuda_backend.c: runs nodes first..last eagerly, in order, on the compute stream. */
bool zn_cuda_run_nodes(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first, int last);
/* cuda_backend.c: waits for the compute stream, then reports what kernels flagged since the
 * last look (a label out of range); false with the message. */
bool zn_cuda_settle(zn_cuda *cu);

/* ---- checked calls (cuda_call.c) -------------------------------------------------------- */
bool zn_cuda_rt_ok(zn_cuda *cu, cudaError_t e, const char *call, const zn_node *n);
bool zn_cuda_dnn_ok(zn_cuda *cu, cudnnStatus_t s, const char *call, const zn_node *n);
bool zn_cuda_blas_ok(zn_cuda *cu, cublasStatus_t s, const char *call, const zn_node *n);
/* At node n (NULL: none), e.g. ZN_RT_AT(cu, NULL, cudaMalloc, &p, bytes). */
#define ZN_RT_AT(cu, n, fn, ...) zn_cuda_rt_ok((cu), fn(__VA_ARGS__), #fn, (n))
#define ZN_DNN_AT(cu, n, fn, ...) zn_cuda_dnn_ok((cu), fn(__VA_ARGS__), #fn, (n))
#define ZN_BLAS_AT(cu, n, fn, ...) zn_cuda_blas_ok((cu), fn(__VA_ARGS__), #fn, (n))
/* In a runner: at the call's node. */
#define ZN_RT(c, fn, ...) ZN_RT_AT((c)->cu, (c)->node, fn, __VA_ARGS__)
#define ZN_DNN(c, fn, ...) ZN_DNN_AT((c)->cu, (c)->node, fn, __VA_ARGS__)
#define ZN_BLAS(c, fn, ...) ZN_BLAS_AT((c)->cu, (c)->node, fn, __VA_ARGS__)

/* Writes "cuda backend: ..." style messages into the backend's last error; false. */
#define zn_cuda_fail(cu, ...) zn_fail((cu)->err, sizeof (cu)->err, __VA_ARGS__)
/* "node 'b1.conv' (models/x.znet:12:3, conv2d)" into buf; returns buf. */
const char *zn_cuda_node_text(const zn_node *n, char *buf, size_t len);

/* ---- tensors (cuda_call.c) and extents (backends/node_args.h) -------------------------- */
/* The device address of node id's tensor under the plan. */
void *zn_cuda_tensor(const zn_cuda_call *c, int id);

static inline float *zn_cuda_out(const zn_cuda_call *c)
{
    return zn_cuda_tensor(c, c->id);
}

static inline float *zn_cuda_src(const zn_cuda_call *c, int k)
{
    return zn_cuda_tensor(c, c->node->src[k]);
}

static inline const zn_shape *zn_cuda_src_shape(const zn_cuda_call *c, int k)
{
    return &c->g->nodes[c->node->src[k]].shape;
}

/* The batch extent of a tensor of shape s: the plan's batch when batched, else 1. */
static inline int zn_cuda_batch(const zn_cuda_call *c, const zn_shape *s)
{
    return s->batched ? c->p->batch : 1;
}

/* Elements of a tensor of shape s, its batch axis included. */
static inline size_t zn_cuda_numel(const zn_cuda_call *c, const zn_shape *s)
{
    return zn_arg_numel(s, c->p->batch);
}
/* Batch norm's dims of the node's x (source 0), with its eps and momentum. */
static inline zn_bn_dims zn_cuda_bn_dims(const zn_cuda_call *c)
{
    const zn_shape *x = zn_cuda_src_shape(c, 0);
    return (zn_bn_dims){zn_cuda_batch(c, x), zn_arg_dim(x, 0), zn_arg_inner(x, 1),
                        c->node->attr.eps, c->node->attr.momentum};
}
/* A stitch of the node's sources 0..count-1 into z; the per-input arrays live in cu->ints. */
static inline zn_stitch_dims zn_cuda_stitch_dims(const zn_cuda_call *c, int count,
                                                  const zn_shape *z)
{
    return zn_arg_stitch_dims(c->g, c->node, count, z, zn_cuda_batch(c, z), c->cu->ints,
                              c->cu->cap);
}

/* ---- 16-bit compute (--precision fp16|bf16; cuda_call.c) ---------------------------------- */
static inline bool zn_cuda_half_mode(const zn_cuda *cu)
{
    return cu->opts.precision != ZN_PRECISION_FP32;
}
zn_cuda_half zn_cuda_half_type(const zn_cuda *cu);
cudnnDataType_t zn_cuda_dnn_type(const zn_cuda *cu);
/* The factor a gradient is scaled by before its cast to 16 bits (1 unless fp16). */
float zn_cuda_grad_scale(const zn_cuda *cu);

/* Bump allocation of a node's scratch from the workspace (zn_cuda_ws_take); every slice is
 * 256-byte aligned. */
static inline size_t zn_cuda_align(size_t bytes)
{
    return (bytes + 255) & ~(size_t)255;
}
zn_cuda_ws zn_cuda_ws_begin(const zn_cuda_call *c);
/* The next `bytes` of scratch, or NULL (with the message in last_error) when it does not fit. */
void *zn_cuda_ws_take(const zn_cuda_call *c, zn_cuda_ws *ws, size_t bytes);
/* The scratch of the per-channel sums over `channels` (k_channel_sums.cuh); NULL on failure. */
static inline double *zn_cuda_channel_scratch(const zn_cuda_call *c, zn_cuda_ws *ws, int channels)
{
    return zn_cuda_ws_take(c, ws, zn_cuda_channel_scratch_bytes(channels));
}
/* A 16-bit copy of n floats of x, times s, in the workspace; NULL on failure. */
uint16_t *zn_cuda_to_half(const zn_cuda_call *c, zn_cuda_ws *ws, const float *x, size_t n,
                          float s);

/* ---- library calls several runners make (cuda_call.c) ----------------------------------- */
/* y [n, c, hw] += bias [c] (cudnnAddTensor). */
bool zn_cuda_add_bias(const zn_cuda_call *c, const float *bias, float *y, int n, int ch, int hw);
/* Column-major y (m x n, leading dimension ldc) = op(a) op(b), op(a) m x k and op(b) k x n
 * (cublasGemmEx, float accumulation). In 16 bits a and b are cast into the workspace, times sa
 * and sb, and the product is divided by sa * sb again (sa, sb: 1 or the loss scale). */
bool zn_cuda_gemm(const zn_cuda_call *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                  int k, const float *a, int lda, float sa, const float *b, int ldb, float sb,
                  float *y, int ldc);

#endif
