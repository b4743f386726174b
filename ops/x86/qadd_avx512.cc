#include <immintrin.h>

#include "qadd.h"

namespace quint::ops::x86 {

namespace {
inline __m512 widen(const uint8_t* p, __mmask16 m, bool is_signed) {
  const __m128i b = _mm_maskz_loadu_epi8(m, p);
  return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}
}  // namespace

void qadd_avx512(const QAddArgs& a) {
  const __m512 ra = _mm512_set1_ps(a.ra), rb = _mm512_set1_ps(a.rb), k = _mm512_set1_ps(a.k);
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  for (int64_t i = 0; i < a.n; i += 16) {
    const int64_t left = a.n - i;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 va = widen(a.a + i, m, a.is_signed), vb = widen(a.b + i, m, a.is_signed);
    __m512 v = _mm512_fmadd_ps(va, ra, _mm512_fmadd_ps(vb, rb, k));
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    const __m512i q = _mm512_cvtps_epi32(v);
    const __m128i bytes = a.is_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
    _mm_mask_storeu_epi8(a.y + i, m, bytes);
  }
}

}  // namespace quint::ops::x86
