#include "model_builder.h"

#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tensor_proto.h"

namespace quint::test {

ModelBuilder& ModelBuilder::opset(const std::string& domain, int version) {
  opsets_[domain] = version;
  return *this;
}

ModelBuilder& ModelBuilder::input(const std::string& name, DType t, const std::vector<int64_t>& dims,
                                  const std::string& dim_param) {
  inputs_.push_back({name, t, dims, dim_param, true});
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, DType t, const std::vector<int64_t>& dims,
                                   bool with_shape) {
  outputs_.push_back({name, t, dims, "N", with_shape});
  return *this;
}

ModelBuilder& ModelBuilder::initializer(const std::string& name, const Tensor& t) {
  initializers_.emplace_back(name, t);
  return *this;
}

ModelBuilder& ModelBuilder::node(const std::string& op_type, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs, const Attributes& attrs,
                                 const std::string& domain, const std::string& name) {
  nodes_.push_back({op_type, domain, name.empty() ? outputs.at(0) : name, inputs, outputs, attrs});
  return *this;
}

ModelBuilder& ModelBuilder::metadata(const std::string& key, const std::string& value) {
  metadata_.emplace_back(key, value);
  return *this;
}

namespace {

void set_value_info(onnx::ValueInfoProto* vi, const std::string& name, DType t, const std::vector<int64_t>& dims,
                    const std::string& dim_param, bool with_shape) {
  vi->set_name(name);
  if (t == DType::Undefined) return;
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int>(t));
  if (!with_shape) return;
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = sh->add_dim();
    if (d >= 0) dim->set_dim_value(d);
    else dim->set_dim_param(dim_param);
  }
}

void set_attribute(onnx::AttributeProto* a, const std::string& name, const AttributeValue& v) {
  a->set_name(name);
  using AP = onnx::AttributeProto;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(AP::INT);
          a->set_i(x);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(AP::FLOAT);
          a->set_f(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(AP::STRING);
          a->set_s(x);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(AP::INTS);
          for (auto i : x) a->add_ints(i);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          a->set_type(AP::FLOATS);
          for (auto f : x) a->add_floats(f);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          a->set_type(AP::STRINGS);
          for (const auto& s : x) a->add_strings(s);
        } else {
          a->set_type(AP::TENSOR);
          runtime::tensor_to_proto(x, a->mutable_t());
        }
      },
      v);
}

}  // namespace

std::string ModelBuilder::bytes() const {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("quint-tests");
  for (const auto& [d, v] : opsets_) {
    auto* o = m.add_opset_import();
    o->set_domain(d);
    o->set_version(v);
  }
  for (const auto& [k, v] : metadata_) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  auto* g = m.mutable_graph();
  g->set_name("test");
  for (const auto& i : inputs_) set_value_info(g->add_input(), i.name, i.dtype, i.dims, i.dim_param, i.with_shape);
  for (const auto& o : outputs_) set_value_info(g->add_output(), o.name, o.dtype, o.dims, o.dim_param, o.with_shape);
  for (const auto& [name, t] : initializers_) {
    auto* p = g->add_initializer();
    runtime::tensor_to_proto(t, p);
    p->set_name(name);
  }
  for (const auto& n : nodes_) {
    auto* p = g->add_node();
    p->set_op_type(n.op_type);
    p->set_domain(n.domain);
    p->set_name(n.name);
    for (const auto& i : n.inputs) p->add_input(i);
    for (const auto& o : n.outputs) p->add_output(o);
    for (const auto& [k, v] : n.attrs.all()) set_attribute(p->add_attribute(), k, v);
  }
  std::string out;
  m.SerializeToString(&out);
  return out;
}

std::string temp_dir() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() / ("quint-tests-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

std::string write_temp_file(const std::string& name, const std::string& bytes) {
  std::string path = temp_dir() + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string ModelBuilder::save(const std::string& file_name) const { return write_temp_file(file_name, bytes()); }

}  // namespace quint::test
