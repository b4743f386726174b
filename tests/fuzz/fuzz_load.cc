// libFuzzer target: bytes -> ONNX model -> Graph (validation), constant folding, QDQ fusion and
// planning for the default input shapes, all in memory. Plans the way `quint info` does, with
// collect_errors (every node is validated, not just up to the first bad one), and then once
// more without QDQ fusion.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "graph.h"
#include "graph_passes.h"
#include "plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quint;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  runtime::LoadLimits limits;
  limits.max_tensor_bytes = fuzz::kMaxTensorBytes;
  runtime::Graph loaded;
  try {
    loaded = runtime::load_graph_from_bytes(bytes, "fuzz.onnx", "", limits);
  } catch (const Error&) {
    return 0;
  }
  for (bool fuse : {true, false}) {
    try {
      runtime::Graph g = loaded;
      runtime::PlanOptions po;
      po.max_tensor_bytes = fuzz::kMaxTensorBytes;
      po.kernel.max_tensor_bytes = fuzz::kMaxTensorBytes;
      po.collect_errors = true;
      runtime::fold_constants(g, po.kernel, fuse);
      if (fuse) runtime::fuse_qdq(g, po.kernel);
      std::vector<Shape> shapes;
      for (int v : g.inputs) {
        Shape s;
        for (int64_t d : g.values[v].dims) s.push_back(d < 0 ? 1 : d);
        shapes.push_back(s);
      }
      runtime::make_plan(g, shapes, po);
    } catch (const Error&) {
    }
  }
  return 0;
}
