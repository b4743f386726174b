#include "arith/activation.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>

namespace quint::ops::arith {

namespace {

constexpr float f32(uint32_t bits) { return std::bit_cast<float>(bits); }

// The x86 max/min instructions: a NaN in either operand gives the second one.
inline float xmax(float a, float b) { return a > b ? a : b; }
inline float xmin(float a, float b) { return a < b ? a : b; }

// Both are rational functions of the clamped input v: v · N(v²) / D(v²), the polynomials
// evaluated by Horner's scheme with one fused multiply-add per step. The coefficients, highest
// power first, as float32 bit patterns (ONNX Runtime 1.30's MLAS tables).
struct SigmoidConst {
  static constexpr float lo = f32(0xc1900000u), hi = f32(0x41900000u);  // ∓18
  static constexpr float num[] = {f32(0x2e403551u), f32(0x33f84ecbu), f32(0x387f413bu), f32(0x3c0b7d58u),
                                  f32(0x3e7e3f32u)};
  static constexpr float den[] = {f32(0x2b2bc4f5u), f32(0x31c5f27bu), f32(0x36d317ddu), f32(0x3adf153fu),
                                  f32(0x3def3e18u), f32(0x3f7e3f34u)};
  static constexpr bool sigmoid = true;  // then y = xmax(0, r + 0.5)
};
struct TanhConst {
  static constexpr float lo = f32(0xc1100000u), hi = f32(0x41100000u);  // ∓9
  static constexpr float num[] = {f32(0xa59f25c0u), f32(0x2a61337eu), f32(0xaebd37ffu), f32(0x335c0041u),
                                  f32(0x3779434au), f32(0x3a270dedu), f32(0x3ba059dcu)};
  static constexpr float den[] = {f32(0x35a0d3d8u), f32(0x38f895d6u), f32(0x3b14aa05u), f32(0x3ba059ddu)};
  static constexpr bool sigmoid = false;
};

// p = c[0], then p = fma(s, p, c[i]) for each further coefficient.
template <size_t N>
[[gnu::always_inline]] inline float horner(float s, const float (&c)[N]) {
  float p = c[0];
  for (size_t i = 1; i < N; ++i) p = std::fma(s, p, c[i]);
  return p;
}

// One element. Inlined into the loops below, once compiled for FMA and once without (std::fma is
// then libm's, exact as well, only slower).
template <class C>
[[gnu::always_inline]] inline float eval1(float x) {
  const float v = xmin(C::hi, xmax(C::lo, x));
  const float s = v * v;
  const float r = v * horner(s, C::num) / horner(s, C::den);
  if constexpr (C::sigmoid) return xmax(0.0f, r + 0.5f);
  else return r;
}

template <class C>
void eval_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = eval1<C>(x[i]);
}

template <size_t N>
[[gnu::target("avx2,fma"), gnu::always_inline]] inline __m256 horner8(__m256 s, const float (&c)[N]) {
  __m256 p = _mm256_set1_ps(c[0]);
  for (size_t i = 1; i < N; ++i) p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(c[i]));
  return p;
}

// Eight at a time with the same operations (_mm256_max_ps(a, b) is xmax(a, b)), the rest one by
// one.
template <class C>
[[gnu::target("avx2,fma")]] void eval_fma(const float* x, float* y, int64_t n) {
  const __m256 lo = _mm256_set1_ps(C::lo), hi = _mm256_set1_ps(C::hi);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
    const __m256 s = _mm256_mul_ps(v, v);
    __m256 r = _mm256_div_ps(_mm256_mul_ps(v, horner8(s, C::num)), horner8(s, C::den));
    if constexpr (C::sigmoid) r = _mm256_max_ps(_mm256_setzero_ps(), _mm256_add_ps(r, _mm256_set1_ps(0.5f)));
    _mm256_storeu_ps(y + i, r);
  }
  for (; i < n; ++i) y[i] = eval1<C>(x[i]);
}

bool have_fma() {
  static const bool yes = [] {
    __builtin_cpu_init();  // in case this runs before libgcc's constructor has
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}

}  // namespace

float ort_sigmoid(float x) {
  float y;
  ort_sigmoid(&x, &y, 1);
  return y;
}

float ort_tanh(float x) {
  float y;
  ort_tanh(&x, &y, 1);
  return y;
}

void ort_sigmoid_portable(const float* x, float* y, int64_t n) { eval_plain<SigmoidConst>(x, y, n); }
void ort_tanh_portable(const float* x, float* y, int64_t n) { eval_plain<TanhConst>(x, y, n); }

void ort_sigmoid(const float* x, float* y, int64_t n) {
  if (have_fma()) eval_fma<SigmoidConst>(x, y, n);
  else eval_plain<SigmoidConst>(x, y, n);
}

void ort_tanh(const float* x, float* y, int64_t n) {
  if (have_fma()) eval_fma<TanhConst>(x, y, n);
  else eval_plain<TanhConst>(x, y, n);
}

}  // namespace quint::ops::arith

// ---- Exp and Softmax (ONNX Runtime's AVX-512F kernels) ---------------------------------------

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on _mm512_undefined_ps (GCC bug 105593;
// ops/CMakeLists.txt silences it for the files compiled with -mavx512f).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace quint::ops::arith {

namespace {

// Constants of MLAS's AVX-512F exp kernel, as float32 bit patterns.
struct ExpConst {
  static constexpr float lower = f32(0xc2cff1b5u);   // −103.972084: below it e^x is 0 in float32
  static constexpr float shift = f32(0x4b400000u);   // 1.5 · 2^23: adding it rounds to an integer
  static constexpr float log2e = f32(0x3fb8aa3bu);
  static constexpr float ln2_hi = f32(0xbf317200u);  // −ln 2, split in two
  static constexpr float ln2_lo = f32(0xb5bfbe8eu);
  static constexpr float poly[] = {f32(0x3ab4a000u), f32(0x3c092f6eu), f32(0x3d2aadadu), f32(0x3e2aaa28u),
                                   f32(0x3efffffbu), 1.0f, 1.0f};
};

float quiet(float x) { return std::bit_cast<float>(std::bit_cast<uint32_t>(x) | 0x00400000u); }

// VSCALEFPS(a, b) = a · 2^floor(b) rounded once, with the instruction's special cases (Intel
// SDM's table, checked on this CPU): NaN a gives the quieted a, except a quiet NaN with b = +inf
// gives +inf and with b = −inf +0; NaN b gives the quieted b; inf·2^−inf and 0·2^+inf are the
// default NaN. For the scalar path (CPUs without AVX-512F, single values): in double, a · 2^n is
// exact and rounds once to float.
float scalef(float a, float b) {
  if (std::isnan(a)) {
    const bool signaling = !(std::bit_cast<uint32_t>(a) & 0x00400000u);
    if (!signaling && b == INFINITY) return INFINITY;
    if (!signaling && b == -INFINITY) return 0.0f;
    return quiet(a);
  }
  if (std::isnan(b)) return quiet(b);
  if (std::isinf(a)) return b == -INFINITY ? f32(0xffc00000u) : a;
  if (a == 0.0f) return b == INFINITY ? f32(0xffc00000u) : a;
  if (std::isinf(b)) return b > 0 ? std::copysign(INFINITY, a) : std::copysign(0.0f, a);
  const double n = std::clamp(std::floor(static_cast<double>(b)), -400.0, 400.0);
  return static_cast<float>(std::ldexp(static_cast<double>(a), static_cast<int>(n)));
}

// e^x as MLAS computes it: m = round(x·log2 e) (by the shift), the reduced argument
// r = (x − m·ln2_hi) − m·ln2_lo (each step an fma), a degree-6 polynomial in r (Horner, fma),
// scaled by 2^m with VSCALEFPS. Inputs below `lower` are raised to it; there is no upper clamp:
// large x overflow to inf in the scaling (x = +inf: NaN polynomial, scalef(NaN, +inf) = +inf).
[[gnu::always_inline]] inline float exp1(float x) {
  if (std::isnan(x)) return quiet(x);
  float v = xmax(ExpConst::lower, x);
  const float m = std::fma(v, ExpConst::log2e, ExpConst::shift) - ExpConst::shift;
  v = std::fma(m, ExpConst::ln2_hi, v);
  v = std::fma(m, ExpConst::ln2_lo, v);
  return scalef(horner(v, ExpConst::poly), m);
}

[[gnu::target("avx512f"), gnu::always_inline]] inline __m512 exp16(__m512 x) {
  __m512 v = _mm512_max_ps(_mm512_set1_ps(ExpConst::lower), x);
  const __m512 shift = _mm512_set1_ps(ExpConst::shift);
  const __m512 m = _mm512_sub_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(ExpConst::log2e), shift), shift);
  v = _mm512_fmadd_ps(m, _mm512_set1_ps(ExpConst::ln2_hi), v);
  v = _mm512_fmadd_ps(m, _mm512_set1_ps(ExpConst::ln2_lo), v);
  __m512 p = _mm512_set1_ps(ExpConst::poly[0]);
  for (size_t i = 1; i < std::size(ExpConst::poly); ++i) p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(ExpConst::poly[i]));
  return _mm512_scalef_ps(p, m);
}

__mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xffffu : (1u << left) - 1u); }

[[gnu::target("avx512f")]] void exp_avx512(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, exp16(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void exp_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp1(x[i]);
}

// Softmax's sum: 16 running sums, element i added to sum i mod 16 in order, then folded as
// MLAS's horizontal reduction does.
float fold16(const float (&acc)[16]) {
  float u[8];
  for (int j = 0; j < 8; ++j) u[j] = acc[j + 8] + acc[j];
  return ((u[0] + u[1]) + (u[2] + u[3])) + ((u[4] + u[5]) + (u[6] + u[7]));
}

// The row's maximum, starting from the lowest finite float (max is exact: any order gives it).
float row_max(const float* x, int64_t n) {
  float m = f32(0xff7fffffu);
  for (int64_t i = 0; i < n; ++i) m = xmax(m, x[i]);
  return m;
}

void softmax_plain(const float* x, float* y, int64_t n) {
  const float neg_max = -row_max(x, n);
  float acc[16] = {};
  for (int64_t i = 0; i < n; ++i) {
    const float e = exp1(x[i] + neg_max);
    y[i] = e;
    acc[i % 16] += e;
  }
  const float scale = 1.0f / fold16(acc);
  for (int64_t i = 0; i < n; ++i) y[i] = scale * y[i];
}

[[gnu::target("avx512f")]] void softmax_avx512(const float* x, float* y, int64_t n) {
  const __m512 neg_max = _mm512_set1_ps(-row_max(x, n));
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = exp16(_mm512_add_ps(_mm512_maskz_loadu_ps(k, x + i), neg_max));
    _mm512_mask_storeu_ps(y + i, k, e);
    acc = _mm512_mask_add_ps(acc, k, acc, e);
  }
  float lanes[16];
  _mm512_storeu_ps(lanes, acc);
  const __m512 scale = _mm512_set1_ps(1.0f / fold16(lanes));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(scale, _mm512_maskz_loadu_ps(k, y + i)));
  }
}

bool have_avx512f() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
  }();
  return yes;
}

}  // namespace

float ort_exp(float x) { return exp1(x); }

void ort_exp(const float* x, float* y, int64_t n) {
  if (have_avx512f()) exp_avx512(x, y, n);
  else exp_plain(x, y, n);
}

void ort_exp_portable(const float* x, float* y, int64_t n) { exp_plain(x, y, n); }

void ort_softmax(const float* x, float* y, int64_t n) {
  if (have_avx512f()) softmax_avx512(x, y, n);
  else softmax_plain(x, y, n);
}

void ort_softmax_portable(const float* x, float* y, int64_t n) { softmax_plain(x, y, n); }

}  // namespace quint::ops::arith

// ---- Erf (ONNX Runtime's FMA3 kernel, also used on AVX-512 CPUs) ------------------------------

namespace quint::ops::arith {

namespace {

struct ErfConst {
  static constexpr float upper = f32(0x407b3333u);  // 3.925: |x| is clamped to it (erf = 1 there)
  static constexpr float split = f32(0x3f6c0000u);  // 0.921875: the small and the large branch
  // Small |x|: erf = a + a·P(a²), P highest power first.
  static constexpr float small[] = {f32(0xba1d0d41u), f32(0x3ba39fa4u), f32(0xbcdb45e9u), f32(0x3de70d23u),
                                    f32(0xbec09370u), f32(0x3e0375d3u)};
  // Large |x|: erf = 1 − e^−(a + a·Q(a)), Q highest power first.
  static constexpr float large[] = {f32(0x37911480u), f32(0xb9c8e966u), f32(0x3b7e899bu), f32(0xbcc6b180u),
                                    f32(0x3ddaae58u), f32(0x3f228550u), f32(0x3e03ce86u)};
  // That exponential's own constants (not the Exp kernel's): clamp, shift, log2 e, −ln 2 in two
  // parts, the polynomial, and 2^n built from the truncated n.
  static constexpr float exp_lower = f32(0xc2b0c0a5u);
  static constexpr float shift = f32(0x4b400000u);
  static constexpr float log2e = f32(0x3fb8aa3bu);
  static constexpr float ln2_hi = f32(0xbf317200u), ln2_lo = f32(0xb5bfbe8eu);
  static constexpr float exp_poly[] = {f32(0x3ab54c6du), f32(0x3c093965u), f32(0x3d2aad10u), f32(0x3e2aaa17u),
                                       f32(0x3efffffbu), 1.0f, 1.0f};
};

// One element, following the kernel's vector operations lane by lane: both branches are
// computed, the small one's bits kept only for |x| ≤ split, the large one's input zeroed
// otherwise (which makes that branch give exactly 0); the sign is OR'ed back at the end. A NaN
// passes the clamp (vminps returns it) and ends up, quieted, in the small branch's bits.
[[gnu::always_inline]] inline float erf1(float x) {
  const uint32_t sign = std::bit_cast<uint32_t>(x) & 0x80000000u;
  const float a = xmin(ErfConst::upper, std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0x7fffffffu));
  const float small = std::fma(a, horner(a * a, ErfConst::small), a);
  const bool big = a > ErfConst::split;
  const uint32_t small_bits = big ? 0u : std::bit_cast<uint32_t>(small);
  const float b = big ? a : 0.0f;
  float q = -std::fma(b, horner(b, ErfConst::large), b);
  q = xmax(q, ErfConst::exp_lower);
  const float n = std::fma(q, ErfConst::log2e, ErfConst::shift) - ErfConst::shift;
  float r = std::fma(n, ErfConst::ln2_hi, q);
  r = std::fma(n, ErfConst::ln2_lo, r);
  const uint32_t two_n = (static_cast<uint32_t>(static_cast<int32_t>(n)) + 127u) << 23;
  const float y = 1.0f - horner(r, ErfConst::exp_poly) * std::bit_cast<float>(two_n);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(y) | small_bits | sign);
}

[[gnu::target("avx2,fma")]] void erf_fma(const float* x, float* y, int64_t n) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sign = _mm256_and_ps(v, sign_mask);
    const __m256 a = _mm256_min_ps(_mm256_set1_ps(ErfConst::upper), _mm256_andnot_ps(sign_mask, v));
    const __m256 small = _mm256_fmadd_ps(a, horner8(_mm256_mul_ps(a, a), ErfConst::small), a);
    const __m256 big = _mm256_cmp_ps(a, _mm256_set1_ps(ErfConst::split), _CMP_GT_OQ);
    const __m256 small_bits = _mm256_andnot_ps(big, small);
    const __m256 b = _mm256_and_ps(big, a);
    __m256 q = _mm256_xor_ps(_mm256_fmadd_ps(b, horner8(b, ErfConst::large), b), sign_mask);
    q = _mm256_max_ps(q, _mm256_set1_ps(ErfConst::exp_lower));
    const __m256 shift = _mm256_set1_ps(ErfConst::shift);
    const __m256 nn = _mm256_sub_ps(_mm256_fmadd_ps(q, _mm256_set1_ps(ErfConst::log2e), shift), shift);
    __m256 r = _mm256_fmadd_ps(nn, _mm256_set1_ps(ErfConst::ln2_hi), q);
    r = _mm256_fmadd_ps(nn, _mm256_set1_ps(ErfConst::ln2_lo), r);
    const __m256 two_n = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(nn), _mm256_set1_epi32(127)), 23));
    const __m256 e = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(horner8(r, ErfConst::exp_poly), two_n));
    _mm256_storeu_ps(y + i, _mm256_or_ps(_mm256_or_ps(e, small_bits), sign));
  }
  for (; i < n; ++i) y[i] = erf1(x[i]);
}

void erf_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = erf1(x[i]);
}

}  // namespace

float ort_erf(float x) { return erf1(x); }

void ort_erf(const float* x, float* y, int64_t n) {
  if (have_fma()) erf_fma(x, y, n);
  else erf_plain(x, y, n);
}

void ort_erf_portable(const float* x, float* y, int64_t n) { erf_plain(x, y, n); }

}  // namespace quint::ops::arith
