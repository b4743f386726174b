// Reductions over a set of axes: ReduceSum, ReduceMean, ReduceProd, ReduceMin, ReduceMax,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp; ArgMax and ArgMin.
//
// Axes come from the `axes` attribute, or from a constant second input (ReduceSum from opset 13,
// the others from opset 18). No axes means every axis, unless noop_with_empty_axes=1 (with an
// axes input), which makes the op the identity. keepdims=1 (default) keeps reduced axes as 1.
//
// Real sums, means and products are accumulated in double and rounded once to the output type;
// integer ones wrap modulo 2^bits like the elementwise ops. Reducing an empty set gives the
// identity of the reduction (ONNX opset 18): sum 0, product 1, min +inf (integer: max value),
// max -inf (integer: lowest value), mean NaN (integer: 0), log-sum -inf.
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "common.h"
#include "register.h"

namespace quint::ops {

namespace {

template <class T>
constexpr bool is_real = std::is_same_v<T, float> || std::is_same_v<T, double>;
template <class T>
constexpr bool is_numeric = is_real<T> || (std::is_integral_v<T> && !std::is_same_v<T, bool>);

// The element types the reductions and ArgMax/ArgMin take: float32/float64, or an integer type.
bool is_real_dtype(DType t) { return t == DType::Float32 || t == DType::Float64; }
bool is_integer_dtype(DType t) {
  return !is_real_dtype(t) && t != DType::Bool && t != DType::String && t != DType::Float16 && t != DType::BFloat16;
}

template <class T>
bool is_nan(T v) {
  if constexpr (is_real<T>) return std::isnan(v);
  else return false;
}

// Each policy computes one output element from `each`, which calls its argument with every
// element of the reduced set in input order (twice if asked twice), and `count`, the set's size.
struct SumPolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    if constexpr (is_real<T>) {
      double s = 0;
      each([&](T v) { s += v; });
      return static_cast<T>(s);
    } else {
      T s = 0;
      each([&](T v) { s = wrap_add(s, v); });
      return s;
    }
  }
};

struct MeanPolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t count) {
    if constexpr (is_real<T>) {
      double s = 0;
      each([&](T v) { s += v; });
      return static_cast<T>(s / static_cast<double>(count));  // 0/0 = NaN for an empty set
    } else {
      T s = 0;
      each([&](T v) { s = wrap_add(s, v); });
      return count == 0 ? T{0} : static_cast<T>(s / static_cast<T>(count));
    }
  }
};

struct ProdPolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    if constexpr (is_real<T>) {
      double p = 1;
      each([&](T v) { p *= v; });
      return static_cast<T>(p);
    } else {
      T p = 1;
      each([&](T v) { p = wrap_mul(p, v); });
      return p;
    }
  }
};

// Min and max propagate NaN (numpy's minimum.reduce / maximum.reduce).
struct MinPolicy {
  static constexpr bool keeps_quant = true;
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    T m = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
    each([&](T v) { m = (v < m || is_nan(v)) && !is_nan(m) ? v : m; });
    return m;
  }
};

struct MaxPolicy {
  static constexpr bool keeps_quant = true;
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    T m = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    each([&](T v) { m = (v > m || is_nan(v)) && !is_nan(m) ? v : m; });
    return m;
  }
};

// Σ|x|
struct L1Policy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    if constexpr (is_real<T>) {
      double s = 0;
      each([&](T v) { s += std::fabs(static_cast<double>(v)); });
      return static_cast<T>(s);
    } else {
      T s = 0;
      each([&](T v) {
        if constexpr (std::is_signed_v<T>) s = wrap_add(s, v < 0 ? wrap_neg(v) : v);
        else s = wrap_add(s, v);
      });
      return s;
    }
  }
};

// Σx²
struct SumSquarePolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    if constexpr (is_real<T>) {
      double s = 0;
      each([&](T v) { s += static_cast<double>(v) * v; });
      return static_cast<T>(s);
    } else {
      T s = 0;
      each([&](T v) { s = wrap_add(s, wrap_mul(v, v)); });
      return s;
    }
  }
};

// sqrt(Σx²) (real types only)
struct L2Policy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    double s = 0;
    each([&](T v) { s += static_cast<double>(v) * v; });
    return static_cast<T>(std::sqrt(s));
  }
};

// log(Σx) (real types only)
struct LogSumPolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t) {
    double s = 0;
    each([&](T v) { s += v; });
    return static_cast<T>(std::log(s));
  }
};

// log(Σe^x) = m + log(Σe^(x − m)) with m = max x, so that e^x cannot overflow (real types only).
// An infinite or NaN m is the answer itself (m = -inf: every term is 0, log 0 = -inf).
struct LogSumExpPolicy {
  template <class T, class Each>
  static T compute(const Each& each, int64_t count) {
    const T m = MaxPolicy::compute<T>(each, count);
    if (!std::isfinite(m)) return m;
    double s = 0;
    each([&](T v) { s += std::exp(static_cast<double>(v) - m); });
    return static_cast<T>(m + std::log(s));
  }
};

template <class P>
constexpr bool keeps_quant() {
  if constexpr (requires { P::keeps_quant; }) return P::keeps_quant;
  else return false;
}

// The input's dims coalesced into kept and reduced runs: neighbouring dims of the same kind
// merge (the input is contiguous), unit dims vanish. Output element o has the kept coordinates
// of o (row-major over kept dims), which is the output's own layout.
struct ReduceLayout {
  std::vector<int64_t> kept_dims, kept_strides, red_dims, red_strides;
  int64_t outputs = 1, count = 1;
};

ReduceLayout reduce_layout(const Shape& in, const std::vector<bool>& reduced) {
  ReduceLayout l;
  const std::vector<int64_t> strides = contiguous_strides(in);
  int last_kind = -1;  // 0 kept, 1 reduced
  for (size_t d = 0; d < in.size(); ++d) {
    if (reduced[d]) l.count *= in[d];
    else l.outputs *= in[d];
    if (in[d] == 1) continue;
    const int kind = reduced[d] ? 1 : 0;
    auto& dims = kind ? l.red_dims : l.kept_dims;
    auto& st = kind ? l.red_strides : l.kept_strides;
    if (kind == last_kind) {
      dims.back() *= in[d];
      st.back() = strides[d];
    } else {
      dims.push_back(in[d]);
      st.push_back(strides[d]);
    }
    last_kind = kind;
  }
  return l;
}

template <class T, class Policy>
class ReduceKernel final : public Kernel {
 public:
  explicit ReduceKernel(ReduceLayout l) : l_(std::move(l)) {}
  void run(const RunContext& ctx) const override {
    const T* x = static_cast<const T*>(ctx.in(0).raw());
    T* y = static_cast<T*>(ctx.out(0).raw());
    const size_t nk = l_.kept_dims.size(), nr = l_.red_dims.size();
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, l_.count));
    ctx.parallel->parallel_for(l_.outputs, grain, [&](int64_t b, int64_t e) {
      std::vector<int64_t> rc(nr);
      for (int64_t o = b; o < e; ++o) {
        int64_t base = 0, rest = o;
        for (size_t d = nk; d-- > 0;) {
          base += (rest % l_.kept_dims[d]) * l_.kept_strides[d];
          rest /= l_.kept_dims[d];
        }
        // Calls fn on every element of the reduced set of output o, innermost dim fastest.
        auto each = [&](auto&& fn) {
          if (l_.count == 0) return;
          if (nr == 0) {
            fn(x[base]);
            return;
          }
          const int64_t n_last = l_.red_dims[nr - 1], s_last = l_.red_strides[nr - 1];
          std::fill(rc.begin(), rc.end(), 0);
          int64_t off = base;
          for (;;) {
            const T* p = x + off;
            if (s_last == 1) {
              for (int64_t j = 0; j < n_last; ++j) fn(p[j]);
            } else {
              for (int64_t j = 0; j < n_last; ++j) fn(p[j * s_last]);
            }
            size_t d = nr - 1;
            for (; d-- > 0;) {
              off += l_.red_strides[d];
              if (++rc[d] < l_.red_dims[d]) break;
              off -= l_.red_strides[d] * l_.red_dims[d];
              rc[d] = 0;
            }
            if (d == static_cast<size_t>(-1)) break;
          }
        };
        y[o] = Policy::template compute<T>(each, l_.count);
      }
    });
  }

 private:
  ReduceLayout l_;
};

// noop_with_empty_axes=1 with no axes: the output is the input.
class CopyKernel final : public Kernel {
 public:
  void run(const RunContext& ctx) const override { ctx.out(0).copy_from(ctx.in(0)); }
};

template <class Policy, bool RealOnly, int AxesInputSince>
std::unique_ptr<Kernel> build_reduce(BuildContext& ctx) {
  const ValueInfo& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> axes;
  bool noop = false;
  if (ctx.node().opset >= AxesInputSince) {
    ctx.expect_inputs(1, 2);
    if (ctx.attrs().has("axes"))
      fail("axes is an input (not an attribute) from opset ", AxesInputSince);
    if (ctx.has_input(1)) {
      const Tensor& a = ctx.constant_input(1, "axes");
      if (a.dtype() != DType::Int64) fail("axes must be int64, got ", dtype_name(a.dtype()));
      if (a.rank() != 1) fail("axes must be 1-D, has shape ", shape_str(a.shape()));
      axes.assign(a.data<int64_t>(), a.data<int64_t>() + a.numel());
    }
    const int64_t n = ctx.attrs().get_int("noop_with_empty_axes", 0);
    if (n != 0 && n != 1) fail("noop_with_empty_axes must be 0 or 1, got ", n);
    noop = n == 1 && axes.empty();
  } else {
    ctx.expect_inputs(1, 1);
    axes = ctx.attrs().get_ints("axes");
  }
  const int64_t keepdims = ctx.attrs().get_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) fail("keepdims must be 0 or 1, got ", keepdims);

  std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty() && !noop);
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank, "axes value");
    if (reduced[n]) fail("axis ", a, " appears more than once in axes ", shape_str(axes));
    reduced[n] = true;
  }
  Shape out;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced[d]) out.push_back(x.shape[d]);
    else if (keepdims) out.push_back(1);
  }
  const bool real = is_real_dtype(x.dtype);
  if (!real && (RealOnly || !is_integer_dtype(x.dtype)))
    fail("input type must be ", RealOnly ? "float32 or float64" : "float32, float64 or an integer type",
         ", got ", dtype_name(x.dtype));
  QuantParams q = keeps_quant<Policy>() && !x.quant.per_axis() ? x.quant : QuantParams{};
  if (noop) {
    ctx.set_output(0, x.dtype, x.shape, x.quant);
    return std::make_unique<CopyKernel>();
  }
  ctx.set_output(0, x.dtype, out, q);
  ReduceLayout layout = reduce_layout(x.shape, reduced);
  return visit_dtype(x.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    if constexpr ((RealOnly && is_real<T>) || (!RealOnly && is_numeric<T>))
      return std::make_unique<ReduceKernel<T, Policy>>(layout);
    else
      return nullptr;  // unreachable: rejected above
  });
}

// ---- ArgMax / ArgMin ---------------------------------------------------------------------------
// The index (int64) of the largest (smallest) element along `axis`: the first one, or the last
// with select_last_index=1 (opset 12+). keepdims keeps the axis as 1. NaN, as ONNX Runtime 1.30
// does (measured; the spec leaves it open): comparisons are plain < and >, so a NaN is never
// chosen unless it comes first along the axis (and is then kept) — except for a 1-D input with
// select_last_index=0, where the first NaN is the answer (its whole-tensor path).
template <class T, bool Max>
class ArgKernel final : public Kernel {
 public:
  ArgKernel(int64_t outer, int64_t n, int64_t inner, bool last, bool nan_wins)
      : outer_(outer), n_(n), inner_(inner), last_(last), nan_wins_(nan_wins) {}
  void run(const RunContext& ctx) const override {
    const T* x = static_cast<const T*>(ctx.in(0).raw());
    int64_t* y = static_cast<int64_t*>(ctx.out(0).raw());
    ctx.parallel->parallel_for(outer_ * inner_, 256, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* p = x + (o / inner_) * n_ * inner_ + o % inner_;
        if (nan_wins_) {
          int64_t k = 0;
          while (k < n_ && !is_nan(p[k * inner_])) ++k;
          if (k < n_) {
            y[o] = k;
            continue;
          }
        }
        int64_t best = 0;
        T v = p[0];
        for (int64_t k = 1; k < n_; ++k) {
          const T c = p[k * inner_];
          const bool better = Max ? (last_ ? c >= v : c > v) : (last_ ? c <= v : c < v);
          if (better) {
            v = c;
            best = k;
          }
        }
        y[o] = best;
      }
    });
  }

 private:
  int64_t outer_, n_, inner_;
  bool last_, nan_wins_;
};

template <bool Max>
std::unique_ptr<Kernel> build_arg(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) fail("input must have rank >= 1, it is a scalar");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", 0), rank);
  const int64_t keepdims = ctx.attrs().get_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) fail("keepdims must be 0 or 1, got ", keepdims);
  const int64_t last = ctx.node().opset >= 12 ? ctx.attrs().get_int("select_last_index", 0) : 0;
  if (last != 0 && last != 1) fail("select_last_index must be 0 or 1, got ", last);
  if (x.shape[static_cast<size_t>(axis)] == 0) fail("axis ", axis, " has no elements to choose from");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= x.shape[d];
  Shape out = x.shape;
  if (keepdims) out[static_cast<size_t>(axis)] = 1;
  else out.erase(out.begin() + axis);
  if (!is_real_dtype(x.dtype) && !is_integer_dtype(x.dtype)) fail("input type must be float32, float64 or an integer type, got ", dtype_name(x.dtype));
  ctx.set_output(0, DType::Int64, out);
  const int64_t n = x.shape[static_cast<size_t>(axis)];
  return visit_dtype(x.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    if constexpr (is_numeric<T>)
      return std::make_unique<ArgKernel<T, Max>>(outer, n, inner, last != 0, is_real<T> && rank == 1 && last == 0);
    else return nullptr;  // unreachable: rejected above
  });
}

}  // namespace

void register_reduce(Registry& r) {
  r.add({"ai.onnx", "ReduceSum", 1, 1000, build_reduce<SumPolicy, false, 13>});
  r.add({"ai.onnx", "ReduceMean", 1, 1000, build_reduce<MeanPolicy, false, 18>});
  r.add({"ai.onnx", "ReduceProd", 1, 1000, build_reduce<ProdPolicy, false, 18>});
  r.add({"ai.onnx", "ReduceMin", 1, 1000, build_reduce<MinPolicy, false, 18>});
  r.add({"ai.onnx", "ReduceMax", 1, 1000, build_reduce<MaxPolicy, false, 18>});
  r.add({"ai.onnx", "ReduceL1", 1, 1000, build_reduce<L1Policy, false, 18>});
  r.add({"ai.onnx", "ReduceSumSquare", 1, 1000, build_reduce<SumSquarePolicy, false, 18>});
  r.add({"ai.onnx", "ReduceL2", 1, 1000, build_reduce<L2Policy, true, 18>});
  r.add({"ai.onnx", "ReduceLogSum", 1, 1000, build_reduce<LogSumPolicy, true, 18>});
  r.add({"ai.onnx", "ReduceLogSumExp", 1, 1000, build_reduce<LogSumExpPolicy, true, 18>});
  r.add({"ai.onnx", "ArgMax", 1, 1000, build_arg<true>});
  r.add({"ai.onnx", "ArgMin", 1, 1000, build_arg<false>});
}

}  // namespace quint::ops
