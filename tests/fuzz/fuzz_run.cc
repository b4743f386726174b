// libFuzzer target: bytes -> Session::from_bytes -> two runs on zero-filled inputs of the
// default shapes (symbolic dims 1), the first with an observer that reads every node output.
// Tensors are capped at fuzz::kMaxTensorBytes; plans with more than fuzz::kMaxRunMacs
// multiply-accumulates are loaded but not run.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "graph.h"
#include "graph_passes.h"
#include "plan.h"
#include "quint/session.h"

namespace {

class ReadEverything final : public quint::Observer {
 public:
  void on_node(const quint::ObservedNode& n) override {
    for (const auto& o : n.outputs) {
      const auto* p = static_cast<const unsigned char*>(o.value.raw());
      if (o.value.dtype() == quint::DType::String) continue;
      for (size_t i = 0; i < o.value.nbytes(); ++i) sum += p[i];
      sum += o.quant.scale.size() + o.quant.zero_point.size();
    }
  }
  uint64_t sum = 0;
};

// The plan's multiply-accumulates, from the same passes the session runs.
int64_t planned_macs(const std::string& bytes, const quint::SessionOptions& o) {
  using namespace quint;
  runtime::LoadLimits limits;
  limits.max_tensor_bytes = o.max_tensor_bytes;
  runtime::Graph g = runtime::load_graph_from_bytes(bytes, "fuzz.onnx", "", limits);
  runtime::PlanOptions po;
  po.max_tensor_bytes = o.max_tensor_bytes;
  po.kernel.max_tensor_bytes = o.max_tensor_bytes;
  runtime::fold_constants(g, po.kernel, true);
  runtime::fuse_qdq(g, po.kernel);
  std::vector<Shape> shapes;
  for (int v : g.inputs) {
    Shape s;
    for (int64_t d : g.values[v].dims) s.push_back(d < 0 ? 1 : d);
    shapes.push_back(s);
  }
  return runtime::make_plan(g, shapes, po).macs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quint;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  SessionOptions o;
  o.max_tensor_bytes = fuzz::kMaxTensorBytes;
  o.threads = 1;
  try {
    Session s = Session::from_bytes(bytes, "fuzz.onnx", o);
    if (planned_macs(bytes, o) > fuzz::kMaxRunMacs) return 0;
    std::map<std::string, Tensor> inputs;
    for (const IoInfo& in : s.inputs()) {
      Shape shape;
      for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
      inputs[in.name] = Tensor(in.dtype, shape);  // within the limit: the session planned it
    }
    ReadEverything obs;
    RunOptions ro;
    ro.observer = &obs;
    auto first = s.run(inputs, ro);
    auto second = s.run(inputs);
    if (first.size() != second.size()) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
