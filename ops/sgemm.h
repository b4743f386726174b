// Single-precision matrix product shared by the float operators (Conv through im2col, MatMul,
// Gemm):
//   C[m][n] = (accumulate ? C[m][n] : 0) + Σ_k A(m, k) · B(k, n)
// with A(m, k) = a.data[m·a.row_stride + k·a.col_stride] and B(k, n) likewise, so transposed and
// strided operands cost nothing extra; C is row-major with row stride ldc.
//
// Portable code (GCC/Clang vector extensions, no ISA flags): both operands are packed into
// cache-sized panels and a 4×8 register tile accumulates them, which the compiler turns into
// SSE multiplies and adds. Products and sums round separately (the build forbids FMA
// contraction); the sum over k runs in blocks of 256, so results differ from a naive loop by
// float rounding only. Defined in matmul.cc.
#pragma once

#include <cstdint>

#include "quint/parallel.h"

namespace quint::ops {

struct FloatMatrix {
  const float* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
};

void sgemm(int64_t M, int64_t N, int64_t K, FloatMatrix a, FloatMatrix b, float* c, int64_t ldc,
           bool accumulate, Parallel* parallel);

}  // namespace quint::ops
