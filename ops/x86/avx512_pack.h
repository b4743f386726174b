// Saturating narrowing of int32 vectors to bytes in element order, shared by the AVX-512
// kernels (include only from translation units compiled for AVX-512 BW).
//
// packs_epi32(a, b) and packs_epi32(c, d) give int16 vectors w0, w1 (saturated); packs of those
// two gives bytes (saturated to int8 or uint8) in which 128-bit lane L holds elements 4L .. 4L+3
// of a, then of b, c and d. One dword permutation puts them in order: a's 16 elements, then b's,
// c's and d's. (Saturating twice is exact: int16 saturation never moves a value across the byte
// range's bounds.)
#pragma once

#include <immintrin.h>

namespace quint::ops::x86 {

inline __m512i pack_bytes_in_order(__m512i w0, __m512i w1, bool out_signed) {
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, out_signed ? _mm512_packs_epi16(w0, w1) : _mm512_packus_epi16(w0, w1));
}

}  // namespace quint::ops::x86
