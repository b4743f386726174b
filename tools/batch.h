// Classifying many images with one model (`quint run MODEL DIR_OR_FILES...`): a pipeline in which
// decode workers read and preprocess images while the model runs on the ones already decoded.
//
//   decode workers (BatchOptions::decode_threads) ──▶ bounded queue ──▶ inference workers
//   (load_image: file → float32 [1,3,H,W])            (2 per worker)    (Session::run, top-k)
//
// An image that cannot be read or decoded is reported, gets a row saying why, and the others go
// on. Results come back in the order of the file list, whatever order they finished in.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "image.h"
#include "json.h"
#include "quint/session.h"

namespace quint::tools {

// Image files from command-line arguments: a directory contributes its image files (.jpg, .jpeg,
// .png, .bmp in any case; not recursive; sorted by name), any other argument is taken as a file
// as it is (if it is missing or not an image, its row will say so). Fails when a directory
// cannot be read.
std::vector<std::string> expand_image_args(const std::vector<std::string>& args);

// True for the file extensions expand_image_args picks from directories.
bool has_image_extension(const std::string& path);
// One label per line (class index = line number); a trailing '\r' is dropped.
std::vector<std::string> read_labels(const std::string& path);

struct BatchOptions {
  int top = 5;                // top-k classes per image (at least 1)
  int decode_threads = 1;     // workers decoding and preprocessing images
  int inference_workers = 1;  // images run at once (each run uses the Session's own threads)
  ImageOptions image;         // preprocessing (crop already matched to the model, see below)
  std::vector<std::string> labels;
  std::FILE* progress = nullptr;  // where progress and per-image errors go (nullptr: silent)
  bool progress_tty = false;      // \r-updated bar instead of plain lines
};

struct BatchRow {
  std::string file;
  std::string error;          // empty when the image was classified
  std::vector<int64_t> index; // top-k class indices, best first
  std::vector<float> score;   // the model's output values for them
  std::vector<double> prob;   // softmax of the output row at them
};

struct BatchResult {
  std::string output;         // the output tensor that was classified
  std::vector<BatchRow> rows; // one per file, in the order given
  int64_t failed = 0;
  double seconds = 0;         // wall time of the whole pipeline
  int decode_threads = 0, inference_workers = 0, session_threads = 0;
  double images_per_second() const { return seconds > 0 ? static_cast<double>(rows.size()) / seconds : 0; }
};

// The model's image input (exactly one float32 [N,3,H,W] input with N 1 or symbolic) and its
// classification output (the first float32 output whose last dim is the class count); fails with
// the reason otherwise. `image` gets the model's square input size as crop unless crop_given.
struct ImageClassifier {
  std::string input, output;
};
ImageClassifier image_classifier(const Session& s, ImageOptions& image, bool crop_given);

// Runs the pipeline over `files`. Session::run is thread-safe, so the inference workers share `s`.
BatchResult classify_images(const Session& s, const std::vector<std::string>& files, const BatchOptions& opts);

// file,error,top1_index,top1_label,top1_score,top1_prob,top2_index,... (RFC 4180 quoting).
std::string batch_csv(const BatchResult& r, const std::vector<std::string>& labels, int top);
// {"model", "output", "top", "images": [{"file", "error", "top": [{"index", "label", "score",
//  "prob"}]}], "summary": {"images", "failed", "seconds", "images_per_second", ...}}
Json batch_json(const BatchResult& r, const std::string& model, const std::vector<std::string>& labels, int top);

}  // namespace quint::tools

namespace quint::tools {

struct Args;
// `quint run MODEL DIR_OR_FILES...` (see tools/main.cc's usage): true when the arguments ask for a
// batch run (more than one image, a directory, or --csv/--json), which run_batch then performs.
bool is_batch_run(const Args& a);
int run_batch(const Args& a);

}  // namespace quint::tools
