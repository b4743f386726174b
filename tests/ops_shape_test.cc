// Shape and data-movement operators against naive references written from the ONNX spec (every
// output element located from its multi-index), on random shapes, every dtype including
// strings, and the spec's edge cases; Cast against numpy's and ONNX Runtime's conventions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "op_harness.h"
#include "quint/session.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(4321);
  return g;
}

std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}
int64_t ravel(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return f;
}

// Distinct values 0, 1, 2 … (as int32) so that any misplaced element shows.
Tensor iota(const Shape& s) {
  Tensor t(DType::Int32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(i);
  return t;
}
// The same as strings "e0", "e1" …
Tensor iota_strings(const Shape& s) {
  Tensor t(DType::String, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<std::string>()[i] = "e" + std::to_string(i);
  return t;
}

Shape random_shape(int max_rank = 4, int max_dim = 5) {
  Shape s(static_cast<size_t>(rng()() % (max_rank + 1)));
  for (auto& d : s) d = 1 + static_cast<int64_t>(rng()() % max_dim);
  return s;
}

Tensor i64(std::vector<int64_t> v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); }

OpRun op(const std::string& type, int opset, std::vector<OpInput> inputs, Attributes attrs = {}) {
  OpRun r;
  r.op_type = type;
  r.opset = opset;
  r.inputs = std::move(inputs);
  r.attrs = std::move(attrs);
  return r;
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

// Output quantization the build function declares for a quantized first input.
QuantParams built_quant(const std::string& type, int opset, const std::vector<OpInput>& inputs,
                        const Attributes& attrs, const QuantParams& q, size_t output = 0, size_t num_outputs = 1) {
  const ops::OpDef* def = ops::Registry::builtin().find("ai.onnx", type, opset);
  EXPECT_NE(def, nullptr);
  ops::NodeInfo info{"n", type, "ai.onnx", opset};
  std::vector<ops::ValueInfo> infos(inputs.size());
  std::vector<const ops::ValueInfo*> ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    infos[i] = {inputs[i].value.dtype(), inputs[i].value.shape(), inputs[i].constant ? &inputs[i].value : nullptr,
                i == 0 ? q : QuantParams{}};
    ptrs.push_back(&infos[i]);
  }
  ops::KernelOptions options;
  ops::BuildContext ctx(info, attrs, ptrs, num_outputs, options, nullptr);
  def->build(ctx);
  return ctx.output(output).quant;
}

QuantParams per_tensor(float s, int32_t z) { return {{s}, {z}, -1}; }
QuantParams per_axis(int axis, int n) {
  QuantParams q;
  for (int i = 0; i < n; ++i) {
    q.scale.push_back(0.5f + i);
    q.zero_point.push_back(i);
  }
  q.axis = axis;
  return q;
}

// ---- Reshape family --------------------------------------------------------------------------

TEST(ShapeOps, ReshapeZeroAndMinusOne) {
  Tensor x = iota({2, 3, 4});
  auto reshape = [&](std::vector<int64_t> spec, int64_t allowzero = 0, Tensor data = Tensor()) {
    Attributes a;
    if (allowzero) a.set("allowzero", allowzero);
    return run_op(op("Reshape", 14, {dyn(data.defined() ? data : x), cst(i64(spec))}, a))[0];
  };
  EXPECT_EQ(reshape({0, -1}).shape(), (Shape{2, 12}));
  EXPECT_EQ(reshape({-1, 0, 2}).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(reshape({4, 0, 2}).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(reshape({24}).shape(), (Shape{24}));
  EXPECT_TRUE(tensors_equal(reshape({6, -1}), iota({6, 4})));
  // allowzero: 0 is a zero-size dim.
  EXPECT_EQ(reshape({0, 5}, 1, iota({0, 3})).shape(), (Shape{0, 5}));
  EXPECT_EQ(reshape({0, 5}, 0, iota({0, 3})).shape(), (Shape{0, 5}));
  // Strings are copied as objects.
  Tensor s = iota_strings({2, 3});
  Tensor rs = reshape({3, 2}, 0, s);
  EXPECT_TRUE(tensors_equal(rs, s.reshaped({3, 2}).clone()));
  // Errors.
  expect_error(op("Reshape", 14, {dyn(x), cst(i64({-1, -1}))}), "more than one -1");
  expect_error(op("Reshape", 14, {dyn(x), cst(i64({5, -1}))}), "cannot reshape");
  expect_error(op("Reshape", 14, {dyn(x), cst(i64({7, 4}))}), "cannot reshape");
  expect_error(op("Reshape", 14, {dyn(x), cst(i64({0, -1}))}, attrs_of({{"allowzero", int64_t{1}}})), "both 0 and -1");
  expect_error(op("Reshape", 14, {dyn(iota({0, 3})), cst(i64({0, -1}))}), "cannot infer");
  expect_error(op("Reshape", 14, {dyn(x), dyn(i64({24}))}), "must be a constant");
  expect_error(op("Reshape", 14, {dyn(x), cst(i64({2, 3, 4, 0, 0}))}), "copies dim");
  // Opset 1: the shape is an attribute.
  EXPECT_EQ(run_op(op("Reshape", 1, {dyn(x)}, attrs_of({{"shape", std::vector<int64_t>{3, 8}}})))[0].shape(), (Shape{3, 8}));
}

TEST(ShapeOps, FlattenAxes) {
  Tensor x = iota({2, 3, 4, 5});
  const std::vector<std::pair<int64_t, Shape>> cases = {
      {0, {1, 120}}, {1, {2, 60}}, {2, {6, 20}}, {3, {24, 5}}, {4, {120, 1}}, {-1, {24, 5}}, {-4, {1, 120}}};
  for (const auto& [axis, want] : cases) {
    Tensor y = run_op(op("Flatten", 13, {dyn(x)}, attrs_of({{"axis", axis}})))[0];
    EXPECT_EQ(y.shape(), want) << axis;
    EXPECT_TRUE(tensors_equal(y, iota(want)));
  }
  expect_error(op("Flatten", 13, {dyn(x)}, attrs_of({{"axis", int64_t{5}}})), "out of range");
  expect_error(op("Flatten", 9, {dyn(x)}, attrs_of({{"axis", int64_t{-1}}})), "out of range");
}

TEST(ShapeOps, SqueezeUnsqueeze) {
  Tensor x = iota({1, 3, 1, 2});
  // Opset 13: axes input; opset 11: attribute; no axes: every 1.
  EXPECT_EQ(run_op(op("Squeeze", 13, {dyn(x), cst(i64({0, -2}))}))[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(run_op(op("Squeeze", 13, {dyn(x)}))[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(run_op(op("Squeeze", 11, {dyn(x)}, attrs_of({{"axes", std::vector<int64_t>{2}}})))[0].shape(), (Shape{1, 3, 2}));
  expect_error(op("Squeeze", 13, {dyn(x), cst(i64({1}))}), "not 1");
  expect_error(op("Squeeze", 13, {dyn(x), cst(i64({0, 0}))}), "more than once");
  expect_error(op("Squeeze", 13, {dyn(x), cst(i64({4}))}), "out of range");

  Tensor y = iota({3, 4});
  EXPECT_EQ(run_op(op("Unsqueeze", 13, {dyn(y), cst(i64({0, 3}))}))[0].shape(), (Shape{1, 3, 4, 1}));
  EXPECT_EQ(run_op(op("Unsqueeze", 13, {dyn(y), cst(i64({-1, 1}))}))[0].shape(), (Shape{3, 1, 4, 1}));
  EXPECT_EQ(run_op(op("Unsqueeze", 13, {dyn(y), cst(i64({2, 0, 1}))}))[0].shape(), (Shape{1, 1, 1, 3, 4}));
  EXPECT_EQ(run_op(op("Unsqueeze", 11, {dyn(y)}, attrs_of({{"axes", std::vector<int64_t>{1}}})))[0].shape(), (Shape{3, 1, 4}));
  EXPECT_TRUE(tensors_equal(run_op(op("Unsqueeze", 13, {dyn(y), cst(i64({1}))}))[0], iota({3, 1, 4})));
  EXPECT_EQ(run_op(op("Unsqueeze", 13, {dyn(Tensor::scalar<float>(1)), cst(i64({0}))}))[0].shape(), (Shape{1}));
  expect_error(op("Unsqueeze", 13, {dyn(y), cst(i64({0, 0}))}), "more than once");
  expect_error(op("Unsqueeze", 13, {dyn(y), cst(i64({3}))}), "out of range");
  expect_error(op("Unsqueeze", 13, {dyn(y), dyn(i64({0}))}), "must be a constant");
}

// ---- Transpose, Slice, Expand, Tile, Pad ------------------------------------------------------

TEST(ShapeOps, TransposeRandomPermutations) {
  for (int trial = 0; trial < 30; ++trial) {
    Shape s = random_shape(5);
    std::vector<int64_t> perm(s.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    std::shuffle(perm.begin(), perm.end(), rng());
    const bool strings = trial % 5 == 0;
    Tensor x = strings ? iota_strings(s) : iota(s);
    Tensor y = run_op(op("Transpose", 13, {dyn(x)}, attrs_of({{"perm", perm}})))[0];
    Shape out;
    for (int64_t p : perm) out.push_back(s[p]);
    ASSERT_EQ(y.shape(), out);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto oi = unravel(i, out);
      std::vector<int64_t> ii(s.size());
      for (size_t k = 0; k < perm.size(); ++k) ii[perm[k]] = oi[k];
      if (strings) ASSERT_EQ(y.data<std::string>()[i], x.data<std::string>()[ravel(ii, s)]);
      else ASSERT_EQ(y.data<int32_t>()[i], x.data<int32_t>()[ravel(ii, s)]);
    }
  }
  // Default: reversed dims.
  EXPECT_EQ(run_op(op("Transpose", 13, {dyn(iota({2, 3, 4}))}))[0].shape(), (Shape{4, 3, 2}));
  expect_error(op("Transpose", 13, {dyn(iota({2, 3}))}, attrs_of({{"perm", std::vector<int64_t>{0, 0}}})), "permutation");
  expect_error(op("Transpose", 13, {dyn(iota({2, 3}))}, attrs_of({{"perm", std::vector<int64_t>{0}}})), "rank");
}

// The spec's Slice index list for one axis, enumerated element by element.
std::vector<int64_t> slice_indices(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
  }
  std::vector<int64_t> idx;
  if (dim == 0) return idx;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) idx.push_back(i);
  return idx;
}

TEST(ShapeOps, SliceRandomAgainstSpec) {
  std::uniform_int_distribution<int64_t> pos(-8, 8), st(-3, 3);
  for (int trial = 0; trial < 200; ++trial) {
    Shape s = random_shape(4, 6);
    if (s.empty()) s = {5};
    Tensor x = iota(s);
    const int64_t r = static_cast<int64_t>(s.size());
    std::vector<int64_t> axes, starts, ends, steps;
    for (int64_t a = 0; a < r; ++a) {
      if (rng()() % 3 == 0) continue;
      axes.push_back(rng()() % 2 ? a : a - r);
      starts.push_back(rng()() % 10 == 0 ? std::numeric_limits<int64_t>::min() : pos(rng()));
      ends.push_back(rng()() % 10 == 0 ? std::numeric_limits<int64_t>::max() : pos(rng()));
      int64_t step = st(rng());
      steps.push_back(step == 0 ? 1 : step);
    }
    std::vector<std::vector<int64_t>> lists(s.size());
    for (int64_t a = 0; a < r; ++a)
      for (int64_t i = 0; i < s[a]; ++i) lists[a].push_back(i);
    for (size_t k = 0; k < axes.size(); ++k) {
      const int64_t a = axes[k] < 0 ? axes[k] + r : axes[k];
      lists[a] = slice_indices(s[a], starts[k], ends[k], steps[k]);
    }
    Shape out;
    for (const auto& l : lists) out.push_back(static_cast<int64_t>(l.size()));
    Tensor y = run_op(op("Slice", 13, {dyn(x), cst(i64(starts)), cst(i64(ends)), cst(i64(axes)), cst(i64(steps))}))[0];
    ASSERT_EQ(y.shape(), out) << "starts " << shape_str(starts) << " ends " << shape_str(ends) << " axes " << shape_str(axes)
                              << " steps " << shape_str(steps) << " of " << shape_str(s);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto oi = unravel(i, out);
      std::vector<int64_t> ii(s.size());
      for (size_t d = 0; d < s.size(); ++d) ii[d] = lists[d][oi[d]];
      ASSERT_EQ(y.data<int32_t>()[i], x.data<int32_t>()[ravel(ii, s)]);
    }
  }
}

TEST(ShapeOps, SliceOptionalInputsOpset10AndErrors) {
  Tensor x = iota({4, 5});
  // No axes/steps: starts/ends apply to the first dims in order.
  Tensor y = run_op(op("Slice", 10, {dyn(x), cst(i64({1})), cst(i64({3}))}))[0];
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  // int32 bounds are allowed.
  y = run_op(op("Slice", 13, {dyn(x), cst(Tensor::from_vector<int32_t>({1}, {-2})), cst(Tensor::from_vector<int32_t>({1}, {100})),
                              cst(Tensor::from_vector<int32_t>({1}, {1}))}))[0];
  EXPECT_EQ(y.shape(), (Shape{4, 2}));
  // Opset 1: attributes.
  y = run_op(op("Slice", 1, {dyn(x)},
                attrs_of({{"starts", std::vector<int64_t>{0, 1}}, {"ends", std::vector<int64_t>{1, 1000}}})))[0];
  EXPECT_EQ(y.shape(), (Shape{1, 4}));
  expect_error(op("Slice", 13, {dyn(x), cst(i64({0})), cst(i64({1})), cst(i64({0})), cst(i64({0}))}), "steps must not be 0");
  expect_error(op("Slice", 13, {dyn(x), cst(i64({0, 0})), cst(i64({1}))}), "ends has 1");
  expect_error(op("Slice", 13, {dyn(x), cst(i64({0, 0})), cst(i64({1, 1})), cst(i64({1, -1}))}), "more than once");
  expect_error(op("Slice", 13, {dyn(x), dyn(i64({0})), cst(i64({1}))}), "must be a constant");
}

TEST(ShapeOps, ExpandAndTile) {
  Tensor x = iota({3, 1});
  Tensor y = run_op(op("Expand", 13, {dyn(x), cst(i64({2, 1, 4}))}))[0];
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data<int32_t>()[i], unravel(i, {2, 3, 4})[1]);
  // A shape smaller than the input's keeps the input's dims.
  EXPECT_EQ(run_op(op("Expand", 13, {dyn(iota({2, 3})), cst(i64({1}))}))[0].shape(), (Shape{2, 3}));
  expect_error(op("Expand", 13, {dyn(iota({2, 3})), cst(i64({4}))}), "cannot be broadcast");

  for (int trial = 0; trial < 20; ++trial) {
    Shape s = random_shape(3, 4);
    std::vector<int64_t> reps;
    for (size_t d = 0; d < s.size(); ++d) reps.push_back(static_cast<int64_t>(rng()() % 4));
    Tensor t = trial % 4 == 0 ? iota_strings(s) : iota(s);
    Tensor out = run_op(op("Tile", 13, {dyn(t), cst(i64(reps))}))[0];
    Shape want;
    for (size_t d = 0; d < s.size(); ++d) want.push_back(s[d] * reps[d]);
    ASSERT_EQ(out.shape(), want);
    for (int64_t i = 0; i < out.numel(); ++i) {
      auto oi = unravel(i, want);
      for (size_t d = 0; d < s.size(); ++d) oi[d] %= s[d];
      if (t.dtype() == DType::String) ASSERT_EQ(out.data<std::string>()[i], t.data<std::string>()[ravel(oi, s)]);
      else ASSERT_EQ(out.data<int32_t>()[i], t.data<int32_t>()[ravel(oi, s)]);
    }
  }
  expect_error(op("Tile", 13, {dyn(iota({2, 3})), cst(i64({2}))}), "rank");
  expect_error(op("Tile", 13, {dyn(iota({2, 3})), cst(i64({2, -1}))}), ">= 0");
}

// numpy.pad's index rule for one coordinate i (may be outside [0, n)); -1 for the constant border.
int64_t pad_source(int64_t i, int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "constant") return -1;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") return ((i % n) + n) % n;
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect, repeatedly
  return i;
}

TEST(ShapeOps, PadAllModesRandom) {
  for (const std::string mode : {"constant", "edge", "reflect", "wrap"}) {
    for (int trial = 0; trial < 30; ++trial) {
      Shape s = random_shape(3, 5);
      const size_t r = s.size();
      std::vector<int64_t> pads(2 * r);
      for (size_t d = 0; d < r; ++d) {
        // Crop at most the dim; pad up to 2 dims' worth (reflect beyond n-1 keeps reflecting).
        pads[d] = static_cast<int64_t>(rng()() % (2 * s[d] + 1)) - (mode == "constant" ? s[d] / 2 : 0);
        pads[d + r] = static_cast<int64_t>(rng()() % (2 * s[d] + 1)) - (mode == "constant" ? s[d] / 2 : 0);
        if (pads[d] + pads[d + r] + s[d] < 0) pads[d] = pads[d + r] = 0;
      }
      Tensor x = iota(s);
      Attributes a = attrs_of({{"mode", mode}});
      Tensor y = run_op(op("Pad", 19, {dyn(x), cst(i64(pads)), cst(Tensor::scalar<int32_t>(-7))}, a))[0];
      Shape out;
      for (size_t d = 0; d < r; ++d) out.push_back(s[d] + pads[d] + pads[d + r]);
      ASSERT_EQ(y.shape(), out) << mode << " pads " << shape_str(pads) << " of " << shape_str(s);
      for (int64_t i = 0; i < y.numel(); ++i) {
        auto oi = unravel(i, out);
        bool border = false;
        for (size_t d = 0; d < r; ++d) {
          oi[d] = pad_source(oi[d] - pads[d], s[d], mode);
          border |= oi[d] < 0;
        }
        ASSERT_EQ(y.data<int32_t>()[i], border ? -7 : x.data<int32_t>()[ravel(oi, s)]) << mode << " at " << i;
      }
    }
  }
}

TEST(ShapeOps, PadOpsetsValuesAndTypes) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  // Opset 2: attributes pads and value.
  Tensor y = run_op(op("Pad", 2, {dyn(x)}, attrs_of({{"pads", std::vector<int64_t>{0, 1, 0, 0}}, {"value", 9.5f}})))[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({2, 3}, {9.5f, 1, 2, 9.5f, 3, 4})));
  // Opset 11: constant_value omitted → 0; given at run time.
  y = run_op(op("Pad", 11, {dyn(x), cst(i64({1, 0, 0, 0}))}))[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({3, 2}, {0, 0, 1, 2, 3, 4})));
  y = run_op(op("Pad", 11, {dyn(x), cst(i64({0, 0, 1, 0})), dyn(Tensor::scalar<float>(-1))}))[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, -1, -1})));
  // uint8 with a quantized pad value (the zero point), and the quantization carried over.
  Tensor q = Tensor::from_vector<uint8_t>({1, 2}, {200, 255});
  y = run_op(op("Pad", 13, {dyn(q), cst(i64({0, 1, 0, 1})), cst(Tensor::scalar<uint8_t>(128))}))[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<uint8_t>({1, 4}, {128, 200, 255, 128})));
  QuantParams qp = built_quant("Pad", 13, {dyn(q), cst(i64({0, 1, 0, 1})), cst(Tensor::scalar<uint8_t>(128))}, {},
                               per_tensor(0.25f, 128));
  EXPECT_EQ(qp.scale, std::vector<float>{0.25f});
  EXPECT_EQ(qp.zero_point, std::vector<int32_t>{128});
  // Strings pad with "" or a given string.
  Tensor s = iota_strings({2});
  y = run_op(op("Pad", 13, {dyn(s), cst(i64({1, 1}))}))[0];
  ASSERT_EQ(y.shape(), (Shape{4}));
  EXPECT_EQ(y.data<std::string>()[0], "");
  EXPECT_EQ(y.data<std::string>()[1], "e0");
  EXPECT_EQ(y.data<std::string>()[3], "");
  // Opset 18 axes.
  y = run_op(op("Pad", 18, {dyn(x), cst(i64({1, 2})), OpInput::absent_input(), cst(i64({-1}))}))[0];
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  // Errors.
  expect_error(op("Pad", 13, {dyn(x), cst(i64({1, 1}))}), "pads has 2 values");
  expect_error(op("Pad", 13, {dyn(x), cst(i64({0, -3, 0, 0}))}), "crop more");
  expect_error(op("Pad", 13, {dyn(x), cst(i64({0, 0, 0, 0}))}, attrs_of({{"mode", std::string("wrap")}})), "opset 19");
  expect_error(op("Pad", 13, {dyn(x), cst(i64({0, 0, 0, 0}))}, attrs_of({{"mode", std::string("mirror")}})), "mirror");
  expect_error(op("Pad", 13, {dyn(x), cst(i64({0, 0, 0, 0})), dyn(Tensor::scalar<double>(1))}), "constant_value");
  expect_error(op("Pad", 13, {dyn(Tensor(DType::Float32, {0, 2})), cst(i64({1, 0, 0, 0}))}, attrs_of({{"mode", std::string("edge")}})),
               "no elements");
}

// ---- Concat, Split, Gather ---------------------------------------------------------------------

TEST(ShapeOps, ConcatRandom) {
  for (int trial = 0; trial < 30; ++trial) {
    Shape s = random_shape(4);
    if (s.empty()) s = {3};
    const int64_t r = static_cast<int64_t>(s.size());
    const int64_t axis = static_cast<int64_t>(rng()() % r);
    const bool strings = trial % 6 == 0;
    std::vector<Tensor> parts;
    std::vector<OpInput> inputs;
    const int n = 1 + static_cast<int>(rng()() % 3);
    for (int k = 0; k < n; ++k) {
      Shape sk = s;
      sk[axis] = static_cast<int64_t>(rng()() % 4);
      Tensor t = strings ? iota_strings(sk) : iota(sk);
      if (!strings)
        for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] += 1000 * k;
      parts.push_back(t);
      inputs.push_back(k % 2 ? cst(t) : dyn(t));
    }
    Tensor y = run_op(op("Concat", 13, inputs, attrs_of({{"axis", trial % 2 ? axis : axis - r}})))[0];
    Shape out = s;
    out[axis] = 0;
    for (const auto& p : parts) out[axis] += p.dim(axis);
    ASSERT_EQ(y.shape(), out);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto oi = unravel(i, out);
      size_t k = 0;
      while (oi[axis] >= parts[k].dim(axis)) oi[axis] -= parts[k++].dim(axis);
      const int64_t src = ravel(oi, parts[k].shape());
      if (strings) ASSERT_EQ(y.data<std::string>()[i], parts[k].data<std::string>()[src]);
      else ASSERT_EQ(y.data<int32_t>()[i], parts[k].data<int32_t>()[src]);
    }
  }
  expect_error(op("Concat", 13, {dyn(iota({2, 3})), dyn(iota({3, 3}))}, attrs_of({{"axis", int64_t{1}}})), "differs");
  expect_error(op("Concat", 13, {dyn(iota({2, 3})), dyn(iota({2}))}, attrs_of({{"axis", int64_t{0}}})), "rank");
  expect_error(op("Concat", 13, {dyn(iota({2})), dyn(Tensor(DType::Float32, {2}))}, attrs_of({{"axis", int64_t{0}}})), "float32");
  expect_error(op("Concat", 13, {dyn(iota({2}))}), "axis is required");
}

TEST(ShapeOps, SplitVariants) {
  Tensor x = iota({2, 6});
  auto split = [&](int opset, std::vector<OpInput> in, Attributes a, size_t outs) {
    OpRun r = op("Split", opset, std::move(in), std::move(a));
    r.num_outputs = outs;
    return run_op(r);
  };
  auto ys = split(13, {dyn(x)}, attrs_of({{"axis", int64_t{1}}}), 3);
  ASSERT_EQ(ys.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    ASSERT_EQ(ys[k].shape(), (Shape{2, 2}));
    EXPECT_EQ(ys[k].data<int32_t>()[0], 2 * k);
    EXPECT_EQ(ys[k].data<int32_t>()[2], 6 + 2 * k);
  }
  ys = split(13, {dyn(x), cst(i64({1, 0, 5}))}, attrs_of({{"axis", int64_t{-1}}}), 3);
  EXPECT_EQ(ys[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(ys[1].shape(), (Shape{2, 0}));
  EXPECT_EQ(ys[2].shape(), (Shape{2, 5}));
  EXPECT_EQ(ys[2].data<int32_t>()[5], 7);
  ys = split(11, {dyn(x)}, attrs_of({{"split", std::vector<int64_t>{1, 1}}}), 2);
  EXPECT_TRUE(tensors_equal(ys[1], Tensor::from_vector<int32_t>({1, 6}, {6, 7, 8, 9, 10, 11})));
  // Opset 18 num_outputs: ceil-sized parts, the last smaller.
  ys = split(18, {dyn(iota({7}))}, attrs_of({{"num_outputs", int64_t{3}}}), 3);
  EXPECT_EQ(ys[0].shape(), (Shape{3}));
  EXPECT_EQ(ys[2].shape(), (Shape{1}));
  EXPECT_EQ(ys[2].data<int32_t>()[0], 6);
  OpRun bad = op("Split", 13, {dyn(iota({7}))});
  bad.num_outputs = 2;
  expect_error(bad, "equal parts");
  bad = op("Split", 13, {dyn(iota({7})), cst(i64({3, 3}))});
  bad.num_outputs = 2;
  expect_error(bad, "add up to");
}

TEST(ShapeOps, GatherRandomAndNegativeIndices) {
  for (int trial = 0; trial < 30; ++trial) {
    Shape s = random_shape(3, 5);
    if (s.empty()) s = {4};
    const int64_t r = static_cast<int64_t>(s.size());
    const int64_t axis = static_cast<int64_t>(rng()() % r);
    const int64_t n = s[axis];
    Shape is = random_shape(2, 3);
    Tensor ind(trial % 2 ? DType::Int32 : DType::Int64, is);
    for (int64_t i = 0; i < ind.numel(); ++i) {
      const int64_t k = static_cast<int64_t>(rng()() % (2 * n)) - n;  // [-n, n)
      if (ind.dtype() == DType::Int32) ind.data<int32_t>()[i] = static_cast<int32_t>(k);
      else ind.data<int64_t>()[i] = k;
    }
    Tensor x = iota(s);
    Tensor y = run_op(op("Gather", 13, {dyn(x), trial % 3 ? cst(ind) : dyn(ind)}, attrs_of({{"axis", axis - (trial % 2) * r}})))[0];
    Shape out(s.begin(), s.begin() + axis);
    out.insert(out.end(), is.begin(), is.end());
    out.insert(out.end(), s.begin() + axis + 1, s.end());
    ASSERT_EQ(y.shape(), out);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto oi = unravel(i, out);
      std::vector<int64_t> pi(oi.begin() + axis, oi.begin() + axis + static_cast<long>(is.size()));
      int64_t k = ind.as_int64(ravel(pi, is));
      if (k < 0) k += n;
      std::vector<int64_t> ii(oi.begin(), oi.begin() + axis);
      ii.push_back(k);
      ii.insert(ii.end(), oi.begin() + axis + static_cast<long>(is.size()), oi.end());
      ASSERT_EQ(y.data<int32_t>()[i], x.data<int32_t>()[ravel(ii, s)]);
    }
  }
}

TEST(ShapeOps, GatherOutOfRange) {
  Tensor x = iota({3, 2});
  // Constant indices: a clear error at load.
  expect_error(op("Gather", 13, {dyn(x), cst(i64({0, 3}))}), "out of range [-3, 2]");
  expect_error(op("Gather", 13, {dyn(x), cst(i64({-4}))}), "out of range");
  // Run-time indices out of range end the run with an error (the kernel reports it through
  // RunContext::fail); in range, negative ones count from the end.
  expect_error(op("Gather", 13, {dyn(x), dyn(i64({2, 3, -4, -1}))}),
               "index 3 (at flat position 1 of indices) is out of range [-3, 2]");
  Tensor y = run_op(op("Gather", 13, {dyn(x), dyn(i64({2, -1, -3}))}))[0];
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<int32_t>({3, 2}, {4, 5, 4, 5, 0, 1})));
  Tensor s = iota_strings({2});
  expect_error(op("Gather", 13, {dyn(s), dyn(i64({1, 7}))}), "index 7");
  y = run_op(op("Gather", 13, {dyn(s), dyn(i64({1, -2}))}))[0];
  EXPECT_EQ(y.data<std::string>()[0], "e1");
  EXPECT_EQ(y.data<std::string>()[1], "e0");
  expect_error(op("Gather", 13, {dyn(x), cst(Tensor::from_vector<float>({1}, {0}))}), "indices");
  expect_error(op("Gather", 13, {dyn(Tensor::scalar<float>(1)), cst(i64({0}))}), "rank >= 1");
}

// ---- Shape, Size, ConstantOfShape, Identity -----------------------------------------------------

TEST(ShapeOps, ShapeSizeConstantOfShape) {
  Tensor x(DType::Float32, {2, 3, 5});
  EXPECT_TRUE(tensors_equal(run_op(op("Shape", 13, {dyn(x)}))[0], i64({2, 3, 5})));
  EXPECT_TRUE(tensors_equal(run_op(op("Shape", 15, {dyn(x)}, attrs_of({{"start", int64_t{1}}})))[0], i64({3, 5})));
  EXPECT_TRUE(tensors_equal(run_op(op("Shape", 15, {dyn(x)}, attrs_of({{"start", int64_t{-2}}, {"end", int64_t{-1}}})))[0], i64({3})));
  EXPECT_TRUE(tensors_equal(run_op(op("Shape", 15, {dyn(x)}, attrs_of({{"start", int64_t{-9}}, {"end", int64_t{9}}})))[0], i64({2, 3, 5})));
  EXPECT_EQ(run_op(op("Shape", 15, {dyn(x)}, attrs_of({{"start", int64_t{2}}, {"end", int64_t{1}}})))[0].numel(), 0);
  EXPECT_TRUE(tensors_equal(run_op(op("Size", 13, {dyn(x)}))[0], Tensor::scalar<int64_t>(30)));

  Tensor c = run_op(op("ConstantOfShape", 9, {cst(i64({2, 2}))}))[0];
  EXPECT_TRUE(tensors_equal(c, Tensor::from_vector<float>({2, 2}, {0, 0, 0, 0})));
  Attributes a;
  a.set("value", Tensor::from_vector<int8_t>({1}, {-5}));
  c = run_op(op("ConstantOfShape", 9, {cst(i64({3}))}, a))[0];
  EXPECT_TRUE(tensors_equal(c, Tensor::from_vector<int8_t>({3}, {-5, -5, -5})));
  c = run_op(op("ConstantOfShape", 9, {cst(Tensor(DType::Int64, {0}))}, a))[0];
  EXPECT_EQ(c.shape(), Shape{});
  expect_error(op("ConstantOfShape", 9, {cst(i64({-1}))}), "negative");
  Attributes scalar_value;
  scalar_value.set("value", Tensor::scalar<float>(1.0f));
  expect_error(op("ConstantOfShape", 9, {cst(i64({3}))}, scalar_value), "one-element 1-D tensor, has shape []");
  expect_error(op("ConstantOfShape", 9, {dyn(i64({1}))}), "must be a constant");
}

// ---- Quantization parameters of moved data -----------------------------------------------------

TEST(ShapeOps, QuantParamsFollowTheData) {
  Tensor x(DType::UInt8, {1, 4, 2, 3});
  const QuantParams pt = per_tensor(0.1f, 7);
  auto same = [](const QuantParams& a, const QuantParams& b) {
    return a.scale == b.scale && a.zero_point == b.zero_point && a.axis == b.axis;
  };
  EXPECT_TRUE(same(built_quant("Identity", 16, {dyn(x)}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Reshape", 14, {dyn(x), cst(i64({4, 6}))}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Flatten", 13, {dyn(x)}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Squeeze", 13, {dyn(x), cst(i64({0}))}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Unsqueeze", 13, {dyn(x), cst(i64({0}))}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Transpose", 13, {dyn(x)}, {}, pt), pt));
  EXPECT_TRUE(same(built_quant("Gather", 13, {dyn(x), cst(i64({0}))}, attrs_of({{"axis", int64_t{1}}}), pt), pt));
  EXPECT_TRUE(same(built_quant("Slice", 13, {dyn(x), cst(i64({1})), cst(i64({3}))}, {}, pt), pt));
  // Per-axis (channel axis 1, 4 channels) follows its axis, or is dropped when the op changes it.
  const QuantParams pa = per_axis(1, 4);
  EXPECT_EQ(built_quant("Transpose", 13, {dyn(x)}, attrs_of({{"perm", std::vector<int64_t>{0, 2, 3, 1}}}), pa).axis, 3);
  EXPECT_EQ(built_quant("Squeeze", 13, {dyn(x), cst(i64({0}))}, {}, pa).axis, 0);
  EXPECT_EQ(built_quant("Unsqueeze", 13, {dyn(x), cst(i64({0, 2}))}, {}, pa).axis, 3);
  EXPECT_EQ(built_quant("Reshape", 14, {dyn(x), cst(i64({4, 6}))}, {}, pa).axis, 0);
  EXPECT_EQ(built_quant("Flatten", 13, {dyn(x)}, attrs_of({{"axis", int64_t{2}}}), pa).axis, 0);  // [4, 6]
  EXPECT_FALSE(built_quant("Flatten", 13, {dyn(x)}, attrs_of({{"axis", int64_t{1}}}), pa).present());  // [1, 24]
  EXPECT_FALSE(built_quant("Gather", 13, {dyn(x), cst(i64({0}))}, attrs_of({{"axis", int64_t{1}}}), pa).present());
  EXPECT_EQ(built_quant("Gather", 13, {dyn(x), cst(Tensor(DType::Int64, {2, 2}))}, attrs_of({{"axis", int64_t{2}}}), pa).axis, 1);
  EXPECT_FALSE(built_quant("Slice", 13, {dyn(x), cst(i64({1})), cst(i64({3})), cst(i64({1}))}, {}, pa).present());
  EXPECT_EQ(built_quant("Slice", 13, {dyn(x), cst(i64({1})), cst(i64({3})), cst(i64({2}))}, {}, pa).axis, 1);
}

// ---- Cast ---------------------------------------------------------------------------------------

const std::vector<DType> kAllTypes = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8,
                                      DType::UInt8,   DType::Int16,   DType::UInt16,  DType::Int32,    DType::UInt32,
                                      DType::Int64,   DType::UInt64,  DType::Bool,    DType::String};

// A tensor of `t` holding the small whole numbers `v` (exact in every type; bool: v != 0).
Tensor values_of(DType t, const std::vector<int>& v, bool from_real = false) {
  Tensor out(t, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) {
    const double d = v[i];
    switch (t) {
      case DType::Float32: out.data<float>()[i] = static_cast<float>(d); break;
      case DType::Float64: out.data<double>()[i] = d; break;
      case DType::Float16: static_cast<uint16_t*>(out.raw())[i] = float_to_half(static_cast<float>(d)); break;
      case DType::BFloat16: static_cast<uint16_t*>(out.raw())[i] = float_to_bfloat16(static_cast<float>(d)); break;
      case DType::Int8: out.data<int8_t>()[i] = static_cast<int8_t>(d); break;
      case DType::UInt8: out.data<uint8_t>()[i] = static_cast<uint8_t>(d); break;
      case DType::Int16: out.data<int16_t>()[i] = static_cast<int16_t>(d); break;
      case DType::UInt16: out.data<uint16_t>()[i] = static_cast<uint16_t>(d); break;
      case DType::Int32: out.data<int32_t>()[i] = static_cast<int32_t>(d); break;
      case DType::UInt32: out.data<uint32_t>()[i] = static_cast<uint32_t>(d); break;
      case DType::Int64: out.data<int64_t>()[i] = static_cast<int64_t>(d); break;
      case DType::UInt64: out.data<uint64_t>()[i] = static_cast<uint64_t>(d); break;
      case DType::Bool: out.data<bool>()[i] = v[i] != 0; break;
      case DType::String: out.data<std::string>()[i] = std::to_string(v[i]) + (from_real ? ".0" : ""); break;
      default: break;
    }
  }
  return out;
}

TEST(Cast, EveryPairOnSmallWholeNumbers) {
  const std::vector<int> v = {0, 1, 2, 100};
  for (DType from : kAllTypes) {
    for (DType to : kAllTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      Tensor x = values_of(from, v);
      Attributes a;
      a.set("to", static_cast<int64_t>(to));
      Tensor y = run_op(op("Cast", 13, {dyn(x)}, a))[0];
      // What the values are after the source type: bools are 0/1.
      std::vector<int> seen = v;
      if (from == DType::Bool)
        for (int& e : seen) e = e != 0;
      EXPECT_TRUE(tensors_equal(y, values_of(to, seen, is_float(from))));
      // CastLike gives the same.
      Tensor like = values_of(to, {0});
      Tensor z = run_op(op("CastLike", 15, {dyn(x), dyn(like)}))[0];
      EXPECT_TRUE(tensors_equal(z, y));
    }
  }
}

TEST(Cast, RealToIntegerTruncatesAndSaturates) {
  Attributes a;
  a.set("to", static_cast<int64_t>(DType::Int8));
  Tensor x = Tensor::from_vector<float>({8}, {3.9f, -3.9f, 127.9f, 128.0f, -129.0f, 1e30f, std::nanf(""), -0.5f});
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(x)}, a))[0],
                            Tensor::from_vector<int8_t>({8}, {3, -3, 127, 127, -128, 127, 0, 0})));
  a.set("to", static_cast<int64_t>(DType::UInt8));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(x)}, a))[0],
                            Tensor::from_vector<uint8_t>({8}, {3, 0, 127, 128, 0, 255, 0, 0})));
  a.set("to", static_cast<int64_t>(DType::Int64));
  Tensor big = Tensor::from_vector<double>({3}, {9.3e18, -9.3e18, -9007199254740993.0});
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(big)}, a))[0],
                            Tensor::from_vector<int64_t>({3}, {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                                               -9007199254740992})));
}

TEST(Cast, IntegerToIntegerWraps) {
  Attributes a;
  a.set("to", static_cast<int64_t>(DType::Int8));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(Tensor::from_vector<int32_t>({3}, {200, -129, 256}))}, a))[0],
                            Tensor::from_vector<int8_t>({3}, {-56, 127, 0})));
  a.set("to", static_cast<int64_t>(DType::UInt32));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(i64({-1}))}, a))[0], Tensor::from_vector<uint32_t>({1}, {4294967295u})));
  a.set("to", static_cast<int64_t>(DType::Bool));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(Tensor::from_vector<float>({3}, {0.0f, -0.0f, std::nanf("")}))}, a))[0],
                            Tensor::from_vector<bool>({3}, {false, false, true})));
}

TEST(Cast, RealToStringIsNumpyShortest) {
  // Expected strings are numpy 1.24's str(np.float32(v)) / str(np.float64(v)) / str(np.float16(v)).
  const std::vector<std::pair<float, std::string>> f32 = {
      {0.9767611f, "0.9767611"}, {0.039187793f, "0.039187793"}, {1.0f, "1.0"}, {-2.5f, "-2.5"},
      {1e15f, "1000000000000000.0"}, {1e16f, "1e+16"}, {123456789.0f, "123456790.0"}, {1e-4f, "1e-04"},
      {9.999e-05f, "9.999e-05"}, {1e-5f, "1e-05"}, {3.4028235e38f, "3.4028235e+38"}, {-0.0f, "-0.0"},
      {16777216.0f, "16777216.0"}, {0.1f, "0.1"}, {1.17549435e-38f, "1.1754944e-38"}, {1e-45f, "1e-45"},
      {0.3f, "0.3"}, {100.0f, "100.0"}, {-1234.5677f, "-1234.5677"}, {7e-10f, "7e-10"},
      {std::nanf(""), "NaN"}, {std::numeric_limits<float>::infinity(), "INF"}, {-std::numeric_limits<float>::infinity(), "-INF"}};
  Tensor x(DType::Float32, {static_cast<int64_t>(f32.size())});
  for (size_t i = 0; i < f32.size(); ++i) x.data<float>()[i] = f32[i].first;
  Attributes a;
  a.set("to", static_cast<int64_t>(DType::String));
  Tensor y = run_op(op("Cast", 13, {dyn(x)}, a))[0];
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(y.data<std::string>()[i], f32[i].second) << f32[i].first;

  const std::vector<std::pair<double, std::string>> f64 = {{0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {1e16, "1e+16"},
                                                           {1e-5, "1e-05"}, {123456789.0, "123456789.0"}, {2.5e-300, "2.5e-300"},
                                                           {1e22, "1e+22"}, {5e-324, "5e-324"}};
  Tensor xd(DType::Float64, {static_cast<int64_t>(f64.size())});
  for (size_t i = 0; i < f64.size(); ++i) xd.data<double>()[i] = f64[i].first;
  y = run_op(op("Cast", 13, {dyn(xd)}, a))[0];
  for (size_t i = 0; i < f64.size(); ++i) EXPECT_EQ(y.data<std::string>()[i], f64[i].second) << f64[i].first;

  const std::vector<std::pair<uint16_t, std::string>> f16 = {{0x2e66, "0.1"}, {0x3555, "0.3333"}, {0x7bff, "65500.0"},
                                                             {0x068e, "0.0001"}, {0x0001, "6e-08"}, {0xc100, "-2.5"},
                                                             {0x63d0, "1000.0"}};
  Tensor xh(DType::Float16, {static_cast<int64_t>(f16.size())});
  for (size_t i = 0; i < f16.size(); ++i) static_cast<uint16_t*>(xh.raw())[i] = f16[i].first;
  y = run_op(op("Cast", 13, {dyn(xh)}, a))[0];
  for (size_t i = 0; i < f16.size(); ++i) EXPECT_EQ(y.data<std::string>()[i], f16[i].second) << f16[i].first;
}

TEST(Cast, StringToNumbers) {
  Tensor s(DType::String, {9});
  const std::vector<std::string> in = {"0.47892547", " 2.5 ", "+INF", "-inf", "NaN", "1e3", "abc", "-7xyz", "  42"};
  for (size_t i = 0; i < in.size(); ++i) s.data<std::string>()[i] = in[i];
  Attributes a;
  a.set("to", static_cast<int64_t>(DType::Float32));
  Tensor f = run_op(op("Cast", 13, {dyn(s)}, a))[0];
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(tensors_close(f, Tensor::from_vector<float>({9}, {0.47892547f, 2.5f, inf, -inf, std::nanf(""), 1000.0f,
                                                                 std::nanf(""), -7.0f, 42.0f}), 0, 0));
  a.set("to", static_cast<int64_t>(DType::Int32));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(s)}, a))[0],
                            Tensor::from_vector<int32_t>({9}, {0, 2, 0, 0, 0, 1, 0, -7, 42})));
  Tensor b(DType::String, {4});
  const std::vector<std::string> bs = {"true", "FALSE", "0", "3"};
  for (size_t i = 0; i < bs.size(); ++i) b.data<std::string>()[i] = bs[i];
  a.set("to", static_cast<int64_t>(DType::Bool));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 13, {dyn(b)}, a))[0], Tensor::from_vector<bool>({4}, {true, false, false, true})));
}

TEST(Cast, HalfAndBfloat16RoundOnceToNearestEven) {
  // 1 + 2^-11 + 2^-40 is just above the midpoint between the halves 1 and 1 + 2^-10: the answer is
  // 1 + 2^-10 (0x3c01). Rounding to float first lands on the midpoint, then ties to even: 0x3c00.
  Tensor d = Tensor::from_vector<double>({2}, {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 1e6});
  Attributes a;
  a.set("to", static_cast<int64_t>(DType::Float16));
  Tensor h = run_op(op("Cast", 13, {dyn(d)}, a))[0];
  EXPECT_EQ(static_cast<uint16_t*>(h.raw())[0], 0x3c01);
  EXPECT_EQ(static_cast<uint16_t*>(h.raw())[1], 0x7c00);  // overflow: inf
  a.set("to", static_cast<int64_t>(DType::BFloat16));
  Tensor f = Tensor::from_vector<float>({3}, {0.48033667f, 1.0f + std::ldexp(1.0f, -8), std::nanf("")});
  Tensor bf = run_op(op("Cast", 13, {dyn(f)}, a))[0];
  EXPECT_EQ(static_cast<uint16_t*>(bf.raw())[0], 0x3ef6);  // rounds up (truncation would give 0x3ef5)
  EXPECT_EQ(static_cast<uint16_t*>(bf.raw())[1], 0x3f80);  // a tie: to even
  EXPECT_TRUE(std::isnan(bfloat16_to_float(static_cast<uint16_t*>(bf.raw())[2])));
}

TEST(Cast, OpsetOneNamesAndErrors) {
  Attributes a;
  a.set("to", std::string("INT32"));
  EXPECT_TRUE(tensors_equal(run_op(op("Cast", 1, {dyn(Tensor::from_vector<float>({1}, {2.5f}))}, a))[0],
                            Tensor::from_vector<int32_t>({1}, {2})));
  a.set("to", std::string("COMPLEX64"));
  expect_error(op("Cast", 1, {dyn(Tensor::from_vector<float>({1}, {2.5f}))}, a), "COMPLEX64");
  a.set("to", int64_t{14});
  expect_error(op("Cast", 13, {dyn(Tensor::from_vector<float>({1}, {2.5f}))}, a), "14");
  expect_error(op("Cast", 13, {dyn(Tensor::from_vector<float>({1}, {2.5f}))}), "to");
}

// Data movement commutes with an elementwise conversion: for every dtype, moving Cast(x) must
// give Cast(moving x) (x = 0, 1, 2 … as int32, small enough for every type). Covers each storage
// size (1, 2, 4, 8 bytes) and strings (objects, not bytes).
TEST(ShapeOps, DataMovementWorksForEveryDtype) {
  const Tensor x = iota({2, 3, 4});
  auto cast = [](const Tensor& t, DType to) {
    Attributes a;
    a.set("to", static_cast<int64_t>(to));
    return run_op(op("Cast", 13, {dyn(t)}, a))[0];
  };
  struct Mover {
    const char* name;
    std::function<OpRun(const Tensor&)> make;
  };
  const std::vector<Mover> movers = {
      {"Identity", [](const Tensor& t) { return op("Identity", 16, {dyn(t)}); }},
      {"Reshape", [](const Tensor& t) { return op("Reshape", 14, {dyn(t), cst(i64({4, -1}))}); }},
      {"Transpose", [](const Tensor& t) { return op("Transpose", 13, {dyn(t)}, attrs_of({{"perm", std::vector<int64_t>{2, 0, 1}}})); }},
      {"Slice", [](const Tensor& t) { return op("Slice", 13, {dyn(t), cst(i64({3, 0})), cst(i64({-100, 3})), cst(i64({2, 1})), cst(i64({-1, 2}))}); }},
      {"Pad", [](const Tensor& t) { return op("Pad", 13, {dyn(t), cst(i64({0, 1, 2, 1, -1, 1}))}, attrs_of({{"mode", std::string("reflect")}})); }},
      {"Gather", [](const Tensor& t) { return op("Gather", 13, {dyn(t), dyn(i64({2, 0, -1}))}, attrs_of({{"axis", int64_t{-1}}})); }},
      {"Concat", [](const Tensor& t) { return op("Concat", 13, {dyn(t), cst(t), dyn(t)}, attrs_of({{"axis", int64_t{1}}})); }},
      {"Tile", [](const Tensor& t) { return op("Tile", 13, {dyn(t), cst(i64({1, 2, 3}))}); }},
      {"Expand", [](const Tensor& t) { return op("Expand", 13, {dyn(t), cst(i64({2, 2, 1, 1}))}); }},
      {"Unsqueeze", [](const Tensor& t) { return op("Unsqueeze", 13, {dyn(t), cst(i64({1}))}); }},
      {"Where", [](const Tensor& t) {
         return op("Where", 16, {dyn(Tensor::from_vector<bool>({4}, {true, false, false, true})), dyn(t), dyn(t.reshaped({2, 3, 4}).clone())});
       }},
  };
  for (DType t : kAllTypes) {
    const Tensor xt = cast(x, t);
    for (const Mover& m : movers) {
      SCOPED_TRACE(std::string(m.name) + " " + dtype_name(t));
      Tensor moved = run_op(m.make(xt))[0];
      EXPECT_TRUE(tensors_equal(moved, cast(run_op(m.make(x))[0], t)));
    }
  }
}

// ---- Through the loader --------------------------------------------------------------------------

TEST(ShapeOps, ShapeSubgraphIsFoldedAtLoad) {
  // Shape → Gather → Unsqueeze → Concat → Reshape, as exporters write flatten (MobileNet does).
  ModelBuilder m;
  m.opset("", 13);
  m.input("x", DType::UInt8, {-1, 4, 2, 2});
  m.initializer("zero", Tensor::scalar<int64_t>(0));
  m.initializer("axes", i64({0}));
  m.initializer("minus1", i64({-1}));
  m.node("Shape", {"x"}, {"shape"});
  m.node("Gather", {"shape", "zero"}, {"n"});
  m.node("Unsqueeze", {"n", "axes"}, {"n1"});
  m.node("Concat", {"n1", "minus1"}, {"target"}, attrs_of({{"axis", int64_t{0}}}));
  m.node("Reshape", {"x", "target"}, {"y"});
  m.output("y", DType::UInt8);
  Session s(m.save("shape_subgraph.onnx"), {.threads = 1, .dim_values = {{"N", 3}}});
  Tensor x(DType::UInt8, {3, 4, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i);
  Tensor y = s.run({{"x", x}}).at("y");
  ASSERT_EQ(y.shape(), (Shape{3, 16}));
  EXPECT_TRUE(tensors_equal(y, x.reshaped({3, 16}).clone()));
  const ModelSummary sum = Session::summarize(m.save("shape_subgraph2.onnx"), {.threads = 1, .dim_values = {{"N", 3}}});
  EXPECT_EQ(sum.planned_steps, 1);  // only the Reshape runs
}


// Dropout at inference: the input unchanged, the mask all true (bool from opset 10, the data
// type before); training is refused, never silently ignored.
TEST(ShapeOps, DropoutIsIdentityWithATrueMask) {
  Tensor x(DType::Float32, {2, 3, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i) * 0.37f - 4.0f;
  for (int opset : {7, 10, 12, 13}) {
    OpRun r;
    r.op_type = "Dropout";
    r.opset = opset;
    r.inputs = {dyn(x)};
    if (opset >= 12) r.inputs.push_back(cst(Tensor::scalar<float>(0.5f)));
    if (opset >= 12) r.inputs.push_back(cst(Tensor::scalar<bool>(false)));
    r.num_outputs = 2;
    const auto out = run_op(r);
    EXPECT_TRUE(tensors_equal(out[0], x)) << "opset " << opset;
    ASSERT_EQ(out[1].dtype(), opset >= 10 ? DType::Bool : DType::Float32) << "opset " << opset;
    ASSERT_EQ(out[1].shape(), x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(out[1].as_double(i), 1.0) << "opset " << opset;
  }
  auto expect_refused = [&](OpRun r, const std::string& needle) {
    try {
      run_op(r);
      ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  OpRun train;
  train.op_type = "Dropout";
  train.opset = 13;
  train.inputs = {dyn(x), cst(Tensor::scalar<float>(0.5f)), cst(Tensor::scalar<bool>(true))};
  expect_refused(train, "training_mode must be the constant false");
  train.inputs[2] = dyn(Tensor::scalar<bool>(false));
  expect_refused(train, "training_mode");
  OpRun old;
  old.op_type = "Dropout";
  old.opset = 6;
  old.inputs = {dyn(x)};
  expect_refused(old, "is_test is 0");
  old.attrs.set("is_test", int64_t{1});
  EXPECT_TRUE(tensors_equal(run_op(old)[0], x));
}

}  // namespace

}  // namespace quint::test
