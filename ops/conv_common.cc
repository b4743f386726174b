#include "conv_common.h"

namespace quint::ops {

ConvShape conv_shape(const BuildContext& ctx, const Shape& x, const Shape& w) {
  if (x.size() < 3 || x.size() > 5)
    fail("input must be [N, C, spatial...] with 1 to 3 spatial dims, has shape ", shape_str(x));
  if (w.size() != x.size())
    fail("weights must have the input's rank ", x.size(), ", have shape ", shape_str(w));
  ConvShape s;
  s.batch = x[0];
  s.in_channels = x[1];
  s.out_channels = w[0];
  s.group = ctx.attrs().get_int("group", 1);
  if (s.group < 1) fail("group must be >= 1, got ", s.group);
  if (s.in_channels % s.group != 0)
    fail("group ", s.group, " does not divide the input channels ", s.in_channels);
  if (s.out_channels % s.group != 0 || s.out_channels == 0)
    fail("group ", s.group, " does not divide the output channels ", s.out_channels);
  if (w[1] != s.in_channels / s.group)
    fail("weights have ", w[1], " input channels per group, the input has ", s.in_channels,
         " channels in ", s.group, " groups (expected ", s.in_channels / s.group, ")");
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  s.geom = window_geometry(ctx, x, kernel);
  s.out_shape = {s.batch, s.out_channels};
  for (int64_t d : s.geom.out_dims()) s.out_shape.push_back(d);
  shape_numel(s.out_shape);
  return s;
}

}  // namespace quint::ops
