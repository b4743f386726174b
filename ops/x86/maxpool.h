// 8-bit MaxPool over channels-last rows: out[c] = max over r < n of rows[r][c], for c < C.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

using MaxRowsKernel = void (*)(const uint8_t* const* rows, int n, int64_t channels, bool is_signed, uint8_t* out);

// nullptr when the ISA has none (the portable loop then runs).
MaxRowsKernel max_rows_kernel(Isa isa);

void max_rows_avx512(const uint8_t* const* rows, int n, int64_t channels, bool is_signed, uint8_t* out);

}  // namespace quint::ops::x86
