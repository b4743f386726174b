// Shape validation shared by Conv, ConvInteger and QLinearConv.
#pragma once

#include "common.h"

namespace quint::ops {

struct ConvShape {
  int64_t batch = 0, in_channels = 0, out_channels = 0, group = 1;
  WindowGeometry geom;
  Shape out_shape;
  int64_t c_per_group() const { return in_channels / group; }
  int64_t m_per_group() const { return out_channels / group; }
  int64_t macs() const {
    return batch * out_channels * geom.out_size() * c_per_group() * geom.kernel_size();
  }
};

// x: [N, C, spatial...], w: [M, C/group, kernel...].
ConvShape conv_shape(const BuildContext& ctx, const Shape& x, const Shape& w);

}  // namespace quint::ops
