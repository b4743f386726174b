// AVX-512 VNNI microkernel: 12 rows × 32 columns, vpdpbusd (u8 × s8 → int32, 4 products per lane
// per instruction, exact: the instruction does not saturate).
// Packed B: for every group of 4 k, 32 columns × 4 bytes (two zmm registers).
#include <immintrin.h>

#include <cstring>

#include "qgemm.h"

namespace quint::ops::x86 {

namespace {

constexpr int MR = 12, NR = 32;

size_t packed_bytes(int64_t k) { return static_cast<size_t>(k / 4) * NR * 4; }

void pack(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out) {
  for (int64_t k4 = 0; k4 < k_total; k4 += 4)
    for (int n = 0; n < NR; ++n)
      for (int j = 0; j < 4; ++j) *out++ = n < ncols ? w[n * ldw + k4 + j] : 0;
}

inline __m512i load_bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Requantizes 16 accumulators of row m and stores `count` bytes.
inline void store16(const QGemmArgs& p, __m512i acc, int m, int col, int count) {
  __m512i v = _mm512_add_epi32(acc, _mm512_loadu_si512(p.bias + col));
  if (p.w_zp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512(p.w_zp + col), _mm512_set1_epi32(p.row_sums[m])));
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(p.mult + col));
  f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(p.lo)), _mm512_set1_ps(p.hi));
  __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(p.zp));
  __m128i bytes = p.out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
  __mmask16 mask = count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1);
  _mm_mask_storeu_epi8(p.c + m * p.ldc + col, mask, bytes);
}

template <int R>
void run_rows(const QGemmArgs& p) {
  __m512i acc0[R], acc1[R];
  for (int m = 0; m < R; ++m) acc0[m] = acc1[m] = _mm512_setzero_si512();
  const int8_t* b = p.b;
  for (int64_t t = 0; t < p.taps; ++t) {
    const uint8_t* a[R];
    for (int m = 0; m < R; ++m) a[m] = p.a[m * p.taps + t];
    for (int64_t k = 0; k < p.k; k += 4) {
      const __m512i b0 = _mm512_load_si512(b);
      const __m512i b1 = _mm512_load_si512(b + 64);
      b += 128;
      for (int m = 0; m < R; ++m) {
        const __m512i av = load_bcast4(a[m] + k);
        acc0[m] = _mm512_dpbusd_epi32(acc0[m], av, b0);
        acc1[m] = _mm512_dpbusd_epi32(acc1[m], av, b1);
      }
    }
  }
  for (int m = 0; m < R; ++m) {
    store16(p, acc0[m], m, 0, p.nr);
    if (p.nr > 16) store16(p, acc1[m], m, 16, p.nr - 16);
  }
}

void run(const QGemmArgs& p) {
  switch (p.mr) {
    case 1: run_rows<1>(p); break;
    case 2: run_rows<2>(p); break;
    case 3: run_rows<3>(p); break;
    case 4: run_rows<4>(p); break;
    case 5: run_rows<5>(p); break;
    case 6: run_rows<6>(p); break;
    case 7: run_rows<7>(p); break;
    case 8: run_rows<8>(p); break;
    case 9: run_rows<9>(p); break;
    case 10: run_rows<10>(p); break;
    case 11: run_rows<11>(p); break;
    default: run_rows<12>(p); break;
  }
}

}  // namespace

const QGemmKernel kQGemmAvx512Vnni{Isa::Avx512Vnni, MR, NR, 4, packed_bytes, pack, run};

}  // namespace quint::ops::x86
