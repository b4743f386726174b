#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "arith/requant.h"
#include "qadd.h"

namespace quint::ops::x86 {

namespace {
inline __m256 widen8(const uint8_t* p, bool is_signed) {
  int64_t bytes;
  std::memcpy(&bytes, p, 8);
  const __m128i b = _mm_cvtsi64_si128(bytes);
  return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b));
}
}  // namespace

void qadd_avx2(const QAddArgs& a) {
  const __m256 ra = _mm256_set1_ps(a.ra), rb = _mm256_set1_ps(a.rb), k = _mm256_set1_ps(a.k);
  const __m256i lo = _mm256_set1_epi32(a.lo), hi = _mm256_set1_epi32(a.hi);
  int64_t i = 0;
  for (; i + 8 <= a.n; i += 8) {
    const __m256 v =
        _mm256_fmadd_ps(widen8(a.a + i, a.is_signed), ra, _mm256_fmadd_ps(widen8(a.b + i, a.is_signed), rb, k));
    // Convert, then clamp in integers: out-of-range sums become INT32_MIN and so `lo`.
    const __m256i c = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), lo), hi);
    alignas(32) int32_t q[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(q), c);
    for (int j = 0; j < 8; ++j) a.y[i + j] = static_cast<uint8_t>(q[j]);
  }
  for (; i < a.n; ++i) {
    const float va = a.is_signed ? static_cast<int8_t>(a.a[i]) : a.a[i];
    const float vb = a.is_signed ? static_cast<int8_t>(a.b[i]) : a.b[i];
    const float v = std::fma(va, a.ra, std::fma(vb, a.rb, a.k));
    a.y[i] = static_cast<uint8_t>(arith::saturate(arith::cvt_ps2dq(v), a.lo, a.hi));
  }
}

void qmul_avx2(const QMulArgs& args) {
  const __m256i azp = _mm256_set1_epi32(args.a_zp), bzp = _mm256_set1_epi32(args.b_zp);
  const __m256 r = _mm256_set1_ps(args.r), czp = _mm256_set1_ps(args.c_zp);
  const int32_t lo = args.is_signed ? -128 : 0, hi = args.is_signed ? 127 : 255;
  const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
  const bool sgn = args.is_signed;
  auto widen = [sgn](const uint8_t* p) {
    int64_t bytes;
    std::memcpy(&bytes, p, 8);
    const __m128i b = _mm_cvtsi64_si128(bytes);
    return sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  };
  for (int64_t row = 0; row < args.rows; ++row) {
    const uint8_t* pa = args.a + row * args.lda;
    const uint8_t* pb = args.b + row * args.ldb;
    uint8_t* y = args.y + row * args.ldy;
    const int32_t bs = args.b_scalar ? (sgn ? static_cast<int8_t>(pb[0]) : pb[0]) - args.b_zp : 0;
    const __m256i wbs = _mm256_set1_epi32(bs);
    int64_t i = 0;
    for (; i + 8 <= args.n; i += 8) {
      const __m256i wb = args.b_scalar ? wbs : _mm256_sub_epi32(widen(pb + i), bzp);
      const __m256i p = _mm256_mullo_epi32(_mm256_sub_epi32(widen(pa + i), azp), wb);
      const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), r), czp);
      // Convert, then clamp in integers: out-of-range values become INT32_MIN and so `lo`.
      const __m256i c = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), vlo), vhi);
      alignas(32) int32_t q[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(q), c);
      for (int j = 0; j < 8; ++j) y[i + j] = static_cast<uint8_t>(q[j]);
    }
    for (; i < args.n; ++i) {
      const int32_t va = sgn ? static_cast<int8_t>(pa[i]) : pa[i];
      const uint8_t braw = args.b_scalar ? pb[0] : pb[i];
      const int32_t vb = sgn ? static_cast<int8_t>(braw) : braw;
      const float v = static_cast<float>((va - args.a_zp) * (vb - args.b_zp)) * args.r + args.c_zp;
      y[i] = static_cast<uint8_t>(arith::saturate(arith::cvt_ps2dq(v), lo, hi));
    }
  }
}

}  // namespace quint::ops::x86
