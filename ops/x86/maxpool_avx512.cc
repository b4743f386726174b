#include <immintrin.h>

#include "maxpool.h"

namespace quint::ops::x86 {

namespace {

// 64 channels at a time, the maximum kept in a register across the rows (masked loads for the
// last, partial vector; their zero lanes are never stored).
template <bool Signed>
void run(const uint8_t* const* rows, int n, int64_t channels, uint8_t* out) {
  for (int64_t c = 0; c < channels; c += 64) {
    const int64_t left = channels - c;
    const __mmask64 m = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
    __m512i v = _mm512_maskz_loadu_epi8(m, rows[0] + c);
    for (int r = 1; r < n; ++r) {
      const __m512i x = _mm512_maskz_loadu_epi8(m, rows[r] + c);
      v = Signed ? _mm512_max_epi8(v, x) : _mm512_max_epu8(v, x);
    }
    _mm512_mask_storeu_epi8(out + c, m, v);
  }
}

}  // namespace

void max_rows_avx512(const uint8_t* const* rows, int n, int64_t channels, bool is_signed, uint8_t* out) {
  if (is_signed) run<true>(rows, n, channels, out);
  else run<false>(rows, n, channels, out);
}

}  // namespace quint::ops::x86
