// Helpers shared by operator build functions: axis normalisation, broadcasting, convolution and
// pooling geometry, and validation of quantization parameters.
#pragma once

#include <array>
#include <functional>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "quint/ops/op.h"

namespace quint::ops {

// Maps axis in [-rank, rank) to [0, rank), failing with `what` otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis");

// Multidirectional (numpy) broadcasting of two shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Strides (in elements) for reading `in` as if broadcast to `out` (0 where broadcast).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);
std::vector<int64_t> contiguous_strides(const Shape& shape);

// Visits every element of a broadcast binary operation: calls fn(out_begin, a_off, b_off,
// a_step, b_step, count) for runs of `count` consecutive output elements along the last axis,
// where element k of the run reads a[a_off + k*a_step] and b[b_off + k*b_step] (steps are 0
// or 1). Splits the work over `parallel` when given.
void for_each_broadcast(const Shape& out, const Shape& a, const Shape& b, Parallel* parallel,
                        const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t)>& fn);

// Spatial geometry of a convolution or pooling window over up to 3 spatial dims. Inputs of 1 or
// 2 spatial dims are described with leading unit dims, so one loop nest serves all ranks.
struct WindowGeometry {
  int spatial_rank = 0;             // 1, 2 or 3 as in the model
  std::array<int64_t, 3> in{1, 1, 1};
  std::array<int64_t, 3> kernel{1, 1, 1};
  std::array<int64_t, 3> stride{1, 1, 1};
  std::array<int64_t, 3> dilation{1, 1, 1};
  std::array<int64_t, 3> pad_begin{0, 0, 0};
  std::array<int64_t, 3> pad_end{0, 0, 0};
  std::array<int64_t, 3> out{1, 1, 1};

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  // The model's output spatial dims (spatial_rank of them).
  std::vector<int64_t> out_dims() const;
};

// Reads kernel_shape (or takes `kernel` from the weights), strides, dilations, pads and auto_pad
// as Conv and the pooling ops define them, validates them against the input's spatial dims and
// computes the output dims. `ceil_mode` applies to pooling only.
WindowGeometry window_geometry(const BuildContext& ctx, const Shape& input_shape,
                               const std::vector<int64_t>& kernel, bool ceil_mode = false,
                               bool allow_dilation = true);

// Quantization parameters given as a (scale, zero_point) pair of inputs.
struct QuantInput {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;  // filled with 0s when the zero point input is absent
  DType zp_dtype = DType::Undefined;
};
// Validates the scale (float32, finite, > 0) and the zero point (dtype `zp_dtype` unless
// Undefined) at inputs `scale_idx` / `zp_idx` (zp may be absent). `channels` is the allowed
// per-axis length (0: per-tensor only). Both must be constants. Their lengths must match unless
// `broadcast`, which lets a single scale or zero point serve every channel.
QuantInput read_quant_input(const BuildContext& ctx, size_t scale_idx, size_t zp_idx,
                            int64_t channels, const char* what, DType zp_dtype = DType::Undefined,
                            bool broadcast = false);

QuantParams to_quant_params(const QuantInput& q, int axis = -1);

// Saturation bounds of an 8-bit type.
inline int32_t qmin(DType t) { return t == DType::Int8 ? -128 : 0; }
inline int32_t qmax(DType t) { return t == DType::Int8 ? 127 : 255; }

// Calls f with a value of the C++ element type corresponding to `t` (uint8_t or int8_t).
template <class F>
auto visit_quant8(DType t, F&& f) {
  if (t == DType::UInt8) return f(uint8_t{});
  return f(int8_t{});
}

}  // namespace quint::ops

// ---------------------------------------------------------------------------------------------
// Element-type dispatch, shared by the elementwise, reduce, normalization and shape families.
// ---------------------------------------------------------------------------------------------
namespace quint::ops {

// Calls f(T{}) with the C++ type of one element of `t` and returns its result. Float16 and
// bfloat16 have no arithmetic C++ type here: they are passed as uint16_t bit patterns, so a
// kernel that computes on values must reject or convert them before visiting. Every branch
// must return the same type. Fails (at build time, where it is called to validate) on Undefined.
template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int8: return f(int8_t{});
    case DType::UInt8: return f(uint8_t{});
    case DType::Int16: return f(int16_t{});
    case DType::UInt16: return f(uint16_t{});
    case DType::Int32: return f(int32_t{});
    case DType::UInt32: return f(uint32_t{});
    case DType::Int64: return f(int64_t{});
    case DType::UInt64: return f(uint64_t{});
    case DType::Bool: return f(bool{});
    case DType::Float16: return f(uint16_t{});
    case DType::BFloat16: return f(uint16_t{});
    case DType::String: return f(std::string{});
    case DType::Undefined: break;
  }
  fail("no element type for dtype ", dtype_name(t));
}

// Calls f(T{}) with a type of the same size as an element of `t` (uint8_t … uint64_t, or
// std::string for strings): for kernels that move elements without looking at them. Strings
// are objects and are copied as such, never with memcpy.
template <class F>
decltype(auto) visit_storage(DType t, F&& f) {
  if (t == DType::String) return f(std::string{});
  switch (dtype_size(t)) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    default: break;
  }
  fail("no storage type for dtype ", dtype_name(t));
}

// Integer arithmetic modulo 2^bits (two's complement wrap-around, as ONNX Runtime's loops
// produce): operands are widened to an unsigned type at least as wide as int, so neither signed
// overflow nor promotion to int can occur. Real types use plain arithmetic.
template <class T>
using WrapUnsigned =
    std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
template <class T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapUnsigned<T>>(a) + static_cast<WrapUnsigned<T>>(b));
  else
    return a + b;
}
template <class T>
T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapUnsigned<T>>(a) - static_cast<WrapUnsigned<T>>(b));
  else
    return a - b;
}
template <class T>
T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapUnsigned<T>>(a) * static_cast<WrapUnsigned<T>>(b));
  else
    return a * b;
}
template <class T>
T wrap_neg(T a) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(WrapUnsigned<T>{0} - static_cast<WrapUnsigned<T>>(a));
  else
    return -a;
}

// Real to integer as quint's Cast and Pow define it: truncation toward zero for values in range
// (what C++ and ONNX Runtime do); NaN gives 0 and values beyond the range saturate (C++ leaves
// both undefined, and ONNX Runtime's results there depend on the CPU).
template <class I, class F>
I saturate_cast(F v) {
  if (v != v) return 0;  // NaN
  if (v <= static_cast<F>(std::numeric_limits<I>::lowest())) return std::numeric_limits<I>::lowest();
  // max() of a 32- or 64-bit type rounds up to 2^bits as a float: compare with >=.
  if (v >= static_cast<F>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

}  // namespace quint::ops
