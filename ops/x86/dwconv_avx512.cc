// AVX-512 depthwise microkernel: 16 channels per vector, one vpdpwssd per tap (x zero-extended
// to int32 lanes, see dwconv.h). Along a run of output pixels (steps given) it computes four
// pixels at a time: each tap's weights are loaded once for the four, and the four accumulators
// are independent chains.
#include <immintrin.h>

#include "cpu.h"
#include "dwconv.h"

namespace quint::ops::x86 {

namespace {

struct Epilogue {
  __m512 lo, hi;
  __m512i zp;
  bool out_signed;
  void store(uint8_t* out, __mmask16 m, __m512i acc, __m512 mult) const {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
    const __m128i bytes = out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
    _mm_mask_storeu_epi8(out, m, in_register(bytes));
  }
};

inline __m512i widen(__mmask16 m, const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }

}  // namespace

void dwconv_avx512(const DwArgs& a) {
  const Epilogue ep{_mm512_set1_ps(a.lo), _mm512_set1_ps(a.hi), _mm512_set1_epi32(a.zp), a.out_signed};
  const int taps = a.taps;
  const int64_t channels = a.channels, pc = a.padded_channels;
  const int32_t* const bias = a.bias;
  const float* const mult = a.mult;
  const int32_t* const weights = a.w;
  int p = 0;
  if (a.steps) {
    const uint8_t** rows = a.rows;
    const int64_t* steps = a.steps;
    for (; p + 4 <= a.pixels; p += 4) {
      uint8_t* out = a.out + p * channels;
      for (int64_t c = 0; c < channels; c += 16) {
        const int64_t left = channels - c;
        const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
        const __m512i b = _mm512_loadu_si512(bias + c);
        __m512i acc0 = b, acc1 = b, acc2 = b, acc3 = b;
        const int32_t* w = weights + c;
        for (int t = 0; t < taps; ++t, w += pc) {
          const __m512i wv = _mm512_loadu_si512(w);
          const uint8_t* r = rows[t] + c;
          const int64_t s = steps[t];
          acc0 = _mm512_dpwssd_epi32(acc0, widen(m, r), wv);
          acc1 = _mm512_dpwssd_epi32(acc1, widen(m, r + s), wv);
          acc2 = _mm512_dpwssd_epi32(acc2, widen(m, r + 2 * s), wv);
          acc3 = _mm512_dpwssd_epi32(acc3, widen(m, r + 3 * s), wv);
        }
        const __m512 mv = _mm512_loadu_ps(mult + c);
        ep.store(out + c, m, acc0, mv);
        ep.store(out + channels + c, m, acc1, mv);
        ep.store(out + 2 * channels + c, m, acc2, mv);
        ep.store(out + 3 * channels + c, m, acc3, mv);
      }
      if (p + 4 < a.pixels)
        for (int t = 0; t < taps; ++t) rows[t] += 4 * steps[t];
    }
  }
  // Single pixels: the tail of a run, or pixels given one row-pointer set each.
  for (; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.steps ? a.rows : a.rows + p * taps;
    uint8_t* out = a.out + p * channels;
    for (int64_t c = 0; c < channels; c += 16) {
      const int64_t left = channels - c;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      __m512i acc0 = _mm512_loadu_si512(bias + c), acc1 = _mm512_setzero_si512();
      const int32_t* w = weights + c;
      int t = 0;
      for (; t + 1 < taps; t += 2, w += 2 * pc) {
        acc0 = _mm512_dpwssd_epi32(acc0, widen(m, rows[t] + c), _mm512_loadu_si512(w));
        acc1 = _mm512_dpwssd_epi32(acc1, widen(m, rows[t + 1] + c), _mm512_loadu_si512(w + pc));
      }
      if (t < taps) acc0 = _mm512_dpwssd_epi32(acc0, widen(m, rows[t] + c), _mm512_loadu_si512(w));
      ep.store(out + c, m, _mm512_add_epi32(acc0, acc1), _mm512_loadu_ps(mult + c));
    }
    if (a.steps && p + 1 < a.pixels)
      for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
  }
}

}  // namespace quint::ops::x86
