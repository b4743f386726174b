#include "layout.h"

#include <algorithm>
#include <cstring>

namespace quint::ops {

namespace {
// Transposes an R×C matrix of `elem`-byte elements, in blocks for cache friendliness.
template <size_t E>
void transpose_fixed(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols) {
  constexpr int64_t B = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += B)
    for (int64_t c0 = 0; c0 < cols; c0 += B) {
      const int64_t r1 = std::min(rows, r0 + B), c1 = std::min(cols, c0 + B);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) std::memcpy(dst + (c * rows + r) * E, src + (r * cols + c) * E, E);
    }
}

void transpose(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols, size_t elem) {
  if (rows == 1 || cols == 1) {  // a vector: the same bytes either way (a 1x1 map, one channel)
    std::memcpy(dst, src, static_cast<size_t>(rows * cols) * elem);
    return;
  }
  switch (elem) {
    case 1: transpose_fixed<1>(src, dst, rows, cols); break;
    case 2: transpose_fixed<2>(src, dst, rows, cols); break;
    case 4: transpose_fixed<4>(src, dst, rows, cols); break;
    case 8: transpose_fixed<8>(src, dst, rows, cols); break;
    default:
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) std::memcpy(dst + (c * rows + r) * elem, src + (r * cols + c) * elem, elem);
  }
}
}  // namespace

void nhwc_to_nchw(const void* src, void* dst, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem) {
  const int64_t img = c * h * w * static_cast<int64_t>(elem);
  for (int64_t i = 0; i < n; ++i)
    transpose(static_cast<const uint8_t*>(src) + i * img, static_cast<uint8_t*>(dst) + i * img, h * w, c, elem);
}

void nchw_to_nhwc(const void* src, void* dst, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem) {
  const int64_t img = c * h * w * static_cast<int64_t>(elem);
  for (int64_t i = 0; i < n; ++i)
    transpose(static_cast<const uint8_t*>(src) + i * img, static_cast<uint8_t*>(dst) + i * img, c, h * w, elem);
}

Tensor to_nchw(const Tensor& t) {
  QUINT_CHECK(t.rank() == 4 && t.dtype() != DType::String, "to_nchw needs a rank-4 numeric tensor");
  Tensor out(t.dtype(), t.shape());
  nhwc_to_nchw(t.raw(), out.raw(), t.dim(0), t.dim(1), t.dim(2), t.dim(3), dtype_size(t.dtype()));
  return out;
}

void copy_nchw_to_nhwc(const Tensor& nchw, Tensor& out) {
  QUINT_CHECK(nchw.rank() == 4 && nchw.shape() == out.shape() && nchw.dtype() == out.dtype(),
              "copy_nchw_to_nhwc: mismatched tensors");
  nchw_to_nhwc(nchw.raw(), out.raw(), nchw.dim(0), nchw.dim(1), nchw.dim(2), nchw.dim(3), dtype_size(nchw.dtype()));
}

}  // namespace quint::ops
