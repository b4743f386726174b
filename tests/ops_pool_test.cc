// Pooling against naive references written here: the window of output o along a spatial dim
// reads input positions o·stride − pad_begin + j·dilation, j < kernel; the output size and the
// auto_pad pads are computed here from the spec (with ONNX Runtime's reading where the two differ,
// see ops/pool.cc and docs/onnxruntime-semantics.md (f)):
//   MaxPool:            first valid tap, replaced by each later strictly greater one; Indices
//                       row-major or column-major (storage_order), counting (n, c) planes.
//   AveragePool:        fl32 sum / count, count_include_pad counting taps inside the padded extent.
//   QLinearAveragePool: sum of fl32((x − x_zp)·x_s), fl32(sum / n), y = sat(rne(fl32(r / y_s) + y_zp)),
//                       n = kernel volume with count_include_pad; the integer global formula when the
//                       kernel is the whole unpadded input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"
#include "quint/parallel.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(4242);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

OpRun op(const char* type, int opset = 13, const char* domain = "ai.onnx") {
  OpRun r;
  r.op_type = type;
  r.opset = opset;
  r.domain = domain;
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

Tensor random_tensor(DType t, const Shape& s) {
  Tensor r(t, s);
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (t == DType::Float32) {
      // Coarse values so that equal maxima (first-index rule) occur.
      r.data<float>()[i] = static_cast<float>(rand_int(-40, 40)) / 8.0f;
    } else if (t == DType::UInt8) {
      r.data<uint8_t>()[i] = static_cast<uint8_t>(rand_int(0, 255));
    } else {
      r.data<int8_t>()[i] = static_cast<int8_t>(rand_int(-128, 127));
    }
  }
  return r;
}

// A pooling node's geometry and the windows the spec gives it.
struct PoolGeom {
  int r = 2;
  int64_t N = 1, C = 1;
  std::vector<int64_t> in, k, s, d, pads;
  std::string auto_pad = "NOTSET";
  bool ceil = false;
  std::vector<int64_t> pb, pe, out;

  void resolve() {
    pb.assign(r, 0);
    pe.assign(r, 0);
    out.assign(r, 0);
    for (int i = 0; i < r; ++i) {
      const int64_t ek = (k[i] - 1) * d[i] + 1;
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        out[i] = (in[i] + s[i] - 1) / s[i];
        const int64_t total = (out[i] - 1) * s[i] + ek - in[i];  // may be negative
        pb[i] = auto_pad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
        pe[i] = total - pb[i];
      } else {
        if (auto_pad == "NOTSET") {
          pb[i] = pads[i];
          pe[i] = pads[i + r];
        }
        const int64_t span = in[i] + pb[i] + pe[i] - ek;
        out[i] = (ceil ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
        if (ceil && (out[i] - 1) * s[i] >= in[i] + pb[i]) --out[i];
      }
    }
  }
  Shape x_shape() const {
    Shape sh{N, C};
    sh.insert(sh.end(), in.begin(), in.end());
    return sh;
  }
  Shape y_shape() const {
    Shape sh{N, C};
    sh.insert(sh.end(), out.begin(), out.end());
    return sh;
  }
  int64_t in_size() const {
    int64_t n = 1;
    for (int64_t v : in) n *= v;
    return n;
  }
  Attributes attrs(bool with_dilations = true) const {
    Attributes a;
    a.set("kernel_shape", k);
    a.set("strides", s);
    if (with_dilations) a.set("dilations", d);
    if (auto_pad == "NOTSET")
      a.set("pads", pads);
    else
      a.set("auto_pad", auto_pad);
    if (ceil) a.set("ceil_mode", int64_t{1});
    return a;
  }
  std::string str() const {
    return "x " + shape_str(x_shape()) + " kernel " + shape_str(k) + " strides " + shape_str(s) +
           " dilations " + shape_str(d) + " pads " + shape_str(pads) + " " + auto_pad + (ceil ? " ceil" : "");
  }

  // Calls f(o, taps, count_padded) for every output position o (flat within a plane), taps being
  // the flat in-plane positions of its valid taps in scan order; count_padded counts the taps
  // inside [−pad_begin, in + pad_end).
  template <class F>
  void windows(F f) const {
    std::vector<int64_t> o(r, 0);
    int64_t total = 1;
    for (int64_t v : out) total *= v;
    for (int64_t flat = 0; flat < total; ++flat) {
      int64_t rem = flat;
      for (int i = r; i-- > 0;) {
        o[i] = rem % out[i];
        rem /= out[i];
      }
      std::vector<int64_t> taps;
      int64_t padded = 1;
      std::vector<std::vector<int64_t>> valid(r);
      for (int i = 0; i < r; ++i) {
        int64_t cnt = 0;
        for (int64_t j = 0; j < k[i]; ++j) {
          const int64_t p = o[i] * s[i] - pb[i] + j * d[i];
          if (p < in[i] + pe[i]) ++cnt;
          if (p >= 0 && p < in[i]) valid[i].push_back(p);
        }
        padded *= cnt;
      }
      // Cartesian product in scan order.
      std::vector<size_t> idx(r, 0);
      bool any = true;
      for (int i = 0; i < r; ++i) any = any && !valid[i].empty();
      while (any) {
        int64_t pos = 0;
        for (int i = 0; i < r; ++i) pos = pos * in[i] + valid[i][idx[i]];
        taps.push_back(pos);
        int i = r - 1;
        for (; i >= 0; --i) {
          if (++idx[i] < valid[i].size()) break;
          idx[i] = 0;
        }
        if (i < 0) break;
      }
      f(flat, taps, padded);
    }
  }
};

PoolGeom random_geom(bool dilations, bool allow_auto_pad = true) {
  PoolGeom g;
  g.r = static_cast<int>(rand_int(1, 3));
  g.N = rand_int(1, 2);
  g.C = rand_int(1, 3);
  for (int i = 0; i < g.r; ++i) {
    g.k.push_back(rand_int(1, 3));
    g.s.push_back(rand_int(1, 4));  // strides larger than the kernel too
    g.d.push_back(dilations ? rand_int(1, 2) : 1);
  }
  for (int i = 0; i < 2 * g.r; ++i) g.pads.push_back(rand_int(0, g.k[i % g.r] - 1));  // pads < kernel
  const int64_t mode = allow_auto_pad ? rand_int(0, 6) : 0;
  g.auto_pad = mode <= 3 ? "NOTSET" : std::vector<std::string>{"SAME_UPPER", "SAME_LOWER", "VALID"}[mode - 4];
  // ONNX Runtime sizes SAME pads of dilated pools from the undilated kernel (quint follows the
  // spec): keep that combination out of the random mix.
  if (g.auto_pad.rfind("SAME", 0) == 0) g.d.assign(g.r, 1);
  g.ceil = g.auto_pad == "NOTSET" && rand_int(0, 2) == 0;
  for (int i = 0; i < g.r; ++i) {
    const int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
    const int64_t pads = g.auto_pad == "NOTSET" ? g.pads[i] + g.pads[i + g.r] : 0;
    g.in.push_back(std::max<int64_t>(1, rand_int(ek - pads, ek + 6)));
  }
  g.resolve();
  return g;
}

// Builds and runs an op like run_op, but with quantization parameters on input 0 (as a model's
// QDQ annotations would give them), returning the outputs and the declared output parameters.
struct QuantRun {
  std::vector<Tensor> outputs;
  std::vector<QuantParams> quant;
};
QuantRun run_with_input_quant(const OpRun& r, const QuantParams& in_quant) {
  const ops::OpDef* def = ops::Registry::builtin().find(r.domain, r.op_type, r.opset);
  if (!def) fail("no operator ", r.op_type);
  ops::NodeInfo info{"test_node", r.op_type, r.domain, r.opset};
  std::vector<ops::ValueInfo> infos(r.inputs.size());
  std::vector<const ops::ValueInfo*> ptrs;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const OpInput& in = r.inputs[i];
    infos[i] = ops::ValueInfo{in.value.dtype(), in.value.shape(), in.constant ? &in.value : nullptr,
                              i == 0 ? in_quant : QuantParams{}};
    ptrs.push_back(&infos[i]);
  }
  ops::BuildContext ctx(info, r.attrs, ptrs, r.num_outputs, r.options, nullptr);
  std::unique_ptr<ops::Kernel> kernel = def->build(ctx);
  QuantRun q;
  ops::RunContext rc;
  for (const OpInput& in : r.inputs) rc.inputs.push_back(&in.value);
  for (size_t k = 0; k < r.num_outputs; ++k) {
    q.outputs.emplace_back(ctx.output(k).dtype, ctx.output(k).shape);
    q.quant.push_back(ctx.output(k).quant);
  }
  for (auto& t : q.outputs) rc.outputs.push_back(&t);
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  rc.scratch = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  SerialParallel serial;
  rc.parallel = &serial;
  kernel->run(rc);
  return q;
}

// ---------------------------------------------------------------------------------------------
// MaxPool
// ---------------------------------------------------------------------------------------------

template <class T>
void max_pool_ref(const PoolGeom& g, const Tensor& x, bool column_major, Tensor* y, Tensor* idx) {
  const int64_t plane_in = g.in_size(), plane_out = y->numel() / (g.N * g.C);
  for (int64_t p = 0; p < g.N * g.C; ++p)
    g.windows([&](int64_t o, const std::vector<int64_t>& taps, int64_t) {
      T best = std::numeric_limits<T>::lowest();
      int64_t at = -1;
      for (int64_t t : taps) {
        const T v = x.data<T>()[p * plane_in + t];
        if (at < 0 || v > best) {
          best = v;
          at = t;
        }
      }
      y->data<T>()[p * plane_out + o] = best;
      if (at >= 0 && column_major) {
        // Row-major position → coordinates → i0 + i1·D0 + i2·D0·D1.
        std::vector<int64_t> c(g.r);
        int64_t rem = at;
        for (int i = g.r; i-- > 0;) {
          c[i] = rem % g.in[i];
          rem /= g.in[i];
        }
        int64_t cm = 0, mul = 1;
        for (int i = 0; i < g.r; ++i) {
          cm += c[i] * mul;
          mul *= g.in[i];
        }
        at = cm;
      }
      idx->data<int64_t>()[p * plane_out + o] = at < 0 ? -1 : p * plane_in + at;
    });
}

TEST(MaxPool, MatchesNaiveReferenceWithIndices) {
  for (int iter = 0; iter < 240; ++iter) {
    const DType t = std::vector<DType>{DType::Float32, DType::UInt8, DType::Int8}[iter % 3];
    PoolGeom g = random_geom(true);
    const bool column_major = (iter / 3) % 2 == 1, with_indices = iter % 4 != 3;
    SCOPED_TRACE(std::string(dtype_name(t)) + " " + g.str() + (column_major ? " storage_order 1" : ""));
    Tensor x = random_tensor(t, g.x_shape());
    Tensor want(t, g.y_shape()), want_idx(DType::Int64, g.y_shape());
    if (t == DType::Float32)
      max_pool_ref<float>(g, x, column_major, &want, &want_idx);
    else if (t == DType::UInt8)
      max_pool_ref<uint8_t>(g, x, column_major, &want, &want_idx);
    else
      max_pool_ref<int8_t>(g, x, column_major, &want, &want_idx);
    OpRun r = op("MaxPool", 12);
    r.attrs = g.attrs();
    r.attrs.set("storage_order", int64_t{column_major});
    r.inputs = {dyn(x)};
    r.num_outputs = with_indices ? 2 : 1;
    r.threads = 1 + iter % 2;
    auto got = run_op(r);
    EXPECT_TRUE(tensors_equal(got[0], want));
    if (with_indices) {
      EXPECT_TRUE(tensors_equal(got[1], want_idx));
    }
  }
}

// The channels-last kernel that runs inside fast convolution chains (8-bit, 2-D, one output):
// the same values as the naive reference, on many channel counts (vector bodies and tails), with
// the SIMD kernel and with the portable loop.
TEST(MaxPool, ChannelsLastMatchesNaiveReference) {
  for (int iter = 0; iter < 160; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    PoolGeom g;
    do {
      g = random_geom(true);
    } while (g.r != 2);
    g.C = std::vector<int64_t>{1, 3, 16, 24, 64, 67, 130}[static_cast<size_t>(iter % 7)];
    g.resolve();
    SCOPED_TRACE(std::string(dtype_name(t)) + " C=" + std::to_string(g.C) + " " + g.str());
    Tensor x = random_tensor(t, g.x_shape());
    Tensor want(t, g.y_shape()), want_idx(DType::Int64, g.y_shape());
    if (t == DType::UInt8)
      max_pool_ref<uint8_t>(g, x, false, &want, &want_idx);
    else
      max_pool_ref<int8_t>(g, x, false, &want, &want_idx);
    OpRun r = op("MaxPool", 12);
    r.attrs = g.attrs();
    OpInput in = dyn(x);
    in.nhwc = true;
    r.inputs = {in};
    r.threads = 1 + iter % 2;
    // The machine's SIMD kernel (auto) and the portable loop (ref).
    r.options.isa = iter % 3 == 0 ? "ref" : "auto";
    EXPECT_TRUE(tensors_equal(run_op(r)[0], want)) << "isa " << r.options.isa;
  }
}

TEST(MaxPool, PaddingNeverWinsOnIntegers) {
  // All values at the type minimum: padding (the minimum too) must not be chosen, indices point
  // at real elements.
  for (DType t : {DType::UInt8, DType::Int8}) {
    Tensor x(t, {1, 1, 2, 2});
    OpRun r = op("MaxPool", 12);
    r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    r.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    if (t == DType::Int8)
      for (int i = 0; i < 4; ++i) x.data<int8_t>()[i] = -128;
    r.inputs = {dyn(x)};
    r.num_outputs = 2;
    auto got = run_op(r);
    ASSERT_EQ(got[1].shape(), (Shape{1, 1, 3, 3}));
    const std::vector<int64_t> want = {0, 0, 1, 0, 0, 1, 2, 2, 3};
    for (int i = 0; i < 9; ++i) EXPECT_EQ(got[1].data<int64_t>()[i], want[i]) << i;
  }
}

TEST(MaxPool, NaNFollowsFirstElementRule) {
  // A NaN first in its window wins (no later value compares greater); a later NaN is ignored.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({1, 1, 1, 4}, {nan, 1.0f, nan, 0.5f});
  OpRun r = op("MaxPool", 12);
  r.attrs.set("kernel_shape", std::vector<int64_t>{1, 2});
  r.inputs = {dyn(x)};
  Tensor y = run_op(r)[0];
  EXPECT_TRUE(std::isnan(y.data<float>()[0]));
  EXPECT_EQ(y.data<float>()[1], 1.0f);
  EXPECT_TRUE(std::isnan(y.data<float>()[2]));
}

TEST(MaxPool, IntegerOutputKeepsInputQuantization) {
  QuantParams q;
  q.scale = {0.05f};
  q.zero_point = {17};
  for (const char* type : {"MaxPool", "GlobalMaxPool"}) {
    OpRun r = op(type, 12);
    if (std::string(type) == "MaxPool") r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    r.inputs = {dyn(random_tensor(DType::UInt8, {1, 2, 4, 4}))};
    QuantRun got = run_with_input_quant(r, q);
    EXPECT_EQ(got.quant[0].scale, q.scale) << type;
    EXPECT_EQ(got.quant[0].zero_point, q.zero_point) << type;
  }
}

TEST(MaxPool, Errors) {
  OpRun r = op("MaxPool", 12);
  r.inputs = {dyn(random_tensor(DType::Float32, {1, 1, 5, 5}))};
  expect_error(r, "kernel_shape is required");
  r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  r.attrs.set("pads", std::vector<int64_t>{2, 0, 0, 0});
  expect_error(r, "must be smaller than kernel_shape");
  r.attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
  r.attrs.set("storage_order", int64_t{2});
  expect_error(r, "storage_order must be 0 or 1");
  r.attrs.set("storage_order", int64_t{0});
  r.attrs.set("kernel_shape", std::vector<int64_t>{6, 2});
  expect_error(r, "larger than the padded input");
  r.attrs.set("kernel_shape", std::vector<int64_t>{2});
  expect_error(r, "attribute 'kernel_shape' has 1 values, expected 2");
  r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  r.inputs = {dyn(random_tensor(DType::UInt8, {1, 1, 5, 5}))};
  r.opset = 11;
  expect_error(r, "needs opset 12 or later");
  r.opset = 12;
  r.inputs = {dyn(Tensor(DType::Int32, {1, 1, 5, 5}))};
  expect_error(r, "X (input 0) must be float32 or uint8 or int8, got int32");
  r.inputs = {dyn(random_tensor(DType::Float32, {5, 5}))};
  expect_error(r, "rank 3 to 5");
  r = op("MaxPool", 7);
  r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  r.inputs = {dyn(random_tensor(DType::Float32, {1, 1, 5, 5}))};
  r.num_outputs = 2;
  expect_error(r, "Indices output from opset 8");
}

// ---------------------------------------------------------------------------------------------
// AveragePool (float)
// ---------------------------------------------------------------------------------------------

TEST(AveragePool, MatchesNaiveReference) {
  for (int iter = 0; iter < 200; ++iter) {
    PoolGeom g = random_geom(true);
    const bool include_pad = iter % 2;
    SCOPED_TRACE(g.str() + (include_pad ? " count_include_pad" : ""));
    Tensor x = random_tensor(DType::Float32, g.x_shape());
    Tensor want(DType::Float32, g.y_shape());
    const int64_t plane_out = want.numel() / (g.N * g.C);
    for (int64_t p = 0; p < g.N * g.C; ++p)
      g.windows([&](int64_t o, const std::vector<int64_t>& taps, int64_t padded) {
        double s = 0;
        for (int64_t t : taps) s += x.data<float>()[p * g.in_size() + t];
        const int64_t n = include_pad ? padded : static_cast<int64_t>(taps.size());
        want.data<float>()[p * plane_out + o] = static_cast<float>(s / static_cast<double>(n));
      });
    OpRun r = op("AveragePool", 19);
    r.attrs = g.attrs();
    r.attrs.set("count_include_pad", int64_t{include_pad});
    r.inputs = {dyn(x)};
    r.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_close(run_op(r)[0], want, 1e-5, 1e-6));
  }
}

// Wider 2-D planes, where whole rows of outputs are computed at once (ops/pool.cc): bit for bit
// the per-output rule, the float sum accumulated in scan order in fl32; MaxPool without Indices
// (with them, every output is visited alone).
TEST(Pool, RowSpansMatchScanOrderExactly) {
  for (int iter = 0; iter < 120; ++iter) {
    PoolGeom g;
    g.r = 2;
    g.N = rand_int(1, 2);
    g.C = rand_int(1, 3);
    for (int i = 0; i < 2; ++i) {
      g.k.push_back(rand_int(1, 4));
      g.s.push_back(rand_int(1, 3));
      g.d.push_back(iter % 5 == 0 ? 2 : 1);
    }
    for (int i = 0; i < 4; ++i) g.pads.push_back(rand_int(0, g.k[i % 2] - 1));
    g.ceil = iter % 3 == 0;
    for (int i = 0; i < 2; ++i) g.in.push_back(rand_int((g.k[i] - 1) * g.d[i] + 1, 40));
    g.resolve();
    const DType t = std::vector<DType>{DType::Float32, DType::UInt8, DType::Int8}[iter % 3];
    SCOPED_TRACE(std::string(dtype_name(t)) + " " + g.str());
    Tensor x(t, g.x_shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (t == DType::Float32)  // full-precision values: any other summation order shows
        x.data<float>()[i] = std::uniform_real_distribution<float>(-3, 3)(rng());
      else if (t == DType::UInt8)
        x.data<uint8_t>()[i] = static_cast<uint8_t>(rand_int(0, 255));
      else
        x.data<int8_t>()[i] = static_cast<int8_t>(rand_int(-128, 127));
    }
    Tensor want(t, g.y_shape()), want_idx(DType::Int64, g.y_shape());
    if (t == DType::Float32)
      max_pool_ref<float>(g, x, false, &want, &want_idx);
    else if (t == DType::UInt8)
      max_pool_ref<uint8_t>(g, x, false, &want, &want_idx);
    else
      max_pool_ref<int8_t>(g, x, false, &want, &want_idx);
    OpRun m = op("MaxPool", 12);
    m.attrs = g.attrs();
    m.inputs = {dyn(x)};
    m.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_equal(run_op(m)[0], want));
    if (t != DType::Float32) continue;
    for (bool include_pad : {false, true}) {
      Tensor avg(DType::Float32, g.y_shape());
      const int64_t plane_out = avg.numel() / (g.N * g.C);
      for (int64_t p = 0; p < g.N * g.C; ++p)
        g.windows([&](int64_t o, const std::vector<int64_t>& taps, int64_t padded) {
          float sum = 0;
          for (int64_t tp : taps) sum = sum + x.data<float>()[p * g.in_size() + tp];
          const int64_t n = include_pad ? padded : static_cast<int64_t>(taps.size());
          avg.data<float>()[p * plane_out + o] = sum / static_cast<float>(n);
        });
      OpRun a = op("AveragePool", 19);
      a.attrs = g.attrs();
      a.attrs.set("count_include_pad", int64_t{include_pad});
      a.inputs = {dyn(x)};
      a.threads = 1 + iter % 2;
      EXPECT_TRUE(tensors_equal(run_op(a)[0], avg)) << "AveragePool, count_include_pad " << include_pad;
    }
  }
}

// The float pool on NHWC input (inside a chain of fast convolutions): the same floats as the
// per-output rule, summed in scan order in fl32, for both count modes and channel counts around
// the vector widths.
TEST(AveragePool, ChannelsLastFloatMatchesScanOrderExactly) {
  for (int iter = 0; iter < 80; ++iter) {
    PoolGeom g;
    do {
      g = random_geom(true);
    } while (g.r != 2);
    g.C = std::vector<int64_t>{1, 3, 4, 17, 64, 67}[static_cast<size_t>(iter % 6)];
    g.resolve();
    const bool include_pad = iter % 2;
    SCOPED_TRACE("C=" + std::to_string(g.C) + " " + g.str() + (include_pad ? " count_include_pad" : ""));
    Tensor x(DType::Float32, g.x_shape());
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::uniform_real_distribution<float>(-3, 3)(rng());
    Tensor want(DType::Float32, g.y_shape());
    const int64_t plane_out = want.numel() / (g.N * g.C);
    for (int64_t p = 0; p < g.N * g.C; ++p)
      g.windows([&](int64_t o, const std::vector<int64_t>& taps, int64_t padded) {
        float sum = 0;
        for (int64_t tp : taps) sum = sum + x.data<float>()[p * g.in_size() + tp];
        want.data<float>()[p * plane_out + o] = sum / static_cast<float>(include_pad ? padded : static_cast<int64_t>(taps.size()));
      });
    OpRun r = op("AveragePool", 19);
    r.attrs = g.attrs();
    r.attrs.set("count_include_pad", int64_t{include_pad});
    OpInput in = dyn(x);
    in.nhwc = true;
    r.inputs = {in};
    r.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
  }
}

TEST(AveragePool, Errors) {
  OpRun r = op("AveragePool", 19);
  r.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  r.attrs.set("pads", std::vector<int64_t>{0, 3, 0, 0});
  r.inputs = {dyn(random_tensor(DType::Float32, {1, 1, 5, 5}))};
  expect_error(r, "must be smaller than kernel_shape");
  r.attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
  r.attrs.set("dilations", std::vector<int64_t>{2, 2});
  r.inputs = {dyn(random_tensor(DType::UInt8, {1, 1, 5, 5}))};
  expect_error(r, "does not support dilations");
  r.attrs = Attributes();
  r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  r.inputs = {dyn(Tensor(DType::Int32, {1, 1, 5, 5}))};
  expect_error(r, "X (input 0) must be float32 or uint8 or int8, got int32");
}

// ---------------------------------------------------------------------------------------------
// QLinearAveragePool (com.microsoft) and the integer AveragePool built on it
// ---------------------------------------------------------------------------------------------

struct QAvgParams {
  float xs = 1, ys = 1;
  int64_t xz = 0, yz = 0;
};

// The expected output for NCHW x (the test permutes for channels_last itself).
Tensor qavg_ref(const PoolGeom& g, const Tensor& x, const QAvgParams& q, bool include_pad) {
  const DType t = x.dtype();
  const double lo = t == DType::UInt8 ? 0 : -128, hi = t == DType::UInt8 ? 255 : 127;
  Tensor y(t, g.y_shape());
  const int64_t plane_out = y.numel() / (g.N * g.C);
  bool global = true;
  for (int i = 0; i < g.r; ++i) global = global && g.k[i] == g.in[i] && g.pb[i] == 0 && g.pe[i] == 0;
  int64_t kvol = 1;
  for (int64_t v : g.k) kvol *= v;
  auto store = [&](int64_t at, double v) {
    v = std::min(std::max(v, lo), hi);
    if (t == DType::UInt8)
      y.data<uint8_t>()[at] = static_cast<uint8_t>(v);
    else
      y.data<int8_t>()[at] = static_cast<int8_t>(v);
  };
  for (int64_t p = 0; p < g.N * g.C; ++p) {
    if (global) {
      int64_t acc = 0;
      for (int64_t i = 0; i < g.in_size(); ++i) acc += x.as_int64(p * g.in_size() + i) - q.xz;
      const float ysn = q.ys * static_cast<float>(g.in_size());
      const float s = q.xs / ysn;
      const float v = static_cast<float>(acc) * s;
      store(p, std::nearbyint(static_cast<double>(v)) + static_cast<double>(q.yz));
      continue;
    }
    g.windows([&](int64_t o, const std::vector<int64_t>& taps, int64_t) {
      float sum = 0;
      for (int64_t tp : taps) {
        const float deq = static_cast<float>(x.as_int64(p * g.in_size() + tp) - q.xz) * q.xs;
        sum = sum + deq;
      }
      const int64_t n = include_pad ? kvol : static_cast<int64_t>(taps.size());
      const float avg = sum / static_cast<float>(n);
      const float scaled = avg / q.ys;
      const float shifted = scaled + static_cast<float>(q.yz);
      store(p * plane_out + o, std::nearbyint(static_cast<double>(shifted)));
    });
  }
  return y;
}

Tensor to_nhwc(const Tensor& x) {
  const Shape& s = x.shape();
  Shape o{s[0]};
  o.insert(o.end(), s.begin() + 2, s.end());
  o.push_back(s[1]);
  Tensor y(x.dtype(), o);
  const int64_t N = s[0], C = s[1], P = x.numel() / (N * C);
  const size_t es = dtype_size(x.dtype());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p)
        std::memcpy(static_cast<uint8_t*>(y.raw()) + ((n * P + p) * C + c) * es,
                    static_cast<const uint8_t*>(x.raw()) + ((n * C + c) * P + p) * es, es);
  return y;
}

Tensor q_scalar(DType t, int64_t v) {
  Tensor r(t, {});
  if (t == DType::UInt8)
    r.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  else
    r.data<int8_t>()[0] = static_cast<int8_t>(v);
  return r;
}

TEST(QLinearAveragePool, MatchesOnnxRuntimeFormula) {
  for (int iter = 0; iter < 240; ++iter) {
    const DType t = iter % 2 ? DType::UInt8 : DType::Int8;
    PoolGeom g = random_geom(false);
    if (iter % 8 == 5) {  // the whole-input kernel: ONNX Runtime's integer global formula
      g.k = g.in;
      g.auto_pad = "NOTSET";
      g.pads.assign(2 * g.r, 0);
      g.ceil = false;
      g.resolve();
    }
    const bool include_pad = (iter / 2) % 2, channels_last = (iter / 4) % 2;
    QAvgParams q;
    const bool pow2 = iter % 3 == 0;  // exact ties
    q.xs = pow2 ? std::ldexp(1.0f, -static_cast<int>(rand_int(2, 7)))
                : std::exp(std::uniform_real_distribution<float>(-7, -2)(rng()));
    const int64_t lo = t == DType::UInt8 ? 0 : -128, hi = t == DType::UInt8 ? 255 : 127;
    q.xz = std::vector<int64_t>{lo, hi, 0, rand_int(lo, hi)}[rand_int(0, 3)];
    const bool same = iter % 5 < 2;  // equal in and out parameters (the integer AveragePool case)
    q.ys = same ? q.xs : q.xs * std::uniform_real_distribution<float>(0.5f, 2.0f)(rng());
    q.yz = same ? q.xz : std::vector<int64_t>{lo, hi, 0, rand_int(lo, hi)}[rand_int(0, 3)];
    SCOPED_TRACE(std::string(dtype_name(t)) + " " + g.str() + (include_pad ? " count_include_pad" : "") +
                 (channels_last ? " channels_last" : "") + " x_s " + std::to_string(q.xs) + " zp " +
                 std::to_string(q.xz) + " y_s " + std::to_string(q.ys) + " zp " + std::to_string(q.yz));
    Tensor x = random_tensor(t, g.x_shape());
    Tensor want = qavg_ref(g, x, q, include_pad);
    OpRun r = op("QLinearAveragePool", 1, "com.microsoft");
    r.attrs = g.attrs(false);
    r.attrs.set("count_include_pad", int64_t{include_pad});
    r.attrs.set("channels_last", int64_t{channels_last});
    r.inputs = {dyn(channels_last ? to_nhwc(x) : x), cst(Tensor::scalar<float>(q.xs)), cst(q_scalar(t, q.xz)),
                cst(Tensor::scalar<float>(q.ys)), cst(q_scalar(t, q.yz))};
    r.threads = 1 + iter % 2;
    EXPECT_TRUE(tensors_equal(run_op(r)[0], channels_last ? to_nhwc(want) : want));

    // The integer AveragePool is the same computation with the input's own parameters on both sides.
    if (same && !channels_last) {
      OpRun a = op("AveragePool", 19);
      a.attrs = g.attrs(false);
      a.attrs.set("count_include_pad", int64_t{include_pad});
      a.inputs = {dyn(x)};
      QuantParams qp;
      qp.scale = {q.xs};
      qp.zero_point = {static_cast<int32_t>(q.xz)};
      QuantRun got = run_with_input_quant(a, qp);
      EXPECT_TRUE(tensors_equal(got.outputs[0], want));
      EXPECT_EQ(got.quant[0].scale, qp.scale);
      EXPECT_EQ(got.quant[0].zero_point, qp.zero_point);
    }
  }
}

TEST(QLinearAveragePool, ZeroPointIsAddedBeforeRounding) {
  // x_s = y_s = 1/128, zero point 155 on both sides (ONNX Runtime 1.30, measured):
  //   window (193, 243, 63, 79): Σ(x − 155) = −42 → −10.5, + 155 = 144.5 → 144 (half to even);
  //   rounding before adding the zero point would give −10 + 155 = 145.
  //   window (243, 155, 79, 155): 12 → 3 → 158.
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 2, 3}, {193, 243, 155, 63, 79, 155});
  OpRun r = op("QLinearAveragePool", 1, "com.microsoft");
  r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  r.inputs = {dyn(x), cst(Tensor::scalar<float>(1.0f / 128)), cst(Tensor::scalar<uint8_t>(155)),
              cst(Tensor::scalar<float>(1.0f / 128)), cst(Tensor::scalar<uint8_t>(155))};
  Tensor y = run_op(r)[0];
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(y.data<uint8_t>()[0], 144);
  EXPECT_EQ(y.data<uint8_t>()[1], 158);
  // 1-D windows (156, 155) → 0.5 → 155.5 → 156 and (155, 154) → −0.5 → 154.5 → 154; rounding
  // first would give 155 for both.
  Tensor x2 = Tensor::from_vector<uint8_t>({1, 1, 3}, {156, 155, 154});
  OpRun r2 = op("QLinearAveragePool", 1, "com.microsoft");
  r2.attrs.set("kernel_shape", std::vector<int64_t>{2});
  r2.inputs = {dyn(x2), cst(Tensor::scalar<float>(1.0f / 128)), cst(Tensor::scalar<uint8_t>(155)),
               cst(Tensor::scalar<float>(1.0f / 128)), cst(Tensor::scalar<uint8_t>(155))};
  Tensor y2 = run_op(r2)[0];
  EXPECT_EQ(y2.data<uint8_t>()[0], 156);
  EXPECT_EQ(y2.data<uint8_t>()[1], 154);
}

TEST(QLinearAveragePool, Errors) {
  auto base = [] {
    OpRun r = op("QLinearAveragePool", 1, "com.microsoft");
    r.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    r.inputs = {dyn(random_tensor(DType::UInt8, {1, 1, 4, 4})), cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<uint8_t>(3)), cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<uint8_t>(3))};
    return r;
  };
  for (float bad : {0.0f, -0.5f, std::numeric_limits<float>::quiet_NaN()}) {
    OpRun r = base();
    r.inputs[3] = cst(Tensor::scalar<float>(bad));
    expect_error(r, "y scale must be finite and > 0");
  }
  OpRun r = base();
  r.inputs[4] = cst(Tensor::scalar<int8_t>(3));
  expect_error(r, "y zero point must be uint8, got int8");
  r = base();
  r.attrs.set("dilations", std::vector<int64_t>{1, 1});
  expect_error(r, "has no dilations attribute");
  r = base();
  r.inputs[0] = dyn(random_tensor(DType::Float32, {1, 1, 4, 4}));
  expect_error(r, "X (input 0) must be uint8 or int8, got float32");
  r = base();
  r.inputs[1] = cst(Tensor::from_vector<float>({2}, {0.1f, 0.1f}));
  expect_error(r, "x scale must be a scalar");
}

// ---------------------------------------------------------------------------------------------
// Global pools
// ---------------------------------------------------------------------------------------------

TEST(GlobalPool, MatchesNaiveReference) {
  for (const Shape& s : {Shape{2, 3, 5}, Shape{1, 4, 6, 7}, Shape{2, 2, 3, 4, 5}, Shape{1, 3, 1, 1},
                         Shape{1, 2, 2, 1, 2, 3}}) {
    SCOPED_TRACE(shape_str(s));
    const int64_t planes = s[0] * s[1], size = shape_numel(s) / planes;
    Shape out(s.size(), 1);
    out[0] = s[0];
    out[1] = s[1];
    Tensor x = random_tensor(DType::Float32, s);
    Tensor avg(DType::Float32, out), mx(DType::Float32, out);
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0;
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < size; ++i) {
        const float v = x.data<float>()[p * size + i];
        sum += v;
        best = std::max(best, v);
      }
      avg.data<float>()[p] = static_cast<float>(sum / static_cast<double>(size));
      mx.data<float>()[p] = best;
    }
    OpRun a = op("GlobalAveragePool");
    a.inputs = {dyn(x)};
    EXPECT_TRUE(tensors_close(run_op(a)[0], avg, 1e-6, 1e-7));
    OpRun m = op("GlobalMaxPool");
    m.inputs = {dyn(x)};
    EXPECT_TRUE(tensors_equal(run_op(m)[0], mx));
    for (DType t : {DType::UInt8, DType::Int8}) {
      Tensor xi = random_tensor(t, s);
      Tensor want(t, out);
      for (int64_t p = 0; p < planes; ++p) {
        int64_t best = std::numeric_limits<int64_t>::min();
        for (int64_t i = 0; i < size; ++i) best = std::max(best, xi.as_int64(p * size + i));
        if (t == DType::UInt8)
          want.data<uint8_t>()[p] = static_cast<uint8_t>(best);
        else
          want.data<int8_t>()[p] = static_cast<int8_t>(best);
      }
      m.inputs = {dyn(xi)};
      EXPECT_TRUE(tensors_equal(run_op(m)[0], want));
    }
  }
}

TEST(GlobalPool, Errors) {
  OpRun a = op("GlobalAveragePool");
  a.inputs = {dyn(random_tensor(DType::UInt8, {1, 2, 3, 3}))};
  expect_error(a, "use com.microsoft QLinearGlobalAveragePool");
  a.inputs = {dyn(random_tensor(DType::Float32, {2, 3}))};
  expect_error(a, "rank >= 3");
  OpRun m = op("GlobalMaxPool");
  m.inputs = {dyn(Tensor(DType::Int32, {1, 2, 3}))};
  expect_error(m, "X (input 0) must be float32 or uint8 or int8, got int32");
  m.inputs = {dyn(Tensor(DType::Float32, {1, 2, 0}))};
  expect_error(m, "no spatial positions");
}

}  // namespace

}  // namespace quint::test
