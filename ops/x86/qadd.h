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

// Element-wise QLinearMul (ONNX Runtime's MLAS arithmetic, exactly):
//   y = sat(cvt(fl32(fl32(p) · r) + C_zp)),  p = (A − A_zp)(B − B_zp) exact, r = fl32(fl32(A_s·B_s) / C_s)
// with cvt x86's cvtps2dq as above (a product beyond the int32 range gives the type's minimum).
// `rows` rows of n elements, row i at a + i·lda, b + i·ldb, y + i·ldy: ldb = 0 repeats one
// vector of B for every row (a per-channel scale over the pixels of an NHWC image).
struct QMulArgs {
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  uint8_t* y = nullptr;
  int64_t n = 0, rows = 1, lda = 0, ldb = 0, ldy = 0;
  bool b_scalar = false;  // row i multiplies by the single value b[i·ldb] (a per-channel scale over NCHW planes)
  int32_t a_zp = 0, b_zp = 0;
  float r = 1, c_zp = 0;
  bool is_signed = false;
};

using QMulKernel = void (*)(const QMulArgs&);

// nullptr for Isa::Ref.
QMulKernel qmul_kernel(Isa isa);

void qmul_avx512(const QMulArgs& a);
void qmul_avx2(const QMulArgs& a);

}  // namespace quint::ops::x86
