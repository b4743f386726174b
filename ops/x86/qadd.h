// Element-wise QLinearAdd microkernels (ONNX Runtime's x86 arithmetic, exactly):
//   y = sat(cvt(fma(A, rA, fma(B, rB, k))))
// with A, B the raw integers as float32, rA = fl32(A_s/C_s), rB = fl32(B_s/C_s),
// k = fl32(C_zp − fma(rA, A_zp, fl32(rB·B_zp))) (arith::AddRequant) — each fma a single
// rounding, like std::fma — and cvt x86's cvtps2dq (round half to even, INT32_MIN beyond the
// int32 range): the conversion comes before the clamp, so a sum of 2^31 or more gives `lo`.
#pragma once

#include <cstdint>

#include "cpu.h"

namespace quint::ops::x86 {

struct QAddArgs {
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  uint8_t* y = nullptr;
  int64_t n = 0;
  float ra = 1, rb = 1, k = 0;
  int32_t lo = 0, hi = 255;  // the output type's range (the AVX-512 kernel derives it from is_signed)
  bool is_signed = false;  // int8 elements (else uint8)
};

using QAddKernel = void (*)(const QAddArgs&);

// nullptr for Isa::Ref.
QAddKernel qadd_kernel(Isa isa);

void qadd_avx512(const QAddArgs& a);
void qadd_avx2(const QAddArgs& a);

}  // namespace quint::ops::x86
