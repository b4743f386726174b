// ONNX backend node conformance: every folder of ../shared/testdata/onnx-node-tests (the official
// node tests of onnx v1.12: model.onnx + test_data_set_*/input_N.pb, output_N.pb) is one test.
// The model is loaded with quint::Session, fed the inputs, and its outputs compared with the
// expected ones: integer, bool and string outputs exactly, real ones within a tolerance.
//
// One adaptation, made generically: the node tests feed every operand as a graph input, even
// those that determine shapes (Reshape's shape, Squeeze's axes, Pad's pads) or that quint
// prepacks at load (QLinearConv's weights and quantization parameters). quint plans shapes and
// prepacks at load, so it requires those to be constants and says so, naming the input
// ("... (input 1) must be a constant ..."). The runner then binds exactly the inputs quint names
// to the test's values as initializers (what an exporter would have written) and loads again;
// every other input stays a run-time input.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "model_builder.h"
#include "op_harness.h"
#include "quint/session.h"
#include "test_paths.h"

namespace quint::test {

namespace {

namespace fs = std::filesystem;

std::string node_tests_dir() {
  const std::string d = testdata_dir();
  if (d.empty()) return "";
  const fs::path p = fs::path(d) / "onnx-node-tests";
  return fs::is_directory(p) ? p.string() : "";
}

// Tests whose model uses an operator or dtype quint does not claim to support, with the reason.
// quint must reject them at load with a clear error (checked below), never run them and produce
// numbers. Every op and dtype of the current set is supported, so the list is empty; a test
// added here needs a reason a reader can check.
const std::map<std::string, std::string> kExpectedUnsupported = {};

// Tests whose stored data is wrong, and how the runner corrects it. The runner first confirms
// the defect is still there (so an entry cannot outlive a fixed data set) and then checks quint
// against the corrected expectation: these tests are run, not skipped.
struct Erratum {
  const char* reason;
  // The test feeds an input whose shape differs from the model's declared static shape. quint
  // must reject that feed; the runner then feeds zeros of the declared shape instead (only for
  // inputs whose values the op ignores, like CastLike's `like`).
  bool input_shape_defect = false;
  // The expected bfloat16 output truncates the float32 input; it is recomputed rounding to
  // nearest even, as ONNX Runtime and the ONNX reference from onnx 1.14 do (and quint's
  // float_to_bfloat16).
  bool bfloat16_truncated = false;
};
const std::map<std::string, Erratum> kErrata = {
    {"test_cast_FLOAT_to_BFLOAT16", {"onnx 1.12 truncated float32 to bfloat16", false, true}},
    {"test_castlike_FLOAT_to_BFLOAT16",
     {"truncated bfloat16; 'like' is declared [3,4] but fed as [1]", true, true}},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded",
     {"truncated bfloat16; 'like' is declared [3,4] but fed as [1]", true, true}},
    {"test_castlike_BFLOAT16_to_FLOAT", {"'like' is declared [3,4] but fed as [1]", true, false}},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded", {"'like' is declared [3,4] but fed as [1]", true, false}},
};

std::vector<std::string> list_cases() {
  const std::string dir = node_tests_dir();
  // Placeholder case that skips with a message, so the suite is never silently empty.
  if (dir.empty()) return {"testdata_absent"};
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back("testdata_absent");
  return names;
}

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  onnx::ModelProto m;
  if (!f || !m.ParseFromIstream(&f)) ADD_FAILURE() << "cannot parse " << path;
  return m;
}

onnx::TensorProto read_tensor_proto(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  onnx::TensorProto t;
  if (!f || !t.ParseFromIstream(&f)) ADD_FAILURE() << "cannot parse " << path;
  return t;
}

// The graph inputs that are not initializers, in order: input_N.pb feeds the N-th of them.
std::vector<std::string> fed_inputs(const onnx::GraphProto& g) {
  std::set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  std::vector<std::string> names;
  for (const auto& in : g.input())
    if (!inits.count(in.name())) names.push_back(in.name());
  return names;
}

// From a load error "… (input K) must be a constant …" of a node of type op_type: the graph
// inputs that feed input K of such nodes. Empty when the error is about something else.
std::set<std::string> inputs_needed_constant(const Error& e, const onnx::GraphProto& g,
                                             const std::vector<std::string>& fed) {
  static const std::regex pattern(R"(\(input (\d+)\) must be a constant)");
  std::smatch m;
  const std::string reason = e.reason();
  if (!std::regex_search(reason, m, pattern)) return {};
  const int slot = std::stoi(m[1].str());
  std::set<std::string> names;
  for (const auto& n : g.node()) {
    if (n.op_type() != e.context().op_type || slot >= n.input_size()) continue;
    const std::string& name = n.input(slot);
    if (std::find(fed.begin(), fed.end(), name) != fed.end()) names.insert(name);
  }
  return names;
}

// Writes the model with the named inputs turned into initializers holding the data set's values.
std::string bind_constants(const onnx::ModelProto& model, const std::set<std::string>& bound,
                           const std::vector<std::string>& fed, const fs::path& data_set, const std::string& file) {
  onnx::ModelProto m = model;
  onnx::GraphProto* g = m.mutable_graph();
  for (size_t k = 0; k < fed.size(); ++k) {
    if (!bound.count(fed[k])) continue;
    onnx::TensorProto t = read_tensor_proto((data_set / ("input_" + std::to_string(k) + ".pb")).string());
    t.set_name(fed[k]);
    // See as_declared: bfloat16 data is stored under the uint16 code; the bytes are the same.
    for (const auto& in : model.graph().input())
      if (in.name() == fed[k] && in.type().tensor_type().elem_type() == onnx::TensorProto::BFLOAT16 &&
          t.data_type() == onnx::TensorProto::UINT16)
        t.set_data_type(onnx::TensorProto::BFLOAT16);
    *g->add_initializer() = t;
  }
  auto* inputs = g->mutable_input();
  for (int i = inputs->size(); i-- > 0;)
    if (bound.count(inputs->Get(i).name())) inputs->DeleteSubrange(i, 1);
  return write_temp_file(file, m.SerializeAsString());
}

// The declared static shape of each graph input ("" dims are -1), by name.
std::map<std::string, std::vector<int64_t>> declared_shapes(const onnx::GraphProto& g) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& v : g.input()) {
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    shapes[v.name()] = dims;
  }
  return shapes;
}

bool fits(const Shape& s, const std::vector<int64_t>& declared) {
  if (s.size() != declared.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (declared[i] >= 0 && declared[i] != s[i]) return false;
  return true;
}

// The declared element type of each graph input or output, by name.
std::map<std::string, DType> declared_types(const onnx::GraphProto& g) {
  std::map<std::string, DType> types;
  for (const auto* list : {&g.input(), &g.output()})
    for (const auto& v : *list)
      if (v.type().has_tensor_type()) types[v.name()] = static_cast<DType>(v.type().tensor_type().elem_type());
  return types;
}

// onnx 1.12 writes bfloat16 test data with data_type UINT16 (numpy has no bfloat16; its
// numpy_helper stores the bit patterns under the uint16 code). The bits are the bfloat16 values,
// so such a tensor is relabelled to the type the model declares.
Tensor as_declared(const Tensor& t, DType declared) {
  if (t.dtype() != DType::UInt16 || declared != DType::BFloat16) return t;
  Tensor r(DType::BFloat16, t.shape());
  if (t.nbytes() > 0) std::memcpy(r.raw(), t.raw(), t.nbytes());
  return r;
}

// Real outputs are compared with |actual − expected| <= atol + rtol·|expected|. rtol 1e-5 is a
// few float32 ulps (quint may sum in another order or precision than numpy did); atol 1e-6 covers
// expected values near zero (softmax and sigmoid tails, normalized values crossing 0), where a
// difference of a few ulps of the operands' magnitude (~1 in these tests) has no relative bound.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

::testing::AssertionResult outputs_match(const Tensor& actual, const Tensor& expected) {
  if (actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(actual.dtype()) << ", expected "
                                         << dtype_name(expected.dtype());
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << ", expected "
                                         << shape_str(expected.shape());
  if (is_float(actual.dtype())) return tensors_close(actual, expected, kRtol, kAtol);
  return tensors_equal(actual, expected);
}

class OnnxNodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxNodeTest, Run) {
  const std::string dir = node_tests_dir();
  if (dir.empty() || GetParam() == "testdata_absent")
    GTEST_SKIP() << "the ONNX node tests are absent: expected " << testdata_dir()
                 << "/onnx-node-tests (../shared/testdata beside the checkout, or $QUINT_TESTDATA)";
  const fs::path folder = fs::path(dir) / GetParam();
  const std::string model_path = (folder / "model.onnx").string();

  auto unsupported = kExpectedUnsupported.find(GetParam());
  if (unsupported != kExpectedUnsupported.end()) {
    try {
      Session s(model_path);
      FAIL() << "expected quint to reject this model at load (" << unsupported->second << "), but it loaded";
    } catch (const Error& e) {
      SUCCEED() << "rejected as expected: " << e.what();
    }
    return;
  }

  const onnx::ModelProto model = read_model(model_path);
  const std::vector<std::string> fed = fed_inputs(model.graph());
  std::vector<std::string> outputs;
  for (const auto& o : model.graph().output()) outputs.push_back(o.name());
  const std::map<std::string, DType> types = declared_types(model.graph());
  const std::map<std::string, std::vector<int64_t>> shapes = declared_shapes(model.graph());
  auto errata_it = kErrata.find(GetParam());
  const Erratum* erratum = errata_it == kErrata.end() ? nullptr : &errata_it->second;

  std::vector<fs::path> data_sets;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) data_sets.push_back(e.path());
  std::sort(data_sets.begin(), data_sets.end());
  ASSERT_FALSE(data_sets.empty()) << "no test_data_set_* in " << folder;

  for (const fs::path& ds : data_sets) {
    SCOPED_TRACE(ds.filename().string());
    // Load, binding inputs as constants for as long as quint names more that it needs.
    std::set<std::string> bound;
    std::unique_ptr<Session> session;
    std::string path = model_path;
    for (size_t attempt = 0; !session; ++attempt) {
      try {
        session = std::make_unique<Session>(path);
      } catch (const Error& e) {
        std::set<std::string> more = inputs_needed_constant(e, model.graph(), fed);
        bool progress = false;
        for (const auto& n : more) progress |= bound.insert(n).second;
        if (!progress || attempt > fed.size()) FAIL() << "quint cannot load the model: " << e.what();
        path = bind_constants(model, bound, fed, ds, GetParam() + "_" + ds.filename().string() + ".onnx");
      }
    }

    std::map<std::string, Tensor> feeds;
    for (size_t k = 0; k < fed.size(); ++k) {
      if (bound.count(fed[k])) continue;
      feeds[fed[k]] = as_declared(load_tensor_proto((ds / ("input_" + std::to_string(k) + ".pb")).string()),
                                  types.at(fed[k]));
    }
    if (erratum && erratum->input_shape_defect) {
      bool defect = false;
      for (auto& [name, t] : feeds) {
        const std::vector<int64_t>& want = shapes.at(name);
        if (fits(t.shape(), want)) continue;
        defect = true;
        EXPECT_THROW(session->run(feeds), Error) << "quint must reject input '" << name << "' of shape "
                                                 << shape_str(t.shape()) << " (declared " << shape_str(want) << ")";
        t = Tensor(t.dtype(), want);
      }
      ASSERT_TRUE(defect) << "erratum '" << erratum->reason << "' no longer applies: remove it from kErrata";
    }
    std::map<std::string, Tensor> got;
    try {
      got = session->run(feeds);
    } catch (const Error& e) {
      FAIL() << "run failed: " << e.what();
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
      const fs::path expected_file = ds / ("output_" + std::to_string(k) + ".pb");
      ASSERT_TRUE(fs::exists(expected_file)) << expected_file;
      Tensor expected = as_declared(load_tensor_proto(expected_file.string()), types.at(outputs[k]));
      if (erratum && erratum->bfloat16_truncated) {
        const Tensor x = load_tensor_proto((ds / "input_0.pb").string());
        ASSERT_EQ(x.dtype(), DType::Float32);
        ASSERT_EQ(expected.dtype(), DType::BFloat16);
        ASSERT_EQ(x.numel(), expected.numel());
        Tensor fixed(DType::BFloat16, expected.shape());
        bool truncated = true;
        for (int64_t i = 0; i < x.numel(); ++i) {
          const float v = x.data<float>()[i];
          const uint16_t stored = static_cast<const uint16_t*>(expected.raw())[i];
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          truncated = truncated && (std::isnan(v) || stored == static_cast<uint16_t>(bits >> 16));
          static_cast<uint16_t*>(fixed.raw())[i] = float_to_bfloat16(v);
        }
        ASSERT_TRUE(truncated) << "erratum '" << erratum->reason << "' no longer applies: remove it from kErrata";
        expected = fixed;
      }
      ASSERT_TRUE(got.count(outputs[k])) << "quint returned no output '" << outputs[k] << "'";
      EXPECT_TRUE(outputs_match(got.at(outputs[k]), expected)) << "output " << k << " '" << outputs[k] << "'";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Node, OnnxNodeTest, ::testing::ValuesIn(list_cases()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace

}  // namespace quint::test
