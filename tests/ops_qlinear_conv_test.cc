// QLinearConv against a naive reference written here from shared/ARITHMETIC.md (ONNX Runtime 1.30):
//   acc  = Σ_{c in group(m)} Σ_k (x − x_zp)·(w − w_zp[m]) + bias[m]     (padding contributes 0)
//   M[m] = fl32(fl32(x_s · w_s[m]) / y_s)
//   y    = sat(rne(fl32(fl32(acc) · M[m])) + y_zp)
// on random geometry (1-D to 3-D, groups and depthwise, strides, dilations, pads, auto_pad),
// uint8/int8 activations × uint8/int8 weights, per-tensor and per-channel scales and zero
// points, the type extremes and exact .5 ties; each case under the reference kernel (isa=ref)
// and the default one.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(31337);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}
int64_t qlo(DType t) {
  return t == DType::UInt8 ? 0 : -128;
}
int64_t qhi(DType t) {
  return t == DType::UInt8 ? 255 : 127;
}

OpRun qconv_op() {
  OpRun r;
  r.op_type = "QLinearConv";
  r.opset = 10;
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

Tensor q_tensor(DType t, const Shape& s, const std::vector<int64_t>& v) {
  Tensor r(t, s);
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (t == DType::UInt8)
      r.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
    else
      r.data<int8_t>()[i] = static_cast<int8_t>(v[i]);
  }
  return r;
}
Tensor random_q(DType t, const Shape& s, bool extremes) {
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(s)));
  for (auto& e : v)
    e = extremes ? std::vector<int64_t>{qlo(t), qhi(t), qlo(t) + 1, qhi(t) - 1}[rand_int(0, 3)]
                 : rand_int(qlo(t), qhi(t));
  return q_tensor(t, s, v);
}
int64_t random_zp(DType t) {
  return std::vector<int64_t>{qlo(t), qhi(t), 0, rand_int(qlo(t), qhi(t))}[rand_int(0, 3)];
}

struct Geom {
  int r = 2;
  int64_t N = 1, C = 1, M = 1, group = 1;
  std::vector<int64_t> in, k, s, d, pads, pb, out;
  std::string auto_pad = "NOTSET";

  void resolve() {
    pb.assign(r, 0);
    out.assign(r, 0);
    for (int i = 0; i < r; ++i) {
      const int64_t ek = (k[i] - 1) * d[i] + 1;
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        out[i] = (in[i] + s[i] - 1) / s[i];
        const int64_t total = std::max<int64_t>(0, (out[i] - 1) * s[i] + ek - in[i]);
        pb[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      } else {
        const int64_t p = auto_pad == "NOTSET" ? pads[i] + pads[i + r] : 0;
        if (auto_pad == "NOTSET") pb[i] = pads[i];
        out[i] = (in[i] + p - ek) / s[i] + 1;
      }
    }
  }
  Shape shape(int64_t a, int64_t b, const std::vector<int64_t>& rest) const {
    Shape sh{a, b};
    sh.insert(sh.end(), rest.begin(), rest.end());
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
    return "x " + shape_str(shape(N, C, in)) + " w " + shape_str(shape(M, C / group, k)) + " group " +
           std::to_string(group) + " strides " + shape_str(s) + " dilations " + shape_str(d) + " pads " +
           shape_str(pads) + " " + auto_pad;
  }
};

Geom random_geom() {
  Geom g;
  g.r = static_cast<int>(rand_int(1, 3));
  g.group = std::vector<int64_t>{1, 1, 2, 3}[rand_int(0, 3)];
  int64_t cpg = rand_int(1, 5), mpg = rand_int(1, 5);
  if (rand_int(0, 3) == 0) {  // depthwise
    g.group = rand_int(2, 8);
    cpg = 1;
    mpg = rand_int(1, 2);
  }
  g.C = g.group * cpg;
  g.M = g.group * mpg;
  g.N = rand_int(1, 2);
  for (int i = 0; i < g.r; ++i) {
    g.k.push_back(rand_int(1, 3));
    g.s.push_back(rand_int(1, 3));
    g.d.push_back(rand_int(1, 2));
  }
  for (int i = 0; i < 2 * g.r; ++i) g.pads.push_back(rand_int(0, 3));
  const int64_t mode = rand_int(0, 6);
  g.auto_pad = mode <= 3 ? "NOTSET" : std::vector<std::string>{"SAME_UPPER", "SAME_LOWER", "VALID"}[mode - 4];
  for (int i = 0; i < g.r; ++i) {
    const int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
    const int64_t pads = g.auto_pad == "NOTSET" ? g.pads[i] + g.pads[i + g.r] : 0;
    g.in.push_back(std::max<int64_t>(1, rand_int(ek - pads, ek + 6)));
  }
  g.resolve();
  return g;
}

struct QParams {
  float xs = 1, ys = 1;
  std::vector<float> ws;  // 1 or M
  int64_t xz = 0, yz = 0;
  std::vector<int64_t> wz;    // 1 or M
  std::vector<int32_t> bias;  // empty or M
  DType yt = DType::UInt8;
};

Tensor reference(const Geom& g, const Tensor& x, const Tensor& w, const QParams& q) {
  const int64_t cpg = g.C / g.group, mpg = g.M / g.group;
  std::vector<int64_t> in(3, 1), k(3, 1), s(3, 1), d(3, 1), pb(3, 0), out(3, 1);
  for (int i = 0; i < g.r; ++i) {
    const int j = 3 - g.r + i;
    in[j] = g.in[i], k[j] = g.k[i], s[j] = g.s[i], d[j] = g.d[i], pb[j] = g.pb[i], out[j] = g.out[i];
  }
  Tensor y(q.yt, g.shape(g.N, g.M, g.out));
  int64_t yi = 0;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t m = 0; m < g.M; ++m) {
      const float ws = q.ws[q.ws.size() == 1 ? 0 : m];
      const int64_t wz = q.wz[q.wz.size() == 1 ? 0 : m];
      const float xw = q.xs * ws;
      const float mult = xw / q.ys;
      for (int64_t o0 = 0; o0 < out[0]; ++o0)
        for (int64_t o1 = 0; o1 < out[1]; ++o1)
          for (int64_t o2 = 0; o2 < out[2]; ++o2, ++yi) {
            int64_t acc = q.bias.empty() ? 0 : q.bias[m];
            for (int64_t cg = 0; cg < cpg; ++cg) {
              const int64_t c = (m / mpg) * cpg + cg;
              for (int64_t k0 = 0; k0 < k[0]; ++k0)
                for (int64_t k1 = 0; k1 < k[1]; ++k1)
                  for (int64_t k2 = 0; k2 < k[2]; ++k2) {
                    const int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0], i1 = o1 * s[1] - pb[1] + k1 * d[1],
                                  i2 = o2 * s[2] - pb[2] + k2 * d[2];
                    if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) continue;
                    const int64_t xv = x.as_int64((((n * g.C + c) * in[0] + i0) * in[1] + i1) * in[2] + i2);
                    const int64_t wv = w.as_int64((((m * cpg + cg) * k[0] + k0) * k[1] + k1) * k[2] + k2);
                    acc += (xv - q.xz) * (wv - wz);
                  }
            }
            const float accf = static_cast<float>(static_cast<int32_t>(acc));
            const float v = accf * mult;
            double r = std::nearbyint(static_cast<double>(v)) + static_cast<double>(q.yz);
            r = std::min<double>(std::max<double>(r, static_cast<double>(qlo(q.yt))),
                                 static_cast<double>(qhi(q.yt)));
            if (q.yt == DType::UInt8)
              y.data<uint8_t>()[yi] = static_cast<uint8_t>(r);
            else
              y.data<int8_t>()[yi] = static_cast<int8_t>(r);
          }
    }
  return y;
}

OpRun make_run(const Geom& g, const Tensor& x, const Tensor& w, const QParams& q) {
  OpRun r = qconv_op();
  r.attrs = g.attrs();
  const int64_t nw = static_cast<int64_t>(q.ws.size());
  std::vector<int64_t> wz(q.wz.begin(), q.wz.end());
  r.inputs = {dyn(x),
              cst(Tensor::scalar<float>(q.xs)),
              cst(q_tensor(x.dtype(), {}, {q.xz})),
              cst(w),
              cst(nw == 1 ? Tensor::scalar<float>(q.ws[0]) : Tensor::from_vector<float>({nw}, q.ws)),
              cst(q_tensor(w.dtype(), nw == 1 ? Shape{} : Shape{nw}, wz)),
              cst(Tensor::scalar<float>(q.ys))};
  r.inputs.push_back(cst(q_tensor(q.yt, {}, {q.yz})));
  if (!q.bias.empty()) r.inputs.push_back(cst(Tensor::from_vector<int32_t>({g.M}, q.bias)));
  return r;
}

TEST(QLinearConv, MatchesOnnxRuntimeFormulaOnRandomGeometry) {
  int ties = 0, saturated = 0;
  for (int iter = 0; iter < 320; ++iter) {
    Geom g = random_geom();
    const DType xt = iter % 2 ? DType::UInt8 : DType::Int8;
    const DType wt = (iter / 2) % 2 ? DType::Int8 : DType::UInt8;
    const bool per_channel = (iter / 4) % 2, pow2 = iter % 3 == 0, extremes = iter % 5 == 0;
    QParams q;
    q.yt = (iter / 8) % 2 ? DType::Int8 : DType::UInt8;
    auto scale = [&] {
      return pow2 ? std::ldexp(1.0f, -static_cast<int>(rand_int(3, 8)))
                  : std::exp(std::uniform_real_distribution<float>(-7, -2)(rng()));
    };
    q.xs = scale();
    q.xz = random_zp(xt);
    const int64_t nw = per_channel ? g.M : 1;
    for (int64_t i = 0; i < nw; ++i) {
      q.ws.push_back(scale());
      q.wz.push_back(random_zp(wt));  // per-channel zero points differ
    }
    if (iter % 2 == 0)
      for (int64_t m = 0; m < g.M; ++m) q.bias.push_back(static_cast<int32_t>(rand_int(-40000, 40000)));
    Tensor x = random_q(xt, g.shape(g.N, g.C, g.in), extremes);
    Tensor w = random_q(wt, g.shape(g.M, g.C / g.group, g.k), extremes || iter % 4 == 1);
    // y_s near the accumulators' spread so that outputs mostly stay in range; a power of two for ties.
    const int64_t terms =
        (g.C / g.group) * std::accumulate(g.k.begin(), g.k.end(), int64_t{1}, std::multiplies<>());
    q.ys = q.xs * q.ws[0] * static_cast<float>(std::max<int64_t>(1, terms)) * 40.0f;
    if (pow2) q.ys = std::ldexp(1.0f, static_cast<int>(std::lround(std::log2(q.ys))));
    q.yz = random_zp(q.yt);
    SCOPED_TRACE(std::string(dtype_name(xt)) + " x " + dtype_name(wt) + " -> " + dtype_name(q.yt) + " " +
                 g.str() + (per_channel ? " per-channel" : " per-tensor") + (pow2 ? " pow2" : "") +
                 (extremes ? " extremes" : "") + (q.bias.empty() ? "" : " bias"));
    Tensor want = reference(g, x, w, q);
    for (int64_t i = 0; i < want.numel(); ++i)
      saturated += want.as_int64(i) == qlo(q.yt) || want.as_int64(i) == qhi(q.yt);
    ties += pow2;
    for (const char* isa : {"ref", "auto"}) {
      OpRun r = make_run(g, x, w, q);
      r.options.isa = isa;
      r.threads = 1 + iter % 2;
      EXPECT_TRUE(tensors_equal(run_op(r)[0], want)) << "isa " << isa;
    }
  }
  EXPECT_GT(ties, 0);
  EXPECT_GT(saturated, 0);
}

TEST(QLinearConv, ExactTiesAndExtremeProducts) {
  // One output per channel: 1×1 conv over 2 channels. Channel products 255·(−128) and 255·127
  // appear (x = 255, x_zp = 0; w = −128 or 127, w_zp = 0). M = x_s·w_s/y_s = 1/2 or 1/256.
  Tensor x = q_tensor(DType::UInt8, {1, 2, 1, 1}, {255, 255});
  Tensor w = q_tensor(DType::Int8, {4, 2, 1, 1}, {-128, -128, 127, 127, 1, 0, 1, 2});
  OpRun r = qconv_op();
  r.inputs = {dyn(x),
              cst(Tensor::scalar<float>(1.0f)),
              cst(Tensor::scalar<uint8_t>(0)),
              cst(w),
              cst(Tensor::from_vector<float>({4}, {1.0f / 256, 1.0f / 256, 0.5f, 0.5f})),
              cst(q_tensor(DType::Int8, {4}, {0, 0, 0, 0})),
              cst(Tensor::scalar<float>(1.0f)),
              cst(Tensor::scalar<uint8_t>(128)),
              cst(Tensor::from_vector<int32_t>({4}, {0, 0, 0, 0}))};
  // acc: −65280, 64770, 255, 765 → ·M: −255, 253.0078, 127.5, 382.5 → rne: −255, 253, 128, 382
  // → +128: 0 (saturated from −127), 255 (saturated from 381), 255 (256), 255 (510).
  for (const char* isa : {"ref", "auto"}) {
    r.options.isa = isa;
    Tensor y = run_op(r)[0];
    EXPECT_EQ(y.data<uint8_t>()[0], 0) << isa;
    EXPECT_EQ(y.data<uint8_t>()[1], 255) << isa;
    EXPECT_EQ(y.data<uint8_t>()[2], 255) << isa;
    EXPECT_EQ(y.data<uint8_t>()[3], 255) << isa;
  }
  // Ties inside the range: acc = 1, 3, −1, −3 with M = 1/2 → 0.5, 1.5, −0.5, −1.5 → 0, 2, 0, −2.
  Tensor x2 = q_tensor(DType::UInt8, {1, 1, 1, 4}, {129, 131, 127, 125});
  OpRun r2 = qconv_op();
  r2.inputs = {dyn(x2),
               cst(Tensor::scalar<float>(0.5f)),
               cst(Tensor::scalar<uint8_t>(128)),
               cst(q_tensor(DType::Int8, {1, 1, 1, 1}, {1})),
               cst(Tensor::scalar<float>(1.0f)),
               cst(Tensor::scalar<int8_t>(0)),
               cst(Tensor::scalar<float>(1.0f)),
               cst(Tensor::scalar<uint8_t>(11))};
  for (const char* isa : {"ref", "auto"}) {
    r2.options.isa = isa;
    Tensor y = run_op(r2)[0];
    const std::vector<int> want = {11, 13, 11, 9};
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y.data<uint8_t>()[i], want[i]) << isa << " element " << i;
  }
}

TEST(QLinearConv, Errors) {
  auto base = [] {
    OpRun r = qconv_op();
    r.inputs = {dyn(random_q(DType::UInt8, {1, 4, 5, 5}, false)),
                cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<uint8_t>(3)),
                cst(random_q(DType::Int8, {6, 4, 3, 3}, false)),
                cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<int8_t>(0)),
                cst(Tensor::scalar<float>(0.2f)),
                cst(Tensor::scalar<uint8_t>(5))};
    return r;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t idx : {1, 4, 6})
    for (float bad : {0.0f, -1.0f, nan}) {
      OpRun r = base();
      r.inputs[idx] = cst(Tensor::scalar<float>(bad));
      expect_error(r, "scale must be finite and > 0");
    }
  OpRun r = base();
  r.inputs.push_back(cst(Tensor::from_vector<int32_t>({5}, {0, 0, 0, 0, 0})));
  expect_error(r, "B must have shape [6], has [5]");
  r = base();
  r.inputs.push_back(cst(Tensor(DType::Int32, {1, 6})));
  expect_error(r, "B must have shape [6], has [1,6]");
  r = base();
  r.inputs.push_back(cst(Tensor(DType::Float32, {6})));
  expect_error(r, "B must be int32, got float32");
  r = base();
  r.attrs.set("group", int64_t{3});
  expect_error(r, "group 3 does not divide the input channels 4");
  r = base();
  r.attrs.set("dilations", std::vector<int64_t>{3, 3});
  expect_error(r, "larger than the padded input");
  r = base();
  r.inputs[0] = dyn(Tensor(DType::Float32, {1, 4, 5, 5}));
  expect_error(r, "x (input 0) must be uint8 or int8, got float32");
  r = base();
  r.inputs[5] = cst(Tensor::scalar<uint8_t>(0));
  expect_error(r, "w zero point must be int8, got uint8");
  r = base();
  r.inputs[4] = cst(Tensor::from_vector<float>({4}, {1, 1, 1, 1}));
  expect_error(r, "w scale must be a scalar or have 6 elements");
  r = base();
  r.inputs[3] = dyn(random_q(DType::Int8, {6, 4, 3, 3}, false));
  expect_error(r, "must be a constant");
  r = base();
  r.inputs[7] = cst(Tensor::scalar<int32_t>(0));
  expect_error(r, "y zero point must be uint8 or int8");
}

}  // namespace

}  // namespace quint::test
