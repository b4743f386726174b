// Requantization: how an int32 accumulator of a linear operator (convolution, matrix product)
// becomes an 8-bit output. This is the one place that says it; kernels and `explain` both call
// it. Each scheme is a named recipe measured bit for bit against the runtime it reproduces
// (shared/ARITHMETIC.md):
//
//  onnx     (ONNX Runtime, the default)
//             M[c] = fl32(fl32(x_s * w_s[c]) / y_s)
//             y    = sat(rne(fl32(fl32(acc + bias[c]) * M[c])) + y_zp)
//  qnnpack  (PyTorch QNNPACK)
//             bias[c] = rne(b[c] * fl32(1 / fl32(x_s * w_s[c])))         (from the float bias)
//             M[c]    = fl32(fl32(w_s[c] * x_s) * fl32(1 / y_s))
//             y       = sat(rne(fl32(fl32(acc + bias[c]) * M[c])) + y_zp)
//  onednn   (PyTorch oneDNN: reciprocal scales, float bias, zero point added before rounding)
//             r_x = fl32(1/x_s), r_w = fl32(1/w_s[c]), r_y = fl32(1/y_s)
//             b_acc[c] = fl32(b[c] * fl32(r_x * r_w)),  o[c] = fl32(r_y / fl32(r_x * r_w))
//             y = rne(clamp(fl32(fl32(fl32(fl32(acc) + b_acc[c]) * o[c]) + y_zp), qmin, qmax))
//  fbgemm   (PyTorch FBGEMM: float bias, lrintf)
//             b_acc[c] = fl32(b[c] / fl32(x_s * w_s[c])),  M[c] = fl32(fl32(x_s * w_s[c]) / y_s)
//             y = sat(rne(fl32(fl32(fl32(acc) + b_acc[c]) * M[c])) + y_zp)
//
// fl32(.) is the float32 result of one operation; rne rounds half to even (the default rounding
// mode, as lrintf and cvtps2dq use); sat clamps to the output type's range. `acc` never contains
// the bias: Σ (x - x_zp)(w - w_zp[c]).
//
// The other operators of a quantized CNN have their objects further down: InputQuantizer
// (QuantizeLinear), AddRequantizer (QLinearAdd) and AvgPoolRequantizer
// (QLinearGlobalAveragePool), each with its formula per scheme and an explain step list.
#pragma once

#include <cmath>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "quint/arith.h"
#include "quint/dtype.h"
#include "quint/explain.h"

namespace quint::ops::arith {

// Round half to even of a float already clamped into int32 range.
inline int32_t rne(float v) { return static_cast<int32_t>(std::nearbyint(v)); }

// The quantization facts of one linear operator, as the model states them.
struct LinearQuant {
  float x_scale = 1;
  std::vector<float> w_scale;     // one per output channel, or a single value
  float y_scale = 1;
  int32_t y_zero_point = 0;
  DType y_type = DType::UInt8;
  std::vector<int32_t> bias;      // int32 bias per channel as stored in the model (may be empty)
  std::vector<float> float_bias;  // PyTorch's float bias, when the model carries it (may be empty)
};

// One step of a requantization, for explain: a label, the formula, the value.
using Step = ExplainStep;

class Requantizer {
 public:
  Requantizer() = default;
  Requantizer(Arith scheme, const LinearQuant& q, int64_t channels);

  Arith scheme() const { return scheme_; }
  int64_t channels() const { return static_cast<int64_t>(mult_.size()); }
  int32_t qmin() const { return qmin_; }
  int32_t qmax() const { return qmax_; }
  int32_t zero_point() const { return zp_; }
  // True when the bias the scheme adds is the model's int32 bias (onnx), so a kernel may fold it
  // into its integer accumulator.
  bool integer_bias() const { return !float_bias_in_acc_; }
  // The int32 bias the scheme adds to acc (model's for onnx, re-derived for qnnpack).
  int32_t int_bias(int64_t c) const { return int_bias_[static_cast<size_t>(c)]; }
  // The float multiplier (M[c] or o[c]).
  float multiplier(int64_t c) const { return mult_[static_cast<size_t>(c)]; }
  // Why the float bias was not used although the scheme wants it (empty when it was).
  const std::string& note() const { return note_; }

  // The output integer for channel c and bias-free accumulator acc.
  int32_t apply(int64_t c, int32_t acc) const;
  // The same, step by step.
  std::vector<Step> explain(int64_t c, int32_t acc) const;
  // The real value just before rounding (for tie detection): for onnx/qnnpack/fbgemm the scaled
  // accumulator without zero point, for onednn with it.
  float pre_round(int64_t c, int32_t acc) const;

 private:
  Arith scheme_ = Arith::Onnx;
  std::vector<float> mult_;
  std::vector<int32_t> int_bias_;
  std::vector<float> acc_bias_;  // bias in accumulator units (onednn, fbgemm)
  bool float_bias_in_acc_ = false;
  int32_t zp_ = 0, qmin_ = 0, qmax_ = 255;
  std::string note_;
  // Kept for explain.
  LinearQuant q_;
};

// Saturating conversion of an already rounded value.
inline int32_t saturate(int64_t v, int32_t lo, int32_t hi) {
  return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
}

// x86 cvtps2dq: round half to even, and INT32_MIN for anything outside the int32 range (or NaN).
inline int32_t cvt_ps2dq(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
  return rne(v);
}

// ONNX Runtime's QLinearAdd on x86 (MLAS's AVX2 kernel; measured on ONNX Runtime 1.30, see
// AddRequantizer). S is the input MLAS streams, Q the other one (see onnx_add_a_is_span_scalar):
//   rS = fl32(S_s/C_s), rQ = fl32(Q_s/C_s), k = fl32(C_zp − fma(rS, S_zp, fl32(rQ·Q_zp))),
//   y = sat(cvt(fma(S, rS, fma(Q, rQ, k))))
// cvt is x86's cvtps2dq (INT32_MIN beyond the int32 range) followed by saturating packs, so a
// sum of 2^31 or more gives the type's minimum, not its maximum. The constructor and apply take
// (S, Q) in that order.
struct AddRequant {
  float ra = 1, rb = 1, k = 0;
  int32_t qmin = 0, qmax = 255;
  AddRequant() = default;
  AddRequant(float a_s, int32_t a_zp, float b_s, int32_t b_zp, float c_s, int32_t c_zp, DType t);
  int32_t apply(int32_t a, int32_t b) const {
    const float v = std::fma(static_cast<float>(a), ra, std::fma(static_cast<float>(b), rb, k));
    return saturate(cvt_ps2dq(v), qmin, qmax);
  }
};

// Whether ONNX Runtime's broadcaster hands QLinearAdd's A to MLAS as the scalar of each span
// (its "input 0 is scalar" case), which makes B the streamed input S of AddRequant: A has extent
// 1 in the innermost output dimension larger than 1, or the output has a single element.
bool onnx_add_a_is_span_scalar(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// Quantizes a real value as ONNX Runtime's QuantizeLinear does: sat(rne(fl32(x / scale)) + zp).
// NaN becomes the type's minimum (as ONNX Runtime's kernels produce; the spec leaves it open).
inline int32_t quantize_value(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float v = x / scale;
  if (std::isnan(v)) return lo;
  // Clamp before converting so that huge values saturate instead of overflowing; rounding is
  // monotonic, so clamping first (to integers) gives the same result.
  v = std::fmin(std::fmax(v, static_cast<float>(lo - zp)), static_cast<float>(hi - zp));
  return rne(v) + zp;
}

// ---- The other quantized operators of a PyTorch-quantized CNN ------------------------------
// (QuantStub, FloatFunctional.add / add_relu, AdaptiveAvgPool2d.) Measured bit for bit against
// Debian 12's torch 1.13 (x86, AVX2 kernels) under the engines onednn and qnnpack (experiment
// scripts and logs outside the repo, /work/notes/pytorch-arith/; tests/pytorch_arith_test.cc
// checks each object against torch at test time). MaxPool, Flatten and the
// dequantization (fl32(fl32(q − zp) · s)) are the same under every scheme. Only QNNPACK has
// kernels of its own for these ops; oneDNN has none, so `onednn` (and `fbgemm`) run ATen's
// generic quantized CPU kernels, which do not depend on the engine.

// QuantizeLinear of a float tensor (PyTorch: QuantStub → quantize_per_tensor).
//  onnx        y = sat(rne(fl32(x / s)) + zp)                  (a division; NaN → qmin)
//  onednn, qnnpack (the engine plays no part; 0 of 3,061,512 elements differ, ties included;
//              the division differs in 16,631):
//              r = fl32(1 / s),  t = fl32(zp + rne(fl32(x · r)))   (a multiplication)
//              y = clamp(int64(t), qmin, qmax), where int64() of NaN, ±inf or |t| ≥ 2^63 is
//              INT64_MIN (x86 cvttss2si), so NaN, +inf and huge positive x all give qmin.
//  fbgemm is assumed to be the same (not measurable here: Debian's torch has no FBGEMM; an
//  FBGEMM build's vector path would saturate huge positive x to qmax instead).
class InputQuantizer {
 public:
  InputQuantizer() = default;
  InputQuantizer(Arith scheme, float scale, int32_t zero_point, DType t);
  Arith scheme() const { return scheme_; }
  int32_t apply(float x) const {
    if (scheme_ == Arith::Onnx) return quantize_value(x, scale_, zp_, qmin_, qmax_);
    const float t = static_cast<float>(zp_) + std::nearbyint(x * inv_);
    if (!(t < 9223372036854775808.0f)) return qmin_;  // NaN, +inf, ≥ 2^63: INT64_MIN
    return static_cast<int32_t>(std::fmin(std::fmax(t, static_cast<float>(qmin_)), static_cast<float>(qmax_)));
  }
  std::vector<Step> explain(float x) const;
  // The value apply() rounds, in output units with the zero point added (ties at .5).
  double pre_round(float x) const;

 private:
  Arith scheme_ = Arith::Onnx;
  float scale_ = 1, inv_ = 1;
  int32_t zp_ = 0, qmin_ = 0, qmax_ = 255;
};

// QLinearAdd (PyTorch: quantized::add / add_relu; a fused ReLU is the output zero point 0).
// Which kernel runs (torch qadd.cpp): QNNPACK's fixed-point add when the scheme is qnnpack and
// both inputs are uint8 of the same shape; otherwise ATen's vectorized float kernel.
//  onnx (OnnxFma, AddRequant; ONNX Runtime 1.30 on this machine kind: 0 of 19.7 M outputs differ,
//          all byte pairs, 60 parameter sets incl. huge ratios, same shape / scalar / [256,1]
//          broadcasts; 81 further sets chosen where the candidates below disagree):
//                  (S, Q) = (B, A) when A is the scalar of ONNX Runtime's broadcast spans
//                  (onnx_add_a_is_span_scalar), else (A, B);
//                  rS = fl32(S_s/C_s), rQ = fl32(Q_s/C_s),
//                  k = fl32(C_zp − fma(rS, S_zp, fl32(rQ·Q_zp)))   (the compiler fused the first product),
//                  y = sat(cvt(fma(S, rS, fma(Q, rQ, k))))          (cvt: cvtps2dq, INT32_MIN beyond int32)
//          Writing k without the fma, keeping (A, B) when A is the per-span scalar, or clamping
//          before the conversion (a huge positive sum then gives qmax, ONNX Runtime gives qmin)
//          each differ from ONNX Runtime.
//  qnnpack (QnnpackFixed, pytorch_qnnp_compute_add_quantization_params + q8vadd; 0 of
//          14.4 M outputs differ: all byte pairs, 220 parameter sets with and without ReLU):
//                  rA = fl32(A_s/C_s), rB = fl32(B_s/C_s), both must lie in [2^-14, 2^8);
//                  e = unbiased exponent of max(rA, rB), shift = 21 − e (14..35),
//                  mA = rne(rA · 2^shift), mB = rne(rB · 2^shift)   (the larger in [2^21, 2^22)),
//                  acc = −(mA·A_zp + mB·B_zp) + A·mA + B·mB          (int32, exact),
//                  q = (acc >> shift) + (rem > (2^shift − 1) >> 1), rem = (acc & (2^shift − 1)) − (acc < 0)
//                    (= round half away from zero of acc / 2^shift),
//                  y = clamp(q + C_zp, 0, 255)
//                  For max(rA, rB) < 2^-10 the shift exceeds 31 and x86 gives: mask =
//                  2^(shift mod 32) − 1, acc >> shift = sign fill (measured: reproduced).
//  onednn, fbgemm, and qnnpack otherwise (AtenFloat, QuantizedOpKernels.cpp qadd_kernel, AVX2;
//          0 of 15.7 M; without the fma 16 differ):
//                  dA = fma(A, A_s, fl32(A_s · −A_zp)), dB = fma(B, B_s, fl32(B_s · −B_zp)),
//                  c = fl32(dA + dB)  (add_relu: c = max(c, 0), the same result when C_zp = qmin),
//                  v = min(fl32(c · fl32(1/C_s)), 2147483520), y = clamp(cvt(v) +₃₂ C_zp, qmin, qmax)
//                  with cvt x86's cvtps2dq (half to even; INT32_MIN out of range) and +₃₂ a
//                  wrapping int32 add (a huge positive v with C_zp ≥ 128 wraps to qmin, as torch).
//    ATen's scalar tail (apply_tail): the last (n mod 64) elements of each parallel chunk of the
//    contiguous buffer (1 chunk below 32768 elements, else ceil(n / threads) each) take
//                  dA = fl32((A − A_zp) · A_s), dB likewise, c = fl32(dA + dB),
//                  y = clamp(int64(fl32(C_zp + rne(fl32(c · fl32(1/C_s))))), qmin, qmax).
//    quint applies the vector formula everywhere: it cannot know PyTorch's memory format and
//    thread count. The two differ at about 1 in 870,000 input pairs; sizes that are multiples
//    of 64·threads (every add of a ResNet) have no tail.
class AddRequantizer {
 public:
  enum class Kernel { OnnxFma, QnnpackFixed, AtenFloat };
  AddRequantizer() = default;
  // same_shape: A and B have the same shape (no broadcasting). Fails (quint::Error) where
  // PyTorch's QNNPACK refuses the scales.
  // a_is_span_scalar: onnx_add_a_is_span_scalar(A's shape, B's shape) (used by onnx only).
  AddRequantizer(Arith scheme, float a_s, int32_t a_zp, float b_s, int32_t b_zp, float c_s, int32_t c_zp,
                 DType t, bool same_shape = true, bool a_is_span_scalar = false);
  Arith scheme() const { return scheme_; }
  Kernel kernel() const { return kernel_; }
  int32_t apply(int32_t a, int32_t b) const {
    switch (kernel_) {
      case Kernel::OnnxFma:
        return swap_ ? onnx_.apply(b, a) : onnx_.apply(a, b);
      case Kernel::QnnpackFixed: {
        const int32_t acc = zpp_ + a * ma_ + b * mb_;
        const int32_t rem = (acc & mask_) - (acc < 0 ? 1 : 0);
        const int32_t q = (acc >> (shift_ < 31 ? shift_ : 31)) + (rem > (mask_ >> 1) ? 1 : 0);
        return saturate(static_cast<int64_t>(q) + c_zp_, qmin_, qmax_);
      }
      case Kernel::AtenFloat: {
        const float c = std::fma(static_cast<float>(a), sa_, pa_) + std::fma(static_cast<float>(b), sb_, pb_);
        float v = c * inv_;
        if (!(v < 2147483520.0f)) v = 2147483520.0f;  // _mm256_min_ps(v, 2^31 − 128), NaN included
        const uint32_t sum = static_cast<uint32_t>(cvt_ps2dq(v)) + static_cast<uint32_t>(c_zp_);
        return saturate(static_cast<int32_t>(sum), qmin_, qmax_);
      }
    }
    return 0;
  }
  // ATen's scalar tail formula (AtenFloat only; the other kernels have none: same as apply).
  int32_t apply_tail(int32_t a, int32_t b) const;
  std::vector<Step> explain(int32_t a, int32_t b) const;
  // The value apply() rounds, in output units with the zero point added (ties at .5).
  double pre_round(int32_t a, int32_t b) const;

 private:
  Arith scheme_ = Arith::Onnx;
  Kernel kernel_ = Kernel::OnnxFma;
  AddRequant onnx_;  // takes (B, A) when swap_
  bool swap_ = false;
  float a_s_ = 1, b_s_ = 1;
  int32_t a_zp_ = 0, b_zp_ = 0, c_zp_ = 0, qmin_ = 0, qmax_ = 255;
  float ra_ = 1, rb_ = 1;                  // QnnpackFixed: A_s/C_s, B_s/C_s
  int32_t ma_ = 0, mb_ = 0, zpp_ = 0, shift_ = 0, mask_ = 0;
  float sa_ = 1, sb_ = 1, pa_ = 0, pb_ = 0, inv_ = 1;  // AtenFloat
};

// QLinearGlobalAveragePool (PyTorch: AdaptiveAvgPool2d(1), output scale and zero point = the
// input's). N = number of spatial positions, S = Σ x (raw values), acc = S − x_zp·N (int32).
//  onnx          s = fl32(x_s / fl32(y_s · N)), y = sat(rne(fl32(fl32(acc) · s)) + y_zp)
//  qnnpack       uint8 and N > 1 (QNNPACK average pooling, pytorch_qnnp_create_average_pooling2d_nhwc_q8
//                with a float scale in torch 1.13): the same formula as onnx; x_s/y_s must lie in
//                [2^-8, 2^8). int8 or N = 1: as onednn.
//  onednn, fbgemm  (ATen, q_adaptive_avg_pool2d), by the memory format PyTorch's input had
//                (with y_s = x_s, as PyTorch's pool keeps, all of these agree with onnx except the
//                contiguous one at exact .5 ties of even N; the ResNet's 7x7 has none):
//    channels-last (what a quantized conv or add produces; the default here):
//                m = fl32(fl32(x_s / y_s) / N), r = fl32(1 / fl32(1 / m)),
//                y = clamp(int64(fl32(y_zp + rne(fl32(fl32(acc) · r)))), qmin, qmax)
//    contiguous NCHW (requires y_s = x_s and y_zp = x_zp):
//                r = fl32(1 / d0) then r = fl32(r / d_i) for each further spatial dim
//                (for 3 spatial dims the first division is in double, then rounded),
//                y = rne(fl32(fl32(S) · r))        (no zero point, no clamp needed)
class AvgPoolRequantizer {
 public:
  enum class TorchLayout { ChannelsLast, Contiguous };
  AvgPoolRequantizer() = default;
  // window: the spatial extents averaged over (their product is N).
  AvgPoolRequantizer(Arith scheme, float x_s, int32_t x_zp, float y_s, int32_t y_zp,
                     const std::vector<int64_t>& window, DType t, TorchLayout layout = TorchLayout::ChannelsLast);
  Arith scheme() const { return scheme_; }
  int64_t count() const { return n_; }
  // The output for the raw sum S = Σ x over the window.
  int32_t apply(int64_t raw_sum) const {
    const int32_t acc = static_cast<int32_t>(raw_sum - static_cast<int64_t>(x_zp_) * n_);
    switch (kind_) {
      case Kind::ScaleAcc:
        return quantize_value(static_cast<float>(acc) * mult_, 1.0f, y_zp_, qmin_, qmax_);
      case Kind::AtenChannelsLast: {
        const float t = static_cast<float>(y_zp_) + std::nearbyint(static_cast<float>(acc) * mult_);
        return static_cast<int32_t>(std::fmin(std::fmax(t, static_cast<float>(qmin_)), static_cast<float>(qmax_)));
      }
      case Kind::AtenContiguous:
        return saturate(static_cast<int64_t>(std::nearbyint(static_cast<float>(raw_sum) * mult_)), qmin_, qmax_);
    }
    return 0;
  }
  // apply() to `count` raw sums, each the sum of count() values of type T, written as T. The onnx
  // formula runs as a loop the compiler vectorizes, with the same results: a NaN product clamps
  // to qmin − y_zp as in quantize_value (v > lo is false), ±inf to the bounds, and after the
  // clamp |v| ≤ 510, where (v + 1.5·2^23) − 1.5·2^23 rounds to the nearest integer, ties to even.
  // x_zp·N and S − x_zp·N fit int32 (N ≤ 2^23, checked by the kernel's builder).
  template <class T>
  void apply_all(const int32_t* raw_sums, int64_t count, T* y) const {
    if (kind_ != Kind::ScaleAcc) {
      for (int64_t i = 0; i < count; ++i) y[i] = static_cast<T>(apply(raw_sums[i]));
      return;
    }
    const int32_t zpn = static_cast<int32_t>(static_cast<int64_t>(x_zp_) * n_);
    const float lo = static_cast<float>(qmin_ - y_zp_), hi = static_cast<float>(qmax_ - y_zp_);
    const float magic = 12582912.0f;
    for (int64_t i = 0; i < count; ++i) {
      float v = static_cast<float>(raw_sums[i] - zpn) * mult_;
      v = v > lo ? v : lo;
      v = v < hi ? v : hi;
      y[i] = static_cast<T>(static_cast<int32_t>((v + magic) - magic) + y_zp_);
    }
  }
  std::vector<Step> explain(int64_t raw_sum) const;
  // The value apply() rounds, in output units with the zero point added (ties at .5).
  double pre_round(int64_t raw_sum) const;

 private:
  enum class Kind { ScaleAcc, AtenChannelsLast, AtenContiguous };
  Arith scheme_ = Arith::Onnx;
  Kind kind_ = Kind::ScaleAcc;
  float mult_ = 1, m_ = 1;
  int32_t x_zp_ = 0, y_zp_ = 0, qmin_ = 0, qmax_ = 255;
  int64_t n_ = 1;
};

}  // namespace quint::ops::arith
