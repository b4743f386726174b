#include <immintrin.h>

#include "quantize.h"

namespace quint::ops::x86 {

void quantize_avx512(const QuantizeArgs& a) {
  const __m512 s = _mm512_set1_ps(a.scale);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(a.qmin - a.zp)), hi = _mm512_set1_ps(static_cast<float>(a.qmax - a.zp));
  const __m512i zp = _mm512_set1_epi32(a.zp);
  auto one = [&](__m512 x) {
    // max(v, lo): v when v > lo, else lo (also for a NaN v); min(·, hi) likewise.
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x, s), lo), hi);
    // In range after the clamp: the low byte of each lane is the result.
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), zp));
  };
  const int64_t n = a.n, full = n / 16 * 16;
  for (int64_t i = 0; i < full; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a.y + i), one(_mm512_loadu_ps(a.x + i)));
  if (full < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - full)) - 1);
    _mm_mask_storeu_epi8(a.y + full, m, one(_mm512_maskz_loadu_ps(m, a.x + full)));
  }
}

}  // namespace quint::ops::x86
