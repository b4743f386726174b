#include "op_schema.h"

#include <algorithm>
#include <map>
#include <variant>

#include "quint/error.h"

namespace quint::runtime {

namespace {

constexpr int kUnbounded = 2147483647;

const char* kind_name(char kind) {
  switch (kind) {
    case 'i': return "an int";
    case 'f': return "a float";
    case 's': return "a string";
    case 't': return "a tensor";
    case 'g': return "a graph";
    case 'p': return "a sparse tensor";
    case 'y': return "a type";
    case 'I': return "a list of ints";
    case 'F': return "a list of floats";
    case 'S': return "a list of strings";
    case 'T': return "a list of tensors";
    case 'G': return "a list of graphs";
    case 'P': return "a list of sparse tensors";
    case 'Y': return "a list of types";
  }
  return "an unknown kind";
}

// The schema kind of an attribute value as the loader read it (see AttributeValue).
char value_kind(const AttributeValue& v) {
  static constexpr char kinds[] = {'i', 'f', 's', 'I', 'F', 'S', 't'};
  static_assert(std::variant_size_v<AttributeValue> == sizeof kinds);
  return kinds[v.index()];
}

std::string type_list(uint32_t mask) {
  std::string s;
  for (int e = 0; e < 32; ++e) {
    if (!(mask >> e & 1u)) continue;
    if (!s.empty()) s += ", ";
    s += dtype_is_known(e) ? dtype_name(static_cast<DType>(e)) : ("type " + std::to_string(e));
  }
  return s.empty() ? "no tensor type" : s;
}

std::string title(const OpSchema& s) {
  return cat(s.op_type, " (", s.domain, " since opset ", s.since_version, ")");
}

// The formal parameter that input i binds to, or nullptr beyond the last one.
const SchemaInput* param_of(const OpSchema& s, size_t i) {
  if (i < s.inputs.size()) return &s.inputs[i];
  if (!s.inputs.empty() && s.inputs.back().option == '*') return &s.inputs.back();
  return nullptr;
}

// "1 input", "2 or more inputs", "2 to 3 inputs".
std::string count_range(int lo, int hi, const char* noun) {
  if (lo == hi) return cat(lo, " ", noun, lo == 1 ? "" : "s");
  if (hi == kUnbounded) return cat(lo, " or more ", noun, "s");
  return cat(lo, " to ", hi, " ", noun, "s");
}

const std::vector<OpSchema>& all_op_schemas() {
  static const std::vector<OpSchema> schemas = {
#include "op_schemas.inc"
  };
  return schemas;
}

}  // namespace

int OpSchema::min_inputs() const {
  int n = 0;
  for (const auto& p : inputs) n += p.option == '1' ? 1 : 0;
  // A variadic parameter takes at least one value.
  if (!inputs.empty() && inputs.back().option == '*') ++n;
  return n;
}

int OpSchema::max_inputs() const {
  if (!inputs.empty() && inputs.back().option == '*') return kUnbounded;
  return static_cast<int>(inputs.size());
}

const OpSchema* find_op_schema(const std::string& domain, const std::string& op_type, int opset) {
  // By (domain, op_type): the versions in increasing since_version (the generator sorts them).
  static const std::map<std::pair<std::string, std::string>, std::vector<const OpSchema*>> index = [] {
    std::map<std::pair<std::string, std::string>, std::vector<const OpSchema*>> m;
    for (const OpSchema& s : all_op_schemas()) m[{s.domain, s.op_type}].push_back(&s);
    return m;
  }();
  auto it = index.find({domain, op_type});
  if (it == index.end()) return nullptr;
  const OpSchema* found = nullptr;
  for (const OpSchema* s : it->second)
    if (s->since_version <= opset) found = s;
  return found;
}

void check_node_schema(const OpSchema& s, const Node& node) {
  for (const auto& attr : node.attrs.all()) {
    const std::string& name = attr.first;
    const AttributeValue& value = attr.second;
    auto a = std::find_if(s.attributes.begin(), s.attributes.end(),
                          [&](const SchemaAttribute& x) { return name == x.name; });
    if (a == s.attributes.end()) {
      std::string known;
      for (const auto& x : s.attributes) known += cat(known.empty() ? "" : ", ", x.name);
      fail("unknown attribute '", name, "': ", title(s), " has ",
           known.empty() ? std::string("no attributes") : "the attributes " + known);
    }
    if (value_kind(value) != a->kind)
      fail("attribute '", name, "' is ", kind_name(value_kind(value)), "; ", title(s), " wants ", kind_name(a->kind));
  }
  for (const auto& a : s.attributes)
    if (a.required && !node.attrs.has(a.name))
      fail("required attribute '", a.name, "' is missing (", title(s), ")");

  const int n_in = static_cast<int>(node.inputs.size());
  if (n_in < s.min_inputs() || n_in > s.max_inputs())
    fail("the node has ", n_in, " inputs; ", title(s), " takes ", count_range(s.min_inputs(), s.max_inputs(), "input"));
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const SchemaInput* p = param_of(s, i);
    if (node.inputs[i] < 0 && p->option != '?')
      fail("input ", i, " ('", p->name, "') is required but its name is empty (", title(s), ")");
  }
  const int n_out = static_cast<int>(node.outputs.size());
  if (n_out < s.min_outputs || n_out > s.max_outputs)
    fail("the node has ", n_out, " outputs; ", title(s), " has ", count_range(s.min_outputs, s.max_outputs, "output"));
}

void check_input_types(const std::string& domain, const std::string& op_type, int opset,
                       const std::vector<const ops::ValueInfo*>& inputs) {
  const OpSchema* schema = find_op_schema(domain, op_type, opset);
  if (!schema) return;
  const OpSchema& s = *schema;
  std::vector<DType> types(inputs.size(), DType::Undefined);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i]) types[i] = inputs[i]->dtype;
  std::map<std::string, size_t> bound;  // type parameter -> first input bound to it
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == DType::Undefined) continue;
    const SchemaInput* p = param_of(s, i);
    if (!p) continue;  // counts are checked at load
    const int e = static_cast<int>(types[i]);
    if (!(p->types >> e & 1u))
      fail("input ", i, " ('", p->name, "') is ", dtype_name(types[i]), "; ", title(s), " accepts ",
           type_list(p->types), " there");
    if (!*p->type_param || (p->option == '*' && !p->homogeneous)) continue;
    auto [it, fresh] = bound.emplace(p->type_param, i);
    if (!fresh && types[it->second] != types[i])
      fail("input ", i, " ('", p->name, "') is ", dtype_name(types[i]), " but input ", it->second, " ('",
           param_of(s, it->second)->name, "') is ", dtype_name(types[it->second]), "; ", title(s),
           " wants both of one type (", p->type_param, ")");
  }
}

}  // namespace quint::runtime
