#include "quint/arith.h"

namespace quint {

const char* arith_name(Arith a) {
  switch (a) {
    case Arith::Onnx: return "onnx";
    case Arith::OneDnn: return "onednn";
    case Arith::Qnnpack: return "qnnpack";
    case Arith::Fbgemm: return "fbgemm";
  }
  return "onnx";
}

std::optional<Arith> arith_from_name(const std::string& name) {
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm})
    if (name == arith_name(a)) return a;
  return std::nullopt;
}

}  // namespace quint
