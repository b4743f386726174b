// QLinearConv (ai.onnx, opset 10+): integer convolution with requantized 8-bit output.
//   y = requantize(Σ (x − x_zp)(w − w_zp[m]) + bias[m])  — see arith/requant.h for the schemes.
#include <array>
#include <cmath>
#include <memory>

#include "explain_util.h"
#include "qlinear_conv.h"
#include "ref/conv.h"
#include "register.h"
#include "x86/cpu.h"

namespace quint::ops {

namespace {

class QLinearConvRef final : public Kernel {
 public:
  explicit QLinearConvRef(QConvParams p) : p_(std::move(p)) {}

  int64_t macs() const override { return p_.shape.macs(); }

  void run(const RunContext& ctx) const override {
    visit_quant8(p_.x_type, [&](auto xt) {
      visit_quant8(p_.w_type, [&](auto wt) {
        visit_quant8(p_.requant.qmin() < 0 ? DType::Int8 : DType::UInt8, [&](auto yt) {
          compute<decltype(xt), decltype(wt), decltype(yt)>(ctx);
          return 0;
        });
        return 0;
      });
      return 0;
    });
  }

 private:
  template <class X, class W, class Y>
  void compute(const RunContext& ctx) const {
    const ConvShape& s = p_.shape;
    const WindowGeometry& g = s.geom;
    const X* x = ctx.in(0).template data<X>();
    const W* w = p_.weights.template data<W>();
    Y* y = ctx.out(0).template data<Y>();
    const int64_t cpg = s.c_per_group(), mpg = s.m_per_group();
    const int64_t w_per_m = cpg * g.kernel_size();
    const int64_t out_size = g.out_size();
    ctx.parallel->parallel_for(s.batch * s.out_channels, 1, [&](int64_t begin, int64_t end) {
      // One accumulator plane per thread, kept between runs.
      static thread_local std::vector<int32_t> acc;
      if (acc.size() < static_cast<size_t>(out_size)) acc.resize(static_cast<size_t>(out_size));
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / s.out_channels, m = task % s.out_channels;
        const int64_t grp = m / mpg;
        const X* xg = x + (n * s.in_channels + grp * cpg) * g.in_size();
        ref::conv_channel<int32_t>(xg, p_.x_zp, w + m * w_per_m, p_.w_zp[m], g, cpg, acc.data());
        Y* ym = y + (n * s.out_channels + m) * out_size;
        for (int64_t i = 0; i < out_size; ++i) ym[i] = static_cast<Y>(p_.requant.apply(m, acc[i]));
      }
    });
  }

  QConvParams p_;
};

// Validates the node and collects what both kernels and explain need.
QConvParams parse_qlinear_conv(BuildContext& ctx, arith::LinearQuant* lq_out) {
  ctx.expect_inputs(8, 9);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "x");
  ctx.expect_dtype(3, {DType::UInt8, DType::Int8}, "w");
  const ValueInfo& x = ctx.input(0);
  const ValueInfo& w = ctx.input(3);
  QConvParams p;
  p.shape = conv_shape(ctx, x.shape, w.shape);
  const int64_t M = p.shape.out_channels;
  p.x_type = x.dtype;
  p.w_type = w.dtype;
  QuantInput xq = read_quant_input(ctx, 1, 2, 0, "x", x.dtype);
  QuantInput wq = read_quant_input(ctx, 4, 5, M, "w", w.dtype, /*broadcast=*/true);
  QuantInput yq = read_quant_input(ctx, 6, 7, 0, "y");
  DType y_type = ctx.has_input(7) ? yq.zp_dtype : DType::UInt8;
  if (!is_quant8(y_type)) fail("y zero point must be uint8 or int8, got ", dtype_name(y_type));
  p.x_zp = xq.zero_point[0];
  p.w_zp.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) p.w_zp[m] = wq.zero_point.size() == 1 ? wq.zero_point[0] : wq.zero_point[m];
  p.weights = ctx.constant_input(3, "w");

  arith::LinearQuant lq;
  lq.x_scale = xq.scale[0];
  lq.w_scale = wq.scale;
  lq.y_scale = yq.scale[0];
  lq.y_zero_point = yq.zero_point[0];
  lq.y_type = y_type;
  if (ctx.has_input(8)) {
    const Tensor& b = ctx.constant_input(8, "B");
    if (b.dtype() != DType::Int32) fail("B must be int32, got ", dtype_name(b.dtype()));
    if (b.rank() != 1 || b.dim(0) != M)
      fail("B must have shape [", M, "], has ", shape_str(b.shape()));
    lq.bias.assign(b.data<int32_t>(), b.data<int32_t>() + M);
  }
  if (const Tensor* fb = ctx.extra("float_bias")) {
    if (fb->dtype() == DType::Float32 && fb->numel() == M)
      lq.float_bias.assign(fb->data<float>(), fb->data<float>() + M);
  }
  p.requant = arith::Requantizer(ctx.options().arith, lq, M);
  if (lq_out) *lq_out = lq;

  QuantParams out_q;
  out_q.scale = yq.scale;
  out_q.zero_point = yq.zero_point;
  ctx.set_output(0, y_type, p.shape.out_shape, out_q);
  return p;
}

std::unique_ptr<Kernel> build_qlinear_conv(BuildContext& ctx) {
  QConvParams p = parse_qlinear_conv(ctx, nullptr);
  const x86::Isa isa = x86::resolve_isa(ctx.options().isa);
  const x86::QGemmKernel* gemm = x86::qgemm_kernel(isa);
  // At most 16 output channels per group: the 16-column kernel, if the ISA has one.
  if (const x86::QGemmKernel* narrow = x86::qgemm_kernel_narrow(isa); gemm && narrow && p.shape.m_per_group() <= 16)
    gemm = narrow;
  if (gemm && fast_qconv_applies(p)) {
    ctx.set_output_layout(0, Layout::NHWC);
    return make_fast_qconv(p, *gemm, ctx.input(0).layout == Layout::NHWC);
  }
  // The reference kernel reads and writes the model's layout.
  if (ctx.any_input_nhwc()) ctx.require_plain_layout();
  return std::make_unique<QLinearConvRef>(std::move(p));
}

// One element of QLinearConv, from the inputs, with everything a hand-written loop can get
// wrong made visible (the questions of shared/seed-story.md).
Explanation explain_qlinear_conv(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  arith::LinearQuant lq;
  const QConvParams p = parse_qlinear_conv(eb.ctx(), &lq);
  const ConvShape& s = p.shape;
  const WindowGeometry& g = s.geom;
  checked_offset(ec.index, s.out_shape);
  const int64_t n = ec.index[0], m = ec.index[1];
  // Spatial coordinates with unit leading dims, as WindowGeometry counts them.
  std::array<int64_t, 3> o{0, 0, 0};
  for (int i = 0; i < g.spatial_rank; ++i) o[3 - g.spatial_rank + i] = ec.index[2 + i];
  const int64_t cpg = s.c_per_group(), grp = m / s.m_per_group();
  const Tensor& x = *ec.inputs[0];
  const int32_t xzp = p.x_zp, wzp = p.w_zp[m];

  // The receptive field: every (c, k) term, in int64 so that nothing wraps here.
  int64_t sum_xw = 0, sum_x = 0, sum_w = 0, terms = 0, pads = 0;
  int64_t acc8_wrapped = 0;  // the same sum accumulated in an int8 variable (wrapping)
  Explanation e;
  e.op_type = "QLinearConv";
  e.node = ec.node.name;
  e.index = ec.index;
  const int kMaxChannelsShown = 8;
  auto xval = [&](int64_t off) -> int32_t {
    return p.x_type == DType::UInt8 ? x.data<uint8_t>()[off] : x.data<int8_t>()[off];
  };
  auto wval = [&](int64_t off) -> int32_t {
    return p.w_type == DType::UInt8 ? p.weights.data<uint8_t>()[off] : p.weights.data<int8_t>()[off];
  };
  e.details.push_back(cat("output ", fmt_index(ec.index), " = (n, channel m, spatial…); group ", grp, " reads input channels ",
                          grp * cpg, "..", grp * cpg + cpg - 1, "; kernel ",
                          shape_str(std::vector<int64_t>(p.weights.shape().begin() + 2, p.weights.shape().end())),
                          ", strides ", shape_str(std::vector<int64_t>(g.stride.begin() + 3 - g.spatial_rank, g.stride.end())),
                          ", pads (begin) ", shape_str(std::vector<int64_t>(g.pad_begin.begin() + 3 - g.spatial_rank, g.pad_begin.end())),
                          ", dilations ", shape_str(std::vector<int64_t>(g.dilation.begin() + 3 - g.spatial_rank, g.dilation.end()))));
  e.details.push_back(cat("x: ", dtype_name(p.x_type), ", scale ", fmt_float(lq.x_scale), ", zero point ", xzp));
  const float ws = lq.w_scale.size() == 1 ? lq.w_scale[0] : lq.w_scale[static_cast<size_t>(m)];
  e.details.push_back(cat("w[", m, "]: ", dtype_name(p.w_type), ", scale ", fmt_float(ws),
                          lq.w_scale.size() > 1 ? " (per output channel)" : " (per tensor)", ", zero point ", wzp));
  e.details.push_back(cat("y: ", dtype_name(lq.y_type), ", scale ", fmt_float(lq.y_scale), ", zero point ", lq.y_zero_point,
                          lq.y_zero_point == (lq.y_type == DType::Int8 ? -128 : 0) ? " (the type's minimum: a fused ReLU saturates here)" : ""));
  e.details.push_back(cat("bias[", m, "] = ", lq.bias.empty() ? std::string("none") : std::to_string(lq.bias[static_cast<size_t>(m)]),
                          " (int32)", lq.float_bias.empty() ? "" : cat(", float bias ", fmt_float(lq.float_bias[static_cast<size_t>(m)]))));
  for (int64_t c = 0; c < cpg; ++c) {
    const int64_t ci = grp * cpg + c;
    const bool show = c < kMaxChannelsShown;
    if (show) e.details.push_back(cat("input channel ", ci, ": x (· = padding, holds x_zp) | w"));
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        std::string xs, wsr;
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const int64_t id = o[0] * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
          const int64_t ih = o[1] * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
          const int64_t iw = o[2] * g.stride[2] - g.pad_begin[2] + kw * g.dilation[2];
          const bool inside = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2];
          const int32_t xv = inside ? xval(((n * s.in_channels + ci) * g.in[0] + id) * g.in[1] * g.in[2] + ih * g.in[2] + iw) : xzp;
          const int32_t wv = wval(((m * cpg + c) * g.kernel[0] + kd) * g.kernel[1] * g.kernel[2] + kh * g.kernel[2] + kw);
          sum_xw += int64_t{xv} * wv;
          sum_x += xv;
          sum_w += wv;
          ++terms;
          pads += !inside;
          acc8_wrapped = static_cast<int8_t>(static_cast<uint8_t>(acc8_wrapped + (int64_t{xv} - xzp) * (wv - wzp)));
          char buf[16];
          std::snprintf(buf, sizeof buf, inside ? "%4d" : "   ·", xv);
          xs += buf;
          std::snprintf(buf, sizeof buf, "%5d", wv);
          wsr += buf;
        }
        if (show) e.details.push_back("  " + xs + "   |" + wsr);
      }
  }
  if (cpg > kMaxChannelsShown)
    e.details.push_back(cat("  … ", cpg - kMaxChannelsShown, " more input channels (included in the sums below)"));
  const int64_t acc64 = sum_xw - int64_t{wzp} * sum_x - int64_t{xzp} * sum_w + terms * xzp * wzp;
  const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(acc64)));
  e.details.push_back(cat("K = ", terms, " products (", pads, " at padding positions, which contribute 0)"));
  e.details.push_back(cat("Σ x·w = ", sum_xw, ", Σ x = ", sum_x, ", Σ w = ", sum_w));
  e.details.push_back(cat("accumulator = Σ (x − x_zp)(w − w_zp) = Σ x·w − w_zp·Σ x − x_zp·Σ w + K·x_zp·w_zp = ", sum_xw,
                          " − ", wzp, "·", sum_x, " − ", xzp, "·", sum_w, " + ", terms, "·", xzp, "·", wzp, " = ", acc64,
                          acc64 != acc ? cat(" (wraps to ", acc, " in int32)") : ""));
  e.schemes = linear_schemes(lq, s.out_channels, m, acc);

  // What common hand-written mistakes produce instead (ONNX Runtime's arithmetic otherwise).
  arith::Requantizer onnx(Arith::Onnx, lq, s.out_channels);
  auto add = [&](std::string label, std::string formula, int64_t v) {
    e.pitfalls.push_back({std::move(label), std::move(formula), std::to_string(v)});
  };
  add("8-bit accumulator", cat("the sum kept in an int8 variable wraps modulo 256 to ", acc8_wrapped), onnx.apply(m, static_cast<int32_t>(acc8_wrapped)));
  {
    arith::LinearQuant nb = lq;
    nb.bias.clear();
    arith::Requantizer r(Arith::Onnx, nb, s.out_channels);
    add("bias left out", "requantize the accumulator without bias[m]", r.apply(m, acc));
  }
  add("zero points not subtracted", cat("Σ x·w = ", sum_xw, " used as the accumulator"),
      onnx.apply(m, static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum_xw)))));
  if (lq.w_scale.size() > 1) {
    // Another channel's scale for all (channel 0's, as a per-tensor reading would take, unless
    // this element is in channel 0: then the last channel's).
    const size_t other = m == 0 ? lq.w_scale.size() - 1 : 0;
    arith::LinearQuant pt = lq;
    pt.w_scale = {lq.w_scale[other]};
    arith::Requantizer r(Arith::Onnx, pt, s.out_channels);
    add("one weight scale for every channel",
        cat("channel ", other, "'s scale ", fmt_float(lq.w_scale[other]), " instead of channel ", m, "'s"), r.apply(m, acc));
  }
  {
    const double real = static_cast<double>(static_cast<float>(static_cast<int64_t>(acc) + (lq.bias.empty() ? 0 : lq.bias[static_cast<size_t>(m)]))) *
                        (static_cast<double>(lq.x_scale) * ws / lq.y_scale);
    const int64_t away = static_cast<int64_t>(std::round(real)) + lq.y_zero_point;
    add("float64 multiplier, rounding half away from zero", cat("round(", fmt_float(real), ") + y_zp, before saturation"), away);
  }
  if (g.spatial_rank == 2 && o[1] != o[2] && o[2] < g.out[1] && o[1] < g.out[2])
    e.details.push_back(cat("note: reading the output as [n][c][x][y] instead of [n][c][y][x] would look at element ",
                            fmt_index({n, m, o[2], o[1]}), " instead"));
  return e;
}

}  // namespace

void register_qlinear_conv(Registry& r) {
  OpDef def{"ai.onnx", "QLinearConv", 10, 1000, build_qlinear_conv};
  def.layout_aware = true;
  def.explain = explain_qlinear_conv;
  r.add(def);
}

}  // namespace quint::ops
