// AVX-VNNI (VEX, 256-bit) microkernel: 6 rows × 16 columns with vpdpbusd (exact int32).
// Packed B: for every group of 4 k, 16 columns × 4 bytes (two ymm registers).
#include <immintrin.h>

#include <cstring>

#include "qgemm.h"

namespace quint::ops::x86 {

namespace {

constexpr int MR = 6, NR = 16;

size_t packed_bytes(int64_t k) { return static_cast<size_t>(k / 4) * NR * 4; }

void pack(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out) {
  for (int64_t k4 = 0; k4 < k_total; k4 += 4, out += NR * 4) {
    for (int n = 0; n < ncols; ++n) std::memcpy(out + n * 4, w + n * ldw + k4, 4);
    if (ncols < NR) std::memset(out + ncols * 4, 0, static_cast<size_t>(NR - ncols) * 4);
  }
}

inline void store8(const QGemmArgs& p, __m256i acc, int m, int col, int count) {
  __m256i v = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias + col)));
  if (p.w_zp)
    v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.w_zp + col)),
                                               _mm256_set1_epi32(p.row_sums[m])));
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(p.mult + col));
  f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(p.lo)), _mm256_set1_ps(p.hi));
  __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(p.zp));
  // Values are already within the output type's range: narrowing keeps them.
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
  const int8_t* b = p.b;
  for (int64_t t = 0; t < p.taps; ++t) {
    const uint8_t* a[R];
#pragma GCC unroll 12
    for (int m = 0; m < R; ++m) a[m] = segment(p, m, t);
    for (int64_t k = 0; k < p.k; k += 4) {
      const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
      const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
      b += 64;
#pragma GCC unroll 12
      for (int m = 0; m < R; ++m) {
        int32_t v;
        std::memcpy(&v, a[m] + k, 4);
        const __m256i av = _mm256_set1_epi32(v);
        acc0[m] = _mm256_dpbusd_avx_epi32(acc0[m], av, b0);
        acc1[m] = _mm256_dpbusd_avx_epi32(acc1[m], av, b1);
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

const QGemmKernel kQGemmAvxVnni{Isa::AvxVnni, MR, NR, 4, packed_bytes, pack, run};

}  // namespace quint::ops::x86
