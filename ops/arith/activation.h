// Float32 Sigmoid and Tanh computed as ONNX Runtime 1.30 computes them on x86-64 CPUs with AVX2
// and FMA: with its MLAS library's rational approximations (the FMA3 kernels of logistic and
// tanh, which ONNX Runtime also uses on AVX-512 CPUs), not with libm. They differ from the
// correctly rounded functions by a few ULP, enough to move a requantized value across a rounding
// tie now and then, so quint reproduces them bit for bit. Measured against ONNX Runtime 1.30 on
// every one of the 2^32 float32 bit patterns: 0 differences for both.
//
// Notation: fma(a, b, c) is one fused multiply-add; every other operation is a float32 operation
// rounded on its own; xmax(a, b) = a > b ? a : b and xmin(a, b) = a < b ? a : b (the x86 max/min
// instructions: a NaN in either operand gives b).
//
//   Sigmoid: v = xmin(18, xmax(−18, x)), s = v·v,
//            p = v · ((((a9·s + a7)·s + a5)·s + a3)·s + a1)         (Horner, each step an fma)
//            q = ((((b10·s + b8)·s + b6)·s + b4)·s + b2)·s + b0   (likewise)
//            y = xmax(0, p/q + 0.5)
//            The upper end is not clamped: y is 1.0000001 for some x in [17.48, 17.99].
//   Tanh:    v = xmin(9, xmax(−9, x)), s = v·v,
//            p = v · (Horner over a13 … a1), q = Horner over b6 … b0, y = p/q
//            (|y| reaches 1.0000002 near |x| = 9; tanh(−x) = −tanh(x) exactly).
// NaN gives the (quieted) input NaN, as the instructions do.
//
// Other CPUs: ONNX Runtime's portable fallback (no FMA, output clamped) differs; quint always
// computes the FMA form (in hardware when the CPU has FMA, else with libm's exact fma).
//
// Float32 Exp and Softmax as ONNX Runtime 1.30 computes them on CPUs with AVX-512F (its MLAS
// exp kernel for AVX-512F; ONNX Runtime's AVX2 kernels use other constants and are not
// reproduced):
//   Exp:     v = xmax(−103.972084, x), m = fl32(fma(v, log2 e, 1.5·2^23) − 1.5·2^23),
//            r = fma(m, −ln2_lo, fma(m, −ln2_hi, v)), p = Horner of degree 6 in r (fma steps,
//            the last two coefficients 1), y = scalef(p, m) = p·2^m rounded once (VSCALEFPS,
//            whose special cases make e^+inf = +inf and e^−inf = 0).
//   Softmax of a row x[0..n): M = max(lowest float, x…), e_i = Exp(x_i + (−M)); sixteen sums,
//            e_i added to sum i mod 16 in order; S = ((u0+u1)+(u2+u3)) + ((u4+u5)+(u6+u7)) with
//            u_j = sum_{j+8} + sum_j; y_i = fl32(1/S) · e_i (a product, not a division).
// Measured against ONNX Runtime 1.30: Exp on 2 M random bit patterns and special values, Softmax
// on 21 M elements in rows of 1 to 30000: 0 differences. Without AVX-512F quint computes the
// same with libm's fma and an exact scalef.
#pragma once

#include <cstdint>

namespace quint::ops::arith {

float ort_sigmoid(float x);
float ort_tanh(float x);
void ort_sigmoid(const float* x, float* y, int64_t n);
void ort_tanh(const float* x, float* y, int64_t n);
// The same without FMA instructions (libm's fma), as on CPUs without them; for the tests.
void ort_sigmoid_portable(const float* x, float* y, int64_t n);
void ort_tanh_portable(const float* x, float* y, int64_t n);

// Float32 Erf as ONNX Runtime 1.30 computes it on x86-64 CPUs with AVX2 and FMA (its MLAS FMA3
// erf kernel, also used on AVX-512 CPUs). With a = xmin(3.925, |x|):
//   |x| ≤ 0.921875 (and NaN): y = fma(a, P(a²), a), P of degree 5 (Horner, fma steps);
//   otherwise:                 y = 1 − E(−fma(a, Q(a), a)), Q of degree 6, where E is an exp of
//                              its own (clamp at −88.376, 2^n from the truncated n, no scalef);
//   the sign of x is OR'ed back. Measured against ONNX Runtime 1.30 on 2 M random bit patterns,
//   a 2 M-point grid and special values: 0 differences.
float ort_erf(float x);
void ort_erf(const float* x, float* y, int64_t n);
void ort_erf_portable(const float* x, float* y, int64_t n);

float ort_exp(float x);
void ort_exp(const float* x, float* y, int64_t n);
void ort_exp_portable(const float* x, float* y, int64_t n);
// Softmax of one contiguous row of n elements (n ≥ 1); x and y may be the same array.
void ort_softmax(const float* x, float* y, int64_t n);
void ort_softmax_portable(const float* x, float* y, int64_t n);

}  // namespace quint::ops::arith
