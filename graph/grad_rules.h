/* grad_rules.h: the gradient rules of the forward ops (the grad column of the op table, defined
 * in grad_rules.c) and the one constructor of backward nodes that they and autodiff share.
 * Internal to graph/. */
#ifndef ZN_GRAD_RULES_H
#define ZN_GRAD_RULES_H

#include "graph/graph.h"

/* Appends backward node op(src) computing the gradient of tensor `of` for forward node fwd: it is
 * named "<of's name>.grad", gets of's shape and fwd's span and block (messages point at the
 * user's line), attr or, when NULL, fwd's attributes. Returns its id. */
int zn_grad_node(zn_graph *g, int fwd, int of, zn_op op, const int *src, int n_src,
                 const zn_attrs *attr);

#define ZN_GRAD_RULE(op) void zn_grad_##op(zn_graph *g, int id, int dy, const bool *want, int *dsrc)
ZN_GRAD_RULE(conv2d);
ZN_GRAD_RULE(batchnorm);
ZN_GRAD_RULE(batchnorm_relu);
ZN_GRAD_RULE(maxpool);
ZN_GRAD_RULE(avgpool);
ZN_GRAD_RULE(global_maxpool);
ZN_GRAD_RULE(global_avgpool);
ZN_GRAD_RULE(linear);
ZN_GRAD_RULE(add);
ZN_GRAD_RULE(scale);
ZN_GRAD_RULE(concat);
ZN_GRAD_RULE(resample);
ZN_GRAD_RULE(transpose);
ZN_GRAD_RULE(flatten);
ZN_GRAD_RULE(stitch);
ZN_GRAD_RULE(xent);
ZN_GRAD_RULE(ztower);
ZN_GRAD_RULE(dropout);
ZN_GRAD_RULE(mul);
/* The element-wise ops' rules, one per EW row of op_list.h (grad_rules.c generates them). */
#define ZN_GRAD_RULE_EW(OP, E, fn, reads) ZN_GRAD_RULE(fn);
ZN_OP_LIST(ZN_OP_SKIP, ZN_GRAD_RULE_EW)
#undef ZN_GRAD_RULE_EW

#endif
