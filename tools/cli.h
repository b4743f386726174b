// Command-line plumbing shared by the quint subcommands: argument parsing, session options,
// and turning IMAGE / --input arguments into the model's input tensors.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image.h"
#include "quint/session.h"

namespace quint::tools {

// Options a subcommand accepts: name (without "--") -> takes a value?
using OptionSpec = std::map<std::string, bool>;

struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;  // repeatable options keep every value
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::optional<std::string> get(const std::string& k) const;
  std::vector<std::string> all(const std::string& k) const;
  std::string get_or(const std::string& k, const std::string& dflt) const;
  int64_t get_int(const std::string& k, int64_t dflt, int64_t lo, int64_t hi) const;
};

// Parses argv[first..]; fails on unknown options or missing values.
Args parse_args(int argc, char** argv, int first, const OptionSpec& spec);

// The options every subcommand that runs a model accepts.
OptionSpec session_option_spec();
SessionOptions session_options(const Args& a);

// Options for image preprocessing (--size, --crop, --mean, --std).
OptionSpec image_option_spec();
ImageOptions image_options(const Args& a);

// The model's inputs from an optional image and --input [NAME=]FILE arguments (.npy or .pb).
// With an image, the model must have exactly one float32 [N,3,H,W] input.
std::map<std::string, Tensor> gather_inputs(const Session& s, const std::optional<std::string>& image,
                                            const Args& a);

// Reads a .npy or an ONNX TensorProto .pb file by extension; tensors larger than max_bytes
// (SessionOptions::max_tensor_bytes, --max-tensor-bytes) are refused before they are read.
Tensor read_tensor_file(const std::string& path, int64_t max_bytes = int64_t{4} << 30);

// "a/b:c" -> "a_b_c": the file name of a tensor in a dump.
std::string sanitize_name(const std::string& name);

// Creates a directory (and parents); fails with a clear message.
void make_dirs(const std::string& dir);

}  // namespace quint::tools
