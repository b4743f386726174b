// com.microsoft quantized element-wise and pooling operators (ONNX Runtime contrib ops):
// QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearConcat, QLinearSoftmax, QLinearLeakyRelu,
// QLinearSigmoid. Formulas are ONNX Runtime's
// x86 ones, measured bit for bit (shared/ARITHMETIC.md, docs/onnxruntime-semantics.md). Under a
// PyTorch arithmetic (SessionOptions::arith), QLinearAdd and QLinearGlobalAveragePool follow
// that engine's kernels instead (arith::AddRequantizer, arith::AvgPoolRequantizer);
// QLinearMul and QLinearConcat keep ONNX Runtime's formulas.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "arith/activation.h"
#include "arith/requant.h"
#include "common.h"
#include "explain_qops.h"
#include "explain_util.h"
#include "register.h"
#include "x86/lookup.h"
#include "x86/qadd.h"

namespace quint::ops {

namespace {

// Reads the scalar (scale, zero point) pair at inputs s, z; zero point type must be `t`.
QuantInput scalar_quant(const BuildContext& ctx, size_t s, size_t z, DType t, const char* what) {
  return read_quant_input(ctx, s, z, 0, what, ctx.has_input(z) ? t : DType::Undefined);
}

QuantParams params_of(const QuantInput& q) { return to_quant_params(q); }

// ---- QLinearAdd / QLinearMul ------------------------------------------------------------------

enum class BinaryKind { Add, Mul };

class QLinearBinaryKernel final : public Kernel {
 public:
  QLinearBinaryKernel(BinaryKind kind, DType t, Shape a, Shape b, Shape out, arith::AddRequantizer add,
                      float a_s, int32_t a_zp, float b_s, int32_t b_zp, float c_s, int32_t c_zp)
      : kind_(kind), t_(t), a_(std::move(a)), b_(std::move(b)), out_(std::move(out)), add_(add),
        a_zp_(a_zp), b_zp_(b_zp), c_zp_(c_zp) {
    // QLinearMul (ONNX Runtime's MLAS kernel): r = fl32(fl32(A_s·B_s) / C_s),
    // y = sat(cvt(fl32(fl32(fl32(p) · r) + C_zp))) with p = (A − A_zp)(B − B_zp) exact, and cvt
    // x86's conversion: round half to even, INT32_MIN beyond the int32 range (so a huge positive
    // product saturates to the type's minimum, as ONNX Runtime does). The zero point is added
    // before rounding.
    mul_scale_ = (a_s * b_s) / c_s;
  }

  void run(const RunContext& ctx) const override {
    visit_quant8(t_, [&](auto tag) {
      using T = decltype(tag);
      const T* a = ctx.in(0).data<T>();
      const T* b = ctx.in(3).data<T>();
      T* y = ctx.out(0).data<T>();
      const int32_t lo = qmin(t_), hi = qmax(t_);
      for_each_broadcast(out_, a_, b_, ctx.parallel,
                         [&](int64_t o, int64_t ao, int64_t bo, int64_t as, int64_t bs, int64_t n) {
                           for (int64_t k = 0; k < n; ++k) {
                             const int32_t av = a[ao + k * as], bv = b[bo + k * bs];
                             int32_t v;
                             if (kind_ == BinaryKind::Add) {
                               v = add_.apply(av, bv);
                             } else {
                               const float p = static_cast<float>((av - a_zp_) * (bv - b_zp_)) * mul_scale_;
                               v = arith::saturate(arith::cvt_ps2dq(p + static_cast<float>(c_zp_)), lo, hi);
                             }
                             y[o + k] = static_cast<T>(v);
                           }
                         });
      return 0;
    });
  }

 private:
  BinaryKind kind_;
  DType t_;
  Shape a_, b_, out_;
  arith::AddRequantizer add_;
  int32_t a_zp_, b_zp_, c_zp_;
  float mul_scale_ = 1;
};

// QLinearAdd of two tensors of one shape with ONNX Runtime's arithmetic, on the ISA's vector
// kernel (x86/qadd.h). Element-wise, so it works in whatever layout its inputs share.
class FastQAddKernel final : public Kernel {
 public:
  FastQAddKernel(x86::QAddKernel k, x86::QAddArgs args) : k_(k), args_(args) {}
  void run(const RunContext& ctx) const override {
    const int64_t n = args_.n;
    ctx.parallel->parallel_for(n, 16384, [&](int64_t b, int64_t e) {
      x86::QAddArgs a = args_;
      a.a = static_cast<const uint8_t*>(ctx.in(0).raw()) + b;
      a.b = static_cast<const uint8_t*>(ctx.in(3).raw()) + b;
      a.y = static_cast<uint8_t*>(ctx.out(0).raw()) + b;
      a.n = e - b;
      k_(a);
    });
  }

 private:
  x86::QAddKernel k_;
  x86::QAddArgs args_;
};

// QLinearMul on the ISA's vector kernel (x86/qadd.h) for operands of one shape (in whatever
// layout they share) and for a per-channel operand [1 or N, C, 1, 1] (MobileNetV3's
// squeeze-and-excitation scale; its memory is the same in either layout) over an image
// [N, C, H, W]: NHWC, one vector of C repeated over every pixel; NCHW, one value per plane. The
// product is symmetric (the operands may swap roles exactly: fl32(A_s·B_s) commutes), so either
// may be the small one.
class FastQMulKernel final : public Kernel {
 public:
  FastQMulKernel(x86::QMulKernel k, x86::QMulArgs args, bool swap, int64_t images, int64_t pixels, int64_t channels,
                 bool nhwc, bool per_image)
      : k_(k), args_(args), swap_(swap), nhwc_(nhwc), per_image_(per_image), images_(images), pixels_(pixels),
        channels_(channels) {}
  void run(const RunContext& ctx) const override {
    const auto* big = static_cast<const uint8_t*>(ctx.in(swap_ ? 3 : 0).raw());
    const auto* small = static_cast<const uint8_t*>(ctx.in(swap_ ? 0 : 3).raw());
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    if (channels_ == 0) {  // one shape: a flat range
      ctx.parallel->parallel_for(args_.n, 16384, [&](int64_t b, int64_t e) {
        x86::QMulArgs a = args_;
        a.a = big + b;
        a.b = small + b;
        a.y = y + b;
        a.n = e - b;
        k_(a);
      });
      return;
    }
    // Rows per image: its pixels (NHWC: each times the image's vector of the small operand) or
    // its channel planes (NCHW: each times one value of it); split where images change.
    const int64_t units = nhwc_ ? pixels_ : channels_, len = nhwc_ ? channels_ : pixels_;
    ctx.parallel->parallel_for(images_ * units, nhwc_ ? 64 : 4, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e;) {
        const int64_t img = p / units, end = std::min(e, (img + 1) * units);
        x86::QMulArgs a = args_;
        a.a = big + p * len;
        a.y = y + p * len;
        a.n = len;
        a.rows = end - p;
        a.lda = a.ldy = len;
        a.b = small + (per_image_ ? img * channels_ : 0) + (nhwc_ ? 0 : p - img * units);
        a.ldb = nhwc_ ? 0 : 1;
        a.b_scalar = !nhwc_;
        k_(a);
        p = end;
      }
    });
  }

 private:
  x86::QMulKernel k_;
  x86::QMulArgs args_;
  bool swap_, nhwc_, per_image_;  // per_image: the small operand has a vector per image, not one
  int64_t images_, pixels_, channels_;  // channels 0: same shapes
};

std::unique_ptr<Kernel> build_fast_qmul(BuildContext& ctx, DType t, const QuantInput& aq, const QuantInput& bq,
                                        const QuantInput& cq) {
  const x86::QMulKernel fast = x86::qmul_kernel(x86::resolve_isa(ctx.options().isa));
  if (!fast) return nullptr;
  const ValueInfo &a = ctx.input(0), &b = ctx.input(3);
  x86::QMulArgs args;
  args.r = (aq.scale[0] * bq.scale[0]) / cq.scale[0];
  args.c_zp = static_cast<float>(cq.zero_point[0]);
  args.is_signed = t == DType::Int8;
  if (a.shape == b.shape && a.layout == b.layout) {
    args.a_zp = aq.zero_point[0];
    args.b_zp = bq.zero_point[0];
    args.n = shape_numel(a.shape);
    if (a.layout == Layout::NHWC) ctx.set_output_layout(0, Layout::NHWC);
    return std::make_unique<FastQMulKernel>(fast, args, false, 0, 0, 0, false, false);
  }
  // One operand [N, C, H, W] (either layout), the other [1 or N, C, 1, 1].
  auto per_channel = [](const ValueInfo& big, const ValueInfo& small) {
    const Shape &x = big.shape, &s = small.shape;
    return x.size() == 4 && s.size() == 4 && (s[0] == 1 || s[0] == x[0]) && s[1] == x[1] && s[2] == 1 && s[3] == 1;
  };
  const bool swap = !per_channel(a, b);
  if (swap && !per_channel(b, a)) return nullptr;
  const ValueInfo &big = swap ? b : a, &small = swap ? a : b;
  args.a_zp = (swap ? bq : aq).zero_point[0];
  args.b_zp = (swap ? aq : bq).zero_point[0];
  const bool nhwc = big.layout == Layout::NHWC;
  if (nhwc) ctx.set_output_layout(0, Layout::NHWC);
  return std::make_unique<FastQMulKernel>(fast, args, swap, big.shape[0], big.shape[2] * big.shape[3], big.shape[1],
                                          nhwc, small.shape[0] != 1);
}

template <BinaryKind Kind>
std::unique_ptr<Kernel> build_qlinear_binary(BuildContext& ctx) {
  ctx.expect_inputs(7, 8);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "A");
  const DType t = ctx.input(0).dtype;
  if (ctx.input(3).dtype != t)
    fail("B must have the type of A (", dtype_name(t), "), got ", dtype_name(ctx.input(3).dtype));
  QuantInput aq = scalar_quant(ctx, 1, 2, t, "A");
  QuantInput bq = scalar_quant(ctx, 4, 5, t, "B");
  QuantInput cq = scalar_quant(ctx, 6, 7, t, "C");
  Shape out = broadcast_shapes(ctx.input(0).shape, ctx.input(3).shape);
  // QLinearAdd under a PyTorch arithmetic: that engine's add (QNNPACK's fixed-point kernel only
  // for uint8 inputs of one shape, as torch chooses). QLinearMul ignores it.
  const Arith arith = Kind == BinaryKind::Add ? ctx.options().arith : Arith::Onnx;
  // ONNX Runtime's add streams one input and folds the other into its constant; which one
  // depends on how its broadcaster splits the shapes (arith::onnx_add_a_is_span_scalar).
  const bool a_span_scalar = arith::onnx_add_a_is_span_scalar(ctx.input(0).shape, ctx.input(3).shape);
  arith::AddRequantizer add(arith, aq.scale[0], aq.zero_point[0], bq.scale[0], bq.zero_point[0], cq.scale[0],
                            cq.zero_point[0], t, ctx.input(0).shape == ctx.input(3).shape, a_span_scalar);
  ctx.set_output(0, t, out, params_of(cq));
  const bool same_shape = ctx.input(0).shape == ctx.input(3).shape;
  const x86::QAddKernel fast = x86::qadd_kernel(x86::resolve_isa(ctx.options().isa));
  if (Kind == BinaryKind::Add && same_shape && !a_span_scalar && fast &&
      add.kernel() == arith::AddRequantizer::Kernel::OnnxFma && ctx.input(0).layout == ctx.input(3).layout) {
    const arith::AddRequant r(aq.scale[0], aq.zero_point[0], bq.scale[0], bq.zero_point[0], cq.scale[0],
                              cq.zero_point[0], t);
    x86::QAddArgs args;
    args.n = shape_numel(out);
    args.ra = r.ra;
    args.rb = r.rb;
    args.k = r.k;
    args.lo = r.qmin;
    args.hi = r.qmax;
    args.is_signed = t == DType::Int8;
    if (ctx.input(0).layout == Layout::NHWC) ctx.set_output_layout(0, Layout::NHWC);
    return std::make_unique<FastQAddKernel>(fast, args);
  }
  if constexpr (Kind == BinaryKind::Mul) {
    if (auto k = build_fast_qmul(ctx, t, aq, bq, cq)) return k;
  }
  // The general kernel broadcasts in the model's layout.
  if (ctx.any_input_nhwc()) ctx.require_plain_layout();
  return std::make_unique<QLinearBinaryKernel>(Kind, t, ctx.input(0).shape, ctx.input(3).shape, out, add,
                                               aq.scale[0], aq.zero_point[0], bq.scale[0], bq.zero_point[0],
                                               cq.scale[0], cq.zero_point[0]);
}

// ---- QLinearGlobalAveragePool -----------------------------------------------------------------
// acc = Σ (x − x_zp) over the spatial positions (int32), s = fl32(x_s / fl32(y_s · N)),
// y = sat(rne(fl32(fl32(acc) · s)) + y_zp). channels_last=1 reads NHWC and writes [N,1,1,C].
// PyTorch's arithmetics: arith::AvgPoolRequantizer (its input sum is Σ x, zero point included).

class QLinearGlobalAvgPoolKernel final : public Kernel {
 public:
  QLinearGlobalAvgPoolKernel(DType t, int64_t n, int64_t c, int64_t spatial, bool channels_last,
                             arith::AvgPoolRequantizer avg)
      : t_(t), n_(n), c_(c), spatial_(spatial), channels_last_(channels_last), avg_(std::move(avg)) {}

  int64_t macs() const override { return n_ * c_ * spatial_; }

  void run(const RunContext& ctx) const override {
    visit_quant8(t_, [&](auto tag) {
      using T = decltype(tag);
      const T* x = ctx.in(0).data<T>();
      T* y = ctx.out(0).data<T>();
      ctx.parallel->parallel_for(n_ * c_, 8, [&](int64_t b, int64_t e) {
        static thread_local std::vector<int32_t> sums;
        if (channels_last_) {
          // Whole rows of channels at a time (contiguous, vectorized), per image in the range.
          for (int64_t nc = b; nc < e;) {
            const int64_t n = nc / c_, c0 = nc % c_, c1 = std::min(c_, c0 + (e - nc));
            sums.assign(static_cast<size_t>(c1 - c0), 0);
            int32_t* __restrict s = sums.data();
            for (int64_t i = 0; i < spatial_; ++i) {
              const T* __restrict row = x + (n * spatial_ + i) * c_ + c0;
              for (int64_t c = 0; c < c1 - c0; ++c) s[c] += static_cast<int32_t>(row[c]);
            }
            avg_.apply_all(s, c1 - c0, y + n * c_ + c0);
            nc += c1 - c0;
          }
          return;
        }
        sums.resize(static_cast<size_t>(e - b));
        for (int64_t nc = b; nc < e; ++nc) {
          int32_t sum = 0;  // Σ x: |sum| <= 255 · 2^23 fits int32
          const T* p = x + nc * spatial_;
          for (int64_t i = 0; i < spatial_; ++i) sum += static_cast<int32_t>(p[i]);
          sums[static_cast<size_t>(nc - b)] = sum;
        }
        avg_.apply_all(sums.data(), e - b, y + b);
      });
      return 0;
    });
  }

 private:
  DType t_;
  int64_t n_, c_, spatial_;
  bool channels_last_;
  arith::AvgPoolRequantizer avg_;
};

std::unique_ptr<Kernel> build_qlinear_global_avg_pool(BuildContext& ctx) {
  ctx.expect_inputs(5, 5);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "X");
  const DType t = ctx.input(0).dtype;
  const Shape& x = ctx.input(0).shape;
  if (x.size() < 3) fail("X must have rank >= 3, has shape ", shape_str(x));
  const int64_t channels_last = ctx.attrs().get_int("channels_last", 0);
  if (channels_last != 0 && channels_last != 1) fail("channels_last must be 0 or 1, got ", channels_last);
  // channels_last=1 already names the model's shape [N, spatial..., C]; an NHWC-stored input
  // (channels moved behind the model's dims 2..3) would be read with the wrong strides.
  if (channels_last && ctx.input(0).layout == Layout::NHWC) ctx.require_plain_layout();
  QuantInput xq = scalar_quant(ctx, 1, 2, t, "x");
  QuantInput yq = scalar_quant(ctx, 3, 4, t, "y");
  const int64_t n = x[0];
  const int64_t c = channels_last ? x.back() : x[1];
  int64_t spatial = 1;
  std::vector<int64_t> window;
  for (size_t i = channels_last ? 1 : 2; i < (channels_last ? x.size() - 1 : x.size()); ++i) {
    spatial *= x[i];
    window.push_back(x[i]);
  }
  // Σ of spatial values of |x − zp| <= 255 stays exact in int32 for up to 2^23 positions.
  if (spatial > (int64_t{1} << 23)) fail("spatial size ", spatial, " is too large for an exact int32 sum");
  Shape out(x.size(), 1);
  out[0] = n;
  if (channels_last) out.back() = c;
  else out[1] = c;
  // Under onednn/fbgemm PyTorch's input is taken to be channels-last, as a quantized conv or
  // add leaves it (arith/requant.h).
  arith::AvgPoolRequantizer avg(ctx.options().arith, xq.scale[0], xq.zero_point[0], yq.scale[0], yq.zero_point[0],
                                window, t);
  ctx.set_output(0, t, out, params_of(yq));
  // An NHWC input (a fast convolution chain) is read channels-last; the [N, C, 1, 1] output is
  // the same bytes in either layout.
  const bool read_nhwc = channels_last != 0 || (x.size() == 4 && ctx.input(0).layout == Layout::NHWC);
  return std::make_unique<QLinearGlobalAvgPoolKernel>(t, n, c, spatial, read_nhwc, std::move(avg));
}

// ---- QLinearConcat ----------------------------------------------------------------------------
// Inputs: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per tensor. An input whose scale
// and zero point equal the output's is copied; any other is requantized through a 256-entry
// table: y = sat(rne(fl32(fl32(x_s · (x − x_zp)) / y_s)) + y_zp).

class QLinearConcatKernel final : public Kernel {
 public:
  QLinearConcatKernel(std::vector<int64_t> sizes, int64_t outer, std::vector<std::vector<uint8_t>> tables,
                      x86::LookupKernel lookup)
      : sizes_(std::move(sizes)), outer_(outer), tables_(std::move(tables)), lookup_(lookup) {}

  void run(const RunContext& ctx) const override {
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    int64_t total = 0;
    for (int64_t s : sizes_) total += s;
    int64_t col = 0;
    for (size_t k = 0; k < sizes_.size(); ++k) {
      const auto* x = static_cast<const uint8_t*>(ctx.in(2 + 3 * k).raw());
      const int64_t len = sizes_[k];
      const std::vector<uint8_t>& table = tables_[k];
      for (int64_t o = 0; o < outer_; ++o) {
        const uint8_t* src = x + o * len;
        uint8_t* dst = y + o * total + col;
        if (table.empty()) {
          std::copy(src, src + len, dst);
        } else if (lookup_) {
          lookup_(src, len, table.data(), dst);
        } else {
          for (int64_t i = 0; i < len; ++i) dst[i] = table[src[i]];
        }
      }
      col += len;
    }
  }

 private:
  std::vector<int64_t> sizes_;  // elements per outer index, per input
  int64_t outer_;
  std::vector<std::vector<uint8_t>> tables_;  // indexed by the raw byte; empty: plain copy
  x86::LookupKernel lookup_;                  // nullptr: the scalar loop
};

std::unique_ptr<Kernel> build_qlinear_concat(BuildContext& ctx) {
  if (ctx.num_inputs() < 5 || (ctx.num_inputs() - 2) % 3 != 0)
    fail("expects Y_scale, Y_zero_point and then (X, X_scale, X_zero_point) triplets; has ", ctx.num_inputs(),
         " inputs");
  ctx.expect_dtype(2, {DType::UInt8, DType::Int8}, "X[0]");
  const DType t = ctx.input(2).dtype;
  QuantInput yq = scalar_quant(ctx, 0, 1, t, "Y");
  const Shape& first = ctx.input(2).shape;
  const int64_t rank = static_cast<int64_t>(first.size());
  if (rank == 0) fail("inputs must have rank >= 1");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis"), rank);
  Shape out = first;
  out[axis] = 0;
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= first[i];
  std::vector<int64_t> sizes;
  std::vector<std::vector<uint8_t>> tables;
  const int32_t lo = qmin(t), hi = qmax(t);
  for (size_t k = 2; k < ctx.num_inputs(); k += 3) {
    const ValueInfo& x = ctx.input(k);
    if (x.dtype != t) fail("input ", k, " is ", dtype_name(x.dtype), "; all inputs must be ", dtype_name(t));
    if (x.shape.size() != first.size()) fail("input ", k, " has rank ", x.shape.size(), ", expected ", rank);
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && x.shape[d] != first[d])
        fail("input ", k, " has shape ", shape_str(x.shape), " which differs from ", shape_str(first),
             " outside axis ", axis);
    out[axis] += x.shape[axis];
    sizes.push_back(shape_numel(x.shape) / std::max<int64_t>(1, outer));
    QuantInput xq = scalar_quant(ctx, k + 1, k + 2, t, "X");
    std::vector<uint8_t> table;
    if (xq.scale[0] != yq.scale[0] || xq.zero_point[0] != yq.zero_point[0]) {
      table.resize(256);
      for (int raw = 0; raw < 256; ++raw) {
        const int32_t q = t == DType::Int8 ? static_cast<int8_t>(raw) : raw;
        const float real = static_cast<float>(q - xq.zero_point[0]) * xq.scale[0];
        const int32_t v = arith::quantize_value(real, yq.scale[0], yq.zero_point[0], lo, hi);
        table[static_cast<size_t>(raw)] = static_cast<uint8_t>(v);
      }
    }
    tables.push_back(std::move(table));
  }
  ctx.set_output(0, t, out, params_of(yq));
  // Channels of NHWC inputs (a convolution chain's branches, as in GoogLeNet and Inception): in
  // memory the channel axis is the last, so every pixel is the concatenation of the inputs'
  // channel rows. Anything else in the model's layout.
  bool any_nhwc = false, all_nhwc = true;
  for (size_t k = 2; k < ctx.num_inputs(); k += 3) {
    any_nhwc = any_nhwc || ctx.input(k).layout == Layout::NHWC;
    all_nhwc = all_nhwc && ctx.input(k).layout == Layout::NHWC;
  }
  if (any_nhwc) {
    if (!all_nhwc || rank != 4 || axis != 1) ctx.require_plain_layout();
    outer = first[0] * first[2] * first[3];
    sizes.clear();
    for (size_t k = 2; k < ctx.num_inputs(); k += 3) sizes.push_back(ctx.input(k).shape[1]);
    ctx.set_output_layout(0, Layout::NHWC);
  }
  return std::make_unique<QLinearConcatKernel>(sizes, outer, std::move(tables),
                                               x86::lookup_kernel(x86::resolve_isa(ctx.options().isa)));
}

// QLinearSoftmax as ONNX Runtime 1.30 computes it (measured bit for bit; its published source
// reads the same, with int8 saturation as fixed in onnxruntime#29727). It never looks at
// x_zero_point (softmax ignores shifts) and does not dequantize: with s = x_scale and n the row
// length,
//   shift = max(0, ln(FLT_MAX / n) − 5) / s      (the ratio and ln in float, the rest double)
//   E[v]  = fl32(exp((v − 255 + shift) · s))                   (double exp, v = 0 … 255)
// For a uint8 row with maximum m, element x reads E[255 − m + x]; for int8, E[255 − m + x] as
// well (ONNX Runtime indexes its table by uint8(127 − m + x) with the entries stored at
// uint8(v − 128): the same entry). Then, all in float32,
//   S = Σ E (in order),  Y = floor(1 / y_scale),  r = nearbyint(E·Y / S) + y_zp
// and the output is r saturated to the type. E·Y overflows to inf in rows of one element (and
// for Y far above 256 in short rows); the conversions then follow x86: float → int32 gives
// INT32_MIN out of range (int8: INT32_MIN + y_zp, which wraps to a large positive value, so 127,
// for a negative y_zp, and saturates to −128 otherwise), and float → uint32 goes through int64,
// whose out-of-range value has zero low bits (uint8: 0 + y_zp).
// Opset < 13: rows are the dims from `axis` on (coerced 2-D); from 13 one axis, other dims apart.
class QLinearSoftmaxKernel final : public Kernel {
  // nearbyint(E·Y/S) + y_zp saturated, with the conversions described above (no undefined casts).
  uint8_t int8_level(float v) const {
    const int32_t c = v >= -2147483648.0f && v < 2147483648.0f ? static_cast<int32_t>(v) : INT32_MIN;
    const int32_t r = static_cast<int32_t>(static_cast<uint32_t>(c) + static_cast<uint32_t>(y_zp_));
    return static_cast<uint8_t>(static_cast<int8_t>(std::clamp(r, -128, 127)));
  }
  uint8_t uint8_level(float v) const {
    const uint32_t c = v >= -9.223372e18f && v < 9.223372e18f ? static_cast<uint32_t>(static_cast<int64_t>(v)) : 0u;
    const uint32_t r = c + static_cast<uint32_t>(y_zp_);
    return static_cast<uint8_t>(std::min(r, 255u));
  }

 public:
  QLinearSoftmaxKernel(bool s8, int64_t outer, int64_t n, int64_t inner, float x_scale, float y_scale, int32_t y_zp)
      : s8_(s8), outer_(outer), n_(n), inner_(inner), y_zp_(y_zp) {
    y_scale_ = std::floor(1.0f / y_scale);
    if (n <= 0) return;  // empty rows: nothing to compute
    // ln in float precision, of a float ratio (ONNX Runtime calls log on a float expression).
    const float ln_ratio = std::log(std::numeric_limits<float>::max() / static_cast<float>(n));
    const double shift = std::max(0.0, static_cast<double>(ln_ratio) - 5.0) / x_scale;
    for (int v = 0; v < 256; ++v)
      table_[static_cast<size_t>(v)] =
          static_cast<float>(std::exp((static_cast<double>(v) - 255 + shift) * static_cast<double>(x_scale)));
  }
  void run(const RunContext& ctx) const override {
    const auto* x = static_cast<const uint8_t*>(ctx.in(0).raw());
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    const int64_t n = n_, inner = inner_;
    if (n == 0) return;
    ctx.parallel->parallel_for(outer_ * inner, std::max<int64_t>(1, 4096 / n), [&](int64_t b, int64_t e) {
      for (int64_t lane = b; lane < e; ++lane) {
        const int64_t base = (lane / inner) * n * inner + lane % inner;
        // Table positions: 255 − max + x, in the order-preserving unsigned view of the bytes.
        auto level = [&](int64_t j) { return static_cast<int>(x[base + j * inner] ^ (s8_ ? 0x80 : 0)); };
        int top = 0;
        for (int64_t j = 0; j < n; ++j) top = std::max(top, level(j));
        const float* t = table_.data() + (255 - top);
        float sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += t[level(j)];
        for (int64_t j = 0; j < n; ++j) {
          const float v = std::nearbyint(t[level(j)] * y_scale_ / sum);
          y[base + j * inner] = s8_ ? int8_level(v) : uint8_level(v);
        }
      }
    });
  }

 private:
  bool s8_;
  int64_t outer_, n_, inner_;
  int32_t y_zp_;
  float y_scale_ = 1;
  std::array<float, 256> table_{};
};

std::unique_ptr<Kernel> build_qlinear_softmax(BuildContext& ctx) {
  ctx.expect_inputs(4, 5);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "X");
  const ValueInfo& x = ctx.input(0);
  const DType t = x.dtype;
  const QuantInput xq = scalar_quant(ctx, 1, 2, t, "X");
  const QuantInput yq = scalar_quant(ctx, 3, 4, t, "Y");
  if (!ctx.attrs().has("opset")) fail("the attribute 'opset' (the Softmax's opset) is required");
  const int64_t opset = ctx.attrs().get_int("opset", 13);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) fail("the input must have rank >= 1, it is a scalar");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", opset < 13 ? 1 : -1), rank);
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.shape[static_cast<size_t>(i)];
  if (opset < 13) {
    for (int64_t i = axis; i < rank; ++i) n *= x.shape[static_cast<size_t>(i)];
  } else {
    n = x.shape[static_cast<size_t>(axis)];
    for (int64_t i = axis + 1; i < rank; ++i) inner *= x.shape[static_cast<size_t>(i)];
  }
  ctx.set_output(0, t, x.shape, params_of(yq));
  return std::make_unique<QLinearSoftmaxKernel>(t == DType::Int8, outer, n, inner, xq.scale[0], yq.scale[0],
                                                yq.zero_point[0]);
}

// ---- quint TableLookup --------------------------------------------------------------------------
// y = table[x] for an 8-bit x (the table indexed by the raw byte: int8 −128 is entry 128) with 256
// constant entries of the output type; optional y_scale and y_zero_point give the output its
// quantization. Internal: the planner's lookup-table fusion writes it for a DequantizeLinear →
// float element-wise chain → QuantizeLinear (graph_passes.cc), with the table computed by the
// chain's own kernels. Element-wise, so it works in its input's layout.
class TableLookupKernel final : public Kernel {
 public:
  TableLookupKernel(std::array<uint8_t, 256> table, x86::LookupKernel fast) : table_(table), fast_(fast) {}
  void run(const RunContext& ctx) const override {
    const auto* x = static_cast<const uint8_t*>(ctx.in(0).raw());
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    ctx.parallel->parallel_for(ctx.in(0).numel(), 32768, [&](int64_t b, int64_t e) {
      if (fast_) return fast_(x + b, e - b, table_.data(), y + b);
      for (int64_t i = b; i < e; ++i) y[i] = table_[x[i]];
    });
  }

 private:
  std::array<uint8_t, 256> table_;
  x86::LookupKernel fast_;
};

std::unique_ptr<Kernel> build_table_lookup(BuildContext& ctx) {
  ctx.expect_inputs(2, 4);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "X");
  ctx.expect_dtype(1, {DType::UInt8, DType::Int8}, "table");
  const Tensor* table = ctx.input(1).constant;
  if (!table) fail("the table must be a constant");
  if (table->numel() != 256) fail("the table must have 256 entries, has ", table->numel());
  const DType t = table->dtype();
  QuantParams q;
  if (ctx.has_input(2)) q = to_quant_params(read_quant_input(ctx, 2, 3, 0, "y", ctx.has_input(3) ? t : DType::Undefined));
  ctx.set_output(0, t, ctx.input(0).shape, q);
  if (ctx.input(0).layout == Layout::NHWC) ctx.set_output_layout(0, Layout::NHWC);
  std::array<uint8_t, 256> entries;
  std::memcpy(entries.data(), table->raw(), 256);
  return std::make_unique<TableLookupKernel>(entries, x86::lookup_kernel(x86::resolve_isa(ctx.options().isa)));
}

// One element: its input byte and the table entry (the same under every arithmetic: the chain
// the table was made of is float, computed as ONNX Runtime does).
Explanation explain_table_lookup(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  build_table_lookup(eb.ctx());
  const Tensor& x = *ec.inputs[0];
  const Tensor& table = *ec.inputs[1];
  const int64_t off = checked_offset(ec.index, x.shape());
  const uint8_t raw = static_cast<const uint8_t*>(x.raw())[off];
  const int64_t y = table.as_int64(raw);
  Explanation e;
  e.op_type = "TableLookup";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("x", fmt_index(ec.index), " = ", x.as_int64(off), " (", dtype_name(x.dtype()), "): table entry ",
                          static_cast<int>(raw)));
  e.details.push_back("the table holds, for each input byte, the integer of the DequantizeLinear -> float element-wise "
                      "operators -> QuantizeLinear chain it replaces (quint info lists the chain; --qdq float runs it "
                      "node by node)");
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm})
    e.schemes.push_back({a, {{"table entry", cat("table[", static_cast<int>(raw), "]"), cat(y)}}, y, static_cast<double>(y), ""});
  return e;
}

// ---- QLinearLeakyRelu / QLinearSigmoid --------------------------------------------------------
// ONNX Runtime's lookup operators (its quantizer writes them for LeakyRelu and Sigmoid in
// QOperator models; its QDQ fusion makes them of DequantizeLinear → LeakyRelu / Sigmoid →
// QuantizeLinear). Each is a 256-entry table indexed by the input byte i (as T):
//   d = fl32(x_s · (i − x_zp)),  f = LeakyRelu: d ≥ 0 ? d : fl32(alpha · d)
//                                    Sigmoid:   MLAS's logistic (arith::ort_sigmoid)
//   table[i] = sat(rne(fl32(f / y_s)) + y_zp)      (ONNX Runtime's QuantizeLinear)
// the same float computation as the unit's own nodes, so quint's table fusion of that unit
// (graph_passes.cc) gives the same integers.
enum class LookupFn { LeakyRelu, Sigmoid };

struct LookupEntry {
  float d = 0, f = 0;
  int32_t y = 0;
};

struct LookupParams {
  LookupFn fn = LookupFn::LeakyRelu;
  DType t = DType::UInt8;
  float alpha = 0.01f, x_s = 1, y_s = 1;
  int32_t x_zp = 0, y_zp = 0;

  LookupEntry entry(uint8_t byte) const {
    const int32_t x = t == DType::Int8 ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(byte);
    LookupEntry e;
    e.d = x_s * static_cast<float>(x - x_zp);
    e.f = fn == LookupFn::Sigmoid ? arith::ort_sigmoid(e.d) : (e.d >= 0.0f ? e.d : alpha * e.d);
    e.y = arith::quantize_value(e.f, y_s, y_zp, qmin(t), qmax(t));
    return e;
  }
};

LookupParams read_lookup_params(BuildContext& ctx, LookupFn fn) {
  ctx.expect_inputs(4, 5);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "X");
  LookupParams p;
  p.fn = fn;
  p.t = ctx.input(0).dtype;
  const QuantInput xq = scalar_quant(ctx, 1, 2, p.t, "X");
  const QuantInput yq = scalar_quant(ctx, 3, 4, p.t, "Y");
  p.x_s = xq.scale[0];
  p.x_zp = xq.zero_point[0];
  p.y_s = yq.scale[0];
  p.y_zp = yq.zero_point[0];
  if (fn == LookupFn::LeakyRelu) {
    p.alpha = ctx.attrs().get_float("alpha", 0.01f);
    if (!std::isfinite(p.alpha)) fail("alpha must be finite, got ", p.alpha);
  }
  ctx.set_output(0, p.t, ctx.input(0).shape, params_of(yq));
  if (ctx.input(0).layout == Layout::NHWC) ctx.set_output_layout(0, Layout::NHWC);
  return p;
}

template <LookupFn Fn>
std::unique_ptr<Kernel> build_qlinear_lookup(BuildContext& ctx) {
  const LookupParams p = read_lookup_params(ctx, Fn);
  std::array<uint8_t, 256> table;
  for (int i = 0; i < 256; ++i) table[static_cast<size_t>(i)] = static_cast<uint8_t>(p.entry(static_cast<uint8_t>(i)).y);
  return std::make_unique<TableLookupKernel>(table, x86::lookup_kernel(x86::resolve_isa(ctx.options().isa)));
}

// One element: its dequantized value, the float function and the quantization (ONNX Runtime's
// arithmetic; PyTorch has no such operator, so every scheme shows the same steps).
template <LookupFn Fn>
Explanation explain_qlinear_lookup(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  const LookupParams p = read_lookup_params(eb.ctx(), Fn);
  const Tensor& x = *ec.inputs[0];
  const int64_t off = checked_offset(ec.index, x.shape());
  const uint8_t raw = static_cast<const uint8_t*>(x.raw())[off];
  const LookupEntry e = p.entry(raw);
  const char* name = Fn == LookupFn::Sigmoid ? "QLinearSigmoid" : "QLinearLeakyRelu";
  Explanation ex;
  ex.op_type = name;
  ex.node = ec.node.name;
  ex.index = ec.index;
  ex.details.push_back(cat("x", fmt_index(ec.index), " = ", x.as_int64(off), " (", dtype_name(x.dtype()),
                           "), x_scale ", fmt_float(p.x_s), ", x_zero_point ", p.x_zp, "; y_scale ", fmt_float(p.y_s),
                           ", y_zero_point ", p.y_zp));
  ex.details.push_back(cat(name, " is ONNX Runtime's 256-entry table of DequantizeLinear -> ",
                           Fn == LookupFn::Sigmoid ? "Sigmoid (MLAS's logistic)" : cat("LeakyRelu (alpha ", fmt_float(p.alpha), ")"),
                           " -> QuantizeLinear, indexed by the input byte"));
  const float v = e.f / p.y_s;
  std::vector<ExplainStep> steps = {
      {"dequantized", "fl32(x_scale * (x - x_zero_point))", fmt_float(e.d)},
      {Fn == LookupFn::Sigmoid ? "sigmoid" : "leaky relu",
       Fn == LookupFn::Sigmoid ? "MLAS logistic (ONNX Runtime's float Sigmoid)" : "d >= 0 ? d : fl32(alpha * d)", fmt_float(e.f)},
      {"scaled", "fl32(f / y_scale)", fmt_float(v)},
      {"output", "sat(rne(scaled) + y_zero_point)", cat(e.y)}};
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm})
    ex.schemes.push_back({a, steps, e.y, static_cast<double>(v) + p.y_zp, ""});
  return ex;
}

}  // namespace

void register_qlinear_elementwise(Registry& r) {
  {
    OpDef lookup{"quint", "TableLookup", 1, 1000, build_table_lookup};
    lookup.layout_aware = true;
    lookup.explain = explain_table_lookup;
    r.add(lookup);
  }
  {
    OpDef add{"com.microsoft", "QLinearAdd", 1, 1000, build_qlinear_binary<BinaryKind::Add>};
    add.layout_aware = true;
    add.explain = explain_qlinear_add;
    r.add(add);
  }
  {
    OpDef mul{"com.microsoft", "QLinearMul", 1, 1000, build_qlinear_binary<BinaryKind::Mul>};
    mul.layout_aware = true;
    mul.explain = explain_qlinear_mul;
    r.add(mul);
  }
  {
    OpDef gap{"com.microsoft", "QLinearGlobalAveragePool", 1, 1000, build_qlinear_global_avg_pool};
    gap.layout_aware = true;
    gap.explain = explain_qlinear_global_avg_pool;
    r.add(gap);
  }
  {
    OpDef concat{"com.microsoft", "QLinearConcat", 1, 1000, build_qlinear_concat};
    concat.layout_aware = true;
    concat.explain = explain_qlinear_concat;
    r.add(concat);
  }
  r.add({"com.microsoft", "QLinearSoftmax", 1, 1000, build_qlinear_softmax});
  {
    OpDef leaky{"com.microsoft", "QLinearLeakyRelu", 1, 1000, build_qlinear_lookup<LookupFn::LeakyRelu>};
    leaky.layout_aware = true;
    leaky.explain = explain_qlinear_lookup<LookupFn::LeakyRelu>;
    r.add(leaky);
    OpDef sigmoid{"com.microsoft", "QLinearSigmoid", 1, 1000, build_qlinear_lookup<LookupFn::Sigmoid>};
    sigmoid.layout_aware = true;
    sigmoid.explain = explain_qlinear_lookup<LookupFn::Sigmoid>;
    r.add(sigmoid);
  }
}

}  // namespace quint::ops
