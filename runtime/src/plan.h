// A Plan is a Graph specialised to concrete input shapes: every value's type and shape, the
// values known at load (constants, folded sub-graphs), the kernels to run in order, and one
// arena layout for all activations. It is immutable once built; runs use it concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph.h"
#include "quint/ops/op.h"
#include "quint/quant.h"

namespace quint::runtime {

struct PlannedValue {
  enum class Kind { Unplanned, Constant, Input, Activation };
  Kind kind = Kind::Unplanned;
  std::string name;          // the model's name; a layout copy gets " (NCHW)" appended
  ops::Layout layout = ops::Layout::Plain;
  DType dtype = DType::Undefined;
  Shape shape;
  QuantParams quant;
  std::optional<Tensor> constant;
  int input_index = -1;      // position among graph inputs (Kind::Input)
  int output_index = -1;     // position among graph outputs, -1 if not an output
  size_t offset = 0;         // arena offset (Kind::Activation and not an output)
  int first_step = -1, last_step = -1;
};

struct PlannedStep {
  int node = -1;  // index in Graph::nodes; -1 for a layout conversion the planner inserted
  std::unique_ptr<ops::Kernel> kernel;
  std::vector<int> inputs, outputs;  // value indices, -1 when absent
  size_t scratch_offset = 0, scratch_bytes = 0;
  bool observe_only = false;  // no graph output depends on it: run only when observed
};

struct PlanOptions {
  ops::KernelOptions kernel;
  int64_t max_tensor_bytes = int64_t{4} << 30;
  // Keep going after an unsupported or invalid node and record it, instead of failing.
  bool collect_errors = false;
};

struct Plan {
  // Indexed like Graph::values; layout copies the planner adds come after them.
  std::vector<PlannedValue> values;
  std::vector<int> outputs;          // the value holding each graph output (model layout)
  std::vector<PlannedStep> steps;
  size_t arena_bytes = 0;
  int folded_nodes = 0;
  // Nodes evaluated at load (constant folding), in topological order: observers are shown their
  // outputs before the first step, so a dump holds every node output of the model.
  std::vector<int> folded;
  int64_t macs = 0;
  std::vector<std::string> errors;   // with collect_errors
  // With collect_errors: nodes after a failed one, which cannot be planned (their input shapes are
  // unknown); only whether quint has their operator is checked (errors lists those it lacks).
  int unplanned_nodes = 0;
};

// Plans `g` for the given shapes of its inputs (one per Graph::inputs, all dims concrete).
Plan make_plan(const Graph& g, const std::vector<Shape>& input_shapes, const PlanOptions& opts);

// Side data for a node that ONNX has no field for, found by naming convention among the model's
// initializers (models/README.md): "<node>.bias_float" is the float32 bias PyTorch requantizes
// with (key "float_bias").
class InitializerExtras final : public ops::NodeExtras {
 public:
  InitializerExtras(const Graph& g, const std::string& node) : g_(g), node_(node) {}
  const Tensor* find(const std::string& key) const override;

 private:
  const Graph& g_;
  const std::string& node_;
};

// The error context of node `ni`.
ErrorContext node_context(const Graph& g, int ni);

}  // namespace quint::runtime
