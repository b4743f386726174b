// AVX-512 depthwise microkernel: 16 channels per vector, two taps per vpdpwssd.
#include <immintrin.h>

#include "dwconv.h"

namespace quint::ops::x86 {

void dwconv_avx512(const DwArgs& a) {
  // Interleaves the 16 int16 of x0 (low half) and x1 (indices 32…): x0[0], x1[0], x0[1], …
  alignas(64) static const uint16_t kIdx[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
                                                8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i idx = _mm512_load_si512(kIdx);
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const __m512i zp = _mm512_set1_epi32(a.zp);
  const int taps = 2 * a.pairs;
  for (int p = 0; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.rows + p * taps;
    uint8_t* out = a.out + p * a.channels;
    for (int64_t c = 0; c < a.channels; c += 16) {
      const int64_t left = a.channels - c;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      __m512i acc = _mm512_loadu_si512(a.bias + c);
      const int16_t* w = a.w + c * 2;
      for (int t = 0; t < a.pairs; ++t, w += a.padded_channels * 2) {
        const __m256i x0 = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, rows[2 * t] + c));
        const __m256i x1 = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, rows[2 * t + 1] + c));
        const __m512i xi = _mm512_permutex2var_epi16(_mm512_castsi256_si512(x0), idx, _mm512_castsi256_si512(x1));
        acc = _mm512_dpwssd_epi32(acc, xi, _mm512_loadu_si512(w));
      }
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(a.mult + c));
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
      const __m128i bytes = a.out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
      _mm_mask_storeu_epi8(out + c, m, bytes);
    }
  }
}

}  // namespace quint::ops::x86
