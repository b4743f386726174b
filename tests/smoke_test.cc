// First end-to-end checks: a tiny QLinearConv model through loader, planner and kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

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

// A node no graph output depends on runs only when someone watches: skipped in plain runs,
// computed (and shown) for an observer.
TEST(Smoke, NodesNoOutputNeedsRunOnlyWhenObserved) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 4});
  b.node("Relu", {"x"}, {"y"});
  b.node("Neg", {"x"}, {"dead"});
  b.output("y", DType::Float32);
  Session s(b.save("dead_branch.onnx"));
  const Tensor x = Tensor::from_vector<float>({1, 4}, {-1, 2, -3, 4});
  std::vector<StepTime> steps;
  RunOptions plain;
  plain.profile = &steps;
  EXPECT_TRUE(tensors_equal(s.run({{"x", x}}, plain).at("y"), Tensor::from_vector<float>({1, 4}, {0, 2, 0, 4})));
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].op_type, "Relu");
  struct Watch : Observer {
    std::map<std::string, Tensor> seen;
    void on_node(const ObservedNode& n) override {
      for (const ObservedTensor& t : n.outputs) seen[t.name] = t.value.clone();
    }
  } watch;
  RunOptions observed;
  observed.observer = &watch;
  s.run({{"x", x}}, observed);
  ASSERT_EQ(watch.seen.count("dead"), 1u);
  EXPECT_TRUE(tensors_equal(watch.seen.at("dead"), Tensor::from_vector<float>({1, 4}, {1, -2, 3, -4})));
}

// A profiled run reports each step's multiply-accumulates (quint bench --profile prints GMAC/s
// from them): a 3×3 convolution of 2 into 4 channels over a 5×5 output does 4·25·2·9 of them.
TEST(Smoke, ProfileCarriesMacsOfMultiplyingSteps) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 2, 5, 5});
  b.initializer("w", Tensor::from_vector<float>({4, 2, 3, 3}, std::vector<float>(72, 0.5f)));
  Attributes pads;
  pads.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"}, pads);
  b.node("Relu", {"c"}, {"y"});
  b.output("y", DType::Float32);
  Session s(b.save("profile_macs.onnx"));
  std::vector<StepTime> steps;
  RunOptions ro;
  ro.profile = &steps;
  s.run({{"x", Tensor::from_vector<float>({1, 2, 5, 5}, std::vector<float>(50, 1.0f))}}, ro);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].op_type, "Conv");
  EXPECT_EQ(steps[0].macs, 4 * 25 * 2 * 9);
  EXPECT_EQ(steps[1].op_type, "Relu");
  EXPECT_EQ(steps[1].macs, 0);
}

}  // namespace quint::test
