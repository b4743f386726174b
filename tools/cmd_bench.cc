#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <map>
#include <string>

#include "cli.h"
#include "commands.h"
#include "json.h"

namespace quint::tools {

namespace {

// Peak resident set size of this process in KiB (VmHWM), or -1.
int64_t peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// Deterministic pseudo-random inputs for models fed without files.
Tensor synthetic_input(const IoInfo& in, const std::map<std::string, int64_t>& dims) {
  Shape s;
  for (size_t i = 0; i < in.dims.size(); ++i) {
    if (in.dims[i] >= 0) {
      s.push_back(in.dims[i]);
    } else {
      auto it = dims.find(in.dim_params[i]);
      s.push_back(it == dims.end() ? 1 : it->second);
    }
  }
  Tensor t(in.dtype, s);
  std::mt19937 rng(42);
  if (in.dtype == DType::Float32) {
    std::normal_distribution<float> d(0.f, 1.f);
    for (float& v : std::span<float>(t.data<float>(), static_cast<size_t>(t.numel()))) v = d(rng);
  } else if (in.dtype != DType::String) {
    auto* p = static_cast<uint8_t*>(t.raw());
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  }
  return t;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  OptionSpec spec = session_option_spec();
  spec.merge(image_option_spec());
  spec.insert({{"input", true}, {"runs", true}, {"warmup", true}, {"json", false}, {"profile", false}});
  Args a = parse_args(argc, argv, 2, spec);
  if (a.positional.empty() || a.positional.size() > 2)
    fail("usage: quint bench MODEL [IMAGE | --input [NAME=]FILE...] [--threads N] [--runs R] [--warmup W] [--isa X] [--json] [--profile]");
  const int runs = static_cast<int>(a.get_int("runs", 20, 1, 1000000));
  const int warmup = static_cast<int>(a.get_int("warmup", 3, 0, 1000000));
  SessionOptions so = session_options(a);

  auto t0 = clock::now();
  Session s(a.positional[0], so);
  const double load_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();

  std::map<std::string, Tensor> inputs;
  if (a.positional.size() == 2 || a.has("input")) {
    std::optional<std::string> image;
    if (a.positional.size() == 2) image = a.positional[1];
    inputs = gather_inputs(s, image, a);
  } else {
    for (const IoInfo& in : s.inputs()) inputs[in.name] = synthetic_input(in, so.dim_values);
  }
  for (int i = 0; i < warmup; ++i) s.run(inputs);
  std::vector<double> ms;
  std::vector<StepTime> steps;
  RunOptions ro;
  if (a.has("profile")) ro.profile = &steps;
  for (int i = 0; i < runs; ++i) {
    auto r0 = clock::now();
    s.run(inputs, ro);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - r0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  const int64_t rss = peak_rss_kib();
  if (a.has("json")) {
    Json j = Json::object();
    j.set("model", a.positional[0]);
    j.set("threads", so.threads);
    j.set("isa", so.isa);
    j.set("runs", runs);
    j.set("load_ms", load_ms);
    j.set("median_ms", median);
    j.set("min_ms", sorted.front());
    j.set("max_ms", sorted.back());
    j.set("peak_rss_mib", rss < 0 ? Json() : Json(static_cast<double>(rss) / 1024.0));
    if (!steps.empty()) {
      // --profile: mean time per run of every step, in execution order.
      Json profile = Json::array();
      const size_t per_run = steps.size() / static_cast<size_t>(runs);
      for (size_t i = 0; i < per_run; ++i) {
        double sum = 0;
        for (int r = 0; r < runs; ++r) sum += steps[static_cast<size_t>(r) * per_run + i].ms;
        Json st = Json::object();
        st.set("node", steps[i].node);
        st.set("op_type", steps[i].op_type);
        st.set("ms", sum / runs);
        if (steps[i].macs > 0) {
          st.set("macs", static_cast<double>(steps[i].macs));
          st.set("gmacs_per_s", sum > 0 ? static_cast<double>(steps[i].macs) * runs / (sum * 1e6) : 0.0);
        }
        profile.push(std::move(st));
      }
      j.set("profile", std::move(profile));
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  } else {
    std::printf("model      %s\n", a.positional[0].c_str());
    std::printf("threads    %d, isa %s, %d runs after %d warm-up\n", so.threads, so.isa.c_str(), runs, warmup);
    std::printf("load       %.1f ms\n", load_ms);
    std::printf("latency    median %.3f ms, min %.3f ms, max %.3f ms\n", median, sorted.front(), sorted.back());
    if (rss >= 0) std::printf("peak RSS   %.1f MiB\n", static_cast<double>(rss) / 1024.0);
  }
  if (!steps.empty()) {
    // Mean time per run of each operator type, and the ten slowest nodes.
    std::map<std::string, double> by_op;
    struct NodeTime {
      std::string op_type;
      double ms = 0;
      int64_t macs = 0;
    };
    std::map<std::string, NodeTime> by_node;
    double total = 0;
    for (const StepTime& st : steps) {
      by_op[st.op_type] += st.ms / runs;
      NodeTime& n = by_node[st.node];
      n.op_type = st.op_type;
      n.ms += st.ms / runs;
      n.macs = st.macs;
      total += st.ms / runs;
    }
    std::vector<std::pair<double, std::string>> ops, nodes;
    for (const auto& [k, v] : by_op) ops.emplace_back(v, k);
    for (const auto& [k, v] : by_node) {
      std::string label = k + " (" + v.op_type + ")";
      // Throughput of nodes that multiply (a step runs once per run: macs per ms / 1e6 = GMAC/s).
      if (v.macs > 0 && v.ms > 0) {
        char rate[48];
        std::snprintf(rate, sizeof rate, "  %.0f GMAC/s", static_cast<double>(v.macs) / (v.ms * 1e6));
        label += rate;
      }
      nodes.emplace_back(v.ms, std::move(label));
    }
    std::sort(ops.rbegin(), ops.rend());
    std::sort(nodes.rbegin(), nodes.rend());
    std::printf("profile (mean per run, %.3f ms in steps):\n", total);
    for (const auto& [v, k] : ops) std::printf("  %8.3f ms %5.1f%%  %s\n", v, 100 * v / total, k.c_str());
    std::printf("slowest nodes:\n");
    for (size_t i = 0; i < nodes.size() && i < 10; ++i)
      std::printf("  %8.3f ms  %s\n", nodes[i].first, nodes[i].second.c_str());
  }
  return 0;
}

}  // namespace quint::tools
