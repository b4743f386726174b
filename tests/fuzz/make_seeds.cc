// Writes the seed corpus of the fuzz targets into a folder of the build (nothing of it is checked
// in):  fuzz_seeds OUT [TESTDATA]
//   OUT/load, OUT/run: small models made here with tests/model_builder (one per operator family,
//     QDQ units, shape-op chains), plus, with TESTDATA (../shared/testdata), every ONNX node
//     test's model.onnx and prefixes / byte-flipped copies of the MobileNetV2 model;
//   OUT/npy: .npy files of every dtype and a few shapes, plus the node tests' .pb tensors.
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "npy.h"
#include "quint/session.h"

namespace fs = std::filesystem;
using namespace quint;
using quint::test::ModelBuilder;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Tensor ints(std::vector<int64_t> v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); }
Attributes attr(const std::string& k, AttributeValue v) {
  Attributes a;
  a.set(k, std::move(v));
  return a;
}
Tensor filled_i8(Shape s, int seed) {
  Tensor t(DType::Int8, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>((i * 37 + seed) % 255 - 127);
  return t;
}
Tensor filled_f32(Shape s, float scale) {
  Tensor t(DType::Float32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>((i * 13) % 17 - 8) * scale;
  return t;
}

// Q -> QLinearConv -> DQ, with attributes.
ModelBuilder qconv(Shape x, Shape w, const Attributes& a, bool per_channel) {
  ModelBuilder b;
  b.input("x", DType::Float32, x);
  b.initializer("xs", Tensor::scalar<float>(0.1f)).initializer("xz", Tensor::scalar<uint8_t>(128));
  b.initializer("w", filled_i8(w, 3));
  if (per_channel) {
    Tensor s(DType::Float32, {w[0]});
    for (int64_t i = 0; i < w[0]; ++i) s.data<float>()[i] = 0.01f * static_cast<float>(i + 1);
    b.initializer("ws", s).initializer("wz", Tensor(DType::Int8, {w[0]}));
  } else {
    b.initializer("ws", Tensor::scalar<float>(0.02f)).initializer("wz", Tensor::scalar<int8_t>(0));
  }
  b.initializer("ys", Tensor::scalar<float>(0.2f)).initializer("yz", Tensor::scalar<uint8_t>(120));
  Tensor bias(DType::Int32, {w[0]});
  b.initializer("b", bias);
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  b.node("QLinearConv", {"xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"}, {"yq"}, a);
  b.node("DequantizeLinear", {"yq", "ys", "yz"}, {"y"});
  b.output("y");
  return b;
}

// A QDQ unit as torch.onnx.export writes it: DQ(x), DQ(w) -> op -> Q -> DQ.
ModelBuilder qdq_unit(const std::string& op, Shape x, Shape w, const Attributes& a) {
  ModelBuilder b;
  b.input("x", DType::Float32, x);
  b.initializer("s", Tensor::scalar<float>(0.05f)).initializer("z", Tensor::scalar<uint8_t>(128));
  b.initializer("ws", Tensor::scalar<float>(0.01f)).initializer("wz", Tensor::scalar<int8_t>(0));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "s", "z"}, {"xd"});
  std::vector<std::string> ins{"xd"};
  if (!w.empty()) {
    b.initializer("w", filled_i8(w, 5));
    b.node("DequantizeLinear", {"w", "ws", "wz"}, {"wd"});
    ins.push_back("wd");
  }
  b.node(op, ins, {"o"}, a);
  b.node("QuantizeLinear", {"o", "s", "z"}, {"oq"});
  b.node("DequantizeLinear", {"oq", "s", "z"}, {"y"});
  b.output("y");
  return b;
}

ModelBuilder unary(const std::string& op, DType t, Shape x, const Attributes& a = {}) {
  ModelBuilder b;
  b.input("x", t, x);
  b.node(op, {"x"}, {"y"}, a);
  b.output("y");
  return b;
}

ModelBuilder with_consts(const std::string& op, DType t, Shape x, std::vector<std::pair<std::string, Tensor>> consts,
                         const Attributes& a = {}, int outputs = 1, int opset = 13) {
  ModelBuilder b;
  b.opset("", opset);
  b.input("x", t, x);
  std::vector<std::string> ins{"x"};
  for (auto& [name, value] : consts) {
    if (name.empty()) {
      ins.push_back("");
      continue;
    }
    b.initializer(name, value);
    ins.push_back(name);
  }
  std::vector<std::string> outs;
  for (int i = 0; i < outputs; ++i) outs.push_back("y" + std::to_string(i));
  b.node(op, ins, outs, a);
  for (const auto& o : outs) b.output(o);
  return b;
}

std::vector<std::pair<std::string, ModelBuilder>> models() {
  std::vector<std::pair<std::string, ModelBuilder>> m;
  Attributes pad1 = attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  m.emplace_back("qconv3x3", qconv({1, 4, 6, 6}, {8, 4, 3, 3}, pad1, false));
  Attributes dw = pad1;
  dw.set("group", int64_t{4});
  dw.set("strides", std::vector<int64_t>{2, 2});
  m.emplace_back("qconv_dw", qconv({1, 4, 7, 7}, {4, 1, 3, 3}, dw, true));
  m.emplace_back("qconv1x1", qconv({1, 8, 4, 4}, {16, 8, 1, 1}, {}, true));
  m.emplace_back("qconv1d", qconv({1, 2, 9}, {3, 2, 3}, attr("dilations", std::vector<int64_t>{2}), false));
  m.emplace_back("qconv_same", qconv({1, 2, 5, 5}, {2, 2, 2, 2}, attr("auto_pad", std::string("SAME_UPPER")), false));
  m.emplace_back("qdq_conv", qdq_unit("Conv", {1, 3, 5, 5}, {4, 3, 3, 3}, pad1));
  m.emplace_back("qdq_matmul", qdq_unit("MatMul", {2, 6}, {6, 3}, {}));
  m.emplace_back("qdq_maxpool", qdq_unit("MaxPool", {1, 2, 4, 4}, {}, attr("kernel_shape", std::vector<int64_t>{2, 2})));
  m.emplace_back("qdq_avgpool", qdq_unit("AveragePool", {1, 2, 4, 4}, {}, attr("kernel_shape", std::vector<int64_t>{3, 3})));
  m.emplace_back("qdq_gap", qdq_unit("GlobalAveragePool", {1, 3, 4, 4}, {}, {}));
  m.emplace_back("qdq_relu", qdq_unit("Relu", {1, 3, 4, 4}, {}, {}));
  m.emplace_back("qdq_reshape_like", qdq_unit("Flatten", {1, 3, 2, 2}, {}, {}));
  {
    ModelBuilder b;
    b.opset("com.microsoft", 1);
    b.input("a", DType::UInt8, {1, 3, 2, 2});
    b.input("c", DType::UInt8, {1, 3, 2, 2});
    b.initializer("s", Tensor::scalar<float>(0.1f)).initializer("z", Tensor::scalar<uint8_t>(128));
    b.initializer("s2", Tensor::scalar<float>(0.3f)).initializer("z2", Tensor::scalar<uint8_t>(3));
    b.node("QLinearAdd", {"a", "s", "z", "c", "s2", "z2", "s", "z"}, {"add"}, {}, "com.microsoft");
    b.node("QLinearMul", {"add", "s", "z", "c", "s2", "z2", "s2", "z2"}, {"mul"}, {}, "com.microsoft");
    b.node("QLinearConcat", {"s", "z", "add", "s", "z", "mul", "s2", "z2"}, {"cat"}, attr("axis", int64_t{1}), "com.microsoft");
    b.node("QLinearGlobalAveragePool", {"cat", "s", "z", "s2", "z2"}, {"g"}, {}, "com.microsoft");
    b.node("QLinearAveragePool", {"cat", "s", "z", "s2", "z2"}, {"p"}, attr("kernel_shape", std::vector<int64_t>{2, 2}),
           "com.microsoft");
    b.output("g").output("p");
    m.emplace_back("com_microsoft", b);
  }
  {
    ModelBuilder b;
    b.opset("com.microsoft", 1);
    b.input("a", DType::Int8, {1, 3, 2, 2});
    b.initializer("s", Tensor::scalar<float>(0.1f)).initializer("z", Tensor::scalar<int8_t>(-3));
    b.initializer("s2", Tensor::scalar<float>(0.004f)).initializer("z2", Tensor::scalar<int8_t>(-128));
    b.node("QLinearLeakyRelu", {"a", "s", "z", "s", "z"}, {"l"}, attr("alpha", 0.1f), "com.microsoft");
    b.node("QLinearSigmoid", {"l", "s", "z", "s2", "z2"}, {"y"}, {}, "com.microsoft");
    b.output("y");
    m.emplace_back("com_microsoft_lookup", b);
  }
  m.emplace_back("qdq_leaky_relu", qdq_unit("LeakyRelu", {1, 3, 4, 4}, {}, attr("alpha", 0.2f)));
  m.emplace_back("lrn", unary("LRN", DType::Float32, {1, 5, 3, 3}, [] {
    Attributes a = attr("size", int64_t{3});
    a.set("alpha", 0.01f);
    return a;
  }()));
  m.emplace_back("dropout", unary("Dropout", DType::Float32, {2, 3}, {}));
  m.emplace_back("argmax", unary("ArgMax", DType::UInt8, {2, 3, 4}, attr("axis", int64_t{1})));
  {
    ModelBuilder b;
    b.input("a", DType::UInt8, {2, 4});
    b.initializer("as", Tensor::scalar<float>(0.1f)).initializer("az", Tensor::scalar<uint8_t>(1));
    b.initializer("b", filled_i8({4, 3}, 1)).initializer("bs", Tensor::scalar<float>(0.2f));
    b.initializer("bz", Tensor::scalar<int8_t>(0)).initializer("ys", Tensor::scalar<float>(0.5f));
    b.initializer("yz", Tensor::scalar<uint8_t>(7));
    b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
    b.node("MatMulInteger", {"a", "b", "az", "bz"}, {"yi"});
    b.output("y").output("yi");
    m.emplace_back("qmatmul", b);
  }
  {
    ModelBuilder b;
    b.input("x", DType::Float32, {2, 5});
    b.node("DynamicQuantizeLinear", {"x"}, {"q", "s", "z"});
    b.node("DequantizeLinear", {"q", "s", "z"}, {"y"});
    b.output("y");
    m.emplace_back("dynamic_quant", b);
  }
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Ceil", "Floor", "Round",
                         "Reciprocal", "Softmax", "LogSoftmax", "Identity", "GlobalAveragePool", "GlobalMaxPool"})
    m.emplace_back(std::string("unary_") + op, unary(op, DType::Float32, {1, 2, 3, 3}));
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "And", "Where"}) {
    ModelBuilder b;
    const bool logic = std::string(op) == "And";
    const DType t = logic ? DType::Bool : DType::Float32;
    b.input("a", t, {2, 1, 3});
    b.input("c", t, {4, 1});
    if (std::string(op) == "Where") {
      b.input("cond", DType::Bool, {3});
      b.node(op, {"cond", "a", "c"}, {"y"});
    } else {
      b.node(op, {"a", "c"}, {"y"});
    }
    b.output("y");
    m.emplace_back(std::string("binary_") + op, b);
  }
  m.emplace_back("int_div", with_consts("Div", DType::Int32, {4}, {{"d", Tensor::from_vector<int32_t>({4}, {1, -1, 0, 7})}}));
  m.emplace_back("int_mod_like", with_consts("Pow", DType::Int64, {3}, {{"e", Tensor::from_vector<int64_t>({3}, {0, 62, -1})}}));
  m.emplace_back("clip", with_consts("Clip", DType::Float32, {5}, {{"lo", Tensor::scalar<float>(-1)}, {"hi", Tensor::scalar<float>(1)}}));
  m.emplace_back("leaky", unary("LeakyRelu", DType::Float32, {4}, attr("alpha", 0.2f)));
  m.emplace_back("cast_str", unary("Cast", DType::Float32, {3}, attr("to", int64_t{8})));
  m.emplace_back("cast_u8", unary("Cast", DType::Float64, {3}, attr("to", int64_t{2})));
  m.emplace_back("cast_f16", unary("Cast", DType::Float32, {3}, attr("to", int64_t{10})));
  m.emplace_back("maxpool", unary("MaxPool", DType::Float32, {1, 1, 5, 5}, [] {
    Attributes a = attr("kernel_shape", std::vector<int64_t>{3, 3});
    a.set("ceil_mode", int64_t{1});
    a.set("strides", std::vector<int64_t>{2, 2});
    return a;
  }()));
  m.emplace_back("avgpool_pads", unary("AveragePool", DType::Float32, {1, 1, 4, 4}, [] {
    Attributes a = attr("kernel_shape", std::vector<int64_t>{2, 2});
    a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    a.set("count_include_pad", int64_t{1});
    return a;
  }()));
  m.emplace_back("conv", with_consts("Conv", DType::Float32, {1, 2, 5, 5}, {{"w", filled_f32({4, 1, 3, 3}, 0.1f)}, {"b", filled_f32({4}, 1)}},
                                     [] { Attributes a = attr("group", int64_t{2}); a.set("pads", std::vector<int64_t>{1, 0, 1, 0}); return a; }()));
  m.emplace_back("convinteger", with_consts("ConvInteger", DType::UInt8, {1, 1, 4, 4}, {{"w", Tensor(DType::UInt8, {1, 1, 2, 2})}}));
  m.emplace_back("gemm", with_consts("Gemm", DType::Float32, {2, 3}, {{"w", filled_f32({4, 3}, 0.5f)}, {"c", filled_f32({4}, 1)}},
                                     [] { Attributes a = attr("transB", int64_t{1}); a.set("alpha", 0.5f); return a; }()));
  m.emplace_back("matmul_bcast", with_consts("MatMul", DType::Float32, {2, 1, 2, 3}, {{"w", filled_f32({3, 3, 2}, 0.5f)}}));
  m.emplace_back("batchnorm", with_consts("BatchNormalization", DType::Float32, {1, 2, 2, 2},
                                          {{"sc", filled_f32({2}, 1)}, {"bi", filled_f32({2}, 1)}, {"me", filled_f32({2}, 1)}, {"va", Tensor::from_vector<float>({2}, {1, 2})}}));
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceLogSumExp", "ReduceSumSquare"})
    m.emplace_back(std::string("reduce_") + op, unary(op, DType::Float32, {2, 3, 4}, attr("axes", std::vector<int64_t>{1})));
  m.emplace_back("reduce_sum_18", with_consts("ReduceSum", DType::Float32, {2, 3}, {{"axes", ints({-1})}}, attr("keepdims", int64_t{0})));
  // Shape and data movement.
  m.emplace_back("reshape", with_consts("Reshape", DType::Float32, {2, 3, 4}, {{"s", ints({0, -1})}}));
  m.emplace_back("reshape_zero", with_consts("Reshape", DType::Float32, {2, 0, 4}, {{"s", ints({0, 4, -1})}}, attr("allowzero", int64_t{0}), 1, 14));
  m.emplace_back("flatten", unary("Flatten", DType::Float32, {2, 3, 4}, attr("axis", int64_t{2})));
  m.emplace_back("squeeze", with_consts("Squeeze", DType::Float32, {1, 3, 1}, {{"a", ints({0, -1})}}));
  m.emplace_back("unsqueeze", with_consts("Unsqueeze", DType::Float32, {3}, {{"a", ints({0, 2})}}));
  m.emplace_back("transpose", unary("Transpose", DType::Float32, {2, 3, 4}, attr("perm", std::vector<int64_t>{2, 0, 1})));
  m.emplace_back("slice", with_consts("Slice", DType::Float32, {6, 4}, {{"st", ints({5, 0})}, {"en", ints({-7, 4})}, {"ax", ints({0, 1})}, {"sp", ints({-2, 3})}}));
  m.emplace_back("gather", with_consts("Gather", DType::Float32, {3, 4}, {{"i", Tensor::from_vector<int32_t>({2, 2}, {0, -1, 2, 1})}}, attr("axis", int64_t{1})));
  m.emplace_back("expand", with_consts("Expand", DType::Float32, {3, 1}, {{"s", ints({2, 1, 4})}}));
  m.emplace_back("tile", with_consts("Tile", DType::Float32, {2, 3}, {{"r", ints({2, 2})}}));
  m.emplace_back("pad_reflect", with_consts("Pad", DType::Float32, {3, 4}, {{"p", ints({1, 2, 2, -1})}}, attr("mode", std::string("reflect"))));
  m.emplace_back("pad_edge", with_consts("Pad", DType::Float32, {3, 4}, {{"p", ints({0, 3, 0, 3})}}, attr("mode", std::string("edge"))));
  m.emplace_back("pad_const", with_consts("Pad", DType::Float32, {3, 4}, {{"p", ints({1, 1})}, {"v", Tensor::scalar<float>(2)}, {"ax", ints({1})}}, {}, 1, 18));
  m.emplace_back("pad_wrap", with_consts("Pad", DType::Float32, {3, 4}, {{"p", ints({1, 5, 0, 2})}}, attr("mode", std::string("wrap")), 1, 19));
  m.emplace_back("split", with_consts("Split", DType::Float32, {6, 2}, {{"s", ints({1, 2, 3})}}, {}, 3));
  m.emplace_back("split18", with_consts("Split", DType::Float32, {7}, {}, attr("num_outputs", int64_t{3}), 3, 18));
  m.emplace_back("concat", with_consts("Concat", DType::Float32, {2, 3}, {{"c", filled_f32({2, 1}, 1)}}, attr("axis", int64_t{-1})));
  m.emplace_back("shape_size", [] {
    ModelBuilder b;
    b.opset("", 15);
    b.input("x", DType::Float32, {2, 3, 4});
    b.node("Shape", {"x"}, {"s"}, attr("start", int64_t{1}));
    b.node("ConstantOfShape", {"s"}, {"c"}, attr("value", Tensor::scalar<int32_t>(7)));
    b.node("Size", {"x"}, {"n"});
    b.node("Cast", {"n"}, {"y"}, attr("to", int64_t{1}));
    b.output("c").output("y");
    return b;
  }());
  m.emplace_back("constant_chain", [] {
    ModelBuilder b;
    b.input("x", DType::Float32, {2, 2});
    b.node("Constant", {}, {"k"}, attr("value", filled_f32({2, 2}, 0.5f)));
    b.node("Constant", {}, {"k2"}, attr("value_floats", std::vector<float>{1, 2}));
    b.node("Mul", {"k", "k2"}, {"kk"});
    b.node("Add", {"x", "kk"}, {"y"});
    b.output("y");
    return b;
  }());
  m.emplace_back("symbolic_batch", [] {
    ModelBuilder b;
    b.input("x", DType::Float32, {-1, 3});
    b.initializer("w", filled_f32({3, 2}, 1));
    b.node("MatMul", {"x", "w"}, {"y"});
    b.output("y", DType::Float32, {-1, 2}, true);
    return b;
  }());
  m.emplace_back("strings", unary("Identity", DType::String, {2}));
  return m;
}

void npy_seeds(const fs::path& dir) {
  int i = 0;
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::UInt8, DType::Int8, DType::UInt16,
                  DType::Int16, DType::Int32, DType::UInt32, DType::Int64, DType::UInt64, DType::Bool})
    for (const Shape& s : {Shape{}, Shape{3}, Shape{2, 0, 3}, Shape{1, 2, 2, 2}}) {
      Tensor x(t, s);
      for (size_t k = 0; k < x.nbytes(); ++k) static_cast<uint8_t*>(x.raw())[k] = static_cast<uint8_t>(k * 7 + 1);
      if (t == DType::Bool)
        for (int64_t k = 0; k < x.numel(); ++k) static_cast<uint8_t*>(x.raw())[k] &= 1;
      tools::write_npy(x, (dir / ("seed" + std::to_string(i++) + ".npy")).string());
    }
  save_tensor_proto(Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4}), "t", (dir / "seed.pb").string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fuzz_seeds OUT [TESTDATA]\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path load = out / "load", run = out / "run", npy = out / "npy";
  for (const auto& d : {load, run, npy}) fs::create_directories(d);
  size_t n = 0;
  for (auto& [name, b] : models()) {
    const std::string bytes = b.bytes();
    write(load / (name + ".onnx"), bytes);
    write(run / (name + ".onnx"), bytes);
    ++n;
  }
  npy_seeds(npy);
  if (argc > 2 && fs::is_directory(argv[2])) {
    const fs::path td = argv[2];
    for (const auto& e : fs::directory_iterator(td / "onnx-node-tests")) {
      const fs::path model = e.path() / "model.onnx";
      if (!fs::exists(model)) continue;
      const std::string bytes = read(model);
      write(load / ("node_" + e.path().filename().string() + ".onnx"), bytes);
      write(run / ("node_" + e.path().filename().string() + ".onnx"), bytes);
      ++n;
      int k = 0;
      for (const auto& f : fs::directory_iterator(e.path() / "test_data_set_0"))
        if (f.path().extension() == ".pb" && k++ < 2)
          write(npy / (e.path().filename().string() + "_" + f.path().filename().string()), read(f.path()));
    }
    const fs::path mnv2 = td / "models" / "mobilenetv2-12-int8.onnx";
    if (fs::exists(mnv2)) {
      const std::string bytes = read(mnv2);
      std::mt19937 rng(1);
      for (size_t len : {size_t{512}, size_t{4096}, size_t{16384}, size_t{65536}}) {
        write(load / ("mnv2_prefix_" + std::to_string(len) + ".onnx"), bytes.substr(0, len));
        std::string flipped = bytes.substr(0, len);
        for (int k = 0; k < 8; ++k) flipped[rng() % flipped.size()] = static_cast<char>(rng());
        write(load / ("mnv2_flipped_" + std::to_string(len) + ".onnx"), flipped);
      }
    }
  }
  std::cout << "fuzz_seeds: " << n << " models in " << load << " and " << run << ", tensors in " << npy << "\n";
  return 0;
}
