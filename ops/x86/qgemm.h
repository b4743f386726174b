// Quantized GEMM microkernels: C[m][n] = requantize(Σ_k a[m][k] · b[k][n]) with a uint8 and b
// int8, exact int32 accumulation on every ISA (no int16 saturation anywhere).
//
// Rows of A are given as segments ("taps"): row m is the concatenation of a[m·taps + t] for
// t < taps, each `k` bytes long. A 1×1 convolution has one segment per output pixel (the input
// pixel's channels); a k×k convolution has one per kernel position (an indirection buffer, no
// im2col); padding positions point at a row of zero-point bytes.
//
// B is prepacked per ISA for NR columns at a time; columns beyond the matrix are zero.
// The epilogue is ONNX Runtime's requantization (ops/arith/requant.h, scheme onnx/qnnpack):
//   v = acc + bias[n] − w_zp[n] · row_sum[m]          (int32, wrapping)
//   y = rne(clamp(fl32(fl32(v) · mult[n]), lo, hi)) + zp   with lo = qmin − zp, hi = qmax − zp
// where bias already holds the model's bias and the zero-point terms that do not depend on the
// row (K·x_zp·w_zp − x_zp·Σ_k b[k][n]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu.h"

namespace quint::ops::x86 {

struct QGemmArgs {
  int mr = 0, nr = 0;                 // valid rows (<= MR) and columns (<= NR) of the tile
  int64_t taps = 1;                   // segments per row
  int64_t k = 0;                      // bytes per segment, a multiple of the kernel's k_unit
  const uint8_t* const* a = nullptr;  // a[m * taps + t], or a[m] with tap_offsets
  // When set, a holds one pointer per row and row m's segment t starts at a[m] + tap_offsets[t]
  // (windows inside the input, or in the stem's padded copy: one pointer per row to write and
  // read instead of `taps`).
  const int64_t* tap_offsets = nullptr;
  const int8_t* b = nullptr;          // packed B for these NR columns
  const int32_t* bias = nullptr;      // [nr]
  const float* mult = nullptr;        // [nr]
  const int32_t* w_zp = nullptr;      // [nr], or nullptr when every weight zero point is 0
  const int32_t* row_sums = nullptr;  // [mr], used with w_zp
  float lo = 0, hi = 255;
  int32_t zp = 0;
  bool out_signed = false;            // int8 output (else uint8)
  // Set when every |mult| is below 1 and [lo + zp, hi + zp] is the output type's whole range.
  // Then |fl32(v)·mult| ≤ 2^31 − 128 (the largest float below 1 is 1 − 2^−24), so rounding
  // first cannot overflow, and rne(clamp(f, lo, hi)) + zp = sat(rne(f) + zp) because lo and hi
  // are integers: the kernel may saturate in integers instead of clamping floats.
  bool clamp_free = false;
  uint8_t* c = nullptr;               // row m at c + m * ldc
  int64_t ldc = 0;
  // Cache lines to fetch into L2 while computing (a hint, e.g. the weights of the next call
  // after this one's): `prefetch_lines` lines from `prefetch`, one per k step.
  const int8_t* prefetch = nullptr;
  int64_t prefetch_lines = 0;
};

// Row m's segment t.
inline const uint8_t* segment(const QGemmArgs& p, int m, int64_t t) {
  return p.tap_offsets ? p.a[m] + p.tap_offsets[t] : p.a[m * p.taps + t];
}

struct QGemmKernel {
  Isa isa;
  int mr, nr, k_unit;
  // Bytes of packed B for `k` rows (a multiple of k_unit) and NR columns.
  size_t (*packed_bytes)(int64_t k);
  // Packs b[k][n] = w[n * ldw + k] for n < ncols (<= NR), k < k_total (a multiple of k_unit).
  void (*pack)(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out);
  void (*run)(const QGemmArgs& args);
};

// Whether QGemmArgs::clamp_free (and DwArgs::clamp_free) holds for a requantization to
// [qmin, qmax] with these per-column multipliers.
bool clamp_free_applies(int32_t qmin, int32_t qmax, const std::vector<float>& mult);

// The microkernel for an ISA; nullptr for Isa::Ref (the reference kernels need none). For
// Avx512Vnni, the VBMI variant when the CPU has AVX-512 VBMI.
const QGemmKernel* qgemm_kernel(Isa isa);

// A kernel of at most 16 columns for matrices that narrow (a wider one would compute zero
// columns), or nullptr when the ISA's kernel is no wider.
const QGemmKernel* qgemm_kernel_narrow(Isa isa);

// Per-ISA tables (defined in qgemm_<isa>.cc, each compiled for its ISA).
extern const QGemmKernel kQGemmAvx512Vnni;
extern const QGemmKernel kQGemmAvx512VnniVbmi;  // same results, AVX-512 VBMI epilogue
extern const QGemmKernel kQGemmAvx512VnniNarrow;  // 12 × 16
extern const QGemmKernel kQGemmAvxVnni;
extern const QGemmKernel kQGemmAvx2;

}  // namespace quint::ops::x86
