// Layer-by-layer comparison of two dumps (quint's and a reference such as PyTorch's):
// integer-domain metrics (exact %, |diff| histogram in LSB, saturation, per-channel breakdown,
// worst elements, how many mismatches sit on a rounding tie) and float-domain ones (max and mean
// absolute error, cosine similarity, SQNR).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dump.h"
#include "json.h"
#include "quint/session.h"

namespace quint::tools {

struct CompareOptions {
  int64_t tolerance_lsb = 0;   // integer tensors: largest |diff| that still passes
  double float_atol = 1e-5;    // float tensors: max |a − b| <= atol + 1e-5·max|b| passes
  double tie_window = 0.02;    // a pre-rounding value within this of .5 is "on a tie"
  size_t max_explained = 2000; // mismatches analysed per tensor (with a model)
};

struct ElementDiff {
  std::vector<int64_t> index;
  double a = 0, b = 0;
};

struct TensorStats {
  std::string name;        // A's name
  std::string ref_name;    // B's name (differs with a name map)
  std::string op;
  Shape shape;
  std::string dtype;
  bool integer = false;    // compared as integers (same 8-bit type, scale and zero point)
  std::string note;
  int64_t count = 0, exact = 0, diff1 = 0, diff2 = 0, diff_more = 0, max_diff = 0;
  int64_t sat_lo_a = 0, sat_hi_a = 0, sat_lo_b = 0, sat_hi_b = 0;
  double max_abs_err = 0, mean_abs_err = 0, cosine = 1, sqnr_db = 0;
  bool sqnr_infinite = false;
  std::vector<std::pair<int64_t, int64_t>> channel_mismatches;  // (channel, count), worst first
  std::vector<ElementDiff> worst;                                // largest |diff| first
  // Mismatch analysis (needs the model).
  int64_t analysed = 0, on_tie = 0;
  std::map<std::string, int64_t> reproduced_by;  // arithmetic -> mismatches whose B value it gives
  bool pass = true;
  double exact_pct() const { return count ? 100.0 * static_cast<double>(exact) / static_cast<double>(count) : 100.0; }
};

struct CompareReport {
  std::string a_label, b_label, mode;
  std::vector<TensorStats> tensors;   // in B's order (the reference's execution order)
  std::vector<std::string> only_a, only_b;
  std::string first_divergent;        // first tensor beyond tolerance, "" if none
  bool pass = true;
};

// A dump held in memory.
struct LoadedDump {
  DumpManifest manifest;
  std::map<std::string, Tensor> tensors;
};
LoadedDump load_dump(const std::string& dir);

// name_map: A name -> B name for tensors whose names differ.
CompareReport compare_dumps(const LoadedDump& a, const LoadedDump& b, const std::map<std::string, std::string>& name_map,
                            const CompareOptions& opts);

// Classifies the mismatching elements of every explainable tensor: is the value A computed
// within tie_window of a rounding tie, and which arithmetic yields B's value. `replace` feeds
// B's tensors (local comparison) when given.
void analyse_mismatches(CompareReport& report, const LoadedDump& a, const LoadedDump& b, const Session& session,
                        const std::map<std::string, Tensor>& inputs, const std::map<std::string, Tensor>* replace,
                        const CompareOptions& opts);

Json report_to_json(const CompareReport& r);
std::string report_to_csv(const CompareReport& r);
std::string report_to_html(const CompareReport& r, const LoadedDump& a, const LoadedDump& b,
                           const std::map<std::string, std::string>& name_map);
std::string report_to_text(const CompareReport& r, bool verbose);

}  // namespace quint::tools
