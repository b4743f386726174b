// Conv (float32, ai.onnx 1+) and ConvInteger (ai.onnx 10+).
//   Conv:        y[n][m][o] = B[m] + Σ_{c in group(m)} Σ_k x[n][c][o·s − p + k·d] · w[m][c][k]
//   ConvInteger: y[n][m][o] = Σ_{c in group(m)} Σ_k (x[n][c][o·s − p + k·d] − x_zp) · (w[m][c][k] − w_zp[m])
// over input positions inside the image: padding contributes nothing (for ConvInteger, pads
// hold x_zp). Geometry (pads, auto_pad, strides, dilations, groups) comes from conv_common.h.
//
// The float Conv lowers each (image, group) to one matrix product (sgemm.h):
//   Y_g[M/g × out] = W_g[M/g × (C/g·k)] · col[(C/g·k) × out]
// where col is the im2col expansion of the group's input (skipped for 1×1 convolutions with unit
// strides and no padding, whose input already is that matrix). Depthwise-like convolutions
// (one output channel per group) use the direct loop of ref/conv.h instead, which needs no
// expansion. ConvInteger runs that reference loop in wrapping int32 (see ref/conv.h for the
// overflow bound).
#include "ref/conv.h"

#include <algorithm>
#include <memory>

#include "conv_common.h"
#include "register.h"
#include "sgemm.h"

namespace quint::ops {

namespace {

// The im2col matrix of one group: row (c, kd, kh, kw), column o = output position; zeros where
// the window reads padding.
void im2col(const float* x, const WindowGeometry& g, int64_t cpg, float* col, Parallel* parallel) {
  const int64_t ks = g.kernel_size(), out_size = g.out_size();
  const int64_t in_hw = g.in[1] * g.in[2];
  parallel->parallel_for(cpg * ks, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t c = row / ks, kk = row % ks;
      const int64_t kd = kk / (g.kernel[1] * g.kernel[2]);
      const int64_t kh = (kk / g.kernel[2]) % g.kernel[1];
      const int64_t kw = kk % g.kernel[2];
      float* dst = col + row * out_size;
      std::fill(dst, dst + out_size, 0.0f);
      const float* xc = x + c * g.in_size();
      int64_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
      ref::valid_range(g.in[0], g.out[0], g.stride[0], g.pad_begin[0], kd * g.dilation[0], &d_lo, &d_hi);
      ref::valid_range(g.in[1], g.out[1], g.stride[1], g.pad_begin[1], kh * g.dilation[1], &h_lo, &h_hi);
      ref::valid_range(g.in[2], g.out[2], g.stride[2], g.pad_begin[2], kw * g.dilation[2], &w_lo, &w_hi);
      for (int64_t od = d_lo; od < d_hi; ++od) {
        const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
        for (int64_t oh = h_lo; oh < h_hi; ++oh) {
          const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
          const float* src = xc + id * in_hw + ih * g.in[2] - g.pad_begin[2] + kw * g.dilation[2];
          float* drow = dst + (od * g.out[1] + oh) * g.out[2];
          if (g.stride[2] == 1) {
            std::copy(src + w_lo, src + w_hi, drow + w_lo);
          } else {
            for (int64_t ow = w_lo; ow < w_hi; ++ow) drow[ow] = src[ow * g.stride[2]];
          }
        }
      }
    }
  });
}

bool is_pointwise(const WindowGeometry& g) {
  for (int i = 0; i < 3; ++i)
    if (g.kernel[i] != 1 || g.stride[i] != 1 || g.pad_begin[i] != 0 || g.pad_end[i] != 0) return false;
  return true;
}

class ConvFloat final : public Kernel {
 public:
  ConvFloat(ConvShape s, bool has_bias)
      : s_(std::move(s)),
        has_bias_(has_bias),
        pointwise_(is_pointwise(s_.geom)),
        direct_(s_.m_per_group() == 1 && s_.group > 1) {}

  int64_t macs() const override { return s_.macs(); }
  size_t scratch_bytes() const override {
    if (pointwise_ || direct_) return 0;
    return static_cast<size_t>(s_.c_per_group() * s_.geom.kernel_size() * s_.geom.out_size()) * sizeof(float);
  }

  void run(const RunContext& ctx) const override {
    const WindowGeometry& g = s_.geom;
    const float* x = ctx.in(0).data<float>();
    const float* w = ctx.in(1).data<float>();
    const float* bias = has_bias_ ? ctx.in(2).data<float>() : nullptr;
    float* y = ctx.out(0).data<float>();
    const int64_t cpg = s_.c_per_group(), mpg = s_.m_per_group();
    const int64_t K = cpg * g.kernel_size(), out_size = g.out_size();

    if (direct_) {
      ctx.parallel->parallel_for(s_.batch * s_.out_channels, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t n = t / s_.out_channels, m = t % s_.out_channels;
          const float* xg = x + (n * s_.in_channels + (m / mpg) * cpg) * g.in_size();
          float* ym = y + t * out_size;
          ref::conv_channel<float>(xg, 0.0f, w + m * K, 0.0f, g, cpg, ym);
          if (bias)
            for (int64_t i = 0; i < out_size; ++i) ym[i] += bias[m];
        }
      });
      return;
    }

    float* col = static_cast<float*>(ctx.scratch);
    for (int64_t n = 0; n < s_.batch; ++n) {
      for (int64_t grp = 0; grp < s_.group; ++grp) {
        const float* xg = x + (n * s_.in_channels + grp * cpg) * g.in_size();
        float* yg = y + (n * s_.out_channels + grp * mpg) * out_size;
        if (bias)
          for (int64_t m = 0; m < mpg; ++m)
            std::fill(yg + m * out_size, yg + (m + 1) * out_size, bias[grp * mpg + m]);
        const float* bmat = xg;
        if (!pointwise_) {
          im2col(xg, g, cpg, col, ctx.parallel);
          bmat = col;
        }
        sgemm(mpg, out_size, K, {w + grp * mpg * K, K, 1}, {bmat, out_size, 1}, yg, out_size, bias != nullptr,
              ctx.parallel);
      }
    }
  }

 private:
  ConvShape s_;
  bool has_bias_, pointwise_, direct_;
};

std::unique_ptr<Kernel> build_conv(BuildContext& ctx) {
  ctx.expect_inputs(2, 3);
  ctx.expect_dtype(0, {DType::Float32}, "X");
  ctx.expect_dtype(1, {DType::Float32}, "W");
  ConvShape s = conv_shape(ctx, ctx.input(0).shape, ctx.input(1).shape);
  const bool has_bias = ctx.has_input(2);
  if (has_bias) {
    ctx.expect_dtype(2, {DType::Float32}, "B");
    const Shape& b = ctx.input(2).shape;
    if (b.size() != 1 || b[0] != s.out_channels)
      fail("B must have shape [", s.out_channels, "], has ", shape_str(b));
  }
  ctx.set_output(0, DType::Float32, s.out_shape);
  return std::make_unique<ConvFloat>(std::move(s), has_bias);
}

// ---------------------------------------------------------------------------------------------

class ConvIntegerRef final : public Kernel {
 public:
  ConvIntegerRef(ConvShape s, DType x_type, DType w_type, bool per_channel_wzp)
      : s_(std::move(s)), x_type_(x_type), w_type_(w_type), per_channel_wzp_(per_channel_wzp) {}
  int64_t macs() const override { return s_.macs(); }

  void run(const RunContext& ctx) const override {
    visit_quant8(x_type_, [&](auto xt) {
      visit_quant8(w_type_, [&](auto wt) {
        compute<decltype(xt), decltype(wt)>(ctx);
        return 0;
      });
      return 0;
    });
  }

 private:
  template <class X, class W>
  void compute(const RunContext& ctx) const {
    const WindowGeometry& g = s_.geom;
    const X* x = ctx.in(0).template data<X>();
    const W* w = ctx.in(1).template data<W>();
    // Zero points may be run-time values; their shapes and types were checked at load.
    const int32_t x_zp = ctx.has_in(2) ? static_cast<int32_t>(ctx.in(2).template data<X>()[0]) : 0;
    const W* w_zp = ctx.has_in(3) ? ctx.in(3).template data<W>() : nullptr;
    int32_t* y = ctx.out(0).data<int32_t>();
    const int64_t cpg = s_.c_per_group(), mpg = s_.m_per_group();
    const int64_t w_per_m = cpg * g.kernel_size(), out_size = g.out_size();
    ctx.parallel->parallel_for(s_.batch * s_.out_channels, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / s_.out_channels, m = t % s_.out_channels;
        const X* xg = x + (n * s_.in_channels + (m / mpg) * cpg) * g.in_size();
        const int32_t wz = w_zp ? static_cast<int32_t>(w_zp[per_channel_wzp_ ? m : 0]) : 0;
        ref::conv_channel<int32_t>(xg, x_zp, w + m * w_per_m, wz, g, cpg, y + t * out_size);
      }
    });
  }

  ConvShape s_;
  DType x_type_, w_type_;
  bool per_channel_wzp_;
};

std::unique_ptr<Kernel> build_conv_integer(BuildContext& ctx) {
  ctx.expect_inputs(2, 4);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "x");
  ctx.expect_dtype(1, {DType::UInt8, DType::Int8}, "w");
  const DType x_type = ctx.input(0).dtype, w_type = ctx.input(1).dtype;
  ConvShape s = conv_shape(ctx, ctx.input(0).shape, ctx.input(1).shape);
  if (ctx.has_input(2)) {
    const ValueInfo& z = ctx.input(2);
    if (z.dtype != x_type)
      fail("x_zero_point must have x's type ", dtype_name(x_type), ", got ", dtype_name(z.dtype));
    if (z.shape.size() > 1 || shape_numel(z.shape) != 1)
      fail("x_zero_point must be a scalar, has shape ", shape_str(z.shape));
  }
  bool per_channel = false;
  if (ctx.has_input(3)) {
    const ValueInfo& z = ctx.input(3);
    if (z.dtype != w_type)
      fail("w_zero_point must have w's type ", dtype_name(w_type), ", got ", dtype_name(z.dtype));
    const int64_t n = shape_numel(z.shape);
    if (z.shape.size() > 1 || (n != 1 && n != s.out_channels))
      fail("w_zero_point must be a scalar or have ", s.out_channels,
           " elements (one per output channel), has shape ", shape_str(z.shape));
    per_channel = n != 1;
  }
  ctx.set_output(0, DType::Int32, s.out_shape);
  return std::make_unique<ConvIntegerRef>(std::move(s), x_type, w_type, per_channel);
}

}  // namespace

void register_conv(Registry& r) {
  r.add({"ai.onnx", "Conv", 1, 1000, build_conv});
  r.add({"ai.onnx", "ConvInteger", 10, 1000, build_conv_integer});
}

}  // namespace quint::ops
