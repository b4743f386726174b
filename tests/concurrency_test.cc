// One Session, many threads: Session::run is documented as safe to call concurrently. Every
// concurrent result must equal, bit for bit, what a single-threaded run gives for the same
// input -- with the session's own worker pool shared by the callers, with observers, and with
// input shapes that make the callers plan (and evict plans) at the same time.
// Run it under ThreadSanitizer too (tests/fuzz/README.md, "ThreadSanitizer").
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "model_builder.h"
#include "quint/session.h"
#include "test_paths.h"

namespace quint::test {
namespace {

// A small quantized CNN: Q → QLinearConv 3x3 (8→16, pad 1) → QLinearConv depthwise 3x3 stride 2
// → QLinearAdd (com.microsoft) with a 1x1 QLinearConv branch → QLinearGlobalAveragePool → DQ
// → Flatten → Gemm → Softmax. Batch dim symbolic ("N").
std::string small_quantized_model() {
  std::mt19937 rng(7);
  auto i8 = [&](Shape s) {
    Tensor t(DType::Int8, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    return t;
  };
  auto i32 = [&](Shape s) {
    Tensor t(DType::Int32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % 2001) - 1000;
    return t;
  };
  auto f32 = [&](Shape s, float scale) {
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (static_cast<float>(rng() % 2001) - 1000.0f) * scale;
    return t;
  };
  ModelBuilder b;
  b.opset("com.microsoft", 1);
  b.input("x", DType::Float32, {-1, 8, 12, 12});
  b.initializer("xs", Tensor::scalar<float>(0.02f)).initializer("xz", Tensor::scalar<uint8_t>(128));
  b.initializer("w1", i8({16, 8, 3, 3})).initializer("w1s", Tensor::scalar<float>(0.01f));
  b.initializer("w1z", Tensor::scalar<int8_t>(0)).initializer("b1", i32({16}));
  b.initializer("a1s", Tensor::scalar<float>(0.05f)).initializer("a1z", Tensor::scalar<uint8_t>(100));
  Tensor w2s(DType::Float32, {16});
  for (int64_t c = 0; c < 16; ++c) w2s.data<float>()[c] = 0.002f + 0.001f * static_cast<float>(c);
  b.initializer("w2", i8({16, 1, 3, 3})).initializer("w2s", w2s);
  b.initializer("w2z", Tensor(DType::Int8, {16}));
  b.initializer("a2s", Tensor::scalar<float>(0.04f)).initializer("a2z", Tensor::scalar<uint8_t>(120));
  b.initializer("w3", i8({16, 16, 1, 1})).initializer("w3s", Tensor::scalar<float>(0.02f));
  b.initializer("w3z", Tensor::scalar<int8_t>(0));
  b.initializer("a3s", Tensor::scalar<float>(0.06f)).initializer("a3z", Tensor::scalar<uint8_t>(110));
  b.initializer("a4s", Tensor::scalar<float>(0.08f)).initializer("a4z", Tensor::scalar<uint8_t>(128));
  b.initializer("gs", Tensor::scalar<float>(0.03f)).initializer("gz", Tensor::scalar<uint8_t>(128));
  b.initializer("fcw", f32({16, 10}, 1e-3f)).initializer("fcb", f32({10}, 1e-3f));
  Attributes pad1;
  pad1.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Attributes dw = pad1;
  dw.set("group", int64_t{16});
  dw.set("strides", std::vector<int64_t>{2, 2});
  Attributes stride2;
  stride2.set("strides", std::vector<int64_t>{2, 2});
  Attributes last;
  last.set("axis", int64_t{-1});
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  b.node("QLinearConv", {"xq", "xs", "xz", "w1", "w1s", "w1z", "a1s", "a1z", "b1"}, {"a1"}, pad1);
  b.node("QLinearConv", {"a1", "a1s", "a1z", "w2", "w2s", "w2z", "a2s", "a2z"}, {"a2"}, dw);
  b.node("QLinearConv", {"a1", "a1s", "a1z", "w3", "w3s", "w3z", "a3s", "a3z"}, {"a3"}, stride2);
  b.node("QLinearAdd", {"a2", "a2s", "a2z", "a3", "a3s", "a3z", "a4s", "a4z"}, {"a4"}, {}, "com.microsoft");
  b.node("QLinearGlobalAveragePool", {"a4", "a4s", "a4z", "gs", "gz"}, {"g"}, {}, "com.microsoft");
  b.node("DequantizeLinear", {"g", "gs", "gz"}, {"gf"});
  b.node("Flatten", {"gf"}, {"flat"});
  b.node("Gemm", {"flat", "fcw", "fcb"}, {"logits"});
  b.node("Softmax", {"logits"}, {"prob"}, last);
  b.output("prob", DType::Float32).output("a4", DType::UInt8);
  return b.save("concurrency_small.onnx");
}

Tensor random_input(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::Float32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (static_cast<float>(rng() % 4001) - 2000.0f) / 700.0f;
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

bool same_outputs(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || !same_bits(t, it->second)) return false;
  }
  return true;
}

// Counts the values an observer is shown, reading every byte (so a race on them is visible).
class Checksum final : public Observer {
 public:
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) {
      const auto* p = static_cast<const unsigned char*>(o.value.raw());
      for (size_t i = 0; i < o.value.nbytes(); ++i) sum = sum * 31 + p[i];
      ++tensors;
    }
  }
  uint64_t sum = 0;
  int tensors = 0;
};

// Runs `runs` iterations on each of `threads` threads; iteration r of thread t uses input
// (t + r) % inputs.size(), every third one with an observer whose checksum must match too.
void hammer(const Session& s, const std::vector<std::map<std::string, Tensor>>& inputs, int threads, int runs) {
  std::vector<std::map<std::string, Tensor>> want;
  std::vector<uint64_t> want_sum;
  for (const auto& in : inputs) {
    Checksum c;
    RunOptions ro;
    ro.observer = &c;
    want.push_back(s.run(in, ro));
    want_sum.push_back(c.sum);
    ASSERT_TRUE(same_outputs(want.back(), s.run(in))) << "two single-threaded runs differ";
  }
  std::atomic<int> mismatches{0}, errors{0}, done{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int r = 0; r < runs; ++r) {
        const size_t k = static_cast<size_t>(t + r) % inputs.size();
        try {
          if (r % 3 == 0) {
            Checksum c;
            RunOptions ro;
            ro.observer = &c;
            auto out = s.run(inputs[k], ro);
            if (!same_outputs(out, want[k]) || c.sum != want_sum[k]) ++mismatches;
          } else if (!same_outputs(s.run(inputs[k]), want[k])) {
            ++mismatches;
          }
        } catch (const std::exception&) {
          ++errors;
        }
        ++done;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(done.load(), threads * runs);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Concurrency, SmallQuantizedModel8ThreadsX50Runs) {
  const std::string model = small_quantized_model();
  std::vector<std::map<std::string, Tensor>> inputs;
  for (uint32_t i = 0; i < 8; ++i) inputs.push_back({{"x", random_input({1, 8, 12, 12}, 100 + i)}});
  for (int pool_threads : {1, 2}) {
    SCOPED_TRACE("session threads " + std::to_string(pool_threads));
    SessionOptions o;
    o.threads = pool_threads;
    Session s(model, o);
    hammer(s, inputs, 8, 50);
  }
}

TEST(Concurrency, ReferenceKernels) {
  SessionOptions o;
  o.isa = "ref";
  o.threads = 2;
  Session s(small_quantized_model(), o);
  std::vector<std::map<std::string, Tensor>> inputs;
  for (uint32_t i = 0; i < 4; ++i) inputs.push_back({{"x", random_input({1, 8, 12, 12}, 200 + i)}});
  hammer(s, inputs, 8, 20);
}

// Every thread brings its own batch size, so runs plan concurrently; with more shapes than the
// plan cache holds (16), plans are evicted while other threads are still running them.
TEST(Concurrency, ConcurrentPlanningAndEviction) {
  SessionOptions o;
  o.threads = 2;
  Session s(small_quantized_model(), o);
  std::vector<std::map<std::string, Tensor>> inputs;
  for (int64_t n = 1; n <= 20; ++n)
    inputs.push_back({{"x", random_input({n, 8, 12, 12}, 300 + static_cast<uint32_t>(n))}});
  hammer(s, inputs, 8, 25);
}

// The real MobileNetV2 of the ONNX Model Zoo, when the shared test data is there.
TEST(Concurrency, MobileNetV2) {
  const std::string dir = testdata_dir();
  const std::string model = dir + "/models/mobilenetv2-12-int8.onnx";
  if (dir.empty() || !std::filesystem::exists(model)) GTEST_SKIP() << "no shared test data";
  SessionOptions o;
  o.threads = 2;
  Session s(model, o);
  ASSERT_EQ(s.inputs().size(), 1u);
  const IoInfo& in = s.inputs()[0];
  Shape shape;
  for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
  std::vector<std::map<std::string, Tensor>> inputs;
  for (uint32_t i = 0; i < 3; ++i) inputs.push_back({{in.name, random_input(shape, 400 + i)}});
  hammer(s, inputs, 8, 3);
}

}  // namespace
}  // namespace quint::test
