// First end-to-end checks: a tiny QLinearConv model through loader, planner and kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model_builder.h"
#include "op_harness.h"
#include "quint/session.h"

namespace quint::test {

TEST(Smoke, QuantizeConvDequantizeModelRuns) {
  ModelBuilder b;
  b.input("x", DType::Float32, {-1, 1, 3, 3});
  b.initializer("s", Tensor::scalar<float>(0.5f));
  b.initializer("z", Tensor::scalar<uint8_t>(10));
  b.initializer("w", Tensor::from_vector<int8_t>({1, 1, 1, 1}, {2}));
  b.initializer("ws", Tensor::scalar<float>(1.0f));
  b.initializer("wz", Tensor::scalar<int8_t>(0));
  b.initializer("ys", Tensor::scalar<float>(1.0f));
  b.initializer("yz", Tensor::scalar<uint8_t>(5));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"xq"});
  b.node("QLinearConv", {"xq", "s", "z", "w", "ws", "wz", "ys", "yz"}, {"yq"});
  b.output("yq", DType::UInt8);
  Session s(b.save("smoke.onnx"));
  Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, {0, 1, 2, 3, -4, 5.25f, 100, 0.75f, 0.25f});
  auto out = s.run({{"x", x}});
  const Tensor& y = out.at("yq");
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  // q = sat(rne(x/0.5)+10); y = sat(rne((q-10)*2*0.5)+5)
  std::vector<uint8_t> want;
  for (float v : x.values<float>()) {
    int q = std::clamp(static_cast<int>(std::nearbyint(v / 0.5f)) + 10, 0, 255);
    want.push_back(static_cast<uint8_t>(std::clamp(static_cast<int>(std::nearbyint((q - 10) * 1.0f)) + 5, 0, 255)));
  }
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<uint8_t>({1, 1, 3, 3}, want)));
}

}  // namespace quint::test
