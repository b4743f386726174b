// AVX-512 VNNI microkernel: 12 rows × 32 columns, vpdpbusd (u8 × s8 → int32, 4 products per lane
// per instruction, exact: the instruction does not saturate).
// Packed B: for every group of 4 k, 32 columns × 4 bytes (two zmm registers).
#include <immintrin.h>

#include <cstring>

#include "qgemm.h"

namespace quint::ops::x86 {

namespace {

constexpr int MR = 12, NR = 32;

size_t packed_bytes(int64_t k) { return static_cast<size_t>(k / 4) * NR * 4; }

void pack(const int8_t* w, int64_t ldw, int64_t k_total, int ncols, int8_t* out) {
  for (int64_t k4 = 0; k4 < k_total; k4 += 4)
    for (int n = 0; n < NR; ++n)
      for (int j = 0; j < 4; ++j) *out++ = n < ncols ? w[n * ldw + k4 + j] : 0;
}

inline __m512i load_bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// The epilogue's per-column constants, loaded once per tile into registers. (Read through
// `p` inside the row loop, they would be reloaded after every byte store, which may alias them.)
struct Epilogue {
  __m512i bias0, bias1, wzp0, wzp1, zp;
  __m512 mult0, mult1, lo, hi;
  explicit Epilogue(const QGemmArgs& p)
      : bias0(_mm512_loadu_si512(p.bias)),
        bias1(_mm512_loadu_si512(p.bias + 16)),
        wzp0(p.w_zp ? _mm512_loadu_si512(p.w_zp) : _mm512_setzero_si512()),
        wzp1(p.w_zp ? _mm512_loadu_si512(p.w_zp + 16) : _mm512_setzero_si512()),
        zp(_mm512_set1_epi32(p.zp)),
        mult0(_mm512_loadu_ps(p.mult)),
        mult1(_mm512_loadu_ps(p.mult + 16)),
        lo(_mm512_set1_ps(p.lo)),
        hi(_mm512_set1_ps(p.hi)) {}
  // v = acc + bias (− w_zp · row_sum): the int32 value to requantize.
  __m128i requant(__m512i v, __m512 mult, bool out_signed) const {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), mult);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
    return out_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q);
  }
};

// Requires: bias, mult and w_zp (when given) hold NR (32) readable entries; the callers pad
// their per-column arrays to whole blocks of NR.
template <int R>
void run_rows(const QGemmArgs& p) {
  // Every loop over m is unrolled so that the accumulators stay in registers (an array indexed
  // by a run-time m would live on the stack, zeroed there with rep stos).
  __m512i acc0[R], acc1[R];
#pragma GCC unroll 12
  for (int m = 0; m < R; ++m) acc0[m] = acc1[m] = _mm512_setzero_si512();
  const int8_t* b = p.b;
  for (int64_t t = 0; t < p.taps; ++t) {
    const uint8_t* a[R];
#pragma GCC unroll 12
    for (int m = 0; m < R; ++m) a[m] = p.a[m * p.taps + t];
    for (int64_t k = 0; k < p.k; k += 4) {
      const __m512i b0 = _mm512_load_si512(b);
      const __m512i b1 = _mm512_load_si512(b + 64);
      b += 128;
#pragma GCC unroll 12
      for (int m = 0; m < R; ++m) {
        const __m512i av = load_bcast4(a[m] + k);
        acc0[m] = _mm512_dpbusd_epi32(acc0[m], av, b0);
        acc1[m] = _mm512_dpbusd_epi32(acc1[m], av, b1);
      }
    }
  }
  const Epilogue e(p);
  const bool out_signed = p.out_signed, has_wzp = p.w_zp != nullptr;
  const int32_t* row_sums = p.row_sums;
  uint8_t* c = p.c;
  const int64_t ldc = p.ldc;
  const int nr = p.nr;
  const __mmask32 mask = nr >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << nr) - 1);
#pragma GCC unroll 12
  for (int m = 0; m < R; ++m) {
    __m512i v0 = _mm512_add_epi32(acc0[m], e.bias0), v1 = _mm512_add_epi32(acc1[m], e.bias1);
    if (has_wzp) {
      const __m512i rs = _mm512_set1_epi32(row_sums[m]);
      v0 = _mm512_sub_epi32(v0, _mm512_mullo_epi32(e.wzp0, rs));
      v1 = _mm512_sub_epi32(v1, _mm512_mullo_epi32(e.wzp1, rs));
    }
    const __m128i y0 = e.requant(v0, e.mult0, out_signed), y1 = e.requant(v1, e.mult1, out_signed);
    _mm256_mask_storeu_epi8(c + m * ldc, mask, _mm256_inserti128_si256(_mm256_castsi128_si256(y0), y1, 1));
  }
}

void run(const QGemmArgs& p) {
  switch (p.mr) {
    case 1: run_rows<1>(p); break;
    case 2: run_rows<2>(p); break;
    case 3: run_rows<3>(p); break;
    case 4: run_rows<4>(p); break;
    case 5: run_rows<5>(p); break;
    case 6: run_rows<6>(p); break;
    case 7: run_rows<7>(p); break;
    case 8: run_rows<8>(p); break;
    case 9: run_rows<9>(p); break;
    case 10: run_rows<10>(p); break;
    case 11: run_rows<11>(p); break;
    default: run_rows<12>(p); break;
  }
}

}  // namespace

const QGemmKernel kQGemmAvx512Vnni{Isa::Avx512Vnni, MR, NR, 4, packed_bytes, pack, run};

}  // namespace quint::ops::x86
