#include "cli.h"

#include <algorithm>
#include <filesystem>

#include "npy.h"

namespace quint::tools {

std::optional<std::string> Args::get(const std::string& k) const {
  auto it = values.find(k);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Args::all(const std::string& k) const {
  std::vector<std::string> out;
  auto [b, e] = values.equal_range(k);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

std::string Args::get_or(const std::string& k, const std::string& dflt) const {
  auto v = get(k);
  return v ? *v : dflt;
}

int64_t Args::get_int(const std::string& k, int64_t dflt, int64_t lo, int64_t hi) const {
  auto v = get(k);
  if (!v) return dflt;
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(*v, &used);
  } catch (...) {
    used = 0;
  }
  if (used != v->size() || v->empty()) fail("--", k, " expects an integer, got '", *v, "'");
  if (n < lo || n > hi) fail("--", k, " must be between ", lo, " and ", hi, ", got ", n);
  return n;
}

Args parse_args(int argc, char** argv, int first, const OptionSpec& spec) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      auto it = spec.find(name);
      if (it == spec.end()) fail("unknown option --", name, " (see --help)");
      if (it->second) {
        if (!inline_value) {
          if (i + 1 >= argc) fail("option --", name, " needs a value");
          value = argv[++i];
        }
      } else if (inline_value) {
        fail("option --", name, " takes no value");
      }
      a.values.emplace(name, value);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

OptionSpec session_option_spec() {
  return {{"threads", true}, {"arith", true}, {"isa", true}, {"qdq", true}, {"dim", true}, {"max-tensor-bytes", true}};
}

SessionOptions session_options(const Args& a) {
  SessionOptions o;
  o.threads = static_cast<int>(a.get_int("threads", 1, 1, 256));
  o.max_tensor_bytes = a.get_int("max-tensor-bytes", o.max_tensor_bytes, 1, int64_t{1} << 46);
  if (auto v = a.get("arith")) {
    auto ar = arith_from_name(*v);
    if (!ar) fail("--arith must be onnx, onednn, qnnpack or fbgemm, got '", *v, "'");
    o.arith = *ar;
  }
  o.isa = a.get_or("isa", "auto");
  if (o.isa != "auto" && o.isa != "ref" && o.isa != "avx2" && o.isa != "avx512" && o.isa != "vnni" &&
      o.isa != "avxvnni")
    fail("--isa must be auto, ref, avx2, avxvnni, avx512 or vnni, got '", o.isa, "'");
  std::string q = a.get_or("qdq", "fused");
  if (q == "fused") o.qdq = QdqMode::Fused;
  else if (q == "float") o.qdq = QdqMode::Float;
  else fail("--qdq must be fused or float, got '", q, "'");
  for (const std::string& d : a.all("dim")) {
    auto eq = d.find('=');
    if (eq == std::string::npos || eq == 0) fail("--dim expects NAME=VALUE, got '", d, "'");
    Args tmp;
    tmp.values.emplace("dim", d.substr(eq + 1));
    o.dim_values[d.substr(0, eq)] = tmp.get_int("dim", 1, 0, int64_t{1} << 31);
  }
  return o;
}

OptionSpec image_option_spec() {
  return {{"size", true}, {"crop", true}, {"mean", true}, {"std", true}, {"max-pixels", true}};
}

namespace {
std::array<float, 3> parse_triple(const std::string& s, const char* what) {
  std::array<float, 3> v{};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      size_t used = 0;
      v[i] = std::stof(part, &used);
      if (used != part.size()) throw std::invalid_argument(part);
    } catch (...) {
      fail("--", what, " expects three comma-separated numbers, got '", s, "'");
    }
    if (i < 2 && comma == std::string::npos) fail("--", what, " expects three comma-separated numbers, got '", s, "'");
    pos = comma + 1;
  }
  return v;
}
}  // namespace

ImageOptions image_options(const Args& a) {
  ImageOptions o;
  o.resize = static_cast<int>(a.get_int("size", o.resize, 0, 16384));
  o.crop = static_cast<int>(a.get_int("crop", o.crop, 0, 16384));
  o.max_pixels = a.get_int("max-pixels", o.max_pixels, 1, int64_t{1} << 40);
  if (auto m = a.get("mean")) o.mean = parse_triple(*m, "mean");
  if (auto s = a.get("std")) {
    o.std = parse_triple(*s, "std");
    for (float v : o.std)
      if (!(v > 0)) fail("--std values must be > 0");
  }
  return o;
}

Tensor read_tensor_file(const std::string& path, int64_t max_bytes) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".npy")) return read_npy(path, max_bytes);
  if (ends(".pb")) return load_tensor_proto(path, max_bytes);
  throw Error("input files must be .npy or .pb (ONNX TensorProto)", {path});
}

std::map<std::string, Tensor> gather_inputs(const Session& s, const std::optional<std::string>& image,
                                            const Args& a) {
  std::map<std::string, Tensor> inputs;
  const auto& infos = s.inputs();
  if (image) {
    if (infos.size() != 1)
      fail("an image can feed a model with one input; this one has ", infos.size(), " (use --input NAME=FILE)");
    const IoInfo& in = infos[0];
    if (in.dtype != DType::Float32 || in.dims.size() != 4 || (in.dims[1] >= 0 && in.dims[1] != 3))
      fail("an image can feed a float32 [N,3,H,W] input; '", in.name, "' is ", dtype_name(in.dtype),
           shape_str(in.dims));
    ImageOptions io = image_options(a);
    // A model with a fixed input size sets the crop unless the user chose one.
    if (!a.has("crop") && in.dims[2] > 0 && in.dims[2] == in.dims[3]) io.crop = static_cast<int>(in.dims[2]);
    inputs[in.name] = load_image(*image, io);
  }
  size_t next_positional = image ? 1 : 0;
  for (const std::string& spec : a.all("input")) {
    std::string name, file = spec;
    auto eq = spec.find('=');
    if (eq != std::string::npos) {
      name = spec.substr(0, eq);
      file = spec.substr(eq + 1);
    } else {
      if (next_positional >= infos.size())
        fail("more --input files than the model has inputs (", infos.size(), ")");
      name = infos[next_positional++].name;
    }
    if (inputs.count(name)) fail("input '", name, "' is given twice");
    if (std::none_of(infos.begin(), infos.end(), [&](const IoInfo& in) { return in.name == name; })) {
      std::string names;
      for (const IoInfo& in : infos) names += (names.empty() ? "'" : ", '") + in.name + "'";
      throw Error("--input " + name + "=...: the model has no input '" + name + "' (its inputs: " + names + ")",
                  {s.path()});
    }
    inputs[name] = read_tensor_file(file, s.options().max_tensor_bytes);
  }
  for (const IoInfo& in : infos)
    if (!inputs.count(in.name))
      throw Error("no value for the model input '" + in.name + "' " + dtype_name(in.dtype) + shape_str(in.dims) +
                      " (give an IMAGE or --input " + in.name + "=FILE.npy)",
                  {s.path()});
  return inputs;
}

std::string sanitize_name(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (c == '/' || c == ':' || c == '\\') c = '_';
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) throw Error("cannot create directory: " + ec.message(), {dir});
}

}  // namespace quint::tools
