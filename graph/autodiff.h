/* autodiff.h: reverse-mode differentiation. Appends to a forward graph the backward nodes that
 * compute the gradient of the total loss (the sum of the loss heads, each scaled by its weight)
 * with respect to every trainable parameter, using each op's gradient rule (ops.h). */
#ifndef ZN_AUTODIFF_H
#define ZN_AUTODIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "graph/graph.h"

/* Appends the backward nodes (flag ZN_NODE_BACKWARD, named "<tensor>.grad" after the tensor
 * whose gradient they hold, with the span and block of the forward node they differentiate).
 * Only what parameter gradients need is built: nothing for inputs or for tensors with no
 * trainable parameter upstream. Every trainable PARAM the loss depends on gets exactly one node
 * flagged ZN_NODE_GRAD (grad_of = its id, its shape) that holds its gradient and nothing else;
 * a parameter used several times has its gradients summed. false with a message when g has no
 * loss head or already has backward nodes (g is then unchanged), or when a backward node fails
 * its shape check (an internal error: g then holds a partial backward pass). */
bool zn_autodiff(zn_graph *g, char *err, size_t errlen);

#endif
