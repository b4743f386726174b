// How one output element of a quantized operator was computed, step by step, under every
// requantization arithmetic quint knows — the answer to "why does my element differ?".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quint/arith.h"

namespace quint {

struct ExplainStep {
  std::string label;    // "accumulator", "multiplier", ...
  std::string formula;  // how it is computed
  std::string value;    // the number
};

struct ExplainScheme {
  Arith arith = Arith::Onnx;
  std::vector<ExplainStep> steps;
  int64_t result = 0;
  // The real value just before rounding, in output units (zero point included), so that
  // distance to a rounding tie is |frac(pre_round) − 0.5|.
  double pre_round = 0;
  std::string note;     // e.g. why a PyTorch scheme used the int32 bias
};

struct Explanation {
  std::string tensor, node, op_type;
  std::vector<int64_t> index;            // the element, in the model's layout
  std::vector<std::string> details;      // inputs, receptive field, weights, zero-point terms
  std::vector<ExplainStep> pitfalls;     // what common hand-written mistakes would give instead
  std::vector<ExplainScheme> schemes;    // one per arithmetic
  Arith session_arith = Arith::Onnx;     // the arithmetic the run used
  int64_t actual = 0;                    // the element in quint's output
};

}  // namespace quint
