// quint's Python bindings (pybind11): the extension module `quint._quint`, re-exported by the
// package `quint` (python/quint/__init__.py, which adds `compare` and the report class).
//
// Data crosses the boundary without copies where it can: inputs are viewed in place (a
// C-contiguous, native-endian array of the model's dtype is not copied), and outputs hand their
// buffer to numpy with a capsule that keeps the quint::Tensor's storage alive. The GIL is
// released while a model loads, runs, dumps or explains, so Python threads can run one Session
// concurrently (Session::run is thread-safe). quint::Error becomes quint.Error (a RuntimeError)
// carrying the message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "compare.h"
#include "dump.h"
#include "image.h"
#include "json.h"
#include "quint/session.h"

namespace py = pybind11;

namespace quint::python {
namespace {

// ---------------------------------------------------------------- dtypes

// numpy's dtype for a quint element type. bfloat16 has none (outputs are widened to float32);
// strings are object arrays of str.
py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::Float32: return py::dtype("float32");
    case DType::Float64: return py::dtype("float64");
    case DType::Float16: return py::dtype("float16");
    case DType::UInt8: return py::dtype("uint8");
    case DType::Int8: return py::dtype("int8");
    case DType::UInt16: return py::dtype("uint16");
    case DType::Int16: return py::dtype("int16");
    case DType::Int32: return py::dtype("int32");
    case DType::Int64: return py::dtype("int64");
    case DType::UInt32: return py::dtype("uint32");
    case DType::UInt64: return py::dtype("uint64");
    case DType::Bool: return py::dtype("bool");
    case DType::String: return py::dtype("object");
    case DType::BFloat16: return py::dtype("float32");
    case DType::Undefined: break;
  }
  throw Error("a tensor of undefined element type cannot become a numpy array");
}

// What `TensorInfo.dtype` shows: numpy's dtype when there is one, else quint's name.
py::object info_dtype(DType t) {
  if (t == DType::BFloat16 || t == DType::Undefined) return py::str(dtype_name(t));
  return numpy_dtype(t);
}

// The quint element type of a numpy array; Undefined when quint has none (complex, datetime …).
DType dtype_of_array(const py::array& a) {
  const py::dtype d = a.dtype();
  const char kind = d.kind();
  const auto size = d.itemsize();
  switch (kind) {
    case 'f': return size == 4 ? DType::Float32 : size == 8 ? DType::Float64 : size == 2 ? DType::Float16 : DType::Undefined;
    case 'i': return size == 1 ? DType::Int8 : size == 2 ? DType::Int16 : size == 4 ? DType::Int32 : size == 8 ? DType::Int64 : DType::Undefined;
    case 'u': return size == 1 ? DType::UInt8 : size == 2 ? DType::UInt16 : size == 4 ? DType::UInt32 : size == 8 ? DType::UInt64 : DType::Undefined;
    case 'b': return DType::Bool;
    case 'U': case 'S': case 'O': return DType::String;
    default: return DType::Undefined;
  }
}

std::string array_dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

Shape array_shape(const py::array& a) {
  Shape s;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s.push_back(static_cast<int64_t>(a.shape(i)));
  return s;
}

// ---------------------------------------------------------------- tensors <-> arrays

// The array as a quint tensor. Numeric arrays are viewed in place after making them
// C-contiguous, aligned and native-endian (a copy only when they are not); `keep` holds what the
// view points into until the caller is done. Strings are copied into an owned tensor.
Tensor tensor_from_array(py::array a, DType dt, std::vector<py::object>& keep) {
  if (dt == DType::String) {
    Tensor t(DType::String, array_shape(a));
    auto* out = t.data<std::string>();
    py::ssize_t i = 0;
    for (py::handle item : a.attr("ravel")()) {
      if (py::isinstance<py::bytes>(item)) out[i++] = item.cast<std::string>();
      else out[i++] = py::str(item).cast<std::string>();
    }
    return t;
  }
  if (dt == DType::BFloat16 || dt == DType::Undefined) throw Error(cat("quint cannot take ", dtype_name(dt), " arrays from Python"));
  if (!(a.flags() & py::array::c_style) || !a.dtype().attr("isnative").cast<bool>() ||
      !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    py::object np = py::module_::import("numpy");
    a = np.attr("ascontiguousarray")(a, a.dtype().attr("newbyteorder")("="));
  }
  keep.push_back(a);
  return Tensor::view(dt, array_shape(a), const_cast<void*>(a.data()));
}

// Hands the tensor's storage to numpy: no copy when the tensor owns its storage (every output of
// Session::run does); a view of someone else's memory is copied first.
py::array array_from_tensor(Tensor t) {
  if (t.dtype() == DType::String) {
    py::array out(py::dtype("object"), std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()));
    py::object flat = out.attr("reshape")(-1);
    const auto* s = t.data<std::string>();
    for (int64_t i = 0; i < t.numel(); ++i) flat[py::int_(i)] = py::str(s[i]);
    return out;
  }
  if (t.dtype() == DType::BFloat16) {
    Tensor f(DType::Float32, t.shape());
    const auto* src = static_cast<const uint16_t*>(t.raw());
    float* dst = f.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = bfloat16_to_float(src[i]);
    t = f;
  }
  if (!t.owns_data()) t = t.clone();
  const auto itemsize = static_cast<py::ssize_t>(dtype_size(t.dtype()));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides(shape.size());
  py::ssize_t stride = itemsize;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  auto* holder = new Tensor(std::move(t));
  py::capsule owner(holder, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(numpy_dtype(holder->dtype()), shape, strides, holder->raw(), owner);
}

// ---------------------------------------------------------------- quantization parameters

py::object scale_obj(const QuantParams& q) {
  if (!q.present()) return py::none();
  if (!q.per_axis()) return py::float_(q.scale[0]);
  return py::array_t<float>(static_cast<py::ssize_t>(q.scale.size()), q.scale.data());
}
py::object zero_point_obj(const QuantParams& q) {
  if (!q.present()) return py::none();
  if (!q.per_axis()) return py::int_(q.zero_point.empty() ? 0 : q.zero_point[0]);
  return py::array_t<int32_t>(static_cast<py::ssize_t>(q.zero_point.size()), q.zero_point.data());
}
py::object axis_obj(const QuantParams& q) { return q.present() && q.per_axis() ? py::object(py::int_(q.axis)) : py::none(); }

// scale / zero_point / axis of a tensor dict (each optional; absent or None: not quantized).
QuantParams quant_from_dict(const py::dict& d) {
  QuantParams q;
  auto get = [&](const char* k) -> py::object { return d.contains(k) ? py::object(d[k]) : py::object(py::none()); };
  py::object s = get("scale"), z = get("zero_point"), ax = get("axis");
  if (s.is_none()) return q;
  auto sa = py::array_t<float, py::array::forcecast | py::array::c_style>::ensure(s);
  if (!sa) throw py::type_error("scale must be a number or a sequence of numbers");
  for (py::ssize_t i = 0; i < sa.size(); ++i) q.scale.push_back(sa.data()[i]);
  if (z.is_none()) {
    q.zero_point.assign(q.scale.size(), 0);
  } else {
    auto za = py::array_t<int64_t, py::array::forcecast | py::array::c_style>::ensure(z);
    if (!za) throw py::type_error("zero_point must be an integer or a sequence of integers");
    for (py::ssize_t i = 0; i < za.size(); ++i) q.zero_point.push_back(static_cast<int32_t>(za.data()[i]));
  }
  if (q.zero_point.size() != q.scale.size())
    throw Error(cat("scale has ", q.scale.size(), " values but zero_point has ", q.zero_point.size()));
  q.axis = ax.is_none() ? (q.per_axis() ? 1 : -1) : ax.cast<int>();
  return q;
}

py::dict tensor_dict(const std::string& name, const std::string& op, const std::string& node, py::object array,
                     const QuantParams& q) {
  py::dict d;
  d["name"] = name;
  d["op"] = op;
  d["node"] = node;
  d["array"] = std::move(array);
  d["scale"] = scale_obj(q);
  d["zero_point"] = zero_point_obj(q);
  d["axis"] = axis_obj(q);
  return d;
}

// ---------------------------------------------------------------- dumps

// Every node output of a run, copied out of the arena as it is produced.
class Collector final : public Observer {
 public:
  struct Entry {
    std::string name, op, node;
    Tensor value;
    QuantParams quant;
  };
  std::vector<Entry> entries;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) entries.push_back({o.name, n.op_type, n.name, o.value.clone(), o.quant});
  }
};

bool is_path(py::handle h) {
  return py::isinstance<py::str>(h) || py::hasattr(h, "__fspath__");
}
std::string path_str(py::handle h) { return py::str(py::module_::import("os").attr("fspath")(h)).cast<std::string>(); }

// A dump from Python: a dump folder's path, a list of tensor dicts (as Session.run(dump=True) and
// load_dump return them), or a dict {name: array}.
tools::LoadedDump loaded_dump(py::handle obj, std::vector<py::object>& keep, const std::string& label) {
  tools::LoadedDump d;
  if (is_path(obj)) {
    const std::string dir = path_str(obj);
    py::gil_scoped_release release;
    return tools::load_dump(dir);
  }
  d.manifest.producer = "in-memory dump";
  auto add = [&](const std::string& name, py::handle array, const std::string& op, const std::string& node,
                 const QuantParams& q) {
    if (d.tensors.count(name)) throw Error(cat(label, " holds tensor '", name, "' twice"));
    py::array a = py::array::ensure(array);
    if (!a) throw py::type_error(cat(label, ": tensor '", name, "' is not an array"));
    const DType dt = dtype_of_array(a);
    if (dt == DType::Undefined || dt == DType::String)
      throw py::type_error(cat(label, ": tensor '", name, "' has dtype ", array_dtype_str(a), ", which quint cannot compare"));
    Tensor t = tensor_from_array(a, dt, keep);
    d.manifest.tensors.push_back({name, "", op, node, t.shape(), dt, q});
    d.tensors[name] = t;
  };
  if (py::isinstance<py::dict>(obj)) {
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(obj)) add(py::str(k).cast<std::string>(), v, "", "", {});
    return d;
  }
  if (!py::isinstance<py::sequence>(obj))
    throw py::type_error(label + " must be a dump folder's path, a list of tensor dicts or a dict {name: array}");
  for (py::handle item : py::reinterpret_borrow<py::sequence>(obj)) {
    if (!py::isinstance<py::dict>(item)) throw py::type_error(label + ": every list item must be a tensor dict");
    py::dict e = py::reinterpret_borrow<py::dict>(item);
    if (!e.contains("name") || !e.contains("array"))
      throw py::type_error(label + ": a tensor dict needs at least 'name' and 'array'");
    auto str_or = [&](const char* k) { return e.contains(k) && !e[k].is_none() ? py::str(e[k]).cast<std::string>() : std::string(); };
    add(py::str(e["name"]).cast<std::string>(), e["array"], str_or("op"), str_or("node"), quant_from_dict(e));
  }
  return d;
}

py::list dump_to_list(const tools::LoadedDump& d) {
  py::list out;
  for (const tools::DumpEntry& e : d.manifest.tensors)
    out.append(tensor_dict(e.name, e.op, e.node, array_from_tensor(d.tensors.at(e.name)), e.quant));
  return out;
}

// ---------------------------------------------------------------- session

struct PySession {
  std::unique_ptr<Session> session;

  // Inputs from a dict {name: array-like}. Arrays must have the model input's dtype exactly (no
  // silent casts of float64 or int data); other objects (lists, scalars) are converted to it.
  std::map<std::string, Tensor> inputs(const py::dict& d, std::vector<py::object>& keep) const {
    std::map<std::string, Tensor> out;
    py::object np = py::module_::import("numpy");
    for (auto [k, v] : d) {
      const std::string name = py::str(k).cast<std::string>();
      const IoInfo* info = nullptr;
      for (const IoInfo& i : session->inputs())
        if (i.name == name) info = &i;
      py::array a;
      if (py::isinstance<py::array>(v)) {
        a = py::reinterpret_borrow<py::array>(v);
      } else if (info && info->dtype != DType::BFloat16) {
        a = np.attr("asarray")(v, numpy_dtype(info->dtype));
      } else {
        a = np.attr("asarray")(v);
      }
      const DType dt = dtype_of_array(a);
      if (info && dt != info->dtype)
        throw py::type_error(cat("input '", name, "' must be ", dtype_name(info->dtype), ", got a ", array_dtype_str(a),
                                 " array (convert it, e.g. x.astype(numpy.", dtype_name(info->dtype), "))"));
      if (dt == DType::Undefined) throw py::type_error(cat("input '", name, "': quint has no dtype like ", array_dtype_str(a)));
      out[name] = tensor_from_array(a, dt, keep);
    }
    return out;
  }

  std::map<std::string, Tensor> replacements(py::object replace, std::vector<py::object>& keep) const {
    std::map<std::string, Tensor> out;
    if (replace.is_none()) return out;
    tools::LoadedDump d = loaded_dump(replace, keep, "replace");
    for (auto& [name, t] : d.tensors) out[name] = std::move(t);
    // The graph inputs themselves are fed through `inputs`, not replaced.
    for (const IoInfo& in : session->inputs()) out.erase(in.name);
    return out;
  }

  py::object run(const py::dict& in, bool dump, py::object replace) const {
    std::vector<py::object> keep;
    std::map<std::string, Tensor> inputs = this->inputs(in, keep);
    std::map<std::string, Tensor> repl = replacements(replace, keep);
    Collector collector;
    RunOptions ro;
    if (dump) ro.observer = &collector;
    if (!repl.empty()) ro.replace = &repl;
    std::map<std::string, Tensor> outputs;
    {
      py::gil_scoped_release release;
      outputs = session->run(inputs, ro);
    }
    py::dict result;
    for (const IoInfo& o : session->outputs()) result[py::str(o.name)] = array_from_tensor(outputs.at(o.name));
    if (!dump) return result;
    py::list tensors;
    for (const IoInfo& i : session->inputs())
      tensors.append(tensor_dict(i.name, "Input", "", in[py::str(i.name)], {}));
    for (Collector::Entry& e : collector.entries)
      tensors.append(tensor_dict(e.name, e.op, e.node, array_from_tensor(std::move(e.value)), e.quant));
    return py::make_tuple(result, tensors);
  }

  int write_dump(const py::dict& in, py::object out_dir) const {
    std::vector<py::object> keep;
    std::map<std::string, Tensor> inputs = this->inputs(in, keep);
    const std::string dir = path_str(out_dir);
    py::gil_scoped_release release;
    tools::DumpWriter w(dir, session->path(), arith_name(session->options().arith));
    for (const IoInfo& i : session->inputs()) w.add_input(i.name, inputs.at(i.name));
    RunOptions ro;
    ro.observer = &w;
    session->run(inputs, ro);
    w.finish();
    return static_cast<int>(w.count());
  }

  py::object explain(const py::dict& in, const std::string& tensor, py::object at, py::object reference) const {
    std::vector<py::object> keep;
    std::map<std::string, Tensor> inputs = this->inputs(in, keep);
    std::map<std::string, Tensor> repl = replacements(reference, keep);
    repl.erase(tensor);  // the element itself is computed, not fed
    std::vector<std::vector<int64_t>> indices;
    py::sequence seq = at.cast<py::sequence>();
    const bool many = seq.size() > 0 && py::isinstance<py::sequence>(seq[0]);
    if (many) {
      for (py::handle h : seq) indices.push_back(h.cast<std::vector<int64_t>>());
    } else {
      indices.push_back(at.cast<std::vector<int64_t>>());
    }
    std::vector<Explanation> ex;
    {
      py::gil_scoped_release release;
      ex = session->explain(inputs, tensor, indices, repl.empty() ? nullptr : &repl);
    }
    py::list out;
    for (const Explanation& e : ex) out.append(explanation_dict(e));
    return many ? py::object(out) : py::object(out[0]);
  }

  static py::dict step_dict(const ExplainStep& s) {
    py::dict d;
    d["label"] = s.label;
    d["formula"] = s.formula;
    d["value"] = s.value;
    return d;
  }

  static py::dict explanation_dict(const Explanation& e) {
    py::dict d;
    d["tensor"] = e.tensor;
    d["node"] = e.node;
    d["op_type"] = e.op_type;
    d["index"] = py::tuple(py::cast(e.index));
    d["details"] = e.details;
    py::list pitfalls;
    for (const ExplainStep& s : e.pitfalls) pitfalls.append(step_dict(s));
    d["pitfalls"] = pitfalls;
    py::list schemes;
    for (const ExplainScheme& sc : e.schemes) {
      py::dict s;
      s["arith"] = arith_name(sc.arith);
      s["result"] = sc.result;
      s["pre_round"] = sc.pre_round;
      s["note"] = sc.note;
      py::list steps;
      for (const ExplainStep& st : sc.steps) steps.append(step_dict(st));
      s["steps"] = steps;
      schemes.append(s);
    }
    d["schemes"] = schemes;
    d["session_arith"] = arith_name(e.session_arith);
    d["actual"] = e.actual;
    return d;
  }
};

struct PyTensorInfo {
  std::string name;
  py::object dtype;
  py::tuple shape;
};

PyTensorInfo tensor_info(const IoInfo& i) {
  py::list shape;
  for (size_t k = 0; k < i.dims.size(); ++k) {
    if (i.dims[k] >= 0) shape.append(i.dims[k]);
    else if (k < i.dim_params.size() && !i.dim_params[k].empty()) shape.append(i.dim_params[k]);
    else shape.append(py::none());
  }
  return {i.name, info_dtype(i.dtype), py::tuple(shape)};
}

SessionOptions session_options(int threads, const std::string& arith, const std::string& isa, const std::string& qdq,
                               const std::map<std::string, int64_t>& dims) {
  SessionOptions o;
  if (threads < 1 || threads > 256) throw py::value_error(cat("threads must be between 1 and 256, got ", threads));
  o.threads = threads;
  auto a = arith_from_name(arith);
  if (!a) throw py::value_error("arith must be 'onnx', 'onednn', 'qnnpack' or 'fbgemm', got '" + arith + "'");
  o.arith = *a;
  if (isa != "auto" && isa != "ref" && isa != "avx2" && isa != "avxvnni" && isa != "avx512" && isa != "vnni")
    throw py::value_error("isa must be 'auto', 'ref', 'avx2', 'avxvnni', 'avx512' or 'vnni', got '" + isa + "'");
  o.isa = isa;
  if (qdq == "fused") o.qdq = QdqMode::Fused;
  else if (qdq == "float") o.qdq = QdqMode::Float;
  else throw py::value_error("qdq must be 'fused' or 'float', got '" + qdq + "'");
  o.dim_values = dims;
  return o;
}

std::string repr_info(const PyTensorInfo& t) {
  return cat("TensorInfo(name=", py::repr(py::str(t.name)).cast<std::string>(), ", dtype=",
             py::str(t.dtype).cast<std::string>(), ", shape=", py::repr(t.shape).cast<std::string>(), ")");
}

}  // namespace
}  // namespace quint::python

PYBIND11_MODULE(_quint, m) {
  using namespace quint;
  using namespace quint::python;
  m.doc() = "quint: exact runtime for quantized ONNX models (native part; use the package `quint`)";
  m.attr("__version__") = QUINT_VERSION;
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<PyTensorInfo>(m, "TensorInfo", "A model input or output: name, dtype (a numpy dtype), shape "
                                            "(ints; a symbolic dim is its name, or None when unnamed).")
      .def_readonly("name", &PyTensorInfo::name)
      .def_readonly("dtype", &PyTensorInfo::dtype)
      .def_readonly("shape", &PyTensorInfo::shape)
      .def("__repr__", &repr_info);

  py::class_<PySession>(m, "Session", R"doc(
A loaded model, ready to run many times (from several Python threads at once if you like).

Session(path, threads=1, arith="onnx", isa="auto", qdq="fused", dims=None)
  threads  worker threads of one run (the caller's included)
  arith    requantization arithmetic: "onnx" (ONNX Runtime's, bit-exact), "onednn", "qnnpack",
           "fbgemm" (PyTorch's engines)
  isa      kernel variant: "auto", "ref", "avx2", "avxvnni", "avx512", "vnni"
  qdq      QDQ models: "fused" (integer operators, as ONNX Runtime) or "float" (as written)
  dims     sizes of symbolic input dims by name, e.g. {"N": 4} (used to plan ahead)
Raises quint.Error (a RuntimeError) when the model cannot be loaded, naming file, node and reason.
)doc")
      .def(py::init([](py::object path, int threads, const std::string& arith, const std::string& isa,
                       const std::string& qdq, std::optional<std::map<std::string, int64_t>> dims) {
             SessionOptions o = session_options(threads, arith, isa, qdq, dims.value_or(std::map<std::string, int64_t>{}));
             const std::string p = path_str(path);
             auto s = std::make_unique<PySession>();
             py::gil_scoped_release release;
             s->session = std::make_unique<Session>(p, o);
             return s;
           }),
           py::arg("path"), py::arg("threads") = 1, py::arg("arith") = "onnx", py::arg("isa") = "auto",
           py::arg("qdq") = "fused", py::arg("dims") = py::none())
      .def_property_readonly("path", [](const PySession& s) { return s.session->path(); })
      .def_property_readonly("threads", [](const PySession& s) { return s.session->options().threads; })
      .def_property_readonly("arith", [](const PySession& s) { return std::string(arith_name(s.session->options().arith)); })
      .def_property_readonly(
          "inputs",
          [](const PySession& s) {
            std::vector<PyTensorInfo> v;
            for (const IoInfo& i : s.session->inputs()) v.push_back(tensor_info(i));
            return v;
          },
          "The graph inputs, as TensorInfo(name, dtype, shape), in the model's order.")
      .def_property_readonly(
          "outputs",
          [](const PySession& s) {
            std::vector<PyTensorInfo> v;
            for (const IoInfo& i : s.session->outputs()) v.push_back(tensor_info(i));
            return v;
          },
          "The graph outputs, as TensorInfo(name, dtype, shape).")
      .def("run", &PySession::run, py::arg("inputs"), py::arg("dump") = false, py::arg("replace") = py::none(), R"doc(
Runs the model. `inputs`: {name: array} with every graph input. An ndarray must have the input's
dtype exactly (a float64 array for a float32 input raises TypeError rather than being cast
silently); lists and scalars are converted to it. Returns {output name: ndarray}; the arrays own
quint's output buffers (no copy).

dump=True returns (outputs, tensors): `tensors` lists the graph inputs and then every node output
in execution order, each a dict(name, op, node, array, scale, zero_point, axis) in the model's
terms (NCHW, the model's dtype; scale/zero_point None when not quantized, a float/int per tensor,
an array per axis with `axis` set) -- the content of a `quint dump` folder.

replace: a dump (a folder path, a list of tensor dicts, or {name: array}) whose tensors replace the
computed ones of the same name as soon as they are produced, so every node runs on the reference's
inputs ("local" comparison); dump=True still shows what each node computed.
)doc")
      .def("dump", &PySession::write_dump, py::arg("inputs"), py::arg("out_dir"),
           "Runs the model and writes every tensor as OUT_DIR/NAME.npy plus manifest.json, as `quint dump` "
           "does. Returns the number of tensors written.")
      .def("explain", &PySession::explain, py::arg("inputs"), py::arg("tensor"), py::arg("at"),
           py::arg("reference") = py::none(), R"doc(
How one element of `tensor` (the output of QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
QLinearGlobalAveragePool or QuantizeLinear) was computed, step by step, under every arithmetic.
`at`: the element's index (n, c, h, w ...), or a list of indices (then a list is returned).
`reference`: a dump whose tensors feed the node (as `quint explain --ref DIR`).
Returns dict(tensor, node, op_type, index, details, pitfalls, schemes, session_arith, actual);
quint.format_explanation() prints it as the CLI does.
)doc")
      .def("__repr__", [](const PySession& s) {
        return cat("quint.Session('", s.session->path(), "', threads=", s.session->options().threads, ", arith='",
                   arith_name(s.session->options().arith), "')");
      });

  m.def(
      "load_image",
      [](py::object path, int size, int crop, std::array<float, 3> mean, std::array<float, 3> std) {
        if (size < 0 || size > 16384 || crop < 0 || crop > 16384)
          throw py::value_error("size and crop must be between 0 and 16384");
        for (float v : std)
          if (!(v > 0)) throw py::value_error("std values must be > 0");
        tools::ImageOptions o;
        o.resize = size;
        o.crop = crop;
        o.mean = mean;
        o.std = std;
        const std::string p = path_str(path);
        Tensor t;
        {
          py::gil_scoped_release release;
          t = tools::load_image(p, o);
        }
        return array_from_tensor(std::move(t));
      },
      py::arg("path"), py::arg("size") = 256, py::arg("crop") = 224,
      py::arg("mean") = std::array<float, 3>{0.485f, 0.456f, 0.406f},
      py::arg("std") = std::array<float, 3>{0.229f, 0.224f, 0.225f},
      R"doc(
Decodes a JPEG, PNG or BMP and preprocesses it exactly as the CLI does (torchvision's ImageNet
pipeline with PIL): RGB, resize the short side to `size` (bilinear, antialiased), center-crop
`crop` x `crop` (0 skips either step), scale to [0, 1], normalize with mean/std. Returns float32
[1, 3, crop, crop]. Raises quint.Error naming the file for unreadable or corrupt images.
)doc");

  m.def(
      "load_dump",
      [](py::object dir) {
        std::vector<py::object> keep;
        return dump_to_list(loaded_dump(dir, keep, "dump"));
      },
      py::arg("dir"),
      "Reads a dump folder (quint's or models/dump_pytorch.py's) as a list of tensor dicts "
      "dict(name, op, node, array, scale, zero_point, axis), in the manifest's order.");

  m.def(
      "_compare",
      [](py::object a, py::object b, std::map<std::string, std::string> names, std::optional<std::vector<std::string>> only,
         int64_t tolerance_lsb, double atol) {
        std::vector<py::object> keep;
        tools::LoadedDump da = loaded_dump(a, keep, "a"), db = loaded_dump(b, keep, "b");
        if (only) {
          // Keep only the listed tensors (named as in either dump).
          std::map<std::string, std::string> b_to_a;
          for (const auto& [an, bn] : names) b_to_a[bn] = an;
          std::set<std::string> want(only->begin(), only->end()), want_a, want_b;
          for (const std::string& n : want) {
            bool found = false;
            if (db.manifest.find(n)) { want_b.insert(n); want_a.insert(b_to_a.count(n) ? b_to_a[n] : n); found = true; }
            if (da.manifest.find(n)) {
              want_a.insert(n);
              want_b.insert(names.count(n) ? names[n] : n);
              found = true;
            }
            if (!found) throw Error("neither dump holds a tensor named '" + n + "'");
          }
          auto filter = [](tools::LoadedDump& d, const std::set<std::string>& keep_names) {
            std::vector<tools::DumpEntry> kept;
            for (auto& e : d.manifest.tensors)
              if (keep_names.count(e.name)) kept.push_back(e);
            d.manifest.tensors = std::move(kept);
          };
          filter(da, want_a);
          filter(db, want_b);
        }
        tools::CompareOptions o;
        if (tolerance_lsb < 0) throw py::value_error("tolerance_lsb must be >= 0");
        o.tolerance_lsb = tolerance_lsb;
        o.float_atol = atol;
        std::string json, text;
        {
          py::gil_scoped_release release;
          tools::CompareReport r = tools::compare_dumps(da, db, names, o);
          r.mode = "chained";
          json = tools::report_to_json(r).dump();
          text = tools::report_to_text(r, false);
        }
        return py::make_tuple(json, text);
      },
      py::arg("a"), py::arg("b"), py::arg("names"), py::arg("tensors"), py::arg("tolerance_lsb"), py::arg("atol"));
}
