#include <immintrin.h>

#include "maxpool.h"

namespace quint::ops::x86 {

namespace {

// 64 channels at a time, the maximum kept in a register across the window. Whole blocks use
// plain loads (masked byte loads are about twice as slow on Zen 5); the last, partial block is
// masked, and its zero lanes are never stored. The pixels are walked without a call or a pointer
// table per output pixel (the previous kernel's per-pixel overhead was most of its time).
template <bool Signed>
void run(const MaxPoolRowArgs& a) {
  const int64_t C = a.channels, IW = a.in_w, SW = a.stride_w, PW = a.pad_w, DW = a.dilation_w, KW = a.kernel_w;
  const int nrows = a.nrows;
  const uint8_t* const* rows = a.rows;
  const __m512i lowest = _mm512_set1_epi8(Signed ? static_cast<char>(0x80) : 0);
  auto max = [](__m512i x, __m512i y) { return Signed ? _mm512_max_epi8(x, y) : _mm512_max_epu8(x, y); };
  uint8_t* out = a.out;
  for (int64_t ow = 0; ow < a.out_w; ++ow, out += C) {
    // The window's columns inside the input: kw in [kw0, kw1).
    const int64_t iw0 = ow * SW - PW;
    int64_t kw0 = 0, kw1 = KW;
    while (kw0 < kw1 && iw0 + kw0 * DW < 0) ++kw0;
    while (kw1 > kw0 && iw0 + (kw1 - 1) * DW >= IW) --kw1;
    if (kw0 == kw1) {  // no column inside the input (possible with ceil_mode)
      for (int64_t c = 0; c < C; c += 64) _mm512_mask_storeu_epi8(out + c, C - c >= 64 ? ~__mmask64{0} : (__mmask64{1} << (C - c)) - 1, lowest);
      continue;
    }
    int64_t c = 0;
    for (; c + 64 <= C; c += 64) {
      __m512i v = lowest;
      for (int r = 0; r < nrows; ++r) {
        const uint8_t* p = rows[r] + (iw0 + kw0 * DW) * C + c;
        for (int64_t kw = kw0; kw < kw1; ++kw, p += DW * C) v = max(v, _mm512_loadu_si512(p));
      }
      _mm512_storeu_si512(out + c, v);
    }
    if (c < C) {
      const __mmask64 m = (__mmask64{1} << (C - c)) - 1;
      __m512i v = lowest;
      for (int r = 0; r < nrows; ++r) {
        const uint8_t* p = rows[r] + (iw0 + kw0 * DW) * C + c;
        for (int64_t kw = kw0; kw < kw1; ++kw, p += DW * C) v = max(v, _mm512_maskz_loadu_epi8(m, p));
      }
      _mm512_mask_storeu_epi8(out + c, m, v);
    }
  }
}

}  // namespace

void max_pool_row_avx512(const MaxPoolRowArgs& a) {
  if (a.is_signed) run<true>(a);
  else run<false>(a);
}

}  // namespace quint::ops::x86
