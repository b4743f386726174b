// Registration functions of the operator families; registry.cc calls each one once.
#pragma once

#include "quint/ops/op.h"

namespace quint::ops {

void register_qlinear_conv(Registry& r);
void register_quantize(Registry& r);
void register_conv(Registry& r);
void register_matmul(Registry& r);
void register_pool(Registry& r);
void register_elementwise(Registry& r);
void register_qlinear_elementwise(Registry& r);
void register_shape_ops(Registry& r);
void register_normalization(Registry& r);
void register_reduce(Registry& r);

}  // namespace quint::ops
