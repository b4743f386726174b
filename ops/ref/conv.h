// Reference convolution, straight from the ONNX Conv / QLinearConv / ConvInteger definition:
//   acc[n][m][o] = Σ_{c in group(m)} Σ_{k} (x[n][c][o·s − p_begin + k·d] − x_zp) · (w[m][c][k] − w_zp[m])
// over input positions inside the image (padding contributes nothing, i.e. pads hold x_zp).
// Layout NCHW (N, C, D, H, W with unit leading spatial dims for 1-D and 2-D convs).
//
// Overflow: |x − x_zp| <= 255 and |w − w_zp| <= 255, so each product is below 2^16 and the int32
// sum is exact for up to 2^15 = 32768 terms per output (C/group · kernel volume). Larger
// reductions wrap modulo 2^32, as ONNX Runtime's int32 accumulation does.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common.h"

namespace quint::ops::ref {

// Range of output indices o with 0 <= o·stride − pad + k·dil < in, as [lo, hi).
inline void valid_range(int64_t in, int64_t out, int64_t stride, int64_t pad, int64_t koff,
                        int64_t* lo, int64_t* hi) {
  // o·stride >= pad − koff  and  o·stride <= in − 1 + pad − koff
  int64_t a = pad - koff, b = in - 1 + pad - koff;
  int64_t l = a <= 0 ? 0 : (a + stride - 1) / stride;
  int64_t h = b < 0 ? -1 : b / stride;
  *lo = std::min(l, out);
  *hi = std::max(*lo, std::min(h + 1, out));
}

// Accumulates one output channel `m` of one image into acc[out_size] (overwritten).
// Acc is int32 for integer convs (wrapping add) and float for float convs. X and W are the
// element types; zero points are subtracted in the accumulator type.
template <class Acc, class X, class W>
void conv_channel(const X* x, Acc x_zp, const W* w, Acc w_zp, const WindowGeometry& g,
                  int64_t c_per_group, Acc* acc) {
  const int64_t out_size = g.out_size();
  std::fill(acc, acc + out_size, Acc{0});
  const int64_t in_hw = g.in[1] * g.in[2];
  for (int64_t c = 0; c < c_per_group; ++c) {
    const X* xc = x + c * g.in_size();
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh)
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const Acc wv = static_cast<Acc>(*w++) - w_zp;
          int64_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
          valid_range(g.in[0], g.out[0], g.stride[0], g.pad_begin[0], kd * g.dilation[0], &d_lo, &d_hi);
          valid_range(g.in[1], g.out[1], g.stride[1], g.pad_begin[1], kh * g.dilation[1], &h_lo, &h_hi);
          valid_range(g.in[2], g.out[2], g.stride[2], g.pad_begin[2], kw * g.dilation[2], &w_lo, &w_hi);
          for (int64_t od = d_lo; od < d_hi; ++od) {
            const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
            for (int64_t oh = h_lo; oh < h_hi; ++oh) {
              const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
              const X* row = xc + id * in_hw + ih * g.in[2] - g.pad_begin[2] + kw * g.dilation[2];
              Acc* arow = acc + (od * g.out[1] + oh) * g.out[2];
              for (int64_t ow = w_lo; ow < w_hi; ++ow) {
                Acc prod = (static_cast<Acc>(row[ow * g.stride[2]]) - x_zp) * wv;
                if constexpr (std::is_integral_v<Acc>) {
                  arow[ow] = static_cast<Acc>(static_cast<uint32_t>(arow[ow]) + static_cast<uint32_t>(prod));
                } else {
                  arow[ow] += prod;
                }
              }
            }
          }
        }
  }
}

}  // namespace quint::ops::ref
