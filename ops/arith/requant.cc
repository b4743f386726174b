#include "requant.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "quint/error.h"

namespace quint::ops::arith {

namespace {

std::string fmt_float(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

// A rounded float as an integer for the explanation's text. C++ leaves int64(v) undefined for
// NaN and beyond ±2^63 (UBSan: a QuantizeLinear input of 1.6e31 reached it); such values, and
// any beyond ±2^62 where adding a zero point could overflow, are shown as floats instead.
std::string rounded_str(double r, int64_t zp) {
  constexpr double kLimit = 4611686018427387904.0;  // 2^62
  if (r > -kLimit && r < kLimit) return std::to_string(static_cast<int64_t>(r) + zp);
  return fmt_float(static_cast<float>(r + static_cast<double>(zp)));
}

// Clamp in float then round: equal to rounding then saturating, without int overflow.
int32_t round_clamped(float v, float lo, float hi) {
  if (std::isnan(v)) v = 0;
  return rne(std::fmin(std::fmax(v, lo), hi));
}

}  // namespace

Requantizer::Requantizer(Arith scheme, const LinearQuant& q, int64_t channels)
    : scheme_(scheme), q_(q) {
  const size_t n = static_cast<size_t>(channels);
  QUINT_CHECK(q.w_scale.size() == 1 || q.w_scale.size() == n, "weight scale has ",
              q.w_scale.size(), " values for ", channels, " channels");
  QUINT_CHECK(q.bias.empty() || q.bias.size() == n, "bias has ", q.bias.size(),
              " values for ", channels, " channels");
  zp_ = q.y_zero_point;
  qmin_ = q.y_type == DType::Int8 ? -128 : 0;
  qmax_ = q.y_type == DType::Int8 ? 127 : 255;
  mult_.resize(n);
  int_bias_.assign(n, 0);
  acc_bias_.assign(n, 0.0f);

  bool have_float_bias = q.float_bias.size() == n;
  if ((scheme == Arith::OneDnn || scheme == Arith::Fbgemm || scheme == Arith::Qnnpack) &&
      !have_float_bias && !q.bias.empty()) {
    note_ = std::string("the model carries no float bias for ") + arith_name(scheme) +
            "; its int32 bias is used instead";
  }
  for (size_t c = 0; c < n; ++c) {
    const float ws = q.w_scale.size() == 1 ? q.w_scale[0] : q.w_scale[c];
    const int32_t ib = q.bias.empty() ? 0 : q.bias[c];
    switch (scheme) {
      case Arith::Onnx:
        mult_[c] = (q.x_scale * ws) / q.y_scale;
        int_bias_[c] = ib;
        break;
      case Arith::Qnnpack: {
        mult_[c] = (ws * q.x_scale) * (1.0f / q.y_scale);
        if (have_float_bias) {
          float inv = 1.0f / (q.x_scale * ws);
          float scaled = q.float_bias[c] * inv;
          QUINT_CHECK(std::fabs(scaled) < 2147483520.0f, "bias ", q.float_bias[c],
                      " does not fit int32 at scale ", q.x_scale * ws);
          int_bias_[c] = rne(scaled);
        } else {
          int_bias_[c] = ib;
        }
        break;
      }
      case Arith::OneDnn: {
        float rx = 1.0f / q.x_scale, rw = 1.0f / ws, ry = 1.0f / q.y_scale;
        float rxw = rx * rw;
        mult_[c] = ry / rxw;
        float_bias_in_acc_ = true;
        acc_bias_[c] = have_float_bias ? q.float_bias[c] * rxw : static_cast<float>(ib);
        break;
      }
      case Arith::Fbgemm: {
        float sxw = q.x_scale * ws;
        mult_[c] = sxw / q.y_scale;
        float_bias_in_acc_ = true;
        acc_bias_[c] = have_float_bias ? q.float_bias[c] / sxw : static_cast<float>(ib);
        break;
      }
    }
  }
}

float Requantizer::pre_round(int64_t c, int32_t acc) const {
  const size_t i = static_cast<size_t>(c);
  switch (scheme_) {
    case Arith::Onnx:
    case Arith::Qnnpack: {
      int32_t total = static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(int_bias_[i]));
      return static_cast<float>(total) * mult_[i];
    }
    case Arith::OneDnn:
      return (static_cast<float>(acc) + acc_bias_[i]) * mult_[i] + static_cast<float>(zp_);
    case Arith::Fbgemm:
      return (static_cast<float>(acc) + acc_bias_[i]) * mult_[i];
  }
  return 0;
}

int32_t Requantizer::apply(int64_t c, int32_t acc) const {
  float v = pre_round(c, acc);
  if (scheme_ == Arith::OneDnn) return round_clamped(v, static_cast<float>(qmin_), static_cast<float>(qmax_));
  return round_clamped(v, static_cast<float>(qmin_ - zp_), static_cast<float>(qmax_ - zp_)) + zp_;
}

std::vector<Step> Requantizer::explain(int64_t c, int32_t acc) const {
  const size_t i = static_cast<size_t>(c);
  const float ws = q_.w_scale.size() == 1 ? q_.w_scale[0] : q_.w_scale[i];
  std::vector<Step> s;
  auto add = [&](std::string label, std::string formula, std::string value) {
    s.push_back({std::move(label), std::move(formula), std::move(value)});
  };
  const float v = pre_round(c, acc);
  const int32_t y = apply(c, acc);
  add("accumulator", "Σ (x − x_zp)·(w − w_zp)", std::to_string(acc));
  switch (scheme_) {
    case Arith::Onnx:
    case Arith::Qnnpack: {
      if (scheme_ == Arith::Onnx) {
        add("bias", "int32 bias from the model", std::to_string(int_bias_[i]));
        add("multiplier", "fl32(fl32(x_s·w_s) / y_s) = fl32(" + fmt_float(q_.x_scale * ws) + " / " +
                              fmt_float(q_.y_scale) + ")", fmt_float(mult_[i]));
      } else {
        add("bias", q_.float_bias.empty() ? "int32 bias from the model"
                                          : "rne(b · fl32(1 / fl32(x_s·w_s))), b = " + fmt_float(q_.float_bias.empty() ? 0.f : q_.float_bias[i]),
            std::to_string(int_bias_[i]));
        add("multiplier", "fl32(fl32(w_s·x_s) · fl32(1 / y_s))", fmt_float(mult_[i]));
      }
      int32_t total = static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(int_bias_[i]));
      add("acc + bias", "int32", std::to_string(total));
      add("scaled", "fl32(fl32(acc + bias) · M)", fmt_float(v));
      add("rounded", "round half to even", std::to_string(static_cast<long long>(std::nearbyint(v))));
      add("+ zero point", "+ " + std::to_string(zp_), std::to_string(static_cast<long long>(std::nearbyint(v)) + zp_));
      break;
    }
    case Arith::OneDnn:
      add("bias", "float bias in accumulator units: fl32(b · fl32(1/x_s · 1/w_s))", fmt_float(acc_bias_[i]));
      add("multiplier", "fl32(fl32(1/y_s) / fl32(1/x_s · 1/w_s))", fmt_float(mult_[i]));
      add("scaled + zero point", "fl32(fl32(fl32(acc) + b_acc) · o) + y_zp", fmt_float(v));
      add("rounded", "round half to even after clamping", std::to_string(y));
      break;
    case Arith::Fbgemm:
      add("bias", "float bias in accumulator units: fl32(b / fl32(x_s·w_s))", fmt_float(acc_bias_[i]));
      add("multiplier", "fl32(fl32(x_s·w_s) / y_s)", fmt_float(mult_[i]));
      add("scaled", "fl32(fl32(fl32(acc) + b_acc) · M)", fmt_float(v));
      add("rounded", "lrintf (half to even)", rounded_str(std::nearbyint(v), 0));
      add("+ zero point", "+ " + std::to_string(zp_), rounded_str(std::nearbyint(v), zp_));
      break;
  }
  add("saturated", "clamp to [" + std::to_string(qmin_) + ", " + std::to_string(qmax_) + "]", std::to_string(y));
  return s;
}

AddRequant::AddRequant(float a_s, int32_t a_zp, float b_s, int32_t b_zp, float c_s, int32_t c_zp,
                       DType t) {
  ra = a_s / c_s;
  rb = b_s / c_s;
  k = static_cast<float>(c_zp) - std::fma(ra, static_cast<float>(a_zp), rb * static_cast<float>(b_zp));
  qmin = t == DType::Int8 ? -128 : 0;
  qmax = t == DType::Int8 ? 127 : 255;
}

bool onnx_add_a_is_span_scalar(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  // ONNX Runtime's InputBroadcaster walks the dimensions from the innermost, skipping those where
  // the output has extent 1; the first other one decides whether A advances within a span.
  const size_t rank = std::max(a.size(), b.size());
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (std::max(da, db) > 1) return da == 1;
  }
  return true;
}

// ---- PyTorch's other quantized operators ------------------------------------------------------

namespace {

int32_t type_min(DType t) { return t == DType::Int8 ? -128 : 0; }
int32_t type_max(DType t) { return t == DType::Int8 ? 127 : 255; }

std::string fmt_f(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string str(int64_t v) { return std::to_string(v); }

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

}  // namespace

InputQuantizer::InputQuantizer(Arith scheme, float scale, int32_t zero_point, DType t)
    : scheme_(scheme), scale_(scale), inv_(1.0f / scale), zp_(zero_point), qmin_(type_min(t)), qmax_(type_max(t)) {}

double InputQuantizer::pre_round(float x) const {
  if (scheme_ == Arith::Onnx) return static_cast<double>(x / scale_) + zp_;
  return static_cast<double>(x * inv_) + zp_;
}

double AddRequantizer::pre_round(int32_t a, int32_t b) const {
  switch (kernel_) {
    case Kernel::OnnxFma: {  // k holds C_zp
      const float s = static_cast<float>(swap_ ? b : a), q = static_cast<float>(swap_ ? a : b);
      return std::fma(s, onnx_.ra, std::fma(q, onnx_.rb, onnx_.k));
    }
    case Kernel::QnnpackFixed: {
      const int32_t acc = zpp_ + a * ma_ + b * mb_;
      return std::ldexp(static_cast<double>(acc), -shift_) + c_zp_;
    }
    case Kernel::AtenFloat: {
      const float c = std::fma(static_cast<float>(a), sa_, pa_) + std::fma(static_cast<float>(b), sb_, pb_);
      return static_cast<double>(c * inv_) + c_zp_;
    }
  }
  return 0;
}

double AvgPoolRequantizer::pre_round(int64_t raw_sum) const {
  const int32_t acc = static_cast<int32_t>(raw_sum - static_cast<int64_t>(x_zp_) * n_);
  switch (kind_) {
    case Kind::ScaleAcc:
    case Kind::AtenChannelsLast:
      return static_cast<double>(static_cast<float>(acc) * mult_) + y_zp_;
    case Kind::AtenContiguous:
      return static_cast<double>(static_cast<float>(raw_sum) * mult_);
  }
  return 0;
}

std::vector<Step> InputQuantizer::explain(float x) const {
  std::vector<Step> s;
  const int32_t y = apply(x);
  s.push_back({"input", "x (float32)", fmt_f(x)});
  if (scheme_ == Arith::Onnx) {
    s.push_back({"scaled", "fl32(x / s), s = " + fmt_f(scale_), fmt_f(x / scale_)});
    s.push_back({"rounded + zero point", "rne(·) + " + str(zp_), rounded_str(std::nearbyint(x / scale_), zp_)});
  } else {
    s.push_back({"reciprocal", "fl32(1 / s), s = " + fmt_f(scale_), fmt_f(inv_)});
    s.push_back({"scaled", "fl32(x · fl32(1/s))  (a multiplication, not ONNX's division)", fmt_f(x * inv_)});
    const float t = static_cast<float>(zp_) + std::nearbyint(x * inv_);
    s.push_back({"rounded + zero point", "fl32(" + str(zp_) + " + rne(·)); int64() of NaN/inf/≥2^63 is INT64_MIN → qmin", fmt_f(t)});
  }
  s.push_back({"saturated", "clamp to [" + str(qmin_) + ", " + str(qmax_) + "]", str(y)});
  return s;
}

AddRequantizer::AddRequantizer(Arith scheme, float a_s, int32_t a_zp, float b_s, int32_t b_zp, float c_s,
                               int32_t c_zp, DType t, bool same_shape, bool a_is_span_scalar)
    : scheme_(scheme), onnx_(a_s, a_zp, b_s, b_zp, c_s, c_zp, t), a_s_(a_s), b_s_(b_s), a_zp_(a_zp),
      b_zp_(b_zp), c_zp_(c_zp), qmin_(type_min(t)), qmax_(type_max(t)) {
  if (scheme == Arith::Onnx) {
    kernel_ = Kernel::OnnxFma;
    swap_ = a_is_span_scalar;
    if (swap_) onnx_ = AddRequant(b_s, b_zp, a_s, a_zp, c_s, c_zp, t);
  } else if (scheme == Arith::Qnnpack && t == DType::UInt8 && same_shape) {
    kernel_ = Kernel::QnnpackFixed;
    ra_ = a_s / c_s;
    rb_ = b_s / c_s;
    for (float r : {ra_, rb_})
      QUINT_CHECK(r >= 0x1.0p-14f && r < 0x1.0p+8f, "PyTorch's QNNPACK add refuses this operator: the scale ratio ",
                  r, " (input scale / output scale) must lie in [2^-14, 2^8)");
    const float mx = ra_ > rb_ ? ra_ : rb_;
    const int32_t e = static_cast<int32_t>(float_bits(mx) >> 23) - 127;
    shift_ = 21 - e;  // 14 .. 35
    const float two_shift = std::ldexp(1.0f, shift_);
    ma_ = static_cast<int32_t>(std::nearbyint(ra_ * two_shift));  // exact product, rounded half to even (lrintf)
    mb_ = static_cast<int32_t>(std::nearbyint(rb_ * two_shift));
    zpp_ = -(ma_ * a_zp + mb_ * b_zp);
    // A uint32 shifted by 32 or more: x86 takes the count mod 32.
    mask_ = static_cast<int32_t>((uint32_t{1} << (static_cast<uint32_t>(shift_) & 31u)) - 1u);
  } else {
    kernel_ = Kernel::AtenFloat;
    sa_ = a_s;
    sb_ = b_s;
    pa_ = a_s * -static_cast<float>(a_zp);
    pb_ = b_s * -static_cast<float>(b_zp);
    inv_ = 1.0f / c_s;
  }
}

int32_t AddRequantizer::apply_tail(int32_t a, int32_t b) const {
  if (kernel_ != Kernel::AtenFloat) return apply(a, b);
  const float da = static_cast<float>(a - a_zp_) * a_s_;
  const float db = static_cast<float>(b - b_zp_) * b_s_;
  const float t = static_cast<float>(c_zp_) + std::nearbyint((da + db) * inv_);
  if (!(t < 9223372036854775808.0f)) return qmin_;
  return static_cast<int32_t>(std::fmin(std::fmax(t, static_cast<float>(qmin_)), static_cast<float>(qmax_)));
}

std::vector<Step> AddRequantizer::explain(int32_t a, int32_t b) const {
  std::vector<Step> s;
  const int32_t y = apply(a, b);
  s.push_back({"inputs", "A, B", str(a) + ", " + str(b)});
  switch (kernel_) {
    case Kernel::OnnxFma: {
      // ONNX Runtime streams S and folds Q into the constant: (S, Q) = (B, A) when A is the
      // scalar of its broadcast spans, else (A, B).
      const char* sq = swap_ ? "S = B, Q = A (A is the scalar of each broadcast span)" : "S = A, Q = B";
      s.push_back({"roles", "the input MLAS streams (S) and the other (Q)", sq});
      s.push_back({"ratios", "rS = fl32(S_s/C_s), rQ = fl32(Q_s/C_s)", fmt_f(onnx_.ra) + ", " + fmt_f(onnx_.rb)});
      s.push_back({"constant", "k = fl32(C_zp − fma(rS, S_zp, fl32(rQ·Q_zp)))", fmt_f(onnx_.k)});
      const float v = static_cast<float>(pre_round(a, b));
      s.push_back({"sum", "fma(S, rS, fma(Q, rQ, k))  (zero point included)", fmt_f(v)});
      s.push_back({"rounded", "cvtps2dq (rne; INT32_MIN beyond int32), saturated to [" + str(qmin_) + ", " +
                                  str(qmax_) + "]",
                   str(y)});
      break;
    }
    case Kernel::QnnpackFixed: {
      s.push_back({"ratios", "rA = fl32(A_s/C_s), rB = fl32(B_s/C_s)", fmt_f(ra_) + ", " + fmt_f(rb_)});
      s.push_back({"shift", "21 − exponent(max(rA, rB))", str(shift_)});
      s.push_back({"multipliers", "mA = rne(rA·2^shift), mB = rne(rB·2^shift)", str(ma_) + ", " + str(mb_)});
      const int32_t acc = zpp_ + a * ma_ + b * mb_;
      s.push_back({"accumulator", "A·mA + B·mB − (mA·A_zp + mB·B_zp)  (int32, zero-point product " + str(zpp_) + ")",
                   str(acc)});
      const int32_t rem = (acc & mask_) - (acc < 0 ? 1 : 0);
      const int32_t q = (acc >> (shift_ < 31 ? shift_ : 31)) + (rem > (mask_ >> 1) ? 1 : 0);
      s.push_back({"shifted", "acc / 2^shift rounded half away from zero (QNNPACK remainder test)", str(q)});
      s.push_back({"+ zero point", "+ " + str(c_zp_), str(static_cast<int64_t>(q) + c_zp_)});
      s.push_back({"saturated", "clamp to [" + str(qmin_) + ", " + str(qmax_) + "]", str(y)});
      break;
    }
    case Kernel::AtenFloat: {
      const float da = std::fma(static_cast<float>(a), sa_, pa_), db = std::fma(static_cast<float>(b), sb_, pb_);
      s.push_back({"dequantized A", "fma(A, A_s, fl32(A_s·−A_zp)), A_s = " + fmt_f(sa_), fmt_f(da)});
      s.push_back({"dequantized B", "fma(B, B_s, fl32(B_s·−B_zp)), B_s = " + fmt_f(sb_), fmt_f(db)});
      s.push_back({"sum", "fl32(dA + dB)  (add_relu: max(·, 0))", fmt_f(da + db)});
      s.push_back({"scaled", "fl32(sum · fl32(1/C_s)), 1/C_s = " + fmt_f(inv_), fmt_f((da + db) * inv_)});
      s.push_back({"rounded + zero point", "cvtps2dq (half to even) + " + str(c_zp_) + ", saturated to [" + str(qmin_) +
                                               ", " + str(qmax_) + "]",
                   str(y)});
      break;
    }
  }
  return s;
}

AvgPoolRequantizer::AvgPoolRequantizer(Arith scheme, float x_s, int32_t x_zp, float y_s, int32_t y_zp,
                                       const std::vector<int64_t>& window, DType t, TorchLayout layout)
    : scheme_(scheme), x_zp_(x_zp), y_zp_(y_zp), qmin_(type_min(t)), qmax_(type_max(t)) {
  n_ = 1;
  for (int64_t d : window) n_ *= d;  // 0 for an empty window: the onnx formula then divides by 0 as ORT does
  const bool qnnpack_kernel = scheme == Arith::Qnnpack && t == DType::UInt8 && n_ > 1;
  if (scheme == Arith::Onnx || qnnpack_kernel) {
    if (qnnpack_kernel) {
      const float r = x_s / y_s;
      QUINT_CHECK(r >= 0x1.0p-8f && r < 0x1.0p+8f, "PyTorch's QNNPACK average pooling refuses this operator: the scale ratio ",
                  r, " (input scale / output scale) must lie in [2^-8, 2^8)");
    }
    kind_ = Kind::ScaleAcc;
    mult_ = x_s / (y_s * static_cast<float>(n_));
  } else if (layout == TorchLayout::ChannelsLast) {
    kind_ = Kind::AtenChannelsLast;
    m_ = (x_s / y_s) / static_cast<float>(n_);
    mult_ = 1.0f / (1.0f / m_);
  } else {
    QUINT_CHECK(x_s == y_s && x_zp == y_zp, "PyTorch's contiguous adaptive average pool keeps the input's scale and zero point");
    kind_ = Kind::AtenContiguous;
    float r = 1.0f;
    for (size_t i = 0; i < window.size(); ++i) {
      if (i == 0 && window.size() == 3)
        r = static_cast<float>(1.0 / static_cast<double>(window[0]));
      else
        r = r / static_cast<float>(window[i]);
    }
    mult_ = r;
  }
}

std::vector<Step> AvgPoolRequantizer::explain(int64_t raw_sum) const {
  std::vector<Step> s;
  const int32_t y = apply(raw_sum);
  const int32_t acc = static_cast<int32_t>(raw_sum - static_cast<int64_t>(x_zp_) * n_);
  s.push_back({"sum", "S = Σ x over " + str(n_) + " positions", str(raw_sum)});
  switch (kind_) {
    case Kind::ScaleAcc:
      s.push_back({"accumulator", "acc = S − x_zp·N", str(acc)});
      s.push_back({"scale", "fl32(x_s / fl32(y_s · N))", fmt_f(mult_)});
      s.push_back({"scaled", "fl32(fl32(acc) · scale)", fmt_f(static_cast<float>(acc) * mult_)});
      s.push_back({"rounded + zero point", "rne(·) + " + str(y_zp_) + ", saturated", str(y)});
      break;
    case Kind::AtenChannelsLast:
      s.push_back({"accumulator", "acc = S − x_zp·N", str(acc)});
      s.push_back({"multiplier", "m = fl32(fl32(x_s / y_s) / N)", fmt_f(m_)});
      s.push_back({"scale", "fl32(1 / fl32(1 / m))  (ATen quantizes with scale 1/m)", fmt_f(mult_)});
      s.push_back({"scaled", "fl32(fl32(acc) · scale)", fmt_f(static_cast<float>(acc) * mult_)});
      s.push_back({"rounded + zero point", "fl32(" + str(y_zp_) + " + rne(·)), saturated", str(y)});
      break;
    case Kind::AtenContiguous:
      s.push_back({"reciprocal", "fl32(fl32(1/d0) / d1 …)  (per spatial dim)", fmt_f(mult_)});
      s.push_back({"scaled", "fl32(fl32(S) · reciprocal)  (raw values: no zero point)", fmt_f(static_cast<float>(raw_sum) * mult_)});
      s.push_back({"rounded", "rne", str(y)});
      break;
  }
  return s;
}

}  // namespace quint::ops::arith
