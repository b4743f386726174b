// ONNX protobuf -> Graph. Everything read from the file is validated here or by the operators'
// build functions before any kernel sees it.
#include <onnx/onnx_pb.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "graph.h"
#include "op_schema.h"
#include "packed_memory.h"
#include "raw_data_lift.h"
#include "tensor_proto.h"

namespace quint::runtime {

namespace fs = std::filesystem;

int Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

int Graph::add_value(const std::string& name) {
  values.push_back(Value{});
  values.back().name = name;
  const int v = static_cast<int>(values.size()) - 1;
  by_name_.emplace(name, v);
  return v;
}

namespace {

// The newest ai.onnx opset whose operators quint implements as specified.
constexpr int64_t kMaxOnnxOpset = 18;
// The newest IR version (as ONNX Runtime 1.30). Newer ones may change what fields mean.
constexpr int64_t kMaxIrVersion = 13;

std::string canonical_domain(const std::string& d) { return d.empty() || d == "ai.onnx" ? "ai.onnx" : d; }

void read_type(const onnx::ValueInfoProto& vi, Value& v, const std::string& what) {
  if (!vi.has_type()) return;
  const onnx::TypeProto& t = vi.type();
  if (!t.has_tensor_type())
    fail(what, " '", vi.name(), "' is not a tensor (sequences, maps and optionals are not supported)");
  const auto& tt = t.tensor_type();
  if (tt.elem_type() != 0) {
    if (!dtype_is_known(tt.elem_type()))
      fail(what, " '", vi.name(), "' has unsupported element type code ", tt.elem_type());
    v.dtype = static_cast<DType>(tt.elem_type());
  }
  if (tt.has_shape()) {
    v.has_shape = true;
    v.dims.clear();
    v.dim_params.clear();
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) fail(what, " '", vi.name(), "' has negative dim ", d.dim_value());
        v.dims.push_back(d.dim_value());
        v.dim_params.emplace_back();
      } else {
        v.dims.push_back(-1);
        v.dim_params.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
  }
}

// Where the lifted raw_data payloads of a parsed skeleton are (see raw_data_lift.h).
struct LiftedSource {
  const LiftedModel* model = nullptr;  // nullptr: the proto holds every raw_data itself
  const char* base = nullptr;          // the original bytes
  std::shared_ptr<void> owner;         // keeps them alive; nullptr: tensors copy them

  template <class Key>
  std::optional<RawBytes> find(const std::map<Key, LiftedModel::Span>& spans, const Key& key) const {
    auto it = spans.find(key);
    if (it == spans.end()) return std::nullopt;
    return RawBytes{base + it->second.offset, it->second.size, owner};
  }
  std::optional<RawBytes> initializer(size_t i) const {
    return model ? find(model->initializers, i) : std::nullopt;
  }
  std::optional<RawBytes> attribute_tensor(size_t node, size_t attribute) const {
    return model ? find(model->attribute_tensors, std::pair<size_t, size_t>(node, attribute)) : std::nullopt;
  }
};

// A tensor proto's value; its raw_data is moved out of the proto or read where it was lifted to
// (read once, never kept twice: QDQ exports hold all their weights in Constant nodes).
Tensor read_tensor(onnx::TensorProto&& t, const TensorReadContext& tctx, const std::optional<RawBytes>& raw) {
  return raw ? tensor_from_proto(std::move(t), tctx, *raw) : tensor_from_proto(std::move(t), tctx);
}

// The attribute's value; `raw` is the lifted payload of its tensor, if any.
AttributeValue read_attribute(onnx::AttributeProto& a, const TensorReadContext& tctx, int64_t ir_version,
                              const std::optional<RawBytes>& raw) {
  if (!a.ref_attr_name().empty())
    fail("attribute '", a.name(), "' refers to a function attribute; functions are not supported");
  using AP = onnx::AttributeProto;
  switch (a.type()) {
    case AP::INT: return a.i();
    case AP::FLOAT: return a.f();
    case AP::STRING: return a.s();
    case AP::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case AP::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case AP::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case AP::TENSOR: return read_tensor(std::move(*a.mutable_t()), tctx, raw);
    case AP::GRAPH:
    case AP::GRAPHS:
      fail("attribute '", a.name(), "' is a subgraph; control flow (If, Loop, Scan) is not supported");
    case AP::UNDEFINED:
      // ONNX requires the type from IR version 2 on (ONNX Runtime refuses untyped attributes);
      // IR version 1 producers omitted it: infer it from the one populated field.
      if (ir_version >= 2) fail("attribute '", a.name(), "' has no type (required from IR version 2 on)");
      if (a.has_i()) return a.i();
      if (a.has_f()) return a.f();
      if (a.has_s()) return a.s();
      if (a.ints_size()) return std::vector<int64_t>(a.ints().begin(), a.ints().end());
      if (a.floats_size()) return std::vector<float>(a.floats().begin(), a.floats().end());
      if (a.has_t()) return read_tensor(std::move(*a.mutable_t()), tctx, raw);
      fail("attribute '", a.name(), "' has no type and no value");
    default:
      fail("attribute '", a.name(), "' has unsupported type ", static_cast<int>(a.type()));
  }
}

// A Constant node's value as a tensor (any of its value_* attributes).
Tensor constant_value(const Node& n) {
  const auto& all = n.attrs.all();
  if (all.size() != 1) fail("Constant must have exactly one value attribute, has ", all.size());
  const auto& [key, v] = *all.begin();
  if (key == "value") {
    // The fuzzer gave 'value' as an INT: std::get would throw std::bad_variant_access.
    if (!std::holds_alternative<Tensor>(v)) fail("Constant attribute 'value' must be a tensor");
    return std::get<Tensor>(v);
  }
  if (key == "value_float") return Tensor::scalar<float>(n.attrs.get_float(key, 0));
  if (key == "value_int") return Tensor::scalar<int64_t>(n.attrs.get_int(key));
  if (key == "value_floats") {
    auto f = n.attrs.get_floats(key);
    return Tensor::from_vector<float>({static_cast<int64_t>(f.size())}, f);
  }
  if (key == "value_ints") {
    auto i = n.attrs.get_ints(key);
    return Tensor::from_vector<int64_t>({static_cast<int64_t>(i.size())}, i);
  }
  if (key == "value_string") {
    Tensor t(DType::String, {});
    t.data<std::string>()[0] = n.attrs.get_string(key, "");
    return t;
  }
  if (key == "value_strings") {
    auto s = n.attrs.get_strings(key);
    Tensor t(DType::String, {static_cast<int64_t>(s.size())});
    for (size_t i = 0; i < s.size(); ++i) t.data<std::string>()[i] = s[i];
    return t;
  }
  fail("Constant attribute '", key, "' is not supported (sparse_value?)");
}

Graph build_graph(onnx::ModelProto& model, const std::string& path, const std::string& base_dir,
                  const LoadLimits& limits, const LiftedSource& lifted) {
  Graph g;
  g.path = path;
  g.ir_version = model.ir_version();
  g.producer_name = model.producer_name();
  g.producer_version = model.producer_version();
  if (!model.has_graph()) fail("the file holds no graph (is it an ONNX model?)");
  const onnx::GraphProto& gp = model.graph();
  g.graph_name = gp.name();
  for (const auto& p : model.metadata_props()) g.metadata[p.key()] = p.value();
  for (const auto& op : model.opset_import()) {
    std::string d = canonical_domain(op.domain());
    if (op.version() < 1 || op.version() > 10000)
      fail("opset import for domain '", d, "' has invalid version ", op.version());
    // Newer opsets change operators quint knows (Cast, Pad, QuantizeLinear ... in 19): running
    // them with older semantics could be silently wrong.
    if (d == "ai.onnx" && op.version() > kMaxOnnxOpset)
      fail("the model imports ai.onnx opset ", op.version(), "; quint implements opsets 1 to ", kMaxOnnxOpset,
           " (export with opset_version=", kMaxOnnxOpset, " or lower)");
    if (d == "com.microsoft" && op.version() != 1)
      fail("the model imports com.microsoft opset ", op.version(), "; quint implements version 1");
    auto [it, fresh] = g.opsets.emplace(d, static_cast<int>(op.version()));
    if (!fresh && it->second != op.version())
      fail("the model imports domain '", d, "' twice, at opsets ", it->second, " and ", op.version());
  }
  // ONNX requires an IR version, and from IR version 3 on at least one opset import (ONNX
  // Runtime refuses both too): guessing an opset would run the nodes with the wrong semantics.
  if (model.ir_version() <= 0) fail("the model has no IR version (ModelProto.ir_version is required)");
  if (model.ir_version() > kMaxIrVersion)
    fail("the model has IR version ", model.ir_version(), "; quint reads IR versions 1 to ", kMaxIrVersion);
  if (g.opsets.empty()) {
    if (model.ir_version() >= 3)
      fail("the model imports no opset (required from IR version 3 on; this model has IR version ",
           model.ir_version(), ")");
    // IR version 1/2 models predate opset_import; ONNX says they mean ai.onnx opset 1.
    g.opsets["ai.onnx"] = 1;
  }
  if (gp.sparse_initializer_size() > 0)
    fail("sparse initializers are not supported (", gp.sparse_initializer_size(), " found)");

  TensorReadContext tctx{base_dir, path, limits.max_tensor_bytes};
  std::map<std::string, int> index;
  auto define = [&](const std::string& name, const char* what) {
    if (name.empty()) fail("a ", what, " has an empty name");
    auto [it, inserted] = index.emplace(name, static_cast<int>(g.values.size()));
    if (!inserted) fail(what, " '", name, "' is defined more than once");
    g.add_value(name);
    return it->second;
  };

  for (int i = 0; i < gp.initializer_size(); ++i) {
    onnx::TensorProto& init = *model.mutable_graph()->mutable_initializer(i);
    int v = define(init.name(), "initializer");
    try {
      g.values[v].initializer = read_tensor(std::move(init), tctx, lifted.initializer(static_cast<size_t>(i)));
    } catch (const Error& e) {
      throw Error("initializer '" + init.name() + "': " + e.reason(), {path});
    }
    g.values[v].dtype = g.values[v].initializer->dtype();
    g.values[v].has_shape = true;
    g.values[v].dims = g.values[v].initializer->shape();
    g.values[v].dim_params.assign(g.values[v].dims.size(), "");
  }
  for (const auto& in : gp.input()) {
    auto it = index.find(in.name());
    if (it != index.end()) {
      // IR < 4 lists initializers among the inputs: they stay constants with a declared type.
      // Anything else of the same name is a graph input listed twice.
      if (!g.values[it->second].initializer) fail("graph input '", in.name(), "' is defined more than once");
      Value tmp;
      read_type(in, tmp, "input");
      const Value& v = g.values[it->second];
      if (tmp.dtype != DType::Undefined && tmp.dtype != v.dtype)
        fail("input '", in.name(), "' is declared ", dtype_name(tmp.dtype), " but its initializer is ",
             dtype_name(v.dtype));
      continue;
    }
    int v = define(in.name(), "graph input");
    read_type(in, g.values[v], "input");
    if (g.values[v].dtype == DType::Undefined) fail("graph input '", in.name(), "' has no element type");
    if (!g.values[v].has_shape) fail("graph input '", in.name(), "' has no shape");
    g.inputs.push_back(v);
  }
  // Graph inputs are all defined by now (nodes come next): a set, not a search per node.
  const std::set<int> input_set(g.inputs.begin(), g.inputs.end());

  for (int ni = 0; ni < gp.node_size(); ++ni) {
    const onnx::NodeProto& np = gp.node(ni);
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = canonical_domain(np.domain());
    ErrorContext ectx{path, n.name.empty() ? "#" + std::to_string(ni) : n.name, n.op_type, n.domain, 0};
    try {
      auto os = g.opsets.find(n.domain);
      if (os == g.opsets.end()) fail("the model imports no opset for domain '", n.domain, "'");
      n.opset = os->second;
      ectx.opset = n.opset;
      auto& attributes = *model.mutable_graph()->mutable_node(ni)->mutable_attribute();
      for (int ai = 0; ai < attributes.size(); ++ai) {
        onnx::AttributeProto& a = attributes[ai];
        if (a.name().empty()) fail("an attribute has an empty name");
        if (n.attrs.has(a.name())) fail("attribute '", a.name(), "' appears twice");
        n.attrs.set(a.name(), read_attribute(a, tctx, g.ir_version,
                                             lifted.attribute_tensor(static_cast<size_t>(ni), static_cast<size_t>(ai))));
      }
      for (const auto& name : np.input()) {
        if (name.empty()) {
          n.inputs.push_back(-1);
          continue;
        }
        auto it = index.find(name);
        if (it == index.end()) {
          // Defined by a later node (the model is not topologically sorted), or nowhere: checked
          // once all nodes are read.
          int v = g.add_value(name);
          index.emplace(name, v);
          n.inputs.push_back(v);
          continue;
        }
        n.inputs.push_back(it->second);
      }
      for (const auto& name : np.output()) {
        if (name.empty()) {
          n.outputs.push_back(-1);
          continue;
        }
        auto it = index.find(name);
        int v;
        if (it == index.end()) {
          v = define(name, "node output");
        } else {
          v = it->second;
          // Allowed only for a forward reference created above (no producer, no initializer,
          // not a graph input).
          Value& val = g.values[v];
          bool is_input = input_set.count(v) != 0;
          if (val.producer >= 0 || val.initializer || is_input)
            fail("output '", name, "' is already defined (", val.producer >= 0 ? "by another node" : (is_input ? "as a graph input" : "as an initializer"), ")");
        }
        g.values[v].producer = static_cast<int>(g.nodes.size());
        n.outputs.push_back(v);
      }
      // Every ONNX operator has at least one output; the graph passes rely on it.
      if (n.outputs.empty()) fail("the node has no outputs");
      // Only recurrent operators (which quint does not run) may leave their first output unnamed.
      if (n.outputs[0] < 0) fail("the node's first output has no name");
      // Attributes, input and output counts against the operator's ONNX schema (operators quint
      // does not run are reported by the planner, with every other unsupported node).
      if (const OpSchema* schema = find_op_schema(n.domain, n.op_type, n.opset)) check_node_schema(*schema, n);
    } catch (const Error& e) {
      throw e.with_context(ectx);
    }
    g.nodes.push_back(std::move(n));
  }
  // Every value must be defined somewhere.
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    for (int v : n.inputs) {
      if (v < 0) continue;
      const Value& val = g.values[v];
      bool is_input = input_set.count(v) != 0;
      if (val.producer < 0 && !val.initializer && !is_input)
        throw Error("input '" + val.name + "' is not a graph input, an initializer or any node's output "
                    "(missing initializer?)",
                    {path, n.label(), n.op_type, n.domain, n.opset});
    }
  }
  for (const auto& vi : gp.value_info()) {
    auto it = index.find(vi.name());
    if (it == index.end()) continue;  // describes a value nobody uses
    Value& v = g.values[it->second];
    if (v.initializer) continue;
    Value tmp;
    read_type(vi, tmp, "value_info");
    if (v.dtype == DType::Undefined) v.dtype = tmp.dtype;
    if (!v.has_shape && tmp.has_shape) {
      v.has_shape = true;
      v.dims = tmp.dims;
      v.dim_params = tmp.dim_params;
    }
  }
  std::set<std::string> seen_outputs;
  for (const auto& out : gp.output()) {
    auto it = index.find(out.name());
    if (it == index.end()) fail("graph output '", out.name(), "' is not produced by any node or initializer");
    if (!seen_outputs.insert(out.name()).second) fail("graph output '", out.name(), "' is listed twice");
    Value tmp;
    read_type(out, tmp, "output");
    Value& v = g.values[it->second];
    if (v.dtype == DType::Undefined) v.dtype = tmp.dtype;
    if (!v.has_shape && tmp.has_shape) {
      v.has_shape = true;
      v.dims = tmp.dims;
      v.dim_params = tmp.dim_params;
    }
    g.outputs.push_back(it->second);
  }
  if (g.outputs.empty()) fail("the graph has no outputs");

  // Constant nodes become initializers: one mechanism for every constant.
  std::vector<Node> kept;
  std::vector<int> remap(g.nodes.size(), -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    Node& n = g.nodes[ni];
    if (n.op_type == "Constant" && n.domain == "ai.onnx") {
      try {
        if (n.outputs.size() != 1 || n.outputs[0] < 0) fail("Constant must have one output");
        if (!n.inputs.empty()) fail("Constant takes no inputs");
        Value& v = g.values[n.outputs[0]];
        v.initializer = constant_value(n);
        v.dtype = v.initializer->dtype();
        v.has_shape = true;
        v.dims = v.initializer->shape();
        v.dim_params.assign(v.dims.size(), "");
        v.producer = -1;
        ++g.constant_nodes_folded;
      } catch (const Error& e) {
        throw e.with_context({path, n.label(), n.op_type, n.domain, n.opset});
      }
      continue;
    }
    remap[ni] = static_cast<int>(kept.size());
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  for (Value& v : g.values)
    if (v.producer >= 0) v.producer = remap[static_cast<size_t>(v.producer)];
  return g;
}

}  // namespace

namespace {

// Payloads smaller than this stay in the protobuf (copying them is cheaper than a lookup).
constexpr size_t kLiftBytes = 4096;

const char* const kParseFailed = "not a valid ONNX model (protobuf parsing failed: truncated or not an ONNX file)";

// Parses `data` through a skeleton without the large raw_data payloads when the bytes allow it
// (see raw_data_lift.h), else as they are. `owner` keeps `data` alive for tensors that point into
// it; without one they copy.
Graph parse_and_build(const char* data, size_t size, std::shared_ptr<void> owner, const std::string& path,
                      const std::string& base_dir, const LoadLimits& limits) {
  if (size > static_cast<size_t>(std::numeric_limits<int>::max())) throw Error(kParseFailed, {path});
  onnx::ModelProto model;
  LiftedSource source;
  std::optional<LiftedModel> lifted = lift_raw_data(data, size, kLiftBytes);
  if (lifted && model.ParseFromArray(lifted->skeleton.data(), static_cast<int>(lifted->skeleton.size()))) {
    source.model = &*lifted;
    source.base = data;
    // Tensors keep the whole buffer alive, which the lifted payloads are most of (see
    // lift_raw_data). Under AddressSanitizer each tensor gets a block of its own instead, so that
    // overruns are caught.
    if (!ops::kAddressSanitizer) source.owner = std::move(owner);
  } else {
    model.Clear();
    if (!model.ParseFromArray(data, static_cast<int>(size))) throw Error(kParseFailed, {path});
  }
  try {
    return build_graph(model, path, base_dir, limits, source);
  } catch (const Error& e) {
    throw e.with_context({path});
  }
}

// The file's bytes in memory advised for huge pages: taken 4 KiB page by 4 KiB page, fresh
// memory costs more than the read itself (~50 ms for 25 MB on this VM, against ~12 ms).
// Tensors point into it.
std::shared_ptr<void> read_whole_file(int fd, size_t size, const std::string& path) {
  std::shared_ptr<void> owner = ops::map_huge(size);
  if (!owner) throw Error(cat("cannot allocate ", size, " bytes to read the file"), {path});
  void* p = owner.get();
  size_t done = 0;
  while (done < size) {
    const ssize_t r = ::read(fd, static_cast<char*>(p) + done, size - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(cat("cannot read the file: ", std::strerror(errno)), {path});
    if (r == 0) throw Error("the file became shorter while it was read", {path});
    done += static_cast<size_t>(r);
  }
  return owner;
}

}  // namespace

Graph load_graph_from_bytes(const std::string& bytes, const std::string& name,
                            const std::string& base_dir, const LoadLimits& limits) {
  if (bytes.empty()) throw Error("the file is empty", {name});
  return parse_and_build(bytes.data(), bytes.size(), nullptr, name, base_dir, limits);
}

Graph load_graph(const std::string& path, const LoadLimits& limits) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("no such file (or not a regular file)", {path});
  auto size = fs::file_size(path, ec);
  if (ec) throw Error("cannot read the file size: " + ec.message(), {path});
  if (static_cast<int64_t>(size) > limits.max_file_bytes)
    throw Error(cat("the file has ", size, " bytes, more than the limit of ", limits.max_file_bytes), {path});
  if (size == 0) throw Error("the file is empty", {path});
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(cat("cannot open the file: ", std::strerror(errno)), {path});
  std::shared_ptr<void> bytes;
  try {
    bytes = read_whole_file(fd, static_cast<size_t>(size), path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  fs::path base = fs::path(path).parent_path();
  if (base.empty()) base = ".";
  const char* data = static_cast<const char*>(bytes.get());
  return parse_and_build(data, static_cast<size_t>(size), std::move(bytes), path, base.string(), limits);
}

}  // namespace quint::runtime
