// TensorProto <-> Tensor, including external data files.
#pragma once

#include <memory>
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
// payloads it did not lift: a model's weights are never held twice).
Tensor tensor_from_proto(onnx::TensorProto&& p, const TensorReadContext& ctx);
// raw_data held outside the proto (see raw_data_lift.h): the proto's own raw_data is present and
// empty, and these are its bytes. With an owner, the tensor points into them (copied when
// misaligned for the element type); without, they are copied.
struct RawBytes {
  const char* data = nullptr;
  size_t size = 0;
  std::shared_ptr<void> owner;
};
Tensor tensor_from_proto(onnx::TensorProto&& p, const TensorReadContext& ctx, const RawBytes& raw);
void tensor_to_proto(const Tensor& t, onnx::TensorProto* p);

}  // namespace quint::runtime
