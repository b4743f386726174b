// Shared pieces of the operators' explain functions.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "arith/requant.h"
#include "quint/ops/op.h"

namespace quint::ops {

// A BuildContext over the explain context's tensors (all known, as constants), so an explain
// function validates its node exactly as the build function does.
class ExplainBuild {
 public:
  explicit ExplainBuild(const ExplainContext& ec, size_t num_outputs = 1);
  BuildContext& ctx() { return *ctx_; }

 private:
  std::vector<ValueInfo> infos_;
  KernelOptions options_;
  std::unique_ptr<BuildContext> ctx_;
};

std::string fmt_float(double v);  // shortest text that round-trips a float32 ("%.9g")
std::string fmt_index(const std::vector<int64_t>& idx);  // "[0, 5, 3, 7]"

// Checks idx against `shape` (rank and bounds) and returns the flat offset.
int64_t checked_offset(const std::vector<int64_t>& idx, const Shape& shape);

// The four arithmetics of a linear operator's requantization for channel c, as explain schemes.
std::vector<ExplainScheme> linear_schemes(const arith::LinearQuant& q, int64_t channels, int64_t c, int32_t acc);

}  // namespace quint::ops
