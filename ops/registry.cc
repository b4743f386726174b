#include "register.h"

namespace quint::ops {

const Registry& Registry::builtin() {
  static const Registry registry = [] {
    Registry r;
    register_quantize(r);
    register_qlinear_conv(r);
    register_qlinear_elementwise(r);
    register_conv(r);
    register_matmul(r);
    register_pool(r);
    register_elementwise(r);
    register_normalization(r);
    register_reduce(r);
    register_shape_ops(r);
    return r;
  }();
  return registry;
}

}  // namespace quint::ops
