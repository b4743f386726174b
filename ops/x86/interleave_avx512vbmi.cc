#include <immintrin.h>

#include <array>

#include "interleave.h"

namespace quint::ops::x86 {

namespace {

// For output vector v (bytes 64v .. 64v+63 of the 192 written per 64 triples): byte j is
// channel (64v + j) % 3 of triple (64v + j) / 3. `rg` picks from R (index < 64) or G (64 + i);
// `b` the B index, used where `bmask` is set.
struct Tables {
  std::array<std::array<uint8_t, 64>, 3> rg{}, b{};
  std::array<uint64_t, 3> bmask{};
};

constexpr Tables make_tables() {
  Tables t;
  for (int v = 0; v < 3; ++v)
    for (int j = 0; j < 64; ++j) {
      const int pos = 64 * v + j, pixel = pos / 3, channel = pos % 3;
      t.rg[v][j] = static_cast<uint8_t>(channel == 1 ? 64 + pixel : pixel);
      t.b[v][j] = static_cast<uint8_t>(pixel);
      if (channel == 2) t.bmask[v] |= uint64_t{1} << j;
    }
  return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

void interleave3_avx512vbmi(const uint8_t* r, const uint8_t* g, const uint8_t* b, int64_t n, uint8_t flip,
                            uint8_t* dst) {
  __m512i rg_idx[3], b_idx[3];
  for (int v = 0; v < 3; ++v) {
    rg_idx[v] = _mm512_loadu_si512(kTables.rg[v].data());
    b_idx[v] = _mm512_loadu_si512(kTables.b[v].data());
  }
  const __m512i fl = _mm512_set1_epi8(static_cast<char>(flip));
  for (int64_t i = 0; i < n; i += 64, dst += 192) {
    const int64_t left = n - i;
    const __mmask64 in = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
    const __m512i R = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, r + i), fl);
    const __m512i G = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, g + i), fl);
    const __m512i B = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, b + i), fl);
    const int64_t bytes = 3 * (left >= 64 ? 64 : left);
    for (int v = 0; v < 3; ++v) {
      const __m512i rg = _mm512_permutex2var_epi8(R, rg_idx[v], G);
      const __m512i out = _mm512_mask_permutexvar_epi8(rg, static_cast<__mmask64>(kTables.bmask[v]), b_idx[v], B);
      const int64_t here = bytes - 64 * v;
      if (here >= 64) _mm512_storeu_si512(dst + 64 * v, out);
      else if (here > 0) _mm512_mask_storeu_epi8(dst + 64 * v, (__mmask64{1} << here) - 1, out);
    }
  }
}

}  // namespace quint::ops::x86
