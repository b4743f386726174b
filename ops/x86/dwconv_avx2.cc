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
  // Requantizes 8 accumulators and stores n bytes (values already within the output type).
  auto store = [&](uint8_t* out, int64_t n, __m256i acc, __m256 mult) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    alignas(32) int32_t q[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(q), _mm256_add_epi32(_mm256_cvtps_epi32(f), zp));
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(q[i]);
  };
  int p = 0;
  if (a.steps) {
    // Four pixels of a run at a time: each tap's weights loaded once, four independent chains.
    const uint8_t** rows = a.rows;
    const int64_t* steps = a.steps;
    for (; p + 4 <= a.pixels; p += 4) {
      uint8_t* out = a.out + p * channels;
      for (int64_t c = 0; c < channels; c += 8) {
        const int64_t n = std::min<int64_t>(8, channels - c);
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c));
        __m256i acc0 = b, acc1 = b, acc2 = b, acc3 = b;
        const int32_t* w = a.w + c;
        for (int t = 0; t < taps; ++t, w += pc) {
          const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
          const uint8_t* r = rows[t] + c;
          const int64_t s = steps[t];
          acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(load8_u32(r, n), wv));
          acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(load8_u32(r + s, n), wv));
          acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(load8_u32(r + 2 * s, n), wv));
          acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(load8_u32(r + 3 * s, n), wv));
        }
        const __m256 mv = _mm256_loadu_ps(a.mult + c);
        store(out + c, n, acc0, mv);
        store(out + channels + c, n, acc1, mv);
        store(out + 2 * channels + c, n, acc2, mv);
        store(out + 3 * channels + c, n, acc3, mv);
      }
      if (p + 4 < a.pixels)
        for (int t = 0; t < taps; ++t) rows[t] += 4 * steps[t];
    }
  }
  for (; p < a.pixels; ++p) {
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
      store(out + c, n, _mm256_add_epi32(acc0, acc1), _mm256_loadu_ps(a.mult + c));
    }
    if (a.steps && p + 1 < a.pixels)
      for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
  }
}

}  // namespace quint::ops::x86
