// Depthwise convolution microkernels (NHWC, one input and one output channel per group):
//   y[c] = requantize(Σ_t x_t[c] · w'[t][c] + bias'[c])
// Every tap reads a real row: padding taps point at a row of x_zp bytes. The zero point then
// leaves the inner loop: Σ_t (x_t − x_zp)·w' = Σ_t x_t·w' − x_zp·Σ_t w', the last term a
// per-channel constant folded into bias' at load (w' = w − w_zp, in [−255, 255]).
// Each tap is one multiply-add of int16 pairs into int32 lanes (vpdpwssd / vpmaddwd): the input
// bytes are zero-extended to int32 lanes, i.e. pairs (x, 0), and the weights are int32 lanes whose
// low half is w', so every lane computes x·w' + 0·(high half) — exact, no saturation, and only one
// widening shuffle per tap.
// The epilogue is the same as qgemm.h's.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct DwArgs {
  int64_t channels = 0;               // C
  int64_t padded_channels = 0;        // C rounded up to 16: the stride of w, bias, mult
  int taps = 0;                       // kernel positions (KH·KW)
  int pixels = 0;                     // output pixels in this call
  // Without steps: [pixels][taps] row pointers (padding: the x_zp row).
  // With steps: [taps] row pointers of the first pixel; after each pixel but the last, the kernel
  // advances rows[t] by steps[t] bytes (a run of pixels along an output row: stride·C, or 0 for
  // the x_zp row).
  const uint8_t** rows = nullptr;
  const int64_t* steps = nullptr;
  const int32_t* w = nullptr;         // [taps][padded_channels], w' (sign-extended)
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
