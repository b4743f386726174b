// quint compare: metrics on dumps made here with known differences, name maps, modes, reports —
// and the HTML report rendered in headless Chromium (Debian's chromium) must not be blank.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "compare.h"
#include "image.h"
#include "model_builder.h"
#include "test_paths.h"

namespace quint::test {
namespace {

using tools::CompareOptions;
using tools::DumpEntry;
using tools::LoadedDump;

QuantParams qp(float s, int32_t z) {
  QuantParams q;
  q.scale = {s};
  q.zero_point = {z};
  return q;
}

void add(LoadedDump& d, const std::string& name, const Tensor& t, const QuantParams& q, const std::string& op = "QLinearConv") {
  d.manifest.tensors.push_back({name, name + ".npy", op, name, t.shape(), t.dtype(), q});
  d.tensors[name] = t;
}

Tensor u8(Shape s, std::vector<uint8_t> v) { return Tensor::from_vector<uint8_t>(std::move(s), v); }

TEST(Compare, IntegerMetricsCountEveryDifference) {
  LoadedDump a, b;
  // 2 channels × 2×2: one element off by 1, one by 2, one by 5; saturation on both sides.
  add(a, "t", u8({1, 2, 2, 2}, {0, 10, 20, 30, 255, 50, 60, 70}), qp(0.5f, 10));
  add(b, "t", u8({1, 2, 2, 2}, {0, 11, 22, 30, 250, 50, 60, 70}), qp(0.5f, 10));
  auto r = tools::compare_dumps(a, b, {}, CompareOptions{});
  ASSERT_EQ(r.tensors.size(), 1u);
  const auto& s = r.tensors[0];
  EXPECT_TRUE(s.integer);
  EXPECT_EQ(s.count, 8);
  EXPECT_EQ(s.exact, 5);
  EXPECT_EQ(s.diff1, 1);
  EXPECT_EQ(s.diff2, 1);
  EXPECT_EQ(s.diff_more, 1);
  EXPECT_EQ(s.max_diff, 5);
  EXPECT_EQ(s.sat_lo_a, 1);
  EXPECT_EQ(s.sat_hi_a, 1);
  EXPECT_EQ(s.sat_hi_b, 0);
  ASSERT_EQ(s.channel_mismatches.size(), 2u);
  EXPECT_EQ(s.channel_mismatches[0], (std::pair<int64_t, int64_t>{0, 2}));
  EXPECT_EQ(s.channel_mismatches[1], (std::pair<int64_t, int64_t>{1, 1}));
  ASSERT_FALSE(s.worst.empty());
  EXPECT_EQ(s.worst[0].index, (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(s.worst[0].a, 255);
  EXPECT_DOUBLE_EQ(s.max_abs_err, 2.5);  // 5 LSB at scale 0.5
  // SQNR in the real domain: Σ b² / Σ (a − b)², with b = 0.5·(q − 10).
  double num = 0, den = 0;
  const std::vector<double> qa{0, 10, 20, 30, 255, 50, 60, 70}, qb{0, 11, 22, 30, 250, 50, 60, 70};
  for (size_t i = 0; i < 8; ++i) {
    num += std::pow(0.5 * (qb[i] - 10), 2);
    den += std::pow(0.5 * (qa[i] - qb[i]), 2);
  }
  EXPECT_NEAR(s.sqnr_db, 10 * std::log10(num / den), 1e-9);
  EXPECT_FALSE(s.pass);
  EXPECT_FALSE(r.pass);
  CompareOptions loose;
  loose.tolerance_lsb = 5;
  EXPECT_TRUE(tools::compare_dumps(a, b, {}, loose).pass);
}

TEST(Compare, NameMapOneSidedTensorsAndFirstDivergence) {
  LoadedDump a, b;
  add(a, "/conv1/q", u8({1, 1, 1, 2}, {1, 2}), qp(1, 0));
  add(a, "/layer1/q", u8({1, 1, 1, 2}, {3, 9}), qp(1, 0));
  add(a, "only_quint", u8({1}, {0}), qp(1, 0));
  add(b, "conv1", u8({1, 1, 1, 2}, {1, 2}), qp(1, 0));
  add(b, "layer1", u8({1, 1, 1, 2}, {3, 4}), qp(1, 0));
  add(b, "only_torch", u8({1}, {0}), qp(1, 0));
  auto r = tools::compare_dumps(a, b, {{"/conv1/q", "conv1"}, {"/layer1/q", "layer1"}}, CompareOptions{});
  ASSERT_EQ(r.tensors.size(), 2u);
  EXPECT_TRUE(r.tensors[0].pass);
  EXPECT_FALSE(r.tensors[1].pass);
  EXPECT_EQ(r.first_divergent, "/layer1/q");
  EXPECT_EQ(r.only_a, std::vector<std::string>{"only_quint"});
  EXPECT_EQ(r.only_b, std::vector<std::string>{"only_torch"});
}

TEST(Compare, DifferentQuantizationIsComparedAsRealValues) {
  LoadedDump a, b;
  add(a, "t", u8({2}, {10, 20}), qp(0.5f, 0));
  add(b, "t", u8({2}, {20, 40}), qp(0.25f, 0));
  auto r = tools::compare_dumps(a, b, {}, CompareOptions{});
  EXPECT_FALSE(r.tensors[0].integer);
  EXPECT_EQ(r.tensors[0].exact, 2);
  EXPECT_TRUE(r.pass);
}

TEST(Compare, ReportsAreWellFormed) {
  LoadedDump a, b;
  add(a, "x", u8({1, 1, 2, 2}, {1, 2, 3, 4}), qp(1, 0));
  add(b, "x", u8({1, 1, 2, 2}, {1, 2, 3, 5}), qp(1, 0));
  auto r = tools::compare_dumps(a, b, {}, CompareOptions{});
  r.mode = "chained";
  tools::Json j = tools::Json::parse(tools::report_to_json(r).dump(1));
  EXPECT_FALSE(j.at("pass").boolean());
  EXPECT_EQ(j.at("tensors").items().at(0).at("exact").integer(), 3);
  const std::string csv = tools::report_to_csv(r);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
  const std::string html = tools::report_to_html(r, a, b, {});
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained: no scripts,
  EXPECT_EQ(html.find("src="), std::string::npos);      // nothing loaded from elsewhere
  EXPECT_EQ(html.find("href="), std::string::npos);
}

// `--json -` (or --csv/--html) puts that report on stdout and the text summary on stderr.
TEST(Compare, ReportToStdout) {
  const std::string model = testdata_dir() + "/models/mobilenetv2-12-int8.onnx";
  const std::string image = testdata_dir() + "/images/cat.jpg";
  if (!std::filesystem::exists(model) || !std::filesystem::exists(image)) GTEST_SKIP() << "no " << model;
  const std::string cli = binary_dir() + "/quint", dump = temp_dir() + "/stdout-dump";
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << "no CLI at " << cli;
  std::string log;
  ASSERT_EQ(run_command(cli + " dump '" + model + "' '" + image + "' --out '" + dump + "'", &log), 0) << log;
  log.clear();
  ASSERT_EQ(run_command("(" + cli + " compare '" + dump + "' '" + dump + "' --json - 2>/dev/null)", &log), 0) << log;
  tools::Json j = tools::Json::parse(log);
  EXPECT_TRUE(j.at("pass").boolean());
  EXPECT_GT(j.at("tensors").items().size(), 50u);
  log.clear();
  EXPECT_EQ(run_command(cli + " compare '" + dump + "' '" + dump + "' --json - --csv -", &log), 1);
  EXPECT_NE(log.find("only one of"), std::string::npos) << log;
}

// Renders the HTML report of a real comparison in headless Chromium and checks the screenshot
// shows something: many non-white pixels and both colours of the chart.
TEST(Compare, HtmlReportRendersInChromium) {
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "Debian's chromium is not installed (scripts/setup.sh installs it)";
  LoadedDump a, b;
  std::vector<uint8_t> va(64 * 14 * 14), vb;
  for (size_t i = 0; i < va.size(); ++i) va[i] = static_cast<uint8_t>(i * 7);
  vb = va;
  for (size_t i = 0; i < vb.size(); i += 13) vb[i] = static_cast<uint8_t>(vb[i] + 1);
  for (int layer = 0; layer < 12; ++layer) {
    add(a, "layer" + std::to_string(layer), u8({1, 64, 14, 14}, va), qp(0.1f, 0));
    add(b, "layer" + std::to_string(layer), u8({1, 64, 14, 14}, layer % 3 ? va : vb), qp(0.1f, 0));
  }
  auto r = tools::compare_dumps(a, b, {}, CompareOptions{});
  r.mode = "chained";
  const std::string html_path = temp_dir() + "/report.html";
  std::ofstream(html_path) << tools::report_to_html(r, a, b, {});
  const std::string png = temp_dir() + "/report.png";
  std::filesystem::remove(png);
  const std::string cmd = chromium + " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                          "--disable-background-networking --disable-component-update --disable-sync "
                          "--user-data-dir=" + temp_dir() + "/chromium-profile --window-size=1200,900 --screenshot=" + png +
                          " file://" + html_path;
  std::string log;
  run_command(cmd, &log);
  ASSERT_TRUE(std::filesystem::exists(png)) << "no screenshot; chromium said:\n" << log;
  tools::ImageOptions raw;
  raw.resize = 0;
  raw.crop = 0;
  raw.mean = {0, 0, 0};
  raw.std = {1, 1, 1};
  const Tensor img = tools::load_image(png, raw);
  const int64_t hw = img.dim(2) * img.dim(3);
  const float* p = img.data<float>();
  int64_t non_white = 0, greenish = 0, reddish = 0;
  for (int64_t i = 0; i < hw; ++i) {
    const float r_ = p[i], g = p[hw + i], bl = p[2 * hw + i];
    non_white += (r_ + g + bl) < 2.9f;
    greenish += g > r_ + 0.15f && g > bl + 0.15f;
    reddish += r_ > g + 0.25f && r_ > bl + 0.25f;
  }
  EXPECT_GT(non_white, hw / 100) << "the screenshot is (nearly) blank";
  EXPECT_GT(greenish, 100) << "no passing (green) bars drawn";
  EXPECT_GT(reddish, 100) << "no failing (red) bars drawn";
}

}  // namespace
}  // namespace quint::test
