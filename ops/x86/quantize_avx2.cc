#include <immintrin.h>

#include <cstring>

#include "quantize.h"

namespace quint::ops::x86 {

void quantize_avx2(const QuantizeArgs& a) {
  const __m256 s = _mm256_set1_ps(a.scale);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(a.qmin - a.zp)), hi = _mm256_set1_ps(static_cast<float>(a.qmax - a.zp));
  const __m256i zp = _mm256_set1_epi32(a.zp);
  // Bytes 0, 4, 8, 12 of each 128-bit lane (the low byte of every int32 lane).
  const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                             0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  auto one = [&](__m256 x) -> int64_t {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(x, s), lo), hi);
    const __m256i b = _mm256_shuffle_epi8(_mm256_add_epi32(_mm256_cvtps_epi32(v), zp), low_bytes);
    const uint64_t lo4 = static_cast<uint32_t>(_mm256_extract_epi32(b, 0));
    const uint64_t hi4 = static_cast<uint32_t>(_mm256_extract_epi32(b, 4));
    return static_cast<int64_t>(lo4 | (hi4 << 32));
  };
  const int64_t n = a.n, full = n / 8 * 8;
  for (int64_t i = 0; i < full; i += 8) {
    const int64_t bytes = one(_mm256_loadu_ps(a.x + i));
    std::memcpy(a.y + i, &bytes, 8);
  }
  if (full < n) {
    float tail[8] = {};
    std::memcpy(tail, a.x + full, static_cast<size_t>(n - full) * sizeof(float));
    const int64_t bytes = one(_mm256_loadu_ps(tail));
    std::memcpy(a.y + full, &bytes, static_cast<size_t>(n - full));
  }
}

}  // namespace quint::ops::x86
