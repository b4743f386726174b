// AVX2 depthwise microkernel: 8 channels per vector, int32 multiply-accumulate.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "dwconv.h"

namespace quint::ops::x86 {

void dwconv_avx2(const DwArgs& a) {
  const __m256i xzp = _mm256_set1_epi32(a.x_zp);
  for (int64_t c = 0; c < a.channels; c += 8) {
    const int64_t left = std::min<int64_t>(8, a.valid_channels - c);
    if (left <= 0) break;
    __m256i acc = _mm256_setzero_si256();
    for (int t = 0; t < a.taps; ++t) {
      const uint8_t* row = a.rows[t];
      if (!row) continue;
      int64_t bytes8 = 0;
      std::memcpy(&bytes8, row + c, static_cast<size_t>(left));
      const __m256i x = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes8)), xzp);
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + t * a.channels + c));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(x, w));
    }
    __m256i v = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c)));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(a.mult + c));
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(a.lo)), _mm256_set1_ps(a.hi));
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(a.zp));
    alignas(32) int32_t vals[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(vals), q);
    for (int64_t i = 0; i < left; ++i) a.out[c + i] = static_cast<uint8_t>(vals[i]);
  }
}

}  // namespace quint::ops::x86
