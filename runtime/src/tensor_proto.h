// TensorProto <-> Tensor, including external data files.
#pragma once

#include <string>

#include "quint/tensor.h"

namespace onnx {
class TensorProto;
}

namespace quint::runtime {

struct TensorReadContext {
  std::string base_dir;    // folder that external data must stay inside; "" forbids external data
  std::string file;        // the model file, for messages
  int64_t max_bytes = int64_t{4} << 30;
};

Tensor tensor_from_proto(const onnx::TensorProto& p, const TensorReadContext& ctx);
// The same, taking over p's raw_data buffer instead of copying it (the loader's path for
// initializers: a model's weights are never held twice).
Tensor tensor_from_proto(onnx::TensorProto&& p, const TensorReadContext& ctx);
void tensor_to_proto(const Tensor& t, onnx::TensorProto* p);

}  // namespace quint::runtime
