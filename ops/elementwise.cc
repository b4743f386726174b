// Elementwise operators (ai.onnx): arithmetic and comparisons with numpy broadcasting, logic,
// activations and other unary math, Clip, the variadic Min/Max/Sum/Mean, and Where.
//
// Numeric conventions (the ONNX spec leaves them open; ONNX Runtime's results are given where
// they are defined):
//   - Integer Add/Sub/Mul/Neg/Abs/Sum wrap around modulo 2^bits (two's complement), as ONNX
//     Runtime's Eigen loops do on every platform; computed in unsigned arithmetic so that C++
//     has no signed overflow.
//   - Integer Div truncates toward zero (C++ and ONNX Runtime; numpy floors instead). Where ONNX
//     Runtime traps (SIGFPE), quint defines: x / 0 = 0 and INT_MIN / -1 = INT_MIN (wrapped).
//   - Min/Max propagate NaN (as numpy's minimum/maximum, the ONNX reference).
//   - Round is round-half-to-even (std::nearbyint in the default rounding mode).
// float16 and bfloat16 are not computed on here (Cast converts them); they fail at load.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "arith/activation.h"
#include "common.h"
#include "register.h"

namespace quint::ops {

namespace {

// ---- Element types --------------------------------------------------------------------------

template <class T>
constexpr bool is_real = std::is_same_v<T, float> || std::is_same_v<T, double>;
template <class T>
constexpr bool is_int = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <class T>
constexpr bool is_signed_int = is_int<T> && std::is_signed_v<T>;
template <class T>
constexpr bool is_numeric = is_real<T> || is_int<T>;

// The dtypes an operator's message lists as supported (float16/bfloat16 never are).
constexpr DType kListedTypes[] = {DType::Float32, DType::Float64, DType::Int8,   DType::UInt8,
                                  DType::Int16,   DType::UInt16,  DType::Int32,  DType::UInt32,
                                  DType::Int64,   DType::UInt64,  DType::Bool,   DType::String};

// Calls make(T{}) for the element type of `t` when Accept<T> holds, and fails with the list of
// accepted types otherwise.
template <template <class> class Accept, class Make>
std::unique_ptr<Kernel> dispatch(DType t, const char* what, Make&& make) {
  auto accepted = [](DType d) {
    if (d == DType::Float16 || d == DType::BFloat16 || d == DType::Undefined) return false;
    return visit_dtype(d, [](auto tag) { return Accept<decltype(tag)>::value; });
  };
  if (!accepted(t)) {
    std::string list;
    for (DType d : kListedTypes)
      if (accepted(d)) list += std::string(list.empty() ? "" : ", ") + dtype_name(d);
    const bool half = t == DType::Float16 || t == DType::BFloat16;
    fail(what, " must be one of ", list, "; got ", dtype_name(t),
         half ? " (quint computes in float32/float64: Cast the operands first)" : "");
  }
  return visit_dtype(t, [&](auto tag) -> std::unique_ptr<Kernel> {
    if constexpr (Accept<decltype(tag)>::value) return make(tag);
    else return nullptr;  // unreachable: rejected above
  });
}

template <class T> struct AcceptReal : std::bool_constant<is_real<T>> {};
template <class T> struct AcceptNumeric : std::bool_constant<is_numeric<T>> {};
template <class T> struct AcceptSigned : std::bool_constant<is_real<T> || is_signed_int<T>> {};
template <class T> struct AcceptBool : std::bool_constant<std::is_same_v<T, bool>> {};
template <class T>
struct AcceptEquality : std::bool_constant<is_numeric<T> || std::is_same_v<T, bool> ||
                                           std::is_same_v<T, std::string>> {};

template <class T>
T checked_div(T a, T b) {
  if constexpr (is_int<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>)
      if (b == -1) return wrap_neg(a);  // INT_MIN / -1 would trap
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

template <class T>
bool is_nan(T v) {
  if constexpr (is_real<T>) return std::isnan(v);
  else return false;
}

// ---- Broadcasting ---------------------------------------------------------------------------

// Visits the output of a broadcast elementwise operation row by row. The output shape is
// coalesced (unit dims dropped, neighbours merged where every input's strides allow); a row is
// a run along the last coalesced dim, along which each input advances by 1 (stride 1) or stays
// on one element (stride 0, broadcast).
class Broadcast {
 public:
  Broadcast() = default;
  Broadcast(const std::vector<Shape>& inputs, const Shape& out) {
    const size_t k = inputs.size();
    numel_ = shape_numel(out);
    std::vector<std::vector<int64_t>> full(k);
    for (size_t i = 0; i < k; ++i) full[i] = broadcast_strides(inputs[i], out);
    strides_.assign(k, {});
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] == 1) continue;
      bool merge = !dims_.empty();
      // Dims d-1 and d merge when, for every input, stride[d-1] == stride[d] * size[d].
      for (size_t i = 0; merge && i < k; ++i) merge = strides_[i].back() == full[i][d] * out[d];
      if (merge) {
        dims_.back() *= out[d];
        for (size_t i = 0; i < k; ++i) strides_[i].back() = full[i][d];
      } else {
        dims_.push_back(out[d]);
        for (size_t i = 0; i < k; ++i) strides_[i].push_back(full[i][d]);
      }
    }
    inner_stride_.assign(k, 0);
    if (!dims_.empty()) {
      inner_ = dims_.back();
      dims_.pop_back();
      for (size_t i = 0; i < k; ++i) {
        inner_stride_[i] = strides_[i].back();
        strides_[i].pop_back();
      }
    }
    rows_ = 1;
    for (int64_t d : dims_) rows_ *= d;
  }

  int64_t numel() const { return numel_; }
  // True when input i advances along a row (stride 1), false when it is broadcast (stride 0).
  bool along(size_t i) const { return inner_stride_[i] != 0; }

  // Calls f(in_offsets, out_offset, length) for every row, rows split among the workers.
  // in_offsets[i] is where input i's part of the row starts.
  template <class F>
  void for_rows(Parallel& par, const F& f) const {
    if (numel_ == 0) return;
    const size_t k = strides_.size();
    const size_t nd = dims_.size();
    const int64_t grain = std::max<int64_t>(1, 32768 / inner_);
    par.parallel_for(rows_, grain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> coord(nd, 0), off(k, 0);
      int64_t rest = begin;
      for (size_t d = nd; d-- > 0;) {
        coord[d] = rest % dims_[d];
        rest /= dims_[d];
        for (size_t i = 0; i < k; ++i) off[i] += coord[d] * strides_[i][d];
      }
      for (int64_t row = begin; row < end; ++row) {
        f(off.data(), row * inner_, inner_);
        for (size_t d = nd; d-- > 0;) {  // odometer step to the next row
          for (size_t i = 0; i < k; ++i) off[i] += strides_[i][d];
          if (++coord[d] < dims_[d]) break;
          for (size_t i = 0; i < k; ++i) off[i] -= strides_[i][d] * dims_[d];
          coord[d] = 0;
        }
      }
    });
  }

 private:
  std::vector<int64_t> dims_;                  // coalesced output dims but the last
  std::vector<std::vector<int64_t>> strides_;  // [input][dim], 0 where broadcast
  std::vector<int64_t> inner_stride_;          // [input], 0 or 1
  int64_t inner_ = 1, rows_ = 1, numel_ = 0;
};

// Element pointer of a tensor whose dtype the build function checked (raw access never throws).
template <class T>
const T* in_ptr(const RunContext& ctx, size_t i) {
  return static_cast<const T*>(ctx.in(i).raw());
}
template <class T>
T* out_ptr(const RunContext& ctx, size_t i) {
  return static_cast<T*>(ctx.out(i).raw());
}

// The output shape of a two-input broadcasting operator. Before opset 7 (Add, Sub, Mul, Div,
// Pow, Equal, Less, Greater, And, Or, Xor) B broadcast to A only when `broadcast`=1, with B's
// dims matched against A's starting at `axis` (default: B's dims are A's trailing dims);
// rewriting B's shape with unit dims turns that into numpy broadcasting.
struct BinaryShapes {
  Shape a, b, out;
};
BinaryShapes binary_shapes(const BuildContext& ctx, bool legacy_attr) {
  BinaryShapes s{ctx.input(0).shape, ctx.input(1).shape, {}};
  if (legacy_attr && ctx.node().opset < 7) {
    if (ctx.attrs().get_int("broadcast", 0) == 0) {
      if (s.a != s.b)
        fail("shapes ", shape_str(s.a), " and ", shape_str(s.b),
             " differ and attribute broadcast is 0 (opset ", ctx.node().opset, ")");
    } else {
      const int64_t ra = static_cast<int64_t>(s.a.size()), rb = static_cast<int64_t>(s.b.size());
      if (rb > ra) fail("B (", shape_str(s.b), ") has a higher rank than A (", shape_str(s.a), ")");
      int64_t axis = ctx.attrs().get_int("axis", ra - rb);
      if (axis < 0 || axis + rb > ra)
        fail("axis ", axis, " does not place B ", shape_str(s.b), " inside A ", shape_str(s.a));
      Shape b(static_cast<size_t>(ra), 1);
      for (int64_t i = 0; i < rb; ++i) {
        const int64_t da = s.a[axis + i], db = s.b[i];
        if (db != da && db != 1)
          fail("B ", shape_str(s.b), " does not match A ", shape_str(s.a), " at axis ", axis);
        b[axis + i] = db;
      }
      s.b = b;
    }
  }
  s.out = broadcast_shapes(s.a, s.b);
  return s;
}

void expect_same_dtype(const BuildContext& ctx, size_t i, size_t j) {
  if (ctx.input(i).dtype != ctx.input(j).dtype)
    fail("inputs ", i, " and ", j, " must have the same type, got ", dtype_name(ctx.input(i).dtype),
         " and ", dtype_name(ctx.input(j).dtype));
}

// ---- Binary operators -----------------------------------------------------------------------

// out[i] = op(a[i'], b[i'']) with broadcasting; T the inputs' element type, R the output's.
template <class T, class R, class Op>
class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(Broadcast bc, Op op) : bc_(std::move(bc)), op_(op) {}
  void run(const RunContext& ctx) const override {
    const T* a = in_ptr<T>(ctx, 0);
    const T* b = in_ptr<T>(ctx, 1);
    R* y = out_ptr<R>(ctx, 0);
    const bool sa = bc_.along(0), sb = bc_.along(1);
    bc_.for_rows(*ctx.parallel, [&](const int64_t* off, int64_t o, int64_t n) {
      const T* pa = a + off[0];
      const T* pb = b + off[1];
      R* py = y + o;
      if (sa && sb) {
        for (int64_t j = 0; j < n; ++j) py[j] = op_(pa[j], pb[j]);
      } else if (sa) {
        const T vb = pb[0];
        for (int64_t j = 0; j < n; ++j) py[j] = op_(pa[j], vb);
      } else if (sb) {
        const T va = pa[0];
        for (int64_t j = 0; j < n; ++j) py[j] = op_(va, pb[j]);
      } else {
        const R v = op_(pa[0], pb[0]);
        for (int64_t j = 0; j < n; ++j) py[j] = v;
      }
    });
  }

 private:
  Broadcast bc_;
  Op op_;
};

struct AddOp { template <class T> T operator()(T a, T b) const { return wrap_add(a, b); } };
struct SubOp { template <class T> T operator()(T a, T b) const { return wrap_sub(a, b); } };
struct MulOp { template <class T> T operator()(T a, T b) const { return wrap_mul(a, b); } };
struct DivOp { template <class T> T operator()(T a, T b) const { return checked_div(a, b); } };
struct EqualOp { template <class T> bool operator()(const T& a, const T& b) const { return a == b; } };
struct LessOp { template <class T> bool operator()(T a, T b) const { return a < b; } };
struct GreaterOp { template <class T> bool operator()(T a, T b) const { return a > b; } };
struct LessEqualOp { template <class T> bool operator()(T a, T b) const { return a <= b; } };
struct GreaterEqualOp { template <class T> bool operator()(T a, T b) const { return a >= b; } };
struct AndOp { bool operator()(bool a, bool b) const { return a && b; } };
struct OrOp { bool operator()(bool a, bool b) const { return a || b; } };
struct XorOp { bool operator()(bool a, bool b) const { return a != b; } };

// Binary operator whose output has the inputs' type (Same) or bool (compare/logic).
template <class Op, template <class> class Accept, bool BoolOut, bool Legacy>
std::unique_ptr<Kernel> build_binary(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  expect_same_dtype(ctx, 0, 1);
  BinaryShapes s = binary_shapes(ctx, Legacy);
  const DType t = ctx.input(0).dtype;
  ctx.set_output(0, BoolOut ? DType::Bool : t, s.out);
  Broadcast bc({s.a, s.b}, s.out);
  return dispatch<Accept>(t, "the inputs' type", [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    using R = std::conditional_t<BoolOut, bool, T>;
    return std::make_unique<BinaryKernel<T, R, Op>>(bc, Op{});
  });
}

// Pow(X, Y): the exponent may have another type than the base (opset 12+); the result has the
// base's type. Real bases are raised in double and rounded once to T (ONNX Runtime calls
// std::pow with the same promotion for mixed types). Integer bases with integer exponents use
// exact repeated squaring modulo 2^bits; a negative exponent gives the truncated quotient
// 1 / x^-y (0 unless x is ±1, and 0 for x = 0 where ONNX Runtime's result is undefined).
// Integer bases with real exponents go through double and saturate like Cast.
template <class T, class E>
T pow_value(T x, E y) {
  if constexpr (is_real<T>) {
    return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  } else if constexpr (is_real<E>) {
    return saturate_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  } else {
    if constexpr (std::is_signed_v<E>) {
      if (y < 0) {
        if (x == 1) return 1;
        if constexpr (std::is_signed_v<T>)
          if (x == -1) return (y % 2 == 0) ? T{1} : T{-1};
        return 0;
      }
    }
    using U = std::make_unsigned_t<E>;
    U e = static_cast<U>(y);
    T result = 1, base = x;
    while (e) {
      if (e & 1) result = wrap_mul(result, base);
      base = wrap_mul(base, base);
      e >>= 1;
    }
    return result;
  }
}

template <class T, class E>
class PowKernel final : public Kernel {
 public:
  explicit PowKernel(Broadcast bc) : bc_(std::move(bc)) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    const E* p = in_ptr<E>(ctx, 1);
    T* y = out_ptr<T>(ctx, 0);
    const bool sx = bc_.along(0), sp = bc_.along(1);
    bc_.for_rows(*ctx.parallel, [&](const int64_t* off, int64_t o, int64_t n) {
      for (int64_t j = 0; j < n; ++j)
        y[o + j] = pow_value<T, E>(x[off[0] + (sx ? j : 0)], p[off[1] + (sp ? j : 0)]);
    });
  }

 private:
  Broadcast bc_;
};

template <class T> struct AcceptPowBase : std::bool_constant<is_real<T> || std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>> {};

std::unique_ptr<Kernel> build_pow(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  if (ctx.node().opset < 12) expect_same_dtype(ctx, 0, 1);
  BinaryShapes s = binary_shapes(ctx, true);
  const DType t = ctx.input(0).dtype;
  ctx.set_output(0, t, s.out);
  Broadcast bc({s.a, s.b}, s.out);
  return dispatch<AcceptPowBase>(t, "base X", [&](auto xtag) {
    using T = decltype(xtag);
    return dispatch<AcceptNumeric>(ctx.input(1).dtype, "exponent Y", [&](auto etag) -> std::unique_ptr<Kernel> {
      return std::make_unique<PowKernel<T, decltype(etag)>>(bc);
    });
  });
}

// ---- Unary operators ------------------------------------------------------------------------

template <class T, class R, class Op>
class UnaryKernel final : public Kernel {
 public:
  explicit UnaryKernel(Op op) : op_(op) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    R* y = out_ptr<R>(ctx, 0);
    ctx.parallel->parallel_for(ctx.in(0).numel(), 16384, [&](int64_t b, int64_t e) {
      // Operators with a whole-array float routine (dispatched once per call, not per element).
      if constexpr (std::is_same_v<T, float> && std::is_same_v<R, float> &&
                    requires(const Op& o, const float* a, float* z) { o.bulk(a, z, int64_t{}); }) {
        op_.bulk(x + b, y + b, e - b);
      } else {
        for (int64_t i = b; i < e; ++i) y[i] = op_(x[i]);
      }
    });
  }

 private:
  Op op_;
};

struct ReluOp {
  template <class T> T operator()(T x) const { return x > T{0} ? x : (is_nan(x) ? x : T{0}); }
};
struct LeakyReluOp {
  float alpha;
  // y = x for x >= 0, alpha * x otherwise (alpha converted to T first, as ONNX Runtime does).
  template <class T> T operator()(T x) const { return x >= T{0} ? x : static_cast<T>(alpha) * x; }
};
// y = max(0, min(1, alpha·x + beta)), the product rounded before the sum (no FMA) and NaN
// propagated; alpha and beta converted to T first. Measured against ONNX Runtime 1.30 on 4 M
// floats (random bit patterns, ±0, ±inf, NaN at vector-tail positions): 0 differences.
struct HardSigmoidOp {
  float alpha, beta;
  template <class T> T operator()(T x) const {
    const T v = static_cast<T>(alpha) * x + static_cast<T>(beta);
    // NaN fails both comparisons and comes out as it is (no branch: the loop vectorizes).
    return v < T{0} ? T{0} : (v > T{1} ? T{1} : v);
  }
};
// y = x · HardSigmoid(x) with alpha = 1/6 and beta = 1/2 (ONNX's definition, as ONNX Runtime
// computes it: x = −inf gives NaN, −0 gives −0; 0 differences on the same 4 M floats).
struct HardSwishOp {
  template <class T> T operator()(T x) const { return x * HardSigmoidOp{1.0f / 6.0f, 0.5f}(x); }
};
struct NegOp { template <class T> T operator()(T x) const { return wrap_neg(x); } };
struct AbsOp {
  template <class T> T operator()(T x) const {
    if constexpr (is_real<T>) return std::fabs(x);
    else if constexpr (std::is_signed_v<T>) return x < 0 ? wrap_neg(x) : x;
    else return x;
  }
};
// float: ONNX Runtime's rational approximation, bit for bit (arith/activation.h). double:
// sigmoid(x) = 1 / (1 + e^-x), evaluated as e^x / (1 + e^x) for x < 0 so that e^-x cannot
// overflow to inf for very negative x.
struct SigmoidOp {
  template <class T> T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>) {
      return arith::ort_sigmoid(x);
    } else {
      if (x >= T{0}) return T{1} / (T{1} + std::exp(-x));
      const T e = std::exp(x);
      return e / (T{1} + e);
    }
  }
  void bulk(const float* x, float* y, int64_t n) const { arith::ort_sigmoid(x, y, n); }
};
// float: ONNX Runtime's own function, bit for bit (arith/activation.h: its rational tanh, its
// erf, its AVX-512F exp), one value or a whole array at a time; double: libm's.
template <float (*Ort)(float), void (*OrtArray)(const float*, float*, int64_t), double (*Libm)(double)>
struct OrtFloatOp {
  template <class T> T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>) return Ort(x);
    else return Libm(x);
  }
  void bulk(const float* x, float* y, int64_t n) const { OrtArray(x, y, n); }
};
using TanhOp = OrtFloatOp<arith::ort_tanh, arith::ort_tanh, ::tanh>;
using ErfOp = OrtFloatOp<arith::ort_erf, arith::ort_erf, ::erf>;
using ExpOp = OrtFloatOp<arith::ort_exp, arith::ort_exp, ::exp>;
struct LogOp { template <class T> T operator()(T x) const { return std::log(x); } };
struct SqrtOp { template <class T> T operator()(T x) const { return std::sqrt(x); } };
struct ReciprocalOp { template <class T> T operator()(T x) const { return T{1} / x; } };
struct FloorOp { template <class T> T operator()(T x) const { return std::floor(x); } };
struct CeilOp { template <class T> T operator()(T x) const { return std::ceil(x); } };
struct RoundOp { template <class T> T operator()(T x) const { return std::nearbyint(x); } };
struct NotOp { bool operator()(bool x) const { return !x; } };

template <class Op, template <class> class Accept, bool BoolOut = false>
std::unique_ptr<Kernel> build_unary_with(BuildContext& ctx, Op op) {
  ctx.expect_inputs(1, 1);
  const DType t = ctx.input(0).dtype;
  ctx.set_output(0, BoolOut ? DType::Bool : t, ctx.input(0).shape);
  return dispatch<Accept>(t, "the input's type", [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    return std::make_unique<UnaryKernel<T, std::conditional_t<BoolOut, bool, T>, Op>>(op);
  });
}

template <class Op, template <class> class Accept>
std::unique_ptr<Kernel> build_unary(BuildContext& ctx) {
  return build_unary_with<Op, Accept>(ctx, Op{});
}

std::unique_ptr<Kernel> build_leaky_relu(BuildContext& ctx) {
  return build_unary_with<LeakyReluOp, AcceptReal>(ctx, LeakyReluOp{ctx.attrs().get_float("alpha", 0.01f)});
}

std::unique_ptr<Kernel> build_hard_sigmoid(BuildContext& ctx) {
  return build_unary_with<HardSigmoidOp, AcceptReal>(
      ctx, HardSigmoidOp{ctx.attrs().get_float("alpha", 0.2f), ctx.attrs().get_float("beta", 0.5f)});
}

std::unique_ptr<Kernel> build_not(BuildContext& ctx) {
  return build_unary_with<NotOp, AcceptBool>(ctx, NotOp{});
}

// ---- Clip -----------------------------------------------------------------------------------

// y = min(max(x, lo), hi), evaluated as numpy's clip: when lo > hi every element becomes hi,
// and NaN stays NaN. Bounds come from attributes before opset 11 and from scalar inputs
// (read at run time, since they may be computed) from opset 11; an absent bound is the type's
// lowest()/max() (opset 6+), or no bound at all (opset 1).
template <class T>
class ClipKernel final : public Kernel {
 public:
  ClipKernel(T lo, T hi, bool lo_input, bool hi_input) : lo_(lo), hi_(hi), lo_input_(lo_input), hi_input_(hi_input) {}
  void run(const RunContext& ctx) const override {
    const T lo = lo_input_ ? in_ptr<T>(ctx, 1)[0] : lo_;
    const T hi = hi_input_ ? in_ptr<T>(ctx, 2)[0] : hi_;
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    ctx.parallel->parallel_for(ctx.in(0).numel(), 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
      }
    });
  }

 private:
  T lo_, hi_;
  bool lo_input_, hi_input_;
};

std::unique_ptr<Kernel> build_clip(BuildContext& ctx) {
  const int opset = ctx.node().opset;
  const ValueInfo& x = ctx.input(0);
  if (opset < 11) {
    ctx.expect_inputs(1, 1);
    ctx.set_output(0, x.dtype, x.shape, x.quant);
    const float none = opset < 6 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::max();
    const float lo = ctx.attrs().get_float("min", -none);
    const float hi = ctx.attrs().get_float("max", none);
    return dispatch<AcceptReal>(x.dtype, "input", [&](auto tag) -> std::unique_ptr<Kernel> {
      using T = decltype(tag);
      return std::make_unique<ClipKernel<T>>(static_cast<T>(lo), static_cast<T>(hi), false, false);
    });
  }
  ctx.expect_inputs(1, 3);
  for (size_t i : {size_t{1}, size_t{2}}) {
    if (!ctx.has_input(i)) continue;
    const ValueInfo& b = ctx.input(i);
    if (b.dtype != x.dtype)
      fail(i == 1 ? "min" : "max", " must have the input's type ", dtype_name(x.dtype), ", got ", dtype_name(b.dtype));
    if (shape_numel(b.shape) != 1 || b.shape.size() > 1)
      fail(i == 1 ? "min" : "max", " must be a scalar, has shape ", shape_str(b.shape));
  }
  // Clipping keeps the integer values' meaning: a quantized input's parameters carry over.
  ctx.set_output(0, x.dtype, x.shape, x.quant);
  return dispatch<AcceptNumeric>(x.dtype, "input", [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    return std::make_unique<ClipKernel<T>>(std::numeric_limits<T>::lowest(), std::numeric_limits<T>::max(),
                                           ctx.has_input(1), ctx.has_input(2));
  });
}

// ---- Variadic Min / Max / Sum / Mean --------------------------------------------------------

// min(a, b) and max(a, b) that return NaN when either is NaN.
struct MinOp {
  template <class T> T operator()(T a, T b) const { return (a < b || is_nan(a)) ? a : b; }
};
struct MaxOp {
  template <class T> T operator()(T a, T b) const { return (a > b || is_nan(a)) ? a : b; }
};

// y = op(...op(op(x0, x1), x2)..., xn-1) elementwise with broadcasting; Mean divides the sum by n.
template <class T, class Op, bool Mean>
class VariadicKernel final : public Kernel {
 public:
  VariadicKernel(Broadcast bc, size_t n) : bc_(std::move(bc)), n_(n) {}
  void run(const RunContext& ctx) const override {
    std::vector<const T*> x(n_);
    for (size_t i = 0; i < n_; ++i) x[i] = in_ptr<T>(ctx, i);
    T* y = out_ptr<T>(ctx, 0);
    Op op;
    bc_.for_rows(*ctx.parallel, [&](const int64_t* off, int64_t o, int64_t len) {
      T* py = y + o;
      const T* p0 = x[0] + off[0];
      if (bc_.along(0)) std::copy(p0, p0 + len, py);
      else std::fill(py, py + len, p0[0]);
      for (size_t i = 1; i < n_; ++i) {
        const T* pi = x[i] + off[i];
        if (bc_.along(i)) {
          for (int64_t j = 0; j < len; ++j) py[j] = op(py[j], pi[j]);
        } else {
          const T v = pi[0];
          for (int64_t j = 0; j < len; ++j) py[j] = op(py[j], v);
        }
      }
      if constexpr (Mean) {
        const T n = static_cast<T>(n_);
        for (int64_t j = 0; j < len; ++j) py[j] /= n;
      }
    });
  }

 private:
  Broadcast bc_;
  size_t n_;
};

template <class Op, template <class> class Accept, bool Mean>
std::unique_ptr<Kernel> build_variadic(BuildContext& ctx) {
  const size_t n = ctx.num_inputs();
  if (n < 1) fail("expects at least 1 input, has 0");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.has_input(i)) fail("input ", i, " is absent; every input is required");
    expect_same_dtype(ctx, 0, i);
    shapes.push_back(ctx.input(i).shape);
  }
  Shape out = shapes[0];
  // Before opset 8 the inputs had to have one shape; numpy broadcasting came with opset 8.
  for (size_t i = 1; i < n; ++i) {
    if (ctx.node().opset < 8 && shapes[i] != shapes[0])
      fail("input ", i, " has shape ", shape_str(shapes[i]), " but input 0 has ", shape_str(shapes[0]),
           " (broadcasting needs opset 8)");
    out = broadcast_shapes(out, shapes[i]);
  }
  ctx.set_output(0, ctx.input(0).dtype, out);
  Broadcast bc(shapes, out);
  return dispatch<Accept>(ctx.input(0).dtype, "the inputs' type", [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<VariadicKernel<decltype(tag), Op, Mean>>(bc, n);
  });
}

// ---- Where ----------------------------------------------------------------------------------

// y = cond ? x : y with three-way broadcasting; elements are moved, never interpreted, so any
// type works (strings included).
template <class T>
class WhereKernel final : public Kernel {
 public:
  explicit WhereKernel(Broadcast bc) : bc_(std::move(bc)) {}
  void run(const RunContext& ctx) const override {
    const bool* c = in_ptr<bool>(ctx, 0);
    const T* a = in_ptr<T>(ctx, 1);
    const T* b = in_ptr<T>(ctx, 2);
    T* y = out_ptr<T>(ctx, 0);
    const int64_t sc = bc_.along(0), sa = bc_.along(1), sb = bc_.along(2);
    bc_.for_rows(*ctx.parallel, [&](const int64_t* off, int64_t o, int64_t n) {
      for (int64_t j = 0; j < n; ++j)
        y[o + j] = c[off[0] + sc * j] ? a[off[1] + sa * j] : b[off[2] + sb * j];
    });
  }

 private:
  Broadcast bc_;
};

std::unique_ptr<Kernel> build_where(BuildContext& ctx) {
  ctx.expect_inputs(3, 3);
  ctx.expect_dtype(0, {DType::Bool}, "condition");
  expect_same_dtype(ctx, 1, 2);
  std::vector<Shape> shapes{ctx.input(0).shape, ctx.input(1).shape, ctx.input(2).shape};
  Shape out = broadcast_shapes(broadcast_shapes(shapes[0], shapes[1]), shapes[2]);
  ctx.set_output(0, ctx.input(1).dtype, out);
  Broadcast bc(shapes, out);
  return visit_storage(ctx.input(1).dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<WhereKernel<decltype(tag)>>(bc);
  });
}

}  // namespace

void register_elementwise(Registry& r) {
  // Opsets 1 and 6 of the arithmetic, comparison and logic ops broadcast only on request
  // (attributes broadcast/axis); opset 7 brought numpy broadcasting. Later versions only added
  // types. Opset 1's consumed_inputs attribute is a legacy memory hint and is ignored.
  r.add(elementwise_op({"ai.onnx", "Add", 1, 1000, build_binary<AddOp, AcceptNumeric, false, true>}));
  r.add(elementwise_op({"ai.onnx", "Sub", 1, 1000, build_binary<SubOp, AcceptNumeric, false, true>}));
  r.add(elementwise_op({"ai.onnx", "Mul", 1, 1000, build_binary<MulOp, AcceptNumeric, false, true>}));
  r.add(elementwise_op({"ai.onnx", "Div", 1, 1000, build_binary<DivOp, AcceptNumeric, false, true>}));
  r.add({"ai.onnx", "Pow", 1, 1000, build_pow});
  r.add({"ai.onnx", "Equal", 1, 1000, build_binary<EqualOp, AcceptEquality, true, true>});
  r.add({"ai.onnx", "Less", 1, 1000, build_binary<LessOp, AcceptNumeric, true, true>});
  r.add({"ai.onnx", "Greater", 1, 1000, build_binary<GreaterOp, AcceptNumeric, true, true>});
  r.add({"ai.onnx", "LessOrEqual", 12, 1000, build_binary<LessEqualOp, AcceptNumeric, true, false>});
  r.add({"ai.onnx", "GreaterOrEqual", 12, 1000, build_binary<GreaterEqualOp, AcceptNumeric, true, false>});
  r.add({"ai.onnx", "And", 1, 1000, build_binary<AndOp, AcceptBool, true, true>});
  r.add({"ai.onnx", "Or", 1, 1000, build_binary<OrOp, AcceptBool, true, true>});
  r.add({"ai.onnx", "Xor", 1, 1000, build_binary<XorOp, AcceptBool, true, true>});
  r.add({"ai.onnx", "Not", 1, 1000, build_not});

  r.add(elementwise_op({"ai.onnx", "Relu", 1, 1000, build_unary<ReluOp, AcceptSigned>}));
  r.add(elementwise_op({"ai.onnx", "LeakyRelu", 1, 1000, build_leaky_relu}));
  r.add(elementwise_op({"ai.onnx", "Sigmoid", 1, 1000, build_unary<SigmoidOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "HardSigmoid", 1, 1000, build_hard_sigmoid}));
  r.add(elementwise_op({"ai.onnx", "HardSwish", 14, 1000, build_unary<HardSwishOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Tanh", 1, 1000, build_unary<TanhOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Exp", 1, 1000, build_unary<ExpOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Erf", 9, 1000, build_unary<ErfOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Log", 1, 1000, build_unary<LogOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Neg", 1, 1000, build_unary<NegOp, AcceptSigned>}));
  r.add(elementwise_op({"ai.onnx", "Abs", 1, 1000, build_unary<AbsOp, AcceptNumeric>}));
  r.add(elementwise_op({"ai.onnx", "Sqrt", 1, 1000, build_unary<SqrtOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Reciprocal", 1, 1000, build_unary<ReciprocalOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Floor", 1, 1000, build_unary<FloorOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Ceil", 1, 1000, build_unary<CeilOp, AcceptReal>}));
  r.add(elementwise_op({"ai.onnx", "Round", 11, 1000, build_unary<RoundOp, AcceptReal>}));

  r.add(elementwise_op({"ai.onnx", "Clip", 1, 1000, build_clip}));
  r.add(elementwise_op({"ai.onnx", "Min", 1, 1000, build_variadic<MinOp, AcceptNumeric, false>}));
  r.add(elementwise_op({"ai.onnx", "Max", 1, 1000, build_variadic<MaxOp, AcceptNumeric, false>}));
  r.add(elementwise_op({"ai.onnx", "Sum", 1, 1000, build_variadic<AddOp, AcceptNumeric, false>}));
  r.add(elementwise_op({"ai.onnx", "Mean", 1, 1000, build_variadic<AddOp, AcceptReal, true>}));
  r.add({"ai.onnx", "Where", 9, 1000, build_where});
}

}  // namespace quint::ops
