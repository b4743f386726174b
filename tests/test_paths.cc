#include "test_paths.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sys/wait.h>

namespace quint::test {

namespace fs = std::filesystem;

std::string source_dir() { return QUINT_SOURCE_DIR; }
std::string binary_dir() { return QUINT_BINARY_DIR; }

std::string testdata_dir() {
  if (const char* env = std::getenv("QUINT_TESTDATA")) return fs::is_directory(env) ? env : "";
  fs::path p = fs::path(source_dir()).parent_path() / "shared" / "testdata";
  return fs::is_directory(p) ? p.string() : "";
}

int run_command(const std::string& cmd, std::string* log) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    if (log) log->append(buf.data(), n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string python_with(const std::string& modules) {
  static std::mutex m;
  static std::map<std::string, std::string> cache;
  std::lock_guard<std::mutex> lock(m);
  auto it = cache.find(modules);
  if (it != cache.end()) return it->second;
  std::string py = "/usr/bin/python3";
  std::string found;
  if (fs::exists(py) && run_command(py + " -c 'import " + modules + "'") == 0) found = py;
  cache[modules] = found;
  return found;
}

std::string ort_harness_dir() {
  fs::path d = fs::path(source_dir()) / "tests" / "ort";
  return fs::exists(d / "node_modules" / "onnxruntime-node") ? d.string() : "";
}

}  // namespace quint::test
