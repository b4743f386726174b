// Depthwise convolution microkernels (one output pixel, all channels, NHWC):
//   y[c] = requantize(Σ_t (x_t[c] − x_zp) · w[t][c] + bias[c])
// with w already centred (w − w_zp[c]) and widened to int32, so every product is exact in
// int32. Padding taps are nullptr rows and contribute nothing (ONNX's zero padding).
// The epilogue is the same as qgemm.h's.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct DwArgs {
  int64_t channels = 0;               // multiple of 16 in the arrays below (padded with zeros)
  int64_t valid_channels = 0;         // channels actually stored
  int taps = 0;
  const uint8_t* const* rows = nullptr;  // [taps], nullptr for padding
  const int32_t* w = nullptr;         // [taps][channels]
  int32_t x_zp = 0;
  const int32_t* bias = nullptr;      // [channels]
  const float* mult = nullptr;        // [channels]
  float lo = 0, hi = 255;
  int32_t zp = 0;
  bool out_signed = false;
  uint8_t* out = nullptr;             // [valid_channels]
};

using DwKernel = void (*)(const DwArgs&);

// nullptr for Isa::Ref.
DwKernel dwconv_kernel(Isa isa);

void dwconv_avx512(const DwArgs& a);
void dwconv_avx2(const DwArgs& a);

}  // namespace quint::ops::x86
