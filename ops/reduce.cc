// Reductions over a set of axes: ReduceSum, ReduceMean, ReduceProd, ReduceMin, ReduceMax,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
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
  const bool real = x.dtype == DType::Float32 || x.dtype == DType::Float64;
  const bool integer = !real && x.dtype != DType::Bool && x.dtype != DType::String &&
                       x.dtype != DType::Float16 && x.dtype != DType::BFloat16;
  if (!real && (RealOnly || !integer))
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
}

}  // namespace quint::ops
