/* cuda_backend.c: the CUDA backend's vtable, returned by the module's entry point
 * zn_cuda_backend_ops() (loaded by backends/cuda_loader.c): whether a driver and a GPU are there,
 * the handles and streams, the settings from the environment, per-node scratch sizes, prepare,
 * the compute loop that dispatches every node to its runner (cuda_forward.c, cuda_backward.c)
 * with the optional non-finite check (or replays it as a CUDA graph: cuda_graph.c), the label
 * checks kernels report, and the optimizer step. */
#include "backends/cuda/cuda_backend.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_util.h"
#include "graph/inspect.h"

#define ZN_CUDA_EXPORT __attribute__((visibility("default")))

static const zn_backend_ops cuda_ops;

static zn_cuda *cuda_of(zn_backend *be)
{
    return (zn_cuda *)be;
}

/* A missing driver library would otherwise read "CUDA driver version is insufficient". */
static bool cuda_available(char *why, size_t len)
{
    void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!driver) {
        const char *e = dlerror();
        snprintf(why, len, "no NVIDIA driver: %s", e ? e : "libcuda.so.1 cannot be loaded");
        return false;
    }
    dlclose(driver);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return false;
    }
    if (count == 0) {
        snprintf(why, len, "no CUDA device (cudaGetDeviceCount found none)");
        return false;
    }
    return true;
}

static void cuda_destroy(zn_backend *be)
{
    if (!be) return;
    zn_cuda *cu = cuda_of(be);
    if (cu->stream) cudaStreamSynchronize(cu->stream);
    if (cu->copy_stream) cudaStreamSynchronize(cu->copy_stream);
    zn_cuda_release_staging(cu);
    zn_cuda_release_plan(cu);
    if (cu->tick[0]) cudaEventDestroy(cu->tick[0]);
    if (cu->tick[1]) cudaEventDestroy(cu->tick[1]);
    if (cu->blas_workspace) cudaFree(cu->blas_workspace);
    if (cu->poold) cudnnDestroyPoolingDescriptor(cu->poold);
    if (cu->convd) cudnnDestroyConvolutionDescriptor(cu->convd);
    if (cu->wd) cudnnDestroyFilterDescriptor(cu->wd);
    if (cu->bd) cudnnDestroyTensorDescriptor(cu->bd);
    if (cu->yd) cudnnDestroyTensorDescriptor(cu->yd);
    if (cu->xd) cudnnDestroyTensorDescriptor(cu->xd);
    if (cu->cublas) cublasDestroy(cu->cublas);
    if (cu->cudnn) cudnnDestroy(cu->cudnn);
    if (cu->copy_stream) cudaStreamDestroy(cu->copy_stream);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    free(cu->algos);
    zn_cuda_algo_file_free(&cu->algo_file);
    free(cu->ptrs);
    free(cu->ints);
    free(cu);
}

/* Streams, library handles (on the compute stream) and the descriptors runners set. cuBLAS's
 * default math keeps float32 products in float32 (no TF32); 16-bit operands use tensor cores. */
static bool open_device(zn_cuda *cu)
{
    return ZN_RT_AT(cu, NULL, cudaGetDevice, &cu->device) &&
           ZN_RT_AT(cu, NULL, cudaStreamCreateWithFlags, &cu->stream, cudaStreamNonBlocking) &&
           ZN_RT_AT(cu, NULL, cudaStreamCreateWithFlags, &cu->copy_stream,
                    cudaStreamNonBlocking) &&
           ZN_DNN_AT(cu, NULL, cudnnCreate, &cu->cudnn) &&
           ZN_DNN_AT(cu, NULL, cudnnSetStream, cu->cudnn, cu->stream) &&
           ZN_BLAS_AT(cu, NULL, cublasCreate, &cu->cublas) &&
           ZN_BLAS_AT(cu, NULL, cublasSetStream, cu->cublas, cu->stream) &&
           ZN_BLAS_AT(cu, NULL, cublasSetMathMode, cu->cublas, CUBLAS_DEFAULT_MATH) &&
           ZN_DNN_AT(cu, NULL, cudnnCreateTensorDescriptor, &cu->xd) &&
           ZN_DNN_AT(cu, NULL, cudnnCreateTensorDescriptor, &cu->yd) &&
           ZN_DNN_AT(cu, NULL, cudnnCreateTensorDescriptor, &cu->bd) &&
           ZN_DNN_AT(cu, NULL, cudnnCreateFilterDescriptor, &cu->wd) &&
           ZN_DNN_AT(cu, NULL, cudnnCreateConvolutionDescriptor, &cu->convd) &&
           ZN_DNN_AT(cu, NULL, cudnnCreatePoolingDescriptor, &cu->poold);
}

/* cuBLAS gets its scratch once here: a product captured into a graph may not allocate (cuBLAS's
 * advice for stream capture). Set with graphs off too, so both pick the same kernels and a run
 * with ZNET_CUDA_GRAPH=off reproduces one with graphs to the bit. After open_device: cublasSetStream
 * resets the workspace to cuBLAS's default pool. */
static bool blas_workspace(zn_cuda *cu)
{
    return ZN_RT_AT(cu, NULL, cudaMalloc, &cu->blas_workspace, ZN_CUDA_BLAS_WORKSPACE) &&
           ZN_BLAS_AT(cu, NULL, cublasSetWorkspace, cu->cublas, cu->blas_workspace,
                      ZN_CUDA_BLAS_WORKSPACE);
}

static zn_backend *cuda_create(const zn_backend_opts *opts, char *err, size_t errlen)
{
    zn_cuda *cu = zn_backend_alloc("cuda", sizeof *cu, &cuda_ops, err, errlen);
    if (!cu) return NULL;
    cu->opts = *opts;
    char why[1024];
    if (!zn_cuda_settings_parse(&cu->settings, getenv("ZNET_CUDA_GRAPH"),
                                getenv("ZNET_CUDNN_CACHE"), getenv("XDG_CACHE_HOME"),
                                getenv("HOME"), why, sizeof why)) {
        snprintf(err, errlen, "cuda backend: %s", why);
        cuda_destroy(&cu->base);
        return NULL;
    }
    if (!open_device(cu) || !blas_workspace(cu) || !zn_cuda_conv_open_cache(cu)) {
        snprintf(err, errlen, "%s", cu->err);
        cuda_destroy(&cu->base);
        return NULL;
    }
    return &cu->base;
}

static zn_cuda_runner runner_of(zn_op op)
{
    if ((unsigned)op >= ZN_OP_COUNT) return NULL;
    return zn_cuda_forward_runners[op] ? zn_cuda_forward_runners[op] : zn_cuda_backward_runners[op];
}

/* false (with the message in last_error) for an op this backend has no runner for. */
static bool cuda_supports(zn_backend *be, const zn_graph *g, int id)
{
    const zn_node *n = &g->nodes[id];
    if (n->op == ZN_OP_INPUT || n->op == ZN_OP_PARAM || runner_of(n->op)) return true;
    char text[512];
    return zn_cuda_fail(cuda_of(be), "cuda backend: %s is not supported",
                        zn_cuda_node_text(n, text, sizeof text));
}

static size_t cuda_workspace_bytes(zn_backend *be, const zn_graph *g, int id, int batch)
{
    zn_cuda *cu = cuda_of(be);
    const zn_node *n = &g->nodes[id];
    switch (n->op) {
    case ZN_OP_CONV2D:
    case ZN_OP_CONV2D_BWD_DATA:
    case ZN_OP_CONV2D_BWD_FILTER:
        return zn_cuda_conv_workspace(cu, g, id, batch);
    case ZN_OP_LINEAR:
    case ZN_OP_LINEAR_BWD_DATA:
    case ZN_OP_LINEAR_BWD_WEIGHT: /* the 16-bit copies of the two operands */
        if (!zn_cuda_half_mode(cu)) return 0;
        return zn_cuda_align(2 * zn_arg_numel(&g->nodes[n->src[0]].shape, batch)) +
               zn_cuda_align(2 * zn_arg_numel(&g->nodes[n->src[1]].shape, batch));
    case ZN_OP_MAXPOOL_BWD: /* each window's arg-max */
        return zn_cuda_align(sizeof(int) *
                             zn_arg_numel(&g->nodes[n->src[n->n_src - 1]].shape, batch));
    case ZN_OP_BIAS_BWD: /* the per-channel sums' partials */
    case ZN_OP_BATCHNORM_BWD_GAMMA:
    case ZN_OP_BATCHNORM_RELU_BWD_COEF:
        return zn_cuda_align(zn_cuda_channel_scratch_bytes(g->nodes[n->src[0]].shape.dim[0]));
    case ZN_OP_ZTOWER: /* the slice tensors, per-filter sums and the slices' convolutions */
    case ZN_OP_ZTOWER_COEF:
    case ZN_OP_ZTOWER_BWD:
        return zn_cuda_ztower_workspace(cu, g, id, batch);
    case ZN_OP_BATCHNORM_BWD_DATA: /* the partials, then three coefficients per channel */
    case ZN_OP_BATCHNORM_RELU:     /* the partials, then a and b per channel */
        return zn_cuda_align(zn_cuda_channel_scratch_bytes(g->nodes[n->src[0]].shape.dim[0])) +
               zn_cuda_align((n->op == ZN_OP_BATCHNORM_RELU ? 2 : 3) * sizeof(float) *
                             (size_t)g->nodes[n->src[0]].shape.dim[0]);
    default:
        return 0;
    }
}

/* The plan was allocated here and covers this graph, its workspace included. */
static bool check_plan(zn_cuda *cu, const zn_graph *g, const zn_plan *p)
{
    if (!zn_check_plan("cuda", p, g, cu->bytes, cu->err, sizeof cu->err)) return false;
    if (p->workspace_bytes > cu->workspace_bytes)
        return zn_cuda_fail(cu, "cuda backend: the plan's workspace (%zu bytes) is larger than "
                            "what alloc gave (%zu bytes)", p->workspace_bytes, cu->workspace_bytes);
    return true;
}

/* Every node of first..last can run: supported, and its scratch fits the plan's workspace. */
static bool check_nodes(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first, int last)
{
    for (int id = first; id <= last; id++) {
        if (!cuda_supports(&cu->base, g, id)) return false;
        size_t ws = cuda_workspace_bytes(&cu->base, g, id, p->batch);
        char text[512];
        if (ws > cu->workspace_bytes)
            return zn_cuda_fail(cu, "cuda backend: %s needs %zu bytes of workspace, the plan has "
                                "%zu", zn_cuda_node_text(&g->nodes[id], text, sizeof text), ws,
                                cu->workspace_bytes);
    }
    return true;
}

static bool cuda_prepare(zn_backend *be, const zn_graph *g, const zn_plan *p)
{
    zn_cuda *cu = cuda_of(be);
    cu->graph = g;
    zn_cuda_replay_reset(cu); /* the graph or the plan may be new at the same address */
    return check_plan(cu, g, p) && check_nodes(cu, g, p, 0, g->n_nodes - 1) &&
           zn_grow_args("cuda", g, 0, g->n_nodes - 1, &cu->ptrs, &cu->ints, &cu->cap, cu->err,
                        sizeof cu->err) &&
           zn_cuda_staging_prepare(cu, g, p) && zn_cuda_conv_prepare(cu, g, p);
}

/* "head h1 (file:line): label 12 at batch row 3 is not in 0..9", as the CPU backend says it;
 * the label is read from the pinned staging of the bytes last fed. */
static bool bad_label(zn_cuda *cu, const zn_node *n, int row)
{
    int classes = (int)cu->graph->nodes[n->src[0]].shape.dim[0];
    const zn_cuda_input *in = zn_cuda_input_of(cu, n->src[1]);
    char where[256];
    zn_node_where(n, where, sizeof where);
    if (!in || !in->fed)
        return zn_cuda_fail(cu, "head %s (%s): the label at batch row %d is not in 0..%d (no "
                            "labels were fed)", n->name, where, row, classes - 1);
    int32_t label;
    memcpy(&label, in->host + sizeof label * (size_t)row, sizeof label);
    return zn_cuda_fail(cu, "head %s (%s): label %d at batch row %d is not in 0..%d", n->name,
                        where, (int)label, row, classes - 1);
}

bool zn_cuda_settle(zn_cuda *cu)
{
    if (!ZN_RT_AT(cu, NULL, cudaStreamSynchronize, cu->stream)) return false;
    if (!cu->labels_pending) return true;
    cu->labels_pending = false;
    const zn_graph *g = cu->graph;
    for (int id = 0; g && id < cu->n_status && id < g->n_nodes; id++) {
        int flag = cu->bad_row_host[id];
        if (!flag) continue;
        /* reported once: the flags start again from zero */
        memset(cu->bad_row_host, 0, sizeof(int) * (size_t)cu->n_status);
        return ZN_RT_AT(cu, NULL, cudaMemsetAsync, cu->bad_row, 0,
                        sizeof(int) * (size_t)cu->n_status, cu->stream) &&
               bad_label(cu, &g->nodes[id], flag - 1);
    }
    return true;
}

/* After node c ran: its float output holds no NaN or infinity (waits for the node). */
static bool check_finite(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    const zn_node *n = c->node;
    if (n->shape.dtype != ZN_DTYPE_F32) return true;
    const float *y = zn_cuda_out(c);
    if (!ZN_RT(c, cudaMemsetAsync, cu->nonfinite, 0xFF, sizeof *cu->nonfinite, cu->stream) ||
        !ZN_RT(c, zn_cuda_find_nonfinite, y, zn_cuda_numel(c, &n->shape), cu->nonfinite,
               cu->stream) ||
        !ZN_RT(c, cudaMemcpyAsync, cu->nonfinite_host, cu->nonfinite, sizeof *cu->nonfinite,
               cudaMemcpyDeviceToHost, cu->stream) ||
        !ZN_RT(c, cudaStreamSynchronize, cu->stream))
        return false;
    unsigned long long at = *cu->nonfinite_host;
    if (at == ~0ULL) return true;
    float v;
    if (!ZN_RT(c, cudaMemcpyAsync, &v, y + at, sizeof v, cudaMemcpyDeviceToHost, cu->stream) ||
        !ZN_RT(c, cudaStreamSynchronize, cu->stream))
        return false;
    char text[512];
    const char *what = v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf";
    return zn_cuda_fail(cu, "%s produced %s at element %llu",
                        zn_cuda_node_text(n, text, sizeof text), what, at);
}

/* After an XENT or XENT_BWD: its label check comes back to the host with the step. */
static bool fetch_label_check(const zn_cuda_call *c)
{
    zn_cuda *cu = c->cu;
    if (!ZN_RT(c, cudaMemcpyAsync, cu->bad_row_host + c->id, cu->bad_row + c->id, sizeof(int),
               cudaMemcpyDeviceToHost, cu->stream))
        return false;
    cu->labels_pending = true;
    return !cu->opts.check_numerics || zn_cuda_settle(cu);
}

bool zn_cuda_run_nodes(zn_cuda *cu, const zn_graph *g, const zn_plan *p, int first, int last)
{
    for (int id = first; id <= last; id++) {
        const zn_node *n = &g->nodes[id];
        if (n->op == ZN_OP_INPUT || n->op == ZN_OP_PARAM) continue;
        zn_cuda_call c = {cu, g, p, id, n};
        if (!runner_of(n->op)(&c)) return false;
        if ((n->op == ZN_OP_XENT || n->op == ZN_OP_XENT_BWD) && !fetch_label_check(&c))
            return false;
        if (cu->opts.check_numerics && !check_finite(&c)) return false;
    }
    return true;
}

static bool cuda_compute(zn_backend *be, const zn_graph *g, const zn_plan *p, int first, int last)
{
    zn_cuda *cu = cuda_of(be);
    if (first < 0 || last >= g->n_nodes || first > last)
        return zn_cuda_fail(cu, "cuda backend: compute of nodes %d..%d of a graph of %d", first,
                            last, g->n_nodes);
    if (!check_plan(cu, g, p) || !check_nodes(cu, g, p, first, last)) return false;
    if (cu->n_status != g->n_nodes || cu->cap < 1)
        return zn_cuda_fail(cu, "cuda backend: compute before prepare: call prepare with this "
                            "graph and plan first");
    cu->graph = g;
    /* the staged inputs move in eagerly: their copies wait on events a graph cannot hold */
    return zn_cuda_flush_inputs(cu, 0, SIZE_MAX / 2) &&
           zn_cuda_replay_compute(cu, g, p, first, last);
}

/* Every parameter with its gradient: the state at the parameter's offset in the optimizer
 * region (Adam's v one PARAMS region later), as the CPU backend lays it out. */
static bool cuda_optimize(zn_backend *be, const zn_graph *g, const zn_plan *p,
                          const zn_optim_step *s)
{
    zn_cuda *cu = cuda_of(be);
    if (!check_plan(cu, g, p)) return false;
    if (cu->bytes[ZN_REGION_GRADS] && cu->bytes[ZN_REGION_OPTIM] < 2 * cu->bytes[ZN_REGION_PARAMS])
        return zn_cuda_fail(cu, "cuda backend: the plan has no room for the optimizer state");
    float *moment[2] = {(float *)cu->mem[ZN_REGION_OPTIM],
                        (float *)(cu->mem[ZN_REGION_OPTIM] + cu->bytes[ZN_REGION_PARAMS])};
    const zn_sgd sgd = {s->lr, s->momentum, s->weight_decay, s->nesterov};
    const zn_adam adam = {s->lr, s->beta1, s->beta2, s->eps, s->weight_decay};
    for (int id = 0; id < g->n_nodes; id++) {
        const zn_node *n = &g->nodes[id];
        if (!(n->flags & ZN_NODE_GRAD)) continue;
        int param = n->grad_of;
        char where[256];
        if (param < 0 || param >= g->n_nodes || p->region[param] != ZN_REGION_PARAMS)
            return zn_cuda_fail(cu, "cuda backend: gradient '%s' (%s) has no parameter to update",
                                n->name, zn_node_where(n, where, sizeof where));
        zn_cuda_call c = {cu, g, p, id, n};
        size_t count = (size_t)zn_shape_numel(&g->nodes[param].shape), slot = p->offset[param] / 4;
        float *w = zn_cuda_tensor(&c, param);
        const float *grad = zn_cuda_out(&c);
        bool ok = s->kind == ZN_STEP_ADAM
                      ? ZN_RT(&c, zn_cuda_adam_step, &adam, s->t, count, w, grad,
                              moment[0] + slot, moment[1] + slot, cu->stream)
                      : ZN_RT(&c, zn_cuda_sgd_step, &sgd, count, w, grad, moment[0] + slot,
                              cu->stream);
        if (!ok) return false;
    }
    return true;
}

static bool cuda_synchronize(zn_backend *be)
{
    return zn_cuda_settle(cuda_of(be));
}

static void cuda_set_training(zn_backend *be, bool training)
{
    cuda_of(be)->opts.training = training;
}

static void cuda_set_rng(zn_backend *be, uint64_t seed, uint64_t step)
{
    cuda_of(be)->rng_seed = seed;
    cuda_of(be)->rng_step = step;
}

static const char *cuda_last_error(zn_backend *be)
{
    return cuda_of(be)->err;
}

static const zn_backend_ops cuda_ops = {
    .name = "cuda",
    .available = cuda_available,
    .create = cuda_create,
    .destroy = cuda_destroy,
    .supports = cuda_supports,
    .workspace_bytes = cuda_workspace_bytes,
    .alloc = zn_cuda_alloc,
    .set = zn_cuda_set,
    .get = zn_cuda_get,
    .prepare = cuda_prepare,
    .compute = cuda_compute,
    .optimize = cuda_optimize,
    .synchronize = cuda_synchronize,
    .set_training = cuda_set_training,
    .set_rng = cuda_set_rng,
    .last_error = cuda_last_error,
    .arena_high_water = zn_cuda_arena_high_water,
    .memory_available = zn_cuda_memory_available,
};

/* The module's entry point (backends/cuda_loader.c looks it up by name). */
ZN_CUDA_EXPORT const zn_backend_ops *zn_cuda_backend_ops(void)
{
    return &cuda_ops;
}

/* The ops (other than INPUT and PARAM) with no runner, up to cap of them into ops[]; returns
 * how many there are. Needs no GPU: tests/test_cuda.c calls it to check the tables. */
ZN_CUDA_EXPORT int zn_cuda_missing_runners(int *ops, int cap)
{
    int count = 0;
    for (int op = 0; op < ZN_OP_COUNT; op++) {
        if (op == ZN_OP_INPUT || op == ZN_OP_PARAM || runner_of((zn_op)op)) continue;
        if (count < cap) ops[count] = op;
        count++;
    }
    return count;
}
