// quint reports every failure as a quint::Error: a message plus the context a user needs to find
// the cause (file, node, op type, domain, opset). Loading validates what kernels later trust, so
// an Error is thrown before a run starts rather than a crash during it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace quint {

struct ErrorContext {
  ErrorContext() = default;
  ErrorContext(std::string file_, std::string node_ = {}, std::string op_type_ = {},
               std::string domain_ = {}, int opset_ = 0)
      : file(std::move(file_)), node(std::move(node_)), op_type(std::move(op_type_)),
        domain(std::move(domain_)), opset(opset_) {}
  std::string file;     // model or input file
  std::string node;     // node name (or "#index" when the node has no name)
  std::string op_type;  // e.g. "QLinearConv"
  std::string domain;   // "ai.onnx" or "com.microsoft"
  int opset = 0;        // resolved opset version of the domain, 0 when unknown
  bool empty() const { return file.empty() && node.empty() && op_type.empty(); }
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string reason, ErrorContext ctx = {});
  const std::string& reason() const { return reason_; }
  const ErrorContext& context() const { return ctx_; }
  // Returns a copy whose context fields that are empty are filled from `outer`.
  Error with_context(const ErrorContext& outer) const;

 private:
  std::string reason_;
  ErrorContext ctx_;
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <class T, class... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into a string.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::append_all(os, args...);
  return os.str();
}

// Throws quint::Error with a message built from the arguments.
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

#define QUINT_CHECK(cond, ...)                 \
  do {                                         \
    if (!(cond)) ::quint::fail(__VA_ARGS__);   \
  } while (0)

}  // namespace quint
