// AVX2 depthwise microkernel: 8 channels per vector, two taps per vpmaddwd.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "dwconv.h"

namespace quint::ops::x86 {

namespace {
inline __m128i load8(const uint8_t* p, int64_t n) {
  int64_t v = 0;
  if (n == 8) std::memcpy(&v, p, 8);  // a fixed size compiles to one load
  else std::memcpy(&v, p, static_cast<size_t>(n));
  return _mm_cvtsi64_si128(v);
}
}  // namespace

void dwconv_avx2(const DwArgs& a) {
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  const __m256i zp = _mm256_set1_epi32(a.zp);
  const int taps = 2 * a.pairs;
  for (int p = 0; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.rows + p * taps;
    uint8_t* out = a.out + p * a.channels;
    for (int64_t c = 0; c < a.channels; c += 8) {
      const int64_t n = std::min<int64_t>(8, a.channels - c);
      __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c));
      const int16_t* w = a.w + c * 2;
      for (int t = 0; t < a.pairs; ++t, w += a.padded_channels * 2) {
        const __m128i x0 = _mm_cvtepu8_epi16(load8(rows[2 * t] + c, n));
        const __m128i x1 = _mm_cvtepu8_epi16(load8(rows[2 * t + 1] + c, n));
        // Channels 0-3 then 4-7, each as (tap 2t, tap 2t+1) pairs.
        const __m256i xi = _mm256_set_m128i(_mm_unpackhi_epi16(x0, x1), _mm_unpacklo_epi16(x0, x1));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w))));
      }
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(a.mult + c));
      f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
      alignas(32) int32_t q[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(q), _mm256_add_epi32(_mm256_cvtps_epi32(f), zp));
      for (int64_t i = 0; i < n; ++i) out[c + i] = static_cast<uint8_t>(q[i]);
    }
  }
}

}  // namespace quint::ops::x86
