#include "common.h"

#include <cmath>
#include <limits>

namespace quint::ops {

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank) fail(what, " ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> s(out.size(), 0);
  std::vector<int64_t> cs = contiguous_strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : cs[i];
  return s;
}

void for_each_broadcast(const Shape& out, const Shape& a, const Shape& b, Parallel* parallel,
                        const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t)>& fn) {
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  const size_t rank = out.size();
  const std::vector<int64_t> as = broadcast_strides(a, out), bs = broadcast_strides(b, out);
  const int64_t inner = rank ? out[rank - 1] : 1;
  const int64_t a_step = rank ? as[rank - 1] : 0, b_step = rank ? bs[rank - 1] : 0;
  const int64_t rows = total / inner;
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      // Decompose the row index over the outer dims.
      int64_t rem = r, ao = 0, bo = 0;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        int64_t idx = rem % out[d];
        rem /= out[d];
        ao += idx * as[d];
        bo += idx * bs[d];
      }
      fn(r * inner, ao, bo, a_step, b_step, inner);
    }
  };
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner));
  if (parallel) parallel->parallel_for(rows, grain, body);
  else body(0, rows);
}

std::vector<int64_t> WindowGeometry::out_dims() const {
  return std::vector<int64_t>(out.begin() + (3 - spatial_rank), out.end());
}

WindowGeometry window_geometry(const BuildContext& ctx, const Shape& input_shape,
                               const std::vector<int64_t>& kernel, bool ceil_mode,
                               bool allow_dilation) {
  const Attributes& a = ctx.attrs();
  if (input_shape.size() < 3 || input_shape.size() > 5)
    fail("input must have 1 to 3 spatial dims (rank 3 to 5), has shape ", shape_str(input_shape));
  const int r = static_cast<int>(input_shape.size()) - 2;
  WindowGeometry g;
  g.spatial_rank = r;
  const int off = 3 - r;

  auto read = [&](const char* name, int64_t dflt, size_t want) {
    std::vector<int64_t> v = a.get_ints(name);
    if (v.empty()) v.assign(want, dflt);
    if (v.size() != want) fail("attribute '", name, "' has ", v.size(), " values, expected ", want);
    return v;
  };
  // An empty kernel_shape is not "the default" (there is none): ONNX Runtime refuses it too.
  std::vector<int64_t> ks = kernel;
  if (a.has("kernel_shape")) {
    ks = a.get_ints("kernel_shape");
    if (ks.size() != static_cast<size_t>(r)) fail("attribute 'kernel_shape' has ", ks.size(), " values, expected ", r);
  }
  if (ks.size() != static_cast<size_t>(r))
    fail("kernel has ", ks.size(), " spatial dims but the input has ", r);
  if (!kernel.empty() && ks != kernel)
    fail("attribute kernel_shape ", shape_str(ks), " does not match the weights' ", shape_str(kernel));
  std::vector<int64_t> strides = read("strides", 1, r);
  std::vector<int64_t> dil = read("dilations", 1, r);
  std::vector<int64_t> pads = read("pads", 0, 2 * static_cast<size_t>(r));
  std::string auto_pad = a.get_string("auto_pad", "NOTSET");

  for (int i = 0; i < r; ++i) {
    int64_t in = input_shape[2 + i];
    if (ks[i] < 1) fail("kernel_shape must be >= 1, got ", shape_str(ks));
    if (strides[i] < 1) fail("strides must be >= 1, got ", shape_str(strides));
    if (dil[i] < 1) fail("dilations must be >= 1, got ", shape_str(dil));
    if (!allow_dilation && dil[i] != 1) fail("dilations other than 1 are not supported here");
    if (pads[i] < 0 || pads[i + r] < 0) fail("pads must be >= 0, got ", shape_str(pads));
    // Guard the arithmetic below against absurd attribute values.
    const int64_t big = int64_t{1} << 31;
    if (ks[i] > big || strides[i] > big || dil[i] > big || pads[i] > big || pads[i + r] > big)
      fail("window attributes are too large (kernel ", shape_str(ks), ", pads ", shape_str(pads), ")");
    int64_t eff_k = (ks[i] - 1) * dil[i] + 1;
    int64_t pb = pads[i], pe = pads[i + r];
    int64_t out;
    if (auto_pad == "NOTSET" || auto_pad == "VALID") {
      if (auto_pad == "VALID") pb = pe = 0;
      int64_t span = in + pb + pe - eff_k;
      if (span < 0)
        fail("the kernel (", eff_k, " with dilation) is larger than the padded input (", in + pb + pe,
             ") in spatial dim ", i);
      out = (ceil_mode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1;
      // With ceil_mode, a last window that starts in the end padding is dropped (as ONNX Runtime
      // and PyTorch do).
      if (ceil_mode && (out - 1) * strides[i] >= in + pb) --out;
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = (in + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + eff_k - in);
      pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
    } else {
      fail("auto_pad '", auto_pad, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
    g.in[off + i] = in;
    g.kernel[off + i] = ks[i];
    g.stride[off + i] = strides[i];
    g.dilation[off + i] = dil[i];
    g.pad_begin[off + i] = pb;
    g.pad_end[off + i] = pe;
    g.out[off + i] = out;
  }
  // Every dim is below 2^31, but the window of a 3-D pool (whose kernel no weights bound) could
  // still hold more taps than int64 counts: kernel_size() and tap counts must fit.
  if (g.kernel[0] > std::numeric_limits<int64_t>::max() / (g.kernel[1] * g.kernel[2]))
    fail("the window of kernel ", shape_str(ks), " has more elements than int64 can count");
  return g;
}

QuantInput read_quant_input(const BuildContext& ctx, size_t scale_idx, size_t zp_idx,
                            int64_t channels, const char* what, DType zp_dtype, bool broadcast) {
  QuantInput q;
  const Tensor& s = ctx.constant_input(scale_idx, (std::string(what) + " scale").c_str());
  if (s.dtype() != DType::Float32)
    fail(what, " scale must be float32, got ", dtype_name(s.dtype()));
  auto check_len = [&](const Tensor& t, const char* kind) {
    bool scalar = t.numel() == 1 && t.rank() <= 1;
    bool vector = t.rank() == 1 && channels > 0 && t.numel() == channels;
    if (!scalar && !vector) {
      if (channels > 0)
        fail(what, " ", kind, " must be a scalar or have ", channels, " elements, has shape ",
             shape_str(t.shape()));
      fail(what, " ", kind, " must be a scalar, has shape ", shape_str(t.shape()));
    }
  };
  check_len(s, "scale");
  for (float v : s.values<float>()) {
    if (!std::isfinite(v) || v <= 0)
      fail(what, " scale must be finite and > 0, got ", v);
    q.scale.push_back(v);
  }
  if (ctx.has_input(zp_idx)) {
    const Tensor& z = ctx.constant_input(zp_idx, (std::string(what) + " zero point").c_str());
    if (zp_dtype != DType::Undefined && z.dtype() != zp_dtype)
      fail(what, " zero point must be ", dtype_name(zp_dtype), ", got ", dtype_name(z.dtype()));
    if (!is_quant8(z.dtype()) && z.dtype() != DType::Int32)
      fail(what, " zero point must be uint8 or int8, got ", dtype_name(z.dtype()));
    check_len(z, "zero point");
    if (z.numel() != s.numel() && !broadcast)
      fail(what, " zero point has ", z.numel(), " elements but its scale has ", s.numel());
    q.zp_dtype = z.dtype();
    for (int64_t i = 0; i < z.numel(); ++i) q.zero_point.push_back(static_cast<int32_t>(z.as_int64(i)));
  } else {
    q.zero_point.assign(q.scale.size(), 0);
  }
  // A per-channel scale with one zero point (or the reverse) applies the single value to every
  // channel, as ONNX Runtime's QLinearConv does.
  if (q.scale.size() == 1 && q.zero_point.size() > 1) q.scale.assign(q.zero_point.size(), q.scale[0]);
  if (q.zero_point.size() == 1 && q.scale.size() > 1) q.zero_point.assign(q.scale.size(), q.zero_point[0]);
  return q;
}

QuantParams to_quant_params(const QuantInput& q, int axis) {
  QuantParams p;
  p.scale = q.scale;
  p.zero_point = q.zero_point;
  p.axis = q.scale.size() > 1 ? axis : -1;
  return p;
}

}  // namespace quint::ops
