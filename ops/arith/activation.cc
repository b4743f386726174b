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
// default NaN. Only reached without AVX-512; in double, a · 2^n is exact and rounds once to float.
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
