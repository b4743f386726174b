// Shape and data-movement operators: Identity, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
// Concat, Split, Slice, Gather, Expand, Tile, Pad, Shape, Size, ConstantOfShape, Cast, CastLike.
//
// Data movement never interprets elements: kernels are instantiated on a storage type of the
// element's size (std::string for strings, which are objects and are copied as such), so every
// dtype works. Inputs that determine an output shape (Reshape's shape, Squeeze/Unsqueeze axes,
// Slice bounds, Pad pads, Expand's shape, Tile's repeats, Split sizes, ConstantOfShape's shape)
// must be constants: quint plans every shape at load.
//
// A quantized input's parameters (scale, zero point) carry over to the output of the ops that
// only move elements, so dumps keep them; per-axis parameters follow their axis to its new
// position, and are dropped where the op changes that axis (Gather or Slice along it …).
#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "common.h"
#include "register.h"

namespace quint::ops {

namespace {

template <class T>
const T* in_ptr(const RunContext& ctx, size_t i) {
  return static_cast<const T*>(ctx.in(i).raw());
}
template <class T>
T* out_ptr(const RunContext& ctx, size_t i) {
  return static_cast<T*>(ctx.out(i).raw());
}

int64_t product(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) p *= s[i];
  return p;
}

// ---- Quantization parameters of moved data ---------------------------------------------------

// The input's parameters for an output where the quantized axis now sits at `axis` (-1: the op
// changed that axis, so per-axis parameters no longer describe the output).
QuantParams moved_quant(const QuantParams& q, int64_t axis) {
  if (!q.per_axis()) return q;
  if (axis < 0) return {};
  QuantParams r = q;
  r.axis = static_cast<int>(axis);
  return r;
}

// Where a reshape from `in` to `out` puts axis a of `in`: the output axis with the same extent
// and the same number of elements before it (then every element keeps its index along it), or
// -1 when there is none.
int64_t reshaped_axis(const Shape& in, const Shape& out, int64_t a) {
  if (a < 0 || a >= static_cast<int64_t>(in.size())) return -1;
  const int64_t before = product(in, 0, static_cast<size_t>(a));
  int64_t acc = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    if (acc == before && out[k] == in[a]) return static_cast<int64_t>(k);
    acc *= out[k];
  }
  return -1;
}

// A constant 1-D integer input (int64, or int32 where ONNX allows it) read at load.
std::vector<int64_t> int_list_input(const BuildContext& ctx, size_t i, const char* what, bool allow_int32 = false) {
  const Tensor& t = ctx.constant_input(i, what);
  if (t.dtype() != DType::Int64 && !(allow_int32 && t.dtype() == DType::Int32))
    fail(what, " must be int64", allow_int32 ? " or int32" : "", ", got ", dtype_name(t.dtype()));
  if (t.rank() != 1) fail(what, " must be 1-D, has shape ", shape_str(t.shape()));
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t k = 0; k < t.numel(); ++k) v[k] = t.as_int64(k);
  return v;
}

// Normalizes a list of axes against `rank`, failing on a repeated axis.
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank, const char* what) {
  std::vector<int64_t> r;
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank, what);
    if (std::find(r.begin(), r.end(), n) != r.end())
      fail(what, " ", a, " appears more than once in ", shape_str(axes));
    r.push_back(n);
  }
  return r;
}

// ---- Plain copies: Identity, Reshape, Flatten, Squeeze, Unsqueeze ------------------------------

template <class T>
class CopyKernel final : public Kernel {
 public:
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    ctx.parallel->parallel_for(ctx.in(0).numel(), 1 << 16, [&](int64_t b, int64_t e) {
      std::copy(x + b, x + e, y + b);
    });
  }
};

std::unique_ptr<Kernel> make_copy(DType t) {
  return visit_storage(t, [](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<CopyKernel<decltype(tag)>>();
  });
}

std::unique_ptr<Kernel> build_identity(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  ctx.set_output(0, x.dtype, x.shape, x.quant);
  return make_copy(x.dtype);
}

// Dropout at inference: the output is the input and the optional mask is all true (bool from
// opset 10, the input's type before). Training mode (opset 12+'s training_mode input) would drop
// random elements; a run here is inference, so a training_mode that is not the constant false
// is refused rather than ignored.
template <class T>
class DropoutKernel final : public Kernel {
 public:
  explicit DropoutKernel(DType mask_type) : mask_type_(mask_type) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    const int64_t n = ctx.in(0).numel();
    ctx.parallel->parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { std::copy(x + b, x + e, y + b); });
    if (ctx.outputs.size() < 2 || !ctx.outputs[1]) return;
    auto fill = [&](auto one) {
      auto* m = out_ptr<decltype(one)>(ctx, 1);
      ctx.parallel->parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { std::fill(m + b, m + e, one); });
    };
    if (mask_type_ == DType::Bool) fill(true);
    else fill(T{1});
  }

 private:
  DType mask_type_;
};

std::unique_ptr<Kernel> build_dropout(BuildContext& ctx) {
  ctx.expect_inputs(1, 3);
  const ValueInfo& x = ctx.input(0);
  if (ctx.node().opset < 7 && ctx.attrs().get_int("is_test", 0) == 0)
    fail("is_test is 0 (training); quint runs inference only (set is_test=1, or export the model in eval mode)");
  if (ctx.has_input(2)) {
    const Tensor& training = ctx.constant_input(2, "training_mode");
    if (training.numel() != 1 || training.as_int64(0) != 0)
      fail("training_mode must be the constant false (quint runs inference only)");
  }
  if (ctx.num_outputs() > 2) fail("Dropout has at most 2 outputs, the node has ", ctx.num_outputs());
  ctx.set_output(0, x.dtype, x.shape, x.quant);
  const DType mask_type = ctx.node().opset >= 10 ? DType::Bool : x.dtype;
  if (ctx.num_outputs() > 1) ctx.set_output(1, mask_type, x.shape);
  if (x.dtype == DType::Float32) return std::make_unique<DropoutKernel<float>>(mask_type);
  if (x.dtype == DType::Float64) return std::make_unique<DropoutKernel<double>>(mask_type);
  fail("data must be float32 or float64, got ", dtype_name(x.dtype));
}

// Reshape: 0 copies the input's dim at that index (unless allowzero=1, opset 14+, where 0 is a
// zero-size dim), -1 takes whatever size makes the element counts equal.
std::unique_ptr<Kernel> build_reshape(BuildContext& ctx) {
  const ValueInfo& x = ctx.input(0);
  std::vector<int64_t> spec;
  if (ctx.node().opset < 5) {
    ctx.expect_inputs(1, 1);
    if (!ctx.attrs().has("shape")) fail("attribute shape is required before opset 5");
    spec = ctx.attrs().get_ints("shape");
  } else {
    ctx.expect_inputs(2, 2);
    spec = int_list_input(ctx, 1, "shape");
  }
  const bool allowzero = ctx.node().opset >= 14 && ctx.attrs().get_int("allowzero", 0) != 0;
  const int64_t n = shape_numel(x.shape);
  Shape out(spec.size());
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      if (infer >= 0) fail("shape ", shape_str(spec), " has more than one -1");
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (d < -1) fail("shape ", shape_str(spec), " has invalid dim ", d);
    if (d == 0 && !allowzero) {
      if (i >= x.shape.size())
        fail("shape ", shape_str(spec), " copies dim ", i, " (0) but the input ", shape_str(x.shape), " has rank ",
             x.shape.size());
      d = x.shape[i];
    }
    out[i] = d;
    if (d != 0 && known > std::numeric_limits<int64_t>::max() / d)
      fail("shape ", shape_str(spec), " overflows int64");
    known *= d;
  }
  if (infer >= 0) {
    if (allowzero && std::find(spec.begin(), spec.end(), 0) != spec.end())
      fail("shape ", shape_str(spec), " has both 0 and -1, which allowzero=1 forbids");
    if (known == 0)
      fail("cannot infer the -1 in shape ", shape_str(spec), ": the other dims have 0 elements");
    if (n % known != 0)
      fail("cannot reshape ", shape_str(x.shape), " (", n, " elements) to ", shape_str(spec));
    out[infer] = n / known;
  }
  if (shape_numel(out) != n)
    fail("cannot reshape ", shape_str(x.shape), " (", n, " elements) to ", shape_str(spec), " (",
         shape_numel(out), " elements)");
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, reshaped_axis(x.shape, out, x.quant.axis)));
  return make_copy(x.dtype);
}

// Flatten: [d0 … d(axis-1)] × [d(axis) … d(r-1)], axis in [-r, r] (negative from opset 11).
std::unique_ptr<Kernel> build_flatten(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().get_int("axis", 1);
  const int64_t lo = ctx.node().opset < 11 ? 0 : -r;
  if (axis < lo || axis > r) fail("axis ", axis, " is out of range [", lo, ", ", r, "] for rank ", r);
  if (axis < 0) axis += r;
  Shape out{product(x.shape, 0, static_cast<size_t>(axis)), product(x.shape, static_cast<size_t>(axis), x.shape.size())};
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, reshaped_axis(x.shape, out, x.quant.axis)));
  return make_copy(x.dtype);
}

// Squeeze: removes the listed dims (each must be 1), or every dim of size 1 when none are
// listed. Axes are an attribute before opset 13 and an optional constant input from 13.
std::unique_ptr<Kernel> build_squeeze(BuildContext& ctx) {
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> axes;
  if (ctx.node().opset < 13) {
    ctx.expect_inputs(1, 1);
    axes = ctx.attrs().get_ints("axes");
  } else {
    ctx.expect_inputs(1, 2);
    if (ctx.has_input(1)) axes = int_list_input(ctx, 1, "axes");
  }
  std::vector<bool> drop(static_cast<size_t>(r), false);
  if (axes.empty()) {
    for (int64_t d = 0; d < r; ++d) drop[d] = x.shape[d] == 1;
  } else {
    for (int64_t a : normalize_axes(axes, r, "axis")) {
      if (x.shape[a] != 1) fail("cannot squeeze axis ", a, ": its size is ", x.shape[a], ", not 1 (input ", shape_str(x.shape), ")");
      drop[a] = true;
    }
  }
  Shape out;
  int64_t qaxis = -1;
  for (int64_t d = 0; d < r; ++d) {
    if (drop[d]) continue;
    if (d == x.quant.axis) qaxis = static_cast<int64_t>(out.size());
    out.push_back(x.shape[d]);
  }
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, qaxis));
  return make_copy(x.dtype);
}

// Unsqueeze: inserts dims of size 1 at the listed positions of the output (rank r + len(axes)).
std::unique_ptr<Kernel> build_unsqueeze(BuildContext& ctx) {
  const ValueInfo& x = ctx.input(0);
  std::vector<int64_t> axes;
  if (ctx.node().opset < 13) {
    ctx.expect_inputs(1, 1);
    if (!ctx.attrs().has("axes")) fail("attribute axes is required before opset 13");
    axes = ctx.attrs().get_ints("axes");
  } else {
    ctx.expect_inputs(2, 2);
    axes = int_list_input(ctx, 1, "axes");
  }
  if (axes.empty()) fail("axes must not be empty");
  const int64_t out_rank = static_cast<int64_t>(x.shape.size() + axes.size());
  std::vector<bool> is_new(static_cast<size_t>(out_rank), false);
  for (int64_t a : normalize_axes(axes, out_rank, "axis")) is_new[a] = true;
  Shape out;
  int64_t next = 0, qaxis = -1;
  for (int64_t d = 0; d < out_rank; ++d) {
    if (is_new[d]) {
      out.push_back(1);
    } else {
      if (next == x.quant.axis) qaxis = d;
      out.push_back(x.shape[next++]);
    }
  }
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, qaxis));
  return make_copy(x.dtype);
}

// ---- Index maps: Transpose, Slice, Expand, Tile, Pad -----------------------------------------

// How each output element finds its source. Output coordinate j along dim d contributes
// src[d][j] to the source offset (in elements); the element's source is the sum over the dims,
// or the fill value when any term is -1 (Pad's constant border). Transpose, Slice, Expand,
// Tile and Pad differ only in the tables they build; one kernel runs them all.
struct IndexMap {
  Shape dims;
  std::vector<std::vector<int64_t>> src;
};

// The table of a dim whose coordinate j reads input coordinate first + j·step of a dim with
// the given stride (in elements).
std::vector<int64_t> affine_table(int64_t n, int64_t first, int64_t step, int64_t stride) {
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) t[j] = (first + j * step) * stride;
  return t;
}

template <class T>
class IndexMapKernel final : public Kernel {
 public:
  // fill_input: index of an input holding the fill value at run time (-1: use `fill`).
  IndexMapKernel(IndexMap m, T fill, int fill_input) : m_(std::move(m)), fill_(std::move(fill)), fill_input_(fill_input) {
    numel_ = 1;
    for (int64_t d : m_.dims) numel_ *= d;
    if (m_.dims.empty() || numel_ == 0) return;
    // Rows along the last dim are copied as a block when its table is affine without fills.
    const auto& t = m_.src.back();
    affine_ = t[0] >= 0;
    step_ = t.size() > 1 ? t[1] - t[0] : 1;
    for (size_t j = 1; affine_ && j < t.size(); ++j) affine_ = t[j] >= 0 && t[j] - t[j - 1] == step_;
  }

  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    const T fill = fill_input_ >= 0 && ctx.has_in(static_cast<size_t>(fill_input_)) ? in_ptr<T>(ctx, fill_input_)[0] : fill_;
    if (numel_ == 0) return;
    const size_t r = m_.dims.size();
    if (r == 0) {
      y[0] = x[0];
      return;
    }
    const int64_t inner = m_.dims[r - 1];
    const int64_t rows = numel_ / inner;
    const std::vector<int64_t>& last = m_.src[r - 1];
    ctx.parallel->parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
      std::vector<int64_t> c(r - 1);
      int64_t rest = b;
      for (size_t d = r - 1; d-- > 0;) {
        c[d] = rest % m_.dims[d];
        rest /= m_.dims[d];
      }
      for (int64_t row = b; row < e; ++row) {
        T* py = y + row * inner;
        int64_t base = 0;
        bool border = false;
        for (size_t d = 0; d + 1 < r; ++d) {
          const int64_t s = m_.src[d][c[d]];
          border |= s < 0;
          base += s;
        }
        if (border) {
          std::fill(py, py + inner, fill);
        } else if (affine_) {
          const T* px = x + base + last[0];
          if (step_ == 1) std::copy(px, px + inner, py);
          else for (int64_t j = 0; j < inner; ++j) py[j] = px[j * step_];
        } else {
          for (int64_t j = 0; j < inner; ++j) py[j] = last[j] < 0 ? fill : x[base + last[j]];
        }
        for (size_t d = r - 1; d-- > 0;) {
          if (++c[d] < m_.dims[d]) break;
          c[d] = 0;
        }
      }
    });
  }

 private:
  IndexMap m_;
  T fill_;
  int fill_input_;
  int64_t numel_ = 0, step_ = 1;
  bool affine_ = false;
};

std::unique_ptr<Kernel> make_index_map(DType t, IndexMap m) {
  return visit_storage(t, [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<IndexMapKernel<decltype(tag)>>(std::move(m), decltype(tag){}, -1);
  });
}

// Transpose: output dim k is input dim perm[k] (default: the dims reversed).
std::unique_ptr<Kernel> build_transpose(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> perm = ctx.attrs().get_ints("perm");
  if (!ctx.attrs().has("perm"))
    for (int64_t k = r; k-- > 0;) perm.push_back(k);
  if (static_cast<int64_t>(perm.size()) != r)
    fail("perm ", shape_str(perm), " has ", perm.size(), " entries but the input has rank ", r);
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= r || seen[p]) fail("perm ", shape_str(perm), " is not a permutation of 0..", r - 1);
    seen[p] = true;
  }
  const std::vector<int64_t> strides = contiguous_strides(x.shape);
  IndexMap m;
  int64_t qaxis = -1;
  for (int64_t k = 0; k < r; ++k) {
    m.dims.push_back(x.shape[perm[k]]);
    m.src.push_back(affine_table(x.shape[perm[k]], 0, 1, strides[perm[k]]));
    if (perm[k] == x.quant.axis) qaxis = k;
  }
  ctx.set_output(0, x.dtype, m.dims, moved_quant(x.quant, qaxis));
  return make_index_map(x.dtype, std::move(m));
}

// Slice: along axes[i], starts[i] to ends[i] (exclusive) by steps[i]. As the spec defines it:
// negative starts/ends count from the end (+dim); then starts clamp to [0, dim] (step > 0) or
// [0, dim-1] (step < 0), ends to [0, dim] or [-1, dim-1]; the length is
// max(0, ceil((end - start) / step)).
std::unique_ptr<Kernel> build_slice(BuildContext& ctx) {
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.node().opset < 10) {
    ctx.expect_inputs(1, 1);
    starts = ctx.attrs().get_ints("starts");
    ends = ctx.attrs().get_ints("ends");
    axes = ctx.attrs().get_ints("axes");
    if (!ctx.attrs().has("starts") || !ctx.attrs().has("ends")) fail("attributes starts and ends are required");
  } else {
    ctx.expect_inputs(3, 5);
    starts = int_list_input(ctx, 1, "starts", true);
    ends = int_list_input(ctx, 2, "ends", true);
    if (ctx.has_input(3)) axes = int_list_input(ctx, 3, "axes", true);
    if (ctx.has_input(4)) steps = int_list_input(ctx, 4, "steps", true);
  }
  if (starts.size() != ends.size())
    fail("starts has ", starts.size(), " values but ends has ", ends.size());
  if (axes.empty() && !(ctx.node().opset >= 10 && ctx.has_input(3)))
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (axes.size() != starts.size()) fail("axes has ", axes.size(), " values but starts has ", starts.size());
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (steps.size() != starts.size()) fail("steps has ", steps.size(), " values but starts has ", starts.size());
  axes = normalize_axes(axes, r, "axis");

  std::vector<int64_t> first(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
  Shape out = x.shape;
  int64_t qaxis = x.quant.axis;
  for (size_t i = 0; i < axes.size(); ++i) {
    // A step of INT64_MIN cannot be negated; any step beyond the dim takes one element anyway.
    const int64_t a = axes[i], dim = x.shape[a], st = std::max(steps[i], -std::numeric_limits<int64_t>::max());
    if (st == 0) fail("steps must not be 0 (axis ", a, ")");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s = s < -dim ? -1 : s + dim;  // avoid overflow for INT64_MIN
    if (e < 0) e = e < -dim ? -1 : e + dim;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      s = std::clamp<int64_t>(s, 0, std::max<int64_t>(dim - 1, 0));
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    // Lengths: ceil((e - s) / st), computed in a form that cannot overflow for steps near INT64_MAX.
    int64_t len = 0;
    if (dim == 0) {
      len = 0;
    } else if (st > 0 && e > s) {
      len = (e - s - 1) / st + 1;
    }
    if (dim > 0 && st < 0 && s > e) len = (s - e - 1) / (-st) + 1;
    out[a] = len;
    first[a] = s;
    step[a] = st;
    if (a == x.quant.axis && !(s == 0 && st == 1 && len == dim)) qaxis = -1;
  }
  const std::vector<int64_t> strides = contiguous_strides(x.shape);
  IndexMap m;
  m.dims = out;
  for (int64_t d = 0; d < r; ++d) m.src.push_back(affine_table(out[d], first[d], step[d], strides[d]));
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, qaxis));
  return make_index_map(x.dtype, std::move(m));
}

// Expand: broadcasts the input to numpy-broadcast(input shape, shape) (a dim of 1 in `shape`
// keeps the input's dim).
std::unique_ptr<Kernel> build_expand(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  const ValueInfo& x = ctx.input(0);
  const std::vector<int64_t> spec = int_list_input(ctx, 1, "shape");
  for (int64_t d : spec)
    if (d < 0) fail("shape ", shape_str(spec), " has a negative dim");
  const Shape out = broadcast_shapes(x.shape, spec);
  const int64_t shift = static_cast<int64_t>(out.size() - x.shape.size());
  // Declared (and checked against the size limit) before the tables are allocated.
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, x.quant.axis < 0 ? -1 : x.quant.axis + shift));
  const std::vector<int64_t> strides = broadcast_strides(x.shape, out);
  IndexMap m;
  m.dims = out;
  for (size_t d = 0; d < out.size(); ++d) m.src.push_back(affine_table(out[d], 0, 1, strides[d]));
  return make_index_map(x.dtype, std::move(m));
}

// Tile: out[d] = in[d] · repeats[d]; output coordinate j reads input coordinate j mod in[d].
std::unique_ptr<Kernel> build_tile(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  const ValueInfo& x = ctx.input(0);
  const std::vector<int64_t> reps = int_list_input(ctx, 1, "repeats");
  if (reps.size() != x.shape.size())
    fail("repeats has ", reps.size(), " values but the input has rank ", x.shape.size());
  const std::vector<int64_t> strides = contiguous_strides(x.shape);
  IndexMap m;
  int64_t qaxis = x.quant.axis;
  for (size_t d = 0; d < reps.size(); ++d) {
    if (reps[d] < 0) fail("repeats must be >= 0, got ", shape_str(reps));
    if (x.shape[d] != 0 && reps[d] > std::numeric_limits<int64_t>::max() / x.shape[d])
      fail("repeats ", shape_str(reps), " overflow the output size");
    m.dims.push_back(x.shape[d] * reps[d]);
    if (static_cast<int64_t>(d) == x.quant.axis && reps[d] != 1) qaxis = -1;
  }
  // Declared (and checked against the size limit) before the tables are allocated.
  ctx.set_output(0, x.dtype, m.dims, moved_quant(x.quant, qaxis));
  for (size_t d = 0; d < reps.size(); ++d) {
    std::vector<int64_t> t(static_cast<size_t>(m.dims[d]));
    for (int64_t j = 0; j < m.dims[d]; ++j) t[j] = (j % x.shape[d]) * strides[d];
    m.src.push_back(std::move(t));
  }
  return make_index_map(x.dtype, std::move(m));
}

// ---- Gather ----------------------------------------------------------------------------------

// out[o, p, i] = data[o, k, i] with k = indices[p] (+ dim when negative): data seen as
// [outer, n, inner] around `axis`, the indices flattened. Constant indices are checked at load.
// Run-time indices are checked here: ONNX calls an out-of-range index an error, so the kernel
// reports it (ctx.fail: the run ends with an Error naming the node) and writes a slice of zeros
// (empty strings) in its place, never reading outside `data`.
template <class T, class I>
class GatherKernel final : public Kernel {
 public:
  GatherKernel(int64_t outer, int64_t n, int64_t inner, int64_t count)
      : outer_(outer), n_(n), inner_(inner), count_(count) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    const I* idx = in_ptr<I>(ctx, 1);
    T* y = out_ptr<T>(ctx, 0);
    const int64_t n = n_, inner = inner_, count = count_;
    ctx.parallel->parallel_for(outer_ * count, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)),
                               [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / count;
        int64_t k = static_cast<int64_t>(idx[t % count]);
        if (k < 0) k += n;
        T* dst = y + t * inner;
        if (k < 0 || k >= n) {
          std::fill(dst, dst + inner, T{});
          const int64_t given = static_cast<int64_t>(idx[t % count]);
          ctx.fail(n == 0 ? cat("index ", given, " (at flat position ", t % count,
                                " of indices) into an axis of size 0, which has no elements")
                          : cat("index ", given, " (at flat position ", t % count, " of indices) is out of range [",
                                -n, ", ", n - 1, "] for an axis of size ", n));
        } else std::copy(x + (o * n + k) * inner, x + (o * n + k + 1) * inner, dst);
      }
    });
  }

 private:
  int64_t outer_, n_, inner_, count_;
};

std::unique_ptr<Kernel> build_gather(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_dtype(1, {DType::Int64, DType::Int32}, "indices");
  const ValueInfo& x = ctx.input(0);
  const ValueInfo& ind = ctx.input(1);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  if (r == 0) fail("data must have rank >= 1, it is a scalar");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", 0), r);
  const int64_t n = x.shape[axis];
  if (ind.constant) {
    for (int64_t i = 0; i < ind.constant->numel(); ++i) {
      const int64_t k = ind.constant->as_int64(i);
      if (k < -n || k >= n) {
        if (n == 0)
          fail("index ", k, " (at flat position ", i, " of indices) into axis ", axis,
               ", which has size 0 (data ", shape_str(x.shape), ")");
        fail("index ", k, " (at flat position ", i, " of indices) is out of range [", -n, ", ", n - 1,
             "] for axis ", axis, " of size ", n, " (data ", shape_str(x.shape), ")");
      }
    }
  }
  Shape out(x.shape.begin(), x.shape.begin() + axis);
  out.insert(out.end(), ind.shape.begin(), ind.shape.end());
  out.insert(out.end(), x.shape.begin() + axis + 1, x.shape.end());
  const int64_t q = static_cast<int64_t>(ind.shape.size());
  int64_t qaxis = -1;
  if (x.quant.axis >= 0 && x.quant.axis < axis) qaxis = x.quant.axis;
  if (x.quant.axis > axis) qaxis = x.quant.axis + q - 1;
  ctx.set_output(0, x.dtype, out, moved_quant(x.quant, qaxis));
  const int64_t outer = product(x.shape, 0, static_cast<size_t>(axis));
  const int64_t inner = product(x.shape, static_cast<size_t>(axis) + 1, x.shape.size());
  const int64_t count = shape_numel(ind.shape);
  return visit_storage(x.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    if (ind.dtype == DType::Int32) return std::make_unique<GatherKernel<T, int32_t>>(outer, n, inner, count);
    return std::make_unique<GatherKernel<T, int64_t>>(outer, n, inner, count);
  });
}

// ---- Concat and Split ------------------------------------------------------------------------

// Around `axis` every tensor is [outer, extent · inner]; a row of the output is the inputs'
// rows one after another (Concat), and Split cuts it the other way.
template <class T>
class ConcatKernel final : public Kernel {
 public:
  ConcatKernel(int64_t outer, std::vector<int64_t> row) : outer_(outer), row_(std::move(row)) {
    for (int64_t v : row_) total_ += v;
  }
  void run(const RunContext& ctx) const override {
    T* y = out_ptr<T>(ctx, 0);
    ctx.parallel->parallel_for(outer_, std::max<int64_t>(1, 16384 / std::max<int64_t>(total_, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        T* dst = y + o * total_;
        for (size_t k = 0; k < row_.size(); ++k) {
          const T* src = in_ptr<T>(ctx, k) + o * row_[k];
          dst = std::copy(src, src + row_[k], dst);
        }
      }
    });
  }

 private:
  int64_t outer_;
  std::vector<int64_t> row_;
  int64_t total_ = 0;
};

std::unique_ptr<Kernel> build_concat(BuildContext& ctx) {
  const size_t n = ctx.num_inputs();
  if (n == 0) fail("expects at least 1 input, has 0");
  for (size_t k = 0; k < n; ++k)
    if (!ctx.has_input(k)) fail("input ", k, " is absent; every input is required");
  const ValueInfo& x0 = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x0.shape.size());
  if (r == 0) fail("inputs must have rank >= 1; scalars cannot be concatenated");
  if (ctx.node().opset >= 4 && !ctx.attrs().has("axis")) fail("attribute axis is required");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", 1), r);
  Shape out = x0.shape;
  out[axis] = 0;
  bool same_quant = true;
  for (size_t k = 0; k < n; ++k) {
    const ValueInfo& xk = ctx.input(k);
    if (xk.dtype != x0.dtype)
      fail("input ", k, " is ", dtype_name(xk.dtype), " but input 0 is ", dtype_name(x0.dtype));
    if (xk.shape.size() != x0.shape.size())
      fail("input ", k, " has rank ", xk.shape.size(), " but input 0 has rank ", r);
    for (int64_t d = 0; d < r; ++d)
      if (d != axis && xk.shape[d] != x0.shape[d])
        fail("input ", k, " has shape ", shape_str(xk.shape), ", which differs from input 0's ", shape_str(x0.shape),
             " outside axis ", axis);
    out[axis] += xk.shape[axis];
    same_quant = same_quant && xk.quant.scale == x0.quant.scale && xk.quant.zero_point == x0.quant.zero_point &&
                 xk.quant.axis == x0.quant.axis;
  }
  QuantParams q = same_quant ? moved_quant(x0.quant, x0.quant.axis == axis ? -1 : x0.quant.axis) : QuantParams{};
  ctx.set_output(0, x0.dtype, out, q);
  const int64_t outer = product(out, 0, static_cast<size_t>(axis));
  const int64_t inner = product(out, static_cast<size_t>(axis) + 1, out.size());
  std::vector<int64_t> row;
  for (size_t k = 0; k < n; ++k) row.push_back(ctx.input(k).shape[axis] * inner);
  return visit_storage(x0.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<ConcatKernel<decltype(tag)>>(outer, row);
  });
}

template <class T>
class SplitKernel final : public Kernel {
 public:
  SplitKernel(int64_t outer, std::vector<int64_t> row) : outer_(outer), row_(std::move(row)) {
    for (int64_t v : row_) total_ += v;
  }
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    ctx.parallel->parallel_for(outer_, std::max<int64_t>(1, 16384 / std::max<int64_t>(total_, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* src = x + o * total_;
        for (size_t k = 0; k < row_.size(); ++k) {
          if (k < ctx.outputs.size() && ctx.outputs[k])  // an unused output may be absent
            std::copy(src, src + row_[k], out_ptr<T>(ctx, k) + o * row_[k]);
          src += row_[k];
        }
      }
    });
  }

 private:
  int64_t outer_;
  std::vector<int64_t> row_;
  int64_t total_ = 0;
};

// Split: sizes from the `split` input (opset 13+; also allowed as input in opset 1) or
// attribute (before 13); otherwise equal parts, one per output: the dim must divide evenly,
// except with opset 18's num_outputs, where parts are ceil(dim / n) and the last is smaller.
std::unique_ptr<Kernel> build_split(BuildContext& ctx) {
  const int opset = ctx.node().opset;
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  if (r == 0) fail("the input must have rank >= 1, it is a scalar");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", 0), r);
  const int64_t dim = x.shape[axis];
  const int64_t outs = static_cast<int64_t>(ctx.num_outputs());
  std::vector<int64_t> split;
  bool given = false;
  if (opset >= 13 || opset == 1) {
    ctx.expect_inputs(1, 2);
    if (ctx.has_input(1)) {
      split = int_list_input(ctx, 1, "split");
      given = true;
    }
  } else {
    ctx.expect_inputs(1, 1);
  }
  if (opset < 13 && ctx.attrs().has("split")) {
    if (given) fail("split is given both as input and as attribute");
    split = ctx.attrs().get_ints("split");
    given = true;
  }
  if (given) {
    if (ctx.attrs().has("num_outputs")) fail("split and num_outputs must not both be given");
    if (static_cast<int64_t>(split.size()) != outs)
      fail("split has ", split.size(), " sizes but the node has ", outs, " outputs");
    int64_t sum = 0;
    for (int64_t s : split) {
      if (s < 0) fail("split sizes must be >= 0, got ", shape_str(split));
      if (s > dim - sum) fail("split sizes ", shape_str(split), " add up to more than the axis size ", dim);
      sum += s;
    }
    if (sum != dim) fail("split sizes ", shape_str(split), " add up to ", sum, ", not to the axis size ", dim);
  } else if (opset >= 18 && ctx.attrs().has("num_outputs")) {
    const int64_t n = ctx.attrs().get_int("num_outputs");
    if (n < 1 || n != outs) fail("num_outputs is ", n, " but the node has ", outs, " outputs");
    const int64_t part = (dim + n - 1) / n;
    for (int64_t k = 0; k < n; ++k) split.push_back(std::clamp<int64_t>(dim - k * part, 0, part));
  } else {
    if (outs < 1) fail("the node has no outputs");
    if (dim % outs != 0)
      fail("axis ", axis, " of size ", dim, " cannot be split into ", outs, " equal parts (give split sizes)");
    split.assign(static_cast<size_t>(outs), dim / outs);
  }
  const int64_t inner = product(x.shape, static_cast<size_t>(axis) + 1, x.shape.size());
  std::vector<int64_t> row;
  for (int64_t k = 0; k < outs; ++k) {
    Shape s = x.shape;
    s[axis] = split[k];
    ctx.set_output(static_cast<size_t>(k), x.dtype, s, moved_quant(x.quant, x.quant.axis == axis ? -1 : x.quant.axis));
    row.push_back(split[k] * inner);
  }
  const int64_t outer = product(x.shape, 0, static_cast<size_t>(axis));
  return visit_storage(x.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<SplitKernel<decltype(tag)>>(outer, row);
  });
}

// ---- Shape, Size, ConstantOfShape ------------------------------------------------------------

// Shape: the input's dims [start, end) as int64 (start/end from opset 15: negative counts from
// the end, both clamped to [0, rank]); known at load, so no kernel runs.
std::unique_ptr<Kernel> build_shape(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const Shape& s = ctx.input(0).shape;
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t start = 0, end = r;
  if (ctx.node().opset >= 15) {
    start = ctx.attrs().get_int("start", 0);
    end = ctx.attrs().get_int("end", r);
  }
  auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  start = clamp(start);
  end = std::max(start, clamp(end));
  std::vector<int64_t> dims(s.begin() + start, s.begin() + end);
  ctx.set_output_constant(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
  return nullptr;
}

std::unique_ptr<Kernel> build_size(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.set_output_constant(0, Tensor::scalar<int64_t>(shape_numel(ctx.input(0).shape)));
  return nullptr;
}

template <class T>
class FillKernel final : public Kernel {
 public:
  explicit FillKernel(T value) : value_(std::move(value)) {}
  void run(const RunContext& ctx) const override {
    T* y = out_ptr<T>(ctx, 0);
    ctx.parallel->parallel_for(ctx.out(0).numel(), 1 << 16, [&](int64_t b, int64_t e) {
      std::fill(y + b, y + e, value_);
    });
  }

 private:
  T value_;
};

// ConstantOfShape: a tensor of the given (constant) shape filled with `value` (a one-element
// tensor attribute; default float32 0). The kernel runs once, folded at load, after the planner
// has checked the size against its limit.
std::unique_ptr<Kernel> build_constant_of_shape(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const std::vector<int64_t> shape = int_list_input(ctx, 0, "input");
  for (int64_t d : shape)
    if (d < 0) fail("shape ", shape_str(shape), " has a negative dim");
  Tensor value = ctx.attrs().has("value") ? ctx.attrs().get_tensor("value") : Tensor::from_vector<float>({1}, {0.0f});
  // "a one-element tensor"; ONNX's shape inference and ONNX Runtime want it 1-D.
  if (value.numel() != 1 || value.shape().size() != 1)
    fail("attribute value must be a one-element 1-D tensor, has shape ", shape_str(value.shape()));
  ctx.set_output(0, value.dtype(), shape);
  return visit_storage(value.dtype(), [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    return std::make_unique<FillKernel<T>>(static_cast<const T*>(value.raw())[0]);
  });
}

// ---- Cast -----------------------------------------------------------------------------------

// float16 and bfloat16 elements, as bit patterns (their storage is uint16_t).
struct Half {
  uint16_t bits;
};
struct BHalf {
  uint16_t bits;
};
template <class T>
constexpr bool is_half = std::is_same_v<T, Half> || std::is_same_v<T, BHalf>;
template <class T>
constexpr bool is_real = std::is_same_v<T, float> || std::is_same_v<T, double>;
template <class T>
constexpr bool is_int = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <class T>
using Storage = std::conditional_t<is_half<T>, uint16_t, T>;

template <class F>
decltype(auto) visit_cast_type(DType t, F&& f) {
  if (t == DType::Float16) return f(Half{});
  if (t == DType::BFloat16) return f(BHalf{});
  return visit_dtype(t, f);
}

// Narrows a double to float rounding to odd: truncate toward zero, then set the last mantissa
// bit if anything was cut off. A later round-to-nearest-even to float16 or bfloat16 (at most 11
// significant bits, far fewer than float's 24) then gives the correctly rounded result of the
// original double, which a plain double→float→half would not always do (double rounding).
float narrow_to_odd(double d) {
  const float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  const float toward_zero = std::fabs(static_cast<double>(f)) > std::fabs(d) ? std::nextafter(f, 0.0f) : f;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(toward_zero) | 1u);
}

template <class S>
float to_float_for_half(S v) {
  if constexpr (std::is_same_v<S, float>) return v;
  else if constexpr (std::is_same_v<S, bool>) return v ? 1.0f : 0.0f;
  else return narrow_to_odd(static_cast<double>(v));
}

// numpy's str() of a real: the shortest digits that read back as the same value of the type,
// positional when 1e-4 <= |v| < 1e16 (with ".0" for whole numbers), scientific otherwise
// ("1e-05", "1.5e+16"). `sci` is those shortest digits in C's scientific form "-d.ddde±XX".
// NaN and infinities are written "NaN", "INF", "-INF", the spellings Cast's string→float reads
// (and ONNX Runtime writes).
std::string numpy_style(std::string_view sci, double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value < 0 ? "-INF" : "INF";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  const double a = std::fabs(value);
  if (!(a >= 1e-4 && a < 1e16)) return std::string(sci);
  const bool neg = sci[0] == '-';
  const size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = neg ? 1 : 0; i < epos; ++i)
    if (sci[i] != '.') digits += sci[i];
  int exp = 0;
  std::from_chars(sci.data() + epos + (sci[epos + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp);
  std::string out = neg ? "-" : "";
  if (exp >= 0) {
    const size_t int_digits = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_digits) {
      out += digits + std::string(int_digits - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
    }
  } else {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  }
  return out;
}

template <class S>
std::string format_value(const S& v) {
  char buf[64];
  if constexpr (std::is_same_v<S, bool>) {
    return v ? "1" : "0";  // as ONNX Runtime (std::to_string of the integer value)
  } else if constexpr (is_int<S>) {
    return std::to_string(v);
  } else if constexpr (is_real<S>) {
    auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    return numpy_style(std::string_view(buf, static_cast<size_t>(res.ptr - buf)), static_cast<double>(v));
  } else {
    // float16 / bfloat16: the fewest significant digits that convert back to the same bits.
    const bool half = std::is_same_v<S, Half>;
    const float f = half ? half_to_float(v.bits) : bfloat16_to_float(v.bits);
    if (!std::isfinite(f)) return numpy_style("", f);
    for (int p = 0; p < 9; ++p) {
      auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific, p);
      float back = 0;
      std::from_chars(buf, res.ptr, back, std::chars_format::scientific);
      if ((half ? float_to_half(back) : float_to_bfloat16(back)) == v.bits)
        return numpy_style(std::string_view(buf, static_cast<size_t>(res.ptr - buf)), f);
    }
    auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    return numpy_style(std::string_view(buf, static_cast<size_t>(res.ptr - buf)), f);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A real from a string as the ONNX spec describes: plain or scientific notation, and "NaN",
// "INF", "+INF", "-INF" in any case; a leading '+' and surrounding blanks are allowed, trailing
// characters after a number are ignored (like std::stod, which ONNX Runtime uses). A string
// with no number gives NaN (ONNX calls it undefined; ONNX Runtime fails the run).
template <class F>
F parse_real(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  F v{};
  const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec == std::errc::result_out_of_range) {
    // Too large or too small for F: strtod gives ±inf or (±)0 (it reads the same syntax).
    const double d = std::strtod(std::string(s).c_str(), nullptr);
    return static_cast<F>(d);
  }
  if (res.ec != std::errc()) return std::numeric_limits<F>::quiet_NaN();
  return v;
}

// An integer from a string as std::stoll / std::stoull read one (blanks, sign, decimal digits up
// to the first other character), narrowed modulo 2^bits to I like ONNX Runtime's narrow_cast.
// Magnitudes beyond 64 bits saturate; a string without digits gives 0 (ONNX Runtime fails).
template <class I>
I parse_int(std::string_view s) {
  s = trim(s);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t mag = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    mag = mag > (std::numeric_limits<uint64_t>::max() - digit) / 10 ? std::numeric_limits<uint64_t>::max() : mag * 10 + digit;
  }
  if constexpr (std::is_unsigned_v<I>) {
    return static_cast<I>(neg ? 0 - mag : mag);
  } else {
    const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    int64_t v;
    if (neg) v = mag > limit ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(mag);
    else v = mag > limit ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(mag);
    return static_cast<I>(v);
  }
}

// A bool from a string: "true"/"false" in any case, otherwise a number (non-zero is true);
// anything else is false.
bool parse_bool(std::string_view s) {
  s = trim(s);
  auto equals = [&](std::string_view w) {
    return s.size() == w.size() && std::equal(s.begin(), s.end(), w.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  };
  if (equals("true")) return true;
  if (equals("false")) return false;
  const double v = parse_real<double>(s);
  return !std::isnan(v) && v != 0;
}

// One element converted from S to D:
//   real → integer: truncation toward zero (ONNX Runtime for values in range); NaN → 0 and
//     out-of-range values saturate (where ONNX Runtime's result is undefined);
//   integer → integer: modulo 2^bits (two's complement), as the ONNX spec says (200 → -56);
//   → bool: non-zero is true (NaN too); bool → number: 0 or 1;
//   → real, float16, bfloat16: round to nearest even, once (see narrow_to_odd);
//   → string / string →: see format_value, parse_real, parse_int, parse_bool.
template <class D, class S>
D cast_value(const S& s) {
  if constexpr (std::is_same_v<D, S>) {
    return s;
  } else if constexpr (std::is_same_v<S, std::string>) {
    if constexpr (std::is_same_v<D, bool>) return parse_bool(s);
    else if constexpr (is_int<D>) return parse_int<D>(s);
    else if constexpr (is_real<D>) return parse_real<D>(s);
    else return cast_value<D>(parse_real<double>(s));
  } else if constexpr (std::is_same_v<D, std::string>) {
    return format_value(s);
  } else if constexpr (std::is_same_v<S, Half>) {
    return cast_value<D>(half_to_float(s.bits));
  } else if constexpr (std::is_same_v<S, BHalf>) {
    return cast_value<D>(bfloat16_to_float(s.bits));
  } else if constexpr (std::is_same_v<D, bool>) {
    return s != S{0};
  } else if constexpr (std::is_same_v<D, Half>) {
    return Half{float_to_half(to_float_for_half(s))};
  } else if constexpr (std::is_same_v<D, BHalf>) {
    return BHalf{float_to_bfloat16(to_float_for_half(s))};
  } else if constexpr (is_int<D> && is_real<S>) {
    return saturate_cast<D>(s);
  } else {
    return static_cast<D>(s);
  }
}

template <class T>
T load(const Storage<T>& v) {
  if constexpr (is_half<T>) return T{v};
  else return v;
}
template <class T>
Storage<T> store(const T& v) {
  if constexpr (is_half<T>) return v.bits;
  else return v;
}

template <class S, class D>
class CastKernel final : public Kernel {
 public:
  void run(const RunContext& ctx) const override {
    const Storage<S>* x = in_ptr<Storage<S>>(ctx, 0);
    Storage<D>* y = out_ptr<Storage<D>>(ctx, 0);
    const int64_t grain = std::is_same_v<S, std::string> || std::is_same_v<D, std::string> ? 1024 : 16384;
    ctx.parallel->parallel_for(ctx.in(0).numel(), grain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = store<D>(cast_value<D>(load<S>(x[i])));
    });
  }
};

std::unique_ptr<Kernel> make_cast(DType from, DType to) {
  return visit_cast_type(from, [&](auto s) {
    return visit_cast_type(to, [&](auto d) -> std::unique_ptr<Kernel> {
      return std::make_unique<CastKernel<decltype(s), decltype(d)>>();
    });
  });
}

// Cast-1 names its target type with a string.
DType dtype_from_onnx_name(const std::string& name) {
  static const std::pair<const char*, DType> names[] = {
      {"FLOAT", DType::Float32}, {"UINT8", DType::UInt8},   {"INT8", DType::Int8},       {"UINT16", DType::UInt16},
      {"INT16", DType::Int16},   {"INT32", DType::Int32},   {"INT64", DType::Int64},     {"STRING", DType::String},
      {"BOOL", DType::Bool},     {"FLOAT16", DType::Float16}, {"DOUBLE", DType::Float64}, {"UINT32", DType::UInt32},
      {"UINT64", DType::UInt64}, {"BFLOAT16", DType::BFloat16}};
  for (const auto& [n, t] : names)
    if (name == n) return t;
  return DType::Undefined;
}

std::unique_ptr<Kernel> build_cast(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  DType to = DType::Undefined;
  const auto& attrs = ctx.attrs().all();
  auto it = attrs.find("to");
  if (it == attrs.end()) fail("attribute to is required");
  if (const auto* name = std::get_if<std::string>(&it->second)) {
    to = dtype_from_onnx_name(*name);
    if (to == DType::Undefined) fail("attribute to = '", *name, "' names no type quint supports");
  } else {
    const int64_t code = ctx.attrs().get_int("to");
    if (code < 0 || code > 1000 || !dtype_is_known(static_cast<int>(code)))
      fail("attribute to = ", code, " is not a type quint supports (float8, int4, complex are not)");
    to = static_cast<DType>(code);
  }
  ctx.set_output(0, to, x.shape);
  return make_cast(x.dtype, to);
}

std::unique_ptr<Kernel> build_cast_like(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  const ValueInfo& x = ctx.input(0);
  const DType to = ctx.input(1).dtype;
  ctx.set_output(0, to, x.shape);
  return make_cast(x.dtype, to);
}

// ---- Pad ------------------------------------------------------------------------------------

// Pad: out[d] = pads_begin[d] + in[d] + pads_end[d] (negative pads crop). Output coordinate j
// of dim d is input coordinate i = j − pads_begin[d], mapped into range by the mode:
//   constant: outside [0, n) → the fill value;   edge: clamp(i, 0, n−1);
//   reflect: mirror about the first and last element (period 2(n−1), no edge repeat; n = 1
//     repeats the element; pads beyond n−1 keep reflecting, as numpy does);
//   wrap (opset 19): i mod n.
// Pads come from attributes before opset 11 (`paddings` in opset 1, `pads` in 2–10, with a
// float `value`), then from a constant input with an optional constant_value input (a scalar of
// the data's type, read at run time) and, from opset 18, an optional axes input.
std::unique_ptr<Kernel> build_pad(BuildContext& ctx) {
  const int opset = ctx.node().opset;
  const ValueInfo& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const std::string mode = ctx.attrs().get_string("mode", "constant");
  if (mode != "constant" && mode != "edge" && mode != "reflect" && !(mode == "wrap" && opset >= 19))
    fail("mode '", mode, "' is not one of constant, edge, reflect", opset >= 19 ? ", wrap" : " (wrap needs opset 19)");
  std::vector<int64_t> pads;
  std::vector<int64_t> axes;
  bool value_input = false;
  double attr_value = 0;
  if (opset < 11) {
    ctx.expect_inputs(1, 1);
    const char* name = opset < 2 ? "paddings" : "pads";
    if (!ctx.attrs().has(name)) fail("attribute ", name, " is required");
    pads = ctx.attrs().get_ints(name);
    attr_value = ctx.attrs().get_float("value", 0.0f);
  } else {
    ctx.expect_inputs(2, 4);
    pads = int_list_input(ctx, 1, "pads");
    if (ctx.has_input(2)) {
      const ValueInfo& v = ctx.input(2);
      if (v.dtype != x.dtype)
        fail("constant_value must have the data's type ", dtype_name(x.dtype), ", got ", dtype_name(v.dtype));
      if (shape_numel(v.shape) != 1 || v.shape.size() > 1)
        fail("constant_value must be a scalar, has shape ", shape_str(v.shape));
      value_input = true;
    }
    if (ctx.has_input(3)) {
      if (opset < 18) fail("the axes input needs opset 18");
      axes = normalize_axes(int_list_input(ctx, 3, "axes", true), r, "axis");
    }
  }
  if (axes.empty() && !(opset >= 18 && ctx.has_input(3)))
    for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  const size_t na = axes.size();
  if (pads.size() != 2 * na)
    fail("pads has ", pads.size(), " values but ", 2 * na, " are needed (begin and end for ", na, " axes)");
  std::vector<int64_t> begin(static_cast<size_t>(r), 0), end(static_cast<size_t>(r), 0);
  for (size_t i = 0; i < na; ++i) {
    begin[axes[i]] = pads[i];
    end[axes[i]] = pads[i + na];
  }

  const std::vector<int64_t> strides = contiguous_strides(x.shape);
  const int64_t big = int64_t{1} << 40;
  IndexMap m;
  int64_t qaxis = x.quant.axis;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t n = x.shape[d], pb = begin[d], pe = end[d];
    if (pb < -big || pb > big || pe < -big || pe > big) fail("pads ", shape_str(pads), " are too large");
    const int64_t o = n + pb + pe;
    if (o < 0) fail("pads ", shape_str(pads), " crop more than the ", n, " elements of axis ", d);
    if (o > 0 && n == 0 && mode != "constant" && (pb > 0 || pe > 0))
      fail("mode ", mode, " cannot pad axis ", d, ", which has no elements");
    m.dims.push_back(o);
    if (d == x.quant.axis && (pb != 0 || pe != 0)) qaxis = -1;
  }
  // Declared (and checked against the size limit) before the tables are allocated.
  ctx.set_output(0, x.dtype, m.dims, moved_quant(x.quant, qaxis));
  for (int64_t d = 0; d < r; ++d) {
    const int64_t n = x.shape[d], pb = begin[d], o = m.dims[d];
    std::vector<int64_t> t(static_cast<size_t>(o));
    for (int64_t j = 0; j < o; ++j) {
      int64_t i = j - pb;
      if (i < 0 || i >= n) {
        if (mode == "constant") {
          t[j] = -1;
          continue;
        }
        if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, n - 1);
        } else if (mode == "wrap") {
          i = ((i % n) + n) % n;
        } else if (n == 1) {
          i = 0;
        } else {
          const int64_t period = 2 * (n - 1);
          i = ((i % period) + period) % period;
          if (i >= n) i = period - i;
        }
      }
      t[j] = i * strides[d];
    }
    m.src.push_back(std::move(t));
  }
  // The fill value: the constant_value input (read at run time), or the attribute converted to
  // the data's type like Cast would, or the type's zero ("" for strings, false for bool).
  return visit_cast_type(x.dtype, [&](auto tag) -> std::unique_ptr<Kernel> {
    using E = decltype(tag);
    using T = Storage<E>;
    T fill{};
    if constexpr (!std::is_same_v<E, std::string>) fill = store<E>(cast_value<E>(attr_value));
    return std::make_unique<IndexMapKernel<T>>(std::move(m), fill, value_input ? 2 : -1);
  });
}

}  // namespace

void register_shape_ops(Registry& r) {
  r.add(elementwise_op({"ai.onnx", "Identity", 1, 1000, build_identity}));
  r.add({"ai.onnx", "Dropout", 1, 1000, build_dropout});
  r.add({"ai.onnx", "Reshape", 1, 1000, build_reshape});
  r.add({"ai.onnx", "Flatten", 1, 1000, build_flatten});
  r.add({"ai.onnx", "Squeeze", 1, 1000, build_squeeze});
  r.add({"ai.onnx", "Unsqueeze", 1, 1000, build_unsqueeze});
  r.add({"ai.onnx", "Transpose", 1, 1000, build_transpose});
  r.add({"ai.onnx", "Concat", 1, 1000, build_concat});
  r.add({"ai.onnx", "Split", 1, 1000, build_split});
  r.add({"ai.onnx", "Slice", 1, 1000, build_slice});
  r.add({"ai.onnx", "Gather", 1, 1000, build_gather});
  r.add({"ai.onnx", "Expand", 8, 1000, build_expand});
  r.add({"ai.onnx", "Tile", 6, 1000, build_tile});
  r.add({"ai.onnx", "Pad", 1, 1000, build_pad});
  r.add({"ai.onnx", "Shape", 1, 1000, build_shape});
  r.add({"ai.onnx", "Size", 1, 1000, build_size});
  r.add({"ai.onnx", "ConstantOfShape", 9, 1000, build_constant_of_shape});
  r.add(elementwise_op({"ai.onnx", "Cast", 1, 1000, build_cast}));
  r.add({"ai.onnx", "CastLike", 15, 1000, build_cast_like});
}

}  // namespace quint::ops
