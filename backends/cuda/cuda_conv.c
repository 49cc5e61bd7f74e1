/* cuda_conv.c: convolution on cuDNN: CONV2D (+ bias) and its two backward ops, and the same for
 * convolutions no node describes alone (the z-towers' slices). The algorithm of each shape (all
 * conv parameters and the batch) is chosen once and cached: from the cache file or by the
 * heuristics (cudnnGet*_v7) under a workspace budget when the plan asks how much scratch a node
 * needs, then timed in prepare within the workspace the plan reserved (cudnnFind*Ex, then the
 * fastest few again, several runs each, so that one noisy run does not decide) and written to
 * the cache file, which later runs reuse. fp32 runs FMA kernels only (no TF32); fp16/bf16 cast
 * the operands to 16 bits in the workspace, run on tensor cores with float accumulation and cast
 * the result back, gradients loss-scaled (docs/cuda.md). */
#include "backends/cuda/cuda_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One algorithm's figures, whichever of the three perf structs cuDNN returned. */
typedef struct {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} conv_perf;

#define PERF_MAX 8 /* >= every CUDNN_CONVOLUTION_*_ALGO_COUNT */
#define TIME_CANDIDATES 4 /* the fastest of cudnnFind's list timed again */
#define TIME_RUNS 5       /* runs of each, the median kept */

/* The cuDNN call that runs each op, for messages. */
static const char *call_name(int op)
{
    return op == ZN_OP_CONV2D            ? "cudnnConvolutionForward"
           : op == ZN_OP_CONV2D_BWD_DATA ? "cudnnConvolutionBackwardData"
                                         : "cudnnConvolutionBackwardFilter";
}

zn_cuda_conv_key zn_cuda_conv_key_make(const zn_cuda *cu, int op, int n, const zn_shape *x,
                                       const zn_shape *w, const zn_shape *y, const zn_attrs *a,
                                       int groups, int fused)
{
    zn_cuda_conv_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    k.op = op;
    k.dtype = zn_cuda_dnn_type(cu);
    k.n = n;
    k.c = zn_arg_dim(x, 0);
    k.h = zn_arg_dim(x, 1);
    k.w = zn_arg_dim(x, 2);
    k.o = zn_arg_dim(w, 0);
    k.kh = zn_arg_dim(w, 2);
    k.kw = zn_arg_dim(w, 3);
    k.oh = zn_arg_dim(y, 1);
    k.ow = zn_arg_dim(y, 2);
    for (int i = 0; i < 2; i++) {
        k.stride[i] = a->stride[i];
        k.pad[i] = a->pad[i];
        k.dilation[i] = a->dilation[i];
    }
    k.groups = groups;
    k.fused = fused;
    return k;
}

/* The roles of the node's tensors: x [n, c, h, w], w [o, c/groups, kh, kw], y [n, o, oh, ow].
 * CONV2D reads x (src 0) and w (src 1) and writes y; BWD_DATA reads dy (src 0) and w (src 1)
 * and writes dx; BWD_FILTER reads x (src 0) and dy (src 1) and writes dw. */
static zn_cuda_conv_key conv_key(const zn_cuda *cu, const zn_graph *g, int id, int batch)
{
    const zn_node *n = &g->nodes[id];
    const zn_shape *s0 = &g->nodes[n->src[0]].shape, *s1 = &g->nodes[n->src[1]].shape;
    const zn_shape *x = s0, *w = s1, *y = &n->shape;
    if (n->op == ZN_OP_CONV2D_BWD_DATA) {
        x = &n->shape;
        y = s0;
    } else if (n->op == ZN_OP_CONV2D_BWD_FILTER) {
        w = &n->shape;
        y = s1;
    }
    return zn_cuda_conv_key_make(cu, n->op, x->batched ? batch : 1, x, w, y, &n->attr,
                                 n->attr.groups, 0);
}

/* Elements of the op's in0, in1 and out (the roles of conv_key). */
static void operand_counts(const zn_cuda_conv_key *k, size_t count[3])
{
    size_t x = (size_t)k->n * k->c * k->h * k->w;
    size_t w = (size_t)k->o * (k->c / k->groups) * k->kh * k->kw;
    size_t y = (size_t)k->n * k->o * k->oh * k->ow;
    count[0] = k->op == ZN_OP_CONV2D_BWD_DATA ? y : x;
    count[1] = k->op == ZN_OP_CONV2D_BWD_FILTER ? y : w;
    count[2] = k->op == ZN_OP_CONV2D ? y : k->op == ZN_OP_CONV2D_BWD_DATA ? x : w;
}

/* The math a query asks for: FMA only in fp32 (CUDNN_DEFAULT_MATH would allow TF32 on Ampere
 * and later), tensor cores in 16 bits. */
static cudnnMathType_t query_math(const zn_cuda *cu)
{
    return zn_cuda_half_mode(cu) ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

static bool set_descs(zn_cuda *cu, const zn_cuda_conv_key *k, cudnnMathType_t math,
                      const zn_node *n)
{
    cudnnDataType_t t = (cudnnDataType_t)k->dtype;
    return ZN_DNN_AT(cu, n, cudnnSetTensor4dDescriptor, cu->xd, CUDNN_TENSOR_NCHW, t, k->n, k->c,
                     k->h, k->w) &&
           ZN_DNN_AT(cu, n, cudnnSetTensor4dDescriptor, cu->yd, CUDNN_TENSOR_NCHW, t, k->n, k->o,
                     k->oh, k->ow) &&
           ZN_DNN_AT(cu, n, cudnnSetFilter4dDescriptor, cu->wd, t, CUDNN_TENSOR_NCHW, k->o,
                     k->c / k->groups, k->kh, k->kw) &&
           ZN_DNN_AT(cu, n, cudnnSetConvolution2dDescriptor, cu->convd, k->pad[0], k->pad[1],
                     k->stride[0], k->stride[1], k->dilation[0], k->dilation[1],
                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) &&
           ZN_DNN_AT(cu, n, cudnnSetConvolutionGroupCount, cu->convd, k->groups) &&
           ZN_DNN_AT(cu, n, cudnnSetConvolutionMathType, cu->convd, math);
}

#define COPY_PERF(res, count, out)                                                               \
    for (int i_ = 0; i_ < (count); i_++)                                                         \
    (out)[i_] = (conv_perf){(int)(res)[i_].algo, (res)[i_].status, (res)[i_].memory,             \
                            (res)[i_].determinism, (res)[i_].mathType}

/* The algorithms for the descriptors as set: the heuristics' ranking when x is NULL, else
 * cuDNN's timing on these tensors (it writes the output) with ws_bytes of scratch at ws. */
static bool query(zn_cuda *cu, int op, void *x, void *w, void *y, void *ws, size_t ws_bytes,
                  conv_perf *out, int *count, const zn_node *n)
{
    bool ok;
    *count = 0;
    if (op == ZN_OP_CONV2D) {
        cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        const int want = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
        ok = x ? ZN_DNN_AT(cu, n, cudnnFindConvolutionForwardAlgorithmEx, cu->cudnn, cu->xd, x,
                           cu->wd, w, cu->convd, cu->yd, y, want, count, r, ws, ws_bytes)
               : ZN_DNN_AT(cu, n, cudnnGetConvolutionForwardAlgorithm_v7, cu->cudnn, cu->xd,
                           cu->wd, cu->convd, cu->yd, want, count, r);
        if (ok) COPY_PERF(r, *count, out);
    } else if (op == ZN_OP_CONV2D_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        const int want = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
        ok = x ? ZN_DNN_AT(cu, n, cudnnFindConvolutionBackwardDataAlgorithmEx, cu->cudnn, cu->wd,
                           w, cu->yd, y, cu->convd, cu->xd, x, want, count, r, ws, ws_bytes)
               : ZN_DNN_AT(cu, n, cudnnGetConvolutionBackwardDataAlgorithm_v7, cu->cudnn, cu->wd,
                           cu->yd, cu->convd, cu->xd, want, count, r);
        if (ok) COPY_PERF(r, *count, out);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        const int want = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
        ok = x ? ZN_DNN_AT(cu, n, cudnnFindConvolutionBackwardFilterAlgorithmEx, cu->cudnn, cu->xd,
                           x, cu->yd, y, cu->convd, cu->wd, w, want, count, r, ws, ws_bytes)
               : ZN_DNN_AT(cu, n, cudnnGetConvolutionBackwardFilterAlgorithm_v7, cu->cudnn,
                           cu->xd, cu->yd, cu->convd, cu->wd, want, count, r);
        if (ok) COPY_PERF(r, *count, out);
    }
    return ok;
}

#undef COPY_PERF

/* The scratch cuDNN says the algorithm needs with the descriptors as set. */
static cudnnStatus_t algo_workspace(zn_cuda *cu, int op, int algo, size_t *bytes)
{
    if (op == ZN_OP_CONV2D)
        return cudnnGetConvolutionForwardWorkspaceSize(cu->cudnn, cu->xd, cu->wd, cu->convd, cu->yd,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    if (op == ZN_OP_CONV2D_BWD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(cu->cudnn, cu->wd, cu->yd, cu->convd,
                                                            cu->xd,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo,
                                                            bytes);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(cu->cudnn, cu->xd, cu->yd, cu->convd,
                                                          cu->wd,
                                                          (cudnnConvolutionBwdFilterAlgo_t)algo,
                                                          bytes);
}

/* Whether an algorithm may run here: it works on this shape, fits `limit` bytes of scratch, is
 * deterministic when asked, and computes in the precision asked for. In fp32 the FMA kernels
 * come first (pass 0); one listed under the default math is also tried under FMA math. In 16
 * bits tensor-core and default math come first, any other listed math second: a shape with no
 * tensor-core kernel (a depthwise conv, say) must still run, and it accumulates in fp32 anyway. */
static bool acceptable(const zn_cuda *cu, const conv_perf *r, size_t limit, int pass)
{
    if (r->status != CUDNN_STATUS_SUCCESS || r->memory > limit) return false;
    if (cu->opts.deterministic && r->determinism != CUDNN_DETERMINISTIC) return false;
    if (zn_cuda_half_mode(cu)) {
        bool preferred = r->math == CUDNN_TENSOR_OP_MATH || r->math == CUDNN_DEFAULT_MATH;
        return pass == 0 ? preferred : !preferred;
    }
    return r->math == (pass == 0 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
}

/* The math an accepted algorithm runs under: never TF32 in fp32. */
static cudnnMathType_t run_math(const zn_cuda *cu, const conv_perf *r)
{
    return zn_cuda_half_mode(cu) ? r->math : CUDNN_FMA_MATH;
}

/* The acceptable algorithms of r (cuDNN lists the fastest first) that cuDNN accepts under their
 * math, with scratch (cuDNN's own figure) within limit, at most cap of them into out, all of the
 * first pass that has any (acceptable); how many. */
static int candidates(zn_cuda *cu, int op, const conv_perf *r, int count, size_t limit,
                      zn_cuda_conv_algo *out, int cap)
{
    int found = 0;
    for (int pass = 0; pass < 2 && !found; pass++)
        for (int i = 0; i < count && found < cap; i++) {
            size_t bytes = 0;
            cudnnMathType_t math = run_math(cu, &r[i]);
            if (!acceptable(cu, &r[i], limit, pass) ||
                cudnnSetConvolutionMathType(cu->convd, math) != CUDNN_STATUS_SUCCESS ||
                algo_workspace(cu, op, r[i].algo, &bytes) != CUDNN_STATUS_SUCCESS)
                continue;
            if (bytes < r[i].memory) bytes = r[i].memory;
            if (bytes > limit) continue;
            out[found].algo = r[i].algo;
            out[found].math = math;
            out[found].workspace = bytes;
            found++;
        }
    return found;
}

/* Makes the first of the candidates a's choice; false when there is none. */
static bool adopt(zn_cuda *cu, zn_cuda_conv_algo *a, const conv_perf *r, int count, size_t limit)
{
    zn_cuda_conv_algo first;
    if (!candidates(cu, a->key.op, r, count, limit, &first, 1)) return false;
    a->algo = first.algo;
    a->math = first.math;
    a->workspace = first.workspace;
    return true;
}

/* Makes the cache file's entry for a's shape a's choice, with the descriptors set for it, when
 * cuDNN accepts it for this shape and it fits limit; never TF32 in fp32. */
static bool from_file(zn_cuda *cu, zn_cuda_conv_algo *a, size_t limit)
{
    if (!cu->settings.cache[0]) return false;
    const zn_cuda_algo_entry *e = zn_cuda_algo_file_find(&cu->algo_file, cu->device_tag, &a->key,
                                                         cu->opts.deterministic);
    size_t bytes = 0;
    if (!e || (!zn_cuda_half_mode(cu) && e->math != CUDNN_FMA_MATH) ||
        cudnnSetConvolutionMathType(cu->convd, (cudnnMathType_t)e->math) != CUDNN_STATUS_SUCCESS ||
        algo_workspace(cu, a->key.op, e->algo, &bytes) != CUDNN_STATUS_SUCCESS)
        return false;
    if (bytes < e->workspace) bytes = e->workspace;
    if (bytes > limit) return false;
    a->algo = e->algo;
    a->math = (cudnnMathType_t)e->math;
    a->workspace = bytes;
    a->from_file = true;
    return true;
}

static zn_cuda_conv_algo *cache_find(zn_cuda *cu, const zn_cuda_conv_key *k)
{
    for (int i = 0; i < cu->n_algos; i++)
        if (memcmp(&cu->algos[i].key, k, sizeof *k) == 0) return &cu->algos[i];
    return NULL;
}

/* A new entry for k with no algorithm yet; NULL (with the message) when out of memory. */
static zn_cuda_conv_algo *cache_add(zn_cuda *cu, const zn_cuda_conv_key *k)
{
    if (cu->n_algos == cu->cap_algos) {
        int cap = cu->cap_algos ? 2 * cu->cap_algos : 16;
        zn_cuda_conv_algo *a = realloc(cu->algos, sizeof *a * (size_t)cap);
        if (!a) {
            zn_cuda_fail(cu, "cuda backend: realloc of %d convolution algorithms failed", cap);
            return NULL;
        }
        cu->algos = a;
        cu->cap_algos = cap;
    }
    zn_cuda_conv_algo *a = &cu->algos[cu->n_algos++];
    memset(a, 0, sizeof *a);
    a->key = *k;
    a->algo = -1;
    return a;
}

/* The cached algorithm of shape k, when new the cache file's or else the heuristics' under the
 * budget (n: the node asking, for messages). NULL only when out of memory; algo -1 (with the reason in why) when
 * none fits. */
static zn_cuda_conv_algo *choose(zn_cuda *cu, const zn_cuda_conv_key *k, const zn_node *n)
{
    zn_cuda_conv_algo *a = cache_find(cu, k);
    if (a) return a;
    if (!(a = cache_add(cu, k))) return NULL;
    conv_perf r[PERF_MAX];
    int count;
    if (set_descs(cu, k, query_math(cu), n) && !from_file(cu, a, ZN_CUDA_CONV_BUDGET) &&
        query(cu, k->op, NULL, NULL, NULL, NULL, 0, r, &count, n) &&
        !adopt(cu, a, r, count, ZN_CUDA_CONV_BUDGET))
        zn_cuda_fail(cu, "cuda backend: no cuDNN algorithm%s for this %s %s fits the %zu MiB "
                     "workspace budget", cu->opts.deterministic ? " that is deterministic" : "",
                     zn_precision_name(cu->opts.precision), zn_ops[k->op].name,
                     ZN_CUDA_CONV_BUDGET >> 20);
    if (a->algo < 0) snprintf(a->why, sizeof a->why, "%s", cu->err);
    return a;
}

/* Bytes of the 16-bit copies of the operands and the result (0 in fp32). */
static size_t half_bytes(const zn_cuda *cu, const zn_cuda_conv_key *k)
{
    if (!zn_cuda_half_mode(cu)) return 0;
    size_t count[3], bytes = 0;
    operand_counts(k, count);
    for (int i = 0; i < 3; i++) bytes += zn_cuda_align(2 * count[i]);
    return bytes;
}

size_t zn_cuda_conv_bytes(zn_cuda *cu, const zn_cuda_conv_key *k, const zn_node *n)
{
    zn_cuda_conv_algo *a = choose(cu, k, n);
    return half_bytes(cu, k) + (a && a->algo >= 0 ? a->workspace : 0);
}

size_t zn_cuda_conv_workspace(zn_cuda *cu, const zn_graph *g, int id, int batch)
{
    zn_cuda_conv_key k = conv_key(cu, g, id, batch);
    return zn_cuda_conv_bytes(cu, &k, &g->nodes[id]);
}

/* The operands as cuDNN reads them: t holds in0, in1 and out (float32), kept in fp32; in 16 bits
 * replaced by copies in the workspace (in0, in1, then out), the first two filled with the casts
 * when cast is true. The rest of the workspace is left in ws. */
static bool operands(const zn_cuda_call *c, const zn_cuda_conv_key *k, zn_cuda_ws *ws, bool cast,
                     void *t[3])
{
    if (!zn_cuda_half_mode(c->cu)) return true;
    size_t count[3];
    operand_counts(k, count);
    /* dy is in0 of BWD_DATA and in1 of BWD_FILTER: it gets the loss scale */
    float s = zn_cuda_grad_scale(c->cu);
    const float scale[2] = {k->op == ZN_OP_CONV2D_BWD_DATA ? s : 1.0f,
                            k->op == ZN_OP_CONV2D_BWD_FILTER ? s : 1.0f};
    for (int i = 0; i < 2; i++)
        if (!(t[i] = cast ? (void *)zn_cuda_to_half(c, ws, t[i], count[i], scale[i])
                          : zn_cuda_ws_take(c, ws, 2 * count[i])))
            return false;
    return (t[2] = zn_cuda_ws_take(c, ws, 2 * count[2])) != NULL;
}

/* Runs algorithm algo of op on operands t (in0, in1, out in the roles of zn_cuda_conv_run) with
 * the descriptors and math as set and ws_bytes of scratch at ws. */
static cudnnStatus_t launch(zn_cuda *cu, int op, int algo, void *const t[3], void *ws,
                            size_t ws_bytes)
{
    const float one = 1.0f, zero = 0.0f;
    if (op == ZN_OP_CONV2D)
        return cudnnConvolutionForward(cu->cudnn, &one, cu->xd, t[0], cu->wd, t[1], cu->convd,
                                       (cudnnConvolutionFwdAlgo_t)algo, ws, ws_bytes, &zero,
                                       cu->yd, t[2]);
    if (op == ZN_OP_CONV2D_BWD_DATA)
        return cudnnConvolutionBackwardData(cu->cudnn, &one, cu->wd, t[1], cu->yd, t[0],
                                            cu->convd, (cudnnConvolutionBwdDataAlgo_t)algo, ws,
                                            ws_bytes, &zero, cu->xd, t[2]);
    return cudnnConvolutionBackwardFilter(cu->cudnn, &one, cu->xd, t[0], cu->yd, t[1], cu->convd,
                                          (cudnnConvolutionBwdFilterAlgo_t)algo, ws, ws_bytes,
                                          &zero, cu->wd, t[2]);
}

/* The median of TIME_RUNS timed runs (after one untimed) of candidate a on operands t, in ms; a
 * negative value when cuDNN refuses to run it. false only on a CUDA error (in last_error). */
static bool median_ms(zn_cuda *cu, const zn_cuda_conv_algo *a, void *const t[3], zn_cuda_ws ws,
                      const zn_node *n, float *median)
{
    float ms[TIME_RUNS];
    *median = -1;
    if (cudnnSetConvolutionMathType(cu->convd, a->math) != CUDNN_STATUS_SUCCESS ||
        launch(cu, a->key.op, a->algo, t, ws.at, a->workspace) != CUDNN_STATUS_SUCCESS)
        return true;
    for (int i = 0; i < TIME_RUNS; i++) {
        if (!ZN_RT_AT(cu, n, cudaEventRecord, cu->tick[0], cu->stream)) return false;
        if (launch(cu, a->key.op, a->algo, t, ws.at, a->workspace) != CUDNN_STATUS_SUCCESS)
            return true;
        if (!ZN_RT_AT(cu, n, cudaEventRecord, cu->tick[1], cu->stream) ||
            !ZN_RT_AT(cu, n, cudaEventSynchronize, cu->tick[1]) ||
            !ZN_RT_AT(cu, n, cudaEventElapsedTime, &ms[i], cu->tick[0], cu->tick[1]))
            return false;
        for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) { /* kept sorted */
            float x = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = x;
        }
    }
    *median = ms[TIME_RUNS / 2];
    return true;
}

/* a's choice among cudnnFind's fastest candidates within ws, timed again; the heuristics' choice
 * stays when none runs. */
static bool time_candidates(zn_cuda *cu, zn_cuda_conv_algo *a, void *const t[3], zn_cuda_ws ws,
                            const zn_node *n)
{
    /* the roles cuDNN names x, w and y (see conv_key) */
    void *x = t[0], *w = t[1], *y = t[2];
    if (a->key.op == ZN_OP_CONV2D_BWD_DATA) x = t[2], y = t[0];
    else if (a->key.op == ZN_OP_CONV2D_BWD_FILTER) w = t[2], y = t[1];
    conv_perf r[PERF_MAX];
    zn_cuda_conv_algo cand[TIME_CANDIDATES];
    int count;
    if (!set_descs(cu, &a->key, query_math(cu), n) ||
        !query(cu, a->key.op, x, w, y, ws.at, ws.left, r, &count, n))
        return false;
    int m = candidates(cu, a->key.op, r, count, ws.left, cand, TIME_CANDIDATES);
    float best = -1;
    for (int i = 0; i < m; i++) {
        float ms;
        cand[i].key = a->key;
        if (!median_ms(cu, &cand[i], t, ws, n, &ms)) return false;
        if (ms < 0 || (best >= 0 && ms >= best)) continue;
        best = ms;
        a->algo = cand[i].algo;
        a->math = cand[i].math;
        a->workspace = cand[i].workspace;
    }
    if (best < 0 || !cu->settings.cache[0]) return true;
    zn_cuda_algo_entry e = {.key = a->key, .deterministic = cu->opts.deterministic,
                            .algo = a->algo, .math = (int)a->math, .workspace = a->workspace};
    snprintf(e.device, sizeof e.device, "%s", cu->device_tag);
    if (!zn_cuda_algo_file_put(&cu->algo_file, &e))
        return zn_cuda_fail(cu, "cuda backend: out of memory for the algorithm cache");
    return true;
}

bool zn_cuda_conv_time(const zn_cuda_call *c, const zn_cuda_conv_key *k, const float *in0,
                       const float *in1, float *out, zn_cuda_ws ws)
{
    zn_cuda *cu = c->cu;
    const zn_node *n = c->node;
    char text[512];
    zn_cuda_conv_algo *a = choose(cu, k, n);
    if (!a) return false;
    if (a->algo < 0)
        return zn_cuda_fail(cu, "cuda backend: %s: %s", zn_cuda_node_text(n, text, sizeof text),
                            a->why);
    void *t[3] = {(void *)in0, (void *)in1, out};
    if (!operands(c, k, &ws, false, t)) return false;
    if (a->timed && a->workspace <= ws.left) return true;
    /* a choice from the file is kept when it also runs here */
    bool kept = a->from_file && a->workspace <= ws.left && set_descs(cu, k, a->math, n) &&
                launch(cu, k->op, a->algo, t, ws.at, a->workspace) == CUDNN_STATUS_SUCCESS;
    if (!kept && !time_candidates(cu, a, t, ws, n)) return false;
    if (a->workspace > ws.left)
        return zn_cuda_fail(cu, "cuda backend: %s: its algorithm needs %zu bytes of workspace, "
                            "the plan has %zu", zn_cuda_node_text(n, text, sizeof text),
                            a->workspace, ws.left);
    a->timed = true;
    return true;
}

/* Writes the cache file when this prepare timed new shapes; a failure to write is said once on
 * stderr and the file is left alone from then on (the cache only saves time). */
static void save_cache(zn_cuda *cu)
{
    char err[1024];
    if (!cu->settings.cache[0] || !cu->algo_file.dirty) return;
    if (zn_cuda_algo_file_write(&cu->algo_file, cu->settings.cache, err, sizeof err)) {
        cu->algo_file.dirty = false;
        return;
    }
    fprintf(stderr, "znet: cuda backend: the cuDNN algorithm cache is not saved: %s\n", err);
    cu->settings.cache[0] = 0;
}

bool zn_cuda_conv_prepare(zn_cuda *cu, const zn_graph *g, const zn_plan *p)
{
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op != ZN_OP_CONV2D && n->op != ZN_OP_CONV2D_BWD_DATA &&
            n->op != ZN_OP_CONV2D_BWD_FILTER)
            continue;
        zn_cuda_call c = {cu, g, p, id, n};
        zn_cuda_conv_key k = conv_key(cu, g, id, p->batch);
        if (!zn_cuda_conv_time(&c, &k, zn_cuda_src(&c, 0), zn_cuda_src(&c, 1), zn_cuda_out(&c),
                               zn_cuda_ws_begin(&c)))
            return false;
    }
    if (!zn_cuda_ztower_prepare(cu, g, p)) return false;
    save_cache(cu);
    return ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream);
}

bool zn_cuda_conv_open_cache(zn_cuda *cu)
{
    struct cudaDeviceProp prop;
    int runtime = 0;
    if (!ZN_RT_AT(cu, NULL, cudaGetDeviceProperties, &prop, cu->device) ||
        !ZN_RT_AT(cu, NULL, cudaRuntimeGetVersion, &runtime) ||
        !ZN_RT_AT(cu, NULL, cudaEventCreate, &cu->tick[0]) ||
        !ZN_RT_AT(cu, NULL, cudaEventCreate, &cu->tick[1]))
        return false;
    zn_cuda_algo_device_tag(cu->device_tag, sizeof cu->device_tag, prop.name, prop.major,
                            prop.minor, (long)cudnnGetVersion(), runtime);
    char err[1024];
    if (cu->settings.cache[0] &&
        !zn_cuda_algo_file_read(&cu->algo_file, cu->settings.cache, err, sizeof err))
        fprintf(stderr, "znet: cuda backend: the cuDNN algorithm cache is ignored and will be "
                "rewritten: %s\n", err);
    return true;
}

bool zn_cuda_conv_run(const zn_cuda_call *c, const zn_cuda_conv_key *k, const float *in0,
                      const float *in1, float *out, zn_cuda_ws ws)
{
    zn_cuda *cu = c->cu;
    const zn_node *n = c->node;
    zn_cuda_conv_algo *a = cache_find(cu, k);
    char text[512];
    if (!a || a->algo < 0)
        return zn_cuda_fail(cu, "cuda backend: %s has no convolution algorithm (%s)",
                            zn_cuda_node_text(n, text, sizeof text),
                            a ? a->why : "prepare was not called for this plan");
    void *t[3] = {(void *)in0, (void *)in1, out};
    if (!operands(c, k, &ws, true, t)) return false;
    if (a->workspace > ws.left)
        return zn_cuda_fail(cu, "cuda backend: %s: its algorithm needs %zu bytes of workspace, "
                            "%zu are left", zn_cuda_node_text(n, text, sizeof text), a->workspace,
                            ws.left);
    if (!set_descs(cu, k, a->math, n) ||
        !zn_cuda_dnn_ok(cu, launch(cu, k->op, a->algo, t, ws.at, a->workspace), call_name(k->op),
                        n))
        return false;
    if (!zn_cuda_half_mode(cu)) return true;
    size_t count[3];
    operand_counts(k, count);
    float back = k->op == ZN_OP_CONV2D ? 1.0f : 1.0f / zn_cuda_grad_scale(cu);
    return ZN_RT(c, zn_cuda_cast_from_half, zn_cuda_half_type(cu), count[2], back, t[2], out,
                 cu->stream);
}

/* The node's convolution with its cached algorithm; in 16 bits through the workspace copies. */
static bool run_conv(const zn_cuda_call *c)
{
    zn_cuda_conv_key k = conv_key(c->cu, c->g, c->id, c->p->batch);
    return zn_cuda_conv_run(c, &k, zn_cuda_src(c, 0), zn_cuda_src(c, 1), zn_cuda_out(c),
                            zn_cuda_ws_begin(c));
}

bool zn_cuda_run_conv2d(const zn_cuda_call *c)
{
    if (!run_conv(c)) return false;
    if (c->node->n_src < 3) return true;
    const zn_shape *y = &c->node->shape;
    return zn_cuda_add_bias(c, zn_cuda_src(c, 2), zn_cuda_out(c), zn_cuda_batch(c, y),
                            zn_arg_dim(y, 0), zn_arg_inner(y, 1));
}

bool zn_cuda_run_conv2d_bwd_data(const zn_cuda_call *c)
{
    return run_conv(c);
}

bool zn_cuda_run_conv2d_bwd_filter(const zn_cuda_call *c)
{
    return run_conv(c);
}
