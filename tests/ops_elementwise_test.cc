// Elementwise operators against naive references written here from the ONNX spec's formulas:
// every output element is computed on its own from its multi-index (broadcasting by index
// arithmetic, no shared code with the kernels), on random shapes and the integer extremes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arith/activation.h"
#include "model_builder.h"
#include "op_harness.h"
#include "quint/session.h"
#include "reference_runs.h"
#include "test_paths.h"
#include "x86/cpu.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(1234);
  return g;
}

// Random values of T; integers over their whole range (extremes included), reals in [-lim, lim].
template <class T>
Tensor random_tensor(const Shape& shape, double lim = 4.0) {
  Tensor t(dtype_of<T>, shape);
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if constexpr (std::is_same_v<T, bool>) {
      p[i] = rng()() & 1;
    } else if constexpr (std::is_floating_point_v<T>) {
      p[i] = static_cast<T>(std::uniform_real_distribution<double>(-lim, lim)(rng()));
    } else {
      // Mix full-range values with small ones so that both wrap-around and ordinary results occur.
      if (rng()() % 4 == 0) {
        p[i] = static_cast<T>(std::uniform_int_distribution<int64_t>(-5, 5)(rng()));
      } else {
        uint64_t bits = (static_cast<uint64_t>(rng()()) << 32) | rng()();
        std::memcpy(&p[i], &bits, sizeof(T));
      }
    }
  }
  return t;
}

std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

// Flat index into `in` of the element that numpy broadcasting reads for output index `out_idx`.
int64_t broadcast_index(const std::vector<int64_t>& out_idx, const Shape& in) {
  const size_t off = out_idx.size() - in.size();
  int64_t flat = 0;
  for (size_t d = 0; d < in.size(); ++d) flat = flat * in[d] + (in[d] == 1 ? 0 : out_idx[off + d]);
  return flat;
}

Shape numpy_broadcast(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes)
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t& o = out[rank - s.size() + d];
      if (s[d] != 1) o = s[d];
    }
  return out;
}

// Reference for an n-input elementwise op with broadcasting: out[i] = f(in_0[...], in_1[...], …).
template <class R, class T, class F>
Tensor reference(const std::vector<Tensor>& ins, F f) {
  std::vector<Shape> shapes;
  for (const auto& t : ins) shapes.push_back(t.shape());
  const Shape out_shape = numpy_broadcast(shapes);
  Tensor out(dtype_of<R>, out_shape);
  for (int64_t i = 0; i < out.numel(); ++i) {
    const auto idx = unravel(i, out_shape);
    std::vector<T> args;
    for (const auto& t : ins) args.push_back(t.data<T>()[broadcast_index(idx, t.shape())]);
    out.data<R>()[i] = f(args);
  }
  return out;
}

// A random output shape and two input shapes that broadcast to it (leading dims dropped, some
// dims set to 1; dims of 0 now and then).
std::pair<Shape, Shape> random_broadcast_pair() {
  std::uniform_int_distribution<int> rank_d(0, 4), dim_d(1, 5);
  Shape out(static_cast<size_t>(rank_d(rng())));
  for (auto& d : out) d = rng()() % 12 == 0 ? 0 : dim_d(rng());
  auto derive = [&] {
    Shape s(out.begin() + static_cast<long>(rng()() % (out.size() + 1)), out.end());
    for (auto& d : s)
      if (rng()() % 3 == 0) d = 1;
    return s;
  };
  return {derive(), derive()};
}

OpRun binary(const std::string& op, Tensor a, Tensor b, bool constant = false) {
  OpRun r;
  r.op_type = op;
  r.opset = 14;
  r.inputs = {constant ? cst(std::move(a)) : dyn(std::move(a)), dyn(std::move(b))};
  return r;
}

// Wrap-around integer results computed through 64-bit arithmetic and truncated to T.
template <class T>
T wrap(uint64_t v) {
  return static_cast<T>(v);
}

template <class T>
void check_arithmetic() {
  SCOPED_TRACE(dtype_name(dtype_of<T>));
  for (int trial = 0; trial < 25; ++trial) {
    auto [sa, sb] = random_broadcast_pair();
    Tensor a = random_tensor<T>(sa), b = random_tensor<T>(sb);
    SCOPED_TRACE(shape_str(sa) + " op " + shape_str(sb));
    auto u = [](T v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); };
    auto add = [&](const std::vector<T>& v) -> T {
      if constexpr (std::is_floating_point_v<T>) return v[0] + v[1];
      else return wrap<T>(u(v[0]) + u(v[1]));
    };
    auto sub = [&](const std::vector<T>& v) -> T {
      if constexpr (std::is_floating_point_v<T>) return v[0] - v[1];
      else return wrap<T>(u(v[0]) - u(v[1]));
    };
    auto mul = [&](const std::vector<T>& v) -> T {
      if constexpr (std::is_floating_point_v<T>) return v[0] * v[1];
      else return wrap<T>(u(v[0]) * u(v[1]));
    };
    // Integer division truncates toward zero; x/0 = 0 and MIN/-1 = MIN by quint's definition.
    auto div = [&](const std::vector<T>& v) -> T {
      if constexpr (std::is_floating_point_v<T>) {
        return v[0] / v[1];
      } else {
        if (v[1] == 0) return 0;
        if constexpr (std::is_signed_v<T>)
          if (v[1] == -1) return wrap<T>(0 - u(v[0]));
        return static_cast<T>(v[0] / v[1]);
      }
    };
    const std::vector<std::pair<std::string, std::function<T(const std::vector<T>&)>>> ops = {
        {"Add", add}, {"Sub", sub}, {"Mul", mul}, {"Div", div}};
    for (const auto& [name, f] : ops) {
      SCOPED_TRACE(name);
      auto out = run_op(binary(name, a, b, trial % 2 == 0));
      EXPECT_TRUE(tensors_equal(out[0], reference<T, T>({a, b}, f)));
    }
    auto cmp = [&](const std::string& name, std::function<bool(T, T)> f) {
      SCOPED_TRACE(name);
      auto out = run_op(binary(name, a, b));
      EXPECT_TRUE(tensors_equal(out[0], reference<bool, T>({a, b}, [&](const std::vector<T>& v) { return f(v[0], v[1]); })));
    };
    cmp("Equal", [](T x, T y) { return x == y; });
    cmp("Less", [](T x, T y) { return x < y; });
    cmp("Greater", [](T x, T y) { return x > y; });
    cmp("LessOrEqual", [](T x, T y) { return x <= y; });
    cmp("GreaterOrEqual", [](T x, T y) { return x >= y; });
  }
}

TEST(Elementwise, ArithmeticAndComparisonsAllTypesRandomBroadcast) {
  check_arithmetic<float>();
  check_arithmetic<double>();
  check_arithmetic<int8_t>();
  check_arithmetic<uint8_t>();
  check_arithmetic<int16_t>();
  check_arithmetic<uint16_t>();
  check_arithmetic<int32_t>();
  check_arithmetic<uint32_t>();
  check_arithmetic<int64_t>();
  check_arithmetic<uint64_t>();
}

TEST(Elementwise, Int8AndUint8Extremes) {
  auto i8 = [](std::vector<int8_t> v) { return Tensor::from_vector<int8_t>({static_cast<int64_t>(v.size())}, v); };
  auto u8 = [](std::vector<uint8_t> v) { return Tensor::from_vector<uint8_t>({static_cast<int64_t>(v.size())}, v); };
  EXPECT_TRUE(tensors_equal(run_op(binary("Add", u8({255, 200, 0}), u8({1, 100, 0})))[0], u8({0, 44, 0})));
  EXPECT_TRUE(tensors_equal(run_op(binary("Sub", u8({0, 5}), u8({1, 10})))[0], u8({255, 251})));
  EXPECT_TRUE(tensors_equal(run_op(binary("Mul", u8({16, 255}), u8({16, 255})))[0], u8({0, 1})));
  EXPECT_TRUE(tensors_equal(run_op(binary("Add", i8({127, -128}), i8({1, -1})))[0], i8({-128, 127})));
  EXPECT_TRUE(tensors_equal(run_op(binary("Mul", i8({-128, -128}), i8({-1, 2})))[0], i8({-128, 0})));
  // Truncation toward zero, and the cases where ONNX Runtime traps.
  EXPECT_TRUE(tensors_equal(run_op(binary("Div", i8({-7, 7, -128, 5}), i8({2, -2, -1, 0})))[0], i8({-3, -3, -128, 0})));
  EXPECT_TRUE(tensors_equal(run_op(binary("Div", u8({255, 7}), u8({2, 0})))[0], u8({127, 0})));
  OpRun neg;
  neg.op_type = "Neg";
  neg.inputs = {dyn(i8({-128, 127, 0, -1}))};
  EXPECT_TRUE(tensors_equal(run_op(neg)[0], i8({-128, -127, 0, 1})));
  neg.op_type = "Abs";
  EXPECT_TRUE(tensors_equal(run_op(neg)[0], i8({-128, 127, 0, 1})));
  neg.op_type = "Relu";
  neg.opset = 14;
  EXPECT_TRUE(tensors_equal(run_op(neg)[0], i8({0, 127, 0, 0})));
}

TEST(Elementwise, IntegerDivisionOfInt32Extremes) {
  const int32_t mn = std::numeric_limits<int32_t>::min();
  auto t = [](std::vector<int32_t> v) { return Tensor::from_vector<int32_t>({static_cast<int64_t>(v.size())}, v); };
  EXPECT_TRUE(tensors_equal(run_op(binary("Div", t({mn, mn, 9, -9}), t({-1, 1, 0, 4})))[0], t({mn, mn, 0, -2})));
}

template <class T>
void check_unary(const std::string& op, std::function<T(T)> f, double rtol, double lim = 4.0, int opset = 13) {
  SCOPED_TRACE(op + " " + dtype_name(dtype_of<T>));
  for (int trial = 0; trial < 6; ++trial) {
    Shape s(static_cast<size_t>(rng()() % 4));
    for (auto& d : s) d = 1 + rng()() % 7;
    if (trial == 0) s = {0, 3};
    Tensor x = random_tensor<T>(s, lim);
    OpRun r;
    r.op_type = op;
    r.opset = opset;
    r.inputs = {dyn(x)};
    Tensor want = reference<T, T>({x}, [&](const std::vector<T>& v) { return f(v[0]); });
    if (rtol == 0) EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
    else EXPECT_TRUE(tensors_close(run_op(r)[0], want, rtol, 0));
  }
}

TEST(Elementwise, UnaryMathAgainstFormulas) {
  // Reals: the formula in double, rounded once; the kernels compute in float (rtol 1e-6).
  // (Float Sigmoid and Tanh are ONNX Runtime's approximations: SigmoidAndTanhAreOnnxRuntimes.)
  check_unary<double>("Sigmoid", [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 1e-14, 30);
  check_unary<double>("Tanh", [](double x) { return std::tanh(x); }, 1e-14, 30);
  check_unary<float>("Exp", [](float x) { return static_cast<float>(std::exp(double(x))); }, 1e-6);
  check_unary<float>("Log", [](float x) { return static_cast<float>(std::log(double(x))); }, 1e-6);
  // Exactly rounded operations: bit-exact.
  check_unary<float>("Sqrt", [](float x) { return std::sqrt(x); }, 0);
  check_unary<float>("Reciprocal", [](float x) { return 1.0f / x; }, 0);
  check_unary<float>("Neg", [](float x) { return -x; }, 0);
  check_unary<float>("Abs", [](float x) { return std::fabs(x); }, 0);
  check_unary<float>("Floor", [](float x) { return std::floor(x); }, 0);
  check_unary<float>("Ceil", [](float x) { return std::ceil(x); }, 0);
  check_unary<float>("Relu", [](float x) { return x > 0 ? x : 0.0f; }, 0, 4.0, 14);
  check_unary<double>("Round", [](double x) { return std::nearbyint(x); }, 0);
  check_unary<int32_t>("Relu", [](int32_t x) { return x > 0 ? x : 0; }, 0, 4.0, 14);
  check_unary<int64_t>("Abs", [](int64_t x) { return x == std::numeric_limits<int64_t>::min() ? x : std::abs(x); }, 0);
  check_unary<uint16_t>("Abs", [](uint16_t x) { return x; }, 0);
}

// Values that exercise the formula: random normals and uniforms, random bit patterns (huge,
// tiny, denormal, inf and NaN included), ±0, ±inf, NaN at the start, in the middle and in the
// last, scalar-tail positions.
Tensor hard_inputs(int64_t n) {
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::uniform_real_distribution<float> uni(-7.0f, 7.0f);
  Tensor x(DType::Float32, {n});
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (i % 3 == 0) p[i] = normal(rng());
    else if (i % 3 == 1) p[i] = uni(rng());
    else {
      const uint32_t bits = static_cast<uint32_t>(rng()());
      std::memcpy(&p[i], &bits, 4);
    }
  }
  const float special[] = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY, 0.0f, -0.0f, 3.0f, -3.0f, 2.5f, -2.5f};
  for (int64_t i = 0; i < 10 && i < n; ++i) p[i] = special[i];
  if (n > 20) p[n / 2] = p[n - 1] = std::nanf("");
  return x;
}

TEST(Elementwise, SigmoidExtremesDoNotOverflow) {
  OpRun r;
  r.op_type = "Sigmoid";
  r.inputs = {dyn(Tensor::from_vector<double>({4}, {-800.0, -720.0, 0.0, 800.0}))};
  Tensor y = run_op(r)[0];
  EXPECT_EQ(y.data<double>()[0], 0.0);
  EXPECT_GT(y.data<double>()[1], 0.0);  // e^-720 ≈ 3e-313, a double denormal: not flushed to NaN/0 by overflow
  EXPECT_EQ(y.data<double>()[2], 0.5);
  EXPECT_EQ(y.data<double>()[3], 1.0);
}

// Float Sigmoid and Tanh are ONNX Runtime's rational approximations (ops/arith/activation.h):
// within 3e-7 of the true functions everywhere, and these values, measured from ONNX Runtime
// 1.30 (where they differ from the correctly rounded result, it is by design).
TEST(Elementwise, SigmoidAndTanhAreOnnxRuntimes) {
  const std::vector<float> x = {17.7f, -17.7f, 0.1f, -3.25f, 1e-30f, 8.9f, -8.9f, 5.0f, -200.0f, 200.0f};
  const uint32_t sigmoid_bits[] = {0x3f800000, 0x33000000, 0x3f066509, 0x3d18e410, 0x3f000000,
                                   0x3f7ff710, 0x390f0000, 0x3f7e4960, 0x00000000, 0x3f800000};
  const uint32_t tanh_bits[] = {0x3f800000, 0xbf800000, 0x3dcc1ebb, 0xbf7f3b3e, 0x0da2425f,
                                0x3f800000, 0xbf800000, 0x3f7ffa0c, 0xbf800000, 0x3f800000};
  for (const char* op : {"Sigmoid", "Tanh"}) {
    SCOPED_TRACE(op);
    const bool sig = std::string(op) == "Sigmoid";
    OpRun r;
    r.op_type = op;
    // The pinned values, then a dense sweep over [-30, 30] against the true function.
    Tensor in(DType::Float32, {static_cast<int64_t>(x.size()) + 600001});
    float* p = in.data<float>();
    std::copy(x.begin(), x.end(), p);
    for (int64_t i = 0; i <= 600000; ++i) p[x.size() + static_cast<size_t>(i)] = -30.0f + static_cast<float>(i) * 1e-4f;
    r.inputs = {dyn(in)};
    const Tensor y = run_op(r)[0];
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t got;
      std::memcpy(&got, &y.data<float>()[i], 4);
      EXPECT_EQ(got, sig ? sigmoid_bits[i] : tanh_bits[i]) << "x = " << x[i];
    }
    double worst = 0;
    for (int64_t i = static_cast<int64_t>(x.size()); i < in.numel(); ++i) {
      const double v = p[i], exact = sig ? 1.0 / (1.0 + std::exp(-v)) : std::tanh(v);
      worst = std::max(worst, std::fabs(y.data<float>()[i] - exact));
    }
    EXPECT_LT(worst, 3e-7);
  }
}

// DequantizeLinear → Sigmoid → QuantizeLinear: ONNX Runtime fuses the unit into QLinearSigmoid (a
// 256-entry table of the same float computation), and so does quint; every level under 96 random
// parameter sets gives the same integers, under parameters where a correctly rounded sigmoid
// would not.
TEST(Elementwise, QdqSigmoidUnitMatchesOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  Tensor xu(DType::UInt8, {256}), xs(DType::Int8, {256});
  for (int i = 0; i < 256; ++i) {
    xu.data<uint8_t>()[i] = static_cast<uint8_t>(i);
    xs.data<int8_t>()[i] = static_cast<int8_t>(i - 128);
  }
  ModelBuilder b;
  b.opset("", 13);
  b.input("xu", DType::UInt8, {256}).input("xs", DType::Int8, {256});
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<std::string> outs;
  // The unit's integers for a sigmoid: y = sat(rne(fl32(f(fl32((q − zp)·s)) / s_out)) + zp_out).
  auto unit_levels = [](bool s8, float in_scale, int in_zp, float out_scale, int out_zp, auto f) {
    std::vector<int> y(256);
    for (int i = 0; i < 256; ++i) {
      const int q = s8 ? i - 128 : i;
      const float v = f(static_cast<float>(q - in_zp) * in_scale) / out_scale;
      y[static_cast<size_t>(i)] = std::clamp(static_cast<int>(std::nearbyint(v)) + out_zp, s8 ? -128 : 0, s8 ? 127 : 255);
    }
    return y;
  };
  auto libm_sigmoid = [](float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x)))); };
  auto onnx_sigmoid = [](float x) { return ops::arith::ort_sigmoid(x); };
  int discriminating = 0;
  for (int k = 0; k < 96; ++k) {
    const bool s8 = k % 4 == 3;
    const std::string id = std::to_string(k);
    float in_scale = 0, out_scale = 0;
    int in_zp = 0, out_zp = 0;
    // The first 16 sets: parameters under which the correctly rounded sigmoid would give another
    // integer somewhere (about one set in a few thousand qualifies), so that the test tells the two apart.
    for (int tries = 0; tries < (k < 16 ? 100000 : 1); ++tries) {
      in_scale = std::exp(std::log(1e-3f) + unit(rng()) * (std::log(0.5f) - std::log(1e-3f)));
      // Output scales around 1/255 (the sigmoid's range), and coarser ones.
      out_scale = (1.0f / 255.0f) * std::exp(unit(rng()) * std::log(8.0f)) * (k % 8 == 0 ? 16.0f : 1.0f);
      in_zp = static_cast<int>(rng()() % 256) - (s8 ? 128 : 0);
      out_zp = static_cast<int>(rng()() % 64) - (s8 ? 128 : 0);
      if (unit_levels(s8, in_scale, in_zp, out_scale, out_zp, libm_sigmoid) !=
          unit_levels(s8, in_scale, in_zp, out_scale, out_zp, onnx_sigmoid)) {
        ++discriminating;
        break;
      }
    }
    auto zp = [&](int v) { return s8 ? Tensor::scalar<int8_t>(static_cast<int8_t>(v)) : Tensor::scalar<uint8_t>(static_cast<uint8_t>(v)); };
    b.initializer("is" + id, Tensor::scalar<float>(in_scale)).initializer("iz" + id, zp(in_zp));
    b.initializer("os" + id, Tensor::scalar<float>(out_scale)).initializer("oz" + id, zp(out_zp));
    b.node("DequantizeLinear", {s8 ? "xs" : "xu", "is" + id, "iz" + id}, {"d" + id});
    b.node("Sigmoid", {"d" + id}, {"s" + id});
    b.node("QuantizeLinear", {"s" + id, "os" + id, "oz" + id}, {"y" + id});
    b.output("y" + id, s8 ? DType::Int8 : DType::UInt8);
    outs.push_back("y" + id);
  }
  EXPECT_GE(discriminating, 8) << "too few parameter sets tell ONNX Runtime's sigmoid from libm's";
  const std::string path = b.save("qdq_sigmoid.onnx");
  expect_matches_ort(path, {{"xu", xu}, {"xs", xs}}, outs);
}

// CPUs without FMA instructions get the same bits (libm's fma is exact too).
TEST(Elementwise, SigmoidTanhAndErfWithoutFmaInstructionsAreTheSame) {
  const Tensor x = hard_inputs(200003);
  const float* p = x.data<float>();
  std::vector<float> a(static_cast<size_t>(x.numel())), b(a.size());
  ops::arith::ort_sigmoid(p, a.data(), x.numel());
  ops::arith::ort_sigmoid_portable(p, b.data(), x.numel());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  ops::arith::ort_tanh(p, a.data(), x.numel());
  ops::arith::ort_tanh_portable(p, b.data(), x.numel());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  ops::arith::ort_erf(p, a.data(), x.numel());
  ops::arith::ort_erf_portable(p, b.data(), x.numel());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

TEST(Elementwise, SigmoidTanhAndErfMatchOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const Tensor x = hard_inputs(1000003);  // random bit patterns, ±0, ±inf, NaN, tails
  ModelBuilder b;
  b.opset("", 13);
  b.input("x", DType::Float32, {x.numel()});
  b.node("Sigmoid", {"x"}, {"sig"}).node("Tanh", {"x"}, {"tanh"}).node("Erf", {"x"}, {"erf"});
  b.output("sig", DType::Float32).output("tanh", DType::Float32).output("erf", DType::Float32);
  const std::string path = b.save("sigmoid_tanh_erf.onnx");
  expect_matches_ort(path, {{"x", x}}, {"sig", "tanh", "erf"});
}

// Runs the float op on `pinned` (whose results must be exactly `bits`, measured from ONNX Runtime
// 1.30), then on `count` points from `lo` in steps of `step`, then on a NaN; returns the largest
// error over the sweep as `error(x, y)` measures it (NaN results must stay NaN).
double pinned_bits_and_sweep(const char* op, const std::vector<float>& pinned, const std::vector<uint32_t>& bits,
                             float lo, float step, int64_t count, const std::function<double(float, float)>& error) {
  const int64_t n0 = static_cast<int64_t>(pinned.size());
  Tensor in(DType::Float32, {n0 + count + 1});
  float* p = in.data<float>();
  std::copy(pinned.begin(), pinned.end(), p);
  for (int64_t i = 0; i < count; ++i) p[n0 + i] = lo + static_cast<float>(i) * step;
  p[in.numel() - 1] = std::nanf("");
  OpRun r;
  r.op_type = op;
  r.opset = 13;
  r.inputs = {dyn(in)};
  const Tensor y = run_op(r)[0];
  for (int64_t i = 0; i < n0; ++i) {
    uint32_t got;
    std::memcpy(&got, &y.data<float>()[i], 4);
    EXPECT_EQ(got, bits[static_cast<size_t>(i)]) << op << "(" << pinned[static_cast<size_t>(i)] << ")";
  }
  EXPECT_TRUE(std::isnan(y.data<float>()[in.numel() - 1])) << op;
  double worst = 0;
  for (int64_t i = n0; i < n0 + count; ++i) worst = std::max(worst, error(p[i], y.data<float>()[i]));
  return worst;
}

// Float Exp is ONNX Runtime's AVX-512F exp (ops/arith/activation.h): e^10 is one ULP above the
// correctly rounded 0x46ac14ee; over [-110, 90] the relative error stays below 3e-7.
TEST(Elementwise, ExpIsOnnxRuntimes) {
  const double worst = pinned_bits_and_sweep(
      "Exp", {10.0f, 1.0f, -1.0f, 88.5f, 89.0f, -87.0f, -103.0f, -104.5f, 20.25f, -50.0f, INFINITY, -INFINITY, 0.0f, -0.0f},
      {0x46ac14ef, 0x402df854, 0x3ebc5ab2, 0x7f4cdcc4, 0x7f800000, 0x00b33687, 0x00000001, 0x00000000, 0x4e1486bb,
       0x1b692beb, 0x7f800000, 0x00000000, 0x3f800000, 0x3f800000},
      -110.0f, 1e-4f, 2000001, [](float x, float y) {
        const double exact = std::exp(static_cast<double>(x));
        return exact < 1e-37 || exact > 3e38 ? 0.0 : std::fabs(y - exact) / exact;  // denormals, overflow
      });
  EXPECT_LT(worst, 3e-7);
}

// Float Erf is ONNX Runtime's FMA3 kernel (ops/arith/activation.h): the first three values are
// one ULP off the correctly rounded erf, ±0.921875 sits on the branch split; over [-6, 6] the
// error stays below 6e-8. Double Erf is libm's.
TEST(Elementwise, ErfIsOnnxRuntimes) {
  const double worst = pinned_bits_and_sweep(
      "Erf", {2.2720930576324463f, 0.21941280364990234f, -1.1788625717163086f, 0.5f, 1.0f, 3.924999952316284f, 5.0f,
              -0.921875f, 0.9218751192092896f, 1e-30f, -0.0f, INFINITY, -INFINITY},
      {0x3f7fa9fc, 0x3e798334, 0xbf678e80, 0x3f053f7b, 0x3f57bb3d, 0x3f800000, 0x3f800000, 0xbf4ec3b4, 0x3f4ec3b5,
       0x0db71709, 0x80000000, 0x3f800000, 0xbf800000},
      -6.0f, 1e-5f, 1200001, [](float x, float y) { return std::fabs(y - std::erf(static_cast<double>(x))); });
  EXPECT_LT(worst, 6e-8);
  OpRun r;
  r.op_type = "Erf";
  r.opset = 13;
  r.inputs = {dyn(Tensor::from_vector<double>({3}, {-0.5, 0.0, 2.0}))};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<double>({3}, {std::erf(-0.5), 0.0, std::erf(2.0)})));
}

// Without AVX-512F (libm's fma, scalef in double) the bits are the same, Softmax's included.
TEST(Elementwise, ExpAndSoftmaxWithoutAvx512AreTheSame) {
  const Tensor x = hard_inputs(200003);
  const float* p = x.data<float>();
  std::vector<float> a(static_cast<size_t>(x.numel())), b(a.size());
  ops::arith::ort_exp(p, a.data(), x.numel());
  ops::arith::ort_exp_portable(p, b.data(), x.numel());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  // Softmax rows of every length up to 100 and some long ones, finite inputs over a wide range.
  std::normal_distribution<float> normal(0.0f, 30.0f);
  for (int64_t n : {1, 2, 15, 16, 17, 47, 48, 49, 63, 64, 65, 100, 1000, 4099}) {
    std::vector<float> row(static_cast<size_t>(n));
    for (float& v : row) v = normal(rng());
    std::vector<float> ya(row.size()), yb(row.size());
    ops::arith::ort_softmax(row.data(), ya.data(), n);
    ops::arith::ort_softmax_portable(row.data(), yb.data(), n);
    EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * 4), 0) << "n = " << n;
    double sum = 0;
    for (float v : ya) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5) << "n = " << n;
  }
}

// Exp on hard inputs and Softmax over contiguous and strided axes (opset 13) and coerced 2-D
// (opset 11), row lengths across MLAS's 16- and 48-element blocks: ONNX Runtime's bits.
TEST(Elementwise, ExpAndSoftmaxMatchOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const Tensor x = hard_inputs(1000003);
  std::normal_distribution<float> normal(0.0f, 8.0f);
  auto logits = [&](Shape shape) {
    Tensor t(DType::Float32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = normal(rng());
    return t;
  };
  const Tensor a = logits({7, 1000}), bt = logits({3, 49, 5}), c = logits({2, 3, 17}), d = logits({64, 1});
  ModelBuilder b;
  b.opset("", 13);
  b.input("x", DType::Float32, {x.numel()}).input("a", DType::Float32, {7, 1000});
  b.input("b", DType::Float32, {3, 49, 5}).input("d", DType::Float32, {64, 1});
  b.node("Exp", {"x"}, {"exp"});
  Attributes axis1;
  axis1.set("axis", int64_t{1});
  b.node("Softmax", {"a"}, {"sa"}).node("Softmax", {"b"}, {"sb"}, axis1).node("Softmax", {"d"}, {"sd"});
  b.output("exp", DType::Float32).output("sa", DType::Float32).output("sb", DType::Float32).output("sd", DType::Float32);
  const std::string path = b.save("exp_softmax.onnx");
  expect_matches_ort(path, {{"x", x}, {"a", a}, {"b", bt}, {"d", d}}, {"exp", "sa", "sb", "sd"});
  // Opset 11: [2, 3, 17] coerced to 2 rows of 51 (axis 1) and to 6 rows of 17 (axis 2).
  ModelBuilder b11;
  b11.opset("", 11);
  b11.input("c", DType::Float32, {2, 3, 17});
  Attributes axis2;
  axis2.set("axis", int64_t{2});
  b11.node("Softmax", {"c"}, {"s1"}).node("Softmax", {"c"}, {"s2"}, axis2);
  b11.output("s1", DType::Float32).output("s2", DType::Float32);
  const std::string path11 = b11.save("softmax11.onnx");
  expect_matches_ort(path11, {{"c", c}}, {"s1", "s2"});
}

TEST(Elementwise, RoundIsHalfToEven) {
  OpRun r;
  r.op_type = "Round";
  r.inputs = {dyn(Tensor::from_vector<float>({9}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4999998f, 0.50000006f, -7.0f}))};
  Tensor y = run_op(r)[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({9}, {0.0f, 2.0f, 2.0f, -0.0f, -2.0f, -2.0f, 2.0f, 1.0f, -7.0f})));
  EXPECT_TRUE(std::signbit(y.data<float>()[3]));
}

TEST(Elementwise, LeakyReluUsesAlpha) {
  OpRun r;
  r.op_type = "LeakyRelu";
  r.opset = 16;
  r.attrs.set("alpha", 0.25f);
  Tensor x = random_tensor<float>({3, 5});
  r.inputs = {dyn(x)};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], reference<float, float>({x}, [](const std::vector<float>& v) {
                              return v[0] >= 0 ? v[0] : 0.25f * v[0];
                            })));
  r.attrs = {};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], reference<float, float>({x}, [](const std::vector<float>& v) {
                              return v[0] >= 0 ? v[0] : 0.01f * v[0];
                            })));
}

TEST(Elementwise, PowMixedTypes) {
  for (int trial = 0; trial < 10; ++trial) {
    auto [sa, sb] = random_broadcast_pair();
    Tensor x = random_tensor<float>(sa, 3.0), y = random_tensor<float>(sb, 3.0);
    OpRun r = binary("Pow", x, y);
    r.opset = 15;
    EXPECT_TRUE(tensors_equal(run_op(r)[0], reference<float, float>({x, y}, [](const std::vector<float>& v) {
                                return static_cast<float>(std::pow(double(v[0]), double(v[1])));
                              })));
  }
  // Real base, integer exponent; integer base, integer exponent (exact, wrapping, negative).
  OpRun r = binary("Pow", Tensor::from_vector<float>({3}, {2.0f, -3.0f, 0.5f}), Tensor::from_vector<int64_t>({3}, {10, 3, -2}));
  r.opset = 15;
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<float>({3}, {1024.0f, -27.0f, 4.0f})));
  r = binary("Pow", Tensor::from_vector<int32_t>({6}, {2, 3, -1, -1, 2, 7}), Tensor::from_vector<int32_t>({6}, {10, -1, -3, -4, 31, 0}));
  r.opset = 15;
  EXPECT_TRUE(tensors_equal(run_op(r)[0],
                            Tensor::from_vector<int32_t>({6}, {1024, 0, -1, 1, std::numeric_limits<int32_t>::min(), 1})));
  r = binary("Pow", Tensor::from_vector<int64_t>({2}, {3, 10}), Tensor::from_vector<float>({2}, {2.0f, 0.5f}));
  r.opset = 15;
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<int64_t>({2}, {9, 3})));
}

TEST(Elementwise, ClipAllOpsets) {
  Tensor x = Tensor::from_vector<float>({6}, {-5.0f, -1.0f, 0.0f, 1.0f, 5.0f, std::nanf("")});
  auto scalar = [](float v) { return Tensor::scalar<float>(v); };
  OpRun r;
  r.op_type = "Clip";
  r.opset = 13;
  // Bounds as run-time inputs and as constants.
  for (bool constant : {false, true}) {
    r.inputs = {dyn(x), constant ? cst(scalar(-2)) : dyn(scalar(-2)), constant ? cst(scalar(3)) : dyn(scalar(3))};
    Tensor y = run_op(r)[0];
    EXPECT_TRUE(tensors_close(y, Tensor::from_vector<float>({6}, {-2, -1, 0, 1, 3, std::nanf("")}), 0, 0));
  }
  // Absent min: lowest(); min > max gives max everywhere (numpy's clip).
  r.inputs = {dyn(x), OpInput::absent_input(), dyn(scalar(0.5f))};
  EXPECT_TRUE(tensors_close(run_op(r)[0], Tensor::from_vector<float>({6}, {-5, -1, 0, 0.5f, 0.5f, std::nanf("")}), 0, 0));
  r.inputs = {dyn(x), dyn(scalar(2)), dyn(scalar(1))};
  EXPECT_TRUE(tensors_close(run_op(r)[0], Tensor::from_vector<float>({6}, {1, 1, 1, 1, 1, std::nanf("")}), 0, 0));
  // Opset 6: attributes.
  r.opset = 6;
  r.inputs = {dyn(x)};
  r.attrs.set("min", -1.5f);
  r.attrs.set("max", 2.0f);
  EXPECT_TRUE(tensors_close(run_op(r)[0], Tensor::from_vector<float>({6}, {-1.5f, -1, 0, 1, 2, std::nanf("")}), 0, 0));
  // int8 and uint8 (opset 12+), bounds at the type's extremes.
  r = {};
  r.op_type = "Clip";
  r.opset = 13;
  Tensor xi = Tensor::from_vector<int8_t>({5}, {-128, -100, 0, 100, 127});
  r.inputs = {dyn(xi), dyn(Tensor::scalar<int8_t>(-100)), OpInput::absent_input()};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<int8_t>({5}, {-100, -100, 0, 100, 127})));
  Tensor xu = Tensor::from_vector<uint8_t>({4}, {0, 1, 254, 255});
  r.inputs = {dyn(xu), dyn(Tensor::scalar<uint8_t>(1)), dyn(Tensor::scalar<uint8_t>(254))};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<uint8_t>({4}, {1, 1, 254, 254})));
}

TEST(Elementwise, ClipRejectsBadBounds) {
  OpRun r;
  r.op_type = "Clip";
  r.opset = 13;
  r.inputs = {dyn(Tensor(DType::Float32, {3})), dyn(Tensor(DType::Float32, {2}))};
  try {
    run_op(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scalar"), std::string::npos) << e.what();
  }
  r.inputs = {dyn(Tensor(DType::Float32, {3})), dyn(Tensor::scalar<double>(1.0))};
  try {
    run_op(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("float64"), std::string::npos) << e.what();
  }
}

TEST(Elementwise, VariadicMinMaxSumMean) {
  for (int trial = 0; trial < 15; ++trial) {
    auto [s0, s1] = random_broadcast_pair();
    Shape s2 = s1.empty() ? s0 : Shape(s1.begin() + 1, s1.end());
    Tensor a = random_tensor<float>(s0), b = random_tensor<float>(s1), c = random_tensor<float>(s2);
    if (a.numel() > 0 && trial % 3 == 0) a.data<float>()[0] = std::nanf("");
    auto make = [&](const char* op) {
      OpRun r;
      r.op_type = op;
      r.inputs = {dyn(a), dyn(b), dyn(c)};
      return r;
    };
    auto nanmin = [](const std::vector<float>& v) {
      float m = v[0];
      for (float x : v) m = (std::isnan(m) || std::isnan(x)) ? std::nanf("") : std::min(m, x);
      return m;
    };
    auto nanmax = [](const std::vector<float>& v) {
      float m = v[0];
      for (float x : v) m = (std::isnan(m) || std::isnan(x)) ? std::nanf("") : std::max(m, x);
      return m;
    };
    EXPECT_TRUE(tensors_close(run_op(make("Min"))[0], reference<float, float>({a, b, c}, nanmin), 0, 0));
    EXPECT_TRUE(tensors_close(run_op(make("Max"))[0], reference<float, float>({a, b, c}, nanmax), 0, 0));
    EXPECT_TRUE(tensors_close(run_op(make("Sum"))[0],
                              reference<float, float>({a, b, c}, [](const std::vector<float>& v) { return v[0] + v[1] + v[2]; }), 0, 0));
    EXPECT_TRUE(tensors_close(run_op(make("Mean"))[0],
                              reference<float, float>({a, b, c}, [](const std::vector<float>& v) { return (v[0] + v[1] + v[2]) / 3.0f; }),
                              0, 0));
  }
  // One input: the identity; integer Max.
  OpRun r;
  r.op_type = "Max";
  r.inputs = {dyn(Tensor::from_vector<int8_t>({3}, {-128, 0, 127}))};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<int8_t>({3}, {-128, 0, 127})));
  r.inputs.push_back(dyn(Tensor::scalar<int8_t>(1)));
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<int8_t>({3}, {1, 1, 127})));
}

TEST(Elementwise, WhereWithStringsAndBroadcast) {
  Tensor cond = Tensor::from_vector<bool>({2, 1}, {true, false});
  Tensor a(DType::String, {1, 3}), b(DType::String, {});
  a.data<std::string>()[0] = "a0";
  a.data<std::string>()[1] = "a1";
  a.data<std::string>()[2] = "a2";
  b.data<std::string>()[0] = "b";
  OpRun r;
  r.op_type = "Where";
  r.opset = 16;
  r.inputs = {dyn(cond), dyn(a), dyn(b)};
  Tensor y = run_op(r)[0];
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  const std::vector<std::string> want = {"a0", "a1", "a2", "b", "b", "b"};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.data<std::string>()[i], want[i]);
  // Numeric, random shapes.
  for (int trial = 0; trial < 10; ++trial) {
    auto [s0, s1] = random_broadcast_pair();
    Tensor c = random_tensor<bool>(s0), x = random_tensor<int16_t>(s1), z = random_tensor<int16_t>({});
    r.inputs = {dyn(c), dyn(x), dyn(z)};
    const Shape out = numpy_broadcast({s0, s1, {}});
    Tensor expect(DType::Int16, out);
    for (int64_t i = 0; i < expect.numel(); ++i) {
      auto idx = unravel(i, out);
      expect.data<int16_t>()[i] = c.data<bool>()[broadcast_index(idx, s0)] ? x.data<int16_t>()[broadcast_index(idx, s1)]
                                                                           : z.data<int16_t>()[0];
    }
    EXPECT_TRUE(tensors_equal(run_op(r)[0], expect));
  }
}

TEST(Elementwise, LogicOps) {
  Tensor a = Tensor::from_vector<bool>({4}, {false, false, true, true});
  Tensor b = Tensor::from_vector<bool>({4}, {false, true, false, true});
  auto go = [&](const char* op) { return run_op(binary(op, a, b))[0]; };
  EXPECT_TRUE(tensors_equal(go("And"), Tensor::from_vector<bool>({4}, {false, false, false, true})));
  EXPECT_TRUE(tensors_equal(go("Or"), Tensor::from_vector<bool>({4}, {false, true, true, true})));
  EXPECT_TRUE(tensors_equal(go("Xor"), Tensor::from_vector<bool>({4}, {false, true, true, false})));
  EXPECT_TRUE(tensors_equal(go("Equal"), Tensor::from_vector<bool>({4}, {true, false, false, true})));
  OpRun r;
  r.op_type = "Not";
  r.inputs = {dyn(a)};
  EXPECT_TRUE(tensors_equal(run_op(r)[0], Tensor::from_vector<bool>({4}, {true, true, false, false})));
}

TEST(Elementwise, NanComparisons) {
  Tensor a = Tensor::from_vector<float>({2}, {std::nanf(""), 1.0f});
  Tensor b = Tensor::from_vector<float>({2}, {std::nanf(""), std::nanf("")});
  for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
    EXPECT_TRUE(tensors_equal(run_op(binary(op, a, b))[0], Tensor::from_vector<bool>({2}, {false, false}))) << op;
}

TEST(Elementwise, LegacyBroadcastBeforeOpset7) {
  Tensor a = random_tensor<float>({2, 3, 4});
  Tensor b = random_tensor<float>({3});
  OpRun r = binary("Add", a, b);
  r.opset = 6;
  r.attrs.set("broadcast", int64_t{1});
  r.attrs.set("axis", int64_t{1});
  Tensor want = reference<float, float>({a, b.reshaped({3, 1})}, [](const std::vector<float>& v) { return v[0] + v[1]; });
  EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
  // Without broadcast=1 the shapes must be equal.
  r.attrs = {};
  EXPECT_THROW(run_op(r), Error);
  // Default axis: B's dims are A's trailing dims.
  Tensor c = random_tensor<float>({3, 4});
  r = binary("Mul", a, c);
  r.opset = 6;
  r.attrs.set("broadcast", int64_t{1});
  EXPECT_TRUE(tensors_equal(run_op(r)[0], reference<float, float>({a, c}, [](const std::vector<float>& v) { return v[0] * v[1]; })));
}

void expect_error(const OpRun& r, const std::string& needle) {
  try {
    run_op(r);
    ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Elementwise, ClearErrors) {
  expect_error(binary("Add", Tensor(DType::Float32, {2, 3}), Tensor(DType::Float32, {4})), "cannot be broadcast");
  expect_error(binary("Add", Tensor(DType::Float32, {2}), Tensor(DType::Int32, {2})), "same type");
  expect_error(binary("Add", Tensor(DType::Float16, {2}), Tensor(DType::Float16, {2})), "float16");
  expect_error(binary("And", Tensor(DType::Float32, {2}), Tensor(DType::Float32, {2})), "bool");
  OpRun r;
  r.op_type = "Exp";
  r.inputs = {dyn(Tensor(DType::Int32, {2}))};
  expect_error(r, "float32, float64");
  r.op_type = "Where";
  r.inputs = {dyn(Tensor(DType::Int32, {2})), dyn(Tensor(DType::Int32, {2})), dyn(Tensor(DType::Int32, {2}))};
  expect_error(r, "condition");
}

TEST(Elementwise, ThreadsGiveTheSameResult) {
  Tensor a = random_tensor<float>({64, 33, 17}), b = random_tensor<float>({33, 1});
  OpRun r = binary("Mul", a, b);
  Tensor one = run_op(r)[0];
  r.threads = 2;
  EXPECT_TRUE(tensors_equal(run_op(r)[0], one));
  EXPECT_TRUE(tensors_equal(one, reference<float, float>({a, b}, [](const std::vector<float>& v) { return v[0] * v[1]; })));
}

TEST(Elementwise, ModelThroughTheLoader) {
  // x (runtime) + constant bias, then Relu, then Clip with constant bounds, then Equal.
  ModelBuilder m;
  m.opset("", 13);
  m.input("x", DType::Float32, {-1, 3});
  m.initializer("bias", Tensor::from_vector<float>({3}, {1.0f, -1.0f, 0.5f}));
  m.initializer("lo", Tensor::scalar<float>(0.25f));
  m.initializer("hi", Tensor::scalar<float>(2.0f));
  m.node("Add", {"x", "bias"}, {"s"});
  m.node("Relu", {"s"}, {"r"});
  m.node("Clip", {"r", "lo", "hi"}, {"y"});
  m.output("y", DType::Float32);
  Session session(m.save("elementwise_model.onnx"));
  Tensor x = Tensor::from_vector<float>({2, 3}, {0.0f, 0.5f, 1.0f, -3.0f, 3.0f, 1.25f});
  Tensor y = session.run({{"x", x}}).at("y");
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({2, 3}, {1.0f, 0.25f, 1.5f, 0.25f, 2.0f, 1.75f})));
}

// ---- HardSigmoid, HardSwish -------------------------------------------------------------------


// ONNX: y = max(0, min(1, alpha·x + beta)). As ONNX Runtime computes it: alpha·x rounded to
// float before beta is added (a fused multiply-add differs), NaN propagated.
float hard_sigmoid_ref(float x, float alpha, float beta) {
  volatile float product = alpha * x;  // rounded on its own
  const float v = product + beta;
  if (std::isnan(v)) return v;
  return std::max(0.0f, std::min(1.0f, v));
}

TEST(Elementwise, HardSigmoidAndHardSwishFollowTheFormula) {
  const Tensor x = hard_inputs(4099);
  int64_t fma_differs = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data<float>()[i];
    fma_differs += std::isfinite(v) && std::fabs(v) < 10 && std::fma(0.37f, v, 0.21f) != hard_sigmoid_ref(v, 0.37f, 0.21f);
  }
  ASSERT_GT(fma_differs, 0) << "no input tells a fused multiply-add from the rounded product";
  struct Case { int opset; bool attrs; float alpha, beta; };
  for (const Case c : {Case{6, false, 0.2f, 0.5f}, Case{6, true, 0.37f, 0.21f}, Case{1, true, 0.37f, 0.21f},
                       Case{22, true, -1.5f, 0.75f}}) {
    SCOPED_TRACE("HardSigmoid opset " + std::to_string(c.opset) + " alpha " + std::to_string(c.alpha));
    OpRun r;
    r.op_type = "HardSigmoid";
    r.opset = c.opset;
    if (c.attrs) {
      r.attrs.set("alpha", c.alpha);
      r.attrs.set("beta", c.beta);
    }
    r.inputs = {dyn(x)};
    EXPECT_TRUE(tensors_equal(run_op(r)[0], reference<float, float>({x}, [&](const std::vector<float>& v) {
                                return hard_sigmoid_ref(v[0], c.alpha, c.beta);
                              })));
  }
  OpRun r;
  r.op_type = "HardSwish";
  r.opset = 14;
  r.inputs = {dyn(x)};
  const Tensor y = run_op(r)[0];
  EXPECT_TRUE(tensors_equal(y, reference<float, float>({x}, [](const std::vector<float>& v) {
                              return v[0] * hard_sigmoid_ref(v[0], 1.0f / 6.0f, 0.5f);
                            })));
  EXPECT_TRUE(std::isnan(y.data<float>()[3])) << "-inf · 0 is NaN";
  EXPECT_TRUE(std::signbit(y.data<float>()[5]) && y.data<float>()[5] == 0.0f) << "-0 · 0.5 is -0";
  EXPECT_EQ(y.data<float>()[2], INFINITY);
  r.opset = 13;  // HardSwish is new in opset 14
  EXPECT_THROW(run_op(r), Error);
}

TEST(Elementwise, HardSigmoidAndHardSwishMatchOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const Tensor x = hard_inputs(1000003);
  ModelBuilder b;
  b.opset("", 14);
  b.input("x", DType::Float32, {x.numel()});
  Attributes odd;
  odd.set("alpha", 0.37f);
  odd.set("beta", 0.21f);
  b.node("HardSigmoid", {"x"}, {"hsig"}).node("HardSigmoid", {"x"}, {"hsig_odd"}, odd).node("HardSwish", {"x"}, {"hswish"});
  for (const char* out : {"hsig", "hsig_odd", "hswish"}) b.output(out, DType::Float32);
  const std::string path = b.save("hard_activations.onnx");
  expect_matches_ort(path, {{"x", x}}, {"hsig", "hsig_odd", "hswish"});
}


// Element-wise operators on the NHWC output of a fast convolution stay NHWC when every larger
// input is NHWC of one shape (OpDef::elementwise), and fall back to the model's layout otherwise:
// a full-shape constant, a per-channel constant, a one-element operand of higher rank (the
// output would be rank 5). Every output equals the reference kernels' (all NCHW), observed or not.
TEST(Elementwise, NhwcInputsStayNhwcOnlyWhenElementwise) {
  std::mt19937 g(11);
  auto u8 = [&](const Shape& s) {
    Tensor t(DType::UInt8, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(g() % 256);
    return t;
  };
  auto f32 = [&](const Shape& s) {
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(static_cast<int>(g() % 2001) - 1000) / 256.0f;
    return t;
  };
  Tensor w(DType::Int8, {8, 8, 1, 1});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  ModelBuilder b;
  b.opset("", 13).opset("com.microsoft", 1);
  b.input("x", DType::UInt8, {1, 8, 5, 7});
  b.initializer("xs", Tensor::scalar<float>(0.05f)).initializer("xz", Tensor::scalar<uint8_t>(120));
  b.initializer("w", w).initializer("ws", Tensor::scalar<float>(0.01f)).initializer("wz", Tensor::scalar<int8_t>(0));
  b.initializer("ys", Tensor::scalar<float>(0.1f)).initializer("yz", Tensor::scalar<uint8_t>(128));
  b.initializer("one", Tensor::scalar<float>(1.5f)).initializer("full", f32({1, 8, 5, 7}));
  b.initializer("chan", f32({1, 8, 1, 1})).initializer("rank5", f32({1, 1, 1, 1, 1}));
  b.node("QLinearConv", {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz"}, {"c1"});
  b.node("QLinearConv", {"c1", "ys", "yz", "w", "ws", "wz", "ys", "yz"}, {"c2"});
  b.node("DequantizeLinear", {"c1", "ys", "yz"}, {"d1"});
  b.node("DequantizeLinear", {"c2", "ys", "yz"}, {"d2"});
  Attributes hsig;
  hsig.set("alpha", 1.0f / 6.0f);
  b.node("HardSigmoid", {"d1"}, {"h"}, hsig);
  b.node("Mul", {"d1", "h"}, {"hs"});                 // NHWC
  b.node("Add", {"hs", "one"}, {"e1"});               // NHWC (a scalar broadcasts in any layout)
  b.node("Add", {"d1", "full"}, {"e2"});              // plain: a full-shape constant
  b.node("Mul", {"d1", "rank5"}, {"e3"});             // plain: the output is rank 5
  b.node("Add", {"d1", "d2"}, {"e4"});                // NHWC: two NHWC operands of one shape
  b.node("Mul", {"d2", "chan"}, {"e5"});              // plain: a per-channel constant
  b.node("QuantizeLinear", {"e1", "ys", "yz"}, {"q"});  // NHWC, then into a convolution again
  b.node("QLinearConv", {"q", "ys", "yz", "w", "ws", "wz", "ys", "yz"}, {"c3"});
  for (const char* o : {"e1", "e2", "e3", "e4", "e5"}) b.output(o, DType::Float32);
  b.output("c3", DType::UInt8);
  const std::string path = b.save("nhwc_elementwise.onnx");
  if (ops::x86::best_isa() != ops::x86::Isa::Ref) {
    // The model-layout copies: d1 (for e2 and e3) and d2 (for e5), and the NHWC graph outputs e1,
    // e4 and c3; none for the DequantizeLinear, HardSigmoid, Mul and QuantizeLinear steps.
    EXPECT_EQ(Session::summarize(path).layout_conversions, 5);
  }
  const std::map<std::string, Tensor> in{{"x", u8({1, 8, 5, 7})}};
  SessionOptions ref_opts;
  ref_opts.isa = "ref";
  const auto want = Session(path, ref_opts).run(in);
  for (int threads : {1, 2}) {
    SessionOptions so;
    so.threads = threads;
    Session s(path, so);
    const auto got = s.run(in);
    for (const auto& [name, t] : want) EXPECT_TRUE(tensors_equal(got.at(name), t)) << name << ", threads " << threads;
    const auto dumped = quint_tensors(s, in);  // observed: NHWC values shown in the model's layout
    for (const char* name : {"hs", "e1", "q", "c3"}) {
      ASSERT_TRUE(dumped.count(name)) << name;
      EXPECT_EQ(dumped.at(name).shape(), (Shape{1, 8, 5, 7})) << name;
    }
    EXPECT_TRUE(tensors_equal(dumped.at("e1"), want.at("e1")));
  }
}


// A float Pad of zeros on the spatial dims before an AveragePool becomes the pool's own padding,
// counted (graph_passes.cc): the same floats as Pad then pool (QDQ float mode runs the graph as
// written). Pads of another value, on the channels, negative, or not smaller than the kernel, and
// a pool with pads of its own, are left as they are.
TEST(Elementwise, PadBeforeAveragePoolFoldsOnlyWhenExact) {
  struct Case {
    std::vector<int64_t> pads;
    float value;
    std::vector<int64_t> pool_pads;
    bool ceil;
    bool folds;
  };
  const std::vector<Case> cases = {
      {{0, 0, 1, 1, 0, 0, 1, 1}, 0.0f, {}, false, true},
      {{0, 0, 2, 0, 0, 0, 1, 2}, 0.0f, {}, true, true},     // asymmetric, ceil_mode
      {{0, 0, 1, 1, 0, 0, 1, 1}, -0.0f, {}, false, true},
      {{0, 0, 1, 1, 0, 0, 1, 1}, 0.5f, {}, false, false},   // not zeros
      {{0, 1, 1, 1, 0, 0, 1, 1}, 0.0f, {}, false, false},   // a channel pad
      {{0, 0, -1, 1, 0, 0, 1, 1}, 0.0f, {}, false, false},  // a crop
      {{0, 0, 3, 1, 0, 0, 1, 1}, 0.0f, {}, false, false},   // not smaller than the kernel
      {{0, 0, 1, 1, 0, 0, 1, 1}, 0.0f, {1, 0, 0, 0}, false, false},  // the pool pads too
  };
  std::mt19937 g(5);
  Tensor x(DType::Float32, {2, 5, 9, 11});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::uniform_real_distribution<float>(-2, 2)(g);
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE("case " + std::to_string(k));
    ModelBuilder b;
    b.opset("", 13);
    b.input("x", DType::Float32, {2, 5, 9, 11});
    b.initializer("pads", Tensor::from_vector<int64_t>({8}, c.pads));
    b.initializer("value", Tensor::scalar<float>(c.value));
    b.node("Pad", {"x", "pads", "value"}, {"p"});
    Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{3, 3});
    a.set("strides", std::vector<int64_t>{1, 2});
    if (!c.pool_pads.empty()) a.set("pads", c.pool_pads);
    if (c.ceil) a.set("ceil_mode", int64_t{1});
    b.node("AveragePool", {"p"}, {"y"}, a);
    b.output("y", DType::Float32);
    const std::string path = b.save("pad_pool_" + std::to_string(k) + ".onnx");
    const ModelSummary sum = Session::summarize(path);
    const bool folded = std::any_of(sum.fusions.begin(), sum.fusions.end(),
                                    [](const std::string& f) { return f.find("<- Pad") != std::string::npos; });
    EXPECT_EQ(folded, c.folds);
    SessionOptions as_written;
    as_written.qdq = QdqMode::Float;
    const auto want = Session(path, as_written).run({{"x", x}});
    EXPECT_TRUE(tensors_equal(Session(path).run({{"x", x}}).at("y"), want.at("y")));
  }
}


// DequantizeLinear → float element-wise chain → QuantizeLinear becomes quint.TableLookup
// (graph_passes.cc) with the chain's own integers: on every byte value, uint8 and int8, the
// fused model gives what the graph as written gives (QDQ float mode), and only the chains that
// qualify are fused: a non-scalar constant, or an intermediate value read elsewhere, keeps the
// chain as it is.
TEST(Elementwise, FloatChainsBetweenDqAndQBecomeExactTables) {
  for (DType t : {DType::UInt8, DType::Int8}) {
    SCOPED_TRACE(dtype_name(t));
    auto zp = [&](int v) { return t == DType::Int8 ? Tensor::scalar<int8_t>(static_cast<int8_t>(v - 128)) : Tensor::scalar<uint8_t>(static_cast<uint8_t>(v)); };
    Tensor x(t, {2, 3, 8, 16});  // every byte value, twice
    for (int64_t i = 0; i < x.numel(); ++i) static_cast<uint8_t*>(x.raw())[i] = static_cast<uint8_t>(i * 7);
    ModelBuilder b;
    b.opset("", 13);
    b.input("x", t, {2, 3, 8, 16});
    b.initializer("s", Tensor::scalar<float>(0.0625f)).initializer("z", zp(131));
    b.initializer("os", Tensor::scalar<float>(0.03f)).initializer("oz", zp(20));
    b.initializer("three", Tensor::scalar<float>(3.0f)).initializer("lo", Tensor::scalar<float>(-1.0f));
    b.initializer("hi", Tensor::scalar<float>(2.5f)).initializer("vec", Tensor::from_vector<float>({3, 1, 1}, {1, 2, 3}));
    b.node("DequantizeLinear", {"x", "s", "z"}, {"d"});
    Attributes hs;
    hs.set("alpha", 1.0f / 6.0f);
    b.node("HardSigmoid", {"d"}, {"h"}, hs);                                         // hard-swish
    b.node("Mul", {"d", "h"}, {"m"});
    b.node("QuantizeLinear", {"m", "os", "oz"}, {"y1"});
    b.node("Sigmoid", {"d"}, {"sg"});                                                // SiLU
    b.node("Mul", {"sg", "d"}, {"silu"});
    b.node("QuantizeLinear", {"silu", "os", "oz"}, {"y2"});
    b.node("Add", {"d", "three"}, {"a3"});                                           // clip and divide
    b.node("Clip", {"a3", "lo", "hi"}, {"c"});
    b.node("Div", {"c", "three"}, {"dv"});
    b.node("QuantizeLinear", {"dv", "os", "oz"}, {"y3"});
    b.node("Mul", {"d", "vec"}, {"mv"});                                             // not: a per-channel constant
    b.node("QuantizeLinear", {"mv", "os", "oz"}, {"y4"});
    b.node("Tanh", {"d"}, {"th"});                                                   // not: th is an output too
    b.node("QuantizeLinear", {"th", "os", "oz"}, {"y5"});
    for (const char* o : {"y1", "y2", "y3", "y4", "y5"}) b.output(o, t);
    b.output("th", DType::Float32);
    const std::string path = b.save(std::string("tables_") + dtype_name(t) + ".onnx");
    const ModelSummary sum = Session::summarize(path);
    int tables = 0;
    for (const auto& f : sum.fusions) tables += f.rfind("TableLookup", 0) == 0;
    EXPECT_EQ(tables, 3);
    SessionOptions as_written;
    as_written.qdq = QdqMode::Float;
    const auto want = Session(path, as_written).run({{"x", x}});
    for (const char* isa : {"auto", "ref"}) {
      SessionOptions so;
      so.isa = isa;
      const auto got = Session(path, so).run({{"x", x}});
      for (const auto& [name, v] : want) EXPECT_TRUE(tensors_equal(got.at(name), v)) << name << " isa " << isa;
    }
  }
}

// The table kernel (AVX-512 VBMI where present) on lengths around its 64-byte blocks.
TEST(Elementwise, TableLookupKernelLengthsAndTails) {
  Tensor table(DType::Int8, {256});
  for (int i = 0; i < 256; ++i) table.data<int8_t>()[i] = static_cast<int8_t>((i * 37 + 11) % 256 - 128);
  for (int64_t n : {1, 2, 63, 64, 65, 127, 128, 200, 1000, 40000}) {
    Tensor x(DType::UInt8, {n});
    for (int64_t i = 0; i < n; ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 13 + 5);
    for (const char* isa : {"auto", "ref"})
      for (int threads : {1, 2}) {
        OpRun r;
        r.op_type = "TableLookup";
        r.domain = "quint";
        r.opset = 1;
        r.inputs = {dyn(x), cst(table)};
        r.options.isa = isa;
        r.threads = threads;
        const Tensor y = run_op(r).at(0);
        ASSERT_EQ(y.dtype(), DType::Int8);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(y.data<int8_t>()[i], table.data<int8_t>()[x.data<uint8_t>()[i]]) << "n " << n << " at " << i << " isa " << isa;
      }
  }
}

}  // namespace

}  // namespace quint::test
