// Depthwise convolution microkernels (NHWC, one input and one output channel per group):
//   y[c] = requantize(Σ_t x_t[c] · w'[t][c] + bias'[c])
// Every tap reads a real row: padding taps point at a row of x_zp bytes. The zero point then
// leaves the inner loop: Σ_t (x_t − x_zp)·w' = Σ_t x_t·w' − x_zp·Σ_t w', the last term a
// per-channel constant folded into bias' at load (w' = w − w_zp, in [−255, 255]).
// Each tap is a multiply-add of int16 pairs into int32 lanes (vpdpwssd / vpmaddwd), exact, no
// saturation. AVX2: the input bytes are zero-extended to int32 lanes, i.e. pairs (x, 0), and the
// weights are int32 lanes whose low half is w', so every lane computes x·w' + 0·(high half).
// AVX-512: see dwconv_avx512.cc (weights split by channel parity, packed by
// dwconv_avx512_pack_weights).
// The epilogue is the same as qgemm.h's.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct DwArgs {
  int64_t channels = 0;               // C
  int64_t padded_channels = 0;        // C rounded up to 32: the stride of w, bias, mult
  int taps = 0;                       // kernel positions (KH·KW)
  int pixels = 0;                     // output pixels in this call
  // Without steps: [pixels][taps] row pointers (padding: the x_zp row).
  // With steps: [taps] row pointers of the first pixel; pixel p's are rows[t] + p·steps[t] (a
  // run of pixels along an output row: stride·C, or 0 for the x_zp row). The kernel may move the
  // pointers in rows[] as it goes: their values after the call are unspecified.
  const uint8_t** rows = nullptr;
  const int64_t* steps = nullptr;
  const int32_t* w = nullptr;         // [taps][padded_channels]: w' sign-extended, in the kernel's layout
  const int32_t* bias = nullptr;      // [padded_channels]
  const float* mult = nullptr;        // [padded_channels]
  float lo = 0, hi = 255;
  int32_t zp = 0;
  bool out_signed = false;
  bool clamp_free = false;            // as QGemmArgs::clamp_free (used by the AVX-512 kernel)
  uint8_t* out = nullptr;             // pixel p at out + p * channels
};

using DwKernel = void (*)(const DwArgs&);

// nullptr for Isa::Ref.
DwKernel dwconv_kernel(Isa isa);

void dwconv_avx512(const DwArgs& a);
void dwconv_avx2(const DwArgs& a);

// Converts [taps][padded_channels] sign-extended w' (the AVX2 kernel's layout) into the AVX-512
// kernel's: per block of 32 channels, lanes 0-15 hold w'[c0+2j] in their low 16 bits and lanes
// 16-31 hold w'[c0+2j+1] in their high 16 bits (zeros elsewhere).
using DwPack = void (*)(const int32_t* plain, int taps, int64_t padded_channels, int32_t* out);
void dwconv_avx512_pack_weights(const int32_t* plain, int taps, int64_t padded_channels, int32_t* out);
// The layout conversion the ISA's kernel needs, or nullptr when it reads the plain layout.
DwPack dwconv_weight_packer(Isa isa);

}  // namespace quint::ops::x86
