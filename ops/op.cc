#include "quint/ops/op.h"

#include <algorithm>

namespace quint::ops {

const ValueInfo& BuildContext::input(size_t i) const {
  if (!has_input(i)) fail("input ", i, " is required but absent");
  return *inputs_[i];
}

const Tensor& BuildContext::constant_input(size_t i, const char* what) const {
  const ValueInfo& v = input(i);
  if (!v.constant) fail(what, " (input ", i, ") must be a constant (initializer or Constant node)");
  return *v.constant;
}

void BuildContext::expect_inputs(size_t min, size_t max) const {
  size_t present = inputs_.size();
  while (present > 0 && inputs_[present - 1] == nullptr) --present;
  if (present < min || inputs_.size() > max) {
    if (min == max) fail("expects ", min, " inputs, has ", inputs_.size());
    fail("expects ", min, " to ", max, " inputs, has ", inputs_.size());
  }
  for (size_t i = 0; i < min; ++i)
    if (inputs_[i] == nullptr) fail("input ", i, " is required but absent");
}

void BuildContext::expect_dtype(size_t i, std::initializer_list<DType> allowed,
                                const char* what) const {
  DType t = input(i).dtype;
  if (std::find(allowed.begin(), allowed.end(), t) != allowed.end()) return;
  std::string list;
  for (DType a : allowed) list += std::string(list.empty() ? "" : " or ") + dtype_name(a);
  fail(what, " (input ", i, ") must be ", list, ", got ", dtype_name(t));
}

void BuildContext::set_output(size_t i, DType dtype, Shape shape, QuantParams quant) {
  if (i >= outputs_.size()) return;  // the node does not produce this optional output
  // Validates the dims, and bounds what a build function may allocate for the output (tables
  // with one entry per output coordinate). Empty outputs count their non-zero dims, so a
  // [0, 2^40] output cannot ask for a 2^40-entry table either.
  const int64_t extent = shape_extent(shape);
  const int64_t es = static_cast<int64_t>(std::max<size_t>(1, dtype_size(dtype)));
  if (extent > options_.max_tensor_bytes / es)
    fail("output ", i, " of shape ", shape_str(shape), " (", dtype_name(dtype), ") exceeds the tensor size limit of ",
         options_.max_tensor_bytes, " bytes");
  outputs_[i] = ValueInfo{dtype, std::move(shape), nullptr, std::move(quant)};
}

void BuildContext::set_output_constant(size_t i, Tensor value, QuantParams quant) {
  if (i >= outputs_.size()) return;
  outputs_[i] = ValueInfo{value.dtype(), value.shape(), nullptr, std::move(quant)};
  constants_[i] = std::move(value);
}

void BuildContext::require_plain_layout() const { throw NeedPlainLayout{}; }

bool BuildContext::any_input_nhwc() const {
  return std::any_of(inputs_.begin(), inputs_.end(),
                     [](const ValueInfo* v) { return v && v->layout == Layout::NHWC; });
}

void BuildContext::set_output_layout(size_t i, Layout layout) {
  if (i >= outputs_.size()) return;
  if (layout == Layout::NHWC && outputs_[i].shape.size() != 4)
    fail("output ", i, " has rank ", outputs_[i].shape.size(), "; only rank-4 values can be NHWC");
  outputs_[i].layout = layout;
}

void RunStatus::fail(std::string reason) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_.load(std::memory_order_relaxed)) return;
  reason_ = std::move(reason);
  failed_.store(true, std::memory_order_release);
}

std::string RunStatus::take() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string r = std::move(reason_);
  reason_.clear();
  failed_.store(false, std::memory_order_release);
  return r;
}

void Registry::add(OpDef def) { defs_.push_back(std::move(def)); }

const OpDef* Registry::find(const std::string& domain, const std::string& op_type,
                            int opset) const {
  for (const OpDef& d : defs_)
    if (d.domain == domain && d.op_type == op_type && opset >= d.min_opset &&
        opset <= d.max_opset)
      return &d;
  return nullptr;
}

bool Registry::knows(const std::string& domain, const std::string& op_type) const {
  return std::any_of(defs_.begin(), defs_.end(), [&](const OpDef& d) {
    return d.domain == domain && d.op_type == op_type;
  });
}

}  // namespace quint::ops
