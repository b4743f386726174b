// Typed node attributes. The loader converts ONNX AttributeProtos into these once; kernels read
// them by name with a default, and a wrong kind is an error naming the attribute.
// (For operator implementations; an application using Session does not need this header.)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "quint/tensor.h"

namespace quint {

using AttributeValue = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                                    std::vector<float>, std::vector<std::string>, Tensor>;

class Attributes {
 public:
  void set(const std::string& name, AttributeValue v) { values_[name] = std::move(v); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::map<std::string, AttributeValue>& all() const { return values_; }

  int64_t get_int(const std::string& name, int64_t dflt) const;
  int64_t get_int(const std::string& name) const;  // required
  float get_float(const std::string& name, float dflt) const;
  std::string get_string(const std::string& name, const std::string& dflt) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> dflt = {}) const;
  std::vector<float> get_floats(const std::string& name, std::vector<float> dflt = {}) const;
  std::vector<std::string> get_strings(const std::string& name) const;
  const Tensor& get_tensor(const std::string& name) const;  // required
  std::optional<int64_t> find_int(const std::string& name) const;

 private:
  const AttributeValue& at(const std::string& name) const;
  std::map<std::string, AttributeValue> values_;
};

// "int", "float", "ints" ... for messages.
const char* attribute_kind_name(const AttributeValue& v);

}  // namespace quint
