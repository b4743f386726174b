// Conversions between the model's NCHW order and channels-last NHWC, for any element size.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quint/tensor.h"

namespace quint::ops {

// dst[n][c][h][w] = src[n][h][w][c]
void nhwc_to_nchw(const void* src, void* dst, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);
// dst[n][h][w][c] = src[n][c][h][w]
void nchw_to_nhwc(const void* src, void* dst, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);

// Tensor forms; `t`'s shape is the model's [N, C, H, W] in both directions.
Tensor to_nchw(const Tensor& nhwc_data);
void copy_nchw_to_nhwc(const Tensor& nchw, Tensor& nhwc_out);

}  // namespace quint::ops
