// AVX2 depthwise microkernel: 8 channels per vector, one vpmaddwd + vpaddd per tap (x
// zero-extended to int32 lanes, see dwconv.h), even and odd taps in two accumulators.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "dwconv.h"

namespace quint::ops::x86 {

namespace {
inline __m256i load8_u32(const uint8_t* p, int64_t n) {
  int64_t v = 0;
  if (n == 8) std::memcpy(&v, p, 8);  // a fixed size compiles to one load
  else std::memcpy(&v, p, static_cast<size_t>(n));
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v));
}
}  // namespace

void dwconv_avx2(const DwArgs& a) {
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  const __m256i zp = _mm256_set1_epi32(a.zp);
  const int taps = a.taps;
  const int64_t channels = a.channels, pc = a.padded_channels;
  for (int p = 0; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.steps ? a.rows : a.rows + p * taps;
    uint8_t* out = a.out + p * channels;
    for (int64_t c = 0; c < channels; c += 8) {
      const int64_t n = std::min<int64_t>(8, channels - c);
      __m256i acc0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c));
      __m256i acc1 = _mm256_setzero_si256();
      const int32_t* w = a.w + c;
      int t = 0;
      for (; t + 1 < taps; t += 2, w += 2 * pc) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + pc));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(load8_u32(rows[t] + c, n), w0));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(load8_u32(rows[t + 1] + c, n), w1));
      }
      if (t < taps) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(load8_u32(rows[t] + c, n), w0));
      }
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc0, acc1)), _mm256_loadu_ps(a.mult + c));
      f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
      alignas(32) int32_t q[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(q), _mm256_add_epi32(_mm256_cvtps_epi32(f), zp));
      for (int64_t i = 0; i < n; ++i) out[c + i] = static_cast<uint8_t>(q[i]);
    }
    if (a.steps && p + 1 < a.pixels)
      for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
  }
}

}  // namespace quint::ops::x86
