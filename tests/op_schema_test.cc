// The loader checks every node of an operator quint runs against the operator's ONNX schema
// (runtime/src/op_schemas.inc): attribute names and kinds, input and output counts, input types.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "model_builder.h"
#include "op_schema.h"
#include "quint/ops/op.h"
#include "quint/session.h"
#include "test_paths.h"

namespace quint::test {
namespace {

using runtime::find_op_schema;
using runtime::OpSchema;

// Builds a one-node float model x[2,3] -> op -> y and returns the error of loading it ("" when it
// loads).
std::string load_error(const std::string& file, const std::function<void(ModelBuilder&)>& build) {
  ModelBuilder b;
  build(b);
  const std::string p = b.save(file);
  try {
    Session s(p);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

#define EXPECT_ERROR_HAS(err, text) EXPECT_NE((err).find(text), std::string::npos) << (err)

Attributes attr(const std::string& k, AttributeValue v) {
  Attributes a;
  a.set(k, std::move(v));
  return a;
}

TEST(OpSchema, EveryRegisteredOperatorHasASchema) {
  for (const ops::OpDef& d : ops::Registry::builtin().all()) {
    // quint's own operators (written by its graph passes; no ONNX schema exists): their build
    // functions check everything.
    if (d.domain == "quint") {
      EXPECT_EQ(d.op_type, "TableLookup");
      continue;
    }
    const OpSchema* s = find_op_schema(d.domain, d.op_type, d.min_opset);
    EXPECT_NE(s, nullptr) << d.domain << " " << d.op_type << " at opset " << d.min_opset;
    if (s) {
      EXPECT_LE(s->since_version, d.min_opset);
    }
  }
  EXPECT_NE(find_op_schema("ai.onnx", "Constant", 13), nullptr);
}

TEST(OpSchema, VersionsAreChosenByOpset) {
  // Split's `split` is an attribute until opset 13, an input from 13; num_outputs from 18.
  const OpSchema* s11 = find_op_schema("ai.onnx", "Split", 12);
  const OpSchema* s13 = find_op_schema("ai.onnx", "Split", 17);
  const OpSchema* s18 = find_op_schema("ai.onnx", "Split", 18);
  ASSERT_TRUE(s11 && s13 && s18);
  EXPECT_EQ(s11->since_version, 11);
  EXPECT_EQ(s13->since_version, 13);
  EXPECT_EQ(s18->since_version, 18);
  EXPECT_EQ(s13->max_inputs(), 2);
  EXPECT_EQ(s11->max_inputs(), 1);
  EXPECT_EQ(find_op_schema("ai.onnx", "QLinearConv", 9), nullptr);
  EXPECT_EQ(find_op_schema("ai.onnx", "Resize", 13), nullptr);  // not an operator quint runs
  const OpSchema* concat = find_op_schema("com.microsoft", "QLinearConcat", 1);
  ASSERT_NE(concat, nullptr);
  EXPECT_EQ(concat->min_inputs(), 3);
}

TEST(OpSchema, UnknownOrMistypedAttributes) {
  // A misspelt attribute would otherwise be ignored and change what the model computes.
  std::string e = load_error("conv_stride.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {1, 1, 4, 4});
    b.initializer("w", Tensor::from_vector<float>({1, 1, 1, 1}, {1.0f}));
    b.node("Conv", {"x", "w"}, {"y"}, attr("stride", std::vector<int64_t>{2, 2}), "", "conv");
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "conv_stride.onnx, node 'conv'");
  EXPECT_ERROR_HAS(e, "unknown attribute 'stride': Conv (ai.onnx since opset 11) has the attributes auto_pad, "
                      "dilations, group, kernel_shape, pads, strides");
  e = load_error("relu_attr.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Relu", {"x"}, {"y"}, attr("alpha", 0.5f));
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "unknown attribute 'alpha': Relu (ai.onnx since opset 13) has no attributes");
  e = load_error("leaky_int_alpha.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("LeakyRelu", {"x"}, {"y"}, attr("alpha", int64_t{1}));
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "attribute 'alpha' is an int; LeakyRelu (ai.onnx since opset 6) wants a float");
  e = load_error("cast_no_to.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Cast", {"x"}, {"y"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "required attribute 'to' is missing");
  // Attributes of another opset: num_outputs is Split-18's.
  auto split = [](int opset) {
    return [opset](ModelBuilder& b) {
      b.opset("", opset);
      b.input("x", DType::Float32, {4, 3});
      b.node("Split", {"x"}, {"a", "b"}, attr("num_outputs", int64_t{2}));
      b.output("a").output("b");
    };
  };
  EXPECT_ERROR_HAS(load_error("split13.onnx", split(13)), "unknown attribute 'num_outputs'");
  EXPECT_EQ(load_error("split18.onnx", split(18)), "");
  // com.microsoft operators have schemas too.
  e = load_error("qadd_attr.onnx", [](ModelBuilder& b) {
    b.opset("com.microsoft", 1);
    b.input("a", DType::UInt8, {4});
    b.initializer("s", Tensor::scalar<float>(0.5f)).initializer("z", Tensor::scalar<uint8_t>(3));
    b.node("QLinearAdd", {"a", "s", "z", "a", "s", "z", "s", "z"}, {"y"}, attr("channels_last", int64_t{1}),
           "com.microsoft");
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "unknown attribute 'channels_last': QLinearAdd (com.microsoft since opset 1) has no attributes");
}

TEST(OpSchema, InputAndOutputCounts) {
  std::string e = load_error("relu_two_inputs.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Relu", {"x", "x"}, {"y"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "the node has 2 inputs; Relu (ai.onnx since opset 13) takes 1 input");
  e = load_error("relu_two_outputs.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Relu", {"x"}, {"y", "z"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "the node has 2 outputs; Relu (ai.onnx since opset 13) has 1 output");
  e = load_error("gemm_one_input.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Gemm", {"x"}, {"y"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "the node has 1 inputs; Gemm (ai.onnx since opset 13) takes 2 to 3 inputs");
  // A required input cannot be left out with an empty name; an optional one can.
  e = load_error("conv_no_w.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {1, 1, 4, 4});
    b.node("Conv", {"x", ""}, {"y"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "input 1 ('W') is required but its name is empty");
  EXPECT_EQ(load_error("clip_no_min.onnx", [](ModelBuilder& b) {
              b.input("x", DType::Float32, {2, 3});
              b.initializer("hi", Tensor::scalar<float>(1.0f));
              b.node("Clip", {"x", "", "hi"}, {"y"});
              b.output("y");
            }),
            "");
  // Concat is variadic: at least one input.
  e = load_error("concat_none.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Concat", {}, {"y"}, attr("axis", int64_t{0}));
    b.node("Add", {"x", "y"}, {"z"});
    b.output("z");
  });
  EXPECT_ERROR_HAS(e, "takes 1 or more inputs");
}

TEST(OpSchema, InputTypes) {
  // Relu accepts int8 from opset 14 on, not before.
  auto relu_int8 = [](int opset) {
    return [opset](ModelBuilder& b) {
      b.opset("", opset);
      b.input("x", DType::Int8, {2, 3});
      b.node("Relu", {"x"}, {"y"}, {}, "", "relu");
      b.output("y");
    };
  };
  EXPECT_ERROR_HAS(load_error("relu_int8_13.onnx", relu_int8(13)),
                   "input 0 ('X') is int8; Relu (ai.onnx since opset 13) accepts float32, float16, float64, bfloat16 there");
  EXPECT_EQ(load_error("relu_int8_14.onnx", relu_int8(14)), "");
  // One type parameter, two types.
  std::string e = load_error("add_mixed.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.input("i", DType::Int64, {2, 3});
    b.node("Add", {"x", "i"}, {"y"});
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "input 1 ('B') is int64 but input 0 ('A') is float32; Add (ai.onnx since opset 13) wants both of one type (T)");
  // The check also covers values computed at load (constant folding): Shape's int64 into Relu.
  e = load_error("relu_of_shape.onnx", [](ModelBuilder& b) {
    b.input("x", DType::Float32, {2, 3});
    b.node("Shape", {"x"}, {"s"});
    b.node("Relu", {"s"}, {"y"}, {}, "", "relu");
    b.output("y");
  });
  EXPECT_ERROR_HAS(e, "node 'relu'");
  EXPECT_ERROR_HAS(e, "input 0 ('X') is int64");
}

TEST(OpSchema, OpsetImports) {
  auto relu = [](const std::string& domain, int version) {
    return [domain, version](ModelBuilder& b) {
      b.opset(domain, version);
      b.input("x", DType::Float32, {2, 3});
      b.node("Relu", {"x"}, {"y"});
      b.output("y");
    };
  };
  EXPECT_ERROR_HAS(load_error("opset19.onnx", relu("", 19)),
                   "the model imports ai.onnx opset 19; quint implements opsets 1 to 18");
  EXPECT_EQ(load_error("opset18.onnx", relu("", 18)), "");
  EXPECT_ERROR_HAS(load_error("ms2.onnx", relu("com.microsoft", 2)),
                   "the model imports com.microsoft opset 2; quint implements version 1");
}

// The committed table is what the generator writes from Debian's ONNX (skipped without it).
TEST(OpSchema, TableMatchesTheGenerator) {
  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no onnx module";
  const std::string out = temp_dir() + "/op_schemas.inc";
  const std::string cmd = "cd '" + std::string(QUINT_SOURCE_DIR) + "' && /usr/bin/python3 scripts/gen_op_schemas.py '" +
                          out + "' >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  EXPECT_EQ(slurp(out), slurp(std::string(QUINT_SOURCE_DIR) + "/runtime/src/op_schemas.inc"))
      << "run /usr/bin/python3 scripts/gen_op_schemas.py and commit runtime/src/op_schemas.inc";
}

}  // namespace
}  // namespace quint::test
