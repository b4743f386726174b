#include "batch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"

namespace quint::tools {

namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

std::vector<std::string> expand_image_args(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (!fs::is_directory(arg, ec)) {
      files.push_back(arg);
      continue;
    }
    std::vector<std::string> found;
    fs::directory_iterator it(arg, ec), end;
    if (ec) throw Error("cannot list the directory: " + ec.message(), {arg});
    for (; it != end; it.increment(ec)) {
      if (ec) throw Error("cannot list the directory: " + ec.message(), {arg});
      std::error_code ec2;
      if (it->is_directory(ec2) || !has_image_extension(it->path().string())) continue;
      found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

ImageClassifier image_classifier(const Session& s, ImageOptions& image, bool crop_given) {
  const auto& ins = s.inputs();
  if (ins.size() != 1)
    fail("classifying images needs a model with one input; this one has ", ins.size());
  const IoInfo& in = ins[0];
  if (in.dtype != DType::Float32 || in.dims.size() != 4 || (in.dims[1] >= 0 && in.dims[1] != 3))
    fail("an image can feed a float32 [N,3,H,W] input; '", in.name, "' is ", dtype_name(in.dtype), shape_str(in.dims));
  if (in.dims[0] > 1)
    fail("images are classified one at a time, but the input '", in.name, "' has a fixed batch of ", in.dims[0]);
  // A model with a fixed input size sets the crop unless the user chose one (as for one image).
  if (!crop_given && in.dims[2] > 0 && in.dims[2] == in.dims[3]) image.crop = static_cast<int>(in.dims[2]);
  // The first float32 output with a class dim; else the first output the model leaves untyped
  // (each run then checks that it holds float scores).
  for (const IoInfo& o : s.outputs())
    if (o.dtype == DType::Float32 && !o.dims.empty() && (o.dims.back() < 0 || o.dims.back() >= 2))
      return {in.name, o.name};
  for (const IoInfo& o : s.outputs())
    if (o.dtype == DType::Undefined) return {in.name, o.name};
  fail("classifying images needs a float32 output [N, classes]; the model's outputs are not");
}

namespace {

// A bounded multi-producer, multi-consumer queue: decoded images wait here for inference, so
// decoding runs at most `capacity` images ahead (bounding memory).
template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  void push(T v) {
    std::unique_lock<std::mutex> lock(m_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_; });
    q_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  // Blocks until an item arrives; nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(m_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> q_;
  bool closed_ = false;
};

using Clock = std::chrono::steady_clock;

std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<long long>(std::llround(s));
  if (t < 60) return std::to_string(t) + "s";
  if (t < 3600) return cat(t / 60, "m", (t % 60 < 10 ? "0" : ""), t % 60, "s");
  return cat(t / 3600, "h", (t % 3600) / 60 < 10 ? "0" : "", (t % 3600) / 60, "m");
}

// Progress on stderr: on a terminal one line redrawn in place (count, bar, images/s, ETA) at most
// ten times a second; otherwise a plain line every few seconds. Errors are printed as they happen.
class Progress {
 public:
  Progress(std::FILE* f, bool tty, size_t total) : f_(f), tty_(tty), total_(total), start_(Clock::now()) {}
  void item_done(bool failed, const std::string& error_line) {
    std::lock_guard<std::mutex> lock(m_);
    ++done_;
    failed_ += failed;
    if (!f_) return;
    const auto now = Clock::now();
    if (!error_line.empty()) {
      if (tty_) std::fputs("\r\033[K", f_);
      std::fprintf(f_, "%s\n", error_line.c_str());
      last_ = Clock::time_point{};  // redraw the bar right away
    }
    const double since = std::chrono::duration<double>(now - last_).count();
    if (tty_ ? (since >= 0.1 || done_ == total_) : since >= 5.0) {
      last_ = now;
      draw(now);
    }
  }
  void finish() {
    std::lock_guard<std::mutex> lock(m_);
    if (f_ && tty_) {
      draw(Clock::now());
      std::fputs("\n", f_);
    }
  }

 private:
  void draw(Clock::time_point now) {
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
    const int pct = total_ ? static_cast<int>(100 * done_ / total_) : 100;
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = total_ ? static_cast<int>(kWidth * done_ / total_) : kWidth;
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(kWidth, '-');
      std::fprintf(f_, "\r%zu/%zu [%s] %3d%%  %.1f images/s  ETA %s%s\033[K", done_, total_, bar.c_str(), pct, rate,
                   duration_text(eta).c_str(), failed_ ? cat("  ", failed_, " failed").c_str() : "");
    } else {
      std::fprintf(f_, "quint run: %zu/%zu images (%d%%), %.1f images/s, ETA %s%s\n", done_, total_, pct, rate,
                   duration_text(eta).c_str(), failed_ ? cat(", ", failed_, " failed").c_str() : "");
    }
    std::fflush(f_);
  }

  std::mutex m_;
  std::FILE* f_;
  bool tty_;
  size_t total_, done_ = 0, failed_ = 0;
  Clock::time_point start_, last_{};
};

// The top-k of one score row (ties: lower index first), with softmax probabilities.
void top_k(const float* row, int64_t classes, int k, BatchRow& out) {
  std::vector<int64_t> idx(static_cast<size_t>(classes));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t kk = std::min<int64_t>(k, classes);
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                    [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  const double mx = *std::max_element(row, row + classes);
  double sum = 0;
  for (int64_t i = 0; i < classes; ++i) sum += std::exp(static_cast<double>(row[i]) - mx);
  for (int64_t i = 0; i < kk; ++i) {
    const int64_t c = idx[static_cast<size_t>(i)];
    out.index.push_back(c);
    out.score.push_back(row[c]);
    out.prob.push_back(std::exp(static_cast<double>(row[c]) - mx) / sum);
  }
}

// An exception's message for a row: quint::Error's reason without the file (the row names it).
std::string row_error(const std::exception& e, const std::string& file) {
  if (const auto* qe = dynamic_cast<const Error*>(&e); qe && qe->context().file == file && qe->context().node.empty())
    return qe->reason();
  return e.what();
}

}  // namespace

BatchResult classify_images(const Session& s, const std::vector<std::string>& files, const BatchOptions& opts) {
  ImageOptions image = opts.image;
  const ImageClassifier cls = image_classifier(s, image, true);
  const int decoders = std::max(1, opts.decode_threads);
  const int workers = std::max(1, opts.inference_workers);
  const int top = std::max(1, opts.top);

  BatchResult r;
  r.output = cls.output;
  r.decode_threads = decoders;
  r.inference_workers = workers;
  r.session_threads = s.options().threads;
  r.rows.resize(files.size());
  for (size_t i = 0; i < files.size(); ++i) r.rows[i].file = files[i];

  struct Decoded {
    size_t index = 0;
    Tensor input;
    std::string error;
  };
  // Two decoded images per inference worker keep it busy without decoding far ahead.
  BoundedQueue<Decoded> queue(static_cast<size_t>(2 * workers));
  std::atomic<size_t> next{0};
  std::atomic<int> decoders_left{decoders};
  Progress progress(opts.progress, opts.progress_tty, files.size());
  const auto start = Clock::now();

  auto decode = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      Decoded d;
      d.index = i;
      try {
        d.input = load_image(files[i], image);
      } catch (const std::exception& e) {
        d.error = row_error(e, files[i]);
      }
      queue.push(std::move(d));
    }
    if (decoders_left.fetch_sub(1) == 1) queue.close();
  };
  auto infer = [&] {
    while (std::optional<Decoded> d = queue.pop()) {
      BatchRow& row = r.rows[d->index];
      if (d->error.empty()) {
        try {
          const auto outputs = s.run({{cls.input, d->input}});
          const Tensor& t = outputs.at(cls.output);
          if (t.dtype() != DType::Float32 || t.rank() < 1 || t.shape().back() < 1 || t.numel() == 0)
            fail("the output '", cls.output, "' is ", dtype_name(t.dtype()), shape_str(t.shape()), ", not class scores");
          top_k(t.data<float>(), t.shape().back(), top, row);  // the first row: one image, N = 1
        } catch (const std::exception& e) {
          row.error = row_error(e, files[d->index]);
        }
      } else {
        row.error = d->error;
      }
      progress.item_done(!row.error.empty(),
                         row.error.empty() ? std::string() : "quint run: " + row.file + ": error: " + row.error);
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < decoders; ++i) threads.emplace_back(decode);
  for (int i = 1; i < workers; ++i) threads.emplace_back(infer);
  infer();
  for (std::thread& t : threads) t.join();
  progress.finish();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const BatchRow& row : r.rows) r.failed += !row.error.empty();
  return r;
}

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string number(double v, const char* f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const std::string& label_of(const std::vector<std::string>& labels, int64_t c) {
  static const std::string none;
  return c >= 0 && c < static_cast<int64_t>(labels.size()) ? labels[static_cast<size_t>(c)] : none;
}

}  // namespace

std::string batch_csv(const BatchResult& r, const std::vector<std::string>& labels, int top) {
  std::string out = "file,error";
  for (int k = 1; k <= top; ++k)
    out += cat(",top", k, "_index,top", k, "_label,top", k, "_score,top", k, "_prob");
  out += "\n";
  for (const BatchRow& row : r.rows) {
    out += csv_field(row.file) + "," + csv_field(row.error);
    for (size_t k = 0; k < static_cast<size_t>(top); ++k) {
      if (k < row.index.size())
        out += cat(",", row.index[k], ",", csv_field(label_of(labels, row.index[k])), ",",
                   number(row.score[k], "%.9g"), ",", number(row.prob[k], "%.6f"));
      else
        out += ",,,,";
    }
    out += "\n";
  }
  return out;
}

Json batch_json(const BatchResult& r, const std::string& model, const std::vector<std::string>& labels, int top) {
  Json j = Json::object();
  j.set("model", model);
  j.set("output", r.output);
  j.set("top", top);
  Json images = Json::array();
  for (const BatchRow& row : r.rows) {
    Json im = Json::object();
    im.set("file", row.file);
    im.set("error", row.error.empty() ? Json() : Json(row.error));
    Json t = Json::array();
    for (size_t k = 0; k < row.index.size(); ++k) {
      Json e = Json::object();
      e.set("index", row.index[k]);
      e.set("label", label_of(labels, row.index[k]));
      e.set("score", static_cast<double>(row.score[k]));
      e.set("prob", row.prob[k]);
      t.push(e);
    }
    im.set("top", t);
    images.push(im);
  }
  j.set("images", images);
  Json sum = Json::object();
  sum.set("images", static_cast<int64_t>(r.rows.size()));
  sum.set("failed", r.failed);
  sum.set("seconds", r.seconds);
  sum.set("images_per_second", r.images_per_second());
  sum.set("decode_threads", r.decode_threads);
  sum.set("inference_workers", r.inference_workers);
  sum.set("session_threads", r.session_threads);
  j.set("summary", sum);
  return j;
}

}  // namespace quint::tools

// ---------------------------------------------------------------- the CLI side

namespace quint::tools {

bool is_batch_run(const Args& a) {
  if (a.positional.size() > 2 || a.has("csv") || a.has("json")) return true;
  std::error_code ec;
  return a.positional.size() == 2 && fs::is_directory(a.positional[1], ec);
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open the labels file", {path});
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

int run_batch(const Args& a) {
  if (a.has("input")) fail("--input feeds one run; a batch run classifies image files (give IMAGE or DIR arguments)");
  if (a.has("out")) fail("--out writes one run's outputs; for many images use --csv FILE or --json FILE");
  BatchOptions o;
  o.top = static_cast<int>(a.get_int("top", 5, 1, 1000));
  o.decode_threads = static_cast<int>(a.get_int("decoders", 1, 1, 64));
  o.inference_workers = static_cast<int>(a.get_int("workers", 1, 1, 256));
  if (auto l = a.get("labels")) o.labels = read_labels(*l);
  const std::string model = a.positional[0];
  // Fail on a bad output path before classifying anything.
  for (const char* k : {"csv", "json"})
    if (auto f = a.get(k); f && *f != "-") {
      std::string dir = fs::path(*f).parent_path().string();
      if (dir.empty()) dir = ".";
      std::error_code ec;
      if (!fs::is_directory(dir, ec) || access(dir.c_str(), W_OK) != 0)
        throw Error(cat("cannot write the --", k, " file: its folder does not exist or is not writable"), {*f});
    }
  const std::vector<std::string> files =
      expand_image_args(std::vector<std::string>(a.positional.begin() + 1, a.positional.end()));
  if (files.empty()) fail("no image files (.jpg, .jpeg, .png, .bmp) in the given directories");
  // --threads N alone: N images at once, one thread each. Whole images in parallel need no
  // synchronization inside a run, so on a batch they give more images/s than N threads splitting
  // one image's layers (measured, see README). --workers W --threads T: W images, T threads each.
  SessionOptions so = session_options(a);
  if (!a.has("workers")) {
    o.inference_workers = so.threads;
    so.threads = 1;
  }
  Session s(model, so);
  o.image = image_options(a);
  image_classifier(s, o.image, a.has("crop"));
  o.progress = stderr;
  o.progress_tty = isatty(fileno(stderr)) != 0;
  BatchResult r = classify_images(s, files, o);

  bool to_stdout = false;
  if (auto f = a.get("csv")) {
    const std::string csv = batch_csv(r, o.labels, o.top);
    if (*f == "-") std::fputs(csv.c_str(), stdout), to_stdout = true;
    else write_file_atomic(*f, csv);
  }
  if (auto f = a.get("json")) {
    const std::string json = batch_json(r, model, o.labels, o.top).dump(1) + "\n";
    if (*f == "-") std::fputs(json.c_str(), stdout), to_stdout = true;
    else write_file_atomic(*f, json);
  }
  if (!a.has("csv") && !a.has("json")) {
    // No report file: one line per image, top-1, in the order given.
    for (const BatchRow& row : r.rows) {
      if (!row.error.empty()) {
        std::printf("%s\terror: %s\n", row.file.c_str(), row.error.c_str());
        continue;
      }
      const int64_t c = row.index[0];
      std::printf("%s\t%lld\t%.4f\t%s\n", row.file.c_str(), static_cast<long long>(c), row.prob[0],
                  c < static_cast<int64_t>(o.labels.size()) ? o.labels[static_cast<size_t>(c)].c_str() : "");
    }
  }
  (void)to_stdout;
  std::fflush(stdout);
  std::fprintf(stderr, "quint run: %zu images, %lld failed, %.2f s, %.1f images/s (%d inference worker%s x %d thread%s, %d decoder%s)\n",
               r.rows.size(), static_cast<long long>(r.failed), r.seconds, r.images_per_second(), r.inference_workers,
               r.inference_workers == 1 ? "" : "s", r.session_threads, r.session_threads == 1 ? "" : "s",
               r.decode_threads, r.decode_threads == 1 ? "" : "s");
  // 4: the batch ran but some images failed (their rows say why); 1 is reserved for errors.
  return r.failed ? 4 : 0;
}

}  // namespace quint::tools
