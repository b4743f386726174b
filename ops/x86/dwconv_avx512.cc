// AVX-512 depthwise microkernel: 32 channels per step. The input bytes of one tap are widened
// once to 16-bit lanes (vpmovzxbw: one shuffle for 32 channels) and multiplied against two weight
// vectors split by channel parity (dwconv.h): int32 lane j of the "even" vector holds w'[c0+2j]
// in its low half, of the "odd" one w'[c0+2j+1] in its high half, so vpdpwssd gives
// x[c0+2j]·w'[c0+2j] and x[c0+2j+1]·w'[c0+2j+1] in two accumulators — exact (int16 × int16 into
// int32) and one shuffle per tap and 32 channels instead of two. The epilogue interleaves the two
// halves back into channel order: after the float clamp as bytes, or (DwArgs::clamp_free) as
// int32 accumulators, then rounded and saturated by packs (+4–10 % on MobileNetV2's depthwise
// layers in the kernels bench). Along a run of output pixels (steps given) it computes eight or
// four pixels at a time, each tap's weights loaded once for them, and reads whole blocks of
// channels with plain loads (masked byte loads are twice as slow here): +20-40 % on MobileNetV2's
// depthwise layers over four pixels with masked loads.
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

// How a block of 32 channels is read: whole (plain 32-byte loads, which fold into the widening
// instruction), the first 16 channels only (a plain 16-byte load: channel counts that are
// multiples of 16, like MobileNet's 144), or under a byte mask. Masked byte loads are about
// twice as slow as plain ones on Zen 5 and were the depthwise kernel's bottleneck.
enum class Block { Full, Half, Masked };

template <Block B>
inline __m512i widen16(__mmask32 m, const uint8_t* p) {
  if constexpr (B == Block::Full) return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  else if constexpr (B == Block::Half)
    return _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  else return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

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

namespace {

struct Consts {
  Epilogue ep;
  __m512i even_idx, odd_idx;
  const int32_t* bias;
  const float* mult;
  // Bias and multipliers of channels c0+2j (even) and c0+2j+1 (odd).
  void split_bias(int64_t c, __m512i* be, __m512i* bo) const {
    const __m512i lo = _mm512_loadu_si512(bias + c), hi = _mm512_loadu_si512(bias + c + 16);
    *be = _mm512_permutex2var_epi32(lo, even_idx, hi);
    *bo = _mm512_permutex2var_epi32(lo, odd_idx, hi);
  }
  void split_mult(int64_t c, __m512* me, __m512* mo) const {
    const __m512 lo = _mm512_loadu_ps(mult + c), hi = _mm512_loadu_ps(mult + c + 16);
    if (ep.clamp_free) {  // the epilogue puts the accumulators back in channel order first
      *me = lo;
      *mo = hi;
      return;
    }
    *me = _mm512_permutex2var_ps(lo, even_idx, hi);
    *mo = _mm512_permutex2var_ps(lo, odd_idx, hi);
  }
};

// P pixels of a run (each tap's row pointer advances by steps[t] per pixel) for one block of
// 32 channels: each tap's weights are loaded once for the P pixels.
template <int P, Block B>
inline void pixels(const Consts& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
  __m512i be, bo;
  k.split_bias(c, &be, &bo);
  __m512i e[P], o[P];
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) {
    e[i] = be;
    o[i] = bo;
  }
  const int32_t* w = a.w + c;
  for (int t = 0; t < a.taps; ++t, w += a.padded_channels) {
    const __m512i we = _mm512_loadu_si512(w), wo = _mm512_loadu_si512(w + 16);
    const uint8_t* r = rows[t] + c;
    const int64_t s = a.steps[t];
#pragma GCC unroll 8
    for (int i = 0; i < P; ++i) {
      const __m512i x = widen16<B>(m, r + i * s);
      e[i] = _mm512_dpwssd_epi32(e[i], x, we);
      o[i] = _mm512_dpwssd_epi32(o[i], x, wo);
    }
  }
  __m512 me, mo;
  k.split_mult(c, &me, &mo);
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) k.ep.store(out + i * a.channels + c, m, e[i], o[i], me, mo);
}

// One pixel, one block of 32 channels. Taps alternate between two sets of accumulators, summed
// at the end (int32 addition wraps and is associative: the same sums), so that the pixel does
// not wait on the latency of a single chain of multiply-adds.
template <Block B>
inline void one_pixel(const Consts& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
  __m512i e0, o0;
  k.split_bias(c, &e0, &o0);
  __m512i e1 = _mm512_setzero_si512(), o1 = e1;
  const int32_t* w = a.w + c;
  const int64_t pc = a.padded_channels;
  int t = 0;
  for (; t + 1 < a.taps; t += 2, w += 2 * pc) {
    const __m512i x0 = widen16<B>(m, rows[t] + c), x1 = widen16<B>(m, rows[t + 1] + c);
    e0 = _mm512_dpwssd_epi32(e0, x0, _mm512_loadu_si512(w));
    o0 = _mm512_dpwssd_epi32(o0, x0, _mm512_loadu_si512(w + 16));
    e1 = _mm512_dpwssd_epi32(e1, x1, _mm512_loadu_si512(w + pc));
    o1 = _mm512_dpwssd_epi32(o1, x1, _mm512_loadu_si512(w + pc + 16));
  }
  if (t < a.taps) {
    const __m512i x0 = widen16<B>(m, rows[t] + c);
    e0 = _mm512_dpwssd_epi32(e0, x0, _mm512_loadu_si512(w));
    o0 = _mm512_dpwssd_epi32(o0, x0, _mm512_loadu_si512(w + 16));
  }
  __m512 me, mo;
  k.split_mult(c, &me, &mo);
  k.ep.store(out + c, m, _mm512_add_epi32(e0, e1), _mm512_add_epi32(o0, o1), me, mo);
}

// Every block of channels of one pixel group (F: four_pixels or one_pixel, per block kind).
template <template <Block> class F>
inline void all_blocks(const Consts& k, const DwArgs& a, const uint8_t* const* rows, uint8_t* out) {
  const int64_t channels = a.channels;
  int64_t c = 0;
  for (; c + 32 <= channels; c += 32) F<Block::Full>::run(k, a, rows, c, channel_mask(32), out);
  const int64_t left = channels - c;
  if (left == 16) F<Block::Half>::run(k, a, rows, c, channel_mask(16), out);
  else if (left > 0) F<Block::Masked>::run(k, a, rows, c, channel_mask(left), out);
}

template <Block B>
struct Four {
  static void run(const Consts& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
    pixels<4, B>(k, a, rows, c, m, out);
  }
};
template <Block B>
struct Eight {
  static void run(const Consts& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
    pixels<8, B>(k, a, rows, c, m, out);
  }
};
template <Block B>
struct One {
  static void run(const Consts& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
    one_pixel<B>(k, a, rows, c, m, out);
  }
};

}  // namespace

void dwconv_avx512(const DwArgs& a) {
  const __m512i even_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  // lo_idx / hi_idx interleave even and odd channels (lane j of each holds channel 2j / 2j+1)
  // back into channels 0-15 / 16-31.
  const Consts k{Epilogue{_mm512_set1_ps(a.lo), _mm512_set1_ps(a.hi), _mm512_set1_epi32(a.zp), a.out_signed, a.clamp_free,
                          _mm512_set1_epi16(static_cast<int16_t>(a.zp)),
                          _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                          _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)},
                 even_idx, _mm512_add_epi32(even_idx, _mm512_set1_epi32(1)), a.bias, a.mult};
  const int taps = a.taps;
  const int64_t channels = a.channels;
  if (!a.steps || a.pixels < 4) {  // single pixels (own row pointers each, or a short run)
    for (int p = 0; p < a.pixels; ++p) {
      all_blocks<One>(k, a, a.steps ? a.rows : a.rows + p * taps, a.out + p * channels);
      if (a.steps && p + 1 < a.pixels)
        for (int t = 0; t < taps; ++t) a.rows[t] += a.steps[t];
    }
    return;
  }
  // A run: eight pixels at a time (sixteen independent accumulators hide the multiply-adds'
  // latency), then four; the last group ends at the run's last pixel, overlapping the one before
  // when the run is not a multiple of four (those pixels are computed twice, to the same bytes:
  // no pixel alone waits on one chain of multiply-adds).
  int p = 0;
  auto move_to = [&](int next) {
    for (int t = 0; t < taps; ++t) a.rows[t] += (next - p) * a.steps[t];
    p = next;
  };
  for (; p + 8 <= a.pixels;) {
    all_blocks<Eight>(k, a, a.rows, a.out + p * channels);
    if (p + 8 == a.pixels) return;
    move_to(p + 8 <= a.pixels - 4 ? p + 8 : a.pixels - 4);
  }
  for (;;) {
    all_blocks<Four>(k, a, a.rows, a.out + p * channels);
    if (p + 4 == a.pixels) return;
    move_to(p + 8 <= a.pixels ? p + 4 : a.pixels - 4);
  }
}

}  // namespace quint::ops::x86
