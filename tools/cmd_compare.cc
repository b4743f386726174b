#include <cstdio>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "cli.h"
#include "commands.h"
#include "compare.h"

namespace quint::tools {

namespace {

// {name: name} pairs; the side whose names appear as keys decides the direction.
std::map<std::string, std::string> read_name_map(const std::string& path, const LoadedDump& a, const LoadedDump& b) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open the name map", {path});
  std::stringstream ss;
  ss << f.rdbuf();
  Json j;
  try {
    j = Json::parse(ss.str());
  } catch (const Error& e) {
    throw e.with_context({path});
  }
  if (!j.is_object()) throw Error("a name map must be a JSON object {name: name}", {path});
  int keys_in_a = 0, keys_in_b = 0;
  for (const auto& [k, v] : j.members()) {
    keys_in_a += a.manifest.find(k) != nullptr;
    keys_in_b += b.manifest.find(k) != nullptr;
  }
  std::map<std::string, std::string> a_to_b;
  for (const auto& [k, v] : j.members()) {
    if (!v.is_string()) throw Error("name map values must be strings", {path});
    if (keys_in_a >= keys_in_b) a_to_b[k] = v.string();
    else a_to_b[v.string()] = k;
  }
  return a_to_b;
}

class CaptureAll final : public Observer {
 public:
  LoadedDump dump;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs) {
      dump.manifest.tensors.push_back({o.name, "", n.op_type, n.name, o.value.shape(), o.value.dtype(), o.quant});
      dump.tensors[o.name] = o.value.clone();
    }
  }
};

// "-" writes to standard output (then the text summary goes to standard error).
void write_report(const std::string& path, const std::string& content) {
  if (path == "-") std::fputs(content.c_str(), stdout);
  else write_file_atomic(path, content);
}

}  // namespace

int cmd_compare(int argc, char** argv) {
  OptionSpec spec = session_option_spec();
  spec.insert({{"model", true},  {"mode", true}, {"tolerance-lsb", true}, {"atol", true}, {"json", true},
               {"csv", true},    {"html", true}, {"map", true},           {"verbose", false}});
  Args a = parse_args(argc, argv, 2, spec);
  if ((a.get("json") == "-") + (a.get("csv") == "-") + (a.get("html") == "-") > 1)
    fail("only one of --json, --csv and --html can write to standard output ('-')");
  if (a.positional.size() != 2)
    fail("usage: quint compare A B [--model M] [--mode local|chained] [--tolerance-lsb N] [--json F] [--csv F] "
         "[--html F] [--map FILE]");
  CompareOptions opts;
  opts.tolerance_lsb = a.get_int("tolerance-lsb", 0, 0, 1 << 20);
  if (auto v = a.get("atol")) {
    try {
      opts.float_atol = std::stod(*v);
    } catch (...) {
      fail("--atol expects a number, got '", *v, "'");
    }
  }
  const std::string mode = a.get_or("mode", a.has("model") ? "local" : "chained");
  if (mode != "local" && mode != "chained") fail("--mode must be local or chained, got '", mode, "'");
  if (mode == "local" && !a.has("model")) fail("--mode local runs every node on B's inputs: it needs --model");

  LoadedDump da = load_dump(a.positional[0]);
  const LoadedDump db = load_dump(a.positional[1]);
  std::map<std::string, std::string> name_map;
  if (auto m = a.get("map")) name_map = read_name_map(*m, da, db);

  std::optional<Session> session;
  std::map<std::string, Tensor> inputs, feed;
  if (auto model = a.get("model")) {
    SessionOptions so = session_options(a);
    session.emplace(*model, so);
    std::map<std::string, std::string> b_to_a;
    for (const auto& [an, bn] : name_map) b_to_a[bn] = an;
    // B's tensors under the model's (A's) names.
    for (const auto& [bn, t] : db.tensors) {
      auto it = b_to_a.find(bn);
      feed[it != b_to_a.end() ? it->second : bn] = t;
    }
    for (const IoInfo& in : session->inputs()) {
      if (mode == "local" && feed.count(in.name)) inputs[in.name] = feed.at(in.name);
      else if (da.tensors.count(in.name)) inputs[in.name] = da.tensors.at(in.name);
      else if (feed.count(in.name)) inputs[in.name] = feed.at(in.name);
      else fail("neither dump holds the model input '", in.name, "'");
    }
    if (mode == "local") {
      // Recompute A: every node runs on B's inputs, so each layer is judged alone.
      CaptureAll cap;
      RunOptions ro;
      ro.observer = &cap;
      ro.replace = &feed;
      session->run(inputs, ro);
      cap.dump.manifest.producer = std::string("quint ") + QUINT_VERSION + " (" + arith_name(so.arith) +
                                   " arithmetic, each node fed B's inputs)";
      for (const IoInfo& in : session->inputs()) {
        cap.dump.manifest.tensors.insert(cap.dump.manifest.tensors.begin(),
                                         {in.name, "", "Input", "", inputs.at(in.name).shape(), in.dtype, {}});
        cap.dump.tensors[in.name] = inputs.at(in.name);
      }
      da = std::move(cap.dump);
    }
  }
  CompareReport report = compare_dumps(da, db, name_map, opts);
  report.mode = mode;
  if (session) analyse_mismatches(report, da, db, *session, inputs, mode == "local" ? &feed : nullptr, opts);

  const bool report_on_stdout = a.get("json") == "-" || a.get("csv") == "-" || a.get("html") == "-";
  std::fputs(report_to_text(report, a.has("verbose")).c_str(), report_on_stdout ? stderr : stdout);
  if (auto f = a.get("json")) write_report(*f, report_to_json(report).dump(1) + "\n");
  if (auto f = a.get("csv")) write_report(*f, report_to_csv(report));
  if (auto f = a.get("html")) write_report(*f, report_to_html(report, da, db, name_map));
  // 3: the comparison ran and found tensors beyond tolerance (1 is an error).
  return report.pass ? 0 : 3;
}

}  // namespace quint::tools
