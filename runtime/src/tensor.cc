#include "quint/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace quint {

int64_t shape_numel(const Shape& shape) {
  // The product of the non-zero dims must fit: then so does the product of any subset of the
  // dims, which is what code computing strides or [outer, axis, inner] splits relies on (a
  // zero dim does not make [0, 2^40, 2^40] safe to take apart).
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : shape) {
    QUINT_CHECK(d >= 0, "negative dimension ", d, " in shape ", shape_str(shape));
    if (d == 0) {
      empty = true;
      continue;
    }
    if (n > std::numeric_limits<int64_t>::max() / d)
      fail("element count of shape ", shape_str(shape), " overflows int64");
    n *= d;
  }
  return empty ? 0 : n;
}

int64_t shape_extent(const Shape& shape) {
  shape_numel(shape);
  int64_t n = 1;
  for (int64_t d : shape) n *= d == 0 ? 1 : d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

std::shared_ptr<void> allocate(DType dtype, int64_t numel, bool zero = true) {
  if (dtype == DType::String) {
    auto* p = new std::string[static_cast<size_t>(numel)];
    return std::shared_ptr<void>(p, [](void* q) { delete[] static_cast<std::string*>(q); });
  }
  size_t bytes = static_cast<size_t>(numel) * dtype_size(dtype);
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  if (zero) std::memset(p, 0, rounded);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

}  // namespace

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), numel_(shape_numel(shape_)) {
  QUINT_CHECK(dtype != DType::Undefined, "cannot allocate a tensor of undefined type");
  QUINT_CHECK(numel_ <= std::numeric_limits<int64_t>::max() / 8, "tensor of shape ",
              shape_str(shape_), " is too large");
  owner_ = allocate(dtype, numel_);
  data_ = owner_.get();
}

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  QUINT_CHECK(dtype != DType::Undefined, "cannot allocate a tensor of undefined type");
  t.owner_ = allocate(dtype, t.numel_, false);
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::adopt(DType dtype, Shape shape, std::shared_ptr<void> owner, void* data) {
  Tensor t = view(dtype, std::move(shape), data);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = data;
  return t;
}

void Tensor::check_type(DType want) const {
  if (want != dtype_)
    fail("tensor holds ", dtype_name(dtype_), " but was accessed as ", dtype_name(want));
}

double Tensor::as_double(int64_t i) const {
  switch (dtype_) {
    case DType::Float32: return static_cast<const float*>(data_)[i];
    case DType::Float64: return static_cast<const double*>(data_)[i];
    case DType::Float16: return half_to_float(static_cast<const uint16_t*>(data_)[i]);
    case DType::BFloat16: return bfloat16_to_float(static_cast<const uint16_t*>(data_)[i]);
    case DType::UInt8: return static_cast<const uint8_t*>(data_)[i];
    case DType::Int8: return static_cast<const int8_t*>(data_)[i];
    case DType::UInt16: return static_cast<const uint16_t*>(data_)[i];
    case DType::Int16: return static_cast<const int16_t*>(data_)[i];
    case DType::Int32: return static_cast<const int32_t*>(data_)[i];
    case DType::UInt32: return static_cast<const uint32_t*>(data_)[i];
    case DType::Int64: return static_cast<double>(static_cast<const int64_t*>(data_)[i]);
    case DType::UInt64: return static_cast<double>(static_cast<const uint64_t*>(data_)[i]);
    case DType::Bool: return static_cast<const bool*>(data_)[i] ? 1.0 : 0.0;
    case DType::String: case DType::Undefined: break;
  }
  fail("a ", dtype_name(dtype_), " tensor has no numeric value");
}

int64_t Tensor::as_int64(int64_t i) const {
  switch (dtype_) {
    case DType::Int64: return static_cast<const int64_t*>(data_)[i];
    case DType::Int32: return static_cast<const int32_t*>(data_)[i];
    case DType::UInt8: return static_cast<const uint8_t*>(data_)[i];
    case DType::Int8: return static_cast<const int8_t*>(data_)[i];
    case DType::UInt16: return static_cast<const uint16_t*>(data_)[i];
    case DType::Int16: return static_cast<const int16_t*>(data_)[i];
    case DType::UInt32: return static_cast<const uint32_t*>(data_)[i];
    case DType::UInt64: {
      uint64_t v = static_cast<const uint64_t*>(data_)[i];
      QUINT_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                  "uint64 value ", v, " does not fit int64");
      return static_cast<int64_t>(v);
    }
    case DType::Bool: return static_cast<const bool*>(data_)[i] ? 1 : 0;
    default: break;
  }
  fail("expected an integer tensor, got ", dtype_name(dtype_));
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  int64_t n = shape_numel(shape);
  QUINT_CHECK(n == numel_, "cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = uninitialized(dtype_, shape_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  QUINT_CHECK(src.dtype_ == dtype_ && src.numel_ == numel_, "copy_from: ", dtype_name(src.dtype_),
              shape_str(src.shape_), " into ", dtype_name(dtype_), shape_str(shape_));
  if (data_ == src.data_) return;
  if (dtype_ == DType::String) {
    auto* d = static_cast<std::string*>(data_);
    const auto* s = static_cast<const std::string*>(src.data_);
    for (int64_t i = 0; i < numel_; ++i) d[i] = s[i];
  } else if (numel_ > 0) {
    std::memcpy(data_, src.data_, nbytes());
  }
}

}  // namespace quint
