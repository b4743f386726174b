// Batch classification (tools/batch.cc, `quint run MODEL DIR_OR_FILES...`): a folder of good and
// bad images (PNG, BMP and JPEG written with stb_image_write, a corrupt PNG, an empty JPEG, a text
// file to be ignored) classified by a small model built here. The library pipeline and the CLI are
// both checked: every good image's top-1 equals a single run on that image, the bad files get an
// error row (and a message) while the others go on, CSV and JSON hold the rows in file order, the
// exit status is 4 when an image failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "batch.h"
#include "image.h"
#include "json.h"
#include "model_builder.h"
#include "quint/session.h"
#include "test_paths.h"

#include "stb_write.h"

namespace fs = std::filesystem;
using namespace quint;
using namespace quint::tools;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

class BatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir() + "/batch_images");
    fs::create_directories(*dir_);
    // The classifier: mean colour per channel (GlobalAveragePool) times a [3, 5] matrix, so
    // differently coloured images get different classes.
    Tensor w = Tensor::from_vector<float>({3, 5}, {1.0f, 0.0f, 0.0f, -1.0f, 0.2f,    //
                                                   0.0f, 1.0f, 0.0f, -1.0f, 0.4f,    //
                                                   0.0f, 0.0f, 1.0f, -1.0f, 0.3f});
    model_ = new std::string(test::ModelBuilder()
                                 .input("img", DType::Float32, {-1, 3, 32, 32})
                                 .initializer("w", w)
                                 .node("GlobalAveragePool", {"img"}, {"gap"})
                                 .node("Flatten", {"gap"}, {"flat"})
                                 .node("MatMul", {"flat", "w"}, {"scores"})
                                 .output("scores")
                                 .save("batch_classifier.onnx"));
    labels_ = new std::string(test::write_temp_file("batch_labels.txt", "red\ngreen\nblue\ndark, very dark\nmixed\n"));
    // Images: solid-ish colours with a gradient, in three formats, sizes not 32 (resize + crop).
    struct Spec {
      const char* name;
      int r, g, b;
    };
    const Spec specs[] = {{"a_red.png", 230, 40, 30},     {"b_green.png", 20, 220, 40}, {"c_blue.bmp", 30, 50, 240},
                          {"d_black.png", 5, 5, 5},        {"e_teal.jpg", 20, 200, 190}, {"f_white.png", 250, 250, 250},
                          {"g_orange.jpeg", 240, 140, 10}, {"h_grey.PNG", 120, 120, 120}};
    for (const Spec& s : specs) {
      const int w = 48, h = 40;
      std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          unsigned char* p = &px[static_cast<size_t>((y * w + x) * 3)];
          p[0] = static_cast<unsigned char>(std::clamp(s.r + x - 24, 0, 255));
          p[1] = static_cast<unsigned char>(std::clamp(s.g + y - 20, 0, 255));
          p[2] = static_cast<unsigned char>(std::clamp(s.b + (x + y) % 7 - 3, 0, 255));
        }
      const std::string path = *dir_ + "/" + s.name;
      const std::string ext = fs::path(path).extension().string();
      int ok = ext == ".bmp"                     ? stbi_write_bmp(path.c_str(), w, h, 3, px.data())
               : ext == ".jpg" || ext == ".jpeg" ? stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 95)
                                                 : stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3);
      ASSERT_TRUE(ok) << path;
    }
    // Bad ones: a PNG signature followed by garbage, an empty JPEG; and a file to be skipped.
    std::ofstream(*dir_ + "/c_bad.png", std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << "not really a png";
    std::ofstream(*dir_ + "/e_empty.jpg", std::ios::binary);
    std::ofstream(*dir_ + "/notes.txt") << "not an image\n";
    fs::create_directories(*dir_ + "/sub.png");  // a directory with an image-like name is skipped too
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete model_;
    delete labels_;
  }

  // The top-1 class of one image, run on its own (the reference for every batch row).
  static int64_t single_top1(const Session& s, const std::string& file) {
    ImageOptions io;
    image_classifier(s, io, false);
    Tensor x = load_image(file, io);
    auto out = s.run({{"img", x}});
    const Tensor& t = out.at("scores");
    const float* d = t.data<float>();
    return std::max_element(d, d + t.shape().back()) - d;
  }

  static std::string cli() { return test::binary_dir() + "/quint"; }

  static std::string* dir_;
  static std::string* model_;
  static std::string* labels_;
};

std::string* BatchTest::dir_ = nullptr;
std::string* BatchTest::model_ = nullptr;
std::string* BatchTest::labels_ = nullptr;

TEST_F(BatchTest, ExpandsDirectoriesToSortedImageFiles) {
  auto files = expand_image_args({*dir_, "/nonexistent/x.jpg"});
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(fs::path(f).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"a_red.png", "b_green.png", "c_bad.png", "c_blue.bmp", "d_black.png",
                                             "e_empty.jpg", "e_teal.jpg", "f_white.png", "g_orange.jpeg",
                                             "h_grey.PNG", "x.jpg"}));
  EXPECT_TRUE(has_image_extension("A.JPG"));
  EXPECT_FALSE(has_image_extension("a.gif"));
}

TEST_F(BatchTest, PipelineMatchesSingleRunsAndReportsBadImages) {
  for (int threads : {1, 2}) {
    SessionOptions so;
    so.threads = threads;
    Session s(*model_, so);
    const auto files = expand_image_args({*dir_});
    for (auto [decoders, workers] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{1, 3}, std::pair{3, 2}}) {
      BatchOptions o;
      o.top = 3;
      o.decode_threads = decoders;
      o.inference_workers = workers;
      image_classifier(s, o.image, false);
      BatchResult r = classify_images(s, files, o);
      ASSERT_EQ(r.rows.size(), files.size());
      EXPECT_EQ(r.failed, 2);
      EXPECT_EQ(r.output, "scores");
      std::set<int64_t> classes;
      for (size_t i = 0; i < files.size(); ++i) {
        const BatchRow& row = r.rows[i];
        EXPECT_EQ(row.file, files[i]);
        const std::string name = fs::path(row.file).filename().string();
        if (name == "c_bad.png" || name == "e_empty.jpg") {
          EXPECT_FALSE(row.error.empty()) << name;
          EXPECT_TRUE(row.index.empty());
          continue;
        }
        ASSERT_TRUE(row.error.empty()) << name << ": " << row.error;
        ASSERT_EQ(row.index.size(), 3u);
        EXPECT_EQ(row.index[0], single_top1(s, row.file)) << name;
        EXPECT_GE(row.score[0], row.score[1]);
        EXPECT_GE(row.prob[0], row.prob[1]);
        EXPECT_GT(row.prob[0], 0.0);
        EXPECT_LE(row.prob[0] + row.prob[1] + row.prob[2], 1.0 + 1e-9);
        classes.insert(row.index[0]);
      }
      EXPECT_GE(classes.size(), 4u);  // the images really are told apart
    }
  }
}

TEST_F(BatchTest, RefusesModelsThatAreNotImageClassifiers) {
  std::string m = test::ModelBuilder()
                      .input("a", DType::Float32, {2, 3})
                      .input("b", DType::Float32, {2, 3})
                      .node("Add", {"a", "b"}, {"c"})
                      .output("c")
                      .save("batch_not_images.onnx");
  Session s(m);
  ImageOptions io;
  EXPECT_THROW(image_classifier(s, io, false), Error);
}

TEST_F(BatchTest, CliWritesCsvAndJsonAndReportsBadFiles) {
  if (!fs::exists(cli())) GTEST_SKIP() << "no CLI at " << cli();
  const std::string csv = test::temp_dir() + "/batch.csv", json = test::temp_dir() + "/batch.json";
  std::string log;
  int rc = test::run_command(cli() + " run " + quote(*model_) + " " + quote(*dir_) + " --labels " + quote(*labels_) +
                                 " --top 2 --threads 2 --csv " + quote(csv) + " --json " + quote(json),
                             &log);
  EXPECT_EQ(rc, 4) << log;  // some images failed, the rest were classified
  EXPECT_NE(log.find("c_bad.png: error:"), std::string::npos) << log;
  EXPECT_NE(log.find("e_empty.jpg: error:"), std::string::npos) << log;
  EXPECT_NE(log.find("quint run: 10 images, 2 failed"), std::string::npos) << log;

  // CSV: a header, then one row per file in name order.
  std::vector<std::string> lines = split(read_file(csv), '\n');
  ASSERT_EQ(lines.size(), 12u);  // header + 10 rows + the empty string after the last newline
  EXPECT_EQ(lines[0],
            "file,error,top1_index,top1_label,top1_score,top1_prob,top2_index,top2_label,top2_score,top2_prob");
  Session s(*model_);
  const std::vector<std::string> labels = {"red", "green", "blue", "dark, very dark", "mixed"};
  for (size_t i = 1; i <= 10; ++i) {
    const std::string& line = lines[i];
    const std::string file = line.substr(0, line.find(','));
    const std::string name = fs::path(file).filename().string();
    if (name == "c_bad.png" || name == "e_empty.jpg") {
      EXPECT_NE(line.find(",,,,,,,"), std::string::npos) << line;  // no classes
      EXPECT_GT(line.find(',') + 1, 0u);
      EXPECT_NE(line.substr(line.find(',') + 1, 1), ",") << "the error column is empty: " << line;
      continue;
    }
    // Single-image CLI run: "  IDX  score ... prob ...  LABEL".
    std::string one;
    ASSERT_EQ(test::run_command(cli() + " run " + quote(*model_) + " " + quote(file) + " --top 1", &one), 0) << one;
    const auto pos = one.find("top-1:\n");
    ASSERT_NE(pos, std::string::npos) << one;
    const int64_t single = std::stoll(one.substr(pos + 7));
    EXPECT_EQ(single, single_top1(s, file));
    const std::string label = labels[static_cast<size_t>(single)];
    const std::string label_field = label.find(',') != std::string::npos ? "\"" + label + "\"" : label;
    EXPECT_EQ(line.rfind(file + ",," + std::to_string(single) + "," + label_field + ",", 0), 0u) << line;
  }

  // JSON: the same rows.
  Json j = Json::parse(read_file(json));
  EXPECT_EQ(j.at("output").string(), "scores");
  EXPECT_EQ(j.at("top").integer(), 2);
  const auto& images = j.at("images").items();
  ASSERT_EQ(images.size(), 10u);
  int errors = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    EXPECT_EQ(images[i].at("file").string(), split(lines[i + 1], ',')[0]);
    if (!images[i].at("error").is_null()) {
      ++errors;
      EXPECT_TRUE(images[i].at("top").items().empty());
    } else {
      ASSERT_EQ(images[i].at("top").items().size(), 2u);
      const Json& t = images[i].at("top").items()[0];
      EXPECT_EQ(t.at("label").string(), labels[static_cast<size_t>(t.at("index").integer())]);
    }
  }
  EXPECT_EQ(errors, 2);
  EXPECT_EQ(j.at("summary").at("images").integer(), 10);
  EXPECT_EQ(j.at("summary").at("failed").integer(), 2);
  EXPECT_GT(j.at("summary").at("images_per_second").number(), 0);
}

TEST_F(BatchTest, CliExitStatusAndModes) {
  if (!fs::exists(cli())) GTEST_SKIP() << "no CLI at " << cli();
  const std::string m = quote(*model_);
  const std::string red = quote(*dir_ + "/a_red.png"), green = quote(*dir_ + "/b_green.png");
  std::string log;
  // Only good images: exit 0; without --csv/--json one line per image on stdout, in order.
  ASSERT_EQ(test::run_command("(" + cli() + " run " + m + " " + red + " " + green + " --labels " + quote(*labels_) + " 2>/dev/null)", &log), 0) << log;
  auto lines = split(log, '\n');
  ASSERT_GE(lines.size(), 2u) << log;
  EXPECT_EQ(lines[0].rfind(*dir_ + "/a_red.png\t0\t", 0), 0u) << log;
  EXPECT_NE(lines[0].find("\tred"), std::string::npos) << log;
  EXPECT_EQ(lines[1].rfind(*dir_ + "/b_green.png\t1\t", 0), 0u) << log;
  // --csv - writes the CSV to stdout.
  log.clear();
  ASSERT_EQ(test::run_command("(" + cli() + " run " + m + " " + red + " --csv - 2>/dev/null)", &log), 0) << log;
  EXPECT_EQ(log.rfind("file,error,top1_index", 0), 0u) << log;
  // One image without report options keeps the single-run output.
  log.clear();
  ASSERT_EQ(test::run_command(cli() + " run " + m + " " + red, &log), 0) << log;
  EXPECT_EQ(log.rfind("output 'scores': float32[1,5]\n", 0), 0u) << log;
  // Batch-only options need a batch; single-run options are refused in one.
  log.clear();
  EXPECT_EQ(test::run_command(cli() + " run " + m + " " + red + " --workers 2", &log), 1) << log;
  log.clear();
  EXPECT_EQ(test::run_command(cli() + " run " + m + " " + quote(*dir_) + " --out " + quote(test::temp_dir() + "/o"), &log), 1);
  EXPECT_NE(log.find("--csv FILE or --json FILE"), std::string::npos) << log;
  log.clear();
  EXPECT_EQ(test::run_command(cli() + " run " + m + " " + quote(*dir_) + " --csv /nonexistent/dir/x.csv", &log), 1);
  EXPECT_NE(log.find("not writable"), std::string::npos) << log;
  // An empty folder is an error, not an empty report.
  fs::create_directories(test::temp_dir() + "/batch_empty");
  log.clear();
  EXPECT_EQ(test::run_command(cli() + " run " + m + " " + quote(test::temp_dir() + "/batch_empty"), &log), 1);
  EXPECT_NE(log.find("no image files"), std::string::npos) << log;
}

}  // namespace
