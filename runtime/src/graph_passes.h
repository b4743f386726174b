// Graph passes run at load, before planning.
//
// fold_constants evaluates nodes whose inputs are all constants (the Constant/Cast/Div/Mul
// chains exporters write), so later passes see plain initializers.
//
// fuse_qdq turns QDQ node units (DequantizeLinear → op → QuantizeLinear) into the integer
// operators ONNX Runtime runs for them at graph optimization level "all" — QLinearConv,
// QLinearMatMul, QGemm, QLinearAdd/Mul, QLinearConcat, QLinearAveragePool,
// QLinearGlobalAveragePool, and data-movement ops run directly on the integers — under the same
// preconditions as ONNX Runtime 1.30's selectors (docs/onnxruntime-semantics.md), so a unit
// ONNX Runtime leaves in float stays in float here too. Then two rewrites of its own that change
// no bit (docs/onnxruntime-semantics.md, last section): a zero Pad into the AveragePool after it,
// and DequantizeLinear → float element-wise chain → QuantizeLinear into a 256-entry
// quint.TableLookup.
#pragma once

#include <string>
#include <vector>

#include "graph.h"
#include "quint/ops/op.h"

namespace quint::runtime {

// Returns the number of nodes folded. DequantizeLinear nodes are kept when `keep_dequantize`
// (the QDQ fusion needs the integer weights behind them).
int fold_constants(Graph& g, const ops::KernelOptions& options, bool keep_dequantize);

struct FusionReport {
  std::vector<std::string> fused;      // one line per fused unit
  std::vector<std::string> not_fused;  // one line per unit left in float, with the reason
};

// `options` are the session's kernel options: the lookup-table step folds float chains with them.
FusionReport fuse_qdq(Graph& g, const ops::KernelOptions& options);

}  // namespace quint::runtime
