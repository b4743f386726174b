// Dumps: one NAME.npy per tensor plus manifest.json, in execution order.
//
//   {"format": "quint-dump/1", "producer": "...", "model": "...", "arith": "onnx",
//    "tensors": [{"name": ..., "file": ..., "op": ..., "node": ..., "shape": [...],
//                 "dtype": "uint8", "scale": s | [s...] | null,
//                 "zero_point": z | [z...] | null, "axis": a | null}, ...]}
//
// The same format is written by models/dump_pytorch.py, so `quint compare` reads both.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "json.h"
#include "quint/session.h"

namespace quint::tools {

struct DumpEntry {
  std::string name, file, op, node;
  Shape shape;
  DType dtype = DType::Undefined;
  QuantParams quant;
};

struct DumpManifest {
  std::string producer, model, arith;
  std::vector<DumpEntry> tensors;
  const DumpEntry* find(const std::string& name) const;
};

// An observer that writes every node output (and the graph inputs, first) into a folder.
class DumpWriter final : public Observer {
 public:
  DumpWriter(std::string dir, std::string model, std::string arith);
  // Graph inputs come first in the dump; they are written when the run reports its first node
  // (or at finish()), so a run that rejects its inputs leaves no files behind.
  void add_input(const std::string& name, const Tensor& t);
  void on_node(const ObservedNode& node) override;
  // Writes manifest.json (atomically, last: a dump without it is incomplete).
  void finish();
  size_t count() const { return manifest_.tensors.size(); }

 private:
  void write(const std::string& name, const std::string& op, const std::string& node, const Tensor& t,
             const QuantParams& q);
  void write_pending_inputs();
  std::string dir_;
  std::vector<std::pair<std::string, Tensor>> pending_inputs_;
  DumpManifest manifest_;
  std::map<std::string, int> used_files_;
};

DumpManifest read_manifest(const std::string& dir);
Json manifest_to_json(const DumpManifest& m);

}  // namespace quint::tools
