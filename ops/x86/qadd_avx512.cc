#include <immintrin.h>

#include "avx512_pack.h"
#include "qadd.h"

namespace quint::ops::x86 {

namespace {

template <bool Signed>
inline __m512 widen(__m128i b) {
  return _mm512_cvtepi32_ps(Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}

// 16 sums as int32, before saturation: cvt(fma(A, rA, fma(B, rB, k))) (qadd.h).
template <bool Signed>
inline __m512i sums16(__m128i a, __m128i b, __m512 ra, __m512 rb, __m512 k) {
  return _mm512_cvtps_epi32(_mm512_fmadd_ps(widen<Signed>(a), ra, _mm512_fmadd_ps(widen<Signed>(b), rb, k)));
}

// Convert first, then saturate: an out-of-range sum converts to INT32_MIN and so gives the
// type's minimum, as ONNX Runtime's packing does (uint8: negative values go to 0 before the
// unsigned narrowing, which would read INT32_MIN as a huge value).
template <bool Signed>
inline __m128i add16(__m128i a, __m128i b, __m512 ra, __m512 rb, __m512 k) {
  const __m512i q = sums16<Signed>(a, b, ra, rb, k);
  return Signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()));
}

// 64 elements: four vectors of int32, narrowed with saturation by packs (INT32_MIN still gives
// the type's minimum) and put back in order (avx512_pack.h).
template <bool Signed>
inline __m512i add64(const uint8_t* pa, const uint8_t* pb, __m512 ra, __m512 rb, __m512 k) {
  __m512i q[4];
  for (int v = 0; v < 4; ++v) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + 16 * v));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16 * v));
    q[v] = sums16<Signed>(va, vb, ra, rb, k);
  }
  return pack_bytes_in_order(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]), Signed);
}

// Blocks of 64, full vectors of 16 with plain loads and stores (they fold into the widening
// instructions), then one masked vector for the tail.
template <bool Signed>
void run(const QAddArgs& a) {
  const __m512 ra = _mm512_set1_ps(a.ra), rb = _mm512_set1_ps(a.rb), k = _mm512_set1_ps(a.k);
  const uint8_t* pa = a.a;
  const uint8_t* pb = a.b;
  uint8_t* y = a.y;
  const int64_t n = a.n, blocks = n / 64 * 64, full = n / 16 * 16;
  for (int64_t i = 0; i < blocks; i += 64) _mm512_storeu_si512(y + i, add64<Signed>(pa + i, pb + i, ra, rb, k));
  for (int64_t i = blocks; i < full; i += 16) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + i));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), add16<Signed>(va, vb, ra, rb, k));
  }
  if (full < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - full)) - 1);
    const __m128i va = _mm_maskz_loadu_epi8(m, pa + full), vb = _mm_maskz_loadu_epi8(m, pb + full);
    _mm_mask_storeu_epi8(y + full, m, add16<Signed>(va, vb, ra, rb, k));
  }
}

// 16 products as int32 before saturation: cvt(fl32(fl32(p)·r) + C_zp) (qadd.h).
// With B already widened and centred (wb = B − B_zp).
template <bool Signed>
inline __m512i mul16w(__m128i a, __m512i wb, __m512i azp, __m512 r, __m512 czp) {
  const __m512i wa = Signed ? _mm512_cvtepi8_epi32(a) : _mm512_cvtepu8_epi32(a);
  const __m512i p = _mm512_mullo_epi32(_mm512_sub_epi32(wa, azp), wb);
  return _mm512_cvtps_epi32(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p), r), czp));
}
template <bool Signed>
inline __m512i mul16(__m128i a, __m128i b, __m512i azp, __m512i bzp, __m512 r, __m512 czp) {
  const __m512i wb = Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
  return mul16w<Signed>(a, _mm512_sub_epi32(wb, bzp), azp, r, czp);
}

template <bool Signed>
void run_mul(const QMulArgs& a) {
  const __m512i azp = _mm512_set1_epi32(a.a_zp), bzp = _mm512_set1_epi32(a.b_zp);
  const __m512 r = _mm512_set1_ps(a.r), czp = _mm512_set1_ps(a.c_zp);
  const int64_t n = a.n, blocks = n / 64 * 64;
  auto load = [](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  for (int64_t row = 0; row < a.rows; ++row) {
    const uint8_t* pa = a.a + row * a.lda;
    const uint8_t* pb = a.b + row * a.ldb;
    uint8_t* y = a.y + row * a.ldy;
    const int32_t bs = a.b_scalar ? (Signed ? static_cast<int8_t>(pb[0]) : pb[0]) - a.b_zp : 0;
    const __m512i wbs = _mm512_set1_epi32(bs);
    auto mul = [&](__m128i va, const uint8_t* b, __mmask16 m) {
      return a.b_scalar ? mul16w<Signed>(va, wbs, azp, r, czp)
                        : mul16<Signed>(va, _mm_maskz_loadu_epi8(m, b), azp, bzp, r, czp);
    };
    for (int64_t i = 0; i < blocks; i += 64) {
      __m512i q[4];
      for (int v = 0; v < 4; ++v) q[v] = mul(load(pa + i + 16 * v), pb + i + 16 * v, 0xffff);
      _mm512_storeu_si512(y + i, pack_bytes_in_order(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]), Signed));
    }
    for (int64_t i = blocks; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
      const __m512i q = mul(_mm_maskz_loadu_epi8(m, pa + i), pb + i, m);
      // INT32_MIN (out of range) saturates to the type's minimum, like the packs above.
      const __m128i bytes = Signed ? _mm512_cvtsepi32_epi8(q)
                                   : _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()));
      _mm_mask_storeu_epi8(y + i, m, bytes);
    }
  }
}

}  // namespace

void qmul_avx512(const QMulArgs& a) {
  if (a.is_signed) run_mul<true>(a);
  else run_mul<false>(a);
}

void qadd_avx512(const QAddArgs& a) {
  if (a.is_signed) run<true>(a);
  else run<false>(a);
}

}  // namespace quint::ops::x86
