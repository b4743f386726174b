// Dense, row-major tensors. A Tensor either owns its storage (shared, so copies are cheap and
// alias: `Tensor b = a;` writes through b show in a; clone() for an independent copy) or views
// memory owned by someone else (an arena, a caller's buffer), which must outlive the view.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quint/dtype.h"
#include "quint/error.h"

namespace quint {

using Shape = std::vector<int64_t>;

// Product of dims; throws quint::Error if a dim is negative or the product of the non-zero dims
// overflows int64 (so that every partial product of a valid shape fits as well).
int64_t shape_numel(const Shape& shape);
// Product of the non-zero dims (validated as by shape_numel). Size limits apply to it rather
// than to the element count, so an empty [0, 2^40] tensor cannot make code that loops or builds
// tables over one of its dims do 2^40 of anything.
int64_t shape_extent(const Shape& shape);
// "[1,3,224,224]"
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-initialized owned storage (64-byte aligned).
  Tensor(DType dtype, Shape shape);
  // A view of memory owned elsewhere; the caller keeps it alive.
  static Tensor view(DType dtype, Shape shape, void* data);
  // Owned storage whose contents the caller is about to overwrite (not zeroed).
  static Tensor uninitialized(DType dtype, Shape shape);
  // A tensor over `data`, kept alive by `owner` (e.g. a buffer the loader took over).
  static Tensor adopt(DType dtype, Shape shape, std::shared_ptr<void> owner, void* data);
  // Allocates and copies `values`.
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  template <class T>
  static Tensor scalar(T value) {
    return from_vector<T>({}, std::vector<T>{value});
  }

  bool defined() const { return dtype_ != DType::Undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool owns_data() const { return owner_ != nullptr; }

  // The elements, row-major. data<T>() and values<T>() check T against dtype() and throw
  // quint::Error on a mismatch (data<float>() of a uint8 tensor); raw() does not check.
  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <class T>
  T* data() {
    check_type(dtype_of<T>);
    return static_cast<T*>(data_);
  }
  template <class T>
  const T* data() const {
    check_type(dtype_of<T>);
    return static_cast<const T*>(data_);
  }
  template <class T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  // Element i converted to double / int64 (any numeric dtype); for small parameter tensors.
  double as_double(int64_t i) const;
  int64_t as_int64(int64_t i) const;

  // Same storage, another shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // An owned deep copy.
  Tensor clone() const;
  // Copies the contents of `src` (same dtype and element count) into this tensor's storage.
  void copy_from(const Tensor& src);

 private:
  void check_type(DType want) const;

  DType dtype_ = DType::Undefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
};

template <class T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t(dtype_of<T>, std::move(shape));
  QUINT_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_vector: ", values.size(),
              " values for shape ", shape_str(t.shape()));
  T* out = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

}  // namespace quint
