// y[i] = table[x[i]] for bytes: a 256-entry table of any function of one 8-bit value (a
// DequantizeLinear → float element-wise operators → QuantizeLinear chain, computed once).
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

using LookupKernel = void (*)(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);

// nullptr when this ISA has none (the caller's scalar loop then does it): AVX-512 needs VBMI.
LookupKernel lookup_kernel(Isa isa);

void lookup_avx512vbmi(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);

}  // namespace quint::ops::x86
