#include <cstdio>

#include "cli.h"
#include "commands.h"

namespace quint::tools {

namespace {
void print_io(const char* what, const std::vector<IoInfo>& v) {
  for (const IoInfo& i : v) {
    std::string dims = "[";
    for (size_t k = 0; k < i.dims.size(); ++k) {
      if (k) dims += ",";
      dims += i.dims[k] >= 0 ? std::to_string(i.dims[k]) : (i.dim_params[k].empty() ? "?" : i.dim_params[k]);
    }
    std::printf("  %s %-24s %s%s]\n", what, i.name.c_str(), dtype_name(i.dtype), dims.c_str());
  }
}
}  // namespace

int cmd_info(int argc, char** argv) {
  Args a = parse_args(argc, argv, 2, session_option_spec());
  if (a.positional.size() != 1) fail("usage: quint info MODEL");
  ModelSummary s = Session::summarize(a.positional[0], session_options(a));
  std::printf("model      %s\n", s.path.c_str());
  std::printf("producer   %s (IR version %lld)%s%s\n", s.producer.empty() ? "?" : s.producer.c_str(),
              static_cast<long long>(s.ir_version), s.graph_name.empty() ? "" : ", graph ",
              s.graph_name.c_str());
  std::printf("opsets    ");
  for (const auto& [d, v] : s.opsets) std::printf(" %s %d", d.c_str(), v);
  std::printf("\n");
  print_io("input ", s.inputs);
  print_io("output", s.outputs);
  std::printf("nodes      %d in the model; %d run after fusion, %d folded at load, %d layout conversions\n",
              s.nodes, s.planned_steps, s.folded_nodes, s.layout_conversions);
  if (s.unplanned_nodes > 0)
    std::printf("           %d node%s after a problem below could not be planned: the steps and MACs leave %s out\n",
                s.unplanned_nodes, s.unplanned_nodes == 1 ? "" : "s", s.unplanned_nodes == 1 ? "it" : "them");
  std::printf("parameters %.2f MB\n", static_cast<double>(s.parameter_bytes) / 1e6);
  std::printf("MACs       %.3f G per run (symbolic dims as 1 unless --dim)\n", static_cast<double>(s.macs) / 1e9);
  std::printf("operators:\n");
  for (const auto& [op, n] : s.op_histogram) std::printf("  %5d  %s\n", n, op.c_str());
  for (const auto& m : s.metadata) std::printf("metadata   %s\n", m.c_str());
  if (!s.fusions.empty()) {
    std::printf("QDQ units fused into integer operators (%zu):\n", s.fusions.size());
    for (const auto& f : s.fusions) std::printf("  %s\n", f.c_str());
  }
  if (!s.not_fused.empty()) {
    std::printf("QDQ units not fused (%zu):\n", s.not_fused.size());
    for (const auto& f : s.not_fused) std::printf("  %s\n", f.c_str());
  }
  if (s.unsupported.empty()) {
    std::printf("all nodes supported\n");
    return 0;
  }
  std::printf("problems (%zu):\n", s.unsupported.size());
  for (const auto& u : s.unsupported) std::printf("  %s\n", u.c_str());
  return 1;
}

}  // namespace quint::tools
