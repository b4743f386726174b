// QuantizeLinear, DequantizeLinear (per tensor and per axis) and DynamicQuantizeLinear.
//   QuantizeLinear:   y = sat(rne(fl32(x / scale)) + zp)      (a division, as ONNX Runtime does)
//                     PyTorch's arithmetics multiply by fl32(1/scale) instead: arith::InputQuantizer
//   DequantizeLinear: y = fl32(fl32(x − zp) · scale)
// Scales and zero points may be computed at run time (DynamicQuantizeLinear feeds them), so
// kernels read them from their inputs; constant ones are validated at load.
#include <cmath>
#include <memory>

#include "arith/requant.h"
#include "common.h"
#include "explain_qops.h"
#include "register.h"
#include "x86/quantize.h"

namespace quint::ops {

namespace {

// The blocks of a per-axis parameter: element i uses parameter (i / inner) % channels.
struct AxisLayout {
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t axis = -1;  // the quantization axis when per-axis
};

AxisLayout axis_layout(const BuildContext& ctx, const Shape& x, size_t scale_idx, size_t zp_idx) {
  const ValueInfo& s = ctx.input(scale_idx);
  AxisLayout l;
  l.inner = shape_numel(x);
  if (s.shape.empty() || (s.shape.size() == 1 && s.shape[0] == 1)) return l;
  if (s.shape.size() != 1) fail("scale must be a scalar or 1-D, has shape ", shape_str(s.shape));
  if (ctx.node().opset < 13) fail("per-axis scales need opset 13 or later");
  int64_t axis = normalize_axis(ctx.attrs().get_int("axis", 1), static_cast<int64_t>(x.size()));
  if (s.shape[0] != x[axis])
    fail("per-axis scale has ", s.shape[0], " values but axis ", axis, " of the input has ", x[axis]);
  if (ctx.has_input(zp_idx) && ctx.input(zp_idx).shape != s.shape)
    fail("zero point shape ", shape_str(ctx.input(zp_idx).shape), " differs from scale shape ",
         shape_str(s.shape));
  l.axis = axis;
  l.outer = 1;
  for (int64_t i = 0; i < axis; ++i) l.outer *= x[i];
  l.channels = x[axis];
  l.inner = 1;
  for (size_t i = static_cast<size_t>(axis) + 1; i < x.size(); ++i) l.inner *= x[i];
  return l;
}

void check_scalar_or_axis(const BuildContext& ctx, size_t scale_idx, size_t zp_idx) {
  const ValueInfo& s = ctx.input(scale_idx);
  if (s.dtype != DType::Float32) fail("scale must be float32, got ", dtype_name(s.dtype));
  if (s.constant)
    for (float v : s.constant->values<float>())
      if (!std::isfinite(v) || v <= 0) fail("scale must be finite and > 0, got ", v);
  if (ctx.has_input(zp_idx) && ctx.input(zp_idx).shape.size() > 1)
    fail("zero point must be a scalar or 1-D");
}

QuantParams constant_quant(const BuildContext& ctx, size_t scale_idx, size_t zp_idx, int64_t axis) {
  QuantParams q;
  const ValueInfo& s = ctx.input(scale_idx);
  if (!s.constant || (ctx.has_input(zp_idx) && !ctx.input(zp_idx).constant)) return q;
  for (float v : s.constant->values<float>()) q.scale.push_back(v);
  if (ctx.has_input(zp_idx)) {
    const Tensor& z = *ctx.input(zp_idx).constant;
    for (int64_t i = 0; i < z.numel(); ++i) q.zero_point.push_back(static_cast<int32_t>(z.as_int64(i)));
  } else {
    q.zero_point.assign(q.scale.size(), 0);
  }
  if (q.scale.size() > 1) q.axis = static_cast<int>(axis);
  return q;
}

// ONNX Runtime's QuantizeLinear over a contiguous run, written so the compiler vectorizes it:
// v = fl32(x / s), clamped into [qmin − zp, qmax − zp] (a NaN fails both comparisons and lands
// on qmin − zp: ONNX Runtime gives NaN the type's minimum), then rounded half to even by adding
// and subtracting 1.5·2^23 — exact for |v| < 2^22 under the default rounding mode.
template <class Y>
void quantize_onnx_run(const float* x, Y* y, int64_t n, float s, int32_t zp, int32_t qlo, int32_t qhi) {
  const float lo = static_cast<float>(qlo - zp), hi = static_cast<float>(qhi - zp);
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / s;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    const float r = (v + kMagic) - kMagic;
    y[i] = static_cast<Y>(static_cast<int32_t>(r) + zp);
  }
}

class QuantizeKernel final : public Kernel {
 public:
  QuantizeKernel(AxisLayout l, DType x_type, DType y_type, Arith arith, x86::QuantizeKernel fast)
      : l_(l), x_type_(x_type), y_type_(y_type), arith_(arith), fast_(fast) {}
  void run(const RunContext& ctx) const override {
    const float* scale = ctx.in(1).data<float>();
    const Tensor* zpt = ctx.has_in(2) ? &ctx.in(2) : nullptr;
    visit_quant8(y_type_, [&](auto yt) {
      using Y = decltype(yt);
      Y* y = ctx.out(0).data<Y>();
      const Y* zp = zpt ? zpt->data<Y>() : nullptr;
      const int64_t block = l_.channels * l_.inner;
      ctx.parallel->parallel_for(l_.outer * l_.channels, 16, [&](int64_t b, int64_t e) {
        for (int64_t oc = b; oc < e; ++oc) {
          const int64_t c = oc % l_.channels;
          const int32_t z = zp ? static_cast<int32_t>(zp[c]) : 0;
          const arith::InputQuantizer q(arith_, scale[c], z, y_type_);
          const int64_t base = (oc / l_.channels) * block + c * l_.inner;
          if (x_type_ == DType::Float32 && arith_ == Arith::Onnx && fast_) {
            x86::QuantizeArgs a;
            a.x = ctx.in(0).data<float>() + base;
            a.y = reinterpret_cast<uint8_t*>(y + base);
            a.n = l_.inner;
            a.scale = scale[c];
            a.zp = z;
            a.qmin = qmin(y_type_);
            a.qmax = qmax(y_type_);
            fast_(a);
          } else if (x_type_ == DType::Float32 && arith_ == Arith::Onnx) {
            quantize_onnx_run<Y>(ctx.in(0).data<float>() + base, y + base, l_.inner, scale[c], z, qmin(y_type_),
                                 qmax(y_type_));
          } else if (x_type_ == DType::Float32) {
            const float* x = ctx.in(0).data<float>() + base;
            for (int64_t i = 0; i < l_.inner; ++i) y[base + i] = static_cast<Y>(q.apply(x[i]));
          } else {
            const int32_t* x = ctx.in(0).data<int32_t>() + base;
            for (int64_t i = 0; i < l_.inner; ++i) y[base + i] = static_cast<Y>(q.apply(static_cast<float>(x[i])));
          }
        }
      });
      return 0;
    });
  }

 private:
  AxisLayout l_;
  DType x_type_, y_type_;
  Arith arith_;
  x86::QuantizeKernel fast_;  // nullptr: the portable loop
};

std::unique_ptr<Kernel> build_quantize(BuildContext& ctx) {
  ctx.expect_inputs(2, 3);
  ctx.expect_dtype(0, {DType::Float32, DType::Int32}, "x");
  check_scalar_or_axis(ctx, 1, 2);
  DType y_type = DType::UInt8;
  if (ctx.has_input(2)) {
    ctx.expect_dtype(2, {DType::UInt8, DType::Int8}, "y_zero_point");
    y_type = ctx.input(2).dtype;
  }
  const Shape& x = ctx.input(0).shape;
  AxisLayout l = axis_layout(ctx, x, 1, 2);
  ctx.set_output(0, y_type, x, constant_quant(ctx, 1, 2, l.axis));
  return std::make_unique<QuantizeKernel>(l, ctx.input(0).dtype, y_type, ctx.options().arith,
                                          x86::quantize_kernel(x86::resolve_isa(ctx.options().isa)));
}

class DequantizeKernel final : public Kernel {
 public:
  DequantizeKernel(AxisLayout l, DType x_type) : l_(l), x_type_(x_type) {}
  void run(const RunContext& ctx) const override {
    const float* scale = ctx.in(1).data<float>();
    const Tensor* zpt = ctx.has_in(2) ? &ctx.in(2) : nullptr;
    float* y = ctx.out(0).data<float>();
    auto go = [&](auto xt) {
      using X = decltype(xt);
      const X* x = ctx.in(0).data<X>();
      const X* zp = zpt ? zpt->data<X>() : nullptr;
      const int64_t block = l_.channels * l_.inner;
      ctx.parallel->parallel_for(l_.outer * l_.channels, 16, [&](int64_t b, int64_t e) {
        for (int64_t oc = b; oc < e; ++oc) {
          const int64_t c = oc % l_.channels;
          const float s = scale[c];
          const int64_t z = zp ? static_cast<int64_t>(zp[c]) : 0;
          const int64_t base = (oc / l_.channels) * block + c * l_.inner;
          for (int64_t i = 0; i < l_.inner; ++i)
            y[base + i] = static_cast<float>(static_cast<int64_t>(x[base + i]) - z) * s;
        }
      });
    };
    if (x_type_ == DType::UInt8) go(uint8_t{});
    else if (x_type_ == DType::Int8) go(int8_t{});
    else go(int32_t{});
  }

 private:
  AxisLayout l_;
  DType x_type_;
};

std::unique_ptr<Kernel> build_dequantize(BuildContext& ctx) {
  ctx.expect_inputs(2, 3);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8, DType::Int32}, "x");
  check_scalar_or_axis(ctx, 1, 2);
  if (ctx.has_input(2) && ctx.input(2).dtype != ctx.input(0).dtype)
    fail("x_zero_point must have the type of x (", dtype_name(ctx.input(0).dtype), "), got ",
         dtype_name(ctx.input(2).dtype));
  const Shape& x = ctx.input(0).shape;
  AxisLayout l = axis_layout(ctx, x, 1, 2);
  ctx.set_output(0, DType::Float32, x);
  return std::make_unique<DequantizeKernel>(l, ctx.input(0).dtype);
}

// DynamicQuantizeLinear (opset 11): uint8 with scale and zero point from the data's range:
//   lo = min(0, min(x)), hi = max(0, max(x)), scale = fl32(fl32(hi − lo) / 255)
//   zp = sat(rne(fl32(0 − fl32(lo / scale)))), y = sat(rne(fl32(x / scale)) + zp)
// An all-zero input has no range: ONNX Runtime then uses scale 1 (the spec's formula would
// divide by 0), so zp = 0 and y = 0.
class DynamicQuantizeKernel final : public Kernel {
 public:
  void run(const RunContext& ctx) const override {
    const Tensor& xt = ctx.in(0);
    const float* x = xt.data<float>();
    const int64_t n = xt.numel();
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::fmin(lo, x[i]);
      hi = std::fmax(hi, x[i]);
    }
    const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    const int32_t zp = arith::quantize_value(0.0f - lo / scale, 1.0f, 0, 0, 255);
    // Outputs named "" (absent) are not written.
    if (ctx.outputs[1]) ctx.out(1).data<float>()[0] = scale;
    if (ctx.outputs[2]) ctx.out(2).data<uint8_t>()[0] = static_cast<uint8_t>(zp);
    uint8_t* y = ctx.out(0).data<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<uint8_t>(arith::quantize_value(x[i], scale, zp, 0, 255));
  }
};

std::unique_ptr<Kernel> build_dynamic_quantize(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_dtype(0, {DType::Float32}, "x");
  // All three outputs are required (a fuzz finding: with two, the kernel wrote past the list).
  if (ctx.num_outputs() != 3)
    fail("DynamicQuantizeLinear has 3 outputs (y, y_scale, y_zero_point), the node has ", ctx.num_outputs());
  ctx.set_output(0, DType::UInt8, ctx.input(0).shape);
  ctx.set_output(1, DType::Float32, {});
  ctx.set_output(2, DType::UInt8, {});
  return std::make_unique<DynamicQuantizeKernel>();
}

}  // namespace

void register_quantize(Registry& r) {
  OpDef q{"ai.onnx", "QuantizeLinear", 10, 18, build_quantize};
  q.explain = explain_quantize_linear;
  q.elementwise = true;  // (per-axis parameters have more than one element: never in NHWC)
  r.add(q);
  r.add(elementwise_op({"ai.onnx", "DequantizeLinear", 10, 18, build_dequantize}));
  r.add({"ai.onnx", "DynamicQuantizeLinear", 11, 1000, build_dynamic_quantize});
}

}  // namespace quint::ops
