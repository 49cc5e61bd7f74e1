/* onnx.h: an inference graph (runtime/compile.h, mode inference) written as an ONNX model, opset
 * 17, through protobuf-c and the C code protoc-c generates from ONNX's own onnx.proto. Each znet
 * op becomes standard ONNX ops (docs/export.md has the table); batch-norm fold nodes become
 * initializers; every loss head becomes one graph output holding its logits. */
#ifndef ZN_ONNX_H
#define ZN_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include "graph/graph.h"

#define ZN_ONNX_OPSET 17

typedef struct {
    const float *const *values; /* [g->n_nodes]: each PARAM and STATE node's values, NULL elsewhere */
    const float *mean, *std;    /* per channel of the image input, 0-255 scale: written as the
                                   first nodes, (x - mean) / std; NULL: none (the input is the
                                   normalised image) */
    const char *producer_version;
} zn_onnx_opts;

/* Writes g as ONNX to path. false with a message in err: an op with no ONNX form (naming the
 * node and its line), a graph without a head, a file that cannot be written. */
bool zn_onnx_write(const zn_graph *g, const zn_onnx_opts *o, const char *path, char *err, size_t errlen);

#endif
