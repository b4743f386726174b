#include "arith/activation.h"

#include <immintrin.h>

#include <bit>
#include <cmath>

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
