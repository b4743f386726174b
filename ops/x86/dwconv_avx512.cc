// AVX-512 depthwise microkernel: 16 channels per vector, int32 multiply-accumulate.
#include <immintrin.h>

#include "dwconv.h"

namespace quint::ops::x86 {

void dwconv_avx512(const DwArgs& a) {
  const __m512i xzp = _mm512_set1_epi32(a.x_zp);
  for (int64_t c = 0; c < a.channels; c += 16) {
    const int64_t left = a.valid_channels - c;
    const __mmask16 mask = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    __m512i acc = _mm512_setzero_si512();
    for (int t = 0; t < a.taps; ++t) {
      const uint8_t* row = a.rows[t];
      if (!row) continue;
      const __m128i xb = _mm_maskz_loadu_epi8(mask, row + c);
      const __m512i x = _mm512_sub_epi32(_mm512_cvtepu8_epi32(xb), xzp);
      const __m512i w = _mm512_loadu_si512(a.w + t * a.channels + c);
      acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(x, w));
    }
    __m512i v = _mm512_add_epi32(acc, _mm512_loadu_si512(a.bias + c));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(a.mult + c));
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(a.lo)), _mm512_set1_ps(a.hi));
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(a.zp));
    const __m128i bytes = a.out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
    _mm_mask_storeu_epi8(a.out + c, mask, bytes);
  }
}

}  // namespace quint::ops::x86
