// Hostile and broken inputs: model files, external data, operator attributes, .npy / .pb input
// files, images, and the CLI on top of them. Every case must end in a quint::Error whose message
// names the file (and the node and the reason where there is one) -- never a crash, a hang, a
// huge allocation, or a half-written output file.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli.h"
#include "image.h"
#include "model_builder.h"
#include "npy.h"
#include "quint/session.h"
#include "test_paths.h"

namespace quint::test {
namespace {

namespace fs = std::filesystem;

// Runs f and checks that it throws a quint::Error whose message holds every one of `parts`.
::testing::AssertionResult fails_with(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const std::string& p : parts)
      if (m.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "the message \"" << m << "\" lacks \"" << p << "\"";
    return ::testing::AssertionSuccess() << m;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-quint exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not fail";
}
#define EXPECT_FAILS(stmt, ...) EXPECT_TRUE(fails_with([&] { (void)(stmt); }, {__VA_ARGS__}))

// Peak resident memory of this process in MiB. ctest runs every test in its own process, so a
// test that allocated a huge tensor by mistake shows up here.
int64_t peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

onnx::ModelProto parse_model(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

std::string save_model(const onnx::ModelProto& m, const std::string& name) {
  std::string bytes;
  m.SerializeToString(&bytes);
  return write_temp_file(name, bytes);
}

// x [1, 4] float32 + w (initializer [4]) -> y.
ModelBuilder add_model() {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 4});
  b.initializer("w", Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  b.node("Add", {"x", "w"}, {"y"}, {}, "", "add_node");
  b.output("y", DType::Float32);
  return b;
}

// QuantizeLinear -> QLinearConv (1x1, one channel) with everything overridable.
struct QConv {
  Shape x_shape{1, 1, 4, 4};
  Tensor x_scale = Tensor::scalar<float>(0.5f);
  Tensor x_zp = Tensor::scalar<uint8_t>(10);
  Tensor w = Tensor::from_vector<int8_t>({1, 1, 1, 1}, {2});
  Tensor w_scale = Tensor::scalar<float>(1.0f);
  Tensor w_zp = Tensor::scalar<int8_t>(0);
  Tensor y_scale = Tensor::scalar<float>(1.0f);
  Tensor y_zp = Tensor::scalar<uint8_t>(5);
  Attributes attrs;
  std::string save(const std::string& name) const {
    ModelBuilder b;
    b.input("x", DType::Float32, x_shape);
    b.initializer("xs", x_scale).initializer("xz", x_zp).initializer("w", w);
    b.initializer("ws", w_scale).initializer("wz", w_zp).initializer("ys", y_scale).initializer("yz", y_zp);
    b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, {}, "", "quant");
    b.node("QLinearConv", {"xq", "xs", "xz", "w", "ws", "wz", "ys", "yz"}, {"yq"}, attrs, "", "qconv");
    b.output("yq");
    return b.save(name);
  }
};

// Float Conv over x [1, 4, 5, 5] with weights [4, 4/group, k, k].
std::string conv_model(const std::string& name, const Attributes& attrs, int64_t k = 3, int64_t group = 1,
                       int64_t in_channels = 4) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, in_channels, 5, 5});
  b.initializer("w", Tensor(DType::Float32, {4, std::max<int64_t>(1, 4 / group), k, k}));
  b.node("Conv", {"x", "w"}, {"y"}, attrs, "", "conv");
  b.output("y");
  return b.save(name);
}

// ---- Files that are not models --------------------------------------------------------------

TEST(Malformed, MissingEmptyDirectoryAndGarbageFiles) {
  EXPECT_FAILS(Session(temp_dir() + "/no-such-model.onnx"), "no-such-model.onnx", "no such file");
  EXPECT_FAILS(Session(temp_dir()), temp_dir(), "not a regular file");
  const std::string empty = write_temp_file("empty.onnx", "");
  EXPECT_FAILS(Session(empty), empty, "empty");
  const std::string text = write_temp_file("text.onnx", "this is not a model\n");
  EXPECT_FAILS(Session(text), text, "not a valid ONNX model");
  std::mt19937 rng(1234);
  for (int i = 0; i < 50; ++i) {
    std::string bytes(1 + rng() % 2000, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string path = write_temp_file("garbage.onnx", bytes);
    // Random bytes may happen to parse as a protobuf; whatever they are, loading must fail cleanly.
    EXPECT_FAILS(Session(path), path);
  }
}

TEST(Malformed, EveryTruncationOfAModelFailsCleanly) {
  QConv q;
  const std::string full = read_file(q.save("full.onnx"));
  ASSERT_GT(full.size(), 100u);
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string path = write_temp_file("truncated.onnx", full.substr(0, n));
    try {
      Session s(path);
      // A cut at a field boundary can leave a well-formed model (e.g. one without some trailing
      // field); then it must still be usable.
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefix of " << n << " bytes: non-quint exception " << e.what();
    }
  }
}

TEST(Malformed, FlippedBytesFailCleanly) {
  QConv q;
  const std::string full = read_file(q.save("full.onnx"));
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    std::string bytes = full;
    for (int k = 0; k < 1 + i % 4; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    const std::string path = write_temp_file("flipped.onnx", bytes);
    try {
      Session s(path);
      s.run({{"x", Tensor(DType::Float32, {1, 1, 4, 4})}});
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "mutation " << i << ": non-quint exception " << e.what();
    }
  }
}

TEST(Malformed, NoGraphNoOutputs) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  const std::string nograph = save_model(m, "nograph.onnx");
  EXPECT_FAILS(Session(nograph), nograph, "no graph");
  ModelBuilder b;
  b.input("x", DType::Float32, {1});
  const std::string noout = b.save("noout.onnx");
  EXPECT_FAILS(Session(noout), noout, "no outputs");
}

// ONNX requires ModelProto.ir_version and, from IR version 3 on, an opset import; without them the
// nodes' semantics are unknown (ONNX Runtime refuses such files too).
TEST(Malformed, MissingIrVersionOrOpsetImport) {
  ModelBuilder b;
  b.input("x", DType::Float32, {2});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  const std::string ok = b.save("relu_ok.onnx");
  onnx::ModelProto m = parse_model(read_file(ok));
  onnx::ModelProto no_ir = m;
  no_ir.clear_ir_version();
  const std::string p1 = save_model(no_ir, "no_ir_version.onnx");
  EXPECT_FAILS(Session(p1), p1, "no IR version");
  onnx::ModelProto no_opset = m;
  no_opset.clear_opset_import();
  const std::string p2 = save_model(no_opset, "no_opset_import.onnx");
  EXPECT_FAILS(Session(p2), p2, "imports no opset");
  // IR version 2 predates opset imports: ai.onnx opset 1.
  no_opset.set_ir_version(2);
  const std::string p3 = save_model(no_opset, "ir2_no_opset.onnx");
  EXPECT_NO_THROW(Session{p3});
  // IR versions newer than quint knows.
  onnx::ModelProto future = m;
  future.set_ir_version(14);
  const std::string p4 = save_model(future, "ir14.onnx");
  EXPECT_FAILS(Session(p4), p4, "the model has IR version 14; quint reads IR versions 1 to 13");
  // One domain imported twice: fine at one version, ambiguous at two.
  onnx::ModelProto twice = m;
  *twice.add_opset_import() = m.opset_import(0);
  const std::string p5 = save_model(twice, "same_opset_twice.onnx");
  EXPECT_NO_THROW(Session{p5});
  twice.mutable_opset_import(1)->set_version(12);
  const std::string p6 = save_model(twice, "two_opsets.onnx");
  EXPECT_FAILS(Session(p6), p6, "imports domain 'ai.onnx' twice, at opsets 13 and 12");
}

// Attributes must say their type from IR version 2 on; IR version 1 models did not.
TEST(Malformed, UntypedAttributes) {
  ModelBuilder b;
  b.input("x", DType::Float32, {2});
  Attributes a;
  a.set("alpha", 0.5f);
  b.node("LeakyRelu", {"x"}, {"y"}, a, "", "leaky");
  b.output("y");
  onnx::ModelProto m = parse_model(b.bytes());
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->clear_type();
  const std::string p = save_model(m, "untyped_attribute.onnx");
  EXPECT_FAILS(Session(p), p, "node 'leaky'", "attribute 'alpha' has no type (required from IR version 2 on)");
  m.set_ir_version(1);
  m.clear_opset_import();
  const std::string p1 = save_model(m, "untyped_attribute_ir1.onnx");
  Session s(p1);
  const Tensor x = Tensor::from_vector<float>({2}, {-2.0f, 3.0f});
  const Tensor y = s.run({{"x", x}}).at("y");
  EXPECT_EQ(y.data<float>()[0], -1.0f);
  EXPECT_EQ(y.data<float>()[1], 3.0f);
}

// DynamicQuantizeLinear's three outputs are required (fuzz finding: with two, its kernel wrote
// past the output list).
TEST(Malformed, DynamicQuantizeLinearNeedsItsThreeOutputs) {
  ModelBuilder b;
  b.input("x", DType::Float32, {6});
  b.node("DynamicQuantizeLinear", {"x"}, {"y", "s"}, {}, "", "dq");
  b.output("y");
  const std::string p = b.save("dynq_two_outputs.onnx");
  EXPECT_FAILS(Session(p), p, "node 'dq'", "has 3 outputs");
}

// A node with no outputs at all (fuzz finding: the QDQ fuser indexed the inputs of such a MatMul)
// is refused by the loader; a fusable op with too few inputs is left unfused and then refused by
// its own build function.
TEST(Malformed, NodesWithoutInputsOrOutputs) {
  for (const char* op : {"MatMul", "Conv", "Gemm", "Add"}) {
    ModelBuilder b;
    b.input("x", DType::Float32, {1});
    b.node("Relu", {"x"}, {"y"}, {}, "", "relu");
    b.node(op, {}, {}, {}, "", "bare");
    b.output("y");
    const std::string p = b.save(std::string("bare_") + op + ".onnx");
    EXPECT_FAILS(Session(p), p, "node 'bare'", "the node has no outputs");

    ModelBuilder u;
    u.input("x", DType::Float32, {1});
    u.node("Relu", {"x"}, {"y"}, {}, "", "relu");
    u.node(op, {"x", "x"}, {""}, {}, "", "unnamed");
    u.output("y");
    const std::string pu = u.save(std::string("unnamed_") + op + ".onnx");
    EXPECT_FAILS(Session(pu), pu, "node 'unnamed'", "first output has no name");

    ModelBuilder c;
    c.input("x", DType::Float32, {1, 1, 1, 1});
    c.node(op, {}, {"y"}, {}, "", "noinputs");
    c.output("y");
    const std::string pc = c.save(std::string("noinputs_") + op + ".onnx");
    EXPECT_FAILS(Session(pc), pc, "node 'noinputs'");
  }
}

// ---- Operators, types and quantization parameters ---------------------------------------------

// Session::summarize (`quint info`) lists every node whose operator quint lacks, also those after
// the first (whose inputs cannot be planned), and says how many nodes it could not plan.
TEST(Malformed, SummaryListsEveryUnsupportedNodeInAChain) {
  ModelBuilder b;
  b.opset("com.evil", 1);
  b.input("x", DType::Float32, {1, 3, 4, 4});
  b.node("Relu", {"x"}, {"r0"}, {}, "", "relu0");
  b.node("FrobnicateLinear", {"r0"}, {"f1"}, {}, "", "frob1");
  b.node("Relu", {"f1"}, {"r2"}, {}, "", "relu2");
  b.node("Resize", {"r2"}, {"z3"}, {}, "", "resize3");
  b.node("Relu", {"z3"}, {"r4"}, {}, "", "relu4");
  b.node("FrobnicateLinear", {"r4"}, {"y"}, {}, "com.evil", "evil5");
  b.output("y");
  const std::string p = b.save("unsupported_chain.onnx");
  EXPECT_FAILS(Session(p), p, "node 'frob1'", "unsupported operator FrobnicateLinear");
  const ModelSummary s = Session::summarize(p);
  ASSERT_EQ(s.unsupported.size(), 3u);
  EXPECT_NE(s.unsupported[0].find("node 'frob1'"), std::string::npos) << s.unsupported[0];
  EXPECT_NE(s.unsupported[1].find("node 'resize3'"), std::string::npos) << s.unsupported[1];
  EXPECT_NE(s.unsupported[1].find("unsupported operator Resize"), std::string::npos) << s.unsupported[1];
  EXPECT_NE(s.unsupported[2].find("node 'evil5'"), std::string::npos) << s.unsupported[2];
  EXPECT_NE(s.unsupported[2].find("in domain com.evil"), std::string::npos) << s.unsupported[2];
  EXPECT_EQ(s.planned_steps, 1);    // relu0
  EXPECT_EQ(s.unplanned_nodes, 4);  // relu2, resize3, relu4, evil5
}

TEST(Malformed, UnknownOperatorAndDomain) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1});
  b.node("FrobnicateLinear", {"x"}, {"y"}, {}, "", "frob");
  b.output("y");
  const std::string p = b.save("unknown_op.onnx");
  EXPECT_FAILS(Session(p), p, "node 'frob'", "unsupported operator FrobnicateLinear");

  ModelBuilder d;
  d.input("x", DType::Float32, {1});
  d.node("Relu", {"x"}, {"y"}, {}, "com.evil", "evil");
  d.output("y");
  const std::string pd = d.save("unknown_domain.onnx");
  EXPECT_FAILS(Session(pd), pd, "node 'evil'", "no opset for domain 'com.evil'");
}

TEST(Malformed, WrongDtypes) {
  // QLinearConv on float data.
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 1, 4, 4});
  b.initializer("s", Tensor::scalar<float>(1.0f)).initializer("z", Tensor::scalar<uint8_t>(0));
  b.initializer("w", Tensor::from_vector<int8_t>({1, 1, 1, 1}, {1})).initializer("wz", Tensor::scalar<int8_t>(0));
  b.node("QLinearConv", {"x", "s", "z", "w", "s", "wz", "s", "z"}, {"y"}, {}, "", "qconv_float");
  b.output("y");
  const std::string p = b.save("qconv_float.onnx");
  EXPECT_FAILS(Session(p), p, "node 'qconv_float'", "input 0 ('x') is float32; QLinearConv (ai.onnx since opset 10) accepts uint8, int8 there");

  // A float scale given as int32.
  QConv q;
  q.x_scale = Tensor::scalar<int32_t>(1);
  const std::string ps = q.save("int_scale.onnx");
  EXPECT_FAILS(Session(ps), ps, "node 'quant'", "input 1 ('y_scale') is int32; QuantizeLinear (ai.onnx since opset 13) accepts float32 there");

  // Element type codes quint does not know, on an input and on an initializer.
  onnx::ModelProto m = parse_model(add_model().bytes());
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(99);
  const std::string pi = save_model(m, "bad_elem_type.onnx");
  EXPECT_FAILS(Session(pi), pi, "input 'x'", "unsupported element type code 99");
  onnx::ModelProto m2 = parse_model(add_model().bytes());
  m2.mutable_graph()->mutable_initializer(0)->set_data_type(0);
  const std::string pw = save_model(m2, "undefined_init_type.onnx");
  EXPECT_FAILS(Session(pw), pw, "initializer 'w'", "undefined element type code 0");

  // A declared output type that the operator does not produce.
  ModelBuilder o;
  o.input("x", DType::Float32, {2});
  o.node("Relu", {"x"}, {"y"}, {}, "", "relu");
  o.output("y", DType::Int64);
  const std::string po = o.save("wrong_output_type.onnx");
  EXPECT_FAILS(Session(po), po, "node 'relu'", "declared int64 but the operator produces float32");
}

TEST(Malformed, BadScales) {
  const float bad[] = {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  int i = 0;
  for (float v : bad) {
    for (const char* which : {"x", "w", "y"}) {
      QConv q;
      if (which[0] == 'x') q.x_scale = Tensor::scalar<float>(v);
      if (which[0] == 'w') q.w_scale = Tensor::scalar<float>(v);
      if (which[0] == 'y') q.y_scale = Tensor::scalar<float>(v);
      const std::string p = q.save("bad_scale_" + std::to_string(i++) + ".onnx");
      // The x scale is first checked by QuantizeLinear, the others by QLinearConv.
      EXPECT_FAILS(Session(p), p, which[0] == 'x' ? "node 'quant'" : "node 'qconv'", "scale must be finite and > 0");
    }
  }
  // A per-channel weight scale with one bad channel.
  QConv q;
  q.w = Tensor::from_vector<int8_t>({2, 1, 1, 1}, {1, 2});
  q.w_scale = Tensor::from_vector<float>({2}, {1.0f, 0.0f});
  q.w_zp = Tensor::from_vector<int8_t>({2}, {0, 0});
  const std::string p = q.save("bad_channel_scale.onnx");
  EXPECT_FAILS(Session(p), p, "node 'qconv'", "w scale must be finite and > 0, got 0");
}

TEST(Malformed, ZeroPointDtypeMismatch) {
  // uint8 activations with an int8 zero point at QLinearConv.
  ModelBuilder b;
  b.input("x", DType::UInt8, {1, 1, 4, 4});
  b.initializer("s", Tensor::scalar<float>(1.0f)).initializer("z", Tensor::scalar<uint8_t>(0));
  b.initializer("bad_z", Tensor::scalar<int8_t>(0));
  b.initializer("w", Tensor::from_vector<int8_t>({1, 1, 1, 1}, {1})).initializer("wz", Tensor::scalar<int8_t>(0));
  b.node("QLinearConv", {"x", "s", "bad_z", "w", "s", "wz", "s", "z"}, {"y"}, {}, "", "qconv_zp");
  b.output("y");
  const std::string p = b.save("zp_mismatch.onnx");
  EXPECT_FAILS(Session(p), p, "node 'qconv_zp'", "input 2 ('x_zero_point') is int8 but input 0 ('x') is uint8");

  // int8 weights with a uint8 weight zero point.
  QConv q;
  q.w_zp = Tensor::scalar<uint8_t>(0);
  const std::string pw = q.save("wzp_mismatch.onnx");
  EXPECT_FAILS(Session(pw), pw, "node 'qconv'", "input 5 ('w_zero_point') is uint8 but input 3 ('w') is int8");

  // DequantizeLinear of int8 data with a uint8 zero point.
  ModelBuilder d;
  d.input("x", DType::Int8, {4});
  d.initializer("s", Tensor::scalar<float>(1.0f)).initializer("z", Tensor::scalar<uint8_t>(0));
  d.node("DequantizeLinear", {"x", "s", "z"}, {"y"}, {}, "", "dq");
  d.output("y");
  const std::string pd = d.save("dq_zp_mismatch.onnx");
  EXPECT_FAILS(Session(pd), pd, "node 'dq'", "input 2 ('x_zero_point') is uint8 but input 0 ('x') is int8");
}

TEST(Malformed, ShapeMismatches) {
  ModelBuilder b;
  b.input("a", DType::Float32, {2, 3});
  b.input("b", DType::Float32, {4, 5});
  b.node("Add", {"a", "b"}, {"y"}, {}, "", "add");
  b.output("y");
  const std::string p = b.save("broadcast.onnx");
  EXPECT_FAILS(Session(p), p, "node 'add'", "cannot be broadcast");

  // Declared output shape that the operator does not produce.
  ModelBuilder o;
  o.input("x", DType::Float32, {2, 3});
  o.node("Relu", {"x"}, {"y"}, {}, "", "relu");
  o.output("y", DType::Float32, {3, 2}, true);
  const std::string po = o.save("declared_shape.onnx");
  EXPECT_FAILS(Session(po), po, "node 'relu'", "declared with shape [3,2] but the operator produces [2,3]");

  // Weights that do not match the input channels.
  QConv q;
  q.w = Tensor::from_vector<int8_t>({1, 2, 1, 1}, {1, 1});
  const std::string pq = q.save("conv_channels.onnx");
  EXPECT_FAILS(Session(pq), pq, "node 'qconv'", "input channels per group");

  // Reshape to a different element count, Gather out of range, bad Split sizes, bad Slice steps.
  ModelBuilder r;
  r.input("x", DType::Float32, {2, 3});
  r.initializer("shape", Tensor::from_vector<int64_t>({2}, {4, 2}));
  r.node("Reshape", {"x", "shape"}, {"y"}, {}, "", "reshape");
  r.output("y");
  const std::string pr = r.save("reshape.onnx");
  EXPECT_FAILS(Session(pr), pr, "node 'reshape'", "cannot reshape [2,3]");

  ModelBuilder g;
  g.input("x", DType::Float32, {2, 3});
  g.initializer("idx", Tensor::from_vector<int64_t>({2}, {0, 3}));
  g.node("Gather", {"x", "idx"}, {"y"}, {}, "", "gather");
  g.output("y");
  const std::string pg = g.save("gather.onnx");
  EXPECT_FAILS(Session(pg), pg, "node 'gather'", "index 3", "out of range");

  const int64_t big = std::numeric_limits<int64_t>::max();
  ModelBuilder s;
  s.input("x", DType::Float32, {4});
  s.initializer("split", Tensor::from_vector<int64_t>({3}, {big, big, 2}));  // wraps to 0 in int64
  s.node("Split", {"x", "split"}, {"a", "b", "c"}, {}, "", "split");
  s.output("a").output("b").output("c");
  const std::string ps = s.save("split.onnx");
  EXPECT_FAILS(Session(ps), ps, "node 'split'", "split sizes");

  ModelBuilder sl;
  sl.input("x", DType::Float32, {4});
  sl.initializer("st", Tensor::from_vector<int64_t>({1}, {0})).initializer("en", Tensor::from_vector<int64_t>({1}, {4}));
  sl.initializer("ax", Tensor::from_vector<int64_t>({1}, {0})).initializer("step", Tensor::from_vector<int64_t>({1}, {0}));
  sl.node("Slice", {"x", "st", "en", "ax", "step"}, {"y"}, {}, "", "slice");
  sl.output("y");
  const std::string psl = sl.save("slice.onnx");
  EXPECT_FAILS(Session(psl), psl, "node 'slice'", "steps must not be 0");

  ModelBuilder c;
  c.input("a", DType::Float32, {2, 3});
  c.input("b", DType::Float32, {3, 3});
  c.node("Concat", {"a", "b"}, {"y"}, [] { Attributes a; a.set("axis", int64_t{1}); return a; }(), "", "concat");
  c.output("y");
  const std::string pc = c.save("concat.onnx");
  EXPECT_FAILS(Session(pc), pc, "node 'concat'", "differs from input 0's");
}

// Indices that arrive at run time cannot be checked at load: an out-of-range one ends the run with
// an error naming the node (ONNX calls it an error; returning zeros would hide a broken model),
// and the session stays usable.
TEST(Malformed, RunTimeGatherIndexOutOfRange) {
  for (DType it : {DType::Int64, DType::Int32}) {
    ModelBuilder b;
    b.input("x", DType::Float32, {3, 2});
    b.input("i", it, {2});
    b.node("Gather", {"x", "i"}, {"y"}, {}, "", "gather_rt");
    b.output("y");
    const std::string p = b.save("gather_rt.onnx");
    Session s(p);
    const Tensor x = Tensor::from_vector<float>({3, 2}, {0, 1, 2, 3, 4, 5});
    auto idx = [&](int64_t a, int64_t c) {
      Tensor t(it, {2});
      if (it == DType::Int64) t.data<int64_t>()[0] = a, t.data<int64_t>()[1] = c;
      else t.data<int32_t>()[0] = static_cast<int32_t>(a), t.data<int32_t>()[1] = static_cast<int32_t>(c);
      return t;
    };
    EXPECT_FAILS(s.run({{"x", x}, {"i", idx(0, 7)}}), p, "node 'gather_rt'", "op Gather",
                 "index 7 (at flat position 1 of indices) is out of range [-3, 2]");
    EXPECT_FAILS(s.run({{"x", x}, {"i", idx(-4, 1)}}), p, "node 'gather_rt'", "index -4");
    const int64_t far = it == DType::Int64 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int32_t>::min();
    EXPECT_FAILS(s.run({{"x", x}, {"i", idx(1, far)}}), p, "node 'gather_rt'", "out of range");
    // The failed runs leave nothing behind: valid indices (negative ones too) run as before.
    auto y = s.run({{"x", x}, {"i", idx(-1, 0)}}).at("y");
    const auto v = y.values<float>();
    EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{4, 5, 0, 1}));
  }
}

// Loading and planning are linear in the graph's size: a chain of 30k nodes (a 1 MB file) used to
// take ~20 s (the QDQ pass rescanned the graph after every node, the arena layout compared every
// buffer with every other).
TEST(Malformed, LongChainsLoadInLinearTime) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 8});
  const int n = 30000;
  for (int i = 0; i < n; ++i)
    b.node("Relu", {i == 0 ? "x" : "t" + std::to_string(i - 1)}, {i == n - 1 ? "y" : "t" + std::to_string(i)}, {}, "",
           "relu" + std::to_string(i));
  b.output("y");
  const std::string p = b.save("long_chain.onnx");
  const auto t0 = std::chrono::steady_clock::now();
  Session s(p);
  auto y = s.run({{"x", Tensor::from_vector<float>({1, 8}, {-1, 1, -2, 2, -3, 3, -4, 4})}}).at("y");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto v = y.values<float>();
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{0, 1, 0, 2, 0, 3, 0, 4}));
  EXPECT_LT(seconds, 15.0) << "loading and running a 30k-node chain";
}

TEST(Malformed, MissingInitializerAndUndefinedValues) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 4});
  b.node("Add", {"x", "w"}, {"y"}, {}, "", "add_node");
  b.output("y");
  const std::string p = b.save("missing_init.onnx");
  EXPECT_FAILS(Session(p), p, "node 'add_node'", "input 'w' is not a graph input, an initializer or any node's output");

  ModelBuilder o;
  o.input("x", DType::Float32, {1});
  o.node("Relu", {"x"}, {"y"}, {}, "", "relu");
  o.output("nothing");
  const std::string po = o.save("missing_output.onnx");
  EXPECT_FAILS(Session(po), po, "graph output 'nothing' is not produced");

  // A graph input without type or shape.
  onnx::ModelProto m = parse_model(add_model().bytes());
  m.mutable_graph()->mutable_input(0)->clear_type();
  const std::string pt = save_model(m, "untyped_input.onnx");
  EXPECT_FAILS(Session(pt), pt, "graph input 'x' has no element type");
}

TEST(Malformed, InitializerBytesNotMatchingDims) {
  onnx::ModelProto m = parse_model(add_model().bytes());
  m.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(12);  // [4] float needs 16
  const std::string p = save_model(m, "short_raw.onnx");
  EXPECT_FAILS(Session(p), p, "initializer 'w'", "raw_data has 12 bytes but shape [4] of float32 needs 16");

  onnx::ModelProto m2 = parse_model(add_model().bytes());
  auto* t = m2.mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  for (int i = 0; i < 3; ++i) t->add_float_data(1.0f);
  const std::string p2 = save_model(m2, "short_typed.onnx");
  EXPECT_FAILS(Session(p2), p2, "initializer 'w'", "typed data field holds 3 values but shape [4] needs 4");

  onnx::ModelProto m3 = parse_model(add_model().bytes());
  m3.mutable_graph()->mutable_initializer(0)->add_dims(2);  // [4, 2]: 32 bytes, 16 given
  const std::string p3 = save_model(m3, "extra_dim.onnx");
  EXPECT_FAILS(Session(p3), p3, "initializer 'w'", "needs 32");
}

TEST(Malformed, HugeDimsFailWithoutAllocating) {
  const int64_t before = peak_rss_mib();
  const int64_t t40 = int64_t{1} << 40;
  // An initializer claiming 2^40 elements with 16 bytes of data.
  onnx::ModelProto m = parse_model(add_model().bytes());
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_dims();
  t->add_dims(int64_t{1} << 20);
  t->add_dims(int64_t{1} << 20);
  const std::string p = save_model(m, "huge_init.onnx");
  EXPECT_FAILS(Session(p), p, "initializer 'w'", "exceeds the limit");
  // Dims whose product overflows int64, including behind a zero dim.
  t->clear_dims();
  t->add_dims(int64_t{1} << 32);
  t->add_dims(int64_t{1} << 32);
  const std::string p2 = save_model(m, "overflow_init.onnx");
  EXPECT_FAILS(Session(p2), p2, "initializer 'w'", "overflows int64");
  t->clear_dims();
  t->add_dims(0);
  t->add_dims(int64_t{1} << 32);
  t->add_dims(int64_t{1} << 32);
  t->clear_raw_data();
  const std::string p3 = save_model(m, "overflow_empty_init.onnx");
  EXPECT_FAILS(Session(p3), p3, "initializer 'w'", "overflows int64");
  // An empty initializer whose other dims are huge is held to the limit as well.
  t->clear_dims();
  t->add_dims(0);
  t->add_dims(t40);
  const std::string p4 = save_model(m, "huge_empty_init.onnx");
  EXPECT_FAILS(Session(p4), p4, "initializer 'w'", "exceeds the limit");

  // A graph input declared with 2^40 elements.
  ModelBuilder in;
  in.input("x", DType::UInt8, {t40});
  in.node("Identity", {"x"}, {"y"}, {}, "", "id");
  in.output("y");
  const std::string pi = in.save("huge_input.onnx");
  EXPECT_FAILS(Session(pi), pi, "input 'x'", "exceeds the tensor size limit");
  // ... or overflowing int64.
  ModelBuilder ov;
  ov.input("x", DType::UInt8, {int64_t{1} << 32, int64_t{1} << 32});
  ov.node("Identity", {"x"}, {"y"}, {}, "", "id");
  ov.output("y");
  const std::string po = ov.save("overflow_input.onnx");
  EXPECT_FAILS(Session(po), po, "overflows int64");

  // Operators asked to make huge tensors from small constants: ConstantOfShape, Expand, Tile,
  // Pad, Reshape with a 0 dim; with constant inputs they would be folded at load.
  auto ints = [](std::vector<int64_t> v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); };
  struct Case {
    std::string op;
    std::vector<std::pair<std::string, Tensor>> consts;
    Attributes attrs;
  };
  std::vector<Case> cases = {
      {"ConstantOfShape", {{"c0", ints({t40})}}, {}},
      {"ConstantOfShape", {{"c0", ints({1 << 20, 1 << 20, 1 << 20})}}, {}},
      {"Expand", {{"c0", Tensor::scalar<float>(1)}, {"c1", ints({t40})}}, {}},
      {"Expand", {{"c0", Tensor(DType::Float32, {0, 1})}, {"c1", ints({0, t40})}}, {}},
      {"Tile", {{"c0", Tensor(DType::Float32, {2})}, {"c1", ints({t40})}}, {}},
      {"Tile", {{"c0", Tensor(DType::Float32, {0, 2})}, {"c1", ints({1, t40})}}, {}},
      {"Pad", {{"c0", Tensor(DType::Float32, {2})}, {"c1", ints({t40, 0})}}, {}},
      {"Pad", {{"c0", Tensor(DType::Float32, {2})}, {"c1", ints({std::numeric_limits<int64_t>::min(), 0})}}, {}},
  };
  int i = 0;
  for (const Case& c : cases) {
    ModelBuilder b;
    std::vector<std::string> ins;
    for (const auto& [name, value] : c.consts) {
      b.initializer(name, value);
      ins.push_back(name);
    }
    b.node(c.op, ins, {"y"}, c.attrs, "", "big_" + c.op);
    b.output("y");
    const std::string pc = b.save("huge_op_" + std::to_string(i++) + ".onnx");
    EXPECT_FAILS(Session(pc), pc, "node 'big_" + c.op + "'");
    // With a smaller limit, a moderately large request fails the same way.
  }
  SessionOptions small;
  small.max_tensor_bytes = 1 << 20;
  ModelBuilder cs;
  cs.initializer("c0", ints({1 << 20}));
  cs.node("ConstantOfShape", {"c0"}, {"y"}, {}, "", "cos");
  cs.output("y");
  const std::string pcs = cs.save("cos_limit.onnx");
  EXPECT_FAILS(Session(pcs, small), pcs, "node 'cos'", "exceeds the tensor size limit of 1048576 bytes");
  EXPECT_NO_THROW((void)Session(pcs));  // 4 MiB is within the default limit
  EXPECT_LT(peak_rss_mib() - before, 256) << "a huge tensor was allocated";
}

TEST(Malformed, NegativeDims) {
  onnx::ModelProto m = parse_model(add_model().bytes());
  m.mutable_graph()->mutable_initializer(0)->set_dims(0, -4);
  const std::string p = save_model(m, "negative_init.onnx");
  EXPECT_FAILS(Session(p), p, "initializer 'w'", "negative dimension -4");

  onnx::ModelProto m2 = parse_model(add_model().bytes());
  m2.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(-3);
  const std::string p2 = save_model(m2, "negative_input.onnx");
  EXPECT_FAILS(Session(p2), p2, "input 'x' has negative dim -3");

  ModelBuilder r;
  r.input("x", DType::Float32, {2, 3});
  r.initializer("shape", Tensor::from_vector<int64_t>({2}, {-2, -3}));
  r.node("Reshape", {"x", "shape"}, {"y"}, {}, "", "reshape");
  r.output("y");
  const std::string pr = r.save("negative_reshape.onnx");
  EXPECT_FAILS(Session(pr), pr, "node 'reshape'", "invalid dim -2");

  ModelBuilder c;
  c.initializer("shape", Tensor::from_vector<int64_t>({1}, {-1}));
  c.node("ConstantOfShape", {"shape"}, {"y"}, {}, "", "cos");
  c.output("y");
  const std::string pc = c.save("negative_cos.onnx");
  EXPECT_FAILS(Session(pc), pc, "node 'cos'", "negative dim");
}

TEST(Malformed, Cycles) {
  ModelBuilder b;
  b.input("x", DType::Float32, {2});
  b.node("Add", {"x", "b"}, {"a"}, {}, "", "first");
  b.node("Relu", {"a"}, {"b"}, {}, "", "second");
  b.output("b");
  const std::string p = b.save("cycle.onnx");
  EXPECT_FAILS(Session(p), p, "cycle");

  ModelBuilder s;
  s.input("x", DType::Float32, {2});
  s.node("Add", {"x", "a"}, {"a"}, {}, "", "self");
  s.output("a");
  const std::string ps = s.save("self_cycle.onnx");
  EXPECT_FAILS(Session(ps), ps, "node 'self'", "cycle");
}

TEST(Malformed, DuplicateNames) {
  ModelBuilder b = add_model();
  b.initializer("w", Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  const std::string p = b.save("dup_init.onnx");
  EXPECT_FAILS(Session(p), p, "initializer 'w' is defined more than once");

  ModelBuilder n;
  n.input("x", DType::Float32, {2});
  n.node("Relu", {"x"}, {"y"}, {}, "", "one");
  n.node("Neg", {"x"}, {"y"}, {}, "", "two");
  n.output("y");
  const std::string pn = n.save("dup_output.onnx");
  EXPECT_FAILS(Session(pn), pn, "node 'two'", "output 'y' is already defined (by another node)");

  ModelBuilder i;
  i.input("x", DType::Float32, {2});
  i.initializer("w", Tensor::from_vector<float>({2}, {1, 2}));
  i.node("Relu", {"x"}, {"w"}, {}, "", "overwrite");
  i.output("w");
  const std::string pi = i.save("output_is_init.onnx");
  EXPECT_FAILS(Session(pi), pi, "node 'overwrite'", "already defined (as an initializer)");

  // The same attribute twice on one node.
  ModelBuilder a;
  a.input("x", DType::Float32, {1, 1, 4, 4});
  a.node("MaxPool", {"x"}, {"y"}, [] { Attributes t; t.set("kernel_shape", std::vector<int64_t>{2, 2}); return t; }(), "",
         "pool");
  a.output("y");
  onnx::ModelProto m = parse_model(a.bytes());
  *m.mutable_graph()->mutable_node(0)->add_attribute() = m.graph().node(0).attribute(0);
  const std::string pa = save_model(m, "dup_attr.onnx");
  EXPECT_FAILS(Session(pa), pa, "node 'pool'", "attribute 'kernel_shape' appears twice");
}

TEST(Malformed, InputDefinedTwice) {
  ModelBuilder b;
  b.input("x", DType::Float32, {2});
  b.input("x", DType::Float32, {2});
  b.node("Relu", {"x"}, {"y"}, {}, "", "relu");
  b.output("y");
  const std::string p = b.save("dup_input.onnx");
  EXPECT_FAILS(Session(p), p, "graph input 'x' is defined more than once");

  ModelBuilder n;
  n.input("x", DType::Float32, {2});
  n.node("Relu", {"x"}, {"x"}, {}, "", "into_input");
  n.output("x");
  const std::string pn = n.save("output_is_input.onnx");
  EXPECT_FAILS(Session(pn), pn, "node 'into_input'", "already defined (as a graph input)");

  // An initializer listed among the inputs (IR < 4 style) with a conflicting type.
  onnx::ModelProto m = parse_model(add_model().bytes());
  auto* in = m.mutable_graph()->add_input();
  in->set_name("w");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int>(DType::Int64));
  const std::string pm = save_model(m, "init_input_type.onnx");
  EXPECT_FAILS(Session(pm), pm, "input 'w' is declared int64 but its initializer is float32");
}

// ---- External data --------------------------------------------------------------------------

class ExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(temp_dir()) / "ext";
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "sub");
    std::ofstream(dir_ / "weights.bin", std::ios::binary).write("\0\0\x80?\0\0\0@\0\0@@\0\0\x80@", 16);  // 1,2,3,4
    std::ofstream(fs::path(temp_dir()) / "secret.bin", std::ios::binary) << std::string(64, 's');
    std::error_code ec;
    fs::create_symlink("../secret.bin", dir_ / "link.bin", ec);
    symlink_ok_ = !ec;
  }

  // The add model with `w` in external data.
  std::string save(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& name) {
    onnx::ModelProto m = parse_model(add_model().bytes());
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    for (const auto& [k, v] : kv) {
      auto* e = t->add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    std::string bytes;
    m.SerializeToString(&bytes);
    const std::string path = (dir_ / "sub" / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
  bool symlink_ok_ = false;
};

TEST_F(ExternalData, ValidExternalDataLoads) {
  std::ofstream(dir_ / "sub" / "w.bin", std::ios::binary).write("\0\0\x80?\0\0\0@\0\0@@\0\0\x80@", 16);
  const std::string p = save({{"location", "w.bin"}}, "ok.onnx");
  Session s(p);
  auto out = s.run({{"x", Tensor(DType::Float32, {1, 4})}});
  EXPECT_EQ(out.at("y").data<float>()[3], 4.0f);
}

TEST_F(ExternalData, EscapingTheModelFolderIsRefused) {
  const std::string up = save({{"location", "../weights.bin"}}, "up.onnx");
  EXPECT_FAILS(Session(up), up, "initializer 'w'", "escapes the model's folder");
  const std::string deep = save({{"location", "./x/../../../secret.bin"}}, "deep.onnx");
  EXPECT_FAILS(Session(deep), deep, "initializer 'w'");
  const std::string abs = save({{"location", (dir_ / "weights.bin").string()}}, "abs.onnx");
  EXPECT_FAILS(Session(abs), abs, "initializer 'w'", "is absolute");
  const std::string etc = save({{"location", "/etc/passwd"}}, "etc.onnx");
  EXPECT_FAILS(Session(etc), etc, "is absolute");
  if (symlink_ok_) {
    fs::create_symlink("../link.bin", dir_ / "sub" / "inner_link.bin");
    const std::string link = save({{"location", "inner_link.bin"}}, "link.onnx");
    EXPECT_FAILS(Session(link), link, "initializer 'w'", "escapes the model's folder");
    fs::create_symlink("/dev/zero", dir_ / "sub" / "zero.bin");
    const std::string zero = save({{"location", "zero.bin"}}, "zero.onnx");
    EXPECT_FAILS(Session(zero), zero, "initializer 'w'");
  }
  const std::string nul = save({{"location", std::string("w.bin\0../../x", 13)}}, "nul.onnx");
  EXPECT_FAILS(Session(nul), nul, "NUL");
  const std::string dirloc = save({{"location", "."}}, "dirloc.onnx");
  EXPECT_FAILS(Session(dirloc), dirloc, "'.' is not a regular file");
  const std::string missing = save({{"location", "absent.bin"}}, "missing.onnx");
  EXPECT_FAILS(Session(missing), missing, "'absent.bin' does not exist");
  // A FIFO inside the folder would block the load forever if it were opened.
  if (::mkfifo((dir_ / "sub" / "fifo.bin").c_str(), 0600) == 0) {
    const std::string fifo = save({{"location", "fifo.bin"}}, "fifo.onnx");
    EXPECT_FAILS(Session(fifo), fifo, "initializer 'w'", "'fifo.bin' is not a regular file");
  }
  const std::string none = save({{"offset", "0"}}, "noloc.onnx");
  EXPECT_FAILS(Session(none), none, "no 'location'");
  // From memory there is no folder: external data is refused outright.
  EXPECT_FAILS(Session::from_bytes(read_file(save({{"location", "w.bin"}}, "mem.onnx")), "mem.onnx"), "mem.onnx",
               "not allowed");
}

TEST_F(ExternalData, RangesBeyondTheFileAreRefused) {
  std::ofstream(dir_ / "sub" / "w.bin", std::ios::binary) << std::string(20, '\0');
  const std::string off = save({{"location", "w.bin"}, {"offset", "8"}}, "off.onnx");
  EXPECT_FAILS(Session(off), off, "initializer 'w'", "beyond the end of 'w.bin'");
  const std::string huge = save({{"location", "w.bin"}, {"offset", "999999999999999999"}}, "huge_off.onnx");
  EXPECT_FAILS(Session(huge), huge, "beyond the end");
  const std::string len = save({{"location", "w.bin"}, {"length", "12"}}, "len.onnx");
  EXPECT_FAILS(Session(len), len, "length 12 does not match the 16 bytes");
  const std::string neg = save({{"location", "w.bin"}, {"offset", "-4"}}, "neg.onnx");
  EXPECT_FAILS(Session(neg), neg, "'offset' is not a non-negative integer");
  const std::string text = save({{"location", "w.bin"}, {"length", "16 bytes"}}, "text.onnx");
  EXPECT_FAILS(Session(text), text, "'length' is not a non-negative integer");
  const std::string big = save({{"location", "w.bin"}, {"length", "99999999999999999999999"}}, "big.onnx");
  EXPECT_FAILS(Session(big), big, "'length' is not a non-negative integer");
}

// ---- Invalid attributes ---------------------------------------------------------------------

TEST(Malformed, InvalidConvAttributes) {
  auto attrs = [](const char* k, std::vector<int64_t> v) {
    Attributes a;
    a.set(k, std::move(v));
    return a;
  };
  struct Case {
    Attributes a;
    int64_t k, group, channels;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {attrs("strides", {0, 1}), 3, 1, 4, "strides must be >= 1"},
      {attrs("strides", {-2, 1}), 3, 1, 4, "strides must be >= 1"},
      {attrs("dilations", {1, 0}), 3, 1, 4, "dilations must be >= 1"},
      {attrs("pads", {0, -1, 0, 0}), 3, 1, 4, "pads must be >= 0"},
      {attrs("pads", {0, 0, 0}), 3, 1, 4, "attribute 'pads' has 3 values, expected 4"},
      {{}, 7, 1, 4, "larger than the padded input"},
      {attrs("dilations", {3, 3}), 3, 1, 4, "larger than the padded input"},
      {attrs("kernel_shape", {2, 2}), 3, 1, 4, "does not match the weights'"},
      {[] { Attributes a; a.set("group", int64_t{3}); return a; }(), 3, 3, 4, "group 3 does not divide the input channels 4"},
      {[] { Attributes a; a.set("group", int64_t{0}); return a; }(), 3, 1, 4, "group must be >= 1"},
      {[] { Attributes a; a.set("auto_pad", std::string("SIDEWAYS")); return a; }(), 3, 1, 4, "auto_pad 'SIDEWAYS'"},
      {[] { Attributes a; a.set("strides", int64_t{2}); return a; }(), 3, 1, 4, "attribute 'strides' is an int; Conv (ai.onnx since opset 11) wants a list of ints"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string p = conv_model("conv_attr_" + std::to_string(i++) + ".onnx", c.a, c.k, c.group, c.channels);
    EXPECT_FAILS(Session(p), p, "node 'conv'", c.reason);
  }
  // The same through QLinearConv.
  QConv q;
  q.attrs.set("strides", std::vector<int64_t>{1, 0});
  const std::string pq = q.save("qconv_stride0.onnx");
  EXPECT_FAILS(Session(pq), pq, "node 'qconv'", "strides must be >= 1");
  QConv big;
  big.attrs.set("pads", std::vector<int64_t>{int64_t{1} << 50, 0, 0, 0});
  const std::string pb = big.save("qconv_huge_pad.onnx");
  EXPECT_FAILS(Session(pb), pb, "node 'qconv'", "too large");
}

TEST(Malformed, InvalidPoolAndShapeAttributes) {
  ModelBuilder p;
  p.input("x", DType::Float32, {1, 1, 4, 4});
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{5, 5});
  p.node("MaxPool", {"x"}, {"y"}, a, "", "pool");
  p.output("y");
  const std::string pp = p.save("pool_kernel.onnx");
  EXPECT_FAILS(Session(pp), pp, "node 'pool'", "larger than the padded input");

  // An empty kernel_shape is not a 1x1 window (ONNX Runtime comparison: quint ran it as one).
  ModelBuilder pe;
  pe.input("x", DType::Float32, {1, 1, 4, 4});
  Attributes empty;
  empty.set("kernel_shape", std::vector<int64_t>{});
  pe.node("AveragePool", {"x"}, {"y"}, empty, "", "pool");
  pe.output("y");
  const std::string ppe = pe.save("pool_empty_kernel.onnx");
  EXPECT_FAILS(Session(ppe), ppe, "node 'pool'", "attribute 'kernel_shape' has 0 values, expected 2");

  // A 3-D pool window of 2^93 taps (each dim just within the per-dim bound) over one element.
  const int64_t k = int64_t{1} << 31;
  ModelBuilder p3;
  p3.input("x", DType::Float32, {1, 1, 1, 1, 1});
  Attributes a3;
  a3.set("kernel_shape", std::vector<int64_t>{k, k, k});
  a3.set("strides", std::vector<int64_t>{k, k, k});
  a3.set("pads", std::vector<int64_t>(6, k - 1));
  a3.set("count_include_pad", int64_t{1});
  p3.node("AveragePool", {"x"}, {"y"}, a3, "", "pool3d");
  p3.output("y");
  const std::string pp3 = p3.save("pool3d_window.onnx");
  EXPECT_FAILS(Session(pp3), pp3, "node 'pool3d'", "more elements than int64 can count");

  ModelBuilder t;
  t.input("x", DType::Float32, {2, 3});
  Attributes perm;
  perm.set("perm", std::vector<int64_t>{0, 0});
  t.node("Transpose", {"x"}, {"y"}, perm, "", "transpose");
  t.output("y");
  const std::string pt = t.save("transpose_perm.onnx");
  EXPECT_FAILS(Session(pt), pt, "node 'transpose'", "not a permutation");

  ModelBuilder ax;
  ax.input("x", DType::Float32, {2, 3});
  Attributes axis;
  axis.set("axis", int64_t{7});
  ax.node("Softmax", {"x"}, {"y"}, axis, "", "softmax");
  ax.output("y");
  const std::string pa = ax.save("softmax_axis.onnx");
  EXPECT_FAILS(Session(pa), pa, "node 'softmax'", "out of range");
}

// ---- Input files: .npy and .pb --------------------------------------------------------------

std::string npy_bytes(const std::string& header_dict, const std::string& data) {
  std::string h = header_dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string b = "\x93NUMPY\x01";
  b += '\0';
  b += static_cast<char>(h.size() & 0xff);
  b += static_cast<char>(h.size() >> 8);
  return b + h + data;
}

TEST(Malformed, NpyFiles) {
  using tools::read_npy;
  const std::string f32 = std::string(16, '\0');
  struct Case {
    std::string name, bytes, reason;
  };
  const std::vector<Case> cases = {
      {"empty.npy", "", "bad magic"},
      {"magic.npy", "\x93NUMPZ\x01", "bad magic"},
      {"version.npy", std::string("\x93NUMPY\x07\0\0\0", 10), "unsupported .npy format version 7"},
      {"short_header.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f32).substr(0, 30),
       "truncated header"},
      {"no_shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", f32), "no 'shape'"},
      {"dtype.npy", npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", f32), "unsupported .npy dtype '<c8'"},
      {"object.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f32), "unsupported .npy dtype"},
      {"bigendian.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f32), "big-endian"},
      {"fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f32), "Fortran-order"},
      {"truncated.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", f32),
       "truncated data: shape [5] needs 20 bytes, the file has 16"},
      {"huge.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", f32),
       "exceeds the size limit"},
      {"overflow.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f32),
       "overflows int64"},
      {"bad_shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", f32), "malformed shape"},
      {"long_dim.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1234567890123456789012,), }", f32),
       "malformed shape"},
  };
  const int64_t before = peak_rss_mib();
  for (const Case& c : cases) {
    const std::string p = write_temp_file(c.name, c.bytes);
    EXPECT_FAILS(read_npy(p), p, c.reason);
  }
  EXPECT_LT(peak_rss_mib() - before, 256) << "a huge array was allocated";
  EXPECT_FAILS(read_npy(temp_dir() + "/absent.npy"), "absent.npy", "cannot open");
}

TEST(Malformed, InputTensorsOfTheWrongDtypeOrShape) {
  const std::string model = add_model().save("add.onnx");
  Session s(model);
  EXPECT_FAILS(s.run({{"x", Tensor(DType::Int32, {1, 4})}}), model, "input 'x' must be float32, got int32");
  EXPECT_FAILS(s.run({{"x", Tensor(DType::Float32, {1, 5})}}), model, "input 'x' must have shape [1,4]");
  EXPECT_FAILS(s.run({{"x", Tensor(DType::Float32, {4})}}), model, "input 'x' must have shape");
  EXPECT_FAILS(s.run({}), model, "missing input 'x'");
  EXPECT_FAILS(s.run({{"x", Tensor(DType::Float32, {1, 4})}, {"z", Tensor(DType::Float32, {1})}}), model,
               "no input 'z'");

  // A symbolic dim accepts any size, within the limit.
  ModelBuilder b;
  b.input("x", DType::UInt8, {-1, 4});
  b.node("Identity", {"x"}, {"y"}, {}, "", "id");
  b.output("y");
  SessionOptions o;
  o.max_tensor_bytes = 1 << 16;
  const std::string sym = b.save("sym.onnx");
  Session ss(sym, o);
  EXPECT_FAILS(ss.run({{"x", Tensor(DType::UInt8, {1 << 15, 4})}}), sym, "exceeds the tensor size limit");
  // Empty tensors with a huge symbolic dim are held to the limit too (no allocation happens).
  ModelBuilder b2;
  b2.input("x", DType::UInt8, {-1, -1});
  b2.node("Identity", {"x"}, {"y"}, {}, "", "id");
  b2.output("y");
  const std::string sym2 = b2.save("sym2.onnx");
  Session ss2(sym2, o);
  uint8_t dummy = 0;
  EXPECT_FAILS(ss2.run({{"x", Tensor::view(DType::UInt8, {int64_t{1} << 40, 0}, &dummy)}}), sym2,
               "exceeds the tensor size limit");
  EXPECT_EQ(ss2.run({{"x", Tensor::view(DType::UInt8, {0, 7}, &dummy)}}).at("y").shape(), (Shape{0, 7}));

  // Through the CLI's input reader: .npy and .pb files.
  const std::string npy_int = write_temp_file("int.npy", npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 4), }", std::string(16, '\0')));
  const std::string npy_shape = write_temp_file("shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", std::string(16, '\0')));
  EXPECT_FAILS(s.run({{"x", tools::read_tensor_file(npy_int)}}), model, "input 'x' must be float32, got int32");
  EXPECT_FAILS(s.run({{"x", tools::read_tensor_file(npy_shape)}}), model, "input 'x' must have shape [1,4]");

  const std::string pb_int = temp_dir() + "/int.pb";
  save_tensor_proto(Tensor(DType::Int64, {1, 4}), "x", pb_int);
  EXPECT_FAILS(s.run({{"x", tools::read_tensor_file(pb_int)}}), model, "must be float32, got int64");
  const std::string pb_ok = temp_dir() + "/ok.pb";
  save_tensor_proto(Tensor(DType::Float32, {1, 4}), "x", pb_ok);
  const std::string full = read_file(pb_ok);
  for (size_t n = 0; n + 1 < full.size(); ++n) {
    const std::string cut = write_temp_file("cut.pb", full.substr(0, n));
    try {
      Tensor t = tools::read_tensor_file(cut);
      (void)t;  // a cut at a field boundary may still be a (smaller) tensor
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefix " << n << ": non-quint exception " << e.what();
    }
  }
  onnx::TensorProto tp;
  tp.set_data_type(1);
  tp.add_dims(1);
  tp.add_dims(4);
  tp.set_raw_data(std::string(12, '\0'));
  const std::string pb_short = temp_dir() + "/short.pb";
  std::ofstream(pb_short, std::ios::binary) << tp.SerializeAsString();
  EXPECT_FAILS(tools::read_tensor_file(pb_short), pb_short, "raw_data has 12 bytes");
  tp.set_raw_data("");
  tp.set_dims(0, int64_t{1} << 40);
  const std::string pb_huge = temp_dir() + "/huge.pb";
  std::ofstream(pb_huge, std::ios::binary) << tp.SerializeAsString();
  EXPECT_FAILS(tools::read_tensor_file(pb_huge), pb_huge, "exceeds the limit");
  tp.clear_raw_data();
  tp.set_dims(0, 1);
  tp.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = tp.add_external_data();
  e->set_key("location");
  e->set_value("ok.pb");
  const std::string pb_ext = temp_dir() + "/ext.pb";
  std::ofstream(pb_ext, std::ios::binary) << tp.SerializeAsString();
  EXPECT_FAILS(tools::read_tensor_file(pb_ext), pb_ext, "external data", "not allowed");
  const std::string garbage = write_temp_file("garbage.pb", "\xff\xff\xff\xff\xff\xff\xff");
  EXPECT_FAILS(tools::read_tensor_file(garbage), garbage, "not a valid ONNX TensorProto");
  const std::string txt = write_temp_file("input.txt", "1 2 3 4");
  EXPECT_FAILS(tools::read_tensor_file(txt), txt, "must be .npy or .pb");

  // The tensor size limit applies to input files too: a .pb file far larger than the limit is
  // refused before it is read, a tensor within the file but above the limit after parsing.
  onnx::TensorProto big;
  big.set_data_type(2);  // uint8
  big.add_dims(3 << 20);
  big.set_raw_data(std::string(3 << 20, '\1'));
  const std::string pb_big = temp_dir() + "/big.pb";
  std::ofstream(pb_big, std::ios::binary) << big.SerializeAsString();
  EXPECT_FAILS(tools::read_tensor_file(pb_big, 1 << 20), pb_big, "more than the tensor size limit of 1048576");
  EXPECT_FAILS(tools::read_tensor_file(pb_big, (3 << 20) - 1), pb_big, "exceeds the limit of 3145727 bytes");
  EXPECT_EQ(tools::read_tensor_file(pb_big, 3 << 20).numel(), 3 << 20);
  const std::string npy16 = write_temp_file("limit16.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", std::string(16, '\0')));
  EXPECT_FAILS(tools::read_tensor_file(npy16, 15), npy16, "exceeds the size limit of 15 bytes");
  const std::string dir_pb = temp_dir() + "/folder.pb";
  fs::create_directories(dir_pb);
  EXPECT_FAILS(tools::read_tensor_file(dir_pb), dir_pb, "not a regular file");
}

// ---- Images ---------------------------------------------------------------------------------

// A 24-bit BMP of w x h pixels (rows padded to 4 bytes), optionally claiming other dims.
std::string bmp(int32_t w, int32_t h, int32_t claim_w = 0, int32_t claim_h = 0) {
  const int32_t row = (w * 3 + 3) / 4 * 4;
  const uint32_t data = static_cast<uint32_t>(row) * static_cast<uint32_t>(h);
  std::string b;
  auto u16 = [&](uint32_t v) { b += static_cast<char>(v & 0xff); b += static_cast<char>((v >> 8) & 0xff); };
  auto u32 = [&](uint32_t v) { u16(v & 0xffff); u16(v >> 16); };
  b += "BM";
  u32(54 + data);
  u32(0);
  u32(54);
  u32(40);
  u32(static_cast<uint32_t>(claim_w ? claim_w : w));
  u32(static_cast<uint32_t>(claim_h ? claim_h : h));
  u16(1);
  u16(24);
  u32(0);
  u32(data);
  u32(2835);
  u32(2835);
  u32(0);
  u32(0);
  b += std::string(data, '\x80');
  return b;
}

// A PNG signature and an IHDR chunk claiming w x h RGB pixels, then `rest`.
std::string png_header(uint32_t w, uint32_t h, const std::string& rest) {
  std::string b = "\x89PNG\r\n\x1a\n";
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b += static_cast<char>((v >> s) & 0xff);
  };
  be32(13);
  b += "IHDR";
  be32(w);
  be32(h);
  b += std::string("\x08\x02\x00\x00\x00", 5);
  be32(0);  // CRC (stb_image does not check it)
  return b + rest;
}

TEST(Malformed, Images) {
  using tools::load_image;
  const int64_t before = peak_rss_mib();
  const std::string empty = write_temp_file("empty.png", "");
  EXPECT_FAILS(load_image(empty), empty, "empty");
  const std::string text = write_temp_file("text.jpg", "not an image at all");
  EXPECT_FAILS(load_image(text), text, "not a JPEG, PNG or BMP");
  const std::string corrupt_png = write_temp_file("corrupt.png", png_header(8, 8, std::string(40, '\x55')));
  EXPECT_FAILS(load_image(corrupt_png), corrupt_png);
  const std::string corrupt_jpg = write_temp_file("corrupt.jpg", std::string("\xff\xd8\xff\xe0", 4) + std::string(64, '\x13'));
  EXPECT_FAILS(load_image(corrupt_jpg), corrupt_jpg);
  const std::string truncated_bmp = write_temp_file("truncated.bmp", bmp(16, 16).substr(0, 54 + 100));
  EXPECT_FAILS(load_image(truncated_bmp), truncated_bmp, "truncated BMP");
  const std::string zero = write_temp_file("zero.bmp", bmp(4, 4, 0, 0).replace(18, 4, std::string(4, '\0')));
  EXPECT_FAILS(load_image(zero), zero);
  // Huge claimed sizes are refused from the header, before anything is decoded.
  const std::string huge_png = write_temp_file("huge.png", png_header(1u << 20, 1u << 20, std::string(64, '\0')));
  EXPECT_FAILS(load_image(huge_png), huge_png);
  const std::string huge_bmp = write_temp_file("huge.bmp", bmp(2, 2, 100000, 100000));
  EXPECT_FAILS(load_image(huge_bmp), huge_bmp, "more than the limit");
  // The default limit is 2^26 pixels: 9000x9000 (81M pixels, ~480 MB to decode) is refused.
  const std::string bomb_bmp = write_temp_file("bomb.bmp", bmp(2, 2, 9000, 9000));
  EXPECT_FAILS(load_image(bomb_bmp), bomb_bmp, "9000x9000 = 81000000 pixels, more than the limit of 67108864");
  tools::ImageOptions small;
  small.max_pixels = 100;
  const std::string ok = write_temp_file("ok16.bmp", bmp(16, 16));
  EXPECT_FAILS(load_image(ok, small), ok, "more than the limit of 100");
  EXPECT_LT(peak_rss_mib() - before, 256) << "a huge image buffer was allocated";

  // A 1x1 image is valid: resized up and cropped as torchvision would.
  const std::string one = write_temp_file("one.bmp", bmp(1, 1));
  Tensor t = load_image(one);
  EXPECT_EQ(t.shape(), (Shape{1, 3, 224, 224}));
  for (float v : t.values<float>()) ASSERT_TRUE(std::isfinite(v));
}

// ---- The CLI --------------------------------------------------------------------------------

struct CliResult {
  int status;
  std::string out, err;
};

CliResult quint_cli(const std::string& args) {
  const std::string err_file = temp_dir() + "/cli_stderr.txt";
  CliResult r;
  r.status = run_command("(" + binary_dir() + "/quint " + args + " 2>" + err_file + ")", &r.out);
  r.err = read_file(err_file);
  return r;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  return names;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(binary_dir() + "/quint")) GTEST_SKIP() << "the quint CLI is not built";
  }
};

TEST_F(Cli, BadModelsExitNonZeroWithOneLineAndNoOutput) {
  const std::string out = temp_dir() + "/cli_out";
  fs::remove_all(out);
  const std::string garbage = write_temp_file("cli_garbage.onnx", "garbage, not protobuf \xff\xff\xff");
  const std::string unknown = [] {
    ModelBuilder b;
    b.input("x", DType::Float32, {1});
    b.node("FrobnicateLinear", {"x"}, {"y"}, {}, "", "frob");
    b.output("y");
    return b.save("cli_unknown.onnx");
  }();
  const std::string in = " --input x=" + temp_dir() + "/none.npy";
  for (const std::string& model : {garbage, unknown, temp_dir() + "/absent.onnx"}) {
    std::vector<std::string> commands{"run " + model + in + " --out " + out, "dump " + model + in + " --out " + out,
                                      "bench " + model + in};
    // `info` lists unsupported operators (on stdout, exit status 1) instead of failing on them.
    if (model != unknown) commands.push_back("info " + model);
    for (const std::string& args : commands) {
      const CliResult r = quint_cli(args);
      const std::string cmd = args;
      EXPECT_NE(r.status, 0) << cmd << " " << model;
      EXPECT_NE(r.status, -1) << cmd << " " << model << ": killed by a signal";
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << ": " << r.err;
      EXPECT_NE(r.err.find(model), std::string::npos) << cmd << ": " << r.err;
      EXPECT_NE(r.err.find("error:"), std::string::npos) << cmd << ": " << r.err;
    }
  }
  EXPECT_TRUE(files_in(out).empty());
  const CliResult info = quint_cli("info " + unknown);
  EXPECT_EQ(info.status, 1);
  EXPECT_NE(info.out.find("unsupported operator FrobnicateLinear"), std::string::npos) << info.out;
}

// A Gather index out of range in an input file: one line naming the file, the node and the index;
// exit status 1; no output written. The limits have CLI options.
TEST_F(Cli, RunTimeErrorsAndLimits) {
  ModelBuilder b;
  b.input("x", DType::Float32, {3, 2});
  b.input("i", DType::Int64, {2});
  b.node("Gather", {"x", "i"}, {"y"}, {}, "", "gather_rt");
  b.output("y");
  const std::string model = b.save("cli_gather.onnx");
  const std::string x = write_temp_file("cli_gx.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", std::string(24, '\0')));
  std::string bad_idx(16, '\0');
  bad_idx[8] = 9;  // indices [0, 9]
  const std::string i = write_temp_file("cli_gi.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", bad_idx));
  const std::string out = temp_dir() + "/cli_gather_out";
  fs::remove_all(out);
  for (const std::string cmd : {"run", "dump"}) {
    const CliResult r = quint_cli(cmd + " " + model + " --input x=" + x + " --input i=" + i + " --out " + out);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const char* part : {model.c_str(), "node 'gather_rt'", "index 9 (at flat position 1 of indices) is out of range [-3, 2]"})
      EXPECT_NE(r.err.find(part), std::string::npos) << cmd << ": " << r.err;
    EXPECT_TRUE(files_in(out).empty()) << cmd << " left files behind";
  }
  // --max-tensor-bytes: the model's tensors (x is 24 bytes) and the input files.
  CliResult r = quint_cli("run " + model + " --input x=" + x + " --input i=" + i + " --max-tensor-bytes 20");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("limit of 20 bytes"), std::string::npos) << r.err;
  r = quint_cli("info " + model + " --max-tensor-bytes 0");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("max-tensor-bytes"), std::string::npos) << r.err;
  // --max-pixels: checked from the image header before decoding.
  const std::string img = write_temp_file("cli_img.bmp", bmp(16, 16));
  ModelBuilder ib;
  ib.input("x", DType::Float32, {1, 3, 5, 5});
  ib.node("Relu", {"x"}, {"y"}, {}, "", "relu");
  ib.output("y");
  const std::string conv = ib.save("cli_relu_img.onnx");
  r = quint_cli("run " + conv + " " + img + " --max-pixels 255 --crop 5 --size 5");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("more than the limit of 255"), std::string::npos) << r.err;
  r = quint_cli("run " + conv + " " + img + " --max-pixels 256 --crop 5 --size 5");
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(Cli, BadInputsWriteNoOutputFiles) {
  const std::string model = add_model().save("cli_add.onnx");
  const std::string out = temp_dir() + "/cli_run_out";
  fs::remove_all(out);
  const std::string trunc = write_temp_file("cli_trunc.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", std::string(10, '\0')));
  const std::string wrong = write_temp_file("cli_wrong.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 4), }", std::string(32, '\0')));
  for (const std::string& in : {trunc, wrong}) {
    for (const std::string cmd : {"run", "dump"}) {
      CliResult r = quint_cli(cmd + " " + model + " --input x=" + in + " --out " + out);
      EXPECT_EQ(r.status, 1) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_TRUE(files_in(out).empty()) << cmd << " left files behind";
    }
  }
  // A good run writes complete files and no temporaries.
  const std::string good = write_temp_file("cli_good.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", std::string(16, '\0')));
  // Input names the model lacks, and inputs not given: the model file, the name, what it has.
  for (const std::string cmd : {"run", "dump", "bench"}) {
    const std::string out_opt = cmd == "bench" ? "" : " --out " + out;
    CliResult bad = quint_cli(cmd + " " + model + " --input nosuch=" + good + out_opt);
    EXPECT_EQ(bad.status, 1) << bad.err;
    EXPECT_NE(bad.err.find(model + ": --input nosuch=...: the model has no input 'nosuch' (its inputs: 'x')"), std::string::npos)
        << bad.err;
    if (cmd != "bench") {  // bench feeds pseudo-random inputs when none are given
      CliResult none = quint_cli(cmd + " " + model + out_opt);
      EXPECT_EQ(none.status, 1) << none.err;
      EXPECT_NE(none.err.find(model + ": no value for the model input 'x'"), std::string::npos) << none.err;
    }
    EXPECT_TRUE(files_in(out).empty()) << cmd << " left files behind";
  }
  CliResult r = quint_cli("run " + model + " --input x=" + good + " --out " + out);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(files_in(out), std::vector<std::string>{"y.npy"});
  Tensor y = tools::read_npy(out + "/y.npy");
  EXPECT_EQ(y.data<float>()[2], 3.0f);
}

TEST_F(Cli, DumpWritesManifestLastAndAtomically) {
  ModelBuilder b;
  b.input("x", DType::Float32, {1, 4});
  b.node("Relu", {"x"}, {"r"}, {}, "", "relu");
  b.node("Neg", {"r"}, {"y"}, {}, "", "neg");
  b.output("y");
  const std::string model = b.save("cli_dump.onnx");
  const std::string good = write_temp_file("cli_dump_in.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", std::string(16, '\0')));
  const std::string out = temp_dir() + "/cli_dump_out";
  fs::remove_all(out);
  CliResult ok = quint_cli("dump " + model + " --input x=" + good + " --out " + out);
  ASSERT_EQ(ok.status, 0) << ok.err;
  auto names = files_in(out);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"manifest.json", "r.npy", "x.npy", "y.npy"}));

  // A dump that fails half-way (the last tensor's file cannot be written) leaves no manifest --
  // not even the previous one -- and no temporary files.
  fs::remove(out + "/y.npy");
  fs::create_directories(out + "/y.npy/blocker");
  CliResult bad = quint_cli("dump " + model + " --input x=" + good + " --out " + out);
  EXPECT_EQ(bad.status, 1) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_FALSE(fs::exists(out + "/manifest.json"));
  for (const std::string& n : files_in(out)) EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
}

}  // namespace
}  // namespace quint::test
