// 8-bit MaxPool over channels-last data, one output row at a time:
//   out[ow][c] = max over the window's input pixels (rows[r] + iw·C)[c]
// for the window columns iw = ow·SW − PW + kw·DW inside [0, IW), kw < KW, and every r < nrows
// (the window's image rows inside the input, found by the caller). A window with no column
// inside the input (possible with ceil_mode) holds the type's minimum.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct MaxPoolRowArgs {
  const uint8_t* const* rows = nullptr;  // [nrows]: the first pixel of each image row
  int nrows = 0;
  int64_t channels = 0;
  int64_t in_w = 0, out_w = 0, kernel_w = 0, stride_w = 1, pad_w = 0, dilation_w = 1;
  bool is_signed = false;  // int8 elements (else uint8)
  uint8_t* out = nullptr;  // out_w pixels of `channels`
};

using MaxPoolRowKernel = void (*)(const MaxPoolRowArgs&);

// nullptr when the ISA has none (the portable loop then runs).
MaxPoolRowKernel max_pool_row_kernel(Isa isa);

void max_pool_row_avx512(const MaxPoolRowArgs& a);

}  // namespace quint::ops::x86
