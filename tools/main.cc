// quint: run quantized ONNX models exactly, dump every layer, compare and explain.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "quint/error.h"

namespace {

const char* kUsage =
    "usage: quint <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL [IMAGE] [--input [NAME=]FILE]... [--out DIR] [--top K] [--labels FILE]\n"
    "      run a model; print the top-K classes of a classifier; write outputs with --out\n"
    "  run MODEL IMAGE_OR_DIR... [--csv F] [--json F] [--top K] [--labels FILE] [--decoders M] [--workers W]\n"
    "      classify many images (directories: their .jpg/.jpeg/.png/.bmp files), decoding while the model\n"
    "      runs; --threads N runs N images at once; a row per image; exit status 4 when some failed\n"
    "  dump MODEL (IMAGE | --input [NAME=]FILE...) --out DIR\n"
    "      write every node's output as DIR/NAME.npy plus DIR/manifest.json\n"
    "  info MODEL\n"
    "      inputs, outputs, opsets, operators, unsupported nodes, parameters, MACs\n"
    "  compare A B [--model M] [--mode local|chained] [--tolerance-lsb N] [--atol X] [--map FILE]\n"
    "          [--json F] [--csv F] [--html F] [--verbose]\n"
    "      compare two dumps layer by layer (B is the reference); with --model, local mode runs every\n"
    "      node on B's inputs and mismatches are analysed; exit status 3 when beyond tolerance\n"
    "  explain MODEL (IMAGE | --input [NAME=]FILE... | --ref DIR) --tensor NAME --at n,c,h,w [--ref DIR]\n"
    "      how one output element was computed, step by step, under every arithmetic; with --ref,\n"
    "      computed from that dump's inputs and compared with its value\n"
    "  bench MODEL [IMAGE | --input [NAME=]FILE...] [--runs R] [--warmup W] [--json] [--profile]\n"
    "      load time, latency per run (median, min, max), peak RSS; --profile: time per operator and node\n      (and the slowest nodes' GMAC/s)\n"
    "\n"
    "options of commands that run a model:\n"
    "  --threads N          worker threads (default 1)\n"
    "  --arith A            requantization arithmetic: onnx (default), onednn, qnnpack, fbgemm\n"
    "  --isa X              kernel variant: auto (default), ref, avx2, avxvnni, avx512, vnni\n"
    "  --qdq fused|float    QDQ models: fused integer operators (default) or float as written\n"
    "  --dim NAME=VALUE     size of a symbolic input dimension\n"
    "  --size N --crop N    image preprocessing: resize short side (256), center crop (224)\n"
    "  --mean a,b,c --std a,b,c   normalization (ImageNet defaults)\n"
    "  --max-tensor-bytes N largest tensor a model or input file may hold (default 4 GiB)\n"
    "  --max-pixels N       largest image (header pixels) decoded (default 2^26)\n"
    "\n"
    "quint --version prints the version; quint COMMAND --help that command's usage.\n";

// `quint CMD --help`: CMD's lines of kUsage (a command line starts with two spaces and a letter;
// its description is indented further), then the options shared by commands that run a model.
void print_command_usage(const std::string& cmd) {
  const std::string usage = kUsage;
  std::string out = "usage:\n";
  size_t pos = usage.find("\ncommands:\n");
  bool in_block = false;
  while (pos != std::string::npos && pos + 1 < usage.size()) {
    const size_t start = pos + 1, end = usage.find('\n', start);
    const std::string line = usage.substr(start, end == std::string::npos ? std::string::npos : end - start + 1);
    if (line.size() > 2 && line.compare(0, 2, "  ") == 0 && line[2] != ' ' && line[2] != '-')
      in_block = line.compare(2, cmd.size() + 1, cmd + " ") == 0;
    else if (line.size() < 4 || line.compare(0, 4, "    ") != 0)
      in_block = false;
    if (in_block) out += line;
    pos = end;
  }
  out += usage.substr(usage.find("\noptions of commands that run a model:"));
  std::fputs(out.c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version") {
    std::printf("quint %s\n", QUINT_VERSION);
    return 0;
  }
  for (int i = 2; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      if (!std::strstr(kUsage, ("\n  " + cmd + " ").c_str())) break;  // an unknown command: reported below
      print_command_usage(cmd);
      return 0;
    }
  try {
    if (cmd == "run") return quint::tools::cmd_run(argc, argv);
    if (cmd == "dump") return quint::tools::cmd_dump(argc, argv);
    if (cmd == "info") return quint::tools::cmd_info(argc, argv);
    if (cmd == "bench") return quint::tools::cmd_bench(argc, argv);
    if (cmd == "explain") return quint::tools::cmd_explain(argc, argv);
    if (cmd == "compare") return quint::tools::cmd_compare(argc, argv);
    std::fprintf(stderr, "quint: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const quint::Error& e) {
    std::fprintf(stderr, "quint %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "quint %s: error: out of memory\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quint %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
