// Quantization parameters of a tensor as the model states them: real = scale * (q - zero_point),
// per tensor (one scale) or per axis (one scale per index along `axis`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quint {

struct QuantParams {
  std::vector<float> scale;        // empty: the tensor is not quantized
  std::vector<int32_t> zero_point; // same length as scale
  int axis = -1;                   // meaningful only when scale.size() > 1

  bool present() const { return !scale.empty(); }
  bool per_axis() const { return scale.size() > 1; }
  float scale_at(int64_t i) const { return scale[per_axis() ? static_cast<size_t>(i) : 0]; }
  int32_t zero_point_at(int64_t i) const {
    return zero_point[per_axis() ? static_cast<size_t>(i) : 0];
  }
};

}  // namespace quint
