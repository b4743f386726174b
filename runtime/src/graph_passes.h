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
// ONNX Runtime leaves in float stays in float here too.
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

FusionReport fuse_qdq(Graph& g);

// A per-tensor DequantizeLinear of an 8-bit tensor, then float element-wise operators on its
// output and constant scalars only (hard-swish, SiLU, GELU's pieces ...), then a per-tensor
// QuantizeLinear: every output is a function of one input byte, so the chain becomes
// quint.TableLookup with the 256 results the chain's own kernels give (the same integers, one
// table read per element instead of four float passes). Returns one line per table.
std::vector<std::string> fuse_lookup_tables(Graph& g, const ops::KernelOptions& options);

}  // namespace quint::runtime
