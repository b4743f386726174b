// explain for QuantizeLinear, QLinearAdd, QLinearMul, QLinearConcat, QLinearGlobalAveragePool,
// QLinearAveragePool, MaxPool, QLinearLeakyRelu and QLinearSigmoid: under every arithmetic, the scheme's result is the kernel's element when the
// kernel runs with that arithmetic; the ONNX Runtime scheme also equals an independent computation
// written here from the documented formulas, and the pitfalls compute what they say.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "arith/activation.h"
#include "op_harness.h"
#include "quint/ops/op.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(777);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

Tensor random_u8(const Shape& s) {
  Tensor t(DType::UInt8, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(rand_int(0, 255));
  return t;
}

std::vector<int64_t> unflatten(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

Explanation explain(const OpRun& r, const std::vector<int64_t>& idx) {
  const ops::OpDef* def = ops::Registry::builtin().find(r.domain, r.op_type, r.opset);
  EXPECT_TRUE(def && def->explain) << r.op_type << " has no explain";
  ops::NodeInfo info{"n", r.op_type, r.domain, r.opset};
  std::vector<const Tensor*> inputs;
  for (const OpInput& in : r.inputs) inputs.push_back(in.absent ? nullptr : &in.value);
  ops::ExplainContext ec{info, r.attrs, inputs, nullptr, idx};
  return def->explain(ec);
}

const ExplainScheme* scheme(const Explanation& e, Arith a) {
  for (const ExplainScheme& s : e.schemes)
    if (s.arith == a) return &s;
  return nullptr;
}

const ExplainStep* pitfall(const Explanation& e, const std::string& label) {
  for (const ExplainStep& s : e.pitfalls)
    if (s.label == label) return &s;
  return nullptr;
}

// Every element of the kernel's output under each arithmetic equals that arithmetic's scheme;
// `independent` gives the ONNX Runtime value of an element from the test's own formula.
template <class F>
void expect_schemes_match_kernels(OpRun r, int64_t samples, F independent) {
  std::vector<Tensor> outs;
  const Arith all[] = {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm};
  for (Arith a : all) {
    r.options.arith = a;
    outs.push_back(run_op(r)[0]);
  }
  const Tensor& y = outs[0];
  for (int64_t k = 0; k < samples; ++k) {
    const int64_t flat = samples >= y.numel() ? k % y.numel() : rand_int(0, y.numel() - 1);
    const std::vector<int64_t> idx = unflatten(flat, y.shape());
    SCOPED_TRACE(r.op_type + " element " + std::to_string(flat));
    const Explanation e = explain(r, idx);
    ASSERT_EQ(e.schemes.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      const ExplainScheme* s = scheme(e, all[i]);
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(s->result, outs[i].as_int64(flat)) << "arithmetic " << arith_name(all[i]);
      // pre_round rounds to the result unless saturation clamped it.
      const int64_t lo = y.dtype() == DType::Int8 ? -128 : 0, hi = lo + 255;
      // Compared as doubles: pre_round may be far beyond int64 (an input of 1e31), where the
      // conversion is undefined behaviour.
      const double rounded = std::nearbyint(s->pre_round);
      if (rounded > static_cast<double>(lo) && rounded < static_cast<double>(hi)) {
        EXPECT_LE(std::fabs(s->pre_round - static_cast<double>(s->result)), 0.5 + 1e-6) << arith_name(all[i]);
      }
    }
    EXPECT_EQ(scheme(e, Arith::Onnx)->result, independent(idx, flat));
  }
}

TEST(ExplainQops, QuantizeLinearPerTensorAndPerAxis) {
  Tensor x(DType::Float32, {1, 3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.data<float>()[i] = static_cast<float>(rand_int(-4000, 4000)) / 256.0f;  // many exact ties
  x.data<float>()[7] = 1e30f;                                                // saturates
  for (bool per_axis : {false, true}) {
    OpRun r;
    r.op_type = "QuantizeLinear";
    r.opset = 13;
    Tensor scale = per_axis ? Tensor::from_vector<float>({3}, {0.0625f, 0.03f, 0.5f}) : Tensor::scalar<float>(0.0625f);
    Tensor zp(DType::UInt8, per_axis ? Shape{3} : Shape{});
    for (int64_t i = 0; i < zp.numel(); ++i) zp.data<uint8_t>()[i] = static_cast<uint8_t>(100 + 20 * i);
    r.inputs = {dyn(x), cst(scale), cst(zp)};
    expect_schemes_match_kernels(r, x.numel(), [&](const std::vector<int64_t>& idx, int64_t flat) {
      const int64_t c = per_axis ? idx[1] : 0;
      const float q = x.data<float>()[flat] / scale.data<float>()[c];
      const double r = std::nearbyint(q) + zp.data<uint8_t>()[c];
      return static_cast<int64_t>(std::clamp(r, 0.0, 255.0));
    });
    const Explanation e = explain(r, {0, 1, 0, 3});
    const float xv = x.data<float>()[1 * 20 + 3];
    const float s = scale.data<float>()[per_axis ? 1 : 0];
    const int64_t z = zp.data<uint8_t>()[per_axis ? 1 : 0];
    ASSERT_NE(pitfall(e, "truncation"), nullptr);
    EXPECT_EQ(pitfall(e, "truncation")->value,
              std::to_string(std::clamp<int64_t>(static_cast<int64_t>(std::trunc(xv / s)) + z, 0, 255)));
  }
}

TEST(ExplainQops, QLinearAddSameShapeAndBroadcast) {
  for (bool broadcast : {false, true}) {
    const Shape as{1, 4, 3, 5}, bs = broadcast ? Shape{4, 1, 1} : as;
    Tensor a = random_u8(as), b = random_u8(bs);
    const float a_s = 0.05f, b_s = 0.0625f, c_s = 0.125f;
    const uint8_t a_zp = 120, b_zp = 3, c_zp = 0;  // C's zero point 0: a fused ReLU
    OpRun r;
    r.op_type = "QLinearAdd";
    r.domain = "com.microsoft";
    r.opset = 1;
    r.inputs = {dyn(a), cst(Tensor::scalar<float>(a_s)), cst(Tensor::scalar<uint8_t>(a_zp)),
                dyn(b), cst(Tensor::scalar<float>(b_s)), cst(Tensor::scalar<uint8_t>(b_zp)),
                cst(Tensor::scalar<float>(c_s)), cst(Tensor::scalar<uint8_t>(c_zp))};
    // ONNX Runtime's x86 formula (ops/arith/requant.h, measured on ONNX Runtime 1.30), written
    // out here: A is streamed (B is the broadcast one), so k folds A's zero point with an fma.
    const float ra = a_s / c_s, rb = b_s / c_s;
    const float k = static_cast<float>(c_zp) - std::fma(ra, static_cast<float>(a_zp), rb * static_cast<float>(b_zp));
    auto b_at = [&](const std::vector<int64_t>& idx) {
      return broadcast ? b.data<uint8_t>()[idx[1]] : b.data<uint8_t>()[((idx[0] * 4 + idx[1]) * 3 + idx[2]) * 5 + idx[3]];
    };
    expect_schemes_match_kernels(r, a.numel(), [&](const std::vector<int64_t>& idx, int64_t flat) {
      const float v = std::fma(static_cast<float>(a.data<uint8_t>()[flat]), ra,
                               std::fma(static_cast<float>(b_at(idx)), rb, k));
      return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(v)), 0, 255);
    });
    const Explanation e = explain(r, {0, 2, 1, 4});
    const int64_t av = a.data<uint8_t>()[((0 * 4 + 2) * 3 + 1) * 5 + 4], bv = b_at({0, 2, 1, 4});
    ASSERT_NE(pitfall(e, "8-bit sum"), nullptr);
    EXPECT_EQ(pitfall(e, "8-bit sum")->value, std::to_string((av + bv) % 256));
    bool relu_noted = false;
    for (const std::string& d : e.details) relu_noted = relu_noted || d.find("ReLU") != std::string::npos;
    EXPECT_TRUE(relu_noted);
  }
}

TEST(ExplainQops, QLinearGlobalAveragePoolBothLayouts) {
  for (int64_t channels_last : {0, 1}) {
    const Shape xs = channels_last ? Shape{2, 3, 3, 6} : Shape{2, 6, 3, 3};
    Tensor x = random_u8(xs);
    const float x_s = 0.04f, y_s = 0.04f;
    const uint8_t x_zp = 10, y_zp = 7;
    OpRun r;
    r.op_type = "QLinearGlobalAveragePool";
    r.domain = "com.microsoft";
    r.opset = 1;
    r.attrs.set("channels_last", channels_last);
    r.inputs = {dyn(x), cst(Tensor::scalar<float>(x_s)), cst(Tensor::scalar<uint8_t>(x_zp)),
                cst(Tensor::scalar<float>(y_s)), cst(Tensor::scalar<uint8_t>(y_zp))};
    expect_schemes_match_kernels(r, 12, [&](const std::vector<int64_t>& idx, int64_t) {
      const int64_t n = idx[0], c = channels_last ? idx[3] : idx[1];
      int64_t sum = 0;
      for (int64_t p = 0; p < 9; ++p)
        sum += channels_last ? x.data<uint8_t>()[(n * 9 + p) * 6 + c] : x.data<uint8_t>()[(n * 6 + c) * 9 + p];
      const float scale = x_s / (y_s * 9.0f);
      const float v = static_cast<float>(sum - 9 * int64_t{x_zp}) * scale;
      return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(v)) + y_zp, 0, 255);
    });
  }
}

TEST(ExplainQops, QLinearMulSameShapeAndPerChannel) {
  for (bool per_channel : {false, true}) {
    const Shape as{1, 4, 3, 5}, bs = per_channel ? Shape{1, 4, 1, 1} : as;
    Tensor a = random_u8(as), b = random_u8(bs);
    const float a_s = 0.05f, b_s = 0.0625f, c_s = 0.02f;
    const uint8_t a_zp = 120, b_zp = 3, c_zp = 9;
    OpRun r;
    r.op_type = "QLinearMul";
    r.domain = "com.microsoft";
    r.opset = 1;
    r.inputs = {dyn(a), cst(Tensor::scalar<float>(a_s)), cst(Tensor::scalar<uint8_t>(a_zp)),
                dyn(b), cst(Tensor::scalar<float>(b_s)), cst(Tensor::scalar<uint8_t>(b_zp)),
                cst(Tensor::scalar<float>(c_s)), cst(Tensor::scalar<uint8_t>(c_zp))};
    auto b_at = [&](const std::vector<int64_t>& idx) {
      return per_channel ? b.data<uint8_t>()[idx[1]] : b.data<uint8_t>()[((idx[0] * 4 + idx[1]) * 3 + idx[2]) * 5 + idx[3]];
    };
    // ONNX Runtime's MLAS formula, written out here: the product exact, one multiplier, the zero
    // point added in float before rounding.
    const float mult = (a_s * b_s) / c_s;
    expect_schemes_match_kernels(r, a.numel(), [&](const std::vector<int64_t>& idx, int64_t flat) {
      const int64_t p = (int64_t{a.data<uint8_t>()[flat]} - a_zp) * (int64_t{b_at(idx)} - b_zp);
      const float v = static_cast<float>(p) * mult + static_cast<float>(c_zp);
      return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(v)), 0, 255);
    });
  }
}

TEST(ExplainQops, QLinearConcatCopiedAndRequantizedInputs) {
  const Tensor x0 = random_u8({1, 3, 2, 4}), x1 = random_u8({1, 5, 2, 4});
  const float y_s = 0.1f, x1_s = 0.037f;
  const uint8_t y_zp = 12, x1_zp = 200;
  OpRun r;
  r.op_type = "QLinearConcat";
  r.domain = "com.microsoft";
  r.opset = 1;
  r.attrs.set("axis", int64_t{1});
  r.inputs = {cst(Tensor::scalar<float>(y_s)), cst(Tensor::scalar<uint8_t>(y_zp)),
              dyn(x0), cst(Tensor::scalar<float>(y_s)), cst(Tensor::scalar<uint8_t>(y_zp)),  // copied
              dyn(x1), cst(Tensor::scalar<float>(x1_s)), cst(Tensor::scalar<uint8_t>(x1_zp))};
  expect_schemes_match_kernels(r, 64, [&](const std::vector<int64_t>& idx, int64_t) -> int64_t {
    const int64_t c = idx[1], hw = idx[2] * 4 + idx[3];
    if (c < 3) return x0.data<uint8_t>()[c * 8 + hw];
    const float real = x1_s * static_cast<float>(int{x1.data<uint8_t>()[(c - 3) * 8 + hw]} - x1_zp);
    return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(real / y_s)) + y_zp, 0, 255);
  });
}

// MaxPool (3×3, stride 2, pads 1: windows at the border read padding, which never wins) and
// QLinearAveragePool (both count_include_pad, both layouts, and a kernel covering the whole input,
// where ONNX Runtime switches to the integer global formula).
TEST(ExplainQops, MaxPoolWindowsWithPadding) {
  const Tensor x = random_u8({1, 3, 7, 6});
  OpRun r;
  r.op_type = "MaxPool";
  r.opset = 13;
  r.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  r.attrs.set("strides", std::vector<int64_t>{2, 2});
  r.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  r.inputs = {dyn(x)};
  expect_schemes_match_kernels(r, 3 * 4 * 3, [&](const std::vector<int64_t>& idx, int64_t) {
    int64_t m = -1;
    for (int64_t kh = 0; kh < 3; ++kh)
      for (int64_t kw = 0; kw < 3; ++kw) {
        const int64_t ih = idx[2] * 2 - 1 + kh, iw = idx[3] * 2 - 1 + kw;
        if (ih >= 0 && ih < 7 && iw >= 0 && iw < 6) m = std::max<int64_t>(m, x.data<uint8_t>()[(idx[1] * 7 + ih) * 6 + iw]);
      }
    return m;
  });
}

TEST(ExplainQops, QLinearAveragePoolPaddingLayoutsAndGlobal) {
  for (int variant = 0; variant < 5; ++variant) {
    const bool channels_last = variant % 2 == 1, include_pad = variant >= 2, global = variant == 4;
    const int64_t C = 3, H = 5, W = 6;
    const Tensor x = random_u8(channels_last ? Shape{1, H, W, C} : Shape{1, C, H, W});
    const float x_s = 0.03f, y_s = 0.05f;
    const uint8_t x_zp = 77, y_zp = 20;
    OpRun r;
    r.op_type = "QLinearAveragePool";
    r.domain = "com.microsoft";
    r.opset = 1;
    r.attrs.set("channels_last", int64_t{channels_last});
    r.attrs.set("count_include_pad", int64_t{include_pad});
    const int64_t kh = global ? H : 3, kw = global ? W : 3, pad = global ? 0 : 1;
    r.attrs.set("kernel_shape", std::vector<int64_t>{kh, kw});
    r.attrs.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
    r.inputs = {dyn(x), cst(Tensor::scalar<float>(x_s)), cst(Tensor::scalar<uint8_t>(x_zp)),
                cst(Tensor::scalar<float>(y_s)), cst(Tensor::scalar<uint8_t>(y_zp))};
    auto at = [&](int64_t c, int64_t h, int64_t w) -> int32_t {
      return x.data<uint8_t>()[channels_last ? (h * W + w) * C + c : (c * H + h) * W + w];
    };
    SCOPED_TRACE("variant " + std::to_string(variant));
    expect_schemes_match_kernels(r, 40, [&](const std::vector<int64_t>& idx, int64_t) -> int64_t {
      const int64_t c = channels_last ? idx[3] : idx[1], oh = channels_last ? idx[1] : idx[2], ow = channels_last ? idx[2] : idx[3];
      if (global) {  // ONNX Runtime's integer formula
        int32_t acc = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) acc += at(c, h, w) - x_zp;
        const float s = x_s / (y_s * static_cast<float>(H * W));
        return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(static_cast<float>(acc) * s)) + y_zp, 0, 255);
      }
      float sum = 0;
      int64_t valid = 0;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t h = oh - pad + i, w = ow - pad + j;
          if (h < 0 || h >= H || w < 0 || w >= W) continue;
          sum += static_cast<float>(at(c, h, w) - x_zp) * x_s;
          ++valid;
        }
      const float avg = sum / static_cast<float>(include_pad ? kh * kw : valid);
      const float v = avg / y_s + static_cast<float>(y_zp);
      return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(v)), 0, 255);
    });
  }
}

TEST(ExplainQops, QLinearLeakyReluAndSigmoid) {
  for (const bool sigmoid : {false, true}) {
    Tensor x = random_u8({1, 3, 4, 5});
    const float x_s = 0.07f, y_s = sigmoid ? 1.0f / 256 : 0.05f, alpha = 0.1f;
    const uint8_t x_zp = 131, y_zp = sigmoid ? 0 : 100;
    OpRun r;
    r.op_type = sigmoid ? "QLinearSigmoid" : "QLinearLeakyRelu";
    r.domain = "com.microsoft";
    r.opset = 1;
    if (!sigmoid) r.attrs.set("alpha", alpha);
    r.inputs = {dyn(x), cst(Tensor::scalar<float>(x_s)), cst(Tensor::scalar<uint8_t>(x_zp)),
                cst(Tensor::scalar<float>(y_s)), cst(Tensor::scalar<uint8_t>(y_zp))};
    // ONNX Runtime's table entry: dequantize, the float function, its QuantizeLinear (a division).
    expect_schemes_match_kernels(r, x.numel(), [&](const std::vector<int64_t>&, int64_t flat) {
      const float d = x_s * static_cast<float>(int{x.data<uint8_t>()[flat]} - x_zp);
      const float f = sigmoid ? ops::arith::ort_sigmoid(d) : (d >= 0.0f ? d : alpha * d);
      return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(f / y_s)) + y_zp, 0, 255);
    });
  }
}

TEST(ExplainQops, IndexOutsideTheOutputIsAClearError) {
  OpRun r;
  r.op_type = "QuantizeLinear";
  r.opset = 13;
  r.inputs = {dyn(Tensor(DType::Float32, {1, 2})), cst(Tensor::scalar<float>(0.5f)), cst(Tensor::scalar<uint8_t>(3))};
  try {
    explain(r, {0, 2});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the tensor's shape"), std::string::npos) << e.what();
  }
}

}  // namespace

}  // namespace quint::test
