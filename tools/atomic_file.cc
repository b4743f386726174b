#include "atomic_file.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace quint::tools {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp" + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw Error(cat("cannot create the file: ", std::strerror(errno)), {path_});
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) throw Error(cat("write failed: ", std::strerror(errno)), {path_});
}

void AtomicFile::commit() {
  std::FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) {
    std::remove(tmp_.c_str());
    throw Error(cat("write failed: ", std::strerror(errno)), {path_});
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw Error(cat("cannot rename the finished file into place: ", std::strerror(errno)), {path_});
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

}  // namespace quint::tools
