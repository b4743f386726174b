// explain functions of QuantizeLinear, QLinearAdd, QLinearMul, QLinearConcat and
// QLinearGlobalAveragePool (ops/explain_qops.cc),
// set on their OpDefs by the operators' register functions.
#pragma once

#include "quint/ops/op.h"

namespace quint::ops {

Explanation explain_quantize_linear(const ExplainContext& ec);
Explanation explain_qlinear_add(const ExplainContext& ec);
Explanation explain_qlinear_mul(const ExplainContext& ec);
Explanation explain_qlinear_concat(const ExplainContext& ec);
Explanation explain_qlinear_global_avg_pool(const ExplainContext& ec);

}  // namespace quint::ops
