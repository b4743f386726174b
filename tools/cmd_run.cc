#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "batch.h"
#include "cli.h"
#include "commands.h"
#include "npy.h"

namespace quint::tools {

namespace {

// Prints the top-k entries of each row of a [N, classes] (or [classes]) float output, with the
// softmax probability next to the raw score.
void print_top(const std::string& name, const Tensor& t, int k, const std::vector<std::string>& labels) {
  if (t.dtype() != DType::Float32 || t.rank() < 1 || t.numel() == 0) return;
  const int64_t classes = t.shape().back();
  const int64_t rows = t.numel() / classes;
  const float* d = t.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = d + r * classes;
    std::vector<int64_t> idx(static_cast<size_t>(classes));
    std::iota(idx.begin(), idx.end(), 0);
    int64_t kk = std::min<int64_t>(k, classes);
    std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    double mx = *std::max_element(row, row + classes), sum = 0;
    for (int64_t i = 0; i < classes; ++i) sum += std::exp(static_cast<double>(row[i]) - mx);
    std::printf("%s%s top-%lld:\n", name.c_str(), rows > 1 ? (" [" + std::to_string(r) + "]").c_str() : "",
                static_cast<long long>(kk));
    for (int64_t i = 0; i < kk; ++i) {
      int64_t c = idx[static_cast<size_t>(i)];
      double p = std::exp(static_cast<double>(row[c]) - mx) / sum;
      std::printf("  %5lld  score %10.5f  prob %7.4f  %s\n", static_cast<long long>(c), row[c], p,
                  c < static_cast<int64_t>(labels.size()) ? labels[static_cast<size_t>(c)].c_str() : "");
    }
  }
}

}  // namespace

int cmd_run(int argc, char** argv) {
  OptionSpec spec = session_option_spec();
  spec.merge(image_option_spec());
  spec.insert({{"input", true}, {"out", true}, {"top", true}, {"labels", true}});
  // Batch runs (tools/batch.h): many images or a directory, reports as CSV/JSON.
  spec.insert({{"csv", true}, {"json", true}, {"workers", true}, {"decoders", true}});
  Args a = parse_args(argc, argv, 2, spec);
  if (!a.positional.empty() && is_batch_run(a)) return run_batch(a);
  if (a.has("workers") || a.has("decoders")) fail("--workers and --decoders apply to batch runs (several images)");
  if (a.positional.empty() || a.positional.size() > 2)
    fail("usage: quint run MODEL [IMAGE | DIR_OR_IMAGES...] [--input [NAME=]FILE]... [--out DIR] [--top K] "
         "[--labels FILE] [--csv F] [--json F]");
  const int top = static_cast<int>(a.get_int("top", 5, 0, 100000));
  std::vector<std::string> labels;
  if (auto l = a.get("labels")) labels = read_labels(*l);
  Session s(a.positional[0], session_options(a));
  std::optional<std::string> image;
  if (a.positional.size() == 2) image = a.positional[1];
  auto inputs = gather_inputs(s, image, a);
  auto outputs = s.run(inputs);
  if (auto out = a.get("out")) {
    make_dirs(*out);
    for (const auto& [name, t] : outputs) write_npy(t, *out + "/" + sanitize_name(name) + ".npy");
  }
  for (const IoInfo& o : s.outputs()) {
    const Tensor& t = outputs.at(o.name);
    std::printf("output '%s': %s%s\n", o.name.c_str(), dtype_name(t.dtype()), shape_str(t.shape()).c_str());
    // A float [N, classes] output with enough classes is treated as classification scores.
    if (top > 0 && t.dtype() == DType::Float32 && t.rank() >= 1 && t.shape().back() >= 2)
      print_top(o.name, t, top, labels);
  }
  return 0;
}

}  // namespace quint::tools
