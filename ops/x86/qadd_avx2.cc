#include <immintrin.h>

#include <climits>
#include <cmath>
#include <cstring>

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
    int32_t q = INT32_MIN;  // cvtps2dq of an out-of-range value
    if (v >= -2147483648.0f && v < 2147483648.0f) q = static_cast<int32_t>(std::nearbyint(v));
    a.y[i] = static_cast<uint8_t>(q < a.lo ? a.lo : (q > a.hi ? a.hi : q));
  }
}

}  // namespace quint::ops::x86
