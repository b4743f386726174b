// The fast path of QLinearMatMul and QGemm with quantized output: constant 2-D B prepacked at
// load for the ISA's microkernel (x86/qgemm.h), requantization in its epilogue — the same
// integers as the reference kernels (the zero-point algebra of qlinear_conv_fast.cc).
#pragma once

#include <memory>
#include <vector>

#include "arith/requant.h"
#include "quint/ops/op.h"
#include "x86/qgemm.h"

namespace quint::ops {

struct FastMatMulSpec {
  int64_t rows = 0, K = 0, N = 0;      // A is [rows, K] contiguous, Y is [rows, N]
  DType a_type = DType::UInt8, b_type = DType::Int8;
  int32_t a_zp = 0;
  std::vector<int32_t> b_zp;           // one per column, or one
  Tensor b;                            // the constant B
  bool b_transposed = false;           // B stored [N, K] (QGemm transB) instead of [K, N]
  std::vector<int32_t> bias;           // int32 added per column (may be empty)
  arith::Requantizer requant;          // integer-bias scheme; channel n or 0 (one scale)
  size_t a_input = 0;                  // index of A among the node's inputs
};

std::unique_ptr<Kernel> make_fast_qmatmul(FastMatMulSpec spec, const x86::QGemmKernel& gemm);

}  // namespace quint::ops
