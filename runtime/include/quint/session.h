// quint's public API: load an ONNX model once, run it many times (from any number of threads),
// and watch every node's output through an Observer.
//
//   #include <quint/session.h>
//
//   quint::SessionOptions opt;
//   opt.threads = 2;                                   // threads of one run
//   quint::Session s("model.onnx", opt);               // loads, validates, plans; may throw
//   const quint::IoInfo& in = s.inputs()[0];           // name, dtype, dims (-1: symbolic)
//   quint::Tensor x(quint::DType::Float32, {1, 3, 224, 224});   // zero-filled, owned
//   float* p = x.data<float>();                        // fill it (row-major, NCHW)
//   std::map<std::string, quint::Tensor> y = s.run({{in.name, x}});   // graph outputs by name
//   const float* scores = y.at("output").data<float>();
//
// Every failure is a quint::Error (a std::runtime_error) whose what() reads
// "FILE, node 'NAME', op TYPE (DOMAIN opset N): reason"; context() has the fields one by one.
//
// Installed with `cmake --install`: find_package(quint) + target_link_libraries(app quint::quint),
// or pkg-config quint (compile as C++20). Link-time needs of the static library (ONNX's protobuf
// schema library, protobuf, threads) come with both.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quint/arith.h"
#include "quint/explain.h"
#include "quint/quant.h"
#include "quint/tensor.h"

namespace quint {

// How QDQ models (DequantizeLinear → op → QuantizeLinear) run: `Fused` replaces the units
// ONNX Runtime fuses by integer operators (QLinearConv …) as ONNX Runtime does with graph
// optimizations on; `Float` runs the graph as written, in float, as the ONNX spec defines it.
enum class QdqMode { Fused, Float };

struct SessionOptions {
  int threads = 1;               // worker threads of a run, including the caller's
  Arith arith = Arith::Onnx;     // requantization arithmetic of the integer operators
  std::string isa = "auto";      // "auto", "ref", "avx2", "avx512", "vnni" (or env QUINT_ISA)
  QdqMode qdq = QdqMode::Fused;
  // Concrete sizes for symbolic input dims, by dim name ("N" -> 1). Unnamed or unlisted
  // symbolic dims of an input default to 1 until a run supplies real tensors.
  std::map<std::string, int64_t> dim_values;
  int64_t max_tensor_bytes = int64_t{4} << 30;  // largest tensor the model may declare
};

struct IoInfo {
  std::string name;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;           // -1 for symbolic
  std::vector<std::string> dim_params; // names of symbolic dims ("" otherwise)
};

// One node output as the model defines it: ONNX name, NCHW, the model's dtype, and its
// quantization parameters when the model gives them. The references are valid only during the
// Observer::on_node call, and `value` usually views memory the run reuses: clone() what you keep.
struct ObservedTensor {
  const std::string& name;
  const Tensor& value;
  const QuantParams& quant;
};

struct ObservedNode {
  int index = 0;                       // position in execution order
  const std::string& name;             // node name (for a fused unit: the name of its op node)
  const std::string& op_type;          // the operator that ran, e.g. QLinearConv
  const std::string& domain;
  std::vector<ObservedTensor> outputs;
};

// Sees every node's outputs during a run: constant-folded nodes first, then each executed node in
// execution order. Called on the thread that called Session::run, one node at a time (the run
// waits for it); an exception thrown from on_node ends the run and propagates out of run().
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_node(const ObservedNode& node) = 0;
};

// Time spent in one step of a run (for `quint bench --profile`).
struct StepTime {
  std::string node, op_type;  // "(layout)" for a conversion the planner inserted
  double ms = 0;
  int64_t macs = 0;  // multiply-accumulates of the step (0 for operators without)
};

struct RunOptions {
  Observer* observer = nullptr;
  // When set, the time of every step is appended here.
  std::vector<StepTime>* profile = nullptr;
  // Tensors that replace values of the same name as soon as they are produced: the observer
  // still sees the computed value, but later nodes read the replacement. Feeding a reference
  // run's tensors this way judges every node on the reference's inputs ("local" comparison).
  const std::map<std::string, Tensor>* replace = nullptr;
};

// What `quint info` prints about a model.
struct ModelSummary {
  std::string path, producer, graph_name;
  int64_t ir_version = 0;
  std::map<std::string, int> opsets;
  std::vector<IoInfo> inputs, outputs;
  std::map<std::string, int> op_histogram;  // of the model's nodes, "domain:op" or "op"
  std::vector<std::string> unsupported;     // every unsupported node, with the reason
  int64_t parameter_bytes = 0;              // bytes of all initializers
  int64_t macs = 0;                         // multiply-accumulates of one run (planned shapes)
  int nodes = 0, planned_steps = 0, folded_nodes = 0;
  // Nodes after an unsupported or invalid one, which could not be planned: planned_steps and macs
  // leave them out (their missing operators are in `unsupported` all the same).
  int unplanned_nodes = 0;
  int layout_conversions = 0;               // NHWC→NCHW copies the planner inserted
  std::vector<std::string> fusions;         // QDQ units fused, one line each
  std::vector<std::string> not_fused;       // QDQ units left unfused, with the reason
  std::vector<std::string> metadata;        // "key: value" of the model's metadata_props
};

struct ExplainRequest {
  std::string tensor;                       // output tensor name of the node to explain
  std::vector<int64_t> index;               // element coordinates (n, c, h, w …)
};

// A loaded model: parsed, validated, constant-folded, QDQ-fused and planned once, then run as
// often as needed. Movable, not copyable; all const member functions are thread-safe.
class Session {
 public:
  // Loads the ONNX file (and external data files in its folder). Throws quint::Error for unreadable
  // or invalid models and for operators quint lacks (Session::summarize lists them all instead).
  explicit Session(const std::string& model_path, const SessionOptions& options = {});
  // A model held in memory (`name` stands for the file in messages). External data is refused:
  // there is no folder it could be confined to.
  static Session from_bytes(const std::string& bytes, const std::string& name,
                            const SessionOptions& options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  const std::vector<IoInfo>& inputs() const;
  const std::vector<IoInfo>& outputs() const;
  const SessionOptions& options() const;
  const std::string& path() const;

  // Runs the model. Inputs by graph input name (every one required), each with the input's dtype
  // and a shape matching its dims (symbolic dims: any size; a new shape is planned on first use).
  // The inputs are read in place, not copied: keep them alive and unchanged until run returns.
  // Returns the graph outputs by name, each in storage of its own (it stays valid after later
  // runs and after the Session is gone). Safe to call from several threads at once: each
  // concurrent run has its own activation memory; they share the Session's `threads` workers (a
  // run that finds them busy computes on its calling thread alone).
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const RunOptions& options = {}) const;

  // A description of the model, planned for its input shapes (symbolic dims as in options).
  // Never throws for unsupported ops: they are listed.
  static ModelSummary summarize(const std::string& model_path, const SessionOptions& options = {});

  // Runs the model on `inputs` and explains how one element of `request.tensor` was computed,
  // step by step, under every arithmetic. `replace` feeds reference tensors as in RunOptions (so
  // the element is computed from a reference run's inputs). Fails if the producing operator
  // cannot explain.
  Explanation explain(const std::map<std::string, Tensor>& inputs, const ExplainRequest& request,
                      const std::map<std::string, Tensor>* replace = nullptr) const;
  // Many elements of one tensor, from a single run.
  std::vector<Explanation> explain(const std::map<std::string, Tensor>& inputs, const std::string& tensor,
                                   const std::vector<std::vector<int64_t>>& indices,
                                   const std::map<std::string, Tensor>* replace = nullptr) const;
  // True when the operator producing `tensor` can explain its elements.
  bool can_explain(const std::string& tensor) const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads an ONNX TensorProto file (.pb, as in the ONNX node tests). Files and tensors larger
// than max_bytes are refused before they are read.
Tensor load_tensor_proto(const std::string& path, int64_t max_bytes = int64_t{4} << 30);
// Writes one (used by tests and tools that produce ONNX inputs).
void save_tensor_proto(const Tensor& t, const std::string& name, const std::string& path);

}  // namespace quint
