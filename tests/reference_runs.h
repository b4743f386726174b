// Reference runs for end-to-end tests: ONNX Runtime (through tests/ort) and PyTorch (through
// models/), plus quint dumps to compare them with.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quint/session.h"

namespace quint::test {

// Runs ONNX Runtime on `model` with `inputs` (name -> .npy path) and returns its outputs by
// name. `outputs` is "" (graph outputs), "all" (every node output) or a comma-separated list.
// `opt` is the graph optimization level (all, extended, basic, disable). Fails on error.
std::map<std::string, Tensor> run_ort(const std::string& model, const std::map<std::string, std::string>& inputs,
                                      const std::string& outputs, const std::string& opt = "all");

// Every node output of a quint run, by tensor name, in the model's layout.
std::map<std::string, Tensor> quint_tensors(const Session& s, const std::map<std::string, Tensor>& inputs);

// The quantized ResNet50 exported by models/export_resnet50.py (seed 0, onednn), made once per
// build folder (a file lock serialises concurrent test processes). "" when torch is missing.
std::string resnet50_dir();
// tests/scripts/export_qdq_blocks.py's model (exported once into the build tree), or "" when
// /usr/bin/python3 lacks torch or onnx.
std::string qdq_blocks_model();

// Writes t as a .npy in temp_dir() and returns the path.
std::string save_npy_temp(const std::string& name, const Tensor& t);

// Runs the model in ONNX Runtime (level "all") and in quint on the same inputs and expects the
// named outputs to be identical, bit for bit (gtest failures otherwise). Returns quint's outputs.
std::map<std::string, Tensor> expect_matches_ort(const std::string& path, const std::map<std::string, Tensor>& inputs,
                                                 const std::vector<std::string>& outs);

}  // namespace quint::test
