// BatchNormalization (inference, and the training-mode statistics of opset 14+),
// LayerNormalization (opset 17), Softmax and LogSoftmax (both semantic eras: coerced to 2-D
// before opset 13, a single axis from 13), LRN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "arith/activation.h"
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

// Calls make(T{}) for float32 or float64 and fails for every other type.
template <class Make>
std::unique_ptr<Kernel> visit_real(DType t, const char* what, Make&& make) {
  if (t == DType::Float32) return make(float{});
  if (t == DType::Float64) return make(double{});
  fail(what, " must be float32 or float64, got ", dtype_name(t));
}

// ---- BatchNormalization ---------------------------------------------------------------------

// x is [N, C, D1 … Dk], seen as N × C blocks of `inner` = D1·…·Dk elements; the parameters are
// per channel. (Before opset 9 `spatial`=0 gives one parameter per element of C × D1 … Dk:
// that is the same loop with C·D1·…·Dk channels of 1 element.)
struct BatchNormLayout {
  int64_t batch = 1, channels = 1, inner = 1;
};

// Inference: y = scale · (x − mean) / sqrt(var + epsilon) + bias, evaluated in T in exactly
// this order (the ONNX reference's expression).
//
// Training (opset 14+, training_mode=1): mean and var are the batch's own statistics per channel
// (population variance, over N and the spatial dims, accumulated in double), y uses them, and
// the optional outputs are the updated running statistics
//   running_mean = mean_in · momentum + batch_mean · (1 − momentum)   (same for var).
template <class T>
class BatchNormKernel final : public Kernel {
 public:
  BatchNormKernel(BatchNormLayout l, T epsilon, T momentum, bool training)
      : l_(l), epsilon_(epsilon), momentum_(momentum), training_(training) {}

  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    const T* scale = in_ptr<T>(ctx, 1);
    const T* bias = in_ptr<T>(ctx, 2);
    const T* mean_in = in_ptr<T>(ctx, 3);
    const T* var_in = in_ptr<T>(ctx, 4);
    T* y = out_ptr<T>(ctx, 0);
    const int64_t C = l_.channels, inner = l_.inner, N = l_.batch;
    const T* mean = mean_in;
    const T* var = var_in;
    std::vector<T> batch_mean, batch_var;
    if (training_) {
      batch_mean.resize(static_cast<size_t>(C));
      batch_var.resize(static_cast<size_t>(C));
      ctx.parallel->parallel_for(C, 1, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          const double count = static_cast<double>(N * inner);
          double sum = 0;
          for (int64_t n = 0; n < N; ++n) {
            const T* xc = x + (n * C + c) * inner;
            for (int64_t i = 0; i < inner; ++i) sum += xc[i];
          }
          const double m = sum / count;
          double sq = 0;
          for (int64_t n = 0; n < N; ++n) {
            const T* xc = x + (n * C + c) * inner;
            for (int64_t i = 0; i < inner; ++i) sq += (xc[i] - m) * (xc[i] - m);
          }
          batch_mean[c] = static_cast<T>(m);
          batch_var[c] = static_cast<T>(sq / count);
        }
      });
      mean = batch_mean.data();
      var = batch_var.data();
      const T keep = momentum_, take = T{1} - momentum_;
      if (ctx.outputs.size() > 1 && ctx.outputs[1])
        for (int64_t c = 0; c < C; ++c) out_ptr<T>(ctx, 1)[c] = mean_in[c] * keep + mean[c] * take;
      if (ctx.outputs.size() > 2 && ctx.outputs[2])
        for (int64_t c = 0; c < C; ++c) out_ptr<T>(ctx, 2)[c] = var_in[c] * keep + var[c] * take;
    }
    ctx.parallel->parallel_for(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)),
                               [&](int64_t b, int64_t e) {
      for (int64_t nc = b; nc < e; ++nc) {
        const int64_t c = nc % C;
        const T m = mean[c], s = scale[c], bi = bias[c];
        const T d = std::sqrt(var[c] + epsilon_);
        const T* xc = x + nc * inner;
        T* yc = y + nc * inner;
        for (int64_t i = 0; i < inner; ++i) yc[i] = s * (xc[i] - m) / d + bi;
      }
    });
  }

 private:
  BatchNormLayout l_;
  T epsilon_, momentum_;
  bool training_;
};

std::unique_ptr<Kernel> build_batch_norm(BuildContext& ctx) {
  const int opset = ctx.node().opset;
  ctx.expect_inputs(5, 5);
  const ValueInfo& x = ctx.input(0);
  if (x.shape.size() < 2) fail("X must have rank >= 2 (N x C x ...), has shape ", shape_str(x.shape));
  bool training = false;
  if (opset >= 14) {
    const int64_t mode = ctx.attrs().get_int("training_mode", 0);
    if (mode != 0 && mode != 1) fail("training_mode must be 0 or 1, got ", mode);
    training = mode == 1;
    if (!training && ctx.num_outputs() > 1)
      fail("outputs running_mean and running_var exist only with training_mode=1, but the node has ",
           ctx.num_outputs(), " outputs");
  } else if (ctx.num_outputs() > 1) {
    // Opsets 1-9 define training outputs (mean, var, saved_mean, saved_var) whose meaning the
    // spec leaves loose (saved_var: variance or inverse std?); inference is all quint does there.
    fail("training-mode outputs of BatchNormalization before opset 14 are not supported (the node has ",
         ctx.num_outputs(), " outputs; inference has 1)");
  }
  const bool spatial = opset >= 9 || ctx.attrs().get_int("spatial", 1) != 0;

  BatchNormLayout l;
  l.batch = x.shape[0];
  l.channels = x.shape[1];
  for (size_t i = 2; i < x.shape.size(); ++i) l.inner *= x.shape[i];
  if (!spatial) {
    l.channels *= l.inner;
    l.inner = 1;
  }
  const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t i = 1; i < 5; ++i) {
    const ValueInfo& p = ctx.input(i);
    if (p.dtype != x.dtype)
      fail(names[i], " must have X's type ", dtype_name(x.dtype), ", got ", dtype_name(p.dtype),
           " (mixed precisions are not supported)");
    const bool ok = spatial ? (p.shape.size() == 1 && p.shape[0] == l.channels)
                            : shape_numel(p.shape) == l.channels;
    if (!ok)
      fail(names[i], " must have ", l.channels, " elements (", spatial ? "one per channel" : "C x D1 x ... (spatial=0)",
           "), has shape ", shape_str(p.shape));
  }
  const float epsilon = ctx.attrs().get_float("epsilon", 1e-5f);
  const float momentum = ctx.attrs().get_float("momentum", 0.9f);
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) fail("epsilon must be finite and >= 0, got ", epsilon);
  ctx.set_output(0, x.dtype, x.shape);
  if (training) {
    ctx.set_output(1, x.dtype, {l.channels});
    ctx.set_output(2, x.dtype, {l.channels});
  }
  return visit_real(x.dtype, "X", [&](auto tag) -> std::unique_ptr<Kernel> {
    using T = decltype(tag);
    return std::make_unique<BatchNormKernel<T>>(l, static_cast<T>(epsilon), static_cast<T>(momentum), training);
  });
}

// ---- LayerNormalization (opset 17) ----------------------------------------------------------

// X is seen as `rows` × n with n = X.shape[axis] · … · X.shape[rank − 1]; each row is normalized
// on its own:
//   mean = Σ x / n,   var = Σ (x − mean)² / n,   sd = sqrt(var + epsilon)
//   y = (x − mean) / sd · scale + bias
// with the statistics and y evaluated in double and y rounded once to T. (ONNX Runtime sums x
// and x² in float and takes var = E[x²] − mean²; the results agree within a few float ULP.)
// Mean and InvStdDev (optional outputs, float32, shape X.shape[:axis] + [1 …]) are mean and 1/sd.
template <class T>
class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(int64_t rows, int64_t n, float epsilon, bool has_bias)
      : rows_(rows), n_(n), epsilon_(epsilon), has_bias_(has_bias) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    const T* scale = in_ptr<T>(ctx, 1);
    const T* bias = has_bias_ ? in_ptr<T>(ctx, 2) : nullptr;
    T* y = out_ptr<T>(ctx, 0);
    float* mean_out = ctx.outputs.size() > 1 && ctx.outputs[1] ? out_ptr<float>(ctx, 1) : nullptr;
    float* inv_out = ctx.outputs.size() > 2 && ctx.outputs[2] ? out_ptr<float>(ctx, 2) : nullptr;
    const int64_t n = n_;
    const double eps = epsilon_;
    ctx.parallel->parallel_for(rows_, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += xr[i];
        const double mean = sum / static_cast<double>(n);
        double sq = 0;
        for (int64_t i = 0; i < n; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
        const double sd = std::sqrt(sq / static_cast<double>(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
          const double v = (xr[i] - mean) / sd * scale[i];
          yr[i] = static_cast<T>(bias ? v + bias[i] : v);
        }
        if (mean_out) mean_out[r] = static_cast<float>(mean);
        if (inv_out) inv_out[r] = static_cast<float>(1.0 / sd);
      }
    });
  }

 private:
  int64_t rows_, n_;
  float epsilon_;
  bool has_bias_;
};

std::unique_ptr<Kernel> build_layer_norm(BuildContext& ctx) {
  ctx.expect_inputs(2, 3);
  const ValueInfo& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) fail("X must have rank >= 1, it is a scalar");
  const int64_t axis = normalize_axis(ctx.attrs().get_int("axis", -1), rank);
  const int64_t stash = ctx.attrs().get_int("stash_type", 1);
  if (stash != 1) fail("stash_type ", stash, " is not supported (only 1: statistics in float32 or wider)");
  const float epsilon = ctx.attrs().get_float("epsilon", 1e-5f);
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) fail("epsilon must be finite and >= 0, got ", epsilon);
  int64_t rows = 1, n = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= x.shape[i];
  for (int64_t i = axis; i < rank; ++i) n *= x.shape[i];
  const bool has_bias = ctx.has_input(2);
  const char* names[] = {"X", "Scale", "B"};
  for (size_t i = 1; i < (has_bias ? 3u : 2u); ++i) {
    const ValueInfo& p = ctx.input(i);
    if (p.dtype != x.dtype)
      fail(names[i], " must have X's type ", dtype_name(x.dtype), ", got ", dtype_name(p.dtype));
    if (shape_numel(p.shape) != n)
      fail(names[i], " must have one value per element of a normalized row (", n, " = X's dims from axis ", axis,
           "), has shape ", shape_str(p.shape));
  }
  ctx.set_output(0, x.dtype, x.shape);
  Shape stat_shape = x.shape;
  for (int64_t i = axis; i < rank; ++i) stat_shape[static_cast<size_t>(i)] = 1;
  for (size_t i = 1; i < ctx.num_outputs() && i < 3; ++i) ctx.set_output(i, DType::Float32, stat_shape);
  if (ctx.num_outputs() > 3) fail("LayerNormalization has at most 3 outputs, the node has ", ctx.num_outputs());
  return visit_real(x.dtype, "X", [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<LayerNormKernel<decltype(tag)>>(rows, n, epsilon, has_bias);
  });
}

// ---- Softmax / LogSoftmax -------------------------------------------------------------------

// The input is seen as [outer, n, inner] and each of the outer × inner lanes (n elements apart
// by `inner`) is normalized on its own:
//   softmax:     y_j = e^(x_j − m) / Σ_k e^(x_k − m)
//   log-softmax: y_j = (x_j − m) − log Σ_k e^(x_k − m)
// with m = max_k x_k, which leaves the result unchanged and keeps e^(…) ≤ 1 (no overflow).
// Float softmax is ONNX Runtime's, bit for bit (arith::ort_softmax: its exp, its order of
// summation, a reciprocal times each term); strided lanes go through a contiguous copy, as
// ONNX Runtime transposes them. Log-softmax, and softmax of doubles, sum in double.
template <class T, bool Log>
class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(int64_t outer, int64_t n, int64_t inner) : outer_(outer), n_(n), inner_(inner) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    const int64_t n = n_, inner = inner_;
    if (n == 0) return;
    ctx.parallel->parallel_for(outer_ * inner, std::max<int64_t>(1, 4096 / n), [&](int64_t b, int64_t e) {
      for (int64_t lane = b; lane < e; ++lane) {
        const int64_t base = (lane / inner) * n * inner + lane % inner;
        const T* xl = x + base;
        T* yl = y + base;
        if constexpr (std::is_same_v<T, float> && !Log) {
          if (inner == 1) {
            arith::ort_softmax(xl, yl, n);
          } else {
            static thread_local std::vector<float> row;
            row.resize(static_cast<size_t>(n));
            for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(j)] = xl[j * inner];
            arith::ort_softmax(row.data(), row.data(), n);
            for (int64_t j = 0; j < n; ++j) yl[j * inner] = row[static_cast<size_t>(j)];
          }
          continue;
        }
        T m = xl[0];
        for (int64_t j = 1; j < n; ++j) m = xl[j * inner] > m ? xl[j * inner] : m;
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          const T v = std::exp(xl[j * inner] - m);
          sum += v;
          if constexpr (!Log) yl[j * inner] = v;
        }
        if constexpr (Log) {
          const T log_sum = static_cast<T>(std::log(sum));
          for (int64_t j = 0; j < n; ++j) yl[j * inner] = (xl[j * inner] - m) - log_sum;
        } else {
          const T s = static_cast<T>(sum);
          for (int64_t j = 0; j < n; ++j) yl[j * inner] /= s;
        }
      }
    });
  }

 private:
  int64_t outer_, n_, inner_;
};

template <bool Log>
std::unique_ptr<Kernel> build_softmax(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) fail("the input must have rank >= 1, it is a scalar");
  const int opset = ctx.node().opset;
  int64_t axis = normalize_axis(ctx.attrs().get_int("axis", opset < 13 ? 1 : -1), rank);
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
  if (opset < 13) {
    // Coerced to 2-D: [d0 … d(axis-1)] × [d(axis) … d(rank-1)], normalized along the second.
    for (int64_t i = axis; i < rank; ++i) n *= x.shape[i];
  } else {
    n = x.shape[axis];
    for (int64_t i = axis + 1; i < rank; ++i) inner *= x.shape[i];
  }
  ctx.set_output(0, x.dtype, x.shape);
  return visit_real(x.dtype, "input", [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<SoftmaxKernel<decltype(tag), Log>>(outer, n, inner);
  });
}

// ---- LRN (local response normalization across channels) ----------------------------------------
// x is [N, C, D1 … Dk] (GoogLeNet, AlexNet: [N, C, H, W]):
//   y = x · (bias + alpha/size · Σ x_j²)^(−beta)   over the channels j of the window
//   max(0, c − ⌊(size−1)/2⌋) … min(C−1, c + ⌈(size−1)/2⌉)
// in ONNX Runtime's order (its Caffe2-derived kernel): aos = fl32(alpha / size); the window sum
// of the first channel starts at bias and adds aos·x_j² term by term, each later channel's
// starts from the previous channel's, adds aos·(entering square) and then (−aos)·(leaving
// square) (a product and a sum, each rounded; squares outside the channels are 0); then
// x · pow(s, −beta). pow is libm's powf (ONNX Runtime's Eigen pow may differ by an ULP, so the
// result is within float rounding of it, not bit for bit).
template <class T>
class LrnKernel final : public Kernel {
 public:
  LrnKernel(int64_t batch, int64_t channels, int64_t inner, int64_t size, float alpha, float beta, float bias)
      : batch_(batch), c_(channels), inner_(inner), size_(size), aos_(static_cast<T>(alpha / static_cast<float>(size))),
        beta_(static_cast<T>(beta)), bias_(static_cast<T>(bias)) {}
  void run(const RunContext& ctx) const override {
    const T* x = in_ptr<T>(ctx, 0);
    T* y = out_ptr<T>(ctx, 0);
    constexpr int64_t kBlock = 64;  // pixels whose running sums advance together
    const int64_t blocks = (inner_ + kBlock - 1) / kBlock;
    const int64_t pre = (size_ - 1) / 2, post = size_ - 1 - pre;  // channels before and after
    const T aos = aos_, neg_aos = -aos_, neg_beta = -beta_;
    ctx.parallel->parallel_for(batch_ * blocks, 1, [&](int64_t b, int64_t e) {
      T sum[kBlock];
      for (int64_t item = b; item < e; ++item) {
        const int64_t n = item / blocks, p0 = item % blocks * kBlock, len = std::min(kBlock, inner_ - p0);
        const T* xn = x + n * c_ * inner_ + p0;
        T* yn = y + n * c_ * inner_ + p0;
        // factor · (the square of channel ch), 0 outside the channels (the padding).
        auto add_square = [&](int64_t ch, T factor) {
          if (ch < 0 || ch >= c_) {
            for (int64_t i = 0; i < len; ++i) sum[i] = sum[i] + factor * T{0};
            return;
          }
          const T* xc = xn + ch * inner_;
          for (int64_t i = 0; i < len; ++i) sum[i] = sum[i] + factor * (xc[i] * xc[i]);
        };
        for (int64_t i = 0; i < len; ++i) sum[i] = bias_;
        // The first window: channels −pre .. post. Adding a zero square again right after one
        // changes nothing (only −0 + 0 moves), so each run of padding is added once: a huge size
        // costs no more than C (and no index overflows).
        if (pre > 0) add_square(-1, aos);
        for (int64_t ch = 0; ch <= std::min(post, c_ - 1); ++ch) add_square(ch, aos);
        if (post >= c_) add_square(c_, aos);
        for (int64_t c = 0; c < c_; ++c) {
          if (c > 0) {
            add_square(c + post, aos);       // entering the window
            add_square(c - 1 - pre, neg_aos);  // leaving it
          }
          const T* xc = xn + c * inner_;
          T* yc = yn + c * inner_;
          for (int64_t i = 0; i < len; ++i) yc[i] = xc[i] * std::pow(sum[i], neg_beta);
        }
      }
    });
  }

 private:
  int64_t batch_, c_, inner_, size_;
  T aos_, beta_, bias_;
};

std::unique_ptr<Kernel> build_lrn(BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const ValueInfo& x = ctx.input(0);
  if (x.shape.size() < 2) fail("X must have rank >= 2 ([N, C, ...]), has shape ", shape_str(x.shape));
  const int64_t size = ctx.attrs().get_int("size");
  if (size < 1) fail("size must be >= 1, got ", size);
  const float alpha = ctx.attrs().get_float("alpha", 0.0001f);
  const float beta = ctx.attrs().get_float("beta", 0.75f);
  const float bias = ctx.attrs().get_float("bias", 1.0f);
  if (!std::isfinite(alpha) || !std::isfinite(beta) || !std::isfinite(bias))
    fail("alpha, beta and bias must be finite, got ", alpha, ", ", beta, ", ", bias);
  int64_t inner = 1;
  for (size_t i = 2; i < x.shape.size(); ++i) inner *= x.shape[i];
  ctx.set_output(0, x.dtype, x.shape);
  return visit_real(x.dtype, "X", [&](auto tag) -> std::unique_ptr<Kernel> {
    return std::make_unique<LrnKernel<decltype(tag)>>(x.shape[0], x.shape[1], inner, size, alpha, beta, bias);
  });
}

}  // namespace

void register_normalization(Registry& r) {
  r.add({"ai.onnx", "BatchNormalization", 1, 1000, build_batch_norm});
  r.add({"ai.onnx", "LayerNormalization", 17, 1000, build_layer_norm});
  r.add({"ai.onnx", "Softmax", 1, 1000, build_softmax<false>});
  r.add({"ai.onnx", "LogSoftmax", 1, 1000, build_softmax<true>});
  r.add({"ai.onnx", "LRN", 1, 1000, build_lrn});
}

}  // namespace quint::ops
