// End to end against PyTorch: the quantized ResNet50 (models/export_resnet50.py, seed 0) run in
// Debian's torch 1.13 under the engines onednn and qnnpack (models/dump_pytorch.py), and in quint
// on resnet50_qop.onnx with SessionOptions::arith set to that engine. Every node is judged on
// PyTorch's own inputs (RunOptions::replace feeds PyTorch's tensors), so each of the 75 tensors —
// the input quantization, every conv, the max pool, every residual add_relu, the average pool,
// the flatten, the fc and the float logits — must equal PyTorch's bit for bit.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "dump.h"
#include "model_builder.h"
#include "npy.h"
#include "op_harness.h"
#include "reference_runs.h"
#include "test_paths.h"

namespace quint::test {
namespace {

namespace fs = std::filesystem;

const char* kImage = "/usr/lib/python3/dist-packages/skimage/data/chelsea.png";

class Collector final : public Observer {
 public:
  std::map<std::string, Tensor> tensors;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) tensors[o.name] = o.value.clone();
  }
};

struct Dump {
  tools::DumpManifest manifest;
  std::map<std::string, Tensor> tensors;  // by tensor name, PyTorch's values
  Tensor input;
};

// Runs models/dump_pytorch.py for `engine` on kImage (once per test process and engine).
const Dump& pytorch_dump(const std::string& model_dir, const std::string& engine) {
  static std::map<std::string, Dump> dumps;
  auto it = dumps.find(engine);
  if (it != dumps.end()) return it->second;
  const std::string out = temp_dir() + "/dump-pytorch-" + engine;
  const std::string cmd = "/usr/bin/python3 '" + source_dir() + "/models/dump_pytorch.py' --model-dir '" + model_dir +
                          "' --image '" + kImage + "' --out '" + out + "' --engine " + engine;
  std::string log;
  if (run_command(cmd, &log) != 0) fail("dump_pytorch.py failed: ", log);
  Dump d;
  d.manifest = tools::read_manifest(out);
  for (const tools::DumpEntry& e : d.manifest.tensors) d.tensors[e.name] = tools::read_npy(out + "/" + e.file);
  d.input = tools::read_npy(out + "/input.npy");
  if (const tools::DumpEntry* e = d.manifest.find("input"))  // the dump lists the float input first
    if (!tensors_equal(d.tensors.at(e->name), d.input)) fail("the dump's input tensor differs from input.npy");
  return dumps[engine] = std::move(d);
}

// quint's tensors with every node fed PyTorch's inputs.
std::map<std::string, Tensor> quint_on_pytorch_inputs(const std::string& model, Arith arith, const Dump& d) {
  SessionOptions so;
  so.arith = arith;
  so.threads = 2;
  Session s(model, so);
  Collector c;
  RunOptions ro;
  ro.observer = &c;
  ro.replace = &d.tensors;
  auto outs = s.run({{"input", d.input}}, ro);
  for (auto& [name, t] : outs) c.tensors[name] = t;
  return c.tensors;
}

#define REQUIRE_RESNET(dir)                                                                              \
  const std::string dir = resnet50_dir();                                                                \
  if (dir.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch, torchvision and onnx is needed to export " \
                                   "ResNet50";                                                           \
  if (!fs::exists(kImage)) GTEST_SKIP() << kImage << " (python3-skimage) is absent"

TEST(PytorchE2E, ResNet50EveryTensorEqualsPyTorch) {
  REQUIRE_RESNET(dir);
  for (const std::string engine : {"onednn", "qnnpack"}) {
    SCOPED_TRACE("engine " + engine);
    const Dump& d = pytorch_dump(dir, engine);
    const auto ours = quint_on_pytorch_inputs(dir + "/resnet50_qop.onnx", *arith_from_name(engine), d);
    int compared = 0;
    int64_t elements = 0;
    for (const tools::DumpEntry& e : d.manifest.tensors) {
      if (e.name == "input") continue;  // the graph input quint was fed
      auto it = ours.find(e.name);
      if (it == ours.end()) {
        ADD_FAILURE() << e.name << ": in PyTorch's dump, not computed by quint";
        continue;
      }
      const Tensor& theirs = d.tensors.at(e.name);
      ++compared;
      elements += theirs.numel();
      EXPECT_TRUE(tensors_equal(it->second, theirs)) << e.name << " (" << e.op << ")";
    }
    EXPECT_EQ(compared, 75);
    std::printf("[ %s ] %d tensors, %lld elements compared\n", engine.c_str(), compared, static_cast<long long>(elements));
  }
}

// ONNX Runtime's arithmetic (the default) against PyTorch's engines: different roundings, never
// more than one step apart on the same inputs (required for onednn; qnnpack is checked too).
// Prints where the differences are, by operator.
TEST(PytorchE2E, ResNet50OnnxArithmeticIsWithinOneStepOfPyTorch) {
  REQUIRE_RESNET(dir);
  for (const std::string engine : {"onednn", "qnnpack"}) {
    SCOPED_TRACE("engine " + engine);
    const Dump& d = pytorch_dump(dir, engine);
    const auto ours = quint_on_pytorch_inputs(dir + "/resnet50_qop.onnx", Arith::Onnx, d);
    int64_t off = 0, total = 0;
    int compared = 0;
    std::map<std::string, std::pair<int64_t, int64_t>> by_op;  // op -> (differing, total)
    for (const tools::DumpEntry& e : d.manifest.tensors) {
      if (e.name == "input") continue;
      const Tensor& theirs = d.tensors.at(e.name);
      ASSERT_TRUE(ours.count(e.name)) << e.name;
      const Tensor& q = ours.at(e.name);
      ++compared;
      if (!is_quant8(theirs.dtype())) {
        // The logits dequantize PyTorch's own fc integers: the same float formula everywhere.
        EXPECT_TRUE(tensors_equal(q, theirs)) << e.name;
        continue;
      }
      int64_t here = 0;
      for (int64_t i = 0; i < theirs.numel(); ++i) {
        const int64_t diff = std::llabs(q.as_int64(i) - theirs.as_int64(i));
        EXPECT_LE(diff, 1) << e.name << " element " << i;
        here += diff != 0;
      }
      off += here;
      total += theirs.numel();
      by_op[e.op].first += here;
      by_op[e.op].second += theirs.numel();
    }
    EXPECT_EQ(compared, 75);
    if (engine == "onednn") {
      EXPECT_GT(off, 0) << "the two arithmetics should differ somewhere";
    }
    std::printf("[ onnx vs %s ] %lld of %lld integers differ, all by one step:", engine.c_str(),
                static_cast<long long>(off), static_cast<long long>(total));
    for (const auto& [op, n] : by_op)
      std::printf(" %s %lld/%lld", op.c_str(), static_cast<long long>(n.first), static_cast<long long>(n.second));
    std::printf("\n");
  }
}

}  // namespace
}  // namespace quint::test
