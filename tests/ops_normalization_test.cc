// BatchNormalization, Softmax, LogSoftmax, LRN, the Reduce family and ArgMax/ArgMin against naive references written
// here from the ONNX spec's formulas (in double, element by element), on random shapes and axes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "op_harness.h"
#include "reference_runs.h"
#include "test_paths.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(777);
  return g;
}

Tensor random_floats(const Shape& s, double lo = -3, double hi = 3) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>(std::uniform_real_distribution<double>(lo, hi)(rng()));
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

Shape random_shape(int min_rank, int max_rank, int max_dim = 5) {
  Shape s(static_cast<size_t>(min_rank + static_cast<int>(rng()() % (max_rank - min_rank + 1))));
  for (auto& d : s) d = 1 + static_cast<int64_t>(rng()() % max_dim);
  return s;
}

Attributes attrs_of(std::initializer_list<std::pair<std::string, AttributeValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

void expect_error(const OpRun& r, const std::string& needle) {
  try {
    run_op(r);
    ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// ---- BatchNormalization ----------------------------------------------------------------------

TEST(BatchNorm, InferenceMatchesFormula) {
  for (int trial = 0; trial < 20; ++trial) {
    Shape s = random_shape(2, 5);
    const int64_t C = s[1];
    Tensor x = random_floats(s), scale = random_floats({C}), bias = random_floats({C}), mean = random_floats({C});
    Tensor var = random_floats({C}, 0.0, 2.0);
    const float eps = trial % 2 ? 0.01f : 1e-5f;  // the attribute is set only for 0.01
    OpRun r;
    r.op_type = "BatchNormalization";
    r.opset = trial % 3 == 0 ? 9 : 15;
    if (trial % 2) r.attrs.set("epsilon", eps);
    r.inputs = {dyn(x), cst(scale), cst(bias), cst(mean), cst(var)};
    Tensor y = run_op(r)[0];
    Tensor want(DType::Float32, s);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t c = unravel(i, s)[1];
      const double v = double(scale.data<float>()[c]) * (double(x.data<float>()[i]) - mean.data<float>()[c]) /
                           std::sqrt(double(var.data<float>()[c]) + eps) +
                       bias.data<float>()[c];
      want.data<float>()[i] = static_cast<float>(v);
    }
    EXPECT_TRUE(tensors_close(y, want, 1e-5, 1e-6)) << shape_str(s);
  }
}

TEST(BatchNorm, TrainingModeOutputsBatchStatistics) {
  Shape s{3, 2, 4, 5};
  const int64_t C = 2;
  Tensor x = random_floats(s), scale = random_floats({C}), bias = random_floats({C}), mean = random_floats({C});
  Tensor var = random_floats({C}, 0.5, 2.0);
  OpRun r;
  r.op_type = "BatchNormalization";
  r.opset = 15;
  r.attrs.set("training_mode", int64_t{1});
  r.attrs.set("momentum", 0.8f);
  r.inputs = {dyn(x), dyn(scale), dyn(bias), dyn(mean), dyn(var)};
  r.num_outputs = 3;
  auto out = run_op(r);
  std::vector<double> bm(C, 0), bv(C, 0);
  const double count = static_cast<double>(x.numel() / C);
  for (int64_t i = 0; i < x.numel(); ++i) bm[unravel(i, s)[1]] += x.data<float>()[i] / count;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = unravel(i, s)[1];
    bv[c] += (x.data<float>()[i] - bm[c]) * (x.data<float>()[i] - bm[c]) / count;
  }
  Tensor want_y(DType::Float32, s), want_m(DType::Float32, {C}), want_v(DType::Float32, {C});
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = unravel(i, s)[1];
    want_y.data<float>()[i] = static_cast<float>(scale.data<float>()[c] * (x.data<float>()[i] - bm[c]) / std::sqrt(bv[c] + 1e-5) +
                                                 bias.data<float>()[c]);
  }
  for (int64_t c = 0; c < C; ++c) {
    want_m.data<float>()[c] = static_cast<float>(mean.data<float>()[c] * 0.8 + bm[c] * 0.2);
    want_v.data<float>()[c] = static_cast<float>(var.data<float>()[c] * 0.8 + bv[c] * 0.2);
  }
  EXPECT_TRUE(tensors_close(out[0], want_y, 1e-5, 1e-6));
  EXPECT_TRUE(tensors_close(out[1], want_m, 1e-5, 1e-6));
  EXPECT_TRUE(tensors_close(out[2], want_v, 1e-5, 1e-6));
}

TEST(BatchNorm, SpatialZeroBeforeOpset9) {
  Shape s{2, 3, 2};
  Tensor x = random_floats(s), p = random_floats({3, 2}), mean = random_floats({3, 2});
  Tensor var = random_floats({3, 2}, 0.5, 1.0);
  OpRun r;
  r.op_type = "BatchNormalization";
  r.opset = 7;
  r.attrs.set("spatial", int64_t{0});
  r.inputs = {dyn(x), cst(p), cst(p), cst(mean), cst(var)};
  Tensor y = run_op(r)[0];
  Tensor want(DType::Float32, s);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t k = i % 6;  // one parameter per element of C x D
    want.data<float>()[i] = static_cast<float>(double(p.data<float>()[k]) * (x.data<float>()[i] - mean.data<float>()[k]) /
                                                   std::sqrt(double(var.data<float>()[k]) + 1e-5) +
                                               p.data<float>()[k]);
  }
  EXPECT_TRUE(tensors_close(y, want, 1e-5, 1e-6));
}

TEST(BatchNorm, ClearErrors) {
  OpRun r;
  r.op_type = "BatchNormalization";
  r.opset = 15;
  Tensor c3 = random_floats({3});
  r.inputs = {dyn(random_floats({2, 4, 5})), dyn(c3), dyn(c3), dyn(c3), dyn(c3)};
  expect_error(r, "must have 4 elements");
  r.inputs = {dyn(random_floats({4})), dyn(c3), dyn(c3), dyn(c3), dyn(c3)};
  expect_error(r, "rank >= 2");
  r.inputs = {dyn(random_floats({2, 3})), dyn(c3), dyn(Tensor(DType::Float64, {3})), dyn(c3), dyn(c3)};
  expect_error(r, "float64");
  r.inputs = {dyn(random_floats({2, 3})), dyn(c3), dyn(c3), dyn(c3), dyn(c3)};
  r.num_outputs = 3;
  expect_error(r, "training_mode=1");
  r.opset = 9;
  expect_error(r, "before opset 14");
}

// ---- LayerNormalization ----------------------------------------------------------------------

// The ONNX formula per row of the dims from `axis` on, in long double with the textbook
// two-pass variance: y = (x − mean) / sqrt(var + eps) · scale + bias.
struct LayerNormRef {
  Tensor y, mean, inv_std;
};
LayerNormRef layer_norm_reference(const Tensor& x, const Tensor& scale, const Tensor* bias, int64_t axis, float eps) {
  const Shape& s = x.shape();
  int64_t rows = 1, n = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) (i < axis ? rows : n) *= s[static_cast<size_t>(i)];
  Shape stat = s;
  for (size_t i = static_cast<size_t>(axis); i < stat.size(); ++i) stat[i] = 1;
  LayerNormRef r{Tensor(DType::Float32, s), Tensor(DType::Float32, stat), Tensor(DType::Float32, stat)};
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = x.data<float>() + row * n;
    long double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) sum += xr[i];
    const long double mean = sum / n;
    for (int64_t i = 0; i < n; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
    const long double sd = std::sqrt(sq / n + static_cast<long double>(eps));
    for (int64_t i = 0; i < n; ++i)
      r.y.data<float>()[row * n + i] =
          static_cast<float>((xr[i] - mean) / sd * scale.data<float>()[i] + (bias ? bias->data<float>()[i] : 0.0f));
    r.mean.data<float>()[row] = static_cast<float>(mean);
    r.inv_std.data<float>()[row] = static_cast<float>(1 / sd);
  }
  return r;
}

TEST(LayerNormalization, EveryAxisWithAndWithoutBias) {
  for (int trial = 0; trial < 24; ++trial) {
    const Shape s = random_shape(1, 4, 9);
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t axis = static_cast<int64_t>(rng()() % static_cast<uint64_t>(rank));
    Shape tail(s.begin() + axis, s.end());
    Tensor x = random_floats(s, -4, 6), scale = random_floats(tail), bias = random_floats(tail);
    const bool with_bias = trial % 2 == 0;
    const float eps = trial % 3 == 0 ? 1e-3f : 1e-5f;
    OpRun op;
    op.op_type = "LayerNormalization";
    op.opset = 17;
    if (trial % 4 != 3) op.attrs.set("axis", trial % 2 ? axis - rank : axis);  // else the default, -1
    const int64_t a = trial % 4 != 3 ? axis : rank - 1;
    if (a != axis) {
      tail.assign(s.begin() + a, s.end());
      scale = random_floats(tail);
      bias = random_floats(tail);
    }
    if (eps != 1e-5f) op.attrs.set("epsilon", eps);
    op.inputs = {dyn(x), cst(scale)};
    if (with_bias) op.inputs.push_back(cst(bias));
    op.num_outputs = 3;
    const auto out = run_op(op);
    const LayerNormRef want = layer_norm_reference(x, scale, with_bias ? &bias : nullptr, a, eps);
    EXPECT_TRUE(tensors_close(out[0], want.y, 1e-5, 1e-6)) << shape_str(s) << " axis " << a;
    EXPECT_TRUE(tensors_close(out[1], want.mean, 1e-6, 1e-7)) << shape_str(s) << " axis " << a;
    EXPECT_TRUE(tensors_close(out[2], want.inv_std, 1e-6, 0)) << shape_str(s) << " axis " << a;
  }
}

TEST(LayerNormalization, ConstantRowsAndErrors) {
  // A constant row: variance 0, y = bias, InvStdDev = 1/sqrt(eps).
  OpRun op;
  op.op_type = "LayerNormalization";
  op.opset = 17;
  op.inputs = {dyn(Tensor::from_vector<float>({2, 3}, {5, 5, 5, 1, 2, 3})), cst(Tensor::from_vector<float>({3}, {1, 2, 3})),
               cst(Tensor::from_vector<float>({3}, {0.5f, -1, 0}))};
  op.num_outputs = 3;
  auto out = run_op(op);
  EXPECT_TRUE(tensors_equal(Tensor::from_vector<float>({3}, {out[0].data<float>()[0], out[0].data<float>()[1], out[0].data<float>()[2]}),
                            Tensor::from_vector<float>({3}, {0.5f, -1, 0})));
  EXPECT_NEAR(out[2].data<float>()[0], 1 / std::sqrt(1e-5), 1e-2);
  EXPECT_EQ(out[1].data<float>()[1], 2.0f);
  op.num_outputs = 1;
  op.inputs[1] = cst(Tensor::from_vector<float>({2}, {1, 2}));
  expect_error(op, "one value per element");
  op.inputs[1] = cst(Tensor::from_vector<double>({3}, {1, 2, 3}));
  expect_error(op, "X's type");
  op.inputs[1] = cst(Tensor::from_vector<float>({3}, {1, 2, 3}));
  op.attrs.set("stash_type", int64_t{0});
  expect_error(op, "stash_type");
  op.attrs = {};
  op.attrs.set("axis", int64_t{2});
  expect_error(op, "out of range");
}

// ---- Softmax / LogSoftmax --------------------------------------------------------------------

// Softmax along the given axes set: `group(i)` names the lane of element i; within a lane the
// reference is e^(x − max) / Σ e^(x − max), in double.
Tensor softmax_reference(const Tensor& x, const std::function<int64_t(int64_t)>& lane, bool log) {
  const int64_t n = x.numel();
  std::map<int64_t, double> mx, sum;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = lane(i);
    const double v = x.data<float>()[i];
    mx[l] = mx.count(l) ? std::max(mx[l], v) : v;
  }
  for (int64_t i = 0; i < n; ++i) sum[lane(i)] += std::exp(double(x.data<float>()[i]) - mx[lane(i)]);
  Tensor y(DType::Float32, x.shape());
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x.data<float>()[i]) - mx[lane(i)];
    y.data<float>()[i] = static_cast<float>(log ? d - std::log(sum[lane(i)]) : std::exp(d) / sum[lane(i)]);
  }
  return y;
}

TEST(Softmax, SingleAxisFromOpset13) {
  for (bool log : {false, true}) {
    for (int trial = 0; trial < 20; ++trial) {
      Shape s = random_shape(1, 4);
      const int64_t r = static_cast<int64_t>(s.size());
      const int64_t axis = static_cast<int64_t>(rng()() % r);
      Tensor x = random_floats(s, -20, 20);
      OpRun op;
      op.op_type = log ? "LogSoftmax" : "Softmax";
      op.opset = 13;
      if (trial % 4) op.attrs.set("axis", trial % 2 ? axis : axis - r);
      const int64_t a = trial % 4 ? axis : r - 1;  // default -1
      op.inputs = {dyn(x)};
      Tensor want = softmax_reference(x, [&](int64_t i) {
        auto idx = unravel(i, s);
        idx[a] = 0;
        int64_t f = 0;
        for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
        return f;
      }, log);
      EXPECT_TRUE(tensors_close(run_op(op)[0], want, 1e-5, 1e-6)) << shape_str(s) << " axis " << a;
    }
  }
}

TEST(Softmax, CoercedTo2DBeforeOpset13) {
  for (int opset : {1, 11}) {
    Shape s{2, 3, 4};
    Tensor x = random_floats(s);
    OpRun op;
    op.op_type = "Softmax";
    op.opset = opset;
    op.inputs = {dyn(x)};
    // Default axis 1: each of the 2 rows of 12 elements is one softmax.
    Tensor want = softmax_reference(x, [](int64_t i) { return i / 12; }, false);
    EXPECT_TRUE(tensors_close(run_op(op)[0], want, 1e-5, 1e-6));
    op.attrs.set("axis", int64_t{2});
    want = softmax_reference(x, [](int64_t i) { return i / 4; }, false);
    EXPECT_TRUE(tensors_close(run_op(op)[0], want, 1e-5, 1e-6));
  }
}

TEST(Softmax, LargeValuesAndErrors) {
  OpRun op;
  op.op_type = "Softmax";
  op.opset = 13;
  op.inputs = {dyn(Tensor::from_vector<float>({1, 3}, {10000.0f, 10001.0f, 10002.0f}))};
  EXPECT_TRUE(tensors_close(run_op(op)[0], Tensor::from_vector<float>({1, 3}, {0.09003057f, 0.24472847f, 0.66524096f}), 1e-6, 0));
  op.op_type = "LogSoftmax";
  op.inputs = {dyn(Tensor::from_vector<float>({2}, {-1e30f, 0.0f}))};
  Tensor y = run_op(op)[0];
  EXPECT_EQ(y.data<float>()[1], 0.0f);
  EXPECT_EQ(y.data<float>()[0], -1e30f);
  op.inputs = {dyn(Tensor::scalar<float>(1.0f))};
  expect_error(op, "rank >= 1");
  op.inputs = {dyn(Tensor(DType::Float32, {2, 3}))};
  op.attrs.set("axis", int64_t{2});
  expect_error(op, "out of range");
  op.attrs = {};
  op.inputs = {dyn(Tensor(DType::Int32, {2, 3}))};
  expect_error(op, "float32 or float64");
}

// ---- Reduce ----------------------------------------------------------------------------------

struct ReduceCase {
  const char* op;
  std::function<double(const std::vector<double>&)> f;
};

double sum_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

const std::vector<ReduceCase> kReduceCases = {
    {"ReduceSum", sum_of},
    {"ReduceMean", [](const std::vector<double>& v) { return sum_of(v) / static_cast<double>(v.size()); }},
    {"ReduceProd", [](const std::vector<double>& v) { double p = 1; for (double x : v) p *= x; return p; }},
    {"ReduceMin", [](const std::vector<double>& v) { double m = INFINITY; for (double x : v) m = std::min(m, x); return m; }},
    {"ReduceMax", [](const std::vector<double>& v) { double m = -INFINITY; for (double x : v) m = std::max(m, x); return m; }},
    {"ReduceL1", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += std::fabs(x); return s; }},
    {"ReduceL2", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += x * x; return std::sqrt(s); }},
    {"ReduceSumSquare", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += x * x; return s; }},
    {"ReduceLogSum", [](const std::vector<double>& v) { return std::log(sum_of(v)); }},
    {"ReduceLogSumExp", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += std::exp(x); return std::log(s); }},
};

// Reduces x over `axes` (all when empty) with f, naively: every input element is added to the
// list of the output element its kept coordinates name.
Tensor reduce_reference(const Tensor& x, std::vector<int64_t> axes, bool keepdims,
                        const std::function<double(const std::vector<double>&)>& f) {
  const Shape& s = x.shape();
  std::vector<bool> red(s.size(), axes.empty());
  for (int64_t a : axes) red[a < 0 ? a + static_cast<int64_t>(s.size()) : a] = true;
  Shape out, kept;
  for (size_t d = 0; d < s.size(); ++d) {
    if (!red[d]) kept.push_back(s[d]);
    if (!red[d] || keepdims) out.push_back(red[d] ? 1 : s[d]);
  }
  int64_t n_out = 1;
  for (int64_t d : kept) n_out *= d;
  std::vector<std::vector<double>> lists(static_cast<size_t>(n_out));
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = unravel(i, s);
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d)
      if (!red[d]) o = o * s[d] + idx[d];
    lists[o].push_back(x.as_double(i));
  }
  Tensor y(DType::Float32, out);
  for (int64_t o = 0; o < n_out; ++o) y.data<float>()[o] = static_cast<float>(f(lists[o]));
  return y;
}

TEST(Reduce, AllOpsRandomAxesAgainstNaive) {
  for (const ReduceCase& c : kReduceCases) {
    SCOPED_TRACE(c.op);
    const bool positive = std::string(c.op) == "ReduceLogSum";
    for (int trial = 0; trial < 25; ++trial) {
      Shape s = random_shape(0, 4);
      const int64_t r = static_cast<int64_t>(s.size());
      Tensor x = random_floats(s, positive ? 0.1 : -2, 2);
      std::vector<int64_t> axes;
      for (int64_t d = 0; d < r; ++d)
        if (rng()() % 2) axes.push_back(rng()() % 2 ? d : d - r);
      const bool keepdims = trial % 3 != 0;
      // Opset 13 (axes attribute, ReduceSum: input) and opset 18 (axes input for all).
      for (int opset : {13, 18}) {
        OpRun op;
        op.op_type = c.op;
        op.opset = opset;
        op.attrs.set("keepdims", int64_t{keepdims});
        op.inputs = {dyn(x)};
        const bool axes_input = opset == 18 || std::string(c.op) == "ReduceSum";
        if (!axes.empty()) {
          if (axes_input) op.inputs.push_back(cst(Tensor::from_vector<int64_t>({static_cast<int64_t>(axes.size())}, axes)));
          else op.attrs.set("axes", axes);
        }
        Tensor want = reduce_reference(x, axes, keepdims, c.f);
        EXPECT_TRUE(tensors_close(run_op(op)[0], want, 1e-5, 1e-6))
            << "opset " << opset << " shape " << shape_str(s) << " axes " << shape_str(axes) << " keepdims " << keepdims;
      }
    }
  }
}

TEST(Reduce, NoopWithEmptyAxesAndEmptyReductions) {
  Tensor x = random_floats({2, 3});
  OpRun op;
  op.op_type = "ReduceSum";
  op.opset = 13;
  op.attrs.set("noop_with_empty_axes", int64_t{1});
  op.inputs = {dyn(x)};
  EXPECT_TRUE(tensors_equal(run_op(op)[0], x));
  op.inputs.push_back(cst(Tensor(DType::Int64, {0})));
  EXPECT_TRUE(tensors_equal(run_op(op)[0], x));
  op.attrs = {};
  EXPECT_EQ(run_op(op)[0].shape(), (Shape{1, 1}));
  // Reducing a dim of size 0: the reduction's identity.
  Tensor e(DType::Float32, {2, 0});
  auto reduce = [&](const char* name) {
    OpRun r;
    r.op_type = name;
    r.opset = 13;
    r.attrs.set("axes", std::vector<int64_t>{1});
    r.attrs.set("keepdims", int64_t{0});
    r.inputs = {dyn(e)};
    if (std::string(name) == "ReduceSum") {
      r.attrs = attrs_of({{"keepdims", int64_t{0}}});
      r.inputs.push_back(cst(Tensor::from_vector<int64_t>({1}, {1})));
    }
    return run_op(r)[0];
  };
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(tensors_equal(reduce("ReduceSum"), Tensor::from_vector<float>({2}, {0, 0})));
  EXPECT_TRUE(tensors_equal(reduce("ReduceProd"), Tensor::from_vector<float>({2}, {1, 1})));
  EXPECT_TRUE(tensors_equal(reduce("ReduceMin"), Tensor::from_vector<float>({2}, {inf, inf})));
  EXPECT_TRUE(tensors_equal(reduce("ReduceMax"), Tensor::from_vector<float>({2}, {-inf, -inf})));
  EXPECT_TRUE(std::isnan(reduce("ReduceMean").data<float>()[0]));
  EXPECT_TRUE(tensors_equal(reduce("ReduceLogSumExp"), Tensor::from_vector<float>({2}, {-inf, -inf})));
}

TEST(Reduce, IntegersWrapAndKeepTheirType) {
  Tensor x = Tensor::from_vector<int8_t>({2, 3}, {100, 100, -128, 127, 1, 1});
  OpRun op;
  op.op_type = "ReduceSum";
  op.opset = 13;
  op.attrs.set("keepdims", int64_t{0});
  op.inputs = {dyn(x), cst(Tensor::from_vector<int64_t>({1}, {1}))};
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::from_vector<int8_t>({2}, {72, -127})));  // 72 = (100+100-128) mod 256
  op.op_type = "ReduceMax";
  op.opset = 18;
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::from_vector<int8_t>({2}, {100, 127})));
  op.op_type = "ReduceMin";
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::from_vector<int8_t>({2}, {-128, 1})));
  Tensor u = Tensor::from_vector<uint8_t>({3}, {0, 255, 7});
  op.inputs = {dyn(u)};
  op.op_type = "ReduceMax";
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::scalar<uint8_t>(255)));
  Tensor i64 = Tensor::from_vector<int64_t>({2, 2}, {3, 4, 5, 6});
  op.op_type = "ReduceProd";
  op.inputs = {dyn(i64), cst(Tensor::from_vector<int64_t>({1}, {0}))};
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::from_vector<int64_t>({2}, {15, 24})));
  op.op_type = "ReduceMean";
  EXPECT_TRUE(tensors_equal(run_op(op)[0], Tensor::from_vector<int64_t>({2}, {4, 5})));
}

TEST(Reduce, NanPropagatesThroughMinMax) {
  Tensor x = Tensor::from_vector<float>({3}, {1.0f, std::nanf(""), -1.0f});
  for (const char* name : {"ReduceMin", "ReduceMax"}) {
    OpRun op;
    op.op_type = name;
    op.opset = 13;
    op.inputs = {dyn(x)};
    EXPECT_TRUE(std::isnan(run_op(op)[0].data<float>()[0])) << name;
  }
}

// ArgMax / ArgMin against a naive loop: every axis, keepdims, select_last_index, many ties
// (values from a small set), several types; NaN as ONNX Runtime 1.30 handles it (measured: plain
// comparisons, except a 1-D input with select_last_index=0, where the first NaN wins).
TEST(ArgMaxMin, RandomAxesTiesAndNan) {
  for (int k = 0; k < 80; ++k) {
    const Shape s = random_shape(1, 4, 5);
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t axis = static_cast<int64_t>(rng()() % rank) - (k % 2 ? rank : 0);
    const int64_t keep = k % 3 ? 1 : 0, last = (k / 2) % 2;
    const bool is_max = k % 4 < 2;
    const DType t = k % 5 == 4 ? DType::UInt8 : DType::Float32;
    Tensor x(t, s);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int v = static_cast<int>(rng()() % 5);
      if (t == DType::UInt8) x.data<uint8_t>()[i] = static_cast<uint8_t>(v);
      else x.data<float>()[i] = rng()() % 7 == 0 && k % 3 == 0 ? std::numeric_limits<float>::quiet_NaN() : v - 2.0f;
    }
    OpRun r;
    r.op_type = is_max ? "ArgMax" : "ArgMin";
    r.opset = 13;
    r.attrs = attrs_of({{"axis", axis}, {"keepdims", keep}, {"select_last_index", last}});
    r.inputs = {dyn(x)};
    const Tensor y = run_op(r)[0];
    const int64_t ax = axis < 0 ? axis + rank : axis;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < ax; ++d) outer *= s[d];
    for (int64_t d = ax + 1; d < rank; ++d) inner *= s[d];
    Shape want_shape = s;
    if (keep) want_shape[static_cast<size_t>(ax)] = 1;
    else want_shape.erase(want_shape.begin() + ax);
    ASSERT_EQ(y.shape(), want_shape) << shape_str(s) << " axis " << axis;
    ASSERT_EQ(y.dtype(), DType::Int64);
    for (int64_t o = 0; o < outer * inner; ++o) {
      const int64_t base = (o / inner) * s[ax] * inner + o % inner;
      auto at = [&](int64_t j) { return x.as_double(base + j * inner); };
      int64_t want = -1;
      if (rank == 1 && !last)
        for (int64_t j = 0; j < s[ax] && want < 0; ++j)
          if (std::isnan(at(j))) want = j;
      if (want < 0) {
        want = 0;
        for (int64_t j = 1; j < s[ax]; ++j) {
          const double a = at(j), b = at(want);
          if (is_max ? (last ? a >= b : a > b) : (last ? a <= b : a < b)) want = j;
        }
      }
      EXPECT_EQ(y.data<int64_t>()[o], want) << r.op_type << " " << shape_str(s) << " axis " << axis << " last " << last
                                            << " output " << o;
    }
  }
}

TEST(ArgMaxMin, MatchesOnnxRuntimeWithNan) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> row = {-3, nan, 2, 3, 3, nan, -7, 2};
  ModelBuilder b;
  b.opset("", 13);
  std::map<std::string, Tensor> inputs = {{"v", Tensor::from_vector<float>({8}, row)},
                                          {"m", Tensor::from_vector<float>({2, 4}, row)},
                                          {"u", random_floats({3, 4, 5}, -2, 2)}};
  b.input("v", DType::Float32, {8}).input("m", DType::Float32, {2, 4}).input("u", DType::Float32, {3, 4, 5});
  std::vector<std::string> outs;
  int id = 0;
  for (const char* op : {"ArgMax", "ArgMin"})
    for (int64_t last : {0, 1})
      for (const auto& [in, axis] : std::vector<std::pair<std::string, int64_t>>{{"v", 0}, {"m", 1}, {"m", 0}, {"u", 1}, {"u", -1}}) {
        const std::string y = "y" + std::to_string(id++);
        b.node(op, {in}, {y}, attrs_of({{"axis", axis}, {"keepdims", int64_t{id % 2}}, {"select_last_index", last}}));
        b.output(y, DType::Int64);
        outs.push_back(y);
      }
  expect_matches_ort(b.save("argmax_nan.onnx"), inputs, outs);
}

TEST(Reduce, ClearErrors) {
  OpRun op;
  op.op_type = "ReduceSum";
  op.opset = 13;
  op.inputs = {dyn(Tensor(DType::Float32, {2, 3})), cst(Tensor::from_vector<int64_t>({2}, {1, -1}))};
  expect_error(op, "more than once");
  op.inputs = {dyn(Tensor(DType::Float32, {2, 3})), cst(Tensor::from_vector<int64_t>({1}, {2}))};
  expect_error(op, "out of range");
  op.inputs = {dyn(Tensor(DType::Float32, {2, 3})), dyn(Tensor::from_vector<int64_t>({1}, {1}))};
  expect_error(op, "must be a constant");
  op.op_type = "ReduceMean";
  op.opset = 18;
  op.inputs = {dyn(Tensor(DType::Float32, {2, 3}))};
  op.attrs.set("axes", std::vector<int64_t>{0});
  expect_error(op, "axes is an input");
  op.attrs = {};
  op.op_type = "ReduceL2";
  op.inputs = {dyn(Tensor(DType::Int32, {2, 3}))};
  expect_error(op, "float32 or float64");
  op.op_type = "ReduceSum";
  op.inputs = {dyn(Tensor(DType::String, {2}))};
  expect_error(op, "string");
}

TEST(Reduce, ThreadsGiveTheSameResult) {
  Tensor x = random_floats({17, 64, 33});
  for (std::vector<int64_t> axes : {std::vector<int64_t>{0}, {1}, {2}, {0, 2}}) {
    OpRun op;
    op.op_type = "ReduceMean";
    op.opset = 13;
    op.attrs.set("axes", axes);
    op.inputs = {dyn(x)};
    Tensor one = run_op(op)[0];
    op.threads = 2;
    EXPECT_TRUE(tensors_equal(run_op(op)[0], one));
  }
}


// ---- LRN -----------------------------------------------------------------------------------

// The spec's formula in double: y = x / (bias + alpha/size · Σ x_j²)^beta over the window
// [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉] ∩ [0, C).
Tensor reference_lrn(const Tensor& x, int64_t size, double alpha, double beta, double bias) {
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], inner = x.numel() / (n * c);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  Tensor y(x.dtype(), s);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < inner; ++i) {
        double sum = 0;
        for (int64_t j = std::max<int64_t>(0, ch - lo); j <= std::min(c - 1, ch + hi); ++j) {
          const double v = x.as_double((b * c + j) * inner + i);
          sum += v * v;
        }
        const int64_t at = (b * c + ch) * inner + i;
        const double v = x.as_double(at) / std::pow(bias + alpha / static_cast<double>(size) * sum, beta);
        if (x.dtype() == DType::Float32) y.data<float>()[at] = static_cast<float>(v);
        else y.data<double>()[at] = v;
      }
  return y;
}

OpRun lrn_op(const Tensor& x, int64_t size, float alpha, float beta, float bias) {
  OpRun r;
  r.op_type = "LRN";
  r.opset = 13;
  r.attrs = attrs_of({{"size", size}, {"alpha", alpha}, {"beta", beta}, {"bias", bias}});
  r.inputs = {dyn(x)};
  return r;
}

TEST(Lrn, RandomShapesAndWindowsMatchFormula) {
  for (int k = 0; k < 60; ++k) {
    Shape s = random_shape(2, 5, 7);
    s[1] = 1 + static_cast<int64_t>(rng()() % 40);
    const int64_t size = 1 + static_cast<int64_t>(rng()() % 9);  // even sizes too
    const float alpha = std::pow(10.0f, -static_cast<float>(rng()() % 6)) * (k % 7 == 3 ? 50.0f : 1.0f);
    const float beta = k % 3 ? 0.75f : static_cast<float>(std::uniform_real_distribution<double>(0.1, 1.5)(rng()));
    const float bias = k % 4 ? 1.0f : 2.5f;
    Tensor x = random_floats(s, -20, 20);
    if (k % 5 == 4) {  // float64
      Tensor d(DType::Float64, s);
      for (int64_t i = 0; i < x.numel(); ++i) d.data<double>()[i] = x.data<float>()[i];
      x = d;
    }
    const Tensor want = reference_lrn(x, size, alpha, beta, bias);
    for (int threads : {1, 2}) {
      OpRun r = lrn_op(x, size, alpha, beta, bias);
      r.threads = threads;
      // The window sum runs from channel to channel (adding the entering square, subtracting
      // the leaving one, as ONNX Runtime does), so large squares leave their rounding behind.
      EXPECT_TRUE(tensors_close(run_op(r)[0], want, 3e-5, 1e-30))
          << shape_str(s) << " size " << size << " alpha " << alpha << " beta " << beta << " bias " << bias;
    }
  }
}

// ONNX Runtime's LRN (4-D, odd sizes): the same window sums, and a pow that may differ from
// libm's by an ULP, so results within a few float ULP of each other.
TEST(Lrn, WithinUlpsOfOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  ModelBuilder b;
  b.opset("", 13);
  std::map<std::string, std::string> inputs;
  std::vector<std::pair<std::string, Tensor>> xs;
  for (int k = 0; k < 12; ++k) {
    const std::string id = std::to_string(k);
    const Shape s{1 + k % 2, 3 + 7 * k % 40, 1 + k % 9, 2 + k % 5};
    const Tensor x = random_floats(s, -20, 20);
    b.input("x" + id, DType::Float32, s);
    Attributes a = attrs_of({{"size", int64_t{1 + 2 * (k % 5)}}, {"alpha", k % 3 ? 1e-4f : 0.02f},
                             {"beta", k % 4 ? 0.75f : 0.5f}, {"bias", k % 5 ? 1.0f : 2.0f}});
    b.node("LRN", {"x" + id}, {"y" + id}, a);
    b.output("y" + id, DType::Float32);
    inputs["x" + id] = save_npy_temp("lrn_x" + id, x);
    xs.emplace_back(id, x);
  }
  const std::string path = b.save("lrn_ort.onnx");
  const auto ort = run_ort(path, inputs, "");
  Session session(path);
  std::map<std::string, Tensor> feed;
  for (const auto& [id, x] : xs) feed["x" + id] = x;
  const auto mine = quint_tensors(session, feed);
  int64_t differ = 0, total = 0;
  for (const auto& [id, x] : xs) {
    const Tensor &o = ort.at("y" + id), &q = mine.at("y" + id);
    ASSERT_EQ(o.numel(), q.numel());
    for (int64_t i = 0; i < o.numel(); ++i) {
      int32_t bo, bq;
      std::memcpy(&bo, &o.data<float>()[i], 4);
      std::memcpy(&bq, &q.data<float>()[i], 4);
      EXPECT_LE(std::abs(int64_t{bo} - bq), 4) << "y" << id << "[" << i << "]: " << o.data<float>()[i] << " vs " << q.data<float>()[i];
      differ += bo != bq;
      ++total;
    }
  }
  std::printf("[ LRN ] %lld of %lld floats differ from ONNX Runtime's (by at most 4 ULP)\n", static_cast<long long>(differ),
              static_cast<long long>(total));
}

// A window far wider than the channels (up to INT64_MAX) covers them all, costs no more than
// C per pixel, and overflows no index.
TEST(Lrn, HugeWindows) {
  const Tensor x = random_floats({2, 7, 3, 5}, -5, 5);
  for (int64_t size : {int64_t{15}, int64_t{1} << 40, std::numeric_limits<int64_t>::max()}) {
    OpRun r = lrn_op(x, size, 3.0f, 0.75f, 1.0f);
    EXPECT_TRUE(tensors_close(run_op(r)[0], reference_lrn(x, size, 3.0f, 0.75f, 1.0f), 3e-5, 1e-30)) << "size " << size;
  }
}

TEST(Lrn, ClearErrors) {
  const Tensor x = random_floats({1, 3, 2, 2});
  OpRun r = lrn_op(x, 0, 1e-4f, 0.75f, 1.0f);
  expect_error(r, "size must be >= 1");
  r = lrn_op(Tensor(DType::Float32, {4}), 3, 1e-4f, 0.75f, 1.0f);
  expect_error(r, "rank >= 2");
  r = lrn_op(x, 3, 1e-4f, 0.75f, 1.0f);
  r.attrs = attrs_of({{"alpha", 1e-4f}});
  expect_error(r, "size");
  r = lrn_op(Tensor(DType::Int32, {1, 3, 2, 2}), 3, 1e-4f, 0.75f, 1.0f);
  expect_error(r, "float32 or float64");
}

}  // namespace

}  // namespace quint::test
