// com.microsoft QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearConcat, QLinearLeakyRelu and
// QLinearSigmoid against naive
// references written here from ONNX Runtime's measured x86 semantics (shared/ARITHMETIC.md,
// docs/onnxruntime-semantics.md, and the QLinearAdd details below), on every kernel variant
// (the reference kernel and each SIMD level this CPU has), one and two threads, NCHW and NHWC
// inputs, uint8 and int8; and the references themselves against ONNX Runtime (when the harness
// in tests/ort is installed). Every output integer must be equal.
//
// The references (fl32 = one float32 operation; the build has -ffp-contract=off, so each
// expression below rounds where it is written; rne = round half to even; sat = clamp to the type;
// cvt = x86 cvtps2dq, which gives INT32_MIN beyond the int32 range):
//   QLinearAdd   ONNX Runtime streams one input S through MLAS and folds the other, Q, into a
//                constant. Q is A when A has extent 1 in the innermost output dimension larger than
//                1 (its broadcaster's "input 0 is scalar" case, also when the output has one
//                element); otherwise Q is B.
//                rS = fl32(S_s/C_s), rQ = fl32(Q_s/C_s), k = fl32(C_zp − fma(rS, S_zp, fl32(rQ·Q_zp))),
//                y = sat(cvt(fma(S, rS, fma(Q, rQ, k))))
//                (measured on ONNX Runtime 1.30: 0 of 19.7 M outputs differ over all byte pairs; k
//                without the fma, or (S, Q) = (A, B) always, or clamping before cvt all differ)
//   QLinearMul   p = (A − A_zp)(B − B_zp) exact, r = fl32(fl32(A_s·B_s)/C_s),
//                y = sat(cvt(fl32(fl32(fl32(p)·r) + C_zp)))
//   QLinearGlobalAveragePool  acc = Σ (x − x_zp) over the spatial positions, N of them,
//                s = fl32(x_s / fl32(y_s·N)), y = sat(rne(fl32(fl32(acc)·s)) + y_zp)
//   QLinearConcat  per input, for each byte value q: T[q] = sat(rne(fl32(fl32(x_s·(q − x_zp)) / y_s)) + y_zp)
//   QLinearLeakyRelu, QLinearSigmoid  d = fl32(x_s·(q − x_zp)), f = d ≥ 0 ? d : fl32(alpha·d), or
//                MLAS's logistic (ops::arith::ort_sigmoid, checked against ONNX Runtime elsewhere),
//                y = sat(rne(fl32(f / y_s)) + y_zp)
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "op_harness.h"
#include "quint/session.h"
#include "reference_runs.h"
#include "test_paths.h"
#include "arith/activation.h"
#include "x86/cpu.h"

namespace quint::test {
namespace {

std::mt19937& rng() {
  static std::mt19937 g(20261126);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }
float rand_log_uniform(float lo, float hi) {
  return std::exp(std::uniform_real_distribution<float>(std::log(lo), std::log(hi))(rng()));
}
template <class T>
T pick(std::initializer_list<T> v) {
  return *(v.begin() + rand_int(0, static_cast<int64_t>(v.size()) - 1));
}

int32_t qmin_of(DType t) { return t == DType::Int8 ? -128 : 0; }
int32_t qmax_of(DType t) { return t == DType::Int8 ? 127 : 255; }

// The element's integer value (uint8 or int8) and back.
int32_t get(const Tensor& t, int64_t i) {
  const uint8_t b = static_cast<const uint8_t*>(t.raw())[i];
  return t.dtype() == DType::Int8 ? static_cast<int8_t>(b) : b;
}
void put(Tensor& t, int64_t i, int32_t v) { static_cast<uint8_t*>(t.raw())[i] = static_cast<uint8_t>(v); }

Tensor q8_scalar(DType t, int32_t v) {
  Tensor s(t, {});
  put(s, 0, v);
  return s;
}

enum class Fill { Random, Min, Max, Narrow };

Tensor q8_tensor(DType t, const Shape& shape, Fill fill) {
  Tensor out(t, shape);
  const int32_t lo = qmin_of(t), hi = qmax_of(t);
  const int32_t mid = static_cast<int32_t>(rand_int(lo + 8, hi - 8));
  for (int64_t i = 0; i < out.numel(); ++i) {
    int32_t v = static_cast<int32_t>(rand_int(lo, hi));
    if (fill == Fill::Min) v = lo;
    if (fill == Fill::Max) v = hi;
    if (fill == Fill::Narrow) v = mid + static_cast<int32_t>(rand_int(-8, 8));
    put(out, i, v);
  }
  return out;
}

Fill random_fill() { return pick({Fill::Random, Fill::Random, Fill::Random, Fill::Narrow, Fill::Min, Fill::Max}); }

// A zero point: often at an extreme or zero, else random.
int32_t random_zp(DType t) {
  const int32_t lo = qmin_of(t), hi = qmax_of(t);
  switch (rand_int(0, 5)) {
    case 0: return lo;
    case 1: return hi;
    case 2: return 0;
    default: return static_cast<int32_t>(rand_int(lo, hi));
  }
}

// A scale: log-uniform, or a power of two (exact .5 ties appear when ratios are powers of two).
float random_scale() {
  if (rand_int(0, 2) == 0) return std::ldexp(1.0f, static_cast<int>(rand_int(-12, -2)));
  return rand_log_uniform(1e-4f, 0.5f);
}

// ---- the arithmetic, written out -----------------------------------------------------------

// sat(v) for a value already an integer (in double).
int32_t sat(double v, DType t) {
  return static_cast<int32_t>(std::clamp(v, static_cast<double>(qmin_of(t)), static_cast<double>(qmax_of(t))));
}
// Round half to even of a float, through double (exact for every float).
double rne(float v) { return std::nearbyint(static_cast<double>(v)); }
// x86 cvtps2dq: round half to even; INT32_MIN beyond the int32 range.
double cvt(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return static_cast<double>(INT32_MIN);
  return rne(v);
}

// numpy broadcasting: the output shape, and the flat index into `in` of output element `o`.
Shape broadcast(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
    out[r - 1 - i] = da == 1 ? db : da;
  }
  return out;
}
int64_t source_index(const Shape& in, const Shape& out, int64_t o) {
  int64_t idx = 0, stride = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t d = out.size() - 1 - i;
    const int64_t coord = o % out[d];
    o /= out[d];
    if (i < in.size()) {
      const int64_t extent = in[in.size() - 1 - i];
      if (extent != 1) idx += coord * stride;
      stride *= extent;
    }
  }
  return idx;
}

// ONNX Runtime's InputBroadcaster: walking from the innermost dimension, the first one where
// the output is larger than 1 decides; A is the per-span scalar if it does not advance there.
bool ort_a_is_span_scalar(const Shape& a, const Shape& b) {
  const Shape out = broadcast(a, b);
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[out.size() - 1 - i] <= 1) continue;
    return (i < a.size() ? a[a.size() - 1 - i] : 1) == 1;
  }
  return true;
}

struct BinaryParams {
  float a_s = 1, b_s = 1, c_s = 1;
  int32_t a_zp = 0, b_zp = 0, c_zp = 0;
};

Tensor reference_qlinear_add(const Tensor& a, const Tensor& b, const BinaryParams& p) {
  const DType t = a.dtype();
  const Shape out_shape = broadcast(a.shape(), b.shape());
  const bool swap = ort_a_is_span_scalar(a.shape(), b.shape());
  const Tensor& s_in = swap ? b : a;
  const Tensor& q_in = swap ? a : b;
  const float s_s = swap ? p.b_s : p.a_s, q_s = swap ? p.a_s : p.b_s;
  const int32_t s_zp = swap ? p.b_zp : p.a_zp, q_zp = swap ? p.a_zp : p.b_zp;
  const float rs = s_s / p.c_s, rq = q_s / p.c_s;
  const float k = static_cast<float>(p.c_zp) - std::fma(rs, static_cast<float>(s_zp), rq * static_cast<float>(q_zp));
  Tensor y(t, out_shape);
  for (int64_t o = 0; o < y.numel(); ++o) {
    const float sv = static_cast<float>(get(s_in, source_index(s_in.shape(), out_shape, o)));
    const float qv = static_cast<float>(get(q_in, source_index(q_in.shape(), out_shape, o)));
    put(y, o, sat(cvt(std::fma(sv, rs, std::fma(qv, rq, k))), t));
  }
  return y;
}

// ARITHMETIC.md's earlier reading, for choosing discriminating cases: (S, Q) = (A, B) always,
// k = fl32(C_zp − fl32(fl32(rA·A_zp) + fl32(rB·B_zp))), y = sat(rne(fma(A, rA, fma(B, rB, k)))).
Tensor alternative_qlinear_add(const Tensor& a, const Tensor& b, const BinaryParams& p) {
  const DType t = a.dtype();
  const Shape out_shape = broadcast(a.shape(), b.shape());
  const float ra = p.a_s / p.c_s, rb = p.b_s / p.c_s;
  const float k = static_cast<float>(p.c_zp) - (ra * static_cast<float>(p.a_zp) + rb * static_cast<float>(p.b_zp));
  Tensor y(t, out_shape);
  for (int64_t o = 0; o < y.numel(); ++o) {
    const float av = static_cast<float>(get(a, source_index(a.shape(), out_shape, o)));
    const float bv = static_cast<float>(get(b, source_index(b.shape(), out_shape, o)));
    put(y, o, sat(rne(std::fma(av, ra, std::fma(bv, rb, k))), t));
  }
  return y;
}

Tensor reference_qlinear_mul(const Tensor& a, const Tensor& b, const BinaryParams& p) {
  const DType t = a.dtype();
  const Shape out_shape = broadcast(a.shape(), b.shape());
  const float r = (p.a_s * p.b_s) / p.c_s;
  Tensor y(t, out_shape);
  for (int64_t o = 0; o < y.numel(); ++o) {
    const int32_t prod = (get(a, source_index(a.shape(), out_shape, o)) - p.a_zp) *
                         (get(b, source_index(b.shape(), out_shape, o)) - p.b_zp);
    const float v = static_cast<float>(prod) * r + static_cast<float>(p.c_zp);
    put(y, o, sat(cvt(v), t));
  }
  return y;
}

// x: [N, C, spatial...] (channels_last 0) or [N, spatial..., C] (channels_last 1).
Tensor reference_global_avg_pool(const Tensor& x, float x_s, int32_t x_zp, float y_s, int32_t y_zp, bool channels_last) {
  const DType t = x.dtype();
  const Shape& xs = x.shape();
  const int64_t n = xs[0], c = channels_last ? xs.back() : xs[1];
  int64_t spatial = 1;
  for (size_t i = 1; i + 1 < xs.size(); ++i) spatial *= xs[channels_last ? i : i + 1];
  const float s = x_s / (y_s * static_cast<float>(spatial));
  Shape ys(xs.size(), 1);
  ys[0] = n;
  (channels_last ? ys.back() : ys[1]) = c;
  Tensor y(t, ys);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      int64_t acc = 0;
      for (int64_t i = 0; i < spatial; ++i) {
        const int64_t at = channels_last ? (b * spatial + i) * c + ch : (b * c + ch) * spatial + i;
        acc += get(x, at) - x_zp;
      }
      put(y, b * c + ch, sat(rne(static_cast<float>(acc) * s) + y_zp, t));
    }
  return y;
}

struct ConcatInput {
  Tensor x;
  float scale = 1;
  int32_t zp = 0;
};

Tensor reference_qlinear_concat(const std::vector<ConcatInput>& in, int64_t axis, float y_s, int32_t y_zp) {
  const DType t = in[0].x.dtype();
  const int64_t rank = static_cast<int64_t>(in[0].x.shape().size());
  if (axis < 0) axis += rank;
  Shape ys = in[0].x.shape();
  ys[axis] = 0;
  for (const auto& i : in) ys[axis] += i.x.shape()[axis];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= ys[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= ys[d];
  Tensor y(t, ys);
  int64_t offset = 0;
  for (const auto& i : in) {
    const int64_t len = i.x.shape()[axis] * inner;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < len; ++j) {
        const int32_t q = get(i.x, o * len + j);
        const float real = i.scale * static_cast<float>(q - i.zp);
        put(y, o * ys[axis] * inner + offset + j, sat(rne(real / y_s) + y_zp, t));
      }
    offset += len;
  }
  return y;
}

// ---- running quint ---------------------------------------------------------------------------

std::vector<std::string> all_isas() {
  std::vector<std::string> out = {"ref"};
  for (auto isa : {ops::x86::Isa::Avx2, ops::x86::Isa::AvxVnni, ops::x86::Isa::Avx512Vnni})
    if (ops::x86::isa_supported(isa)) out.push_back(ops::x86::isa_name(isa));
  return out;
}

OpRun binary_op(const char* type, const Tensor& a, const Tensor& b, const BinaryParams& p, bool a_const = false) {
  OpRun r;
  r.op_type = type;
  r.domain = "com.microsoft";
  r.opset = 1;
  const DType t = a.dtype();
  r.inputs = {a_const ? cst(a) : dyn(a), cst(Tensor::scalar<float>(p.a_s)), cst(q8_scalar(t, p.a_zp)),
              dyn(b),                    cst(Tensor::scalar<float>(p.b_s)), cst(q8_scalar(t, p.b_zp)),
              cst(Tensor::scalar<float>(p.c_s)), cst(q8_scalar(t, p.c_zp))};
  return r;
}

std::string describe(const Tensor& a, const Tensor& b, const BinaryParams& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "A %s (s %.9g zp %d), B %s (s %.9g zp %d), C s %.9g zp %d, %s",
                shape_str(a.shape()).c_str(), static_cast<double>(p.a_s), p.a_zp, shape_str(b.shape()).c_str(),
                static_cast<double>(p.b_s), p.b_zp, static_cast<double>(p.c_s), p.c_zp, dtype_name(a.dtype()));
  return buf;
}

// Runs the binary operator on every ISA, thread count and (for 4-D operands of one shape) NCHW and
// NHWC inputs, and expects each result to equal `want`.
void expect_binary_everywhere(const char* type, const Tensor& a, const Tensor& b, const BinaryParams& p,
                              const Tensor& want) {
  // Both are layout-aware (NHWC fast paths; QLinearMul's also for a per-channel operand).
  const bool can_nhwc = a.shape().size() == 4 && b.shape().size() == 4;
  for (const std::string& isa : all_isas())
    for (int threads : {1, 2})
      for (int layout = 0; layout < (can_nhwc ? 3 : 1); ++layout) {
        // layout 0: both NCHW; 1: both NHWC; 2: only A NHWC (the kernel asks for plain inputs).
        SCOPED_TRACE(std::string(type) + " isa " + isa + " threads " + std::to_string(threads) + " layout " +
                     std::to_string(layout) + ": " + describe(a, b, p));
        OpRun r = binary_op(type, a, b, p, threads == 2 && layout == 0);
        r.options.isa = isa;
        r.threads = threads;
        r.inputs[0].nhwc = layout >= 1;
        r.inputs[3].nhwc = layout == 1;
        ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
      }
}

BinaryParams random_binary_params(DType t) {
  BinaryParams p;
  p.a_s = random_scale();
  p.b_s = random_scale();
  p.c_s = pick({0, 1, 2}) == 0 ? std::ldexp(1.0f, static_cast<int>(rand_int(-10, -1))) : random_scale();
  p.a_zp = random_zp(t);
  p.b_zp = random_zp(t);
  p.c_zp = random_zp(t);
  return p;
}

// A pair of broadcastable shapes of one of the forms models use.
std::pair<Shape, Shape> random_binary_shapes() {
  const int64_t n = pick<int64_t>({1, 1, 2}), c = pick<int64_t>({1, 3, 5, 16, 17, 33}),
                h = pick<int64_t>({1, 2, 3, 7}), w = pick<int64_t>({1, 5, 9, 13});
  const Shape full{n, c, h, w};
  switch (rand_int(0, 11)) {
    case 10: return {full, Shape{1, c, 1, 1}};      // per-channel B (squeeze-and-excitation)
    case 11: return {full, Shape{n, c, 1, 1}};      // per-channel B, one vector per image
    case 0: return {full, Shape{}};                 // scalar B
    case 1: return {Shape{}, full};                 // scalar A
    case 2: return {full, Shape{c, 1, 1}};          // per-channel-like B
    case 3: return {Shape{1, c, 1, 1}, full};       // per-channel-like A
    case 4: return {Shape{n, c, h, 1}, Shape{w}};   // row by column
    case 5: return {Shape{w}, Shape{n, c, h, 1}};   // column by row
    case 6: return {full, Shape{1}};                // one-element B
    case 7: return {Shape{1, 1, 1, 1}, Shape{1}};   // a single element
    case 8: return {Shape{n, 1, h, w}, Shape{c, 1, w}};
    default: return {full, full};
  }
}

// ---- QLinearAdd ------------------------------------------------------------------------------

TEST(QLinearAddContrib, RandomShapesAndBroadcastsMatchReference) {
  for (int iter = 0; iter < 120; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    const auto [as, bs] = random_binary_shapes();
    const Tensor a = q8_tensor(t, as, random_fill()), b = q8_tensor(t, bs, random_fill());
    const BinaryParams p = random_binary_params(t);
    expect_binary_everywhere("QLinearAdd", a, b, p, reference_qlinear_add(a, b, p));
  }
}

TEST(QLinearAddContrib, VectorLengthsAndTailsOnEveryIsa) {
  // Lengths around the 8/16/32-element vectors and the 16384-element parallel grain (two
  // threads split 40007 into chunks that are not multiples of 16).
  for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 255, 1000, 16389, 40007})
    for (DType t : {DType::UInt8, DType::Int8}) {
      const Tensor a = q8_tensor(t, {1, 1, 1, n}, Fill::Random), b = q8_tensor(t, {1, 1, 1, n}, Fill::Random);
      const BinaryParams p = random_binary_params(t);
      expect_binary_everywhere("QLinearAdd", a, b, p, reference_qlinear_add(a, b, p));
    }
  // Channels-last inputs of an odd-sized feature map.
  for (DType t : {DType::UInt8, DType::Int8}) {
    const Tensor a = q8_tensor(t, {2, 19, 7, 5}, Fill::Random), b = q8_tensor(t, {2, 19, 7, 5}, Fill::Random);
    const BinaryParams p = random_binary_params(t);
    expect_binary_everywhere("QLinearAdd", a, b, p, reference_qlinear_add(a, b, p));
  }
}

// Every byte pair, with power-of-two scale ratios so that many sums are exact .5 ties, in the
// same-shape form and in the three broadcast forms ONNX Runtime computes differently.
TEST(QLinearAddContrib, AllBytePairsWithExactTies) {
  for (DType t : {DType::UInt8, DType::Int8}) {
    const int32_t lo = qmin_of(t);
    Tensor rows(t, {256, 256}), cols(t, {256, 256}), col(t, {256, 1}), row(t, {1, 256});
    for (int64_t i = 0; i < 256; ++i) {
      put(col, i, lo + static_cast<int32_t>(i));
      put(row, i, lo + static_cast<int32_t>(i));
      for (int64_t j = 0; j < 256; ++j) {
        put(rows, i * 256 + j, lo + static_cast<int32_t>(i));
        put(cols, i * 256 + j, lo + static_cast<int32_t>(j));
      }
    }
    int64_t ties = 0;
    for (int set = 0; set < 6; ++set) {
      BinaryParams p;
      p.a_s = std::ldexp(1.0f, static_cast<int>(rand_int(-9, -4)));
      p.b_s = std::ldexp(1.0f, static_cast<int>(rand_int(-9, -4)));
      p.c_s = std::ldexp(1.0f, static_cast<int>(rand_int(-8, -3)));
      if (set >= 4) p.a_s *= 3.0f;  // not a power of two: ties of one input only
      p.a_zp = random_zp(t);
      p.b_zp = random_zp(t);
      p.c_zp = random_zp(t);
      for (int i = 0; i < 256; ++i) {
        const double v = (p.a_s * i + p.b_s * (255 - i)) / p.c_s;
        ties += v - std::floor(v) == 0.5;
      }
      const std::pair<const Tensor*, const Tensor*> forms[] = {{&rows, &cols}, {&col, &row}, {&row, &col},
                                                               {&rows, &col}};
      for (const auto& [a, b] : forms) {
        const Tensor want = reference_qlinear_add(*a, *b, p);
        for (const std::string& isa : all_isas()) {
          SCOPED_TRACE("isa " + isa + ": " + describe(*a, *b, p));
          OpRun r = binary_op("QLinearAdd", *a, *b, p);
          r.options.isa = isa;
          ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
        }
      }
    }
    EXPECT_GT(ties, 0);
  }
}

// Saturation at both ends, and scale ratios so large that the sum leaves the int32 range: ONNX
// Runtime's conversion then gives INT32_MIN, so a huge positive sum becomes the type's minimum.
TEST(QLinearAddContrib, SaturationAndOutOfRangeSums) {
  for (DType t : {DType::UInt8, DType::Int8})
    for (Fill fa : {Fill::Min, Fill::Max})
      for (Fill fb : {Fill::Min, Fill::Max}) {
        const Tensor a = q8_tensor(t, {1, 3, 5, 7}, fa), b = q8_tensor(t, {1, 3, 5, 7}, fb);
        for (int k = 0; k < 4; ++k) {
          BinaryParams p = random_binary_params(t);
          if (k == 0) p.c_s = 1e-3f * std::min(p.a_s, p.b_s);   // saturates unless it cancels
          if (k == 1) p.c_s = std::min(p.a_s, p.b_s) * 1e-8f;   // beyond int32
          if (k == 2) { p.a_zp = qmin_of(t); p.b_zp = qmin_of(t); p.c_zp = qmax_of(t); }
          expect_binary_everywhere("QLinearAdd", a, b, p, reference_qlinear_add(a, b, p));
          const Tensor bc = q8_tensor(t, {3, 1, 1}, fb);
          expect_binary_everywhere("QLinearAdd", bc, a, p, reference_qlinear_add(bc, a, p));
        }
      }
  // The documented consequence, spelled out: 255·rA far beyond 2^31 → 0 for uint8.
  BinaryParams p;
  p.a_s = 1.0f;
  p.b_s = 1.0f;
  p.c_s = 1e-8f;
  const Tensor a = q8_tensor(DType::UInt8, {1, 1, 1, 140}, Fill::Max), b = q8_tensor(DType::UInt8, {1, 1, 1, 140}, Fill::Max);
  for (const std::string& isa : all_isas()) {
    OpRun r = binary_op("QLinearAdd", a, b, p);
    r.options.isa = isa;
    const Tensor y = run_op(r).at(0);
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(get(y, i), 0) << "isa " << isa << " element " << i;
  }
}

TEST(QLinearAddContrib, SpanScalarRoleFollowsOnnxRuntimesBroadcaster) {
  EXPECT_TRUE(ort_a_is_span_scalar({}, {2, 3}));
  EXPECT_FALSE(ort_a_is_span_scalar({2, 3}, {}));
  EXPECT_TRUE(ort_a_is_span_scalar({3, 1}, {1, 5}));
  EXPECT_FALSE(ort_a_is_span_scalar({1, 5}, {3, 1}));
  EXPECT_TRUE(ort_a_is_span_scalar({1, 4, 1, 1}, {2, 4, 3, 3}));
  EXPECT_FALSE(ort_a_is_span_scalar({2, 4, 3, 3}, {4, 1, 1}));
  EXPECT_FALSE(ort_a_is_span_scalar({2, 4, 3, 1}, {2, 4, 3, 1}));  // trailing 1s are skipped
  EXPECT_TRUE(ort_a_is_span_scalar({1}, {1, 1}));                   // one element: A is the scalar
  EXPECT_FALSE(ort_a_is_span_scalar({2, 3}, {2, 3}));
}

// ---- QLinearMul ------------------------------------------------------------------------------

TEST(QLinearMulContrib, RandomShapesAndBroadcastsMatchReference) {
  for (int iter = 0; iter < 80; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    const auto [as, bs] = random_binary_shapes();
    const Tensor a = q8_tensor(t, as, random_fill()), b = q8_tensor(t, bs, random_fill());
    BinaryParams p = random_binary_params(t);
    p.c_s = p.a_s * p.b_s * rand_log_uniform(1.0f, 300.0f);  // products mostly in range
    expect_binary_everywhere("QLinearMul", a, b, p, reference_qlinear_mul(a, b, p));
  }
}

// The vector kernel's lengths and tails: one shape (flat), and a per-channel operand over NCHW
// planes (one value per plane) and over NHWC pixels (one vector per pixel), with products in
// range, at exact ties and beyond the int32 range.
TEST(QLinearMulContrib, PerChannelAndTailsOnEveryIsa) {
  for (int64_t c : {1, 3, 15, 16, 17, 33, 64, 67, 130})
    for (DType t : {DType::UInt8, DType::Int8}) {
      const Shape full{2, c, pick<int64_t>({1, 3, 7}), pick<int64_t>({1, 5, 9, 17})};
      const Tensor a = q8_tensor(t, full, Fill::Random);
      const Tensor s1 = q8_tensor(t, {1, c, 1, 1}, Fill::Random), sn = q8_tensor(t, {2, c, 1, 1}, Fill::Random);
      const Tensor same = q8_tensor(t, full, Fill::Random);
      for (int set = 0; set < 3; ++set) {
        BinaryParams p = random_binary_params(t);
        p.c_s = set == 0   ? p.a_s * p.b_s * rand_log_uniform(1.0f, 300.0f)
                : set == 1 ? std::ldexp(1.0f, static_cast<int>(std::round(std::log2(p.a_s * p.b_s * 64))))
                           : p.a_s * p.b_s * 1e-6f;
        expect_binary_everywhere("QLinearMul", a, s1, p, reference_qlinear_mul(a, s1, p));
        expect_binary_everywhere("QLinearMul", s1, a, p, reference_qlinear_mul(s1, a, p));
        expect_binary_everywhere("QLinearMul", a, sn, p, reference_qlinear_mul(a, sn, p));
        expect_binary_everywhere("QLinearMul", a, same, p, reference_qlinear_mul(a, same, p));
      }
    }
}

TEST(QLinearMulContrib, AllBytePairsTiesSaturationAndOutOfRange) {
  for (DType t : {DType::UInt8, DType::Int8}) {
    const int32_t lo = qmin_of(t);
    Tensor col(t, {256, 1}), row(t, {1, 256});
    for (int64_t i = 0; i < 256; ++i) {
      put(col, i, lo + static_cast<int32_t>(i));
      put(row, i, lo + static_cast<int32_t>(i));
    }
    for (int set = 0; set < 8; ++set) {
      BinaryParams p;
      p.a_s = random_scale();
      p.b_s = random_scale();
      p.a_zp = random_zp(t);
      p.b_zp = random_zp(t);
      p.c_zp = random_zp(t);
      if (set < 3) p.c_s = std::ldexp(1.0f, static_cast<int>(std::round(std::log2(p.a_s * p.b_s * 64))));  // ties
      else if (set < 6) p.c_s = p.a_s * p.b_s * rand_log_uniform(20.0f, 400.0f);
      else p.c_s = p.a_s * p.b_s * 1e-6f;  // |p·r| beyond 2^31: positive products give the minimum
      const Tensor want = reference_qlinear_mul(col, row, p);
      for (int threads : {1, 2}) {
        SCOPED_TRACE("threads " + std::to_string(threads) + ": " + describe(col, row, p));
        OpRun r = binary_op("QLinearMul", col, row, p);
        r.threads = threads;
        ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
      }
    }
    for (Fill f : {Fill::Min, Fill::Max}) {
      const Tensor a = q8_tensor(t, {2, 3, 4, 5}, f), b = q8_tensor(t, {2, 3, 4, 5}, Fill::Max);
      BinaryParams p = random_binary_params(t);
      p.c_s = p.a_s * p.b_s;
      expect_binary_everywhere("QLinearMul", a, b, p, reference_qlinear_mul(a, b, p));
    }
  }
}

// ---- QLinearGlobalAveragePool ----------------------------------------------------------------

struct PoolCase {
  Tensor x;
  float x_s, y_s;
  int32_t x_zp, y_zp;
  bool channels_last;
};

OpRun pool_op(const PoolCase& c) {
  OpRun r;
  r.op_type = "QLinearGlobalAveragePool";
  r.domain = "com.microsoft";
  r.opset = 1;
  r.attrs.set("channels_last", static_cast<int64_t>(c.channels_last));
  const DType t = c.x.dtype();
  r.inputs = {dyn(c.x), cst(Tensor::scalar<float>(c.x_s)), cst(q8_scalar(t, c.x_zp)),
              cst(Tensor::scalar<float>(c.y_s)), cst(q8_scalar(t, c.y_zp))};
  return r;
}

void expect_pool_everywhere(const PoolCase& c) {
  const Tensor want = reference_global_avg_pool(c.x, c.x_s, c.x_zp, c.y_s, c.y_zp, c.channels_last);
  for (const std::string& isa : all_isas())
    for (int threads : {1, 2})
      for (bool nhwc : {false, true}) {
        if (nhwc && c.x.shape().size() != 4) continue;
        SCOPED_TRACE("QLinearGlobalAveragePool isa " + isa + " threads " + std::to_string(threads) +
                     (nhwc ? " NHWC input" : "") + " channels_last " + std::to_string(c.channels_last) + " x " +
                     shape_str(c.x.shape()) + " " + dtype_name(c.x.dtype()));
        OpRun r = pool_op(c);
        r.options.isa = isa;
        r.threads = threads;
        r.inputs[0].nhwc = nhwc;
        ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
      }
}

TEST(QLinearGlobalAveragePoolContrib, RandomShapesBothLayoutsMatchReference) {
  for (int iter = 0; iter < 60; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    const bool cl = (iter / 2) % 2;
    const int64_t n = pick<int64_t>({1, 2, 3}), c = rand_int(1, 37);
    Shape spatial;
    switch (rand_int(0, 3)) {
      case 0: spatial = {rand_int(1, 40)}; break;
      case 1: spatial = {rand_int(1, 5), rand_int(1, 7), rand_int(1, 3)}; break;
      default: spatial = {rand_int(1, 19), rand_int(1, 19)}; break;
    }
    Shape xs{n};
    if (!cl) xs.push_back(c);
    xs.insert(xs.end(), spatial.begin(), spatial.end());
    if (cl) xs.push_back(c);
    PoolCase pc{q8_tensor(t, xs, random_fill()), random_scale(), random_scale(), random_zp(t), random_zp(t), cl};
    expect_pool_everywhere(pc);
  }
}

TEST(QLinearGlobalAveragePoolContrib, ExactTiesAndSaturation) {
  for (DType t : {DType::UInt8, DType::Int8})
    for (bool cl : {false, true}) {
      // s = 1/N with N a power of two: acc·s ends in .5 for many sums.
      int64_t ties = 0;
      for (Shape spatial : {Shape{2, 2}, Shape{2, 4}, Shape{4, 4}, Shape{1, 8}}) {
        const Shape xs = cl ? Shape{2, spatial[0], spatial[1], 21} : Shape{2, 21, spatial[0], spatial[1]};
        PoolCase pc{q8_tensor(t, xs, Fill::Random), 1.0f, 1.0f, random_zp(t), random_zp(t), cl};
        expect_pool_everywhere(pc);
        const int64_t n = spatial[0] * spatial[1];
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t ch = 0; ch < 21; ++ch) {
            int64_t acc = 0;
            for (int64_t i = 0; i < n; ++i) acc += get(pc.x, cl ? (b * n + i) * 21 + ch : (b * 21 + ch) * n + i) - pc.x_zp;
            ties += ((acc % n) + n) % n == n / 2;
          }
      }
      EXPECT_GT(ties, 0) << "no sum was an exact tie";
      // All at one extreme, zero points at the other: the averages saturate.
      for (Fill f : {Fill::Min, Fill::Max}) {
        const Shape xs = cl ? Shape{1, 7, 7, 35} : Shape{1, 35, 7, 7};
        const int32_t other = f == Fill::Min ? qmax_of(t) : qmin_of(t);
        expect_pool_everywhere({q8_tensor(t, xs, f), 0.5f, 0.001f, other, other, cl});
        expect_pool_everywhere({q8_tensor(t, xs, f), 0.02f, 0.02f, other, f == Fill::Min ? qmin_of(t) : qmax_of(t), cl});
      }
    }
}

TEST(QLinearGlobalAveragePoolContrib, WideChannelsAndInfiniteMultiplier) {
  // Many channels (the vector loop and its tail), and s = x_s / (y_s·N) overflowing to +inf:
  // acc > 0 saturates high, acc < 0 low, and acc = 0 gives inf·0 = NaN, which quint quantizes to
  // the minimum (as QuantizeLinear does).
  for (DType t : {DType::UInt8, DType::Int8})
    for (bool cl : {false, true}) {
      const Shape xs = cl ? Shape{2, 3, 3, 203} : Shape{2, 203, 3, 3};
      expect_pool_everywhere({q8_tensor(t, xs, random_fill()), random_scale(), random_scale(), random_zp(t), random_zp(t), cl});
      PoolCase inf{q8_tensor(t, xs, Fill::Random), 3e38f, 1e-30f, random_zp(t), random_zp(t), cl};
      for (int64_t i = 0; i < 9; ++i) put(inf.x, cl ? i * 203 : i, inf.x_zp);  // image 0, channel 0: acc = 0
      Tensor want(t, cl ? Shape{2, 1, 1, 203} : Shape{2, 203, 1, 1});
      int64_t zeros = 0;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t ch = 0; ch < 203; ++ch) {
          int64_t acc = 0;
          for (int64_t i = 0; i < 9; ++i) acc += get(inf.x, cl ? (b * 9 + i) * 203 + ch : (b * 203 + ch) * 9 + i) - inf.x_zp;
          zeros += acc == 0;
          put(want, b * 203 + ch, acc > 0 ? qmax_of(t) : qmin_of(t));
        }
      ASSERT_GT(zeros, 0);
      for (const std::string& isa : all_isas())
        for (int threads : {1, 2}) {
          SCOPED_TRACE("isa " + isa + " threads " + std::to_string(threads) + " channels_last " + std::to_string(cl));
          OpRun r = pool_op(inf);
          r.options.isa = isa;
          r.threads = threads;
          EXPECT_TRUE(tensors_equal(run_op(r).at(0), want));
        }
    }
}

// ---- QLinearConcat ---------------------------------------------------------------------------

OpRun concat_op(const std::vector<ConcatInput>& in, int64_t axis, float y_s, int32_t y_zp) {
  OpRun r;
  r.op_type = "QLinearConcat";
  r.domain = "com.microsoft";
  r.opset = 1;
  r.attrs.set("axis", axis);
  const DType t = in[0].x.dtype();
  r.inputs = {cst(Tensor::scalar<float>(y_s)), cst(q8_scalar(t, y_zp))};
  for (const auto& i : in) {
    r.inputs.push_back(dyn(i.x));
    r.inputs.push_back(cst(Tensor::scalar<float>(i.scale)));
    r.inputs.push_back(cst(q8_scalar(t, i.zp)));
  }
  return r;
}

TEST(QLinearConcatContrib, RandomShapesAndParametersMatchReference) {
  for (int iter = 0; iter < 80; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    const int64_t rank = rand_int(1, 4);
    Shape base(static_cast<size_t>(rank));
    for (auto& d : base) d = rand_int(1, 6);
    const int64_t axis = rand_int(-rank, rank - 1);
    const int64_t ax = axis < 0 ? axis + rank : axis;
    const float y_s = random_scale();
    const int32_t y_zp = random_zp(t);
    std::vector<ConcatInput> in(static_cast<size_t>(rand_int(1, 4)));
    for (auto& i : in) {
      Shape s = base;
      s[ax] = rand_int(1, 5);
      i.x = q8_tensor(t, s, random_fill());
      switch (rand_int(0, 4)) {
        case 0: i.scale = y_s; i.zp = y_zp; break;                          // copied
        case 1: i.scale = y_s; i.zp = random_zp(t); break;                  // same scale, other zero point
        case 2: i.scale = y_s * std::ldexp(1.0f, static_cast<int>(rand_int(-3, 3))); i.zp = random_zp(t); break;  // ties
        case 3: i.scale = std::nextafter(y_s, 1.0f); i.zp = y_zp; break;     // one ulp away
        default: i.scale = random_scale(); i.zp = random_zp(t); break;
      }
    }
    const Tensor want = reference_qlinear_concat(in, axis, y_s, y_zp);
    for (int threads : {1, 2}) {
      SCOPED_TRACE("QLinearConcat iter " + std::to_string(iter) + " axis " + std::to_string(axis) + " threads " +
                   std::to_string(threads));
      OpRun r = concat_op(in, axis, y_s, y_zp);
      r.threads = threads;
      ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
    }
  }
}

// Channel concatenation of channels-last inputs (the branches of an Inception block inside a
// convolution chain): the same values, handed over NHWC; inputs of mixed layouts, or another
// axis, fall back to the model's layout.
TEST(QLinearConcatContrib, ChannelsLastInputsMatchReference) {
  for (int iter = 0; iter < 40; ++iter) {
    const DType t = iter % 2 ? DType::Int8 : DType::UInt8;
    const Shape base{rand_int(1, 2), 1, rand_int(1, 7), rand_int(1, 9)};
    const int64_t axis = iter % 5 == 4 ? 2 : (iter % 3 ? 1 : -3);
    const float y_s = random_scale();
    const int32_t y_zp = random_zp(t);
    std::vector<ConcatInput> in(static_cast<size_t>(rand_int(1, 4)));
    for (auto& i : in) {
      Shape s = base;
      s[static_cast<size_t>(axis < 0 ? axis + 4 : axis)] = std::vector<int64_t>{1, 3, 16, 64, 67}[rand_int(0, 4)];
      i.x = q8_tensor(t, s, random_fill());
      const bool copy = rand_int(0, 1) == 0;
      i.scale = copy ? y_s : random_scale();
      i.zp = copy ? y_zp : random_zp(t);
    }
    const Tensor want = reference_qlinear_concat(in, axis, y_s, y_zp);
    const bool mixed = iter % 7 == 6 && in.size() > 1;
    SCOPED_TRACE("iter " + std::to_string(iter) + " axis " + std::to_string(axis) + (mixed ? " mixed layouts" : ""));
    OpRun r = concat_op(in, axis, y_s, y_zp);
    for (size_t k = 2; k < r.inputs.size(); k += 3) r.inputs[k].nhwc = !(mixed && k == 2);
    r.threads = 1 + iter % 2;
    ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
  }
}

TEST(QLinearConcatContrib, EveryByteValueWithTiesAndSaturation) {
  for (DType t : {DType::UInt8, DType::Int8}) {
    const int32_t lo = qmin_of(t), hi = qmax_of(t);
    Tensor all(t, {2, 128});
    for (int64_t i = 0; i < 256; ++i) put(all, i, lo + static_cast<int32_t>(i));
    const float y_s = 0.05f;
    const int32_t y_zp = t == DType::Int8 ? 0 : 128;
    const std::vector<ConcatInput> in = {
        {all, y_s, y_zp},                 // copy path
        {all, y_s * 0.5f, lo},            // exact .5 ties
        {all, y_s * 4.0f, hi},            // saturates both ways
        {all, y_s * 1000.0f, y_zp},       // saturates nearly everywhere
        {all, y_s * 1e-3f, lo},           // collapses onto the zero point
        {all, std::nextafter(y_s, 0.0f), y_zp}};
    for (int64_t axis : {0, 1, -1}) {
      SCOPED_TRACE("axis " + std::to_string(axis) + " " + dtype_name(t));
      ASSERT_TRUE(tensors_equal(run_op(concat_op(in, axis, y_s, y_zp)).at(0),
                                reference_qlinear_concat(in, axis, y_s, y_zp)));
    }
  }
}

// ---- the references against ONNX Runtime ------------------------------------------------------

// Several nodes in one model (one ONNX Runtime process per operator); every node's inputs are
// graph inputs, its parameters initializers.
class OrtModel {
 public:
  OrtModel() { b_.opset("com.microsoft", 1); }
  std::string input(const Tensor& t) {
    const std::string name = "in" + std::to_string(files_.size());
    b_.input(name, t.dtype(), t.shape());
    files_[name] = save_npy_temp("contrib-" + name, t);
    return name;
  }
  std::string param(const Tensor& t) {
    const std::string name = "p" + std::to_string(params_++);
    b_.initializer(name, t);
    return name;
  }
  std::string node(const std::string& op, const std::vector<std::string>& inputs, const Attributes& attrs,
                   DType out_type, Tensor want) {
    const std::string name = "out" + std::to_string(wants_.size());
    b_.node(op, inputs, {name}, attrs, "com.microsoft");
    b_.output(name, out_type);
    wants_.emplace_back(name, std::move(want));
    return name;
  }
  // Runs ONNX Runtime and expects every output to equal its reference.
  void check(const std::string& file) {
    const auto ort = run_ort(b_.save(file), files_, "");
    for (const auto& [name, want] : wants_) {
      SCOPED_TRACE(file + " output " + name);
      auto it = ort.find(name);
      ASSERT_NE(it, ort.end());
      EXPECT_TRUE(tensors_equal(it->second, want));
    }
  }

 private:
  ModelBuilder b_;
  std::map<std::string, std::string> files_;
  std::vector<std::pair<std::string, Tensor>> wants_;
  int params_ = 0;
};

TEST(QLinearContribOrt, ReferencesMatchOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  // QLinearAdd and QLinearMul: every broadcast form, random and tie-producing parameters, huge ratios.
  for (const char* op : {"QLinearAdd", "QLinearMul"}) {
    OrtModel m;
    for (int k = 0; k < 24; ++k) {
      const DType t = k % 2 ? DType::Int8 : DType::UInt8;
      auto [as, bs] = random_binary_shapes();
      if (k < 4) {
        as = {256, 256};
        bs = k < 2 ? Shape{256, 256} : Shape{256, 1};
      } else if (k < 6) {
        as = {256, 1};
        bs = {256, 256};
      }
      Tensor a = q8_tensor(t, as, k < 20 ? Fill::Random : random_fill()), b = q8_tensor(t, bs, Fill::Random);
      if (k < 6) {  // every byte pair: the [256,256] operand varies along the axis the other does not
        const bool b_column = bs[1] == 1;
        for (int64_t i = 0; i < a.numel(); ++i)
          put(a, i, qmin_of(t) + static_cast<int32_t>(as[1] == 1 ? i : (b_column ? i % 256 : i / 256)));
        for (int64_t i = 0; i < b.numel(); ++i) put(b, i, qmin_of(t) + static_cast<int32_t>(b_column ? i : i % 256));
      }
      BinaryParams p = random_binary_params(t);
      if (std::string(op) == "QLinearMul") p.c_s = p.a_s * p.b_s * rand_log_uniform(1.0f, 300.0f);
      if (std::string(op) == "QLinearAdd" && k < 6) {
        // Parameters under which the earlier reading gives a different integer somewhere, so that
        // ONNX Runtime decides between the two (about 1 set in 30 qualifies).
        for (int tries = 0; tries < 3000; ++tries) {
          p = random_binary_params(t);
          p.c_s = std::max(p.a_s, p.b_s) * rand_log_uniform(0.3f, 3.0f);
          if (!tensors_equal(reference_qlinear_add(a, b, p), alternative_qlinear_add(a, b, p))) break;
        }
        EXPECT_FALSE(tensors_equal(reference_qlinear_add(a, b, p), alternative_qlinear_add(a, b, p)))
            << "no discriminating parameters found for " << describe(a, b, p);
      }
      if (k == 22) p.c_s = std::string(op) == "QLinearMul" ? p.a_s * p.b_s * 1e-6f : std::min(p.a_s, p.b_s) * 1e-8f;
      const Tensor want = std::string(op) == "QLinearAdd" ? reference_qlinear_add(a, b, p) : reference_qlinear_mul(a, b, p);
      // quint on the same case, so a difference between the two shows which side moved.
      EXPECT_TRUE(tensors_equal(run_op(binary_op(op, a, b, p)).at(0), want)) << "quint: " << describe(a, b, p);
      const std::string ia = m.input(a), ib = m.input(b);
      m.node(op,
             {ia, m.param(Tensor::scalar<float>(p.a_s)), m.param(q8_scalar(t, p.a_zp)), ib,
              m.param(Tensor::scalar<float>(p.b_s)), m.param(q8_scalar(t, p.b_zp)),
              m.param(Tensor::scalar<float>(p.c_s)), m.param(q8_scalar(t, p.c_zp))},
             {}, t, want);
    }
    m.check(std::string("contrib_") + op + ".onnx");
  }
  // QLinearGlobalAveragePool, both layouts.
  {
    OrtModel m;
    for (int k = 0; k < 16; ++k) {
      const DType t = k % 2 ? DType::Int8 : DType::UInt8;
      const bool cl = (k / 2) % 2;
      const int64_t c = rand_int(1, 37), h = rand_int(1, 19), w = rand_int(1, 19);
      const Shape xs = cl ? Shape{2, h, w, c} : Shape{2, c, h, w};
      PoolCase pc{q8_tensor(t, xs, k < 12 ? Fill::Random : random_fill()), random_scale(), random_scale(),
                  random_zp(t), random_zp(t), cl};
      if (k < 4) pc.x_s = pc.y_s = 1.0f;  // ties when h·w is a power of two
      const Tensor want = reference_global_avg_pool(pc.x, pc.x_s, pc.x_zp, pc.y_s, pc.y_zp, cl);
      ASSERT_TRUE(tensors_equal(run_op(pool_op(pc)).at(0), want));
      Attributes attrs;
      attrs.set("channels_last", static_cast<int64_t>(cl));
      m.node("QLinearGlobalAveragePool",
             {m.input(pc.x), m.param(Tensor::scalar<float>(pc.x_s)), m.param(q8_scalar(t, pc.x_zp)),
              m.param(Tensor::scalar<float>(pc.y_s)), m.param(q8_scalar(t, pc.y_zp))},
             attrs, t, want);
    }
    m.check("contrib_QLinearGlobalAveragePool.onnx");
  }
  // QLinearConcat: every byte value through each kind of table.
  {
    OrtModel m;
    for (DType t : {DType::UInt8, DType::Int8})
      for (int64_t axis : {1, -1}) {
        Tensor all(t, {2, 128});
        for (int64_t i = 0; i < 256; ++i) put(all, i, qmin_of(t) + static_cast<int32_t>(i));
        const float y_s = random_scale();
        const int32_t y_zp = random_zp(t);
        const std::vector<ConcatInput> in = {{all, y_s, y_zp},
                                             {all, y_s * 0.25f, random_zp(t)},
                                             {all, random_scale(), random_zp(t)},
                                             {all, std::nextafter(y_s, 1.0f), y_zp}};
        const Tensor want = reference_qlinear_concat(in, axis, y_s, y_zp);
        ASSERT_TRUE(tensors_equal(run_op(concat_op(in, axis, y_s, y_zp)).at(0), want));
        std::vector<std::string> names = {m.param(Tensor::scalar<float>(y_s)), m.param(q8_scalar(t, y_zp))};
        for (const auto& i : in) {
          names.push_back(m.input(i.x));
          names.push_back(m.param(Tensor::scalar<float>(i.scale)));
          names.push_back(m.param(q8_scalar(t, i.zp)));
        }
        Attributes attrs;
        attrs.set("axis", axis);
        m.node("QLinearConcat", names, attrs, t, want);
      }
    m.check("contrib_QLinearConcat.onnx");
  }
}

// ---- QLinearSoftmax ------------------------------------------------------------------------------

// com.microsoft QLinearSoftmax nodes, and the DequantizeLinear → Softmax → QuantizeLinear units
// ONNX Runtime fuses into it, against ONNX Runtime: uint8 and int8, contiguous and strided axes,
// opsets 11 (coerced 2-D) and 13, rows of 1 to 1000, output scales whose reciprocal is not an
// integer (ONNX Runtime floors it), and rows of one element, where int8 outputs wrap to −128.
TEST(QLinearSoftmaxContrib, DirectAndFusedMatchOnnxRuntime) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  // Sets k = 2, 5, 8, 11 are int8; k = 5 and 11 have rows of one element and y_scale 1/256.
  const Shape shapes[] = {{4, 1000}, {3, 37}, {2, 5, 7}, {5, 10}, {2, 3, 4, 5}, {6, 1}};
  const float y_scales[] = {1.0f / 128, 1.0f / 255, 0.0039f, 0.004f, 0.0031f, 1.0f / 256};
  for (const bool qdq : {false, true}) {
    for (const int opset : {11, 13}) {
      SCOPED_TRACE(std::string(qdq ? "DQ-Softmax-Q" : "QLinearSoftmax") + " opset " + std::to_string(opset));
      ModelBuilder b;
      b.opset("", opset).opset("com.microsoft", 1);
      std::map<std::string, Tensor> inputs;
      std::vector<std::string> outs;
      // One parameter set: input x<k>, output y<k>, through a QLinearSoftmax node or a DQ-Softmax-Q unit.
      auto add_set = [&](int k, DType t, const Shape& shape, float x_s, int32_t x_zp, float y_s, int32_t y_zp,
                         Attributes attrs) {
        const std::string id = std::to_string(k);
        inputs["x" + id] = q8_tensor(t, shape, Fill::Random);
        b.input("x" + id, t, shape);
        b.initializer("xs" + id, Tensor::scalar<float>(x_s)).initializer("xz" + id, q8_scalar(t, x_zp));
        b.initializer("ys" + id, Tensor::scalar<float>(y_s)).initializer("yz" + id, q8_scalar(t, y_zp));
        if (qdq) {
          b.node("DequantizeLinear", {"x" + id, "xs" + id, "xz" + id}, {"d" + id});
          b.node("Softmax", {"d" + id}, {"s" + id}, attrs);
          b.node("QuantizeLinear", {"s" + id, "ys" + id, "yz" + id}, {"y" + id});
        } else {
          attrs.set("opset", int64_t{opset});
          b.node("QLinearSoftmax", {"x" + id, "xs" + id, "xz" + id, "ys" + id, "yz" + id}, {"y" + id}, attrs,
                 "com.microsoft");
        }
        b.output("y" + id, t);
        outs.push_back("y" + id);
      };
      for (int k = 0; k < 12; ++k) {
        const DType t = k % 3 == 2 ? DType::Int8 : DType::UInt8;
        const Shape& shape = shapes[k % 6];
        const int64_t rank = static_cast<int64_t>(shape.size());
        Attributes attrs;
        if (k % 4 != 3) attrs.set("axis", k < 6 ? rank - 1 : rand_int(0, rank - 1));
        add_set(k, t, shape, rand_log_uniform(0.01f, 0.5f), static_cast<int32_t>(rand_int(qmin_of(t), qmin_of(t) + 255)),
                y_scales[k % 6], t == DType::Int8 ? -128 : 0, attrs);
      }
      // Two more sets where E·Y overflows: uint8 rows of 2 with y_scale 1/3000 (ONNX Runtime gives
      // y_zp), int8 rows of one with y_zp 0 (−128).
      add_set(12, DType::UInt8, {3, 2}, 0.02f, 0, 1.0f / 3000, 0, {});
      add_set(13, DType::Int8, {4, 1}, 0.1f, 0, 1.0f / 256, 0, {});
      const std::string path = b.save(std::string("qlinear_softmax_") + (qdq ? "qdq" : "op") + std::to_string(opset) + ".onnx");
      const auto mine = expect_matches_ort(path, inputs, outs);
      ASSERT_TRUE(mine.count("y11"));
      // Set 11: a one-element row has probability 1, 256 levels above the int8 zero point −128;
      // E·Y overflows to inf there and the result still saturates at 127 (ONNX Runtime 1.30; its
      // int8 kernel wrapped to −128 before the fix of onnxruntime#29727).
      const Tensor& one = mine.at("y11");
      for (int64_t i = 0; i < one.numel(); ++i) EXPECT_EQ(one.data<int8_t>()[i], 127) << "y11[" << i << "]";
      if (qdq) {
        // The fused unit is not the float one: some outputs differ (so the comparison above
        // tells the two apart).
        SessionOptions float_opts;
        float_opts.qdq = QdqMode::Float;
        Session sf(path, float_opts);
        const auto in_float = quint_tensors(sf, inputs);
        int64_t differ = 0;
        for (const std::string& out : outs)
          for (int64_t i = 0; i < mine.at(out).numel(); ++i)
            differ += static_cast<const uint8_t*>(mine.at(out).raw())[i] != static_cast<const uint8_t*>(in_float.at(out).raw())[i];
        EXPECT_GT(differ, 0);
      }
    }
  }
}


// ---- QLinearLeakyRelu / QLinearSigmoid -------------------------------------------------------

struct LookupCase {
  bool sigmoid = false;
  DType t = DType::UInt8;
  float alpha = 0.01f, x_s = 1, y_s = 1;
  int32_t x_zp = 0, y_zp = 0;
};

// ONNX Runtime's table, entry by entry (its QlinearBuildLookupTable): the input level
// dequantized, the float function, then its QuantizeLinear: sat(rne(fl32(f / y_s)) + y_zp).
Tensor reference_lookup(const Tensor& x, const LookupCase& c) {
  Tensor y(c.t, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float d = c.x_s * static_cast<float>(get(x, i) - c.x_zp);
    const float f = c.sigmoid ? ops::arith::ort_sigmoid(d) : (d >= 0.0f ? d : c.alpha * d);
    const float v = f / c.y_s;
    put(y, i, sat(std::nearbyint(static_cast<double>(v)) + c.y_zp, c.t));
  }
  return y;
}

LookupCase random_lookup_case(int k) {
  LookupCase c;
  c.sigmoid = k % 3 == 2;
  c.t = k % 2 ? DType::Int8 : DType::UInt8;
  c.x_s = random_scale();
  c.x_zp = random_zp(c.t);
  // Sigmoid's range is (0, 1): output scales around 1/255, and coarser ones.
  c.y_s = c.sigmoid ? (1.0f / 255.0f) * rand_log_uniform(0.5f, 16.0f) : random_scale();
  c.y_zp = random_zp(c.t);
  c.alpha = pick<float>({0.01f, 0.1f, 0.2f, 1.0f / 3.0f, 0.0f, -0.5f, 1.5f, 1e-30f});
  if (k % 7 == 4) c.y_s = c.x_s * std::ldexp(1.0f, static_cast<int>(rand_int(-2, 2)));  // exact ties
  return c;
}

OpRun lookup_op(const Tensor& x, const LookupCase& c) {
  OpRun r;
  r.op_type = c.sigmoid ? "QLinearSigmoid" : "QLinearLeakyRelu";
  r.domain = "com.microsoft";
  r.opset = 1;
  if (!c.sigmoid) r.attrs.set("alpha", c.alpha);
  r.inputs = {dyn(x), cst(Tensor::scalar<float>(c.x_s)), cst(q8_scalar(c.t, c.x_zp)), cst(Tensor::scalar<float>(c.y_s)),
              cst(q8_scalar(c.t, c.y_zp))};
  return r;
}

// Every byte value (and random images, channels-last inside a convolution chain) on every
// kernel variant, one and two threads.
TEST(QLinearLookupContrib, EveryByteAndLayoutMatchesReference) {
  for (int k = 0; k < 60; ++k) {
    const LookupCase c = random_lookup_case(k);
    Tensor all(c.t, {2, 128});
    for (int64_t i = 0; i < 256; ++i) put(all, i, qmin_of(c.t) + static_cast<int32_t>(i));
    const Tensor image = q8_tensor(c.t, {1, rand_int(1, 70), rand_int(1, 9), rand_int(1, 9)}, random_fill());
    for (const Tensor* x : {static_cast<const Tensor*>(&all), &image}) {
      const Tensor want = reference_lookup(*x, c);
      for (const std::string& isa : all_isas())
        for (int threads : {1, 2}) {
          SCOPED_TRACE(std::string(c.sigmoid ? "QLinearSigmoid" : "QLinearLeakyRelu") + " case " + std::to_string(k) +
                       " isa " + isa + " threads " + std::to_string(threads) + " alpha " + std::to_string(c.alpha));
          OpRun r = lookup_op(*x, c);
          r.options.isa = isa;
          r.threads = threads;
          r.inputs[0].nhwc = x == &image && k % 2 == 0;
          ASSERT_TRUE(tensors_equal(run_op(r).at(0), want));
        }
    }
  }
}

TEST(QLinearLookupContrib, NonScalarParametersAreRejected) {
  LookupCase c;
  OpRun r = lookup_op(Tensor(DType::UInt8, {4}), c);
  r.inputs[1] = cst(Tensor(DType::Float32, {2}));
  try {
    run_op(r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be a scalar"), std::string::npos) << e.what();
  }
}

// The com.microsoft nodes and the DequantizeLinear → LeakyRelu / Sigmoid → QuantizeLinear units
// (which ONNX Runtime fuses into them, and quint too) against ONNX Runtime, every byte value,
// uint8 and int8; the units run in float (--qdq float) give the same integers.
TEST(QLinearLookupContrib, DirectAndFusedMatchOnnxRuntimeAndTheFloatUnit) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  for (const bool qdq : {false, true}) {
    SCOPED_TRACE(qdq ? "QDQ units" : "com.microsoft nodes");
    ModelBuilder b;
    b.opset("", 13).opset("com.microsoft", 1);
    std::map<std::string, Tensor> inputs;
    std::vector<std::string> outs;
    std::map<std::string, Tensor> wants;
    for (int k = 0; k < 48; ++k) {
      const LookupCase c = random_lookup_case(k);
      const std::string id = std::to_string(k);
      Tensor x(c.t, {2, 128});
      for (int64_t i = 0; i < 256; ++i) put(x, i, qmin_of(c.t) + static_cast<int32_t>(i));
      inputs["x" + id] = x;
      wants["y" + id] = reference_lookup(x, c);
      b.input("x" + id, c.t, x.shape());
      b.initializer("xs" + id, Tensor::scalar<float>(c.x_s)).initializer("xz" + id, q8_scalar(c.t, c.x_zp));
      b.initializer("ys" + id, Tensor::scalar<float>(c.y_s)).initializer("yz" + id, q8_scalar(c.t, c.y_zp));
      Attributes attrs;
      if (!c.sigmoid) attrs.set("alpha", c.alpha);
      if (qdq) {
        b.node("DequantizeLinear", {"x" + id, "xs" + id, "xz" + id}, {"d" + id});
        b.node(c.sigmoid ? "Sigmoid" : "LeakyRelu", {"d" + id}, {"f" + id}, attrs);
        b.node("QuantizeLinear", {"f" + id, "ys" + id, "yz" + id}, {"y" + id});
      } else {
        b.node(c.sigmoid ? "QLinearSigmoid" : "QLinearLeakyRelu", {"x" + id, "xs" + id, "xz" + id, "ys" + id, "yz" + id},
               {"y" + id}, attrs, "com.microsoft");
      }
      b.output("y" + id, c.t);
      outs.push_back("y" + id);
    }
    const std::string path = b.save(std::string("qlinear_lookup_") + (qdq ? "qdq" : "op") + ".onnx");
    const auto mine = expect_matches_ort(path, inputs, outs);
    for (const std::string& out : outs) {
      ASSERT_TRUE(mine.count(out)) << out;
      EXPECT_TRUE(tensors_equal(mine.at(out), wants.at(out))) << out;
    }
    if (qdq) {
      SessionOptions float_opts;
      float_opts.qdq = QdqMode::Float;
      const auto in_float = quint_tensors(Session(path, float_opts), inputs);
      for (const std::string& out : outs) EXPECT_TRUE(tensors_equal(in_float.at(out), wants.at(out))) << out;
      // Fused into the com.microsoft operators, as ONNX Runtime does.
      const ModelSummary info = Session::summarize(path);
      int lookups = 0;
      for (const std::string& line : info.fusions)
        lookups += line.rfind("QLinearLeakyRelu ", 0) == 0 || line.rfind("QLinearSigmoid ", 0) == 0;
      EXPECT_EQ(lookups, 48);
      EXPECT_TRUE(info.not_fused.empty());
    }
  }
}

}  // namespace
}  // namespace quint::test
