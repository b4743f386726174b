// The requantization arithmetic a run reproduces. ONNX Runtime's float32 scheme is the default;
// the others reproduce PyTorch's quantized engines (see ops/arith/ for the formulas).
#pragma once

#include <optional>
#include <string>

namespace quint {

enum class Arith { Onnx, OneDnn, Qnnpack, Fbgemm };

const char* arith_name(Arith a);  // "onnx", "onednn", "qnnpack", "fbgemm"
std::optional<Arith> arith_from_name(const std::string& name);

}  // namespace quint
