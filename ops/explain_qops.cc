// explain for the quantized operators around the convolutions: QuantizeLinear, QLinearAdd,
// QLinearMul, QLinearConcat and QLinearGlobalAveragePool. Each recomputes one output element from the node's inputs with the
// formulas of ops/arith/requant.h, under every arithmetic, and lists what common hand-written
// mistakes would give instead.
#include "explain_qops.h"

#include <algorithm>
#include <cmath>

#include "common.h"
#include "explain_util.h"

namespace quint::ops {

namespace {

constexpr Arith kSchemes[] = {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm};

// Validates the node exactly as a run does: its own build function on the explain inputs.
void validate(const ExplainContext& ec, ExplainBuild& eb) {
  const OpDef* def = Registry::builtin().find(ec.node.domain, ec.node.op_type, ec.node.opset);
  if (!def || !def->build) fail("no operator ", ec.node.op_type, " at opset ", ec.node.opset);
  def->build(eb.ctx());
}

float scalar_float(const Tensor* t, const char* what) {
  if (!t || t->numel() != 1 || t->dtype() != DType::Float32) fail(what, " must be a float32 scalar");
  return t->data<float>()[0];
}

int32_t scalar_zp(const Tensor* t) { return t ? static_cast<int32_t>(t->as_int64(0)) : 0; }

int64_t clamp_to(int64_t v, DType t) { return std::clamp<int64_t>(v, qmin(t), qmax(t)); }
// What storing v into an 8-bit variable without clamping leaves (two's complement wrap).
int64_t wrap8(int64_t v, DType t) {
  const int64_t u = ((v % 256) + 256) % 256;
  return t == DType::Int8 && u >= 128 ? u - 256 : u;
}

// The coordinates of the element of `in` that a broadcast output element reads.
std::vector<int64_t> broadcast_index(const std::vector<int64_t>& out_idx, const Shape& in) {
  std::vector<int64_t> idx(in.size());
  const size_t lead = out_idx.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) idx[i] = in[i] == 1 ? 0 : out_idx[lead + i];
  return idx;
}

void add_pitfall(Explanation& e, std::string label, std::string formula, int64_t v) {
  e.pitfalls.push_back({std::move(label), std::move(formula), std::to_string(v)});
}

// The operands of one QLinearAdd / QLinearMul output element: inputs (A, A_s, A_zp, B, B_s, B_zp,
// C_s[, C_zp]), the element of each (broadcast) that the output reads, and the explanation's
// header naming them (`op` the operator's symbol).
struct BinaryElement {
  DType t = DType::UInt8;
  float a_s = 1, b_s = 1, c_s = 1;
  int32_t a_zp = 0, b_zp = 0, c_zp = 0, av = 0, bv = 0;
  double ra = 0, rb = 0;  // the real values (A − A_zp)·A_s and (B − B_zp)·B_s
  Shape a_shape, b_shape;
};

BinaryElement read_binary_element(const ExplainContext& ec, const char* op_type, const char* op, Explanation& e) {
  ExplainBuild eb(ec);
  validate(ec, eb);
  const Tensor& a = *ec.inputs[0];
  const Tensor& b = *ec.inputs[3];
  BinaryElement x;
  x.t = a.dtype();
  x.a_s = scalar_float(ec.inputs[1], "A_scale");
  x.b_s = scalar_float(ec.inputs[4], "B_scale");
  x.c_s = scalar_float(ec.inputs[6], "C_scale");
  x.a_zp = scalar_zp(ec.inputs[2]);
  x.b_zp = scalar_zp(ec.inputs[5]);
  x.c_zp = ec.inputs.size() > 7 ? scalar_zp(ec.inputs[7]) : 0;
  x.a_shape = a.shape();
  x.b_shape = b.shape();
  checked_offset(ec.index, broadcast_shapes(a.shape(), b.shape()));
  const std::vector<int64_t> ai = broadcast_index(ec.index, a.shape()), bi = broadcast_index(ec.index, b.shape());
  x.av = static_cast<int32_t>(a.as_int64(checked_offset(ai, a.shape())));
  x.bv = static_cast<int32_t>(b.as_int64(checked_offset(bi, b.shape())));
  x.ra = (static_cast<double>(x.av) - x.a_zp) * x.a_s;
  x.rb = (static_cast<double>(x.bv) - x.b_zp) * x.b_s;
  e.op_type = op_type;
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("output ", fmt_index(ec.index), " = A", fmt_index(ai), " ", op, " B", fmt_index(bi), " (A ",
                          shape_str(a.shape()), ", B ", shape_str(b.shape()), ")"));
  e.details.push_back(cat("A = ", x.av, ": ", dtype_name(x.t), ", scale ", fmt_float(x.a_s), ", zero point ", x.a_zp,
                          " → real (A − A_zp)·A_s = ", fmt_float(x.ra)));
  e.details.push_back(cat("B = ", x.bv, ": scale ", fmt_float(x.b_s), ", zero point ", x.b_zp,
                          " → real (B − B_zp)·B_s = ", fmt_float(x.rb)));
  return x;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Explanation explain_quantize_linear(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  validate(ec, eb);
  const Tensor& x = *ec.inputs[0];
  const Tensor& scale = *ec.inputs[1];
  const Tensor* zpt = ec.inputs.size() > 2 ? ec.inputs[2] : nullptr;
  const DType t = zpt ? zpt->dtype() : DType::UInt8;
  const int64_t off = checked_offset(ec.index, x.shape());
  int64_t channel = 0;
  std::string per = "per tensor";
  if (scale.numel() > 1) {
    int64_t axis = ec.attrs.get_int("axis", 1);
    if (axis < 0) axis += static_cast<int64_t>(x.shape().size());
    channel = ec.index[static_cast<size_t>(axis)];
    per = cat("per axis ", axis, ", channel ", channel);
  }
  const float s = scale.data<float>()[channel];
  const int32_t zp = zpt ? static_cast<int32_t>(zpt->as_int64(zpt->numel() > 1 ? channel : 0)) : 0;
  const float xv = static_cast<float>(x.as_double(off));

  Explanation e;
  e.op_type = "QuantizeLinear";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("x", fmt_index(ec.index), " = ", fmt_float(xv), " (", dtype_name(x.dtype()), ")"));
  e.details.push_back(cat("y: ", dtype_name(t), ", scale ", fmt_float(s), " (", per, "), zero point ", zp));
  e.details.push_back(cat("real quotient x / scale = ", fmt_float(static_cast<double>(xv) / s), " (float64)"));
  for (Arith a : kSchemes) {
    const arith::InputQuantizer q(a, s, zp, t);
    e.schemes.push_back({a, q.explain(xv), q.apply(xv), q.pre_round(xv), ""});
  }
  const double quot = static_cast<double>(xv / s);
  if (std::isfinite(quot) && std::fabs(quot) < 1e9) {
    add_pitfall(e, "truncation", "trunc(x / s) + zp  (a C cast instead of rounding)",
                clamp_to(static_cast<int64_t>(std::trunc(quot)) + zp, t));
    add_pitfall(e, "half away from zero", "round(x / s) + zp  (C round(), not half to even)",
                clamp_to(static_cast<int64_t>(std::round(quot)) + zp, t));
    add_pitfall(e, "no saturation", "rne(x / s) + zp stored in 8 bits, wrapping",
                wrap8(static_cast<int64_t>(std::nearbyint(quot)) + zp, t));
    add_pitfall(e, "zero point subtracted", "rne(x / s) − zp  (the sign of the zero point flipped)",
                clamp_to(static_cast<int64_t>(std::nearbyint(quot)) - zp, t));
  }
  return e;
}

// ---------------------------------------------------------------------------------------------

Explanation explain_qlinear_add(const ExplainContext& ec) {
  Explanation e;
  const BinaryElement x = read_binary_element(ec, "QLinearAdd", "⊕", e);
  const DType t = x.t;
  const float a_s = x.a_s, b_s = x.b_s, c_s = x.c_s;
  const int32_t a_zp = x.a_zp, b_zp = x.b_zp, c_zp = x.c_zp, av = x.av, bv = x.bv;
  const double ra = x.ra, rb = x.rb;
  e.details.push_back(cat("C: scale ", fmt_float(c_s), ", zero point ", c_zp, "; exact real sum ", fmt_float(ra + rb),
                          " → ", fmt_float((ra + rb) / c_s + c_zp), " in C's units (zero point included)"));
  if (c_zp == qmin(t))
    e.details.push_back(cat("C's zero point is ", qmin(t), ", the type's minimum: a ReLU after the add is fused here "
                            "(negative sums saturate to ", c_zp, ")"));
  const bool same_shape = x.a_shape == x.b_shape;
  for (Arith s : kSchemes) {
    try {
      const arith::AddRequantizer r(s, a_s, a_zp, b_s, b_zp, c_s, c_zp, t, same_shape,
                                    arith::onnx_add_a_is_span_scalar(x.a_shape, x.b_shape));
      std::string note;
      if (r.kernel() == arith::AddRequantizer::Kernel::QnnpackFixed)
        note = "QNNPACK's fixed-point add (uint8 inputs of one shape)";
      else if (r.kernel() == arith::AddRequantizer::Kernel::AtenFloat)
        note = "ATen's float add kernel (this engine has no add of its own)";
      e.schemes.push_back({s, r.explain(av, bv), r.apply(av, bv), r.pre_round(av, bv), note});
    } catch (const Error& err) {
      e.details.push_back(cat(arith_name(s), ": ", err.what()));
    }
  }
  const int64_t naive = static_cast<int64_t>(av) - a_zp + bv - b_zp + c_zp;
  add_pitfall(e, "no rescaling", "(A − A_zp) + (B − B_zp) + C_zp  (the scales ignored)", clamp_to(naive, t));
  add_pitfall(e, "8-bit sum", "A + B kept in an 8-bit variable (wraps)", wrap8(static_cast<int64_t>(av) + bv, t));
  add_pitfall(e, "zero points ignored", "rne((A·A_s + B·B_s) / C_s)",
              clamp_to(static_cast<int64_t>(std::nearbyint((static_cast<double>(av) * a_s + static_cast<double>(bv) * b_s) / c_s)), t));
  add_pitfall(e, "truncation", "trunc(real sum / C_s) + C_zp",
              clamp_to(static_cast<int64_t>(std::trunc((ra + rb) / c_s)) + c_zp, t));
  return e;
}

// ---------------------------------------------------------------------------------------------

// QLinearMul (ONNX Runtime's MLAS kernel; the same under every arithmetic, as the run):
//   p = (A − A_zp)(B − B_zp) exact, r = fl32(fl32(A_s·B_s) / C_s),
//   y = sat(cvt(fl32(fl32(fl32(p)·r) + C_zp)))
Explanation explain_qlinear_mul(const ExplainContext& ec) {
  Explanation e;
  const BinaryElement x = read_binary_element(ec, "QLinearMul", "⊗", e);
  e.details.push_back(cat("C: scale ", fmt_float(x.c_s), ", zero point ", x.c_zp, "; exact real product ",
                          fmt_float(x.ra * x.rb), " → ", fmt_float(x.ra * x.rb / x.c_s + x.c_zp),
                          " in C's units (zero point included)"));
  e.details.push_back("ONNX Runtime's formula; PyTorch's engines are not modelled for this operator, so every scheme "
                      "shows it");
  const int64_t p = (static_cast<int64_t>(x.av) - x.a_zp) * (static_cast<int64_t>(x.bv) - x.b_zp);
  const float r = (x.a_s * x.b_s) / x.c_s;
  const float scaled = static_cast<float>(p) * r;
  const float v = scaled + static_cast<float>(x.c_zp);
  const int32_t y = arith::saturate(arith::cvt_ps2dq(v), qmin(x.t), qmax(x.t));
  const std::vector<ExplainStep> steps = {
      {"product", "(A − A_zp)·(B − B_zp), exact", cat(p)},
      {"multiplier", "fl32(fl32(A_s·B_s) / C_s)", fmt_float(r)},
      {"scaled", "fl32(fl32(product)·multiplier)", fmt_float(scaled)},
      {"plus zero point", "fl32(scaled + C_zp)", fmt_float(v)},
      {"output", "sat(cvtps2dq(…)): round half to even, saturate", cat(y)}};
  for (Arith sc : kSchemes) e.schemes.push_back({sc, steps, y, static_cast<double>(v), ""});
  add_pitfall(e, "zero points ignored", "rne(A·B·A_s·B_s / C_s) + C_zp",
              clamp_to(static_cast<int64_t>(std::nearbyint(static_cast<double>(x.av) * x.bv * x.a_s * x.b_s / x.c_s)) + x.c_zp, x.t));
  add_pitfall(e, "truncation", "trunc(real product / C_s) + C_zp",
              clamp_to(static_cast<int64_t>(std::trunc(x.ra * x.rb / x.c_s)) + x.c_zp, x.t));
  add_pitfall(e, "8-bit product", "(A − A_zp)·(B − B_zp) kept in an 8-bit variable (wraps)", wrap8(p, x.t));
  return e;
}

// QLinearConcat: the element comes from one input; with that input's scale and zero point equal
// to the output's it is copied, otherwise requantized: sat(rne(fl32(fl32(x_s·(x − x_zp)) / y_s)) + y_zp).
Explanation explain_qlinear_concat(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  validate(ec, eb);
  const float y_s = scalar_float(ec.inputs[0], "Y_scale");
  const int32_t y_zp = scalar_zp(ec.inputs[1]);
  const size_t n_in = (ec.inputs.size() - 2) / 3;
  const Tensor& first = *ec.inputs[2];
  const int64_t rank = static_cast<int64_t>(first.shape().size());
  const int64_t axis = normalize_axis(ec.attrs.get_int("axis", 0), rank);
  Shape out = first.shape();
  out[static_cast<size_t>(axis)] = 0;
  for (size_t k = 0; k < n_in; ++k) out[static_cast<size_t>(axis)] += ec.inputs[2 + 3 * k]->shape()[static_cast<size_t>(axis)];
  checked_offset(ec.index, out);
  // The input holding the element, and its coordinates there.
  size_t k = 0;
  std::vector<int64_t> idx = ec.index;
  while (idx[static_cast<size_t>(axis)] >= ec.inputs[2 + 3 * k]->shape()[static_cast<size_t>(axis)]) {
    idx[static_cast<size_t>(axis)] -= ec.inputs[2 + 3 * k]->shape()[static_cast<size_t>(axis)];
    ++k;
  }
  const Tensor& x = *ec.inputs[2 + 3 * k];
  const DType t = x.dtype();
  const float x_s = scalar_float(ec.inputs[3 + 3 * k], "X_scale");
  const int32_t x_zp = scalar_zp(ec.inputs[4 + 3 * k]);
  const int32_t xv = static_cast<int32_t>(x.as_int64(checked_offset(idx, x.shape())));

  Explanation e;
  e.op_type = "QLinearConcat";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("output ", fmt_index(ec.index), " is input ", k, "'s element ", fmt_index(idx), " (axis ", axis,
                          ", input ", k, " of ", n_in, ", shape ", shape_str(x.shape()), ")"));
  e.details.push_back(cat("x = ", xv, ": ", dtype_name(t), ", scale ", fmt_float(x_s), ", zero point ", x_zp, "; output scale ",
                          fmt_float(y_s), ", zero point ", y_zp));
  std::vector<ExplainStep> steps;
  int32_t y;
  double pre;
  if (x_s == y_s && x_zp == y_zp) {
    y = xv;
    pre = xv;
    steps = {{"copied", "the input's scale and zero point are the output's", cat(y)}};
  } else {
    const float real = x_s * static_cast<float>(xv - x_zp);
    const float v = real / y_s;
    y = arith::quantize_value(real, y_s, y_zp, qmin(t), qmax(t));  // the kernel's table entry
    pre = static_cast<double>(v) + y_zp;
    steps = {{"dequantized", "fl32(x_s·(x − x_zp))", fmt_float(real)},
             {"scaled", "fl32(real / y_s)", fmt_float(v)},
             {"output", "sat(rne(scaled) + y_zp)", cat(y)}};
  }
  e.details.push_back("ONNX Runtime's formula (a 256-entry table per input); the same under every scheme");
  for (Arith sc : kSchemes) e.schemes.push_back({sc, steps, y, pre, ""});
  add_pitfall(e, "copied without requantizing", "x (the input's scale and zero point ignored)", xv);
  return e;
}

// ---------------------------------------------------------------------------------------------

Explanation explain_qlinear_global_avg_pool(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  validate(ec, eb);
  const Tensor& x = *ec.inputs[0];
  const DType t = x.dtype();
  const Shape& xs = x.shape();
  const bool channels_last = ec.attrs.get_int("channels_last", 0) != 0;
  const float x_s = scalar_float(ec.inputs[1], "x_scale"), y_s = scalar_float(ec.inputs[3], "y_scale");
  const int32_t x_zp = scalar_zp(ec.inputs[2]), y_zp = scalar_zp(ec.inputs[4]);
  Shape out(xs.size(), 1);
  out[0] = xs[0];
  if (channels_last) out.back() = xs.back();
  else out[1] = xs[1];
  checked_offset(ec.index, out);
  const int64_t n = ec.index[0], c = channels_last ? ec.index.back() : ec.index[1];
  const int64_t C = channels_last ? xs.back() : xs[1];
  std::vector<int64_t> window;
  int64_t count = 1;
  for (size_t i = channels_last ? 1 : 2; i < (channels_last ? xs.size() - 1 : xs.size()); ++i) {
    window.push_back(xs[i]);
    count *= xs[i];
  }
  // Element p of the window: NCHW at (n·C + c)·count + p, channels-last at (n·count + p)·C + c.
  auto at = [&](int64_t p) { return channels_last ? (n * count + p) * C + c : (n * C + c) * count + p; };
  int64_t sum = 0;
  std::string vals;
  for (int64_t p = 0; p < count; ++p) {
    const int64_t v = x.as_int64(at(p));
    sum += v;
    if (p < 24) vals += (p ? " " : "") + std::to_string(v);
  }
  if (count > 24) vals += cat(" … (", count - 24, " more)");

  Explanation e;
  e.op_type = "QLinearGlobalAveragePool";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("output ", fmt_index(ec.index), " = mean of channel ", c, " of image ", n, " over ", count,
                          " positions (X ", shape_str(xs), channels_last ? ", channels last" : "", ")"));
  e.details.push_back(cat("x: ", dtype_name(t), ", scale ", fmt_float(x_s), ", zero point ", x_zp, "; y: scale ",
                          fmt_float(y_s), ", zero point ", y_zp));
  e.details.push_back("values:  " + vals);
  e.details.push_back(cat("S = Σ x = ", sum, ", acc = S − x_zp·N = ", sum - int64_t{x_zp} * count,
                          ", exact real mean ", fmt_float((static_cast<double>(sum) / count - x_zp) * x_s), " → ",
                          fmt_float((static_cast<double>(sum) / count - x_zp) * x_s / y_s + y_zp), " in y's units"));
  for (Arith s : kSchemes) {
    try {
      const arith::AvgPoolRequantizer r(s, x_s, x_zp, y_s, y_zp, window, t);
      e.schemes.push_back({s, r.explain(sum), r.apply(sum), r.pre_round(sum), ""});
    } catch (const Error& err) {
      e.details.push_back(cat(arith_name(s), ": ", err.what()));
    }
  }
  const int64_t acc = sum - int64_t{x_zp} * count;
  add_pitfall(e, "8-bit sum", "Σ x kept in an 8-bit variable, then / N", clamp_to(wrap8(sum, t) / count, t));
  add_pitfall(e, "integer division", "(S − x_zp·N) / N truncated, + y_zp  (scales assumed equal)",
              clamp_to(acc / count + y_zp, t));
  add_pitfall(e, "zero points ignored", "rne(S / N · x_s / y_s)",
              clamp_to(static_cast<int64_t>(std::nearbyint(static_cast<double>(sum) / count * x_s / y_s)), t));
  return e;
}

}  // namespace quint::ops
