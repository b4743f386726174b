// Three byte planes into interleaved triples (an RGB image row from NCHW to NHWC), each byte
// XORed with `flip` (0x80 turns int8 into the uint8 the convolution kernels read):
//   dst[3i + c] = src_c[i] ^ flip   for i < n, c < 3
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

using Interleave3Kernel = void (*)(const uint8_t* r, const uint8_t* g, const uint8_t* b, int64_t n, uint8_t flip,
                                   uint8_t* dst);

// nullptr when this ISA has none (the caller's scalar loop then does it): AVX-512 needs VBMI.
Interleave3Kernel interleave3_kernel(Isa isa);

void interleave3_avx512vbmi(const uint8_t* r, const uint8_t* g, const uint8_t* b, int64_t n, uint8_t flip,
                            uint8_t* dst);

}  // namespace quint::ops::x86
