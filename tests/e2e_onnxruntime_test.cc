// End to end against ONNX Runtime 1.30: every tensor ONNX Runtime computes (intermediates
// exposed as graph outputs) must equal quint's, bit for bit — integers and the float outputs of
// DequantizeLinear alike — with the reference kernels and with the fastest this CPU has.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "image.h"
#include "op_harness.h"
#include "reference_runs.h"
#include "test_paths.h"
#include "x86/cpu.h"

namespace quint::test {
namespace {

namespace fs = std::filesystem;

class Collector final : public Observer {
 public:
  std::map<std::string, Tensor> tensors;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) tensors[o.name] = o.value.clone();
  }
};

struct Comparison {
  int compared = 0;
  std::vector<std::string> mismatches;
};

Comparison compare_all(const std::map<std::string, Tensor>& ort, const std::map<std::string, Tensor>& ours) {
  Comparison c;
  for (const auto& [name, t] : ort) {
    auto it = ours.find(name);
    if (it == ours.end()) {
      c.mismatches.push_back(name + ": computed by ONNX Runtime, missing in quint's run");
      continue;
    }
    ++c.compared;
    auto r = tensors_equal(it->second, t);
    if (!r) c.mismatches.push_back(name + ": " + r.message());
  }
  return c;
}

// Every 8-bit tensor of quint's run and the output "output", against ONNX Runtime (level all)
// computing the same names on the same input (saved as `input_file`).
Comparison compare_8bit_with_ort(const Session& s, const std::string& model, const Tensor& x,
                                 const std::string& input_file) {
  auto ours = quint_tensors(s, {{"input", x}});
  std::string names;
  for (const auto& [name, t] : ours)
    if (is_quant8(t.dtype())) names += (names.empty() ? "" : ",") + name;
  names += ",output";
  return compare_all(run_ort(model, {{"input", input_file}}, names, "all"), ours);
}

std::vector<std::string> isas_to_test() {
  std::vector<std::string> v = {"ref"};
  if (ops::x86::best_isa() != ops::x86::Isa::Ref) v.push_back(ops::x86::isa_name(ops::x86::best_isa()));
  return v;
}

void expect_equal_to_ort(const std::string& model, const std::map<std::string, Tensor>& inputs, int min_tensors) {
  std::map<std::string, std::string> files;
  for (const auto& [name, t] : inputs) files[name] = save_npy_temp("input-" + std::to_string(files.size()), t);
  const auto ort = run_ort(model, files, "all");
  for (const std::string& isa : isas_to_test()) {
    SCOPED_TRACE("isa " + isa);
    SessionOptions so;
    so.isa = isa;
    so.threads = 2;
    Session s(model, so);
    Comparison c = compare_all(ort, quint_tensors(s, inputs));
    EXPECT_GE(c.compared, min_tensors);
    for (const auto& m : c.mismatches) ADD_FAILURE() << m;
  }
}

TEST(OnnxRuntimeE2E, MobileNetV2Int8EveryTensorOnCat) {
  const std::string td = testdata_dir();
  if (td.empty()) GTEST_SKIP() << "../shared/testdata is absent";
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const std::string model = td + "/models/mobilenetv2-12-int8.onnx";
  Tensor x = tools::load_image(td + "/images/cat.jpg");
  expect_equal_to_ort(model, {{"input", x}}, 70);
}

TEST(OnnxRuntimeE2E, ResNet50QOperatorEveryTensor) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const std::string dir = resnet50_dir();
  if (dir.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch, torchvision and onnx is needed to export ResNet50";
  Tensor x = tools::load_image("/usr/lib/python3/dist-packages/skimage/data/coffee.png");
  expect_equal_to_ort(dir + "/resnet50_qop.onnx", {{"input", x}}, 75);
}

// Every integer tensor of a fused QDQ run (the outputs of the QuantizeLinear nodes that end each
// unit) and the logits, against ONNX Runtime at optimization level "all".
TEST(OnnxRuntimeE2E, ResNet50QdqFusedEqualsOrtAll) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const std::string dir = resnet50_dir();
  if (dir.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch, torchvision and onnx is needed to export ResNet50";
  const std::string model = dir + "/resnet50_qdq.onnx";
  Tensor x = tools::load_image("/usr/lib/python3/dist-packages/skimage/data/astronaut.png");
  const std::string input = save_npy_temp("qdq-input", x);
  // Fused, the QDQ model is its QOperator twin: the same integer steps (PyTorch's no-op
  // Cast(uint8) before each residual Add removed, as ONNX Runtime does) and no layout copies.
  const ModelSummary qdq = Session::summarize(model), qop = Session::summarize(dir + "/resnet50_qop.onnx");
  EXPECT_EQ(qdq.planned_steps, qop.planned_steps);
  EXPECT_EQ(qdq.layout_conversions, 0);
  for (const std::string& isa : isas_to_test()) {
    SCOPED_TRACE("isa " + isa);
    SessionOptions so;
    so.isa = isa;
    Session s(model, so);
    Comparison c = compare_8bit_with_ort(s, model, x, input);
    EXPECT_GE(c.compared, 75);
    for (const auto& m : c.mismatches) ADD_FAILURE() << m;
  }
}

// The blocks of MobileNetV3, GoogLeNet and Inception v3 as torch.onnx.export writes them (QDQ):
// hard-swish (DequantizeLinear → HardSigmoid → Mul → QuantizeLinear, run on NHWC values in
// place), a squeeze-and-excitation scale (QLinearMul with a per-channel operand), branches
// concatenated along channels (QLinearConcat on NHWC inputs), a stride-1 max pool with ceil_mode
// and Pad → AveragePool: every 8-bit tensor and the output equal ONNX Runtime's (level all).
TEST(OnnxRuntimeE2E, QdqMobileNetV3AndInceptionBlocksEqualOrtAll) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const std::string model = qdq_blocks_model();
  if (model.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch and onnx is needed to export the model";
  Tensor x(DType::Float32, {1, 3, 64, 64});
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  const std::string input = save_npy_temp("blocks-input", x);
  if (ops::x86::best_isa() != ops::x86::Isa::Ref) {
    // Only the Pad before the average pool needs the model's layout.
    EXPECT_LE(Session::summarize(model).layout_conversions, 1);
  }
  for (const std::string& isa : isas_to_test())
    for (int threads : {1, 2}) {
      SCOPED_TRACE("isa " + isa + ", threads " + std::to_string(threads));
      SessionOptions so;
      so.isa = isa;
      so.threads = threads;
      Session s(model, so);
      Comparison c = compare_8bit_with_ort(s, model, x, input);
      EXPECT_GE(c.compared, 20);
      for (const auto& m : c.mismatches) ADD_FAILURE() << m;
      // An unobserved run (no observer: the path `quint run` and `quint bench` take) gives the
      // same output as an observed one (whose output was just compared).
      EXPECT_TRUE(tensors_equal(s.run({{"input", x}}).at("output"), quint_tensors(s, {{"input", x}}).at("output")));
    }
}

// --qdq float runs the graph as written; against ONNX Runtime without optimizations the float
// tensors agree within float rounding, and the integers of each QuantizeLinear differ by at most
// one step, rarely (a float result next to a rounding tie). Each unit is fed ONNX Runtime's own
// integer inputs ("local" comparison): chained, one-step differences compound through the
// network and say nothing about one unit.
TEST(OnnxRuntimeE2E, ResNet50QdqFloatModeMatchesOrtDisabled) {
  if (ort_harness_dir().empty()) GTEST_SKIP() << "ONNX Runtime harness not installed (scripts/setup.sh)";
  const std::string dir = resnet50_dir();
  if (dir.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch, torchvision and onnx is needed to export ResNet50";
  const std::string model = dir + "/resnet50_qdq.onnx";
  Tensor x = tools::load_image("/usr/lib/python3/dist-packages/skimage/data/coffee.png");
  SessionOptions so;
  so.qdq = QdqMode::Float;
  Session s(model, so);
  auto first = quint_tensors(s, {{"input", x}});
  std::string names;
  for (const auto& [name, t] : first)
    if (is_quant8(t.dtype())) names += (names.empty() ? "" : ",") + name;
  names += ",output";
  const auto ort = run_ort(model, {{"input", save_npy_temp("qdqf-input", x)}}, names, "disable");
  std::map<std::string, Tensor> feed;
  for (const auto& [name, t] : ort)
    if (is_quant8(t.dtype())) feed[name] = t;
  Collector c;
  RunOptions ro;
  ro.observer = &c;
  ro.replace = &feed;
  auto outs = s.run({{"input", x}}, ro);
  c.tensors["output"] = outs.at("output");
  int compared = 0;
  int64_t off = 0, total = 0;
  for (const auto& [name, t] : ort) {
    ASSERT_TRUE(c.tensors.count(name)) << name;
    const Tensor& q = c.tensors.at(name);
    ++compared;
    if (t.dtype() == DType::Float32) {
      EXPECT_TRUE(tensors_close(q, t, 1e-4, 1e-4)) << name;
      continue;
    }
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t d = std::llabs(q.as_int64(i) - t.as_int64(i));
      EXPECT_LE(d, 1) << name << " at " << i;
      off += d != 0;
    }
    total += t.numel();
  }
  EXPECT_GE(compared, 75);
  EXPECT_LE(off, total / 10000) << off << " of " << total << " integers differ by one step";
}

}  // namespace
}  // namespace quint::test
