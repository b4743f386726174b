// AVX-512 depthwise microkernel: 16 channels per vector, one vpdpwssd per tap (x zero-extended
// to int32 lanes, see dwconv.h), even and odd taps in two accumulators.
#include <immintrin.h>

#include "dwconv.h"

namespace quint::ops::x86 {

void dwconv_avx512(const DwArgs& a) {
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const __m512i zp = _mm512_set1_epi32(a.zp);
  const int taps = a.taps;
  const int64_t channels = a.channels, pc = a.padded_channels;
  const int32_t* const bias = a.bias;
  const float* const mult = a.mult;
  const int32_t* const weights = a.w;
  const bool out_signed = a.out_signed;
  for (int p = 0; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.steps ? a.rows : a.rows + p * taps;
    uint8_t* out = a.out + p * channels;
    for (int64_t c = 0; c < channels; c += 16) {
      const int64_t left = channels - c;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      __m512i acc0 = _mm512_loadu_si512(bias + c), acc1 = _mm512_setzero_si512();
      const int32_t* w = weights + c;
      int t = 0;
      for (; t + 1 < taps; t += 2, w += 2 * pc) {
        const __m512i x0 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, rows[t] + c));
        const __m512i x1 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, rows[t + 1] + c));
        acc0 = _mm512_dpwssd_epi32(acc0, x0, _mm512_loadu_si512(w));
        acc1 = _mm512_dpwssd_epi32(acc1, x1, _mm512_loadu_si512(w + pc));
      }
      if (t < taps) {
        const __m512i x0 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, rows[t] + c));
        acc0 = _mm512_dpwssd_epi32(acc0, x0, _mm512_loadu_si512(w));
      }
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc0, acc1)), _mm512_loadu_ps(mult + c));
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
      const __m128i bytes = out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
      _mm_mask_storeu_epi8(out + c, m, bytes);
    }
    if (a.steps && p + 1 < a.pixels)
      for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
  }
}

}  // namespace quint::ops::x86
