// The model as loaded: values (tensors by name) and nodes, with typed attributes. Protobuf types
// stop at the loader; everything after it works on this.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "quint/attributes.h"
#include "quint/tensor.h"

namespace quint::runtime {

struct Value {
  std::string name;
  // Declared type and shape (from graph inputs/outputs/value_info), if any. A dim of -1 is
  // symbolic or unknown; dim_params holds its name ("" when unnamed).
  DType dtype = DType::Undefined;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;
  std::optional<Tensor> initializer;  // constant data (initializer or folded Constant node)
  int producer = -1;                  // index of the producing node, -1 if none
};

struct Node {
  std::string name;      // as in the model; may be empty
  std::string op_type;
  std::string domain;    // "ai.onnx" or "com.microsoft" (or another domain, unsupported)
  int opset = 0;         // the model's opset version for the domain
  Attributes attrs;
  std::vector<int> inputs;   // value indices, -1 for an absent optional input
  // Value indices, -1 for an absent optional output. Never empty, and outputs[0] >= 0: the
  // loader refuses other nodes, so passes and the planner may rely on it.
  std::vector<int> outputs;
  std::string label() const { return name.empty() ? "(unnamed " + op_type + ")" : name; }
};

struct Graph {
  std::string path;  // the model file, for messages
  int64_t ir_version = 0;
  std::string producer_name, producer_version, graph_name;
  std::map<std::string, int> opsets;  // domain -> version ("ai.onnx", "com.microsoft", ...)
  std::map<std::string, std::string> metadata;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // graph inputs that are not initializers, in model order
  std::vector<int> outputs;  // graph outputs, in model order
  int constant_nodes_folded = 0;  // Constant nodes turned into initializers at load

  int find(const std::string& name) const;  // -1 when absent
  int add_value(const std::string& name);   // the caller ensures the name is new

 private:
  std::unordered_map<std::string, int> by_name_;
};

struct LoadLimits {
  // Largest single tensor (initializer or activation) in bytes. Well under the machine's memory
  // so that a hostile dim cannot make quint allocate it.
  int64_t max_tensor_bytes = int64_t{4} << 30;
  // Largest model file.
  int64_t max_file_bytes = int64_t{2} << 30;
};

// Parses and validates a model file. Errors name the file and, where relevant, the node.
Graph load_graph(const std::string& path, const LoadLimits& limits);
// The same from bytes in memory; `base_dir` resolves external data ("" forbids it).
Graph load_graph_from_bytes(const std::string& bytes, const std::string& name,
                            const std::string& base_dir, const LoadLimits& limits);

}  // namespace quint::runtime
