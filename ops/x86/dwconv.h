// Depthwise convolution microkernels (NHWC, one input and one output channel per group):
//   y[c] = requantize(Σ_t x_t[c] · w'[t][c] + bias'[c])
// Every tap reads a real row: padding taps point at a row of x_zp bytes. The zero point then
// leaves the inner loop: Σ_t (x_t − x_zp)·w' = Σ_t x_t·w' − x_zp·Σ_t w', the last term a
// per-channel constant folded into bias' at load (w' = w − w_zp, widened to int16).
// Taps are processed in pairs: the two taps' values of a channel sit next to each other as
// int16, and one multiply-add of int16 pairs into int32 (vpdpwssd / vpmaddwd) handles both —
// exact, no saturation. An odd last tap pairs with the zero-point row and weight 0.
// The epilogue is the same as qgemm.h's.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct DwArgs {
  int64_t channels = 0;               // C
  int64_t padded_channels = 0;        // C rounded up to 16: the stride of w, bias, mult
  int pairs = 0;                      // ceil(taps / 2)
  int pixels = 0;                     // output pixels in this call
  const uint8_t* const* rows = nullptr;  // [pixels][2·pairs] row pointers (padding: x_zp row)
  const int16_t* w = nullptr;         // [pairs][padded_channels][2]
  const int32_t* bias = nullptr;      // [padded_channels]
  const float* mult = nullptr;        // [padded_channels]
  float lo = 0, hi = 255;
  int32_t zp = 0;
  bool out_signed = false;
  uint8_t* out = nullptr;             // pixel p at out + p * channels
};

using DwKernel = void (*)(const DwArgs&);

// nullptr for Isa::Ref.
DwKernel dwconv_kernel(Isa isa);

void dwconv_avx512(const DwArgs& a);
void dwconv_avx2(const DwArgs& a);

}  // namespace quint::ops::x86
