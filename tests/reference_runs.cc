#include "reference_runs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "dump.h"
#include "model_builder.h"
#include "npy.h"
#include "op_harness.h"
#include "test_paths.h"

namespace quint::test {

namespace fs = std::filesystem;

std::map<std::string, Tensor> run_ort(const std::string& model, const std::map<std::string, std::string>& inputs,
                                      const std::string& outputs, const std::string& opt) {
  const std::string harness = ort_harness_dir();
  if (harness.empty()) fail("the ONNX Runtime harness is not installed (scripts/setup.sh installs it)");
  static int counter = 0;
  const std::string out = temp_dir() + "/ort-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::string cmd = "node '" + harness + "/ort_run.js' '" + model + "' --out '" + out + "' --opt " + opt;
  for (const auto& [name, path] : inputs) cmd += " --input '" + name + "=" + path + "'";
  if (!outputs.empty()) cmd += " --outputs '" + outputs + "'";
  std::string log;
  if (run_command(cmd, &log) != 0) fail("ONNX Runtime failed: ", log);
  std::map<std::string, Tensor> result;
  // ort_manifest.json: [{"name", "file", "dtype", "shape"}, ...]
  std::ifstream f(out + "/ort_manifest.json");
  std::stringstream ss;
  ss << f.rdbuf();
  tools::Json j = tools::Json::parse(ss.str());
  for (const tools::Json& e : j.items())
    result[e.at("name").string()] = tools::read_npy(out + "/" + e.at("file").string());
  fs::remove_all(out);
  return result;
}

namespace {
class Collector final : public Observer {
 public:
  std::map<std::string, Tensor> tensors;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) tensors[o.name] = o.value.clone();
  }
};
}  // namespace

std::map<std::string, Tensor> quint_tensors(const Session& s, const std::map<std::string, Tensor>& inputs) {
  Collector c;
  RunOptions ro;
  ro.observer = &c;
  auto outs = s.run(inputs, ro);
  for (auto& [k, v] : outs) c.tensors[k] = v;
  return c.tensors;
}

namespace {
// Runs `cmd` (with `py`) once per build folder to make `files` in `dir`; a file lock serialises
// concurrent test processes. Fails with the command's log when it fails.
void export_once(const fs::path& dir, const std::vector<std::string>& files, const std::string& cmd, const char* what) {
  fs::create_directories(dir);
  const std::string lock_path = (dir / ".lock").string();
  int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) fail("cannot open ", lock_path);
  ::flock(fd, LOCK_EX);
  std::string err;
  if (!std::all_of(files.begin(), files.end(), [&](const std::string& f) { return fs::exists(dir / f); })) {
    std::string log;
    if (run_command(cmd, &log) != 0) err = std::string(what) + " failed: " + log;
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  if (!err.empty()) fail(err);
}
}  // namespace

std::string resnet50_dir() {
  const std::string py = python_with("torch, torchvision, onnx");
  if (py.empty()) return "";
  const fs::path dir = fs::path(binary_dir()) / "test-models" / "resnet50";
  export_once(dir, {"resnet50_qop.onnx", "resnet50_qdq.onnx"},
              py + " '" + source_dir() + "/models/export_resnet50.py' --out-dir '" + dir.string() + "'",
              "export_resnet50.py");
  return dir.string();
}

std::string qdq_blocks_model() {
  const std::string py = python_with("torch, onnx");
  if (py.empty()) return "";
  const fs::path dir = fs::path(binary_dir()) / "test-models" / "qdq-blocks";
  const fs::path model = dir / "blocks.onnx";
  export_once(dir, {"blocks.onnx"},
              py + " '" + source_dir() + "/tests/scripts/export_qdq_blocks.py' '" + model.string() + "'",
              "export_qdq_blocks.py");
  return model.string();
}

std::string save_npy_temp(const std::string& name, const Tensor& t) {
  const std::string path = temp_dir() + "/" + name + ".npy";
  tools::write_npy(t, path);
  return path;
}

std::map<std::string, Tensor> expect_matches_ort(const std::string& path, const std::map<std::string, Tensor>& inputs,
                                                 const std::vector<std::string>& outs) {
  std::map<std::string, std::string> files;
  const std::string stem = std::filesystem::path(path).stem().string();
  for (const auto& [name, t] : inputs) files[name] = save_npy_temp(stem + "-" + name, t);
  const auto ort = run_ort(path, files, "");
  Session s(path);
  auto mine = quint_tensors(s, inputs);
  for (const std::string& out : outs) {
    SCOPED_TRACE(out);
    if (!ort.count(out) || !mine.count(out)) {
      ADD_FAILURE() << "output missing (ONNX Runtime " << ort.count(out) << ", quint " << mine.count(out) << ")";
      continue;
    }
    EXPECT_TRUE(tensors_equal(mine.at(out), ort.at(out)));
  }
  return mine;
}

}  // namespace quint::test
