// A file written under a temporary name and renamed into place on commit(); destroyed without
// commit() it removes the temporary, so no partial file is ever left looking complete.
#pragma once

#include <cstdio>
#include <string>

#include "quint/error.h"

namespace quint::tools {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

// Writes a whole file atomically.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace quint::tools
