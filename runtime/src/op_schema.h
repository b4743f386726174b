// ONNX operator schemas of the operators quint runs (generated into op_schemas.inc by
// scripts/gen_op_schemas.py): which attributes a node may carry and of what kind, how many
// inputs and outputs it has, and which element types each input accepts. The loader checks every
// node of a known operator against them, as ONNX Runtime does when it resolves a graph, so that a
// misspelt attribute or a forbidden type is an error instead of a silently different model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph.h"
#include "quint/ops/op.h"

namespace quint::runtime {

struct SchemaAttribute {
  const char* name;
  char kind;  // i f s t g p y (int, float, string, tensor, graph, sparse tensor, type); upper case: a list
  bool required;
};

struct SchemaInput {
  const char* name;
  char option;             // '1' required, '?' optional, '*' variadic
  const char* type_param;  // "" when the type is fixed
  uint32_t types;          // bit e set when ONNX element type e is allowed
  bool homogeneous;        // variadic: all values share one type
};

struct OpSchema {
  const char* domain;
  const char* op_type;
  int since_version;
  int min_outputs, max_outputs;
  std::vector<SchemaAttribute> attributes;
  std::vector<SchemaInput> inputs;

  int min_inputs() const;
  int max_inputs() const;
};

// The schema in force for op_type at the model's opset (the newest since_version <= opset), or
// nullptr when quint has none (an operator it does not run, or an opset before its first version).
const OpSchema* find_op_schema(const std::string& domain, const std::string& op_type, int opset);
// Attribute names, kinds and presence; input and output counts; no empty name for a required
// input. Fails with a message naming what is wrong (the caller adds the node).
void check_node_schema(const OpSchema& schema, const Node& node);

// The node's input element types against its operator's schema at `opset` (nothing to check when
// quint has no schema for it), including that inputs bound to one type parameter have the same
// type. `inputs[i]` is nullptr for an absent input. For the planner and constant folding, which
// know the types.
void check_input_types(const std::string& domain, const std::string& op_type, int opset,
                       const std::vector<const ops::ValueInfo*>& inputs);

}  // namespace quint::runtime
