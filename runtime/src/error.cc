#include "quint/error.h"

namespace quint {

namespace {
std::string format(const std::string& reason, const ErrorContext& c) {
  std::string where;
  auto add = [&](const std::string& k, const std::string& v) {
    if (v.empty()) return;
    if (!where.empty()) where += ", ";
    where += k + v;
  };
  add("", c.file);
  add("node ", c.node.empty() ? std::string() : "'" + c.node + "'");
  if (!c.op_type.empty()) {
    std::string op = c.op_type;
    if (!c.domain.empty()) op += " (" + c.domain + (c.opset ? " opset " + std::to_string(c.opset) : "") + ")";
    add("op ", op);
  }
  return where.empty() ? reason : where + ": " + reason;
}
}  // namespace

Error::Error(std::string reason, ErrorContext ctx)
    : std::runtime_error(format(reason, ctx)), reason_(std::move(reason)), ctx_(std::move(ctx)) {}

Error Error::with_context(const ErrorContext& outer) const {
  ErrorContext c = ctx_;
  if (c.file.empty()) c.file = outer.file;
  if (c.node.empty()) c.node = outer.node;
  if (c.op_type.empty()) c.op_type = outer.op_type;
  if (c.domain.empty()) c.domain = outer.domain;
  if (c.opset == 0) c.opset = outer.opset;
  return Error(reason_, c);
}

}  // namespace quint
