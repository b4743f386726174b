// AVX2 microkernel: 6 rows × 16 columns. Exact: activations are widened to int16 and multiplied
// with vpmaddwd (int16 × int16 pairs summed into int32), never with vpmaddubsw, whose int16
// pair sums saturate for products like 255·127 + 255·127 (ONNX Runtime's AVX2 path is inexact
// there). Packed B: for every pair of k, 16 columns × 2 int16 (two ymm registers).
#include <immintrin.h>

#include <cstring>

#include "qgemm.h"

namespace quint::ops::x86 {

namespace {

constexpr int MR = 6, NR = 16;
constexpr int64_t kChunk = 256;  // bytes of a segment widened at a time

size_t packed_bytes(int64_t k) { return static_cast<size_t>(k / 2) * NR * 4; }

void pack(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out) {
  auto* o = reinterpret_cast<int16_t*>(out);
  for (int64_t k2 = 0; k2 < k_total; k2 += 2)
    for (int n = 0; n < NR; ++n)
      for (int j = 0; j < 2; ++j) *o++ = n < ncols ? static_cast<int16_t>(w[n * ldw + k2 + j]) : int16_t{0};
}

inline void store8(const QGemmArgs& p, __m256i acc, int m, int col, int count) {
  __m256i v = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias + col)));
  if (p.w_zp)
    v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.w_zp + col)),
                                               _mm256_set1_epi32(p.row_sums[m])));
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(p.mult + col));
  f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(p.lo)), _mm256_set1_ps(p.hi));
  __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(p.zp));
  alignas(32) int32_t vals[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(vals), q);
  uint8_t* dst = p.c + m * p.ldc + col;
  for (int i = 0; i < count && i < 8; ++i) dst[i] = static_cast<uint8_t>(vals[i]);
}

template <int R>
void run_rows(const QGemmArgs& p) {
  __m256i acc0[R], acc1[R];
#pragma GCC unroll 12
  for (int m = 0; m < R; ++m) acc0[m] = acc1[m] = _mm256_setzero_si256();
  alignas(32) int16_t wide[R][kChunk];
  const int8_t* b = p.b;
  for (int64_t t = 0; t < p.taps; ++t) {
    for (int64_t k0 = 0; k0 < p.k; k0 += kChunk) {
      const int64_t len = std::min(kChunk, p.k - k0);
#pragma GCC unroll 12
      for (int m = 0; m < R; ++m) {
        const uint8_t* src = segment(p, m, t) + k0;
        for (int64_t i = 0; i < len; ++i) wide[m][i] = src[i];
      }
      for (int64_t k = 0; k < len; k += 2) {
        const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
        const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
        b += 64;
#pragma GCC unroll 12
        for (int m = 0; m < R; ++m) {
          int32_t v;
          std::memcpy(&v, &wide[m][k], 4);
          const __m256i av = _mm256_set1_epi32(v);
          acc0[m] = _mm256_add_epi32(acc0[m], _mm256_madd_epi16(av, b0));
          acc1[m] = _mm256_add_epi32(acc1[m], _mm256_madd_epi16(av, b1));
        }
      }
    }
  }
#pragma GCC unroll 12
  for (int m = 0; m < R; ++m) {
    store8(p, acc0[m], m, 0, p.nr);
    if (p.nr > 8) store8(p, acc1[m], m, 8, p.nr - 8);
  }
}

void run(const QGemmArgs& p) {
  switch (p.mr) {
    case 1: run_rows<1>(p); break;
    case 2: run_rows<2>(p); break;
    case 3: run_rows<3>(p); break;
    case 4: run_rows<4>(p); break;
    case 5: run_rows<5>(p); break;
    default: run_rows<6>(p); break;
  }
}

}  // namespace

const QGemmKernel kQGemmAvx2{Isa::Avx2, MR, NR, 2, packed_bytes, pack, run};

}  // namespace quint::ops::x86
