// The interface between the runtime and operators. An operator is a build function: given its
// node's attributes and its inputs' types, shapes and (when known at load) values, it validates
// everything its kernel will trust, declares its outputs, and returns the kernel (with weights
// prepacked). A kernel never sees the graph; it sees tensors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "quint/attributes.h"
#include "quint/error.h"
#include "quint/explain.h"
#include "quint/parallel.h"
#include "quint/quant.h"
#include "quint/tensor.h"
#include "quint/arith.h"

namespace quint::ops {

struct NodeInfo {
  std::string name;
  std::string op_type;
  std::string domain;  // "ai.onnx" or "com.microsoft"
  int opset = 0;       // the model's opset version for `domain`
};

// Memory order of a value. `Plain` is the model's own order (NCHW for images). `NHWC` is
// channels-last for a 4-D value whose model shape is [N, C, H, W]: fast convolution chains keep
// activations that way. A value's shape is always the model's shape; the layout only says how
// its elements are stored. Only operators registered as layout-aware ever see NHWC inputs; the
// planner converts for the others, and observers always see the model's layout.
enum class Layout : uint8_t { Plain, NHWC };

// What the planner knows about a value before running anything.
struct ValueInfo {
  DType dtype = DType::Undefined;
  Shape shape;
  const Tensor* constant = nullptr;  // set when the value is known at load time
  QuantParams quant;                 // the model's quantization of this value, if any
  Layout layout = Layout::Plain;
};

// Which kernel variants may be used. `isa` names a SIMD level ("ref" forces the reference).
struct KernelOptions {
  Arith arith = Arith::Onnx;
  std::string isa = "auto";
  // Largest tensor a node may declare (SessionOptions::max_tensor_bytes): set_output refuses
  // bigger outputs, so build functions must declare outputs before allocating anything sized
  // by them (index tables, folded constants).
  int64_t max_tensor_bytes = int64_t{4} << 30;
};

// Side data a model may carry for a node that ONNX has no field for (e.g. the float bias that
// PyTorch's oneDNN arithmetic uses); looked up by key, nullptr when absent.
class NodeExtras {
 public:
  virtual ~NodeExtras() = default;
  virtual const Tensor* find(const std::string& key) const = 0;
};

// Thrown by BuildContext::require_plain_layout; the planner catches it.
struct NeedPlainLayout {};

class BuildContext {
 public:
  BuildContext(const NodeInfo& node, const Attributes& attrs, std::vector<const ValueInfo*> inputs,
               size_t num_outputs, const KernelOptions& options, const NodeExtras* extras)
      : node_(node), attrs_(attrs), inputs_(std::move(inputs)), outputs_(num_outputs),
        options_(options), extras_(extras) {}

  const NodeInfo& node() const { return node_; }
  const Attributes& attrs() const { return attrs_; }
  const KernelOptions& options() const { return options_; }
  const Tensor* extra(const std::string& key) const { return extras_ ? extras_->find(key) : nullptr; }

  size_t num_inputs() const { return inputs_.size(); }
  // An optional input is absent when it is beyond the list or named "".
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const ValueInfo& input(size_t i) const;
  // The input's value at load time, or an error saying the operator needs it constant.
  const Tensor& constant_input(size_t i, const char* what) const;
  // Checks the input count against [min, max] and fails otherwise.
  void expect_inputs(size_t min, size_t max) const;
  // Fails unless the input's dtype is one of `allowed`.
  void expect_dtype(size_t i, std::initializer_list<DType> allowed, const char* what) const;

  size_t num_outputs() const { return outputs_.size(); }
  // Declares output i; fails when its size exceeds options().max_tensor_bytes.
  void set_output(size_t i, DType dtype, Shape shape, QuantParams quant = {});
  // For layout-aware operators: this node cannot use its NHWC inputs; the planner converts them
  // to the model's layout and builds again.
  [[noreturn]] void require_plain_layout() const;
  bool any_input_nhwc() const;
  // Declares that output i is stored channels-last (layout-aware operators only).
  void set_output_layout(size_t i, Layout layout);
  // The output is known now (Shape, Constant): no kernel needs to run for it.
  void set_output_constant(size_t i, Tensor value, QuantParams quant = {});
  const ValueInfo& output(size_t i) const { return outputs_.at(i); }
  const std::optional<Tensor>& output_constant(size_t i) const { return constants_.at(i); }

 private:
  const NodeInfo& node_;
  const Attributes& attrs_;
  std::vector<const ValueInfo*> inputs_;
  std::vector<ValueInfo> outputs_;
  std::vector<std::optional<Tensor>> constants_ = std::vector<std::optional<Tensor>>(outputs_.size());
  const KernelOptions& options_;
  const NodeExtras* extras_;
};

// Where a kernel reports a failure that depends on run-time data and so could not be checked
// at load (a Gather index out of range in a run-time input). Kernels never throw (they may be
// inside a parallel_for on pool threads); they record the reason here, still write every output
// element, and return. The session turns a recorded failure into an Error naming the node as
// soon as the kernel returns. Safe to call from several threads: the first reason is kept.
class RunStatus {
 public:
  void fail(std::string reason) noexcept;
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  // The first reason recorded, and a clean status for the next run.
  std::string take() noexcept;

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::string reason_;
};

struct RunContext {
  std::vector<const Tensor*> inputs;  // nullptr for an absent optional input
  std::vector<Tensor*> outputs;
  void* scratch = nullptr;            // scratch_bytes() of the kernel, 64-byte aligned
  Parallel* parallel = nullptr;
  RunStatus* status = nullptr;        // nullptr: failures are not reported (constant folding,
                                      // whose inputs the build function checked in full)

  void fail(std::string reason) const noexcept {
    if (status) status->fail(std::move(reason));
  }

  const Tensor& in(size_t i) const { return *inputs[i]; }
  bool has_in(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  Tensor& out(size_t i) const { return *outputs[i]; }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Must not throw: everything it relies on was validated by the build function, except
  // run-time data (index values), whose failures go to ctx.fail().
  virtual void run(const RunContext& ctx) const = 0;
  virtual size_t scratch_bytes() const { return 0; }
  // Multiply-accumulates of one run, for `quint info` and benchmarks.
  virtual int64_t macs() const { return 0; }
  // Weights a run reads first (a hint for the step before it to prefetch: large weights come
  // from memory in every run); empty when there is nothing worth fetching ahead.
  struct Bytes {
    const void* data = nullptr;
    size_t size = 0;
  };
  virtual Bytes weights_head() const { return {}; }
  // The planner hands each kernel the weights_head() of the next step that has one, before any
  // run. Kernels that can fetch them while they compute keep it; others ignore it.
  virtual void set_next_weights(Bytes) {}
};

// Validates the node, declares its outputs on ctx and returns the kernel. May return nullptr
// when every output was declared constant.
using BuildFn = std::unique_ptr<Kernel> (*)(BuildContext& ctx);

// What an explain function sees: the node, its input tensors in the model's layout (constants
// included; nullptr for absent optional inputs), its side data, and the element of output 0.
struct ExplainContext {
  const NodeInfo& node;
  const Attributes& attrs;
  std::vector<const Tensor*> inputs;
  const NodeExtras* extras = nullptr;
  std::vector<int64_t> index;  // coordinates in output 0 (model layout)
};

// Recomputes one element from the inputs with the reference formulas, under every arithmetic.
// Fails with a clear message for an index out of range.
using ExplainFn = Explanation (*)(const ExplainContext& ctx);

struct OpDef {
  std::string domain;   // "ai.onnx" or "com.microsoft"
  std::string op_type;
  int min_opset = 1;    // first opset version whose semantics the build function implements
  int max_opset = 1000; // last one
  BuildFn build = nullptr;
  // False for ops that must not be evaluated at load even on constant inputs.
  bool foldable = true;
  // Explains one output element (quantized operators); nullptr when the operator cannot.
  ExplainFn explain = nullptr;
  // True when the build function handles NHWC inputs itself (reading ValueInfo::layout); the
  // planner converts NHWC inputs of every other operator to the model's layout first.
  bool layout_aware = false;
  // True for element-wise operators (output element i from input element i of every input of
  // the output's shape; inputs of one element broadcast): when every larger input is NHWC with
  // one shape, the planner hands them over as they are (the kernel works on memory order,
  // whatever it is) and marks the outputs NHWC, instead of converting.
  bool elementwise = false;
};

// def with `elementwise` set (for registrations).
inline OpDef elementwise_op(OpDef def) {
  def.elementwise = true;
  return def;
}

class Registry {
 public:
  // The registry of every built-in operator.
  static const Registry& builtin();
  void add(OpDef def);
  // The definition for op_type in domain at the model's opset, or nullptr.
  const OpDef* find(const std::string& domain, const std::string& op_type, int opset) const;
  // True when some opset of op_type is known (to tell "unknown op" from "unsupported opset").
  bool knows(const std::string& domain, const std::string& op_type) const;
  const std::vector<OpDef>& all() const { return defs_; }

 private:
  std::vector<OpDef> defs_;
};

}  // namespace quint::ops
