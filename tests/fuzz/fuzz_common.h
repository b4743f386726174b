// Shared by the fuzz targets: the limits they run under, and what counts as a finding.
//
// A target may end in a quint::Error (that is the contract for bad input) and nothing else: any
// other exception escapes LLVMFuzzerTestOneInput and aborts, a crash or a sanitizer report is a
// finding, and so is a slow unit (libFuzzer's -timeout).
#pragma once

#include <cstdint>
#include <string>

#include <unistd.h>

namespace quint::fuzz {

// Largest tensor a fuzzed model may declare or make (SessionOptions::max_tensor_bytes). Small,
// so that the work one input can ask for stays small too: no single tensor, scratch buffer or
// folded constant beyond 16 KiB.
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 14;
// Runs are skipped for plans above this many multiply-accumulates (a 16 KiB tensor cap still
// lets a convolution ask for ~2^28).
inline constexpr int64_t kMaxRunMacs = int64_t{1} << 24;

// A file for targets whose API reads paths (one per process, so parallel fuzzers don't clash).
inline std::string scratch_path(const char* ext) {
  const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/quint-fuzz-" + std::to_string(::getpid()) + ext;
}

}  // namespace quint::fuzz
