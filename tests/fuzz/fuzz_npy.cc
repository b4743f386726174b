// libFuzzer target: bytes -> the input-file readers of the CLI: .npy (tools::read_npy) and ONNX
// TensorProto .pb (quint::load_tensor_proto). A .npy that reads must write back and read again
// to the same tensor.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "fuzz_common.h"
#include "npy.h"
#include "quint/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quint;
  static const std::string path = fuzz::scratch_path(".npy");
  static const std::string pb = fuzz::scratch_path(".pb");
  static const std::string back = fuzz::scratch_path("-back.npy");
  for (const std::string* p : {&path, &pb}) {
    std::ofstream f(*p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    Tensor t = tools::read_npy(path, fuzz::kMaxTensorBytes);
    tools::write_npy(t, back);
    Tensor u = tools::read_npy(back, fuzz::kMaxTensorBytes);
    if (u.dtype() != t.dtype() || u.shape() != t.shape() ||
        (t.nbytes() && std::memcmp(u.raw(), t.raw(), t.nbytes()) != 0))
      __builtin_trap();
  } catch (const Error&) {
  }
  try {
    Tensor t = load_tensor_proto(pb);
    (void)t;
  } catch (const Error&) {
  }
  return 0;
}
