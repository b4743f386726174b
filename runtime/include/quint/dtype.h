// Element types of quint tensors. The numeric values are ONNX's TensorProto.DataType codes, so
// the loader can map them without a table and error messages can quote the ONNX code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace quint {

enum class DType : uint8_t {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
  BFloat16 = 16,
};

// Bytes per element; 0 for Undefined. String elements are std::string objects.
size_t dtype_size(DType t);
// Lower-case name as used in manifests and messages: "float32", "uint8", "int8" ...
const char* dtype_name(DType t);
// Parses a name produced by dtype_name; returns Undefined when unknown.
DType dtype_from_name(const std::string& name);
// True for the element types quint can hold (every enumerator above except Undefined).
bool dtype_is_known(int onnx_code);
inline bool is_float(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}
// 8-bit quantized element types.
inline bool is_quant8(DType t) { return t == DType::UInt8 || t == DType::Int8; }

// Maps a C++ element type to its DType.
template <class T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::UInt16; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::Int16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::UInt32; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::UInt64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::Bool; };
template <> struct DTypeOf<std::string> { static constexpr DType value = DType::String; };
template <class T>
inline constexpr DType dtype_of = DTypeOf<T>::value;

// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

}  // namespace quint
