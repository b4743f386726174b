// The loader reads large raw_data payloads in place (runtime/src/raw_data_lift.h): the skeleton
// must parse to the same model, the spans must hold the same bytes, and anything unusual must
// fall back to protobuf's own reading.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <random>

#include "model_builder.h"
#include "quint/session.h"
#include "raw_data_lift.h"

namespace quint::test {
namespace {

using runtime::lift_raw_data;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// x[1,8,6,6] -> Conv(w: 16x8x3x3 initializer) -> Add(Constant node of 16x6x6... broadcast) -> y,
// with one small initializer (bias) that stays in the skeleton.
ModelBuilder conv_model() {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 8, 6, 6});
  b.initializer("w", Tensor::from_vector<float>({16, 8, 3, 3}, random_floats(16 * 8 * 9, 1)));
  b.initializer("b", Tensor::from_vector<float>({16}, random_floats(16, 2)));
  Attributes pads;
  pads.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Conv", {"x", "w", "b"}, {"c"}, pads);
  Attributes value;
  value.set("value", Tensor::from_vector<float>({1, 16, 6, 6}, random_floats(16 * 36, 3)));
  b.node("Constant", {}, {"k"}, value);
  b.node("Add", {"c", "k"}, {"y"});
  b.output("y");
  return b;
}

TEST(RawDataLift, SkeletonParsesToTheSameModel) {
  const std::string bytes = conv_model().bytes();
  auto lifted = lift_raw_data(bytes.data(), bytes.size(), 1024);
  ASSERT_TRUE(lifted);
  EXPECT_LT(lifted->skeleton.size(), bytes.size() - 16 * 8 * 9 * 4 - 16 * 36 * 4 + 64);
  ASSERT_EQ(lifted->initializers.size(), 1u);  // w (4608 bytes); b (64 bytes) stays
  ASSERT_EQ(lifted->attribute_tensors.size(), 1u);
  onnx::ModelProto original, skeleton;
  ASSERT_TRUE(original.ParseFromString(bytes));
  ASSERT_TRUE(skeleton.ParseFromString(lifted->skeleton));
  // Each lifted span holds exactly the payload protobuf reads; with it put back, the models match.
  auto& w = *skeleton.mutable_graph()->mutable_initializer(0);
  const auto span_w = lifted->initializers.at(0);
  EXPECT_TRUE(w.has_raw_data());
  EXPECT_EQ(w.raw_data(), "");
  EXPECT_EQ(bytes.substr(span_w.offset, span_w.size), original.graph().initializer(0).raw_data());
  w.set_raw_data(bytes.substr(span_w.offset, span_w.size));
  const auto span_k = lifted->attribute_tensors.at({1, 0});
  auto& k = *skeleton.mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_t();
  EXPECT_EQ(k.raw_data(), "");
  k.set_raw_data(bytes.substr(span_k.offset, span_k.size));
  EXPECT_EQ(skeleton.SerializeAsString(), original.SerializeAsString());
}

TEST(RawDataLift, NotWorthItUnlessThePayloadsAreMostOfTheModel) {
  const std::string bytes = conv_model().bytes();
  // With 4 KiB as the threshold only w (4608 of ~7.5 K bytes) would be lifted: more than half.
  EXPECT_TRUE(lift_raw_data(bytes.data(), bytes.size(), 4096));
  // With 8 KiB nothing would be: parse the bytes as they are, rather than copy them to a skeleton.
  EXPECT_FALSE(lift_raw_data(bytes.data(), bytes.size(), 8192));
  // The same model with its weights as float_data (no raw_data at all).
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  onnx::TensorProto& w = *m.mutable_graph()->mutable_initializer(0);
  const std::string raw = w.raw_data();
  w.clear_raw_data();
  for (size_t i = 0; i < raw.size(); i += 4) {
    float f;
    std::memcpy(&f, raw.data() + i, 4);
    w.add_float_data(f);
  }
  const std::string as_floats = m.SerializeAsString();
  EXPECT_FALSE(lift_raw_data(as_floats.data(), as_floats.size(), 1024));
}

TEST(RawDataLift, UnusualFramingFallsBack) {
  const std::string bytes = conv_model().bytes();
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  // Truncated anywhere: protobuf decides.
  for (size_t cut : {size_t{1}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1})
    EXPECT_FALSE(lift_raw_data(bytes.data(), cut, 4096)) << cut;
  // A second graph field (protobuf merges the two) and a second raw_data (the last one wins).
  std::string twice = bytes + std::string("\x3a\x00", 2);
  EXPECT_FALSE(lift_raw_data(twice.data(), twice.size(), 4096));
  std::string doubled;
  {
    // Build the bytes by hand: graph { initializer { <w's fields> raw_data raw_data } }.
    std::string init = m.graph().initializer(0).SerializeAsString() + std::string("\x4a\x01\x07", 3);
    std::string graph = std::string("\x2a", 1);
    std::string len;
    for (size_t v = init.size(); ; v >>= 7) {
      len.push_back(static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
      if (v < 0x80) break;
    }
    graph += len + init;
    std::string glen;
    for (size_t v = graph.size(); ; v >>= 7) {
      glen.push_back(static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
      if (v < 0x80) break;
    }
    doubled = std::string("\x3a", 1) + glen + graph;
  }
  onnx::ModelProto check;
  ASSERT_TRUE(check.ParseFromString(doubled));
  EXPECT_EQ(check.graph().initializer(0).raw_data(), "\x07");  // the last raw_data wins
  EXPECT_FALSE(lift_raw_data(doubled.data(), doubled.size(), 4096));
  // A group (wire type 3) at the top level.
  std::string group = bytes + std::string("\x0b\x0c", 2);
  EXPECT_FALSE(lift_raw_data(group.data(), group.size(), 4096));
  // Field number 0.
  std::string zero = std::string("\x00\x00", 2) + bytes;
  EXPECT_FALSE(lift_raw_data(zero.data(), zero.size(), 4096));
}

TEST(RawDataLift, LoadingInPlaceGivesTheSameResults) {
  ModelBuilder b = conv_model();
  // A bool initializer with bytes other than 0/1 (normalized to 1) through the in-place path, and
  // a float initializer whose payload lands on an odd offset (copied).
  std::vector<uint8_t> mask(16 * 36);
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = static_cast<uint8_t>(i % 3 == 0 ? 0 : i % 7 + 1);
  Tensor m(DType::Bool, {1, 16, 6, 6});
  std::memcpy(m.raw(), mask.data(), mask.size());
  b.initializer("m", m);
  b.initializer("zeros", Tensor::from_vector<float>({1, 16, 6, 6}, std::vector<float>(16 * 36, 0.0f)));
  b.node("Where", {"m", "y", "zeros"}, {"z"});
  b.output("z");
  const std::string path = b.save("lift_conv.onnx");
  const std::string bytes = b.bytes();
  Session from_file(path);
  Session from_bytes = Session::from_bytes(bytes, "lift_conv.onnx");
  const Tensor x = Tensor::from_vector<float>({1, 8, 6, 6}, random_floats(8 * 36, 4));
  auto a = from_file.run({{"x", x}});
  auto c = from_bytes.run({{"x", x}});
  for (const char* name : {"y", "z"}) {
    const Tensor& ta = a.at(name);
    const Tensor& tc = c.at(name);
    ASSERT_EQ(ta.shape(), tc.shape());
    EXPECT_EQ(std::memcmp(ta.raw(), tc.raw(), ta.nbytes()), 0) << name;
  }
  // Where picked y exactly where the mask byte was non-zero.
  const float* y = a.at("y").data<float>();
  const float* z = a.at("z").data<float>();
  for (size_t i = 0; i < mask.size(); ++i) EXPECT_EQ(z[i], mask[i] ? y[i] : 0.0f) << i;
}

}  // namespace
}  // namespace quint::test
