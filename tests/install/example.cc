// Runs a model with quint's C++ API: every input filled with a fixed pattern, every output printed
// (name, dtype, shape, then one value per line).
#include <quint/session.h>

#include <cstdio>
#include <map>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: example MODEL.onnx\n");
    return 2;
  }
  try {
    quint::SessionOptions options;
    options.threads = 2;  // threads of one run; Session::run may also be called from many threads
    quint::Session session(argv[1], options);
    std::map<std::string, quint::Tensor> inputs;
    for (const quint::IoInfo& in : session.inputs()) {
      quint::Shape shape;
      for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);  // symbolic dims: 1
      quint::Tensor t(in.dtype, shape);                         // zero-filled
      if (t.dtype() == quint::DType::Float32) {
        float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(i % 23) / 11.0f - 1.0f;
      }
      inputs[in.name] = t;
    }
    for (const auto& [name, y] : session.run(inputs)) {
      std::printf("%s %s%s\n", name.c_str(), quint::dtype_name(y.dtype()), quint::shape_str(y.shape()).c_str());
      for (int64_t i = 0; i < y.numel(); ++i) std::printf("%.9g\n", y.as_double(i));
    }
  } catch (const quint::Error& e) {  // names the file, node and reason
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
