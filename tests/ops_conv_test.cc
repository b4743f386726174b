// Conv (float) and ConvInteger against a naive reference written here from the ONNX formula:
//   y[n][m][o] = B[m] + Σ_{c in group(m)} Σ_k (x[n][c][o·s − p_begin + k·d] − x_zp) · (w[m][c][k] − w_zp[m])
// over input positions inside the image, with the output size and auto_pad pads computed here
// from the spec, on random shapes, strides, pads (also larger than the kernel), dilations and
// groups (depthwise included), 1-D to 3-D.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(777);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

OpRun op(const char* type, int opset = 13) {
  OpRun r;
  r.op_type = type;
  r.opset = opset;
  return r;
}

void expect_error(const OpRun& r, const std::string& what) {
  try {
    run_op(r);
    ADD_FAILURE() << r.op_type << ": no error, expected one mentioning '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what();
  }
}

Tensor random_float(const Shape& s) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(rng());
  return t;
}
Tensor random_q(DType t, const Shape& s, bool extremes) {
  Tensor r(t, s);
  const int64_t lo = t == DType::UInt8 ? 0 : -128, hi = t == DType::UInt8 ? 255 : 127;
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t v = extremes ? std::vector<int64_t>{lo, hi, lo + 1, hi - 1}[rand_int(0, 3)] : rand_int(lo, hi);
    if (t == DType::UInt8)
      r.data<uint8_t>()[i] = static_cast<uint8_t>(v);
    else
      r.data<int8_t>()[i] = static_cast<int8_t>(v);
  }
  return r;
}

// A convolution's geometry as the node states it, with the pads and output size the spec gives.
struct ConvGeom {
  int r = 2;
  int64_t N = 1, C = 1, M = 1, group = 1;
  std::vector<int64_t> in, k, s, d, pads;  // pads: begin..., end...
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> pb, pe, out;  // resolved

  void resolve() {
    pb.assign(r, 0);
    pe.assign(r, 0);
    out.assign(r, 0);
    for (int i = 0; i < r; ++i) {
      const int64_t ek = (k[i] - 1) * d[i] + 1;
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        out[i] = (in[i] + s[i] - 1) / s[i];
        const int64_t total = std::max<int64_t>(0, (out[i] - 1) * s[i] + ek - in[i]);
        pb[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        pe[i] = total - pb[i];
      } else {
        if (auto_pad == "NOTSET") {
          pb[i] = pads[i];
          pe[i] = pads[i + r];
        }
        out[i] = (in[i] + pb[i] + pe[i] - ek) / s[i] + 1;
      }
    }
  }
  Shape x_shape() const {
    Shape sh{N, C};
    sh.insert(sh.end(), in.begin(), in.end());
    return sh;
  }
  Shape w_shape() const {
    Shape sh{M, C / group};
    sh.insert(sh.end(), k.begin(), k.end());
    return sh;
  }
  Shape y_shape() const {
    Shape sh{N, M};
    sh.insert(sh.end(), out.begin(), out.end());
    return sh;
  }
  Attributes attrs() const {
    Attributes a;
    a.set("kernel_shape", k);
    a.set("strides", s);
    a.set("dilations", d);
    a.set("group", group);
    if (auto_pad == "NOTSET")
      a.set("pads", pads);
    else
      a.set("auto_pad", auto_pad);
    return a;
  }
  std::string str() const {
    return "x " + shape_str(x_shape()) + " w " + shape_str(w_shape()) + " group " + std::to_string(group) +
           " strides " + shape_str(s) + " dilations " + shape_str(d) + " pads " + shape_str(pads) + " " +
           auto_pad;
  }
};

ConvGeom random_geom() {
  ConvGeom g;
  g.r = static_cast<int>(rand_int(1, 3));
  g.group = std::vector<int64_t>{1, 1, 2, 3}[rand_int(0, 3)];
  int64_t cpg = rand_int(1, 4), mpg = rand_int(1, 4);
  if (rand_int(0, 4) == 0) {  // depthwise: one input channel per group
    g.group = rand_int(2, 8);
    cpg = 1;
    mpg = rand_int(1, 2);
  }
  g.C = g.group * cpg;
  g.M = g.group * mpg;
  g.N = rand_int(1, 2);
  for (int i = 0; i < g.r; ++i) {
    g.k.push_back(rand_int(1, 3));
    g.s.push_back(rand_int(1, 4));  // strides larger than the kernel too
    g.d.push_back(rand_int(1, 2));
  }
  for (int i = 0; i < 2 * g.r; ++i) g.pads.push_back(rand_int(0, 4));  // pads larger than the kernel too
  const int64_t mode = rand_int(0, 6);
  g.auto_pad = mode <= 3 ? "NOTSET" : std::vector<std::string>{"SAME_UPPER", "SAME_LOWER", "VALID"}[mode - 4];
  for (int i = 0; i < g.r; ++i) {
    const int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
    const int64_t pads = g.auto_pad == "NOTSET" ? g.pads[i] + g.pads[i + g.r] : 0;
    g.in.push_back(std::max<int64_t>(1, rand_int(ek - pads, ek + 7)));
  }
  g.resolve();
  return g;
}

// The reference: every output element on its own, accumulating in double (float conv) or int64.
template <class Acc, class GetX, class GetW>
std::vector<Acc> conv_ref(const ConvGeom& g, GetX x_at, GetW w_at) {
  std::vector<Acc> y;
  const int64_t cpg = g.C / g.group, mpg = g.M / g.group;
  std::vector<int64_t> in(3, 1), k(3, 1), s(3, 1), d(3, 1), pb(3, 0), out(3, 1);
  for (int i = 0; i < g.r; ++i) {
    in[3 - g.r + i] = g.in[i];
    k[3 - g.r + i] = g.k[i];
    s[3 - g.r + i] = g.s[i];
    d[3 - g.r + i] = g.d[i];
    pb[3 - g.r + i] = g.pb[i];
    out[3 - g.r + i] = g.out[i];
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t o0 = 0; o0 < out[0]; ++o0)
        for (int64_t o1 = 0; o1 < out[1]; ++o1)
          for (int64_t o2 = 0; o2 < out[2]; ++o2) {
            Acc acc = 0;
            for (int64_t cg = 0; cg < cpg; ++cg) {
              const int64_t c = (m / mpg) * cpg + cg;
              for (int64_t k0 = 0; k0 < k[0]; ++k0)
                for (int64_t k1 = 0; k1 < k[1]; ++k1)
                  for (int64_t k2 = 0; k2 < k[2]; ++k2) {
                    const int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                    const int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                    const int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                    if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) continue;
                    const int64_t xi = (((n * g.C + c) * in[0] + i0) * in[1] + i1) * in[2] + i2;
                    const int64_t wi = (((m * cpg + cg) * k[0] + k0) * k[1] + k1) * k[2] + k2;
                    acc += x_at(xi, m) * w_at(wi, m);
                  }
            }
            y.push_back(acc);
          }
  return y;
}

TEST(Conv, MatchesNaiveReferenceOnRandomGeometry) {
  for (int iter = 0; iter < 150; ++iter) {
    ConvGeom g = random_geom();
    SCOPED_TRACE(g.str());
    Tensor x = random_float(g.x_shape()), w = random_float(g.w_shape()), b = random_float({g.M});
    const bool bias = iter % 2 == 0;
    std::vector<double> ref = conv_ref<double>(
        g, [&](int64_t i, int64_t) { return static_cast<double>(x.data<float>()[i]); },
        [&](int64_t i, int64_t) { return static_cast<double>(w.data<float>()[i]); });
    Tensor want(DType::Float32, g.y_shape());
    const int64_t plane = want.numel() / (g.N * g.M);
    for (int64_t i = 0; i < want.numel(); ++i)
      want.data<float>()[i] = static_cast<float>(ref[i] + (bias ? b.data<float>()[(i / plane) % g.M] : 0.0));
    OpRun r = op("Conv");
    r.attrs = g.attrs();
    r.inputs = {dyn(x), iter % 3 ? cst(w) : dyn(w)};
    if (bias) r.inputs.push_back(cst(b));
    r.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_close(run_op(r)[0], want, 1e-5, 1e-5));
  }
}

TEST(Conv, LargeLayersAndThreadCountDeterminism) {
  // The im2col + matrix-product path at sizes where blocking matters: a ResNet-like 3×3 layer,
  // a 1×1 layer (no im2col), a strided 7×7 stem and a grouped layer.
  struct L {
    Shape x, w;
    std::vector<int64_t> strides, pads;
    int64_t group;
  };
  for (const L& l : {L{{1, 64, 14, 14}, {96, 64, 3, 3}, {1, 1}, {1, 1, 1, 1}, 1},
                     L{{2, 96, 9, 9}, {130, 96, 1, 1}, {1, 1}, {0, 0, 0, 0}, 1},
                     L{{1, 3, 37, 37}, {16, 3, 7, 7}, {2, 2}, {3, 3, 3, 3}, 1},
                     L{{1, 32, 10, 10}, {64, 8, 3, 3}, {2, 1}, {1, 0, 2, 1}, 4}}) {
    SCOPED_TRACE(shape_str(l.x) + " " + shape_str(l.w));
    ConvGeom g;
    g.r = 2;
    g.N = l.x[0];
    g.C = l.x[1];
    g.M = l.w[0];
    g.group = l.group;
    g.in = {l.x[2], l.x[3]};
    g.k = {l.w[2], l.w[3]};
    g.s = l.strides;
    g.d = {1, 1};
    g.pads = l.pads;
    g.resolve();
    Tensor x = random_float(l.x), w = random_float(l.w);
    std::vector<double> ref = conv_ref<double>(
        g, [&](int64_t i, int64_t) { return static_cast<double>(x.data<float>()[i]); },
        [&](int64_t i, int64_t) { return static_cast<double>(w.data<float>()[i]); });
    Tensor want(DType::Float32, g.y_shape());
    for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] = static_cast<float>(ref[i]);
    OpRun r = op("Conv");
    r.attrs = g.attrs();
    r.inputs = {dyn(x), cst(w)};
    Tensor one = run_op(r)[0];
    r.threads = 2;
    Tensor two = run_op(r)[0];
    EXPECT_TRUE(tensors_close(one, want, 1e-5, 1e-5));
    EXPECT_TRUE(tensors_equal(one, two));
  }
}

TEST(Conv, Errors) {
  auto conv = [](Shape x, Shape w, Attributes a = {}) {
    OpRun r = op("Conv");
    r.attrs = std::move(a);
    r.inputs = {dyn(random_float(x)), cst(random_float(w))};
    return r;
  };
  Attributes g3;
  g3.set("group", int64_t{3});
  expect_error(conv({1, 4, 5, 5}, {6, 1, 3, 3}, g3), "group 3 does not divide the input channels 4");
  expect_error(conv({1, 6, 5, 5}, {4, 2, 3, 3}, g3), "group 3 does not divide the output channels 4");
  expect_error(conv({1, 4, 5, 5}, {6, 3, 3, 3}), "weights have 3 input channels per group");
  expect_error(conv({1, 4, 2, 5}, {6, 4, 3, 3}), "larger than the padded input");
  Attributes dil;
  dil.set("dilations", std::vector<int64_t>{3, 1});
  expect_error(conv({1, 4, 6, 6}, {6, 4, 3, 3}, dil), "larger than the padded input");
  Attributes ks;
  ks.set("kernel_shape", std::vector<int64_t>{2, 2});
  expect_error(conv({1, 4, 6, 6}, {6, 4, 3, 3}, ks), "does not match the weights'");
  Attributes neg;
  neg.set("pads", std::vector<int64_t>{-1, 0, 0, 0});
  expect_error(conv({1, 4, 6, 6}, {6, 4, 3, 3}, neg), "pads must be >= 0");
  Attributes bad_pad;
  bad_pad.set("auto_pad", std::string("SAME"));
  expect_error(conv({1, 4, 6, 6}, {6, 4, 3, 3}, bad_pad), "auto_pad 'SAME' is not one of");
  expect_error(conv({1, 4, 6, 6, 6, 6}, {6, 4, 3, 3, 3, 3}), "1 to 3 spatial dims");
  expect_error(conv({1, 4, 6, 6}, {6, 4, 3}), "weights must have the input's rank");
  OpRun r = conv({1, 4, 6, 6}, {6, 4, 3, 3});
  r.inputs.push_back(cst(random_float({4})));
  expect_error(r, "B must have shape [6], has [4]");
  r.inputs.back() = cst(random_float({1, 6}));
  expect_error(r, "B must have shape [6], has [1,6]");
  r.inputs.back() = cst(Tensor(DType::Int32, {6}));
  expect_error(r, "B (input 2) must be float32, got int32");
  r = conv({1, 4, 6, 6}, {6, 4, 3, 3});
  r.inputs[0] = dyn(random_q(DType::UInt8, {1, 4, 6, 6}, false));
  expect_error(r, "X (input 0) must be float32, got uint8");
}

// ---------------------------------------------------------------------------------------------
// ConvInteger
// ---------------------------------------------------------------------------------------------

TEST(ConvInteger, MatchesNaiveReferenceOnRandomGeometry) {
  for (int iter = 0; iter < 160; ++iter) {
    ConvGeom g = random_geom();
    const DType xt = iter % 2 ? DType::UInt8 : DType::Int8, wt = (iter / 2) % 2 ? DType::UInt8 : DType::Int8;
    SCOPED_TRACE(std::string(dtype_name(xt)) + " x " + dtype_name(wt) + " " + g.str());
    Tensor x = random_q(xt, g.x_shape(), iter % 5 == 0), w = random_q(wt, g.w_shape(), iter % 3 == 0);
    // Zero points at the extremes make the products 255 × (−128) and 255 × 127 appear.
    auto pick_zp = [&](DType t) {
      const int64_t lo = t == DType::UInt8 ? 0 : -128, hi = t == DType::UInt8 ? 255 : 127;
      return std::vector<int64_t>{lo, hi, 0, rand_int(lo, hi)}[rand_int(0, 3)];
    };
    const int64_t xz = pick_zp(xt);
    const int zp_mode = iter % 4;  // 0: none, 1: scalar, 2: [1], 3: per output channel
    std::vector<int64_t> wz(g.M, 0);
    for (auto& v : wz) v = zp_mode == 3 ? pick_zp(wt) : wz[0];
    if (zp_mode == 1 || zp_mode == 2) std::fill(wz.begin(), wz.end(), pick_zp(wt));
    std::vector<int64_t> ref = conv_ref<int64_t>(
        g, [&](int64_t i, int64_t) { return x.as_int64(i) - (zp_mode ? xz : 0); },
        [&](int64_t i, int64_t m) { return w.as_int64(i) - wz[m]; });
    Tensor want(DType::Int32, g.y_shape());
    for (int64_t i = 0; i < want.numel(); ++i) want.data<int32_t>()[i] = static_cast<int32_t>(ref[i]);

    auto q_scalar = [](DType t, Shape s, int64_t v) {
      Tensor r(t, s);
      if (t == DType::UInt8)
        r.data<uint8_t>()[0] = static_cast<uint8_t>(v);
      else
        r.data<int8_t>()[0] = static_cast<int8_t>(v);
      return r;
    };
    OpRun r = op("ConvInteger", 10);
    r.attrs = g.attrs();
    const bool constant = iter % 3 != 0;  // zero points as run-time values too
    auto in = [&](Tensor t) { return constant ? cst(std::move(t)) : dyn(std::move(t)); };
    r.inputs = {dyn(x), in(w)};
    if (zp_mode) {
      r.inputs.push_back(in(q_scalar(xt, zp_mode == 2 ? Shape{1} : Shape{}, xz)));
      if (zp_mode == 3) {
        Tensor z(wt, {g.M});
        for (int64_t m = 0; m < g.M; ++m) {
          if (wt == DType::UInt8)
            z.data<uint8_t>()[m] = static_cast<uint8_t>(wz[m]);
          else
            z.data<int8_t>()[m] = static_cast<int8_t>(wz[m]);
        }
        r.inputs.push_back(in(z));
      } else {
        r.inputs.push_back(in(q_scalar(wt, zp_mode == 2 ? Shape{1} : Shape{}, wz[0])));
      }
    }
    r.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
  }
}

TEST(ConvInteger, ExtremeProducts) {
  // Every term is 255 × (−128) (x = 255, x_zp = 0, w = −128, w_zp = 0) or 255 × 127.
  OpRun r = op("ConvInteger", 10);
  Tensor x(DType::UInt8, {1, 2, 3, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = 255;
  Tensor w(DType::Int8, {2, 2, 3, 3});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = i < 18 ? -128 : 127;
  r.inputs = {dyn(x), cst(w), cst(Tensor::scalar<uint8_t>(0)), cst(Tensor::scalar<int8_t>(0))};
  Tensor y = run_op(r)[0];
  EXPECT_EQ(y.data<int32_t>()[0], 18 * 255 * -128);
  EXPECT_EQ(y.data<int32_t>()[1], 18 * 255 * 127);
}

TEST(ConvInteger, Errors) {
  auto ci = [](DType xt, DType wt) {
    OpRun r = op("ConvInteger", 10);
    r.inputs = {dyn(random_q(xt, {1, 4, 5, 5}, false)), cst(random_q(wt, {6, 4, 3, 3}, false))};
    return r;
  };
  OpRun r = ci(DType::UInt8, DType::Int8);
  r.inputs.push_back(cst(Tensor::scalar<int8_t>(0)));
  expect_error(r, "x_zero_point must have x's type uint8, got int8");
  r = ci(DType::UInt8, DType::Int8);
  r.inputs.push_back(cst(random_q(DType::UInt8, {2}, false)));
  expect_error(r, "x_zero_point must be a scalar, has shape [2]");
  r = ci(DType::UInt8, DType::Int8);
  r.inputs.push_back(cst(Tensor::scalar<uint8_t>(0)));
  r.inputs.push_back(cst(random_q(DType::Int8, {4}, false)));
  expect_error(r, "w_zero_point must be a scalar or have 6 elements");
  r = ci(DType::UInt8, DType::Int8);
  r.inputs.push_back(OpInput::absent_input());
  r.inputs.push_back(cst(Tensor::scalar<uint8_t>(0)));
  expect_error(r, "w_zero_point must have w's type int8, got uint8");
  r = ci(DType::UInt8, DType::Int8);
  r.inputs[1] = cst(random_float({6, 4, 3, 3}));
  expect_error(r, "w (input 1) must be uint8 or int8, got float32");
  r = ci(DType::UInt8, DType::Int8);
  r.attrs.set("group", int64_t{3});
  expect_error(r, "group 3 does not divide the input channels 4");
}

}  // namespace

}  // namespace quint::test
