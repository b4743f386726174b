// The AVX-512 VNNI microkernels' body, compiled twice: by qgemm_avx512vnni.cc (AVX-512 F/BW/VL/
// DQ/VNNI) and by qgemm_avx512vbmi.cc with QUINT_QGEMM_VBMI=1 (also AVX-512 VBMI: the epilogue
// narrows two vectors to bytes with one vpermt2b instead of two vpmovusdb, ~5 % faster on the
// small-K layers). Both give identical bytes.
//
// MR rows × NR = 16·NV columns, vpdpbusd (u8 × s8 → int32, 4 products per lane per instruction,
// exact: the instruction does not saturate).
// Packed B: for every group of 4 k, NR columns × 4 bytes (NV zmm registers).
// The shapes used are 14×32 (28 accumulators, the two B vectors and the broadcast row: 31 of
// the 32 registers; 1–4 % faster than 12×32 on the K ≤ 64 layers and the stem, where the
// per-call costs weigh most, and 14 divides every ResNet50 and MobileNetV2 pixel count but 49),
// and 12×16 for matrices of at most 16 columns (MobileNetV2's 32→16 layer: +23 %); 6×64 and
// 8×48 were measured on ResNet50's layers and were no faster (8×48 slower), so they are not
// instantiated.
// QGemmArgs::prefetch lines are fetched one per k step (prefetcht1).
// Two epilogues: the float clamp of qgemm.h's formula, and, when QGemmArgs::clamp_free allows it,
// rounding first and saturating in integers with two packs per pair of rows (fewer instructions:
// +4–11 % on layers with K ≤ 128, where the epilogue is a large part of the time).
// No include guard: meant to be included once per translation unit, after QUINT_QGEMM_VBMI.
#include <immintrin.h>

#include <cstring>

#include "avx512_pack.h"
#include "qgemm.h"

#ifndef QUINT_QGEMM_VBMI
#error "define QUINT_QGEMM_VBMI (0 or 1) before including qgemm_avx512_kernel.h"
#endif

namespace quint::ops::x86 {

namespace {

template <int NV>
size_t packed_bytes(int64_t k) {
  return static_cast<size_t>(k / 4) * NV * 16 * 4;
}

template <int NV>
void pack(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out) {
  constexpr int NR = NV * 16;
  for (int64_t k4 = 0; k4 < k_total; k4 += 4, out += NR * 4) {
    for (int n = 0; n < ncols; ++n) std::memcpy(out + n * 4, w + n * ldw + k4, 4);
    if (ncols < NR) std::memset(out + ncols * 4, 0, static_cast<size_t>(NR - ncols) * 4);
  }
}

inline __m512i load_bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Requires: bias, mult and w_zp (when given) hold NR readable entries; the callers pad their
// per-column arrays to whole blocks of NR.
// Every loop over m or v is unrolled so that the accumulators stay in registers (an array
// indexed by a run-time index would live on the stack, zeroed there with rep stos).
template <int R, int NV>
void run_rows(const QGemmArgs& p) {
  // The accumulators start at the bias (int32 addition wraps and is associative, so this is
  // acc + bias exactly, one instruction less per vector in the epilogue).
  __m512i acc[R][NV], bias[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) bias[v] = _mm512_loadu_si512(p.bias + 16 * v);
#pragma GCC unroll 16
  for (int m = 0; m < R; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[m][v] = bias[v];
  const int8_t* b = p.b;
  const int8_t* pf = p.prefetch;
  int64_t pf_left = p.prefetch_lines;
  for (int64_t t = 0; t < p.taps; ++t) {
    const uint8_t* a[R];
#pragma GCC unroll 16
    for (int m = 0; m < R; ++m) a[m] = segment(p, m, t);
    for (int64_t k = 0; k < p.k; k += 4) {
      __m512i bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_si512(b + 64 * v);
      b += 64 * NV;
      if (pf_left > 0) {
        _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
        pf += 64;
        --pf_left;
      }
#pragma GCC unroll 16
      for (int m = 0; m < R; ++m) {
        const __m512i av = load_bcast4(a[m] + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_dpbusd_epi32(acc[m][v], av, bv[v]);
      }
    }
  }
  // Epilogue constants in registers (read through `p` inside the row loop, they would be
  // reloaded after every byte store, which may alias them).
  __m512i wzp[NV];
  __m512 mult[NV];
  const bool has_wzp = p.w_zp != nullptr;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    mult[v] = _mm512_loadu_ps(p.mult + 16 * v);
    wzp[v] = has_wzp ? _mm512_loadu_si512(p.w_zp + 16 * v) : _mm512_setzero_si512();
  }
#if QUINT_QGEMM_VBMI
  static_assert(NV % 2 == 0, "the VBMI epilogue narrows vectors in pairs");
  // Byte i of the permutation: the low byte of lane i of the first vector (i < 16) or of lane
  // i − 16 of the second.
  const __m512i idx = _mm512_set_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0, 0, 124, 120, 116, 112, 108, 104, 100, 96, 92, 88, 84, 80, 76, 72, 68, 64,
                                      60, 56, 52, 48, 44, 40, 36, 32, 28, 24, 20, 16, 12, 8, 4, 0);
  const __m256i zp8 = _mm256_set1_epi8(static_cast<char>(p.zp));
#else
  const __m512i zp = _mm512_set1_epi32(p.zp);
  const bool out_signed = p.out_signed;
#endif
  const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
  const int32_t* row_sums = p.row_sums;
  uint8_t* c = p.c;
  const int64_t ldc = p.ldc;
  const int nr = p.nr;
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int left = nr - 16 * v;
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
  }
#if QUINT_QGEMM_VBMI
  __mmask32 mask2[NV / 2];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v += 2) mask2[v / 2] = static_cast<__mmask32>(mask[v] | (static_cast<uint32_t>(mask[v + 1]) << 16));
#endif
  if (p.clamp_free) {
    // Round first, then saturate in integers (exact when fl32(v)·mult cannot reach ±2^31: see
    // QGemmArgs::clamp_free): rows in pairs, packed to int16 with saturation, the zero point
    // added with saturation, then to bytes in order (avx512_pack.h): with two vectors per row the
    // first 32 bytes are row m's, the next 32 row m + 1's; with one vector per row, a single
    // packs_epi32 takes both rows and the first 16 bytes are row m's, the next 16 row m + 1's.
    const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(p.zp));
    const bool sgn = p.out_signed;
    auto scaled = [&](int m, int v) {
      __m512i x = acc[m][v];
      if (has_wzp) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(wzp[v], _mm512_set1_epi32(row_sums[m])));
      return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(x), mult[v]));
    };
    auto narrow = [&](__m512i w0, __m512i w1) {
      return pack_bytes_in_order(_mm512_adds_epi16(w0, zp16), _mm512_adds_epi16(w1, zp16), sgn);
    };
    if constexpr (NV == 2) {
      const __mmask32 m2 = static_cast<__mmask32>(mask[0] | (static_cast<uint32_t>(mask[1]) << 16));
#pragma GCC unroll 8
      for (int m = 0; m + 1 < R; m += 2) {
        const __m512i b = narrow(_mm512_packs_epi32(scaled(m, 0), scaled(m, 1)), _mm512_packs_epi32(scaled(m + 1, 0), scaled(m + 1, 1)));
        _mm256_mask_storeu_epi8(c + m * ldc, m2, _mm512_castsi512_si256(b));
        _mm256_mask_storeu_epi8(c + (m + 1) * ldc, m2, _mm512_extracti64x4_epi64(b, 1));
      }
      if (R % 2) {
        const __m512i w = _mm512_packs_epi32(scaled(R - 1, 0), scaled(R - 1, 1));
        _mm256_mask_storeu_epi8(c + (R - 1) * ldc, m2, _mm512_castsi512_si256(narrow(w, w)));
      }
    } else {
      static_assert(NV == 1 || NV == 2, "the integer epilogue handles one or two vectors per row");
#pragma GCC unroll 8
      for (int m = 0; m + 1 < R; m += 2) {
        const __m512i w = _mm512_packs_epi32(scaled(m, 0), scaled(m + 1, 0));
        const __m512i b = narrow(w, w);
        _mm_mask_storeu_epi8(c + m * ldc, mask[0], _mm512_castsi512_si128(b));
        _mm_mask_storeu_epi8(c + (m + 1) * ldc, mask[0], _mm512_extracti32x4_epi32(b, 1));
      }
      if (R % 2) {
        const __m512i q = scaled(R - 1, 0);
        const __m512i w = _mm512_packs_epi32(q, q);
        _mm_mask_storeu_epi8(c + (R - 1) * ldc, mask[0], _mm512_castsi512_si128(narrow(w, w)));
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (int m = 0; m < R; ++m) {
    const __m512i rs = has_wzp ? _mm512_set1_epi32(row_sums[m]) : _mm512_setzero_si512();
    __m512i q[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512i x = acc[m][v];
      if (has_wzp) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(wzp[v], rs));
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), mult[v]);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
#if QUINT_QGEMM_VBMI
      q[v] = _mm512_cvtps_epi32(f);
    }
    // The clamp keeps q + zp within the output type, so its low byte is the result: gather the
    // low bytes of two vectors with one permutation and add the zero point as bytes (mod 256).
#pragma GCC unroll 4
    for (int v = 0; v < NV; v += 2) {
      const __m256i bytes = _mm256_add_epi8(_mm512_castsi512_si256(_mm512_permutex2var_epi8(q[v], idx, q[v + 1])), zp8);
      _mm256_mask_storeu_epi8(c + m * ldc + 16 * v, mask2[v / 2], bytes);
    }
#else
      q[v] = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
      const __m128i bytes = out_signed ? _mm512_cvtsepi32_epi8(q[v]) : _mm512_cvtusepi32_epi8(q[v]);
      _mm_mask_storeu_epi8(c + m * ldc + 16 * v, mask[v], in_register(bytes));
    }
#endif
  }
}

template <int MR, int NV>
void run(const QGemmArgs& p) {
  switch (p.mr) {
    case 1: run_rows<1, NV>(p); break;
    case 2: run_rows<2, NV>(p); break;
    case 3: run_rows<3, NV>(p); break;
    case 4: run_rows<4, NV>(p); break;
    case 5: run_rows<5, NV>(p); break;
    case 6: run_rows<(MR >= 6 ? 6 : MR), NV>(p); break;
    case 7: run_rows<(MR >= 7 ? 7 : MR), NV>(p); break;
    case 8: run_rows<(MR >= 8 ? 8 : MR), NV>(p); break;
    case 9: run_rows<(MR >= 9 ? 9 : MR), NV>(p); break;
    case 10: run_rows<(MR >= 10 ? 10 : MR), NV>(p); break;
    case 11: run_rows<(MR >= 11 ? 11 : MR), NV>(p); break;
    case 12: run_rows<(MR >= 12 ? 12 : MR), NV>(p); break;
    case 13: run_rows<(MR >= 13 ? 13 : MR), NV>(p); break;
    default: run_rows<MR, NV>(p); break;
  }
}

}  // namespace

}  // namespace quint::ops::x86
