#include "quint/attributes.h"

namespace quint {

const char* attribute_kind_name(const AttributeValue& v) {
  static const char* names[] = {"int", "float", "string", "ints", "floats", "strings", "tensor"};
  return names[v.index()];
}

const AttributeValue& Attributes::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) fail("required attribute '", name, "' is missing");
  return it->second;
}

namespace {
template <class T>
const T& expect(const AttributeValue& v, const std::string& name, const char* want) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  fail("attribute '", name, "' should be ", want, " but is ", attribute_kind_name(v));
}
}  // namespace

int64_t Attributes::get_int(const std::string& name, int64_t dflt) const {
  return has(name) ? get_int(name) : dflt;
}
int64_t Attributes::get_int(const std::string& name) const {
  return expect<int64_t>(at(name), name, "an int");
}
std::optional<int64_t> Attributes::find_int(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  return get_int(name);
}
float Attributes::get_float(const std::string& name, float dflt) const {
  if (!has(name)) return dflt;
  const AttributeValue& v = at(name);
  // Some exporters write integral float attributes as ints; accept those exactly.
  if (const int64_t* i = std::get_if<int64_t>(&v)) return static_cast<float>(*i);
  return expect<float>(v, name, "a float");
}
std::string Attributes::get_string(const std::string& name, const std::string& dflt) const {
  return has(name) ? expect<std::string>(at(name), name, "a string") : dflt;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> dflt) const {
  return has(name) ? expect<std::vector<int64_t>>(at(name), name, "a list of ints") : dflt;
}
std::vector<float> Attributes::get_floats(const std::string& name, std::vector<float> dflt) const {
  return has(name) ? expect<std::vector<float>>(at(name), name, "a list of floats") : dflt;
}
std::vector<std::string> Attributes::get_strings(const std::string& name) const {
  return has(name) ? expect<std::vector<std::string>>(at(name), name, "a list of strings")
                   : std::vector<std::string>{};
}
const Tensor& Attributes::get_tensor(const std::string& name) const {
  return expect<Tensor>(at(name), name, "a tensor");
}

}  // namespace quint
