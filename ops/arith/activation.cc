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

// The coefficients, as float32 bit patterns (ONNX Runtime 1.30's MLAS tables).
struct SigmoidConst {
  static constexpr float lo = f32(0xc1900000u), hi = f32(0x41900000u);  // ∓18
  static constexpr float a9 = f32(0x2e403551u), a7 = f32(0x33f84ecbu), a5 = f32(0x387f413bu),
                         a3 = f32(0x3c0b7d58u), a1 = f32(0x3e7e3f32u);
  static constexpr float b10 = f32(0x2b2bc4f5u), b8 = f32(0x31c5f27bu), b6 = f32(0x36d317ddu),
                         b4 = f32(0x3adf153fu), b2 = f32(0x3def3e18u), b0 = f32(0x3f7e3f34u);
};
struct TanhConst {
  static constexpr float lo = f32(0xc1100000u), hi = f32(0x41100000u);  // ∓9
  static constexpr float a13 = f32(0xa59f25c0u), a11 = f32(0x2a61337eu), a9 = f32(0xaebd37ffu),
                         a7 = f32(0x335c0041u), a5 = f32(0x3779434au), a3 = f32(0x3a270dedu),
                         a1 = f32(0x3ba059dcu);
  static constexpr float b6 = f32(0x35a0d3d8u), b4 = f32(0x38f895d6u), b2 = f32(0x3b14aa05u),
                         b0 = f32(0x3ba059ddu);
};

// Inlined into the loops below, once compiled for FMA and once without (std::fma is then libm's,
// exact as well, only slower).
[[gnu::always_inline]] inline float sigmoid1(float x) {
  using C = SigmoidConst;
  const float v = xmin(C::hi, xmax(C::lo, x));
  const float s = v * v;
  float p = std::fma(s, C::a9, C::a7);
  p = std::fma(s, p, C::a5);
  p = std::fma(s, p, C::a3);
  p = std::fma(s, p, C::a1);
  float q = std::fma(s, C::b10, C::b8);
  q = std::fma(s, q, C::b6);
  q = std::fma(s, q, C::b4);
  q = std::fma(s, q, C::b2);
  q = std::fma(s, q, C::b0);
  p = v * p;
  return xmax(0.0f, p / q + 0.5f);
}

[[gnu::always_inline]] inline float tanh1(float x) {
  using C = TanhConst;
  const float v = xmin(C::hi, xmax(C::lo, x));
  const float s = v * v;
  float p = std::fma(s, C::a13, C::a11);
  p = std::fma(s, p, C::a9);
  p = std::fma(s, p, C::a7);
  p = std::fma(s, p, C::a5);
  p = std::fma(s, p, C::a3);
  p = std::fma(s, p, C::a1);
  float q = std::fma(s, C::b6, C::b4);
  q = std::fma(s, q, C::b2);
  q = std::fma(s, q, C::b0);
  return (v * p) / q;
}

void sigmoid_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}
void tanh_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = tanh1(x[i]);
}
// Eight at a time with the same operations (_mm256_max_ps(a, b) is xmax(a, b)), the rest one by
// one.
[[gnu::target("avx2,fma")]] void sigmoid_fma(const float* x, float* y, int64_t n) {
  using C = SigmoidConst;
  const __m256 lo = _mm256_set1_ps(C::lo), hi = _mm256_set1_ps(C::hi), half = _mm256_set1_ps(0.5f),
               zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
    const __m256 s = _mm256_mul_ps(v, v);
    __m256 p = _mm256_fmadd_ps(s, _mm256_set1_ps(C::a9), _mm256_set1_ps(C::a7));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a5));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a3));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a1));
    __m256 q = _mm256_fmadd_ps(s, _mm256_set1_ps(C::b10), _mm256_set1_ps(C::b8));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b6));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b4));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b2));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b0));
    const __m256 r = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(v, p), q), half);
    _mm256_storeu_ps(y + i, _mm256_max_ps(zero, r));
  }
  for (; i < n; ++i) y[i] = sigmoid1(x[i]);
}

[[gnu::target("avx2,fma")]] void tanh_fma(const float* x, float* y, int64_t n) {
  using C = TanhConst;
  const __m256 lo = _mm256_set1_ps(C::lo), hi = _mm256_set1_ps(C::hi);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
    const __m256 s = _mm256_mul_ps(v, v);
    __m256 p = _mm256_fmadd_ps(s, _mm256_set1_ps(C::a13), _mm256_set1_ps(C::a11));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a9));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a7));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a5));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a3));
    p = _mm256_fmadd_ps(s, p, _mm256_set1_ps(C::a1));
    __m256 q = _mm256_fmadd_ps(s, _mm256_set1_ps(C::b6), _mm256_set1_ps(C::b4));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b2));
    q = _mm256_fmadd_ps(s, q, _mm256_set1_ps(C::b0));
    _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_mul_ps(v, p), q));
  }
  for (; i < n; ++i) y[i] = tanh1(x[i]);
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

void ort_sigmoid_portable(const float* x, float* y, int64_t n) { sigmoid_plain(x, y, n); }
void ort_tanh_portable(const float* x, float* y, int64_t n) { tanh_plain(x, y, n); }

void ort_sigmoid(const float* x, float* y, int64_t n) {
  if (have_fma()) sigmoid_fma(x, y, n);
  else sigmoid_plain(x, y, n);
}

void ort_tanh(const float* x, float* y, int64_t n) {
  if (have_fma()) tanh_fma(x, y, n);
  else tanh_plain(x, y, n);
}

}  // namespace quint::ops::arith
