// AVX-512 depthwise microkernel: 32 channels per step. The input bytes of one tap are widened
// once to 16-bit lanes (vpmovzxbw: one shuffle for 32 channels) and multiplied against two weight
// vectors split by channel parity (dwconv.h): int32 lane j of the "even" vector holds w'[c0+2j]
// in its low half, of the "odd" one w'[c0+2j+1] in its high half, so vpdpwssd gives
// x[c0+2j]·w'[c0+2j] and x[c0+2j+1]·w'[c0+2j+1] in two accumulators — exact (int16 × int16 into
// int32) and one shuffle per tap and 32 channels instead of two. The epilogue (below) rounds both
// halves, packs them to bytes and restores channel order with in-lane shuffles. Along a run of
// output pixels (steps given) it computes eight or four pixels at a time, each tap's weights
// loaded once for them, and reads whole blocks of channels with plain loads (masked byte loads
// are twice as slow here). MobileNetV2's depthwise layers in the kernels bench: 31-33 GMAC/s
// with four pixels, masked loads and a per-pixel epilogue mode; 40-43 now.
#include <immintrin.h>

#include <type_traits>

#include "cpu.h"
#include "dwconv.h"

namespace quint::ops::x86 {

namespace {

// The epilogue, for the even- and odd-channel accumulators of 32 channels: rounded (after the
// float clamp unless ClampFree, see QGemmArgs::clamp_free), packed to int16 with saturation
// (lane L of 128 bits then holds channels 8L+0, 2, 4, 6, 1, 3, 5, 7), the zero point added with
// saturation, packed to bytes, and put in channel order by one in-lane byte shuffle and one
// qword permutation. (Exact in both modes: after the float clamp every value is in the output
// type, and under ClampFree saturating is the clamp.) Its mode is a template parameter. GCC 12
// copies every accumulator in and out of the taps loop (and spills some) when the accumulators
// feed an epilogue like this one directly, whatever its form: pixels() hands them over through
// memory (10-17 % faster in a microbenchmark of the kernel alone).
template <bool ClampFree, bool Signed>
struct Epilogue {
  __m512 lo, hi;
  __m512i zp16, order8, lanes;

  __m512i round(__m512i acc, __m512 mult) const {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    if constexpr (!ClampFree) f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    return _mm512_cvtps_epi32(f);
  }
  // Stores 32 channels (fewer under the mask); mult_even / mult_odd are split by parity like the
  // accumulators.
  void store(uint8_t* out, __mmask32 m, __m512i acc_even, __m512i acc_odd, __m512 mult_even, __m512 mult_odd) const {
    const __m512i w = _mm512_adds_epi16(_mm512_packs_epi32(round(acc_even, mult_even), round(acc_odd, mult_odd)), zp16);
    const __m512i b = Signed ? _mm512_packs_epi16(w, w) : _mm512_packus_epi16(w, w);
    const __m512i ordered = _mm512_permutexvar_epi64(lanes, _mm512_shuffle_epi8(b, order8));
    _mm256_mask_storeu_epi8(out, m, _mm512_castsi512_si256(ordered));
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

template <class Ep>
struct Consts {
  Ep ep;
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
    *me = _mm512_permutex2var_ps(lo, even_idx, hi);
    *mo = _mm512_permutex2var_ps(lo, odd_idx, hi);
  }
};

// P pixels of a run (each tap's row pointer advances by steps[t] per pixel) for one block of
// 32 channels: each tap's weights are loaded once for the P pixels.
template <int P, Block B, class K>
inline void pixels(const K& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
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
  // The accumulators go to the epilogue through memory (a barrier keeps the stores): read
  // directly, GCC 12 copies every one of them in and out of the taps loop (see Epilogue).
  alignas(64) int32_t acc[2 * P][16];
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) {
    _mm512_store_si512(acc[2 * i], e[i]);
    _mm512_store_si512(acc[2 * i + 1], o[i]);
  }
  asm("" : : "r"(&acc[0][0]) : "memory");
  __m512 me, mo;
  k.split_mult(c, &me, &mo);
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i)
    k.ep.store(out + i * a.channels + c, m, _mm512_load_si512(acc[2 * i]), _mm512_load_si512(acc[2 * i + 1]), me, mo);
}

// One pixel, one block of 32 channels. Taps alternate between two sets of accumulators, summed
// at the end (int32 addition wraps and is associative: the same sums), so that the pixel does
// not wait on the latency of a single chain of multiply-adds.
template <Block B, class K>
inline void one_pixel(const K& k, const DwArgs& a, const uint8_t* const* rows, int64_t c, __mmask32 m, uint8_t* out) {
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

// Every block of channels of a group of P pixels (P = 1: one_pixel).
template <int P, class K>
inline void all_blocks(const K& k, const DwArgs& a, const uint8_t* const* rows, uint8_t* out) {
  auto block = [&](auto kind, int64_t c, __mmask32 m) {
    constexpr Block B = decltype(kind)::value;
    if constexpr (P == 1) one_pixel<B>(k, a, rows, c, m, out);
    else pixels<P, B>(k, a, rows, c, m, out);
  };
  const int64_t channels = a.channels;
  int64_t c = 0;
  for (; c + 32 <= channels; c += 32) block(std::integral_constant<Block, Block::Full>(), c, channel_mask(32));
  const int64_t left = channels - c;
  if (left == 16) block(std::integral_constant<Block, Block::Half>(), c, channel_mask(16));
  else if (left > 0) block(std::integral_constant<Block, Block::Masked>(), c, channel_mask(left));
}

template <bool ClampFree, bool Signed>
void run(const DwArgs& a) {
  const __m512i even_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  using Ep = Epilogue<ClampFree, Signed>;
  // order8: in each 128-bit lane, bytes 0-7 in channel order (from 0, 2, 4, 6, 1, 3, 5, 7);
  // lanes: the low qword of each 128-bit lane, in order.
  const Consts<Ep> k{Ep{_mm512_set1_ps(a.lo), _mm512_set1_ps(a.hi), _mm512_set1_epi16(static_cast<int16_t>(a.zp)),
                        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15)),
                        _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7)},
                     even_idx, _mm512_add_epi32(even_idx, _mm512_set1_epi32(1)), a.bias, a.mult};
  const int taps = a.taps;
  const int64_t channels = a.channels;
  if (!a.steps || a.pixels < 4) {  // single pixels (own row pointers each, or a short run)
    for (int p = 0; p < a.pixels; ++p) {
      all_blocks<1>(k, a, a.steps ? a.rows : a.rows + p * taps, a.out + p * channels);
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
    all_blocks<8>(k, a, a.rows, a.out + p * channels);
    if (p + 8 == a.pixels) return;
    move_to(p + 8 <= a.pixels - 4 ? p + 8 : a.pixels - 4);
  }
  for (;;) {
    all_blocks<4>(k, a, a.rows, a.out + p * channels);
    if (p + 4 == a.pixels) return;
    move_to(p + 8 <= a.pixels ? p + 4 : a.pixels - 4);
  }
}

}  // namespace

void dwconv_avx512(const DwArgs& a) {
  if (a.clamp_free) {
    if (a.out_signed) run<true, true>(a);
    else run<true, false>(a);
  } else {
    if (a.out_signed) run<false, true>(a);
    else run<false, false>(a);
  }
}

}  // namespace quint::ops::x86
