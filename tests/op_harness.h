// Runs one operator directly through the registry, as the planner would: build (validation,
// shape inference, prepacking) and then the kernel. Tests use it to check an operator against
// its reference on many shapes without writing a model file for each case.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "quint/ops/op.h"
#include "quint/tensor.h"

namespace quint::test {

struct OpInput {
  Tensor value;           // in the model's layout (NCHW)
  bool constant = false;  // known at load (initializer) or only at run time
  bool absent = false;    // an optional input left out ("")
  bool nhwc = false;      // hand it to the operator channels-last (layout-aware operators)
  static OpInput absent_input() { return {Tensor(), false, true}; }
};

inline OpInput cst(Tensor t) { return {std::move(t), true, false}; }
inline OpInput dyn(Tensor t) { return {std::move(t), false, false}; }

struct OpRun {
  std::string op_type;
  std::string domain = "ai.onnx";
  int opset = 13;
  Attributes attrs;
  std::vector<OpInput> inputs;
  size_t num_outputs = 1;
  ops::KernelOptions options;
  int threads = 1;
};

// Builds and runs the operator; throws quint::Error from the build like the planner would.
// Outputs are returned in the model's layout whatever layout the kernel wrote.
std::vector<Tensor> run_op(const OpRun& r);

// Element-wise equality with a message naming the first differing index.
::testing::AssertionResult tensors_equal(const Tensor& a, const Tensor& b);
// Float comparison |a-b| <= atol + rtol*|b|.
::testing::AssertionResult tensors_close(const Tensor& a, const Tensor& b, double rtol, double atol);

}  // namespace quint::test
