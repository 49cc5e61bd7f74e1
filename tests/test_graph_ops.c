/* test_graph_ops.c: the graph IR and its op table: every op's shape rule on good and bad inputs
 * (a table of cases, with a check that every op has both), storage and copies, the DOT and text
 * dumps, and parameter and multiply-add counts against hand-computed values (DavidNet's
 * published 6,573,120 parameters among them). */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "graph/graph.h"
#include "graph/inspect.h"

static const zn_span no_span = {0};

/* Infers node id or fails the test with the message. */
static int inferred(zn_graph *g, int id)
{
    char err[256];
    if (!zn_graph_infer(g, id, err, sizeof err)) fail_msg("node %d: %s", id, err);
    return id;
}

static int leaf(zn_graph *g, zn_op op, unsigned flags, const int64_t *dim, int rank,
                const char *name)
{
    int id = zn_graph_add(g, op, NULL, 0, NULL, name, "", no_span);
    g->nodes[id].flags = flags;
    g->nodes[id].shape.rank = rank;
    memcpy(g->nodes[id].shape.dim, dim, (size_t)rank * sizeof *dim);
    return id;
}

/* Adds the leaf an item of a case describes and moves *spec past it:
 * "x[3,32,32]" a batched input, "w[64,3,3,3]" a trainable parameter, "y(10)" a class label
 * with 10 classes, "x[]" a scalar input. */
static int add_item(zn_graph *g, const char **spec)
{
    const char *p = *spec;
    char kind = *p++, *end;
    int64_t dim[8];
    int rank = 0;
    int id;
    if (kind == 'y') {
        long classes = strtol(p + 1, &end, 10);
        assert_int_equal(*end, ')');
        p = end + 1;
        id = leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT | ZN_NODE_LABEL, dim, 0, "label");
        g->nodes[id].attr.out = (int)classes;
    } else {
        assert_true(kind == 'x' || kind == 'w');
        assert_int_equal(*p++, '[');
        while (*p != ']') {
            assert_true(rank < ZN_MAX_RANK);
            dim[rank++] = strtoll(p, &end, 10);
            p = end + (*end == ',');
        }
        p++;
        id = kind == 'x' ? leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT, dim, rank, "x")
                         : leaf(g, ZN_OP_PARAM, ZN_NODE_PARAM, dim, rank, "w");
    }
    while (*p == ' ') p++;
    *spec = p;
    return id;
}

typedef struct {
    zn_op op;
    const char *srcs;  /* leaves, see add_item; for INPUT and PARAM the node under test */
    zn_attrs attr;
    const char *shape; /* expected output (zn_shape_str), or NULL */
    int64_t macs;      /* expected multiply-adds per example when shape is set */
    const char *error; /* expected part of the message when shape is NULL */
    int line;
} op_case;

/* Designated initializers after the defaults override them, as C11 specifies: that is the
 * point of ATTRS, so the warning about it is off for the table. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define ATTRS(...)                                                                            \
    {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1, .factor = {1, 1}, .perm = {0, 1, 2, 3}, \
     .scale = 1.0f, .eps = 1e-5f, .momentum = 0.9f, .weight = 1.0f, __VA_ARGS__}
#define OK(op, srcs, shape, macs, ...) {op, srcs, ATTRS(__VA_ARGS__), shape, macs, NULL, __LINE__}
#define BAD(op, srcs, error, ...) {op, srcs, ATTRS(__VA_ARGS__), NULL, 0, error, __LINE__}
#define K3 .kernel = {3, 3}

static const op_case cases[] = {
    OK(ZN_OP_INPUT, "x[3,32,32]", "[N, 3, 32, 32]", 0),
    OK(ZN_OP_INPUT, "y(10)", "[N]", 0),
    OK(ZN_OP_INPUT, "x[65536,32768]", "[N, 65536, 32768]", 0), /* exactly 2^31 */
    BAD(ZN_OP_INPUT, "x[3,0,32]", "input: shape [N, 3, 0, 32] has an extent below 1"),
    BAD(ZN_OP_INPUT, "x[65536,32769]", "more than 2^31 elements"),
    BAD(ZN_OP_INPUT, "x[4294967296,4294967296,4294967296,4294967296]", "more than 2^31"),
    BAD(ZN_OP_INPUT, "y(0)", "at least 1 class"),
    OK(ZN_OP_PARAM, "w[64,3,3,3]", "[64, 3, 3, 3]", 0),
    BAD(ZN_OP_PARAM, "w[10,-1]", "extent below 1"),

    OK(ZN_OP_CONV2D, "x[3,32,32] w[64,3,3,3]", "[N, 64, 32, 32]", 64 * 32 * 32 * 3 * 9, K3,
       .pad = {1, 1}),
    OK(ZN_OP_CONV2D, "x[3,32,32] w[8,3,3,3] w[8]", "[N, 8, 16, 16]", 8 * 16 * 16 * 27, K3,
       .pad = {1, 1}, .stride = {2, 2}),
    OK(ZN_OP_CONV2D, "x[8,16,8] w[16,1,3,3]", "[N, 16, 16, 8]", 16 * 16 * 8 * 9, K3,
       .pad = {2, 2}, .dilation = {2, 2}, .groups = 8),
    OK(ZN_OP_CONV2D, "x[4,5,7] w[2,4,1,3]", "[N, 2, 5, 5]", 2 * 5 * 5 * 4 * 3, .kernel = {1, 3}),
    OK(ZN_OP_CONV2D, "x[4,5,7] w[2,4,1,1]", "[N, 2, 3, 4]", 2 * 3 * 4 * 4, .kernel = {1, 1},
       .stride = {2, 2}, .out = 2),
    BAD(ZN_OP_CONV2D, "x[8,2,2] w[4,8,3,3]", "kernel 3 with dilation 2 does not fit input 2x2",
        K3, .dilation = {2, 2}),
    BAD(ZN_OP_CONV2D, "x[8,2,2] w[4,8,5,5]", "kernel 5 with pad 1 does not fit input 2x2",
        .kernel = {5, 5}, .pad = {1, 1}),
    BAD(ZN_OP_CONV2D, "x[6,8,8] w[4,3,3,3]", "do not split into 4 groups", K3, .groups = 4),
    BAD(ZN_OP_CONV2D, "x[3,32,32] w[64,4,3,3]",
        "weight [64, 4, 3, 3] does not match x [N, 3, 32, 32]: expected [64, 3, 3, 3]", K3),
    BAD(ZN_OP_CONV2D, "x[3,32,32] w[64,3,3,3]", "expected [32, 3, 3, 3]", K3, .out = 32),
    BAD(ZN_OP_CONV2D, "x[3,8,8] w[4,3,1,1] w[5]", "bias [5] does not match the 4 channels",
        .kernel = {1, 1}),
    BAD(ZN_OP_CONV2D, "x[3,32] w[4,3,3,3]", "x must be [C, H, W], got [N, 3, 32]", K3),
    BAD(ZN_OP_CONV2D, "x[3,8,8] w[4,3,3,3]", "kernel 0, stride 1 and dilation 1 must be at least 1"),
    BAD(ZN_OP_CONV2D, "x[3,8,8]", "conv2d: needs 2 to 3 sources (x, w[, b]), got 1", K3),
    BAD(ZN_OP_CONV2D, "y(10) w[4,3,3,3]", "x must be a float tensor, got class labels [N]", K3),

    OK(ZN_OP_BATCHNORM, "x[64,32,32] w[64] w[64] w[64] w[64]", "[N, 64, 32, 32]", 0),
    OK(ZN_OP_BATCHNORM, "x[10] w[10] w[10] w[10] w[10]", "[N, 10]", 0),
    BAD(ZN_OP_BATCHNORM, "x[64,32,32] w[64] w[64] w[32] w[64]",
        "running_mean [32] does not match the 64 channels of x [N, 64, 32, 32]"),
    BAD(ZN_OP_BATCHNORM, "x[] w[1] w[1] w[1] w[1]", "x must be [C, ...], got [N]"),
    BAD(ZN_OP_BATCHNORM, "x[4] w[4] w[4] w[4]", "needs 5 sources"),
    OK(ZN_OP_BATCHNORM_RELU, "x[64,32,32] w[64] w[64] w[64] w[64]", "[N, 64, 32, 32]", 0),
    BAD(ZN_OP_BATCHNORM_RELU, "x[64,32,32] w[64] w[32] w[64] w[64]",
        "beta [32] does not match the 64 channels of x [N, 64, 32, 32]"),
    OK(ZN_OP_BATCHNORM_RELU_BWD_COEF, "x[8,4,4] w[8] w[8] x[8,4,4]", "[56]", 0),
    BAD(ZN_OP_BATCHNORM_RELU_BWD_COEF, "x[8,4,4] w[8] w[8] x[8,4,2]",
        "x [N, 8, 4, 4] and dy [N, 8, 4, 2] must be one shape"),
    BAD(ZN_OP_BATCHNORM_RELU_BWD_COEF, "x[8,4,4] w[8] w[4] x[8,4,4]",
        "beta [4] does not match the 8 channels"),
    OK(ZN_OP_BATCHNORM_RELU_BWD_DATA, "x[8,4,4] x[8,4,4] w[56]", "[N, 8, 4, 4]", 0),
    BAD(ZN_OP_BATCHNORM_RELU_BWD_DATA, "x[8,4,4] x[8,4,4] w[40]",
        "coef [40] must be [56], 7 per channel of x [N, 8, 4, 4]"),

    OK(ZN_OP_RELU, "x[5,4]", "[N, 5, 4]", 0),
    BAD(ZN_OP_RELU, "y(10)", "float tensor"),
    OK(ZN_OP_GELU, "x[3,2,2]", "[N, 3, 2, 2]", 0),
    BAD(ZN_OP_GELU, "y(10)", "float tensor"),
    OK(ZN_OP_SILU, "x[7]", "[N, 7]", 0),
    BAD(ZN_OP_SILU, "y(3)", "float tensor"),
    OK(ZN_OP_SIGMOID, "w[2,5]", "[2, 5]", 0),
    BAD(ZN_OP_SIGMOID, "y(2)", "float tensor"),
    OK(ZN_OP_SCALE, "x[10]", "[N, 10]", 0, .scale = 0.125f),
    BAD(ZN_OP_SCALE, "x[10] x[10]", "needs 1 source (x), got 2"),
    OK(ZN_OP_DROPOUT, "x[8,4,4]", "[N, 8, 4, 4]", 0, .drop = 0.5f, .stream = 3),
    BAD(ZN_OP_DROPOUT, "x[8]", "dropout: p = 1 is outside [0, 1)", .drop = 1.0f),
    OK(ZN_OP_MUL, "x[8,4,4] x[8,4,4]", "[N, 8, 4, 4]", 0),
    OK(ZN_OP_MUL, "x[8,4,4] x[8]", "[N, 8, 4, 4]", 0),
    OK(ZN_OP_MUL, "w[6] w[6]", "[6]", 0),
    BAD(ZN_OP_MUL, "x[8,4,4] x[4]",
        "cannot multiply [N, 8, 4, 4] by [N, 4]: expected the same shape or a per-channel gate "
        "[N, 8]"),
    BAD(ZN_OP_MUL, "x[8,4,4] w[8]", "by [8]: expected the same shape or a per-channel gate"),
    BAD(ZN_OP_MUL, "x[8] x[4]", "cannot multiply [N, 8] by [N, 4]: the shapes must be equal"),
    OK(ZN_OP_MUL_SUM, "x[8,4,4] x[8,4,4]", "[N, 8]", 0),
    BAD(ZN_OP_MUL_SUM, "x[8,4,4] x[8,4,2]", "dy [N, 8, 4, 4] and a [N, 8, 4, 2] must be one shape"),

    OK(ZN_OP_MAXPOOL, "x[128,32,32]", "[N, 128, 16, 16]", 0, .kernel = {2, 2}, .stride = {2, 2}),
    OK(ZN_OP_MAXPOOL, "x[4,7,7]", "[N, 4, 4, 4]", 0, K3, .stride = {2, 2}, .pad = {1, 1}),
    BAD(ZN_OP_MAXPOOL, "x[4,2,2]", "kernel 3 does not fit input 2x2", K3),
    BAD(ZN_OP_MAXPOOL, "x[4,8,8]", "pad 2 is more than half of kernel 3", K3, .pad = {2, 2}),
    BAD(ZN_OP_MAXPOOL, "x[4,8,8]", "stride 0x1", .kernel = {2, 2}, .stride = {0, 1}),
    OK(ZN_OP_AVGPOOL, "x[4,9,6]", "[N, 4, 3, 2]", 0, K3, .stride = {3, 3}),
    BAD(ZN_OP_AVGPOOL, "x[4,9]", "x must be [C, H, W], got [N, 4, 9]", K3),

    OK(ZN_OP_GLOBAL_MAXPOOL, "x[512,4,4]", "[N, 512]", 0),
    BAD(ZN_OP_GLOBAL_MAXPOOL, "x[512]", "x must be [C, H, W], got [N, 512]"),
    OK(ZN_OP_GLOBAL_AVGPOOL, "x[64,8,3]", "[N, 64]", 0),
    BAD(ZN_OP_GLOBAL_AVGPOOL, "y(3)", "float tensor"),

    OK(ZN_OP_LINEAR, "x[512] w[10,512]", "[N, 10]", 5120),
    OK(ZN_OP_LINEAR, "x[512] w[10,512] w[10]", "[N, 10]", 5120, .out = 10),
    BAD(ZN_OP_LINEAR, "x[512,4,4] w[10,512]",
        "x must be a vector [I], got [N, 512, 4, 4]; flatten it or pool it globally first"),
    BAD(ZN_OP_LINEAR, "x[512] w[10,256]",
        "weight [10, 256] does not match x [N, 512]: expected [10, 512]"),
    BAD(ZN_OP_LINEAR, "x[512] w[10,512] w[9]", "bias [9] does not match the 10 channels"),

    OK(ZN_OP_ADD, "x[128,16,16] x[128,16,16]", "[N, 128, 16, 16]", 0),
    BAD(ZN_OP_ADD, "x[128,16,16] x[256,8,8]", "add: cannot add [N, 128, 16, 16] and [N, 256, 8, 8]"),
    BAD(ZN_OP_ADD, "x[4] w[4]", "cannot add [N, 4] and [4]"),

    OK(ZN_OP_CONCAT, "x[512] x[8]", "[N, 520]", 0),
    OK(ZN_OP_CONCAT, "x[2,4,4] x[3,4,4] x[1,4,4]", "[N, 6, 4, 4]", 0),
    OK(ZN_OP_CONCAT, "x[2,4,4] x[2,4,1]", "[N, 2, 4, 5]", 0, .axis = 2),
    OK(ZN_OP_CONCAT, "x[7]", "[N, 7]", 0),
    BAD(ZN_OP_CONCAT, "x[2,4,4] x[2,4,4] x[2,5,4]",
        "input 2 [N, 2, 5, 4] does not match input 0 [N, 2, 4, 4] outside axis 0"),
    BAD(ZN_OP_CONCAT, "x[2,4,4] x[2,4]", "input 1 [N, 2, 4] does not match input 0"),
    BAD(ZN_OP_CONCAT, "x[2,4,4] x[2,4,4]", "axis 3 is not an axis of input 0 [N, 2, 4, 4]",
        .axis = 3),
    BAD(ZN_OP_CONCAT, "x[2] x[2]", "axis -1 is not an axis", .axis = -1),
    BAD(ZN_OP_CONCAT, "", "needs at least 1 source (inputs...), got 0"),

    OK(ZN_OP_RESAMPLE, "x[4,16,16]", "[N, 4, 8, 8]", 0, .factor = {2, 2}),
    OK(ZN_OP_RESAMPLE, "x[4,8,6]", "[N, 4, 4, 6]", 0, .mode = ZN_RESAMPLE_AVG, .factor = {2, 1}),
    OK(ZN_OP_RESAMPLE, "x[4,4,4]", "[N, 4, 8, 8]", 0, .mode = ZN_RESAMPLE_NEAREST,
       .factor = {2, 2}),
    OK(ZN_OP_RESAMPLE, "x[4,16,16]", "[N, 4, 8, 8]", 0, .size = {8, 8}),
    OK(ZN_OP_RESAMPLE, "x[4,4,4]", "[N, 4, 8, 8]", 0, .mode = ZN_RESAMPLE_NEAREST, .size = {8, 8}),
    OK(ZN_OP_RESAMPLE, "x[4,8,8]", "[N, 4, 8, 8]", 0, .size = {8, 8}),
    OK(ZN_OP_RESAMPLE, "x[4,8,8]", "[N, 4, 8, 8]", 0, .mode = ZN_RESAMPLE_NEAREST, .size = {8, 8}),
    BAD(ZN_OP_RESAMPLE, "x[4,16,16]", "x [N, 4, 16, 16] does not divide by factor 3",
        .factor = {3, 3}),
    BAD(ZN_OP_RESAMPLE, "x[4,8,8]", "max cannot resample x [N, 4, 8, 8] to 16x16: it only shrinks",
        .size = {16, 16}),
    BAD(ZN_OP_RESAMPLE, "x[4,8,8]", "nearest cannot resample x [N, 4, 8, 8] to 4x4: it only enlarges",
        .mode = ZN_RESAMPLE_NEAREST, .size = {4, 4}),
    BAD(ZN_OP_RESAMPLE, "x[4,16,16]", "to 5x5", .size = {5, 5}),
    BAD(ZN_OP_RESAMPLE, "x[4,16,16]", "size 8x0 must be positive", .size = {8, 0}),
    BAD(ZN_OP_RESAMPLE, "x[4,16,16]", "factor 0 must be at least 1", .factor = {0, 0}),
    BAD(ZN_OP_RESAMPLE, "x[4,16]", "x must be [C, H, W]", .factor = {2, 2}),

    OK(ZN_OP_TRANSPOSE, "x[2,3,4]", "[N, 3, 2, 4]", 0, .perm = {1, 0, 2}),
    OK(ZN_OP_TRANSPOSE, "x[2,3,4,5]", "[N, 5, 4, 3, 2]", 0, .perm = {3, 2, 1, 0}),
    OK(ZN_OP_TRANSPOSE, "x[2,3,4]", "[N, 2, 3, 4]", 0),
    BAD(ZN_OP_TRANSPOSE, "x[2,3,4]", "perm (1, 1, 0) is not a permutation of the 3 axes of x [N, 2, 3, 4]",
        .perm = {1, 1, 0}),
    BAD(ZN_OP_TRANSPOSE, "x[2,3,4]", "perm (0, 1, 3) is not a permutation", .perm = {0, 1, 3}),

    OK(ZN_OP_FLATTEN, "x[512,4,4]", "[N, 8192]", 0),
    OK(ZN_OP_FLATTEN, "w[3,2]", "[6]", 0),
    BAD(ZN_OP_FLATTEN, "y(10)", "float tensor"),

    OK(ZN_OP_STITCH, "x[128,16,16] x[256,8,8] x[512,4,4]", "[N, 8, 896, 8]", 0, .size = {8, 8}),
    OK(ZN_OP_STITCH, "x[128,16,16]", "[N, 8, 128, 8]", 0, .size = {8, 8}),
    OK(ZN_OP_STITCH, "x[3,8,4] x[5,2,1]", "[N, 4, 8, 2]", 0, .mode = ZN_RESAMPLE_AVG,
       .size = {4, 2}),
    BAD(ZN_OP_STITCH, "x[128,16,16] x[256,6,6]",
        "input 1 [N, 256, 6, 6] does not resample to 8x8 by an integer factor", .size = {8, 8}),
    BAD(ZN_OP_STITCH, "x[128,16,16]", "size 0x0 must be positive"),
    BAD(ZN_OP_STITCH, "x[128,16,16]", "not nearest", .mode = ZN_RESAMPLE_NEAREST, .size = {8, 8}),
    BAD(ZN_OP_STITCH, "x[128,16,16] x[4,8]", "input 1 must be [C, H, W], got [N, 4, 8]",
        .size = {8, 8}),
    BAD(ZN_OP_STITCH, "x[4,16,16] w[4,8,8]", "input 1 [4, 8, 8] and input 0 [N, 4, 16, 16]",
        .size = {8, 8}),

    /* the fused z-tower: its conv's multiply-adds once (the training statistics pass is counted
     * in its backward's coefficients) */
    OK(ZN_OP_ZTOWER, "x[128,16,16] x[256,8,8] x[512,4,4] w[8,8,3,3] w[8] w[8] w[8] w[8]", "[N, 8]",
       8 * 8 * 9 * 896 * 8, K3, .pad = {2, 2}, .dilation = {2, 2}, .size = {8, 8}),
    OK(ZN_OP_ZTOWER, "x[4,8,8] w[2,8,1,3] w[2] w[2] w[2] w[2]", "[N, 2]", 2 * 8 * 3 * 4 * 6,
       .kernel = {1, 3}, .size = {8, 8}),
    BAD(ZN_OP_ZTOWER, "x[4,8,8] w[2,4,3,3] w[2] w[2] w[2] w[2]",
        "weight [2, 4, 3, 3] does not match the stitch [N, 8, 4, 8]: expected [F, 8, 3, 3]", K3,
        .pad = {1, 1}, .size = {8, 8}),
    BAD(ZN_OP_ZTOWER, "x[4,8,8] w[2,8,3,3] w[3] w[2] w[2] w[2]",
        "gamma [3] does not match the 2 channels", K3, .pad = {1, 1}, .size = {8, 8}),
    BAD(ZN_OP_ZTOWER, "x[4,6,6] w[2,8,3,3] w[2] w[2] w[2] w[2]",
        "input 0 [N, 4, 6, 6] does not resample to 8x8", K3, .pad = {1, 1}, .size = {8, 8}),
    BAD(ZN_OP_ZTOWER, "x[4,8,8] w[2,8,3,3] w[2] w[2] w[2]", "sources", K3, .size = {8, 8}),
    BAD(ZN_OP_ZTOWER, "w[4,8,8] w[2,8,3,3] w[2] w[2] w[2] w[2]", "input 0 [4, 8, 8] is not per example",
        K3, .pad = {1, 1}, .size = {8, 8}),

    OK(ZN_OP_XENT, "x[10] y(10)", "[]", 0),
    BAD(ZN_OP_XENT, "x[10] y(100)", "logits [N, 10] have 10 classes, the label has 100"),
    BAD(ZN_OP_XENT, "x[10] x[]", "the second source must be a class label input, got input [N]"),
    BAD(ZN_OP_XENT, "x[10,2] y(10)", "logits must be [K], got [N, 10, 2]"),
    BAD(ZN_OP_XENT, "w[10] y(10)", "logits [10] are not per example"),
    BAD(ZN_OP_XENT, "x[10] y(10)", "label smoothing 1 is outside [0, 1)", .smoothing = 1.0f),

    OK(ZN_OP_BN_FOLD_WEIGHT, "w[64,3,3,3] w[64] w[64]", "[64, 3, 3, 3]", 0),
    BAD(ZN_OP_BN_FOLD_WEIGHT, "w[64,3,3,3] w[32] w[64]", "gamma [32] does not match the 64"),
    BAD(ZN_OP_BN_FOLD_WEIGHT, "x[64,3,3] w[64] w[64]", "weight must be a parameter"),
    OK(ZN_OP_BN_FOLD_BIAS, "w[64] w[64] w[64] w[64]", "[64]", 0),
    OK(ZN_OP_BN_FOLD_BIAS, "w[64] w[64] w[64] w[64] w[64]", "[64]", 0),
    BAD(ZN_OP_BN_FOLD_BIAS, "w[64] w[64] w[64] w[64] w[8]", "bias [8] does not match the 64"),
    BAD(ZN_OP_BN_FOLD_BIAS, "x[64] w[64] w[64] w[64]", "gamma must be a parameter"),
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* Runs one case; on a mismatch writes why to why and returns false. */
static bool run_case(const op_case *c, char *why, size_t len)
{
    zn_graph g;
    zn_graph_init(&g, "case");
    const char *spec = c->srcs;
    int src[8], n_src = 0, id;
    bool leaf_case = c->op == ZN_OP_INPUT || c->op == ZN_OP_PARAM;
    while (*spec) {
        assert_true(n_src < 8);
        src[n_src++] = add_item(&g, &spec);
    }
    if (leaf_case) {
        assert_int_equal(n_src, 1);
        id = src[0];
        assert_int_equal(g.nodes[id].op, c->op);
    } else {
        for (int k = 0; k < n_src; k++) inferred(&g, src[k]);
        id = zn_graph_add(&g, c->op, src, n_src, &c->attr, "node", "", no_span);
    }
    char err[256], shape[96];
    bool ok = zn_graph_infer(&g, id, err, sizeof err);
    zn_shape_str(&g.nodes[id].shape, shape, sizeof shape);
    bool pass;
    if (c->shape) {
        pass = ok && strcmp(shape, c->shape) == 0 && zn_ops[c->op].macs(&g, id) == c->macs;
        snprintf(why, len, "expected %s (%lld MACs), got %s%s (%lld MACs)", c->shape,
                 (long long)c->macs, ok ? shape : "error: ", ok ? "" : err,
                 ok ? (long long)zn_ops[c->op].macs(&g, id) : 0LL);
    } else {
        pass = !ok && strstr(err, c->error) && strncmp(err, zn_ops[c->op].name,
                                                        strlen(zn_ops[c->op].name)) == 0;
        snprintf(why, len, "expected an error with \"%s\", got %s%s", c->error,
                 ok ? "success: " : "\"", ok ? shape : err);
    }
    zn_graph_free(&g);
    return pass;
}

static void test_shape_rules(void **state)
{
    (void)state;
    int failures = 0;
    for (int i = 0; i < N_CASES; i++) {
        char why[512];
        if (!run_case(&cases[i], why, sizeof why)) {
            fprintf(stderr, "%s:%d: %s %s: %s\n", __FILE__, cases[i].line,
                    zn_ops[cases[i].op].name, cases[i].srcs, why);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Adding a forward or inference op without shape-rule cases fails here (backward ops get their
 * shapes from autodiff; test_autodiff checks their rules). */
static void test_every_op_has_cases(void **state)
{
    (void)state;
    for (int op = 0; op < ZN_OP_COUNT; op++) {
        if (zn_op_is_backward(op)) continue;
        int good = 0, bad = 0;
        for (int i = 0; i < N_CASES; i++)
            if (cases[i].op == (zn_op)op) cases[i].shape ? good++ : bad++;
        if (!good || !bad)
            fail_msg("op %s has %d good and %d bad shape-rule cases; it needs both", zn_ops[op].name,
                     good, bad);
    }
}

static void test_op_table(void **state)
{
    (void)state;
    for (int op = 0; op < ZN_OP_COUNT; op++) {
        const zn_op_info *info = &zn_ops[op];
        if (!info->name) fail_msg("op %d has no row in zn_ops", op);
        assert_non_null(info->infer);
        assert_non_null(info->macs);
        assert_non_null(info->srcs);
        assert_true(info->min_src >= 0);
        assert_true(info->max_src == -1 || info->max_src >= info->min_src);
        assert_int_equal(zn_op_by_name(info->name), op);
        bool leaf_op = op == ZN_OP_INPUT || op == ZN_OP_PARAM;
        assert_int_equal(info->grad != NULL, !leaf_op && info->kind == ZN_OP_KIND_FORWARD);
    }
    assert_int_equal(zn_op_by_name("conv"), ZN_OP_COUNT);
    assert_int_equal(zn_op_by_name(""), ZN_OP_COUNT);
}

static void test_attrs_default(void **state)
{
    (void)state;
    const zn_attrs a = zn_attrs_default();
    assert_int_equal(a.stride[0], 1);
    assert_int_equal(a.dilation[1], 1);
    assert_int_equal(a.factor[0], 1);
    assert_int_equal(a.groups, 1);
    assert_int_equal(a.kernel[0], 0);
    assert_true(a.eps == 1e-5f && a.momentum == 0.9f && a.scale == 1.0f && a.weight == 1.0f);
    /* the table's ATTRS() mirrors the defaults (zn_attrs holds only 4-byte fields: no padding) */
    const zn_attrs table = ATTRS();
    assert_memory_equal(&a, &table, sizeof a);
}

static void test_shape_helpers(void **state)
{
    (void)state;
    char buf[96];
    zn_shape s = {.rank = 3, .dim = {64, 32, 32}};
    assert_string_equal(zn_shape_str(&s, buf, sizeof buf), "[64, 32, 32]");
    assert_int_equal(zn_shape_numel(&s), 65536);
    s.batched = true;
    assert_string_equal(zn_shape_str(&s, buf, sizeof buf), "[N, 64, 32, 32]");
    zn_shape scalar = {.rank = 0};
    assert_string_equal(zn_shape_str(&scalar, buf, sizeof buf), "[]");
    assert_int_equal(zn_shape_numel(&scalar), 1);
    scalar.batched = true;
    assert_string_equal(zn_shape_str(&scalar, buf, sizeof buf), "[N]");
    /* a short buffer truncates and stays terminated */
    memset(buf, 'z', sizeof buf);
    zn_shape_str(&s, buf, 6);
    assert_string_equal(buf, "[N, 6");
    assert_int_equal(buf[6], 'z');

    zn_shape t = s;
    assert_true(zn_shape_eq(&s, &t));
    t.batched = false;
    assert_false(zn_shape_eq(&s, &t));
    t = s;
    t.dim[2] = 31;
    assert_false(zn_shape_eq(&s, &t));
    t = s;
    t.dtype = ZN_DTYPE_I32;
    assert_false(zn_shape_eq(&s, &t));
}

static void test_infer_edges(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "edges");
    char err[256];
    int x = leaf(&g, ZN_OP_INPUT, ZN_NODE_INPUT, (const int64_t[]){1, 2, 3, 4}, 4, "x");
    g.nodes[x].shape.rank = 5;
    assert_false(zn_graph_infer(&g, x, err, sizeof err));
    assert_string_equal(err, "input: rank 5 is outside 0..4");
    g.nodes[x].shape.rank = 4;
    inferred(&g, x);
    /* nearest upsampling by a huge factor is caught by size, not overflow */
    int x3 = leaf(&g, ZN_OP_INPUT, ZN_NODE_INPUT, (const int64_t[]){1, 1 << 20, 1 << 10}, 3, "x3");
    inferred(&g, x3);
    zn_attrs a = zn_attrs_default();
    a.mode = ZN_RESAMPLE_NEAREST;
    a.factor[0] = a.factor[1] = 1 << 30;
    int up = zn_graph_add(&g, ZN_OP_RESAMPLE, &x3, 1, &a, "up", "", no_span);
    assert_false(zn_graph_infer(&g, up, err, sizeof err));
    assert_non_null(strstr(err, "more than 2^31 elements per example"));
    /* a message that does not fit is cut, never overrun */
    char tiny[8];
    memset(tiny, 'z', sizeof tiny);
    assert_false(zn_graph_infer(&g, up, tiny, 5));
    assert_string_equal(tiny, "resa");
    assert_int_equal(tiny[5], 'z');
    zn_graph_free(&g);
}

static void test_add_and_copy(void **state)
{
    (void)state;
    zn_graph g;
    char model[] = "copied";
    zn_graph_init(&g, model);
    model[0] = 'X';
    char name[] = "b1.conv", block[] = "b1/res";
    int x = inferred(&g, leaf(&g, ZN_OP_INPUT, ZN_NODE_INPUT, (const int64_t[]){4}, 1, "x"));
    int src[2] = {x, x};
    int add = zn_graph_add(&g, ZN_OP_ADD, src, 2, NULL, name, block, (zn_span){"m.znet", 3, 5, 3, 9});
    int anon = zn_graph_add(&g, ZN_OP_RELU, &add, 1, NULL, NULL, NULL, no_span);
    inferred(&g, add);
    src[0] = 99;
    name[0] = block[0] = '?';
    int heads[1] = {add};
    zn_graph_add_metric(&g, ZN_METRIC_VOTE, heads, 1, "vote", no_span);
    heads[0] = 42;
    assert_string_equal(g.model_name, "copied");
    assert_int_equal(g.nodes[add].src[0], x);
    assert_string_equal(g.nodes[add].name, "b1.conv");
    assert_string_equal(g.nodes[add].block, "b1/res");
    assert_string_equal(g.nodes[anon].name, "");
    assert_int_equal(g.nodes[add].grad_of, -1);
    assert_int_equal(g.nodes[add].state_of, -1);
    assert_int_equal(g.metrics[0].heads[0], add);
    /* enough nodes to move the node array and fill several pool chunks */
    char longname[5000];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    for (int i = 0; i < 200; i++) zn_graph_add(&g, ZN_OP_RELU, &add, 1, NULL, longname, "", no_span);
    assert_string_equal(g.nodes[add].name, "b1.conv");

    zn_graph c;
    zn_graph_copy(&c, &g);
    zn_graph_free(&g);
    assert_int_equal(c.n_nodes, 203);
    assert_string_equal(c.model_name, "copied");
    assert_string_equal(c.nodes[add].name, "b1.conv");
    assert_string_equal(c.nodes[add].span.file, "m.znet");
    assert_int_equal(c.nodes[add].span.col, 5);
    assert_int_equal(c.nodes[add].src[1], x);
    assert_int_equal(c.nodes[x].flags, ZN_NODE_INPUT);
    assert_true(c.nodes[add].shape.batched);
    assert_int_equal(c.nodes[add].shape.dim[0], 4);
    assert_string_equal(c.nodes[202].name, longname);
    assert_int_equal(c.n_metrics, 1);
    assert_string_equal(c.metrics[0].name, "vote");
    assert_int_equal(c.metrics[0].heads[0], add);
    zn_graph_free(&c);
}

/* Graph builders for the DOT, summary and count tests. */
static int param(zn_graph *g, const char *name, unsigned flags, const int64_t *dim, int rank)
{
    return inferred(g, leaf(g, ZN_OP_PARAM, flags, dim, rank, name));
}

static int op_node(zn_graph *g, zn_op op, const int *src, int n_src, const zn_attrs *a,
                   const char *name, const char *block)
{
    return inferred(g, zn_graph_add(g, op, src, n_src, a, name, block, no_span));
}

/* conv 3x3 pad 1 without bias -> batch norm -> relu, as DavidNet's cbr. */
static int cbr(zn_graph *g, int x, int64_t c_in, int64_t c_out, const char *block)
{
    char name[96];
    zn_attrs a = zn_attrs_default();
    a.kernel[0] = a.kernel[1] = 3;
    a.pad[0] = a.pad[1] = 1;
    snprintf(name, sizeof name, "%s.conv.w", block);
    int w = param(g, name, ZN_NODE_PARAM, (const int64_t[]){c_out, c_in, 3, 3}, 4);
    snprintf(name, sizeof name, "%s.conv", block);
    int conv = op_node(g, ZN_OP_CONV2D, (const int[]){x, w}, 2, &a, name, block);
    int bn_src[5] = {conv};
    static const char *const role[] = {"gamma", "beta", "mean", "var"};
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s.bn.%s", block, role[k]);
        bn_src[k + 1] = param(g, name, k < 2 ? ZN_NODE_PARAM : ZN_NODE_STATE,
                              (const int64_t[]){c_out}, 1);
    }
    snprintf(name, sizeof name, "%s.bn", block);
    int bn = op_node(g, ZN_OP_BATCHNORM, bn_src, 5, NULL, name, block);
    snprintf(name, sizeof name, "%s.relu", block);
    return op_node(g, ZN_OP_RELU, &bn, 1, NULL, name, block);
}

static int image(zn_graph *g, int64_t c, int64_t hw)
{
    return inferred(g, leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT, (const int64_t[]){c, hw, hw}, 3, "image"));
}

static int label(zn_graph *g, int classes)
{
    int y = leaf(g, ZN_OP_INPUT, ZN_NODE_INPUT | ZN_NODE_LABEL, (const int64_t[]){0}, 0, "label");
    g->nodes[y].attr.out = classes;
    return inferred(g, y);
}

static int linear(zn_graph *g, int x, int w, const char *name)
{
    return op_node(g, ZN_OP_LINEAR, (const int[]){x, w}, 2, NULL, name, "");
}

static char *capture(void (*write)(const zn_graph *, FILE *, const void *), const zn_graph *g,
                     const void *arg)
{
    static char *text; /* static: open_memstream keeps their addresses until fclose */
    static size_t len;
    text = NULL;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    write(g, f, arg);
    fclose(f);
    return text;
}

static void write_dot(const zn_graph *g, FILE *f, const void *opts)
{
    zn_graph_write_dot_opts(g, f, opts);
}

static void write_text(const zn_graph *g, FILE *f, const void *unused)
{
    (void)unused;
    zn_graph_write_text(g, f);
}

static void write_summary(const zn_graph *g, FILE *f, const void *batch)
{
    zn_graph_write_summary(g, f, *(const int *)batch);
}

/* image -> cbr in block "b1/res" -> gmp -> linear -> xent head, plus a node in "b1" and a name
 * that needs escaping. */
static void build_small(zn_graph *g)
{
    zn_graph_init(g, "small \"net\"");
    int x = image(g, 3, 8);
    int y = label(g, 10);
    int h = cbr(g, x, 3, 8, "b1/res");
    int pooled = op_node(g, ZN_OP_GLOBAL_MAXPOOL, &h, 1, NULL, "b1.pool", "b1");
    int w = param(g, "head.w", ZN_NODE_PARAM, (const int64_t[]){10, 8}, 2);
    int logits = linear(g, pooled, w, "we\"ird\\name");
    int loss = op_node(g, ZN_OP_XENT, (const int[]){logits, y}, 2, NULL, "h1", "");
    g->nodes[loss].flags |= ZN_NODE_LOSS;
    g->nodes[pooled].span = (zn_span){"small.znet", 7, 3, 7, 9};
    zn_graph_add_metric(g, ZN_METRIC_VOTE, &loss, 1, "vote", no_span);
}

/* FNV-1a, as graph/hash.c defines the fingerprint. */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The fingerprint recomputed from what the checkpoint format defines, op NAMES and no enum
 * number anywhere: that zn_graph_hash agrees means reordering graph/op_list.h (which renumbers
 * the ops) changes no fingerprint. Backward nodes are left out. */
static uint64_t hash_by_names(const zn_graph *g)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *n = &g->nodes[i];
        if (n->flags & ZN_NODE_BACKWARD) continue;
        const char *op = zn_ops[n->op].name;
        h = fnv(h, op, strlen(op) + 1);
        h = fnv(h, &n->shape.rank, sizeof n->shape.rank);
        h = fnv(h, n->shape.dim, sizeof n->shape.dim[0] * n->shape.rank);
        h = fnv(h, n->src, sizeof *n->src * n->n_src);
        h = fnv(h, n->name, strlen(n->name));
        const zn_attrs *a = &n->attr;
        h = fnv(h, a->kernel, sizeof a->kernel);
        h = fnv(h, a->stride, sizeof a->stride);
        h = fnv(h, a->pad, sizeof a->pad);
        h = fnv(h, a->dilation, sizeof a->dilation);
        h = fnv(h, &a->groups, sizeof a->groups);
    }
    return h;
}

static void test_hash_by_op_names(void **state)
{
    (void)state;
    zn_graph g;
    build_small(&g);
    const uint64_t h = zn_graph_hash(&g);
    assert_true(h == hash_by_names(&g));
    /* version 1 entered the numbers: another fingerprint of the same graph */
    assert_true(zn_graph_hash_v1(&g) != 0 && zn_graph_hash_v1(&g) != h);
    /* an op of the same shape in a node's place: another fingerprint */
    int relu = g.n_nodes;
    while (g.nodes[--relu].op != ZN_OP_RELU) continue;
    g.nodes[relu].op = ZN_OP_SCALE;
    assert_true(zn_graph_hash(&g) != h && zn_graph_hash(&g) == hash_by_names(&g));
    /* an op version 1 did not have: no version-1 checkpoint can match */
    g.nodes[relu].op = ZN_OP_GELU;
    assert_true(zn_graph_hash(&g) == hash_by_names(&g) && zn_graph_hash_v1(&g) == 0);
    zn_graph_free(&g);
}

/* Feeds text to `dot -Tsvg`; fails on a non-zero exit or any message from dot. */
static void render_with_dot(const char *text)
{
    char cmd[1024];
    const char *errs = zt_write_file("dot.err", "");
    snprintf(cmd, sizeof cmd, "dot -Tsvg -o %s/graph.svg 2>%s", zt_tmpdir(), errs);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *e = fopen(errs, "r");
    assert_non_null(e);
    char line[512];
    if (fgets(line, sizeof line, e)) fail_msg("dot said: %s", line);
    fclose(e);
}

static void test_dot(void **state)
{
    (void)state;
    zn_graph g;
    build_small(&g);
    char *hidden = capture(write_dot, &g, &(zn_dot_opts){.show_params = false});
    char *shown = capture(write_dot, &g, &(zn_dot_opts){.show_params = true});
    char *whole = capture(write_dot, &g, &(zn_dot_opts){.depth = 1});
    char *inner = capture(write_dot, &g, &(zn_dot_opts){.depth = 2});
    /* nested clusters: "b1.res" opens inside "b1" with no closing brace between */
    const char *b1 = strstr(hidden, "label=\"b1\""), *res = strstr(hidden, "label=\"b1.res\"");
    assert_non_null(b1);
    assert_non_null(res);
    assert_true(b1 < res && !memchr(b1, '}', (size_t)(res - b1)));
    assert_null(strstr(res, "label=\"b1\"")); /* b1 opens once */
    assert_non_null(strstr(hidden, "we\\\"ird\\\\name\\nlinear [N, 10]"));
    assert_non_null(strstr(hidden, "digraph \"small \\\"net\\\"\""));
    assert_non_null(strstr(hidden, "b1.pool\\nglobal_maxpool [N, 8]"));
    assert_null(strstr(hidden, "label=\"[")); /* the shape is on the node, not on its edges */
    /* depth 1: b1 one node with its one result's shape, no cluster; depth 2: b1 a cluster, res one node */
    assert_non_null(strstr(whole, "[label=\"b1\\n[N, 8]\", shape=box3d"));
    assert_null(strstr(whole, "subgraph"));
    assert_null(strstr(whole, "b1.pool"));
    b1 = strstr(inner, "label=\"b1\"");
    assert_non_null(b1);
    assert_non_null(strstr(b1, "[label=\"b1.res\\n[N, 8, 8, 8]\", shape=box3d"));
    assert_non_null(strstr(inner, "b1.pool\\nglobal_maxpool [N, 8]"));
    assert_null(strstr(hidden, "head.w"));
    assert_non_null(strstr(shown, "head.w\\nparam [10, 8]"));
    assert_non_null(strstr(shown, "b1/res.bn.mean"));
    assert_non_null(strstr(hidden, "peripheries=2")); /* the loss head */
    assert_non_null(strstr(hidden, "shape=invhouse")); /* inputs */
    assert_non_null(strstr(hidden, "vote"));
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_dot: `dot` (graphviz) is not installed; skipping the render check\n");
        free(hidden);
        free(shown);
        free(whole);
        free(inner);
        zn_graph_free(&g);
        skip();
    }
    render_with_dot(hidden);
    render_with_dot(shown);
    render_with_dot(whole);
    render_with_dot(inner);
    free(hidden);
    free(shown);
    free(whole);
    free(inner);
    zn_graph_free(&g);
}

static void test_text_dump(void **state)
{
    (void)state;
    zn_graph g;
    build_small(&g);
    char *text = capture(write_text, &g, NULL);
    assert_non_null(strstr(text, "%3 = conv2d(%0, %2) b1/res.conv [N, 8, 8, 8] kernel=3 stride=1 "
                                 "pad=1 dilation=1 groups=1\n"));
    assert_non_null(strstr(text, "%10 = global_maxpool(%9) b1.pool [N, 8]  # small.znet:7\n"));
    assert_non_null(strstr(text, "%1 = input() label [N] out=10 input label\n"));
    assert_non_null(strstr(text, "%6 = param() b1/res.bn.mean [8] init=none state\n"));
    assert_non_null(strstr(text, "xent(%12, %1) h1 [] smoothing=0 weight=1 reduction=sum loss\n"));
    assert_non_null(strstr(text, "metric vote vote(%13)\n"));
    free(text);
    zn_graph_free(&g);
}

/* conv 3x3 (3 -> 16, no bias) -> bn -> relu -> global max pool -> linear 16 -> 10 with bias. */
static void test_counts_small(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "small");
    int x = image(&g, 3, 32);
    int h = cbr(&g, x, 3, 16, "c");
    int pooled = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, &h, 1, NULL, "gmp", "");
    int w = param(&g, "fc.w", ZN_NODE_PARAM, (const int64_t[]){10, 16}, 2);
    int b = param(&g, "fc.b", ZN_NODE_PARAM, (const int64_t[]){10}, 1);
    op_node(&g, ZN_OP_LINEAR, (const int[]){pooled, w, b}, 3, NULL, "fc", "");
    /* conv 16*3*3*3 = 432, bn gamma+beta 32, linear 160 + 10 */
    assert_int_equal(zn_graph_param_count(&g), 432 + 32 + 170);
    /* conv 16*32*32 outputs of 27 MACs each, linear 10*16 */
    assert_int_equal(zn_graph_macs(&g), 16 * 32 * 32 * 27 + 160);
    char *text = capture(write_summary, &g, &(int){2});
    assert_non_null(strstr(text, "trainable parameters     634\n"));
    assert_non_null(strstr(text, "non-trainable state      32\n"));
    assert_non_null(strstr(text, "MACs per example         442,528 (0.001 GFLOP)\n"));
    /* activations: image 3072 + conv, bn, relu 3*16384 + gmp 16 + fc 10 floats */
    int64_t act = 4 * (3072 + 3 * 16384 + 16 + 10);
    char want[128];
    snprintf(want, sizeof want, "activations per example  %.1f KiB; at batch 2: %.1f KiB\n",
             act / 1024.0, 2 * act / 1024.0);
    assert_non_null(strstr(text, want));
    /* rows are numbered 0, 1, ... past the parameters' node ids; a row names the rows it reads */
    assert_non_null(strstr(text, "connected to\n"));
    assert_non_null(strstr(text, "\n0  image "));
    assert_non_null(strstr(text, "\n1  c.conv  conv2d"));
    assert_non_null(strstr(text, "432  442,368  0\n"));
    assert_non_null(strstr(text, "\n5  fc "));
    assert_non_null(strstr(text, "160  4\n")); /* fc reads gmp (row 4), not its weight and bias */
    assert_null(strstr(text, "fc.w")); /* parameters get no row */
    free(text);
    zn_graph_free(&g);
}

/* Page's DavidNet (davidnet.md): 6,573,120 trainable parameters; its MACs are those of five
 * 75,497,472-MAC stages (layer1, res1, layer2, layer3, res3), the 3 -> 64 prep conv and the
 * 512 -> 10 classifier. */
static void test_counts_davidnet(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "davidnet");
    zn_attrs pool = zn_attrs_default();
    pool.kernel[0] = pool.kernel[1] = pool.stride[0] = pool.stride[1] = 2;
    int y = label(&g, 10);
    int x = cbr(&g, image(&g, 3, 32), 3, 64, "prep");
    static const struct {
        const char *name;
        int64_t c;
        bool residual;
    } layers[] = {{"layer1", 128, true}, {"layer2", 256, false}, {"layer3", 512, true}};
    int64_t c_in = 64;
    for (int i = 0; i < 3; i++) {
        char block[64], name[80];
        snprintf(block, sizeof block, "%s", layers[i].name);
        int h = cbr(&g, x, c_in, layers[i].c, block);
        snprintf(name, sizeof name, "%s.pool", block);
        x = op_node(&g, ZN_OP_MAXPOOL, &h, 1, &pool, name, block);
        if (layers[i].residual) {
            snprintf(block, sizeof block, "%s/res1", layers[i].name);
            int r = cbr(&g, x, layers[i].c, layers[i].c, block);
            snprintf(block, sizeof block, "%s/res2", layers[i].name);
            r = cbr(&g, r, layers[i].c, layers[i].c, block);
            snprintf(name, sizeof name, "%s.add", layers[i].name);
            x = op_node(&g, ZN_OP_ADD, (const int[]){x, r}, 2, NULL, name, layers[i].name);
        }
        c_in = layers[i].c;
    }
    int pooled = op_node(&g, ZN_OP_GLOBAL_MAXPOOL, &x, 1, NULL, "gmp", "");
    int logits = linear(&g, pooled, param(&g, "fc.w", ZN_NODE_PARAM, (const int64_t[]){10, 512}, 2),
                        "fc");
    zn_attrs scale = zn_attrs_default();
    scale.scale = 0.125f;
    logits = op_node(&g, ZN_OP_SCALE, &logits, 1, &scale, "scaled", "");
    int loss = op_node(&g, ZN_OP_XENT, (const int[]){logits, y}, 2, NULL, "loss", "");
    g.nodes[loss].flags |= ZN_NODE_LOSS;

    assert_int_equal(zn_graph_param_count(&g), 6573120);
    const int64_t stage = 75497472; /* e.g. layer1: 128*32*32 outputs * 64*9 */
    assert_int_equal(zn_graph_macs(&g), 64 * 32 * 32 * 27 + 5 * stage + 5120);
    char *text = capture(write_summary, &g, &(int){512});
    assert_non_null(strstr(text, "trainable parameters     6,573,120\n"));
    assert_non_null(strstr(text, "MACs per example         379,261,952 (0.759 GFLOP)\n"));
    free(text);
    if (system("command -v dot >/dev/null 2>&1") == 0) {
        char *dot = capture(write_dot, &g, &(zn_dot_opts){.show_params = true});
        render_with_dot(dot);
        free(dot);
    }
    zn_graph_free(&g);
}

/* A parameter shared by two layers is one parameter, owned by its first user. */
static void test_counts_shared(void **state)
{
    (void)state;
    zn_graph g;
    zn_graph_init(&g, "shared");
    int x = inferred(&g, leaf(&g, ZN_OP_INPUT, ZN_NODE_INPUT, (const int64_t[]){512}, 1, "x"));
    int w = param(&g, "w", ZN_NODE_PARAM, (const int64_t[]){10, 512}, 2);
    linear(&g, x, w, "first");
    linear(&g, x, w, "second");
    assert_int_equal(zn_graph_param_count(&g), 5120);
    assert_int_equal(zn_graph_macs(&g), 2 * 5120);
    char *text = capture(write_summary, &g, &(int){0});
    const char *first = strstr(text, "first"), *second = strstr(text, "second");
    assert_non_null(first);
    assert_non_null(second);
    const char *first_end = strchr(first, '\n'), *second_end = strchr(second, '\n');
    assert_non_null(strstr(first, "5,120  5,120  0\n"));
    assert_true(strstr(first, "5,120  5,120  0\n") < first_end);
    const char *row2 = strstr(second, "  0  5,120  0\n");
    assert_true(row2 && row2 < second_end);
    assert_non_null(strstr(text, "activations per example  2.1 KiB\n")); /* 512 + 2 * 10 floats */
    free(text);
    zn_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_rules),     cmocka_unit_test(test_every_op_has_cases),
        cmocka_unit_test(test_op_table),        cmocka_unit_test(test_attrs_default),
        cmocka_unit_test(test_hash_by_op_names),
        cmocka_unit_test(test_shape_helpers),   cmocka_unit_test(test_infer_edges),
        cmocka_unit_test(test_add_and_copy),    cmocka_unit_test(test_dot),
        cmocka_unit_test(test_text_dump),       cmocka_unit_test(test_counts_small),
        cmocka_unit_test(test_counts_davidnet), cmocka_unit_test(test_counts_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
