// QuantizeLinear from float32 (ONNX Runtime's arithmetic), vectorized:
//   y = rne(min(max(fl32(x / s), qmin − zp), qmax − zp)) + zp
// The comparisons are written as x86's max/min (the first operand when the comparison holds,
// else the second), so a NaN lands on qmin − zp as in the scalar kernel (ops/quantize.cc), and
// the rounding is cvtps2dq's round half to even (exact: the value is clamped to ±255 first).
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct QuantizeArgs {
  const float* x = nullptr;
  uint8_t* y = nullptr;  // int8 or uint8 bytes
  int64_t n = 0;
  float scale = 1;
  int32_t zp = 0, qmin = 0, qmax = 255;
};

using QuantizeKernel = void (*)(const QuantizeArgs&);

// nullptr for Isa::Ref.
QuantizeKernel quantize_kernel(Isa isa);

void quantize_avx512(const QuantizeArgs& a);
void quantize_avx2(const QuantizeArgs& a);

}  // namespace quint::ops::x86
