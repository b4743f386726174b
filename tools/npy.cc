#include "npy.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "atomic_file.h"

namespace quint::tools {

std::string npy_descr(DType t) {
  switch (t) {
    case DType::Float32: return "<f4";
    case DType::Float64: return "<f8";
    case DType::Float16: return "<f2";
    case DType::UInt8: return "|u1";
    case DType::Int8: return "|i1";
    case DType::UInt16: return "<u2";
    case DType::Int16: return "<i2";
    case DType::Int32: return "<i4";
    case DType::UInt32: return "<u4";
    case DType::Int64: return "<i8";
    case DType::UInt64: return "<u8";
    case DType::Bool: return "|b1";
    default: fail("dtype ", dtype_name(t), " cannot be stored in .npy");
  }
}

namespace {

DType dtype_from_descr(const std::string& d) {
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::UInt8, DType::Int8, DType::UInt16,
                  DType::Int16, DType::Int32, DType::UInt32, DType::Int64, DType::UInt64, DType::Bool}) {
    std::string want = npy_descr(t);
    // Single-byte types may be written with '<', '>' or '=' as well as '|'.
    if (d == want || (want[0] == '|' && d.size() == 3 && d.substr(1) == want.substr(1) &&
                      (d[0] == '<' || d[0] == '=' || d[0] == '>')))
      return t;
  }
  if (d.size() == 3 && d[0] == '>') fail("big-endian .npy data ('", d, "') is not supported");
  fail("unsupported .npy dtype '", d, "'");
}

// Value of `key` in the header dict, as raw text up to the next top-level comma or brace.
std::string header_field(const std::string& h, const std::string& key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail("header has no '", key, "'");
  size_t colon = h.find(':', k);
  if (colon == std::string::npos) fail("malformed header");
  size_t i = colon + 1;
  while (i < h.size() && h[i] == ' ') ++i;
  if (i >= h.size()) fail("malformed header");
  if (h[i] == '(') {
    size_t e = h.find(')', i);
    if (e == std::string::npos) fail("malformed shape in header");
    return h.substr(i, e - i + 1);
  }
  if (h[i] == '\'') {
    size_t e = h.find('\'', i + 1);
    if (e == std::string::npos) fail("malformed string in header");
    return h.substr(i + 1, e - i - 1);
  }
  size_t e = h.find_first_of(",}", i);
  return h.substr(i, e - i);
}

}  // namespace

Tensor read_npy(const std::string& path, int64_t max_bytes) {
  try {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot open the file");
    char magic[8];
    if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("not a .npy file (bad magic)");
    uint32_t hlen = 0;
    const int major = static_cast<uint8_t>(magic[6]);
    if (major == 1) {
      unsigned char b[2];
      if (!f.read(reinterpret_cast<char*>(b), 2)) fail("truncated header");
      hlen = b[0] | (b[1] << 8);
    } else if (major == 2 || major == 3) {
      unsigned char b[4];
      if (!f.read(reinterpret_cast<char*>(b), 4)) fail("truncated header");
      hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    } else {
      fail("unsupported .npy format version ", major);
    }
    if (hlen > (1u << 20)) fail("header length ", hlen, " is implausible");
    std::string h(hlen, '\0');
    if (!f.read(h.data(), hlen)) fail("truncated header");
    DType t = dtype_from_descr(header_field(h, "descr"));
    std::string fo = header_field(h, "fortran_order");
    if (fo.find("True") != std::string::npos) fail("Fortran-order arrays are not supported");
    std::string sh = header_field(h, "shape");
    Shape shape;
    for (size_t i = 1; i < sh.size();) {
      while (i < sh.size() && (sh[i] == ' ' || sh[i] == ',')) ++i;
      if (i >= sh.size() || sh[i] == ')') break;
      size_t j = i;
      while (j < sh.size() && std::isdigit(static_cast<unsigned char>(sh[j]))) ++j;
      if (j == i || j - i > 18) fail("malformed shape ", sh);
      shape.push_back(std::stoll(sh.substr(i, j - i)));
      i = j;
    }
    int64_t n = shape_numel(shape);
    if (n > max_bytes / static_cast<int64_t>(dtype_size(t)))
      fail("array of shape ", shape_str(shape), " exceeds the size limit of ", max_bytes, " bytes");
    auto here = f.tellg();
    f.seekg(0, std::ios::end);
    int64_t remaining = static_cast<int64_t>(f.tellg() - here);
    f.seekg(here);
    int64_t need = n * static_cast<int64_t>(dtype_size(t));
    if (remaining < need) fail("truncated data: shape ", shape_str(shape), " needs ", need, " bytes, the file has ", remaining);
    Tensor out(t, shape);
    if (need > 0 && !f.read(static_cast<char*>(out.raw()), need)) fail("read error");
    if (t == DType::Bool)
      for (int64_t i = 0; i < n; ++i) static_cast<uint8_t*>(out.raw())[i] = static_cast<uint8_t*>(out.raw())[i] != 0;
    return out;
  } catch (const Error& e) {
    throw e.with_context({path});
  }
}

void write_npy(const Tensor& t, const std::string& path) {
  // Python tuple syntax: "()", "(3,)", "(1, 3, 224, 224)".
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dim(i));
  shape += t.rank() == 1 ? ",)" : ")";
  std::string h = "{'descr': '" + npy_descr(t.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that the data starts on a 64-byte boundary, ending the header with '\n'.
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(h.size() & 0xff);
  bytes += static_cast<char>((h.size() >> 8) & 0xff);
  bytes += h;
  AtomicFile out(path);
  out.write(bytes.data(), bytes.size());
  out.write(static_cast<const char*>(t.raw()), t.nbytes());
  out.commit();
}

}  // namespace quint::tools
