// Builds small ONNX models in tests (through Debian's ONNX protobuf schema) and writes them to
// a temporary folder, so the whole path — loader, planner, kernels — is exercised.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quint/attributes.h"
#include "quint/tensor.h"

namespace quint::test {

class ModelBuilder {
 public:
  ModelBuilder& opset(const std::string& domain, int version);
  // dims: -1 for a symbolic dim named by `dim_param` (default "N").
  ModelBuilder& input(const std::string& name, DType t, const std::vector<int64_t>& dims,
                      const std::string& dim_param = "N");
  ModelBuilder& output(const std::string& name, DType t = DType::Undefined,
                       const std::vector<int64_t>& dims = {}, bool with_shape = false);
  ModelBuilder& initializer(const std::string& name, const Tensor& t);
  ModelBuilder& node(const std::string& op_type, const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs, const Attributes& attrs = {},
                     const std::string& domain = "", const std::string& name = "");
  ModelBuilder& metadata(const std::string& key, const std::string& value);
  // Writes the model into temp_dir() and returns its path.
  std::string save(const std::string& file_name) const;
  std::string bytes() const;

 private:
  struct NodeSpec {
    std::string op_type, domain, name;
    std::vector<std::string> inputs, outputs;
    Attributes attrs;
  };
  struct IoSpec {
    std::string name;
    DType dtype;
    std::vector<int64_t> dims;
    std::string dim_param;
    bool with_shape;
  };
  std::map<std::string, int> opsets_{{"", 13}};
  std::vector<IoSpec> inputs_, outputs_;
  std::vector<std::pair<std::string, Tensor>> initializers_;
  std::vector<NodeSpec> nodes_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// A fresh temporary folder for this test (removed at exit of the test binary is not promised).
std::string temp_dir();
// Writes raw bytes to a file in temp_dir() and returns its path.
std::string write_temp_file(const std::string& name, const std::string& bytes);

}  // namespace quint::test
