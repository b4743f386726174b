#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "dump.h"
#include "npy.h"
#include "text.h"

namespace quint::tools {

namespace {

std::vector<int64_t> parse_index(const std::string& s) {
  std::vector<int64_t> idx;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (...) {
      used = 0;
    }
    if (part.empty() || used != part.size()) fail("--at expects comma-separated integers such as 0,5,3,7, got '", s, "'");
    idx.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return idx;
}

// A reference dump's tensors, all of them (they feed every node its reference inputs).
std::map<std::string, Tensor> load_dump(const std::string& dir, DumpManifest* m) {
  *m = read_manifest(dir);
  std::map<std::string, Tensor> out;
  for (const DumpEntry& e : m->tensors) out[e.name] = read_npy(dir + "/" + e.file);
  return out;
}

}  // namespace

int cmd_explain(int argc, char** argv) {
  OptionSpec spec = session_option_spec();
  spec.merge(image_option_spec());
  spec.insert({{"input", true}, {"tensor", true}, {"at", true}, {"ref", true}});
  Args a = parse_args(argc, argv, 2, spec);
  if (a.positional.empty() || a.positional.size() > 2 || !a.has("tensor") || !a.has("at"))
    fail("usage: quint explain MODEL (IMAGE | --input [NAME=]FILE...) --tensor NAME --at n,c,h,w "
         "[--arith A] [--ref DIR]");
  SessionOptions so = session_options(a);
  // Explain recomputes the element with reference formulas; the run itself may be fast.
  Session s(a.positional[0], so);
  std::optional<std::string> image;
  if (a.positional.size() == 2) image = a.positional[1];
  std::map<std::string, Tensor> ref;
  DumpManifest ref_manifest;
  if (auto dir = a.get("ref")) ref = load_dump(*dir, &ref_manifest);
  std::map<std::string, Tensor> inputs;
  if (image || a.has("input")) {
    inputs = gather_inputs(s, image, a);
  } else {
    // The reference dump's own inputs.
    for (const IoInfo& in : s.inputs()) {
      auto it = ref.find(in.name);
      if (it == ref.end()) fail("no IMAGE or --input given, and the reference dump has no input '", in.name, "'");
      inputs[in.name] = it->second;
    }
  }
  ExplainRequest req{*a.get("tensor"), parse_index(*a.get("at"))};
  // With a reference, the node is fed the reference's inputs: the element is judged alone.
  std::map<std::string, Tensor> feed;
  for (const auto& [name, t] : ref)
    if (name != req.tensor) feed[name] = t;
  Explanation e = s.explain(inputs, req, ref.empty() ? nullptr : &feed);

  std::string idx;
  for (size_t i = 0; i < e.index.size(); ++i) idx += (i ? ", " : "") + std::to_string(e.index[i]);
  std::printf("%s '%s' -> %s[%s]\n\n", e.op_type.c_str(), e.node.c_str(), e.tensor.c_str(), idx.c_str());
  for (const auto& d : e.details) std::printf("%s\n", d.c_str());
  std::printf("\n");
  for (const ExplainScheme& sc : e.schemes) {
    std::printf("arithmetic %s -> %lld%s\n", pad_right(arith_name(sc.arith), 8).c_str(),
                static_cast<long long>(sc.result), sc.arith == e.session_arith ? "   (this run's arithmetic)" : "");
    // Labels and formulas hold '·', '→', '×' …: columns are padded by display width, not bytes.
    for (const ExplainStep& st : sc.steps)
      std::printf("    %s %s %s\n", pad_right(st.label, 22).c_str(), pad_right(st.formula, 58).c_str(),
                  st.value.c_str());
    if (!sc.note.empty()) std::printf("    note: %s\n", sc.note.c_str());
  }
  std::printf("\nquint computed %lld (arithmetic %s)\n", static_cast<long long>(e.actual), arith_name(e.session_arith));
  if (!ref.empty()) {
    auto it = ref.find(e.tensor);
    if (it == ref.end()) {
      std::printf("the reference dump has no tensor '%s'\n", e.tensor.c_str());
    } else {
      const Tensor& r = it->second;
      if (r.rank() != e.index.size()) fail("the reference tensor has shape ", shape_str(r.shape()));
      int64_t off = 0;
      for (size_t i = 0; i < e.index.size(); ++i) {
        if (e.index[i] >= r.dim(i)) fail("the index is outside the reference tensor's shape ", shape_str(r.shape()));
        off = off * r.dim(i) + e.index[i];
      }
      const int64_t rv = r.as_int64(off);
      std::string who;
      for (const ExplainScheme& sc : e.schemes)
        if (sc.result == rv) who += (who.empty() ? "" : ", ") + std::string(arith_name(sc.arith));
      std::printf("reference (%s%s) holds %lld: %s\n", ref_manifest.producer.empty() ? "dump" : ref_manifest.producer.c_str(),
                  "", static_cast<long long>(rv),
                  who.empty() ? "no arithmetic quint knows reproduces it (different inputs or parameters?)"
                              : ("reproduced by " + who).c_str());
    }
  }
  if (!e.pitfalls.empty()) {
    std::printf("\nwhat common mistakes give instead (ONNX Runtime's arithmetic otherwise):\n");
    for (const ExplainStep& p : e.pitfalls)
      std::printf("    %s %s -> %s\n", pad_right(p.label, 48).c_str(), pad_right(p.formula, 60).c_str(),
                  p.value.c_str());
  }
  return 0;
}

}  // namespace quint::tools
