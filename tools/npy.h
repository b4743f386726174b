// NumPy .npy files (format versions 1.0 to 3.0, little-endian, C order) <-> quint::Tensor.
#pragma once

#include <string>

#include "quint/tensor.h"

namespace quint::tools {

// Reads a .npy file; fails with a clear message on an unsupported dtype, Fortran order,
// a truncated file or a header that does not match the data size.
Tensor read_npy(const std::string& path, int64_t max_bytes = int64_t{4} << 30);
// Writes atomically (to a temporary file renamed into place), so a failed write never leaves
// a partial file that looks complete.
void write_npy(const Tensor& t, const std::string& path);

// The numpy dtype descriptor, e.g. "<f4", "|u1".
std::string npy_descr(DType t);

}  // namespace quint::tools
