// AVX-512 depthwise microkernel: 32 channels per step. The input bytes of one tap are widened
// once to 16-bit lanes (vpmovzxbw: one shuffle for 32 channels) and multiplied against two weight
// vectors split by channel parity (dwconv.h): int32 lane j of the "even" vector holds w'[c0+2j]
// in its low half, of the "odd" one w'[c0+2j+1] in its high half, so vpdpwssd gives
// x[c0+2j]·w'[c0+2j] and x[c0+2j+1]·w'[c0+2j+1] in two accumulators — exact (int16 × int16 into
// int32) and one shuffle per tap and 32 channels instead of two. The epilogue interleaves the two
// halves back into channel order: after the float clamp as bytes, or (DwArgs::clamp_free) as
// int32 accumulators, then rounded and saturated by packs (+4–10 % on MobileNetV2's depthwise
// layers in the kernels bench). Along a run of output pixels (steps given) it computes four
// pixels at a time: each tap's weights are loaded once for the four.
#include <immintrin.h>

#include "avx512_pack.h"
#include "cpu.h"
#include "dwconv.h"

namespace quint::ops::x86 {

namespace {

struct Epilogue {
  __m512 lo, hi;
  __m512i zp;
  bool out_signed;
  bool clamp_free;
  __m512i zp16, lo_idx, hi_idx;

  __m128i narrow(__m512i acc, __m512 mult) const {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
    return in_register(out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q));
  }
  // Stores 32 channels (fewer under the mask) from the even- and odd-channel accumulators.
  // `mult` holds the multipliers of channels c .. c+15 and c+16 .. c+31 (clamp_free), or split
  // by parity like the accumulators.
  void store(uint8_t* out, __mmask32 m, __m512i acc_even, __m512i acc_odd, __m512 mult_a, __m512 mult_b) const {
    if (clamp_free) {
      // Accumulators back in channel order, rounded, then saturated by packs (as the GEMM's
      // integer epilogue, x86/qgemm.h); the first 32 bytes are channels c .. c+31.
      const __m512i lo16 = _mm512_permutex2var_epi32(acc_even, lo_idx, acc_odd);
      const __m512i hi16 = _mm512_permutex2var_epi32(acc_even, hi_idx, acc_odd);
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(lo16), mult_a));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(hi16), mult_b));
      const __m512i w = _mm512_adds_epi16(_mm512_packs_epi32(q0, q1), zp16);
      const __m512i b = pack_bytes_in_order(w, w, out_signed);
      _mm256_mask_storeu_epi8(out, m, _mm512_castsi512_si256(b));
      return;
    }
    const __m128i e = narrow(acc_even, mult_a), o = narrow(acc_odd, mult_b);
    const __m256i bytes = _mm256_set_m128i(_mm_unpackhi_epi8(e, o), _mm_unpacklo_epi8(e, o));
    _mm256_mask_storeu_epi8(out, m, bytes);
  }
};

inline __m512i widen16(__mmask32 m, const uint8_t* p) { return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p)); }

inline __mmask32 channel_mask(int64_t left) {
  return left >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1u << left) - 1);
}

}  // namespace

void dwconv_avx512_pack_weights(const int32_t* plain, int taps, int64_t padded_channels, int32_t* out) {
  for (int t = 0; t < taps; ++t)
    for (int64_t c0 = 0; c0 < padded_channels; c0 += 32) {
      const int32_t* src = plain + t * padded_channels + c0;
      int32_t* dst = out + t * padded_channels + c0;
      for (int j = 0; j < 16; ++j) {
        dst[j] = static_cast<int32_t>(static_cast<uint32_t>(src[2 * j]) & 0xffffu);
        dst[16 + j] = static_cast<int32_t>(static_cast<uint32_t>(src[2 * j + 1]) << 16);
      }
    }
}

void dwconv_avx512(const DwArgs& a) {
  const __m512i even_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd_idx = _mm512_add_epi32(even_idx, _mm512_set1_epi32(1));
  // lo_idx / hi_idx interleave even and odd channels (lane j of each holds channel 2j / 2j+1)
  // back into channels 0-15 / 16-31.
  const Epilogue ep{_mm512_set1_ps(a.lo),
                    _mm512_set1_ps(a.hi),
                    _mm512_set1_epi32(a.zp),
                    a.out_signed,
                    a.clamp_free,
                    _mm512_set1_epi16(static_cast<int16_t>(a.zp)),
                    _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                    _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
  const int taps = a.taps;
  const int64_t channels = a.channels, pc = a.padded_channels;
  const int32_t* const bias = a.bias;
  const float* const mult = a.mult;
  const int32_t* const weights = a.w;
  // Bias and multipliers of channels c0+2j (even) and c0+2j+1 (odd).
  auto split_bias = [&](int64_t c, __m512i* be, __m512i* bo) {
    const __m512i lo = _mm512_loadu_si512(bias + c), hi = _mm512_loadu_si512(bias + c + 16);
    *be = _mm512_permutex2var_epi32(lo, even_idx, hi);
    *bo = _mm512_permutex2var_epi32(lo, odd_idx, hi);
  };
  auto split_mult = [&](int64_t c, __m512* me, __m512* mo) {
    const __m512 lo = _mm512_loadu_ps(mult + c), hi = _mm512_loadu_ps(mult + c + 16);
    if (ep.clamp_free) {  // the epilogue puts the accumulators back in channel order first
      *me = lo;
      *mo = hi;
      return;
    }
    *me = _mm512_permutex2var_ps(lo, even_idx, hi);
    *mo = _mm512_permutex2var_ps(lo, odd_idx, hi);
  };
  int p = 0;
  if (a.steps) {
    const uint8_t** rows = a.rows;
    const int64_t* steps = a.steps;
    for (; p + 4 <= a.pixels; p += 4) {
      uint8_t* out = a.out + p * channels;
      for (int64_t c = 0; c < channels; c += 32) {
        const __mmask32 m = channel_mask(channels - c);
        __m512i be, bo;
        split_bias(c, &be, &bo);
        __m512i e0 = be, e1 = be, e2 = be, e3 = be, o0 = bo, o1 = bo, o2 = bo, o3 = bo;
        const int32_t* w = weights + c;
        for (int t = 0; t < taps; ++t, w += pc) {
          const __m512i we = _mm512_loadu_si512(w), wo = _mm512_loadu_si512(w + 16);
          const uint8_t* r = rows[t] + c;
          const int64_t s = steps[t];
          const __m512i x0 = widen16(m, r), x1 = widen16(m, r + s), x2 = widen16(m, r + 2 * s),
                        x3 = widen16(m, r + 3 * s);
          e0 = _mm512_dpwssd_epi32(e0, x0, we);
          o0 = _mm512_dpwssd_epi32(o0, x0, wo);
          e1 = _mm512_dpwssd_epi32(e1, x1, we);
          o1 = _mm512_dpwssd_epi32(o1, x1, wo);
          e2 = _mm512_dpwssd_epi32(e2, x2, we);
          o2 = _mm512_dpwssd_epi32(o2, x2, wo);
          e3 = _mm512_dpwssd_epi32(e3, x3, we);
          o3 = _mm512_dpwssd_epi32(o3, x3, wo);
        }
        __m512 me, mo;
        split_mult(c, &me, &mo);
        ep.store(out + c, m, e0, o0, me, mo);
        ep.store(out + channels + c, m, e1, o1, me, mo);
        ep.store(out + 2 * channels + c, m, e2, o2, me, mo);
        ep.store(out + 3 * channels + c, m, e3, o3, me, mo);
      }
      if (p + 4 < a.pixels)
        for (int t = 0; t < taps; ++t) rows[t] += 4 * steps[t];
    }
  }
  // Single pixels: the tail of a run, or pixels given one row-pointer set each.
  for (; p < a.pixels; ++p) {
    const uint8_t* const* rows = a.steps ? a.rows : a.rows + p * taps;
    uint8_t* out = a.out + p * channels;
    for (int64_t c = 0; c < channels; c += 32) {
      const __mmask32 m = channel_mask(channels - c);
      __m512i e, o;
      split_bias(c, &e, &o);
      const int32_t* w = weights + c;
      for (int t = 0; t < taps; ++t, w += pc) {
        const __m512i x = widen16(m, rows[t] + c);
        e = _mm512_dpwssd_epi32(e, x, _mm512_loadu_si512(w));
        o = _mm512_dpwssd_epi32(o, x, _mm512_loadu_si512(w + 16));
      }
      __m512 me, mo;
      split_mult(c, &me, &mo);
      ep.store(out + c, m, e, o, me, mo);
    }
    if (a.steps && p + 1 < a.pixels)
      for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
  }
}

}  // namespace quint::ops::x86
