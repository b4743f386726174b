#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "dump.h"

namespace quint::tools {

int cmd_dump(int argc, char** argv) {
  OptionSpec spec = session_option_spec();
  spec.merge(image_option_spec());
  spec.insert({{"input", true}, {"out", true}});
  Args a = parse_args(argc, argv, 2, spec);
  if (a.positional.empty() || a.positional.size() > 2 || !a.has("out"))
    fail("usage: quint dump MODEL (IMAGE | --input [NAME=]FILE...) --out DIR");
  SessionOptions so = session_options(a);
  Session s(a.positional[0], so);
  std::optional<std::string> image;
  if (a.positional.size() == 2) image = a.positional[1];
  auto inputs = gather_inputs(s, image, a);
  DumpWriter w(*a.get("out"), a.positional[0], arith_name(so.arith));
  for (const IoInfo& in : s.inputs()) w.add_input(in.name, inputs.at(in.name));
  RunOptions ro;
  ro.observer = &w;
  s.run(inputs, ro);
  w.finish();
  std::printf("wrote %zu tensors and manifest.json to %s\n", w.count(), a.get("out")->c_str());
  return 0;
}

}  // namespace quint::tools
