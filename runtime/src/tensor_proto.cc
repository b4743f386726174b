#include "tensor_proto.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "quint/session.h"

namespace quint::runtime {

namespace fs = std::filesystem;

namespace {

// Copies `count` elements of a repeated proto field into typed storage, converting each.
template <class Dst, class Field>
void copy_field(const Field& f, Dst* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<Dst>(f.Get(static_cast<int>(i)));
}

// Resolves an external data location inside base_dir, refusing anything that escapes it
// (absolute paths, "..", symlinks pointing outside).
fs::path resolve_external(const std::string& location, const std::string& base_dir) {
  if (base_dir.empty()) fail("external data ('", location, "') is not allowed here");
  if (location.empty()) fail("external data has an empty location");
  if (location.find('\0') != std::string::npos) fail("external data location contains a NUL byte");
  fs::path loc(location);
  if (loc.is_absolute() || loc.has_root_name() || loc.has_root_directory())
    fail("external data location '", location, "' is absolute; it must be relative to the model's folder");
  std::error_code ec;
  fs::path base = fs::canonical(base_dir, ec);
  if (ec) fail("cannot resolve the model's folder '", base_dir, "': ", ec.message());
  fs::path full = fs::weakly_canonical(base / loc, ec);
  if (ec) fail("cannot resolve external data location '", location, "': ", ec.message());
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end())
    fail("external data location '", location, "' escapes the model's folder (resolves to ", full.string(), ")");
  const fs::file_status st = fs::status(full, ec);
  if (!fs::exists(st)) fail("external data file '", location, "' does not exist");
  // A FIFO or a device would block or never end; a folder cannot be read.
  if (!fs::is_regular_file(st)) fail("external data file '", location, "' is not a regular file");
  return full;
}

Tensor read_external(const onnx::TensorProto& p, const TensorReadContext& ctx, DType dt,
                     const Shape& shape) {
  std::map<std::string, std::string> kv;
  for (const auto& e : p.external_data()) kv[e.key()] = e.value();
  if (!kv.count("location")) fail("external data has no 'location'");
  fs::path file = resolve_external(kv["location"], ctx.base_dir);
  auto parse = [&](const char* key) -> int64_t {
    if (!kv.count(key)) return -1;
    const std::string& s = kv[key];
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
      fail("external data '", key, "' is not a non-negative integer: '", s, "'");
    return std::stoll(s);
  };
  int64_t offset = parse("offset");
  int64_t length = parse("length");
  if (offset < 0) offset = 0;
  std::error_code ec;
  int64_t fsize = static_cast<int64_t>(fs::file_size(file, ec));
  if (ec) fail("cannot stat external data file: ", ec.message());
  const int64_t need = shape_numel(shape) * static_cast<int64_t>(dtype_size(dt));
  if (length < 0) length = need;
  if (length != need) fail("external data length ", length, " does not match the ", need, " bytes the dims need");
  if (offset > fsize || length > fsize - offset)
    fail("external data range [", offset, ", ", offset + length, ") is beyond the end of '",
         kv["location"], "' (", fsize, " bytes)");
  Tensor t = Tensor::uninitialized(dt, shape);
  std::ifstream f(file, std::ios::binary);
  f.seekg(offset);
  f.read(static_cast<char*>(t.raw()), length);
  if (!f || f.gcount() != length) fail("short read from external data file '", kv["location"], "'");
  return t;
}

}  // namespace

namespace {
Tensor from_proto(const onnx::TensorProto& p, const TensorReadContext& ctx, std::string* stealable_raw,
                  const RawBytes* lifted);
}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const TensorReadContext& ctx) {
  return from_proto(p, ctx, nullptr, nullptr);
}

Tensor tensor_from_proto(onnx::TensorProto&& p, const TensorReadContext& ctx) {
  return from_proto(p, ctx, p.has_raw_data() ? p.mutable_raw_data() : nullptr, nullptr);
}

Tensor tensor_from_proto(onnx::TensorProto&& p, const TensorReadContext& ctx, const RawBytes& raw) {
  return from_proto(p, ctx, nullptr, &raw);
}

namespace {

Tensor from_proto(const onnx::TensorProto& p, const TensorReadContext& ctx, std::string* stealable_raw,
                  const RawBytes* lifted) {
  if (p.has_segment()) fail("segmented tensors are not supported");
  if (!dtype_is_known(p.data_type()))
    fail("unsupported or undefined element type code ", p.data_type());
  const DType dt = static_cast<DType>(p.data_type());
  Shape shape(p.dims().begin(), p.dims().end());
  const int64_t n = shape_numel(shape);
  const int64_t extent = shape_extent(shape);  // an empty tensor's dims are bounded too
  const size_t es = dt == DType::String ? 0 : dtype_size(dt);
  if (dt != DType::String && extent > ctx.max_bytes / static_cast<int64_t>(es))
    fail("tensor of shape ", shape_str(shape), " (", dtype_name(dt), ") exceeds the limit of ",
         ctx.max_bytes, " bytes");
  if (dt == DType::String && extent > ctx.max_bytes / 32) fail("string tensor of shape ", shape_str(shape), " is too large");

  // Every data source is checked against the dims before the tensor is allocated, so a
  // hostile dim cannot make us allocate memory the file does not back.
  const bool external = p.data_location() == onnx::TensorProto::EXTERNAL;
  if (external && p.has_raw_data()) fail("tensor has both external and raw data");
  if (external) {
    if (dt == DType::String) fail("string tensors cannot use external data");
    return read_external(p, ctx, dt, shape);
  }
  if (p.has_raw_data()) {
    if (dt == DType::String) fail("string tensors cannot use raw_data");
    const size_t need = static_cast<size_t>(n) * es;
    const char* raw = lifted ? lifted->data : p.raw_data().data();
    const size_t raw_size = lifted ? lifted->size : p.raw_data().size();
    if (raw_size != need)
      fail("raw_data has ", raw_size, " bytes but shape ", shape_str(shape), " of ",
           dtype_name(dt), " needs ", need);
    Tensor t;
    if (lifted && lifted->owner && need > 0 && reinterpret_cast<uintptr_t>(raw) % es == 0) {
      // Point into the loader's copy of the file (kept alive by the tensor).
      void* data = const_cast<char*>(raw);
      t = Tensor::adopt(dt, shape, lifted->owner, data);
    } else if (stealable_raw && need > 0) {
      // Take the protobuf's buffer over: the tensor points into a string it now owns.
      auto buf = std::make_shared<std::string>();
      buf->swap(*stealable_raw);
      void* data = buf->data();
      t = Tensor::adopt(dt, shape, std::move(buf), data);
    } else {
      t = Tensor::uninitialized(dt, shape);
      if (n > 0) std::memcpy(t.raw(), raw, need);
    }
    if (dt == DType::Bool) {
      auto* b = static_cast<uint8_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;  // a bool byte must be 0 or 1
    }
    return t;
  }
  int64_t available = 0;
  switch (dt) {
    case DType::Float32: available = p.float_data_size(); break;
    case DType::Float64: available = p.double_data_size(); break;
    case DType::Int64: available = p.int64_data_size(); break;
    case DType::UInt64: case DType::UInt32: available = p.uint64_data_size(); break;
    case DType::String: available = p.string_data_size(); break;
    default: available = p.int32_data_size(); break;
  }
  if (available != n)
    fail("the tensor's typed data field holds ", available, " values but shape ", shape_str(shape),
         " needs ", n);
  Tensor t = dt == DType::String ? Tensor(dt, shape) : Tensor::uninitialized(dt, shape);
  switch (dt) {
    case DType::Float32: copy_field(p.float_data(), t.data<float>(), n); break;
    case DType::Float64: copy_field(p.double_data(), t.data<double>(), n); break;
    case DType::Int64: copy_field(p.int64_data(), t.data<int64_t>(), n); break;
    case DType::UInt64: copy_field(p.uint64_data(), t.data<uint64_t>(), n); break;
    case DType::UInt32: copy_field(p.uint64_data(), t.data<uint32_t>(), n); break;
    case DType::Int32: copy_field(p.int32_data(), t.data<int32_t>(), n); break;
    case DType::Int16: copy_field(p.int32_data(), t.data<int16_t>(), n); break;
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      copy_field(p.int32_data(), static_cast<uint16_t*>(t.raw()), n);
      break;
    case DType::Int8: copy_field(p.int32_data(), t.data<int8_t>(), n); break;
    case DType::UInt8: copy_field(p.int32_data(), t.data<uint8_t>(), n); break;
    case DType::Bool: {
      for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = p.int32_data(static_cast<int>(i)) != 0;
      break;
    }
    case DType::String: {
      for (int64_t i = 0; i < n; ++i) t.data<std::string>()[i] = p.string_data(static_cast<int>(i));
      break;
    }
    case DType::Undefined: break;
  }
  return t;
}

}  // namespace

void tensor_to_proto(const Tensor& t, onnx::TensorProto* p) {
  p->set_data_type(static_cast<int>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  if (t.dtype() == DType::String) {
    for (const auto& s : t.values<std::string>()) p->add_string_data(s);
  } else {
    p->set_raw_data(static_cast<const char*>(t.raw()), t.nbytes());
  }
}

}  // namespace quint::runtime

namespace quint {

Tensor load_tensor_proto(const std::string& path, int64_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("no such file (or not a regular file)", {path});
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error("cannot read the file size: " + ec.message(), {path});
  // Protobuf framing adds a few bytes to the data; a file much larger than the tensor limit
  // cannot hold an acceptable tensor, and is not read into memory to find that out.
  if (size > static_cast<uintmax_t>(INT32_MAX) || static_cast<int64_t>(size) - (int64_t{1} << 20) > max_bytes)
    throw Error(cat("the file has ", size, " bytes, more than the tensor size limit of ", max_bytes), {path});
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open the file", {path});
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  onnx::TensorProto p;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) || !p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error("not a valid ONNX TensorProto (protobuf parsing failed)", {path});
  try {
    return runtime::tensor_from_proto(p, {"", path, max_bytes});
  } catch (const Error& e) {
    throw e.with_context({path});
  }
}

void save_tensor_proto(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  runtime::tensor_to_proto(t, &p);
  p.set_name(name);
  std::ofstream f(path, std::ios::binary);
  if (!f || !p.SerializeToOstream(&f)) throw Error("cannot write the file", {path});
}

}  // namespace quint
