// Pooling: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (ai.onnx) and
// QLinearAveragePool (com.microsoft).
//
// A window of output o along a spatial dim reads taps j = 0..k−1 at input position
// o·stride − pad_begin + j·dilation; taps outside [0, in) are padding.
//   MaxPool:     y = the first valid tap, replaced by each later tap (scan order d, h, w) that is
//                strictly greater: padding never wins (it acts as −inf; an integer window keeps
//                the type's minimum only if it has no valid tap). NaN handling follows from that
//                rule, as in ONNX Runtime's kernel with Indices. Indices (int64, opset 8+): the
//                flat position of the chosen tap in the input, (n·C + c)·spatial + position, the
//                position in row-major order (storage_order 0) or column-major (1:
//                i0 + i1·D0 + i2·D0·D1); −1 for a window without valid taps.
//   AveragePool: y = fl32(Σ valid taps, summed in scan order) / count, count = the valid taps
//                (count_include_pad 0) or the taps inside the padded extent [−pad_begin,
//                in + pad_end) (count_include_pad 1; with ceil_mode a window may run beyond it).
//   QLinearAveragePool, measured bit for bit against ONNX Runtime 1.30 (1-D/2-D/3-D, ceil_mode,
//                auto_pad, count_include_pad, channels_last; uint8 and int8):
//                  r = fl32(fl32(Σ fl32((x − x_zp)·x_s)) / count)     (sum in scan order)
//                  y = sat(rne(fl32(fl32(r / y_s) + y_zp)))           (zero point added before rounding)
//                where count_include_pad 1 divides by the whole kernel volume (unlike the float
//                AveragePool, even for a ceil_mode window running past the padded input). When the
//                kernel covers the whole input with no padding, ONNX Runtime switches to
//                QLinearGlobalAveragePool's integer formula:
//                  acc = Σ (x − x_zp) (int32),  s = fl32(x_s / fl32(y_s·N)),
//                  y = sat(rne(fl32(fl32(acc)·s)) + y_zp)             (zero point added after rounding)
//                Integer AveragePool (an extension: ONNX defines AveragePool for float types
//                only) is exactly QLinearAveragePool with equal input and output scale and zero
//                point, taken from the input's quantization (1 and 0 when it has none).
// ONNX Runtime rejects pads that are not smaller than the kernel; so does quint (a window would
// otherwise be all padding).
#include <algorithm>
#include <cstring>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "arith/requant.h"
#include "common.h"
#include "explain_util.h"
#include "register.h"
#include "x86/maxpool.h"

namespace quint::ops {

namespace {

// Per spatial slot and output index: valid taps [lo, hi) and the taps inside the padded extent.
struct Taps {
  std::vector<int64_t> lo, hi, full;
};

// The geometry of one pooling node. Tensors are NCHW, or NHWC (channels_last, QLinearAveragePool):
// element (n, c, p) of a plane lives at n·plane_batch + c·plane_channel + p·elem_stride.
struct PoolPlan {
  WindowGeometry g;
  int64_t batch = 0, channels = 0;
  bool channels_last = false;
  std::array<Taps, 3> taps;

  int64_t in_base(int64_t n, int64_t c) const {
    return channels_last ? n * g.in_size() * channels + c : (n * channels + c) * g.in_size();
  }
  int64_t out_base(int64_t n, int64_t c) const {
    return channels_last ? n * g.out_size() * channels + c : (n * channels + c) * g.out_size();
  }
  int64_t stride() const { return channels_last ? channels : 1; }
};

void compute_taps(PoolPlan& p) {
  const WindowGeometry& g = p.g;
  for (int d = 0; d < 3; ++d) {
    Taps& t = p.taps[d];
    const int64_t k = g.kernel[d], dil = g.dilation[d], in = g.in[d];
    for (int64_t o = 0; o < g.out[d]; ++o) {
      const int64_t start = o * g.stride[d] - g.pad_begin[d];
      // The number of taps j < k whose position start + j·dil lies before `limit`.
      auto taps_before = [&](int64_t limit) {
        if (start >= limit) return int64_t{0};
        return std::min(k, (limit - start + dil - 1) / dil);
      };
      const int64_t lo = taps_before(0);
      const int64_t hi = std::max(lo, taps_before(in));
      t.lo.push_back(lo);
      t.hi.push_back(hi);
      t.full.push_back(taps_before(in + g.pad_end[d]));
    }
  }
}

// Validates kernel_shape, pads (smaller than the kernel, as ONNX Runtime requires) and the rest
// of the window attributes for an NCHW shape.
PoolPlan pool_plan(const BuildContext& ctx, const Shape& nchw, bool allow_dilation) {
  const Attributes& a = ctx.attrs();
  if (!a.has("kernel_shape")) fail("attribute kernel_shape is required");
  PoolPlan p;
  p.g = window_geometry(ctx, nchw, {}, a.get_int("ceil_mode", 0) != 0, allow_dilation);
  const std::vector<int64_t> ks = a.get_ints("kernel_shape");
  const std::vector<int64_t> pads = a.get_ints("pads");
  if (a.get_string("auto_pad", "NOTSET") == "NOTSET" && !pads.empty()) {
    const size_t r = ks.size();
    for (size_t i = 0; i < r; ++i)
      if (pads[i] >= ks[i] || pads[i + r] >= ks[i])
        fail("pads ", shape_str(pads), " must be smaller than kernel_shape ", shape_str(ks),
             " (ONNX Runtime rejects them too: a window could lie entirely in the padding)");
  }
  // auto_pad SAME_*: the spec's total pad (out − 1)·stride + (kernel − 1)·dilation + 1 − in is not
  // clamped at 0 for pooling; when the kernel is shorter than the stride it is negative and the
  // windows move inwards. Split as ONNX Runtime's pooling does (C++ division truncates):
  // SAME_UPPER begin = total / 2, SAME_LOWER begin = (total + 1) / 2. (With dilations ONNX Runtime
  // sizes these pads from the undilated kernel, against the spec; quint follows the spec there.)
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    WindowGeometry& g = p.g;
    for (int d = 3 - g.spatial_rank; d < 3; ++d) {
      const int64_t total = (g.out[d] - 1) * g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1 - g.in[d];
      g.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
      g.pad_end[d] = total - g.pad_begin[d];
    }
  }
  p.batch = nchw[0];
  p.channels = nchw[1];
  compute_taps(p);
  return p;
}

Shape pool_out_shape(const PoolPlan& p) {
  Shape s{p.batch};
  if (!p.channels_last) s.push_back(p.channels);
  for (int64_t d : p.g.out_dims()) s.push_back(d);
  if (p.channels_last) s.push_back(p.channels);
  return s;
}

// Output o = (od, oh, ow) of a plane: begin(o), tap(id, ih, iw) for every valid tap of its
// window in scan order, then end(o, count_valid, count_full).
template <class Begin, class Tap, class End>
void visit_window(const PoolPlan& p, int64_t od, int64_t oh, int64_t ow, int64_t o, Begin& begin, Tap& tap, End& end) {
  const WindowGeometry& g = p.g;
  const Taps &t0 = p.taps[0], &t1 = p.taps[1], &t2 = p.taps[2];
  const int64_t sd = od * g.stride[0] - g.pad_begin[0];
  const int64_t sh = oh * g.stride[1] - g.pad_begin[1];
  const int64_t sw = ow * g.stride[2] - g.pad_begin[2];
  begin(o);
  for (int64_t jd = t0.lo[od]; jd < t0.hi[od]; ++jd) {
    const int64_t id = sd + jd * g.dilation[0];
    for (int64_t jh = t1.lo[oh]; jh < t1.hi[oh]; ++jh) {
      const int64_t ih = sh + jh * g.dilation[1];
      for (int64_t jw = t2.lo[ow]; jw < t2.hi[ow]; ++jw) tap(id, ih, sw + jw * g.dilation[2]);
    }
  }
  const int64_t valid = (t0.hi[od] - t0.lo[od]) * (t1.hi[oh] - t1.lo[oh]) * (t2.hi[ow] - t2.lo[ow]);
  const int64_t full = t0.full[od] * t1.full[oh] * t2.full[ow];
  end(o, valid, full);
}

// Every output o of a plane in order, through visit_window.
template <class Begin, class Tap, class End>
void for_each_window(const PoolPlan& p, Begin&& begin, Tap&& tap, End&& end) {
  const WindowGeometry& g = p.g;
  int64_t o = 0;
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) visit_window(p, od, oh, ow, o, begin, tap, end);
}

// The same outputs with the same taps in the same order, but for windows over one plane of at
// most two dimensions, the outputs of a row whose horizontal windows lie entirely inside the
// input (and which have a valid kernel row) go to rows(oh, ow0, ow1, jh0, jh1) at once: it
// computes outputs [ow0, ow1) of row oh from kernel rows [jh0, jh1) and all kernel columns,
// tap by tap over the whole span, a loop the compiler vectorizes (the per-output visit costs
// several cycles per tap: GoogLeNet's and Inception's stride-1 pools took 70 % of their time).
// The others, at the borders, are visited one by one.
template <class Begin, class Tap, class End, class Rows>
void for_each_window_rows(const PoolPlan& p, Begin&& begin, Tap&& tap, End&& end, Rows&& rows) {
  const WindowGeometry& g = p.g;
  const Taps &t1 = p.taps[1], &t2 = p.taps[2];
  if (g.out[0] != 1 || g.kernel[0] != 1 || p.taps[0].lo[0] != 0 || p.taps[0].hi[0] != 1) {
    for_each_window(p, begin, tap, end);
    return;
  }
  // Outputs with a whole horizontal window: a contiguous span (lo falls to 0 and hi rises to
  // the kernel width along a row, then hi falls again at its end).
  int64_t ow0 = 0, ow1 = 0;
  while (ow0 < g.out[2] && !(t2.lo[ow0] == 0 && t2.hi[ow0] == g.kernel[2])) ++ow0;
  ow1 = ow0;
  while (ow1 < g.out[2] && t2.lo[ow1] == 0 && t2.hi[ow1] == g.kernel[2]) ++ow1;
  for (int64_t oh = 0; oh < g.out[1]; ++oh) {
    const int64_t o = oh * g.out[2];
    const bool span = ow0 < ow1 && t1.lo[oh] < t1.hi[oh];
    const int64_t a = span ? ow0 : g.out[2], b = span ? ow1 : g.out[2];
    for (int64_t ow = 0; ow < a; ++ow) visit_window(p, 0, oh, ow, o + ow, begin, tap, end);
    if (span) rows(oh, a, b, t1.lo[oh], t1.hi[oh]);
    for (int64_t ow = b; ow < g.out[2]; ++ow) visit_window(p, 0, oh, ow, o + ow, begin, tap, end);
  }
}

// y[i] = op(y[i], s[i·stride]) for i < n; a stride of 1 is a compile-time constant, so that the
// loop vectorizes. Restrict-qualified parameters: y's stores cannot alias s.
template <class T, class U, class Op>
void span_step(T* __restrict y, const U* __restrict s, int64_t stride, int64_t n, Op op) {
  if (stride == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = op(y[i], s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = op(y[i], s[i * stride]);
  }
}

// For every tap of the whole-window span of output row oh (see for_each_window_rows), in scan
// order: f(s, first) with s[i·SW] the tap's input for output ow0 + i.
template <class T, class F>
void span_taps(const PoolPlan& p, const T* plane, int64_t oh, int64_t ow0, int64_t jh0, int64_t jh1, F&& f) {
  const WindowGeometry& g = p.g;
  // The one tap along the first window dim (for_each_window_rows checked it is valid); its
  // position is not 0 when auto_pad moved the window (a negative pad).
  const T* slice = plane - g.pad_begin[0] * g.in[1] * g.in[2];
  bool first = true;
  for (int64_t jh = jh0; jh < jh1; ++jh) {
    const T* row = slice + (oh * g.stride[1] - g.pad_begin[1] + jh * g.dilation[1]) * g.in[2];
    for (int64_t jw = 0; jw < g.kernel[2]; ++jw) {
      f(row + ow0 * g.stride[2] - g.pad_begin[2] + jw * g.dilation[2], first);
      first = false;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// MaxPool
// ---------------------------------------------------------------------------------------------

class MaxPoolKernel final : public Kernel {
 public:
  MaxPoolKernel(PoolPlan p, DType t, bool column_major)
      : p_(std::move(p)), t_(t), column_major_(column_major) {}

  void run(const RunContext& ctx) const override {
    if (t_ == DType::Float32)
      compute<float>(ctx);
    else if (t_ == DType::UInt8)
      compute<uint8_t>(ctx);
    else
      compute<int8_t>(ctx);
  }

 private:
  template <class T>
  void compute(const RunContext& ctx) const {
    const T* x = ctx.in(0).data<T>();
    T* y = ctx.out(0).data<T>();
    int64_t* idx = ctx.outputs.size() > 1 && ctx.outputs[1] ? ctx.out(1).data<int64_t>() : nullptr;
    const WindowGeometry& g = p_.g;
    const int64_t in_hw = g.in[1] * g.in[2];
    ctx.parallel->parallel_for(p_.batch * p_.channels, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / p_.channels, c = t % p_.channels;
        const T* xp = x + p_.in_base(n, c);
        T* yp = y + p_.out_base(n, c);
        int64_t* ip = idx ? idx + t * g.out_size() : nullptr;  // Indices exist for NCHW only
        T best{};
        int64_t best_pos = -1;
        // Without Indices, rows at once: the first tap, then each strictly greater one (the
        // same rule per output, so NaN behaves as below).
        auto rows = [&](int64_t oh, int64_t a, int64_t b, int64_t jh0, int64_t jh1) {
          T* yr = yp + oh * g.out[2] + a;
          span_taps(p_, xp, oh, a, jh0, jh1, [&](const T* s, bool first) {
            if (first) span_step(yr, s, g.stride[2], b - a, [](T, T v) { return v; });
            else span_step(yr, s, g.stride[2], b - a, [](T y, T v) { return v > y ? v : y; });
          });
        };
        auto begin = [&](int64_t) { best_pos = -1; };
        auto tap = [&](int64_t id, int64_t ih, int64_t iw) {
          const int64_t pos = id * in_hw + ih * g.in[2] + iw;
          const T v = xp[pos];
          if (best_pos < 0 || v > best) {
            best = v;
            best_pos = column_major_ ? id + ih * g.in[0] + iw * g.in[0] * g.in[1] : pos;
          }
        };
        auto end = [&](int64_t o, int64_t, int64_t) {
          yp[o] = best_pos < 0 ? std::numeric_limits<T>::lowest() : best;
          if (ip) ip[o] = best_pos < 0 ? -1 : t * g.in_size() + best_pos;
        };
        if (ip) for_each_window(p_, begin, tap, end);
        else for_each_window_rows(p_, begin, tap, end, rows);
      }
    });
  }

  PoolPlan p_;
  DType t_;
  bool column_major_;
};

// 8-bit MaxPool on an NHWC value (a fast convolution chain): per output pixel, the element-wise
// maximum of the window's channel rows (padding never wins: it is simply not read).
// out[c] = max(out[c], row[c]): the arguments are restrict-qualified parameters, so the loop
// vectorizes (inside the kernel's lambda, byte stores could alias its captured bounds).
template <typename T>
void max_into(T* __restrict out, const T* __restrict row, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] = out[c] < row[c] ? row[c] : out[c];
}

template <class T>
class MaxPoolNhwc final : public Kernel {
 public:
  MaxPoolNhwc(PoolPlan p, x86::MaxPoolRowKernel fast) : p_(std::move(p)), fast_(fast) {}
  // Work items are output rows; along a row the window's input pixels are found without a
  // division per pixel, and each output pixel reduces its (at most KH·KW) channel rows at once.
  void run(const RunContext& ctx) const override {
    const WindowGeometry& g = p_.g;
    const T* x = static_cast<const T*>(ctx.in(0).raw());
    T* y = static_cast<T*>(ctx.out(0).raw());
    const int64_t C = p_.channels, OH = g.out[1];
    ctx.parallel->parallel_for(p_.batch * OH, 1, [&](int64_t b, int64_t e) {
      const int64_t IH = g.in[1], IW = g.in[2], OW = g.out[2], KH = g.kernel[1], KW = g.kernel[2];
      const int64_t SH = g.stride[1], SW = g.stride[2], PH = g.pad_begin[1], PW = g.pad_begin[2];
      const int64_t DH = g.dilation[1], DW = g.dilation[2];
      static thread_local std::vector<const T*> in_rows, window;
      in_rows.resize(static_cast<size_t>(KH));
      window.resize(static_cast<size_t>(KH * KW));
      for (int64_t item = b; item < e; ++item) {
        const int64_t n = item / OH, oh = item % OH;
        int rows = 0;  // the kernel rows inside the input: their image rows' first pixel
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * SH - PH + kh * DH;
          if (ih >= 0 && ih < IH) in_rows[static_cast<size_t>(rows++)] = x + (n * IH + ih) * IW * C;
        }
        T* out = y + item * OW * C;
        if (fast_) {  // (with no row inside the input, every window holds the type's minimum)
          x86::MaxPoolRowArgs a;
          a.rows = reinterpret_cast<const uint8_t* const*>(in_rows.data());
          a.nrows = rows;
          a.channels = C;
          a.in_w = IW;
          a.out_w = OW;
          a.kernel_w = KW;
          a.stride_w = SW;
          a.pad_w = PW;
          a.dilation_w = DW;
          a.is_signed = std::is_signed_v<T>;
          a.out = reinterpret_cast<uint8_t*>(out);
          fast_(a);
          continue;
        }
        for (int64_t ow = 0; ow < OW; ++ow, out += C) {
          int count = 0;
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t iw = ow * SW - PW + kw * DW;
            if (iw < 0 || iw >= IW) continue;
            for (int r = 0; r < rows; ++r) window[static_cast<size_t>(count++)] = in_rows[static_cast<size_t>(r)] + iw * C;
          }
          // A window entirely in the padding (possible with ceil_mode) holds the type's minimum.
          if (count == 0) {
            std::fill(out, out + C, std::numeric_limits<T>::lowest());
          } else {
            std::memcpy(out, window[0], static_cast<size_t>(C) * sizeof(T));
            for (int i = 1; i < count; ++i) max_into(out, window[static_cast<size_t>(i)], C);
          }
        }
      }
    });
  }

 private:
  PoolPlan p_;
  x86::MaxPoolRowKernel fast_;  // nullptr: the portable loop
};

std::unique_ptr<Kernel> build_max_pool(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_dtype(0, {DType::Float32, DType::UInt8, DType::Int8}, "X");
  const ValueInfo& x = ctx.input(0);
  if (x.dtype != DType::Float32 && ctx.node().opset < 12)
    fail("MaxPool on ", dtype_name(x.dtype), " needs opset 12 or later (the model has opset ",
         ctx.node().opset, ")");
  if (ctx.num_outputs() > 1 && ctx.node().opset < 8)
    fail("MaxPool has an Indices output from opset 8 on (the model has opset ", ctx.node().opset, ")");
  if (ctx.num_outputs() > 2) fail("MaxPool has at most 2 outputs, the node has ", ctx.num_outputs());
  const int64_t order = ctx.attrs().get_int("storage_order", 0);
  if (order != 0 && order != 1) fail("storage_order must be 0 or 1, got ", order);
  PoolPlan p = pool_plan(ctx, x.shape, true);
  const Shape out = pool_out_shape(p);
  ctx.set_output(0, x.dtype, out, x.dtype == DType::Float32 ? QuantParams{} : x.quant);
  ctx.set_output(1, DType::Int64, out);
  if (x.layout == Layout::NHWC) {
    if (!is_quant8(x.dtype) || x.shape.size() != 4 || ctx.num_outputs() > 1) ctx.require_plain_layout();
    ctx.set_output_layout(0, Layout::NHWC);
    const x86::MaxPoolRowKernel fast = x86::max_pool_row_kernel(x86::resolve_isa(ctx.options().isa));
    if (x.dtype == DType::UInt8) return std::make_unique<MaxPoolNhwc<uint8_t>>(std::move(p), fast);
    return std::make_unique<MaxPoolNhwc<int8_t>>(std::move(p), fast);
  }
  return std::make_unique<MaxPoolKernel>(std::move(p), x.dtype, order == 1);
}

// ---------------------------------------------------------------------------------------------
// AveragePool (float) and the quantized average (QLinearAveragePool, integer AveragePool)
// ---------------------------------------------------------------------------------------------

class AveragePoolFloat final : public Kernel {
 public:
  AveragePoolFloat(PoolPlan p, bool include_pad) : p_(std::move(p)), include_pad_(include_pad) {}

  void run(const RunContext& ctx) const override {
    const float* x = ctx.in(0).data<float>();
    float* y = ctx.out(0).data<float>();
    const WindowGeometry& g = p_.g;
    const int64_t in_hw = g.in[1] * g.in[2];
    ctx.parallel->parallel_for(p_.batch * p_.channels, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* xp = x + t * g.in_size();
        float* yp = y + t * g.out_size();
        float sum = 0;
        // Rows at once: each output's sum from 0 in scan order, as below.
        auto rows = [&](int64_t oh, int64_t a, int64_t b, int64_t jh0, int64_t jh1) {
          float* yr = yp + oh * g.out[2];
          std::fill(yr + a, yr + b, 0.0f);
          span_taps(p_, xp, oh, a, jh0, jh1, [&](const float* s, bool) {
            span_step(yr + a, s, g.stride[2], b - a, [](float y, float v) { return y + v; });
          });
          const int64_t valid = (jh1 - jh0) * g.kernel[2], full_h = p_.taps[0].full[0] * p_.taps[1].full[oh];
          for (int64_t ow = a; ow < b; ++ow)
            yr[ow] = yr[ow] / static_cast<float>(include_pad_ ? full_h * p_.taps[2].full[ow] : valid);
        };
        for_each_window_rows(
            p_, [&](int64_t) { sum = 0; },
            [&](int64_t id, int64_t ih, int64_t iw) { sum += xp[id * in_hw + ih * g.in[2] + iw]; },
            [&](int64_t o, int64_t valid, int64_t full) {
              yp[o] = sum / static_cast<float>(include_pad_ ? full : valid);
            },
            rows);
      }
    });
  }

 private:
  PoolPlan p_;
  bool include_pad_;
};

// Float AveragePool on an NHWC value (element-wise operators after a fast convolution keep it
// NHWC): per output pixel the channel rows of its valid taps summed in scan order from +0, then
// divided by the count, for all channels at once; the same floats as AveragePoolFloat.
// Compiled for AVX-512, AVX2 and the baseline, chosen at load (the same floats on each: one
// addition or division per element, never contracted).
__attribute__((target_clones("avx512f", "avx2", "default"))) void add_into(float* __restrict out,
                                                                           const float* __restrict row, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] = out[c] + row[c];
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void divide(float* __restrict out, float d, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] = out[c] / d;
}

class AveragePoolNhwcFloat final : public Kernel {
 public:
  AveragePoolNhwcFloat(PoolPlan p, bool include_pad) : p_(std::move(p)), include_pad_(include_pad) {}
  void run(const RunContext& ctx) const override {
    const WindowGeometry& g = p_.g;
    const float* x = ctx.in(0).data<float>();
    float* y = ctx.out(0).data<float>();
    const int64_t C = p_.channels, OH = g.out[1], OW = g.out[2], IH = g.in[1], IW = g.in[2];
    const Taps &t1 = p_.taps[1], &t2 = p_.taps[2];
    ctx.parallel->parallel_for(p_.batch * OH, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t n = item / OH, oh = item % OH;
        const int64_t ih0 = oh * g.stride[1] - g.pad_begin[1];
        for (int64_t ow = 0; ow < OW; ++ow) {
          float* out = y + (item * OW + ow) * C;
          std::fill(out, out + C, 0.0f);
          const int64_t iw0 = ow * g.stride[2] - g.pad_begin[2];
          for (int64_t jh = t1.lo[oh]; jh < t1.hi[oh]; ++jh) {
            const float* row = x + ((n * IH + ih0 + jh * g.dilation[1]) * IW) * C;
            for (int64_t jw = t2.lo[ow]; jw < t2.hi[ow]; ++jw) add_into(out, row + (iw0 + jw * g.dilation[2]) * C, C);
          }
          const int64_t valid = (t1.hi[oh] - t1.lo[oh]) * (t2.hi[ow] - t2.lo[ow]);
          const int64_t full = p_.taps[0].full[0] * t1.full[oh] * t2.full[ow];
          divide(out, static_cast<float>(include_pad_ ? full : valid), C);
        }
      }
    });
  }

 private:
  PoolPlan p_;
  bool include_pad_;
};

// QLinearAveragePool's arithmetic (see the top of the file).
struct AvgRequant {
  float x_scale = 1, y_scale = 1;
  int32_t x_zp = 0, y_zp = 0, qmin = 0, qmax = 255;
  float global_scale = 0;  // fl32(x_s / fl32(y_s·N)) for the whole-input case: set_window(N)

  void set_window(int64_t n) { global_scale = x_scale / (y_scale * static_cast<float>(n)); }

  float dequantize(int32_t q) const { return static_cast<float>(q - x_zp) * x_scale; }
  int32_t quantize(float sum, int64_t count) const {
    const float r = sum / static_cast<float>(count);
    float v = r / y_scale + static_cast<float>(y_zp);
    if (std::isnan(v)) v = static_cast<float>(y_zp);
    v = std::fmin(std::fmax(v, static_cast<float>(qmin)), static_cast<float>(qmax));
    return arith::rne(v);
  }
  int32_t quantize_global(int32_t acc) const {
    const float v = static_cast<float>(acc) * global_scale;
    const float lo = static_cast<float>(qmin - y_zp), hi = static_cast<float>(qmax - y_zp);
    return arith::rne(std::fmin(std::fmax(v, lo), hi)) + y_zp;
  }
};

// ONNX Runtime's fallback condition: the kernel is the input's spatial shape and no pad is set.
bool covers_whole_input(const WindowGeometry& g) {
  for (int d = 0; d < 3; ++d)
    if (g.kernel[d] != g.in[d] || g.pad_begin[d] != 0 || g.pad_end[d] != 0) return false;
  return true;
}

class QAveragePoolKernel final : public Kernel {
 public:
  QAveragePoolKernel(PoolPlan p, bool include_pad, DType t, AvgRequant rq)
      : p_(std::move(p)), include_pad_(include_pad), global_(covers_whole_input(p_.g)), t_(t), rq_(rq) {
    rq_.set_window(p_.g.in_size());
  }

  void run(const RunContext& ctx) const override {
    visit_quant8(t_, [&](auto tt) {
      using T = decltype(tt);
      const T* x = ctx.in(0).data<T>();
      T* y = ctx.out(0).data<T>();
      const WindowGeometry& g = p_.g;
      const int64_t in_hw = g.in[1] * g.in[2];
      const int64_t es = p_.stride();
      ctx.parallel->parallel_for(p_.batch * p_.channels, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t n = t / p_.channels, c = t % p_.channels;
          const T* xp = x + p_.in_base(n, c);
          T* yp = y + p_.out_base(n, c);
          if (global_) {
            // int32 like ONNX Runtime's accumulator (wraps only beyond 2^23 positions).
            int64_t acc = 0;
            for (int64_t i = 0; i < g.in_size(); ++i) acc += static_cast<int32_t>(xp[i * es]) - rq_.x_zp;
            yp[0] = static_cast<T>(rq_.quantize_global(static_cast<int32_t>(acc)));
            continue;
          }
          float sum = 0;
          auto begin = [&](int64_t) { sum = 0; };
          auto tap = [&](int64_t id, int64_t ih, int64_t iw) {
            sum += rq_.dequantize(xp[(id * in_hw + ih * g.in[2] + iw) * es]);
          };
          auto end = [&](int64_t o, int64_t valid, int64_t) {
            yp[o * es] = static_cast<T>(rq_.quantize(sum, include_pad_ ? g.kernel_size() : valid));
          };
          if (es != 1) {
            for_each_window(p_, begin, tap, end);
            continue;
          }
          // NCHW: rows at once, each output's sum from 0 in scan order, as above.
          static thread_local std::vector<float> acc;
          acc.resize(static_cast<size_t>(g.out[2]));
          auto rows = [&](int64_t oh, int64_t a, int64_t b, int64_t jh0, int64_t jh1) {
            float* r = acc.data();
            std::fill(r + a, r + b, 0.0f);
            const float xs = rq_.x_scale;
            const int32_t xz = rq_.x_zp;
            span_taps(p_, xp, oh, a, jh0, jh1, [&](const T* src, bool) {
              span_step(r + a, src, g.stride[2], b - a,
                        [xs, xz](float y, T v) { return y + static_cast<float>(static_cast<int32_t>(v) - xz) * xs; });
            });
            const int64_t count = include_pad_ ? g.kernel_size() : (jh1 - jh0) * g.kernel[2];
            for (int64_t ow = a; ow < b; ++ow) yp[oh * g.out[2] + ow] = static_cast<T>(rq_.quantize(r[ow], count));
          };
          for_each_window_rows(p_, begin, tap, end, rows);
        }
      });
      return 0;
    });
  }

 private:
  PoolPlan p_;
  bool include_pad_, global_;
  DType t_;
  AvgRequant rq_;
};

std::unique_ptr<Kernel> build_average_pool(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_dtype(0, {DType::Float32, DType::UInt8, DType::Int8}, "X");
  const ValueInfo& x = ctx.input(0);
  PoolPlan p = pool_plan(ctx, x.shape, true);
  const bool include_pad = ctx.attrs().get_int("count_include_pad", 0) != 0;
  if (x.layout == Layout::NHWC && (x.dtype != DType::Float32 || x.shape.size() != 4)) ctx.require_plain_layout();
  if (x.dtype == DType::Float32) {
    ctx.set_output(0, DType::Float32, pool_out_shape(p));
    if (x.layout == Layout::NHWC) {
      ctx.set_output_layout(0, Layout::NHWC);
      return std::make_unique<AveragePoolNhwcFloat>(std::move(p), include_pad);
    }
    return std::make_unique<AveragePoolFloat>(std::move(p), include_pad);
  }
  // Integer input: QLinearAveragePool with the input's own scale and zero point on both sides.
  if (x.quant.per_axis())
    fail("AveragePool on ", dtype_name(x.dtype),
         " needs a per-tensor quantized input, it is quantized per axis");
  for (int d = 0; d < 3; ++d)
    if (p.g.dilation[d] != 1)
      fail("AveragePool on ", dtype_name(x.dtype),
           " does not support dilations (QLinearAveragePool has none)");
  AvgRequant rq;
  if (x.quant.present()) {
    rq.x_scale = rq.y_scale = x.quant.scale[0];
    rq.x_zp = rq.y_zp = x.quant.zero_point[0];
  }
  rq.qmin = qmin(x.dtype);
  rq.qmax = qmax(x.dtype);
  ctx.set_output(0, x.dtype, pool_out_shape(p), x.quant);
  return std::make_unique<QAveragePoolKernel>(std::move(p), include_pad, x.dtype, rq);
}

// QLinearAveragePool's validated attributes and parameters (its build and its explain).
struct QAveragePoolSetup {
  PoolPlan plan;
  AvgRequant rq;
  bool include_pad = false;
  QuantParams y_quant;
};

QAveragePoolSetup qlinear_average_pool_setup(const BuildContext& ctx) {
  ctx.expect_inputs(4, 5);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "X");
  const ValueInfo& x = ctx.input(0);
  const bool channels_last = ctx.attrs().get_int("channels_last", 0) != 0;
  Shape nchw = x.shape;
  if (channels_last) {
    if (nchw.size() < 3) fail("X must have rank >= 3, has shape ", shape_str(nchw));
    nchw.insert(nchw.begin() + 1, nchw.back());
    nchw.pop_back();
  }
  if (ctx.attrs().has("dilations")) fail("QLinearAveragePool has no dilations attribute");
  QAveragePoolSetup s;
  s.plan = pool_plan(ctx, nchw, false);
  s.plan.channels_last = channels_last;
  QuantInput xq = read_quant_input(ctx, 1, 2, 0, "x", x.dtype);
  QuantInput yq = read_quant_input(ctx, 3, 4, 0, "y", x.dtype);
  s.rq.x_scale = xq.scale[0];
  s.rq.x_zp = xq.zero_point[0];
  s.rq.y_scale = yq.scale[0];
  s.rq.y_zp = yq.zero_point[0];
  s.rq.qmin = qmin(x.dtype);
  s.rq.qmax = qmax(x.dtype);
  s.rq.set_window(s.plan.g.in_size());
  s.include_pad = ctx.attrs().get_int("count_include_pad", 0) != 0;
  s.y_quant = to_quant_params(yq);
  return s;
}

std::unique_ptr<Kernel> build_qlinear_average_pool(BuildContext& ctx) {
  QAveragePoolSetup s = qlinear_average_pool_setup(ctx);
  ctx.set_output(0, ctx.input(0).dtype, pool_out_shape(s.plan), s.y_quant);
  return std::make_unique<QAveragePoolKernel>(std::move(s.plan), s.include_pad, ctx.input(0).dtype, s.rq);
}

// ---------------------------------------------------------------------------------------------
// Global pools: one window covering every spatial position.
// ---------------------------------------------------------------------------------------------

struct GlobalShape {
  int64_t planes = 0, size = 0;
  Shape out;
};

GlobalShape global_shape(const Shape& x) {
  if (x.size() < 3) fail("X must be [N, C, spatial...] with rank >= 3, has shape ", shape_str(x));
  GlobalShape g;
  g.planes = x[0] * x[1];
  g.size = 1;
  for (size_t i = 2; i < x.size(); ++i) g.size *= x[i];
  if (g.size == 0) fail("X has no spatial positions (shape ", shape_str(x), ")");
  g.out = {x[0], x[1]};
  g.out.resize(x.size(), 1);
  return g;
}

class GlobalAveragePoolKernel final : public Kernel {
 public:
  explicit GlobalAveragePoolKernel(GlobalShape s) : s_(std::move(s)) {}
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in(0).data<float>();
    float* y = ctx.out(0).data<float>();
    ctx.parallel->parallel_for(s_.planes, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        // Summed in double: the mean is then the float nearest the exact one in practice.
        double sum = 0;
        const float* xp = x + t * s_.size;
        for (int64_t i = 0; i < s_.size; ++i) sum += xp[i];
        y[t] = static_cast<float>(sum / static_cast<double>(s_.size));
      }
    });
  }

 private:
  GlobalShape s_;
};

class GlobalMaxPoolKernel final : public Kernel {
 public:
  GlobalMaxPoolKernel(GlobalShape s, DType t) : s_(std::move(s)), t_(t) {}
  void run(const RunContext& ctx) const override {
    if (t_ == DType::Float32)
      compute<float>(ctx);
    else if (t_ == DType::UInt8)
      compute<uint8_t>(ctx);
    else
      compute<int8_t>(ctx);
  }

 private:
  template <class T>
  void compute(const RunContext& ctx) const {
    const T* x = ctx.in(0).data<T>();
    T* y = ctx.out(0).data<T>();
    ctx.parallel->parallel_for(s_.planes, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const T* xp = x + t * s_.size;
        T best = xp[0];
        for (int64_t i = 1; i < s_.size; ++i)
          if (xp[i] > best) best = xp[i];
        y[t] = best;
      }
    });
  }
  GlobalShape s_;
  DType t_;
};

std::unique_ptr<Kernel> build_global_average_pool(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  if (is_quant8(x.dtype))
    fail("GlobalAveragePool is defined for float tensors; for ", dtype_name(x.dtype),
         " use com.microsoft QLinearGlobalAveragePool");
  ctx.expect_dtype(0, {DType::Float32}, "X");
  GlobalShape s = global_shape(x.shape);
  ctx.set_output(0, DType::Float32, s.out);
  return std::make_unique<GlobalAveragePoolKernel>(std::move(s));
}

std::unique_ptr<Kernel> build_global_max_pool(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_dtype(0, {DType::Float32, DType::UInt8, DType::Int8}, "X");
  const ValueInfo& x = ctx.input(0);
  GlobalShape s = global_shape(x.shape);
  ctx.set_output(0, x.dtype, s.out, x.dtype == DType::Float32 ? QuantParams{} : x.quant);
  return std::make_unique<GlobalMaxPoolKernel>(std::move(s), x.dtype);
}

// ---------------------------------------------------------------------------------------------
// explain: one output element of an 8-bit MaxPool, AveragePool or QLinearAveragePool, from its
// window's taps in the kernels' order (the same plan, the same arithmetic).
// ---------------------------------------------------------------------------------------------

struct WindowTap {
  std::vector<int64_t> index;  // in the input, model layout
  int32_t value = 0;
};

struct PoolElement {
  int64_t n = 0, c = 0;
  std::vector<WindowTap> taps;  // the valid taps, in scan order
  int64_t valid = 0, full = 0;  // valid taps; taps inside the padded extent
};

// The window of output element `idx` ([n, c, spatial…], or [n, spatial…, c] when channels_last).
PoolElement pool_element(const PoolPlan& p, const Tensor& x, const std::vector<int64_t>& idx) {
  checked_offset(idx, pool_out_shape(p));
  const WindowGeometry& g = p.g;
  const size_t r = static_cast<size_t>(g.spatial_rank);
  PoolElement e;
  e.n = idx[0];
  e.c = p.channels_last ? idx.back() : idx[1];
  std::array<int64_t, 3> o{0, 0, 0};
  for (size_t i = 0; i < r; ++i) o[3 - r + i] = idx[(p.channels_last ? 1 : 2) + i];
  const int64_t in_hw = g.in[1] * g.in[2];
  auto begin = [](int64_t) {};
  auto tap = [&](int64_t id, int64_t ih, int64_t iw) {
    WindowTap t;
    const std::array<int64_t, 3> at{id, ih, iw};
    t.index.push_back(e.n);
    if (!p.channels_last) t.index.push_back(e.c);
    for (size_t i = 0; i < r; ++i) t.index.push_back(at[3 - r + i]);
    if (p.channels_last) t.index.push_back(e.c);
    t.value = static_cast<int32_t>(x.as_int64(p.in_base(e.n, e.c) + (id * in_hw + ih * g.in[2] + iw) * p.stride()));
    e.taps.push_back(std::move(t));
  };
  auto end = [&](int64_t, int64_t valid, int64_t full) {
    e.valid = valid;
    e.full = full;
  };
  visit_window(p, o[0], o[1], o[2], 0, begin, tap, end);
  return e;
}

// An explanation of `op`'s element, opened with its window.
Explanation window_explanation(const char* op, const ExplainContext& ec, const PoolElement& e, const PoolPlan& p) {
  Explanation ex;
  ex.op_type = op;
  ex.node = ec.node.name;
  ex.index = ec.index;
  ex.details.push_back(cat("window: ", e.valid, " taps inside the input, ", e.full - e.valid,
                           " in the padding (kernel ", p.g.kernel_size(), " taps)"));
  const size_t shown = std::min<size_t>(e.taps.size(), 32);
  std::string list;
  for (size_t i = 0; i < shown; ++i)
    list += (i ? ", " : "") + cat("x", fmt_index(e.taps[i].index), " = ", e.taps[i].value);
  if (shown < e.taps.size()) list += cat(", … (", e.taps.size() - shown, " more)");
  ex.details.push_back(list);
  return ex;
}

Explanation explain_max_pool(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  const Tensor& x = *ec.inputs[0];
  if (!is_quant8(x.dtype())) fail("explain covers MaxPool on 8-bit tensors; this input is ", dtype_name(x.dtype()));
  build_max_pool(eb.ctx());
  const PoolPlan p = pool_plan(eb.ctx(), x.shape(), true);
  const PoolElement e = pool_element(p, x, ec.index);
  Explanation ex = window_explanation("MaxPool", ec, e, p);
  // The first valid tap, replaced by each strictly greater one; padding never wins.
  int32_t y = qmin(x.dtype());
  for (size_t i = 0; i < e.taps.size(); ++i)
    if (i == 0 || e.taps[i].value > y) y = e.taps[i].value;
  const std::vector<ExplainStep> steps = {
      {"maximum", cat("max over the ", e.valid, " taps inside the input (padding never wins)"), cat(y)}};
  ex.details.push_back("the same integers under every arithmetic (a maximum of the input's own levels)");
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm})
    ex.schemes.push_back({a, steps, y, static_cast<double>(y), ""});
  if (e.full > e.valid)
    ex.pitfalls.push_back({"padding read as 0", "max(taps, 0): a copy of the input padded with the byte 0",
                           cat(std::max(y, 0))});
  return ex;
}

// QLinearAveragePool: the window's dequantized sum in scan order, its count and the
// requantization (AvgRequant, as the kernel), or the global integer formula. (The integer
// AveragePool extension takes its scale from the input's quantization, which an explain does not
// see: it has no explain.)
Explanation explain_qlinear_average_pool(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  const Tensor& x = *ec.inputs[0];
  const QAveragePoolSetup s = qlinear_average_pool_setup(eb.ctx());  // the build's own checks
  const PoolPlan& p = s.plan;
  const AvgRequant& rq = s.rq;
  const bool include_pad = s.include_pad;
  const PoolElement e = pool_element(p, x, ec.index);

  Explanation ex = window_explanation("QLinearAveragePool", ec, e, p);
  ex.details.push_back(cat("x: scale ", fmt_float(rq.x_scale), ", zero point ", rq.x_zp, "; y: scale ", fmt_float(rq.y_scale),
                           ", zero point ", rq.y_zp, "; count_include_pad ", include_pad ? 1 : 0));
  std::vector<ExplainStep> steps;
  int32_t y;
  double pre;
  int64_t raw_sum = 0;
  for (const WindowTap& t : e.taps) raw_sum += t.value;
  if (covers_whole_input(p.g)) {
    int64_t acc = 0;
    for (const WindowTap& t : e.taps) acc += t.value - rq.x_zp;
    const float v = static_cast<float>(static_cast<int32_t>(acc)) * rq.global_scale;
    y = rq.quantize_global(static_cast<int32_t>(acc));
    pre = static_cast<double>(v) + rq.y_zp;
    ex.details.push_back("the kernel covers the whole input without padding: ONNX Runtime's global average (integer sum)");
    steps = {{"sum", "Σ (x − x_zp), int32", cat(acc)},
             {"multiplier", "fl32(x_s / fl32(y_s·N))", fmt_float(rq.global_scale)},
             {"scaled", "fl32(fl32(sum)·multiplier)", fmt_float(v)},
             {"output", "sat(rne(scaled) + y_zp)", cat(y)}};
  } else {
    float sum = 0;
    for (const WindowTap& t : e.taps) sum += rq.dequantize(t.value);
    const int64_t count = include_pad ? p.g.kernel_size() : e.valid;
    const float avg = sum / static_cast<float>(count);
    const float v = avg / rq.y_scale + static_cast<float>(rq.y_zp);
    y = rq.quantize(sum, count);
    pre = v;
    steps = {{"sum", "Σ fl32((x − x_zp)·x_s), in scan order", fmt_float(sum)},
             {"count", include_pad ? "the kernel's volume (count_include_pad 1)" : "the valid taps (count_include_pad 0)",
              cat(count)},
             {"average", "fl32(sum / count)", fmt_float(avg)},
             {"scaled", "fl32(fl32(average / y_s) + y_zp)", fmt_float(v)},
             {"output", "sat(rne(scaled))", cat(y)}};
    if (e.full > e.valid || (include_pad && p.g.kernel_size() != e.valid)) {
      const int64_t other = include_pad ? e.valid : p.g.kernel_size();
      ex.pitfalls.push_back({"count_include_pad the other way", cat("the sum divided by ", other, " instead"),
                             cat(rq.quantize(sum, other))});
    }
  }
  ex.details.push_back("ONNX Runtime's formula; the same under every scheme");
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm}) ex.schemes.push_back({a, steps, y, pre, ""});
  if (!e.taps.empty()) {
    const double mean = static_cast<double>(raw_sum) / static_cast<double>(e.valid);
    ex.pitfalls.push_back({"integer mean of the levels", "rne(Σ x / valid taps) (scales and zero points ignored)",
                           cat(std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(mean)), rq.qmin, rq.qmax))});
    ex.pitfalls.push_back({"truncated integer mean", "trunc(Σ x / valid taps)",
                           cat(std::clamp<int64_t>(static_cast<int64_t>(std::trunc(mean)), rq.qmin, rq.qmax))});
  }
  return ex;
}


}  // namespace

void register_pool(Registry& r) {
  {
    OpDef max_pool{"ai.onnx", "MaxPool", 1, 1000, build_max_pool};
    max_pool.layout_aware = true;
    max_pool.explain = explain_max_pool;
    r.add(max_pool);
  }
  {
    OpDef avg{"ai.onnx", "AveragePool", 1, 1000, build_average_pool};
    avg.layout_aware = true;
    r.add(avg);
  }
  r.add({"ai.onnx", "GlobalMaxPool", 1, 1000, build_global_max_pool});
  r.add({"ai.onnx", "GlobalAveragePool", 1, 1000, build_global_average_pool});
  {
    OpDef qavg{"com.microsoft", "QLinearAveragePool", 1, 1000, build_qlinear_average_pool};
    qavg.explain = explain_qlinear_average_pool;
    r.add(qavg);
  }
}

}  // namespace quint::ops
