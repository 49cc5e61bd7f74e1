/* cuda_call.c: what the CUDA backend's runners share: the checked-call reporting (call, status
 * text, node), finding a node's tensors through the plan, and the workspace slices and 16-bit
 * copies of --precision (extents and stitch geometry: backends/node_args.h). */
#include "backends/cuda/cuda_backend.h"

#include <stdint.h>
#include <stdio.h>

#include "graph/inspect.h"

const char *zn_cuda_node_text(const zn_node *n, char *buf, size_t len)
{
    char where[256];
    const char *op = (unsigned)n->op < ZN_OP_COUNT && zn_ops[n->op].name ? zn_ops[n->op].name : "?";
    snprintf(buf, len, "node '%s' (%s, %s)", n->name, zn_node_where(n, where, sizeof where), op);
    return buf;
}

/* "cuda backend: CALL failed: STATUS[ at NODE]". */
static bool fail_call(zn_cuda *cu, const char *call, const char *status, const zn_node *n)
{
    char node[512] = "";
    if (n) {
        char text[480];
        snprintf(node, sizeof node, " at %s", zn_cuda_node_text(n, text, sizeof text));
    }
    return zn_cuda_fail(cu, "cuda backend: %s failed: %s%s", call, status, node);
}

bool zn_cuda_rt_ok(zn_cuda *cu, cudaError_t e, const char *call, const zn_node *n)
{
    if (e == cudaSuccess) return true;
    char status[256];
    snprintf(status, sizeof status, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return fail_call(cu, call, status, n);
}

bool zn_cuda_dnn_ok(zn_cuda *cu, cudnnStatus_t s, const char *call, const zn_node *n)
{
    return s == CUDNN_STATUS_SUCCESS || fail_call(cu, call, cudnnGetErrorString(s), n);
}

bool zn_cuda_blas_ok(zn_cuda *cu, cublasStatus_t s, const char *call, const zn_node *n)
{
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    char status[256];
    snprintf(status, sizeof status, "%s (%s)", cublasGetStatusString(s), cublasGetStatusName(s));
    return fail_call(cu, call, status, n);
}

void *zn_cuda_tensor(const zn_cuda_call *c, int id)
{
    return c->cu->mem[c->p->region[id]] + c->p->offset[id];
}

zn_cuda_half zn_cuda_half_type(const zn_cuda *cu)
{
    return cu->opts.precision == ZN_PRECISION_BF16 ? ZN_CUDA_BF16 : ZN_CUDA_F16;
}

cudnnDataType_t zn_cuda_dnn_type(const zn_cuda *cu)
{
    switch (cu->opts.precision) {
    case ZN_PRECISION_FP16: return CUDNN_DATA_HALF;
    case ZN_PRECISION_BF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
    }
}

float zn_cuda_grad_scale(const zn_cuda *cu)
{
    return cu->opts.precision == ZN_PRECISION_FP16 ? ZN_CUDA_FP16_LOSS_SCALE : 1.0f;
}

zn_cuda_ws zn_cuda_ws_begin(const zn_cuda_call *c)
{
    return (zn_cuda_ws){c->cu->workspace, c->cu->workspace_bytes};
}

void *zn_cuda_ws_take(const zn_cuda_call *c, zn_cuda_ws *ws, size_t bytes)
{
    size_t need = zn_cuda_align(bytes);
    if (need > ws->left) {
        char text[512];
        zn_cuda_fail(c->cu, "cuda backend: %s needs %zu more bytes of workspace than the plan "
                     "gave (%zu)", zn_cuda_node_text(c->node, text, sizeof text), need - ws->left,
                     c->cu->workspace_bytes);
        return NULL;
    }
    void *at = ws->at;
    ws->at += need;
    ws->left -= need;
    return at;
}

uint16_t *zn_cuda_to_half(const zn_cuda_call *c, zn_cuda_ws *ws, const float *x, size_t n,
                          float s)
{
    uint16_t *h = zn_cuda_ws_take(c, ws, n * sizeof *h);
    if (!h || !ZN_RT(c, zn_cuda_cast_to_half, zn_cuda_half_type(c->cu), n, s, x, h, c->cu->stream))
        return NULL;
    return h;
}

bool zn_cuda_add_bias(const zn_cuda_call *c, const float *bias, float *y, int n, int ch, int hw)
{
    zn_cuda *cu = c->cu;
    const float one = 1.0f;
    return ZN_DNN(c, cudnnSetTensor4dDescriptor, cu->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, ch,
                  1, 1) &&
           ZN_DNN(c, cudnnSetTensor4dDescriptor, cu->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, ch,
                  hw, 1) &&
           ZN_DNN(c, cudnnAddTensor, cu->cudnn, &one, cu->bd, bias, &one, cu->yd, y);
}

bool zn_cuda_gemm(const zn_cuda_call *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                  int k, const float *a, int lda, float sa, const float *b, int ldb, float sb,
                  float *y, int ldc)
{
    zn_cuda *cu = c->cu;
    const void *pa = a, *pb = b;
    cudaDataType_t t = CUDA_R_32F;
    float alpha = 1.0f, beta = 0.0f;
    if (zn_cuda_half_mode(cu)) {
        zn_cuda_ws ws = zn_cuda_ws_begin(c);
        size_t na = (size_t)lda * (size_t)(ta == CUBLAS_OP_N ? k : m);
        size_t nb = (size_t)ldb * (size_t)(tb == CUBLAS_OP_N ? n : k);
        if (!(pa = zn_cuda_to_half(c, &ws, a, na, sa)) || !(pb = zn_cuda_to_half(c, &ws, b, nb, sb)))
            return false;
        t = cu->opts.precision == ZN_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_16F;
        alpha = 1.0f / (sa * sb);
    }
    return ZN_BLAS(c, cublasGemmEx, cu->cublas, ta, tb, m, n, k, &alpha, pa, t, lda, pb, t, ldb,
                   &beta, y, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
