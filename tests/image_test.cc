// Tests of tools/image.cc (quint::tools::load_image): decoding, the Pillow-compatible resize,
// torchvision's center crop, normalization, error reporting, and a comparison with torchvision's
// own preprocessing (tests/scripts/preprocess_reference.py) when Python with torchvision exists.
//
// Optional configuration (environment):
//   QUINT_PYTHON              interpreter for the reference script (default /usr/bin/python3)
//   QUINT_PREPROCESS_SCRIPT   path of preprocess_reference.py (default: the compile-time
//                             QUINT_PREPROCESS_SCRIPT macro, else scripts/ next to this file)
//   QUINT_TEST_IMAGES         extra ':'-separated JPEG/PNG/BMP files to compare with torchvision
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "image.h"
#include "npy.h"
#include "test_paths.h"

#include "stb_write.h"

namespace fs = std::filesystem;
using quint::Tensor;
using quint::tools::ImageOptions;
using quint::tools::load_image;

namespace {

class ImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "quint_image_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new fs::path(tmpl);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  static fs::path* dir_;
};
fs::path* ImageTest::dir_ = nullptr;

// An interleaved 8-bit image with `comp` channels.
struct Pixels {
  int w, h, comp;
  std::vector<uint8_t> v;
  Pixels(int w_, int h_, int comp_) : w(w_), h(h_), comp(comp_), v(size_t(w_) * h_ * comp_) {}
  uint8_t& at(int x, int y, int c) { return v[(size_t(y) * w + x) * comp + c]; }
};

std::string write_png(const std::string& p, const Pixels& px) {
  if (!stbi_write_png(p.c_str(), px.w, px.h, px.comp, px.v.data(), px.w * px.comp))
    throw std::runtime_error("cannot write " + p);
  return p;
}

std::string write_bmp(const std::string& p, const Pixels& px) {
  if (!stbi_write_bmp(p.c_str(), px.w, px.h, px.comp, px.v.data()))
    throw std::runtime_error("cannot write " + p);
  return p;
}

std::string write_bytes(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

void put_le(std::string& s, size_t at, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) s[at + i] = char((v >> (8 * i)) & 0xff);
}

// A 24-bit BMP header (BITMAPINFOHEADER) claiming w x h, followed by `data_bytes` zero bytes.
std::string bmp_header(int32_t w, int32_t h, size_t data_bytes) {
  std::string s(54 + data_bytes, '\0');
  s[0] = 'B';
  s[1] = 'M';
  put_le(s, 2, uint32_t(s.size()), 4);
  put_le(s, 10, 54, 4);  // pixel data offset
  put_le(s, 14, 40, 4);  // info header size
  put_le(s, 18, uint32_t(w), 4);
  put_le(s, 22, uint32_t(h), 4);
  put_le(s, 26, 1, 2);   // planes
  put_le(s, 28, 24, 2);  // bits per pixel
  return s;
}

uint32_t crc32(const std::string& s, size_t from, size_t to) {
  uint32_t c = 0xffffffffu;
  for (size_t i = from; i < to; ++i) {
    c ^= uint8_t(s[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A PNG signature and IHDR chunk (8-bit RGB) claiming w x h, and nothing else.
std::string png_header(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  std::string chunk(4 + 4 + 13 + 4, '\0');
  auto be = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) chunk[at + i] = char((v >> (24 - 8 * i)) & 0xff);
  };
  be(0, 13);
  chunk.replace(4, 4, "IHDR");
  be(8, w);
  be(12, h);
  chunk[16] = 8;  // bit depth
  chunk[17] = 2;  // color type RGB
  be(21, crc32(chunk, 4, 21));
  return s + chunk;
}

float norm(int v, int c, const ImageOptions& o = {}) {
  const float x = static_cast<float>(v) / 255.0f;
  return (x - o.mean[c]) / o.std[c];
}

float at(const Tensor& t, int c, int y, int x) {
  const int64_t h = t.dim(2), w = t.dim(3);
  return t.data<float>()[(c * h + y) * w + x];
}

// Runs `f`, expects a quint::Error whose message names `file` and contains `part`.
template <class F>
void expect_error(F f, const std::string& file, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error for " << file;
  } catch (const quint::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "expected '" << part << "' in: " << msg;
  }
}

TEST_F(ImageTest, DefaultPipelineShapeAndConstantColor) {
  Pixels px(300, 200, 3);
  for (int y = 0; y < px.h; ++y)
    for (int x = 0; x < px.w; ++x) {
      px.at(x, y, 0) = 10;
      px.at(x, y, 1) = 128;
      px.at(x, y, 2) = 250;
    }
  Tensor t = load_image(write_png(path("const.png"), px));
  ASSERT_EQ(t.dtype(), quint::DType::Float32);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 224, 224}));
  const int rgb[3] = {10, 128, 250};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; ++y)
      for (int x = 0; x < 224; ++x) ASSERT_EQ(at(t, c, y, x), norm(rgb[c], c)) << c << " " << y << " " << x;
}

// Without resize and crop the output is the image itself: NCHW, channels in RGB order.
void check_identity(const std::string& file, Pixels& px) {
  ImageOptions o;
  o.resize = 0;
  o.crop = 0;
  Tensor t = load_image(file, o);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, px.h, px.w}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < px.h; ++y)
      for (int x = 0; x < px.w; ++x) EXPECT_EQ(at(t, c, y, x), norm(px.at(x, y, c), c));
}

Pixels gradient(int w, int h) {
  Pixels px(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.at(x, y, 0) = uint8_t(x * 17 + 3);
      px.at(x, y, 1) = uint8_t(y * 29 + 5);
      px.at(x, y, 2) = uint8_t((x * 7 + y * 13) ^ 0x5a);
    }
  return px;
}

TEST_F(ImageTest, NoResizeNoCropKeepsPixelsPng) {
  Pixels px = gradient(5, 4);
  check_identity(write_png(path("grad.png"), px), px);
}

TEST_F(ImageTest, NoResizeNoCropKeepsPixelsBmp) {
  Pixels px = gradient(7, 3);  // rows padded to 4 bytes in the file
  check_identity(write_bmp(path("grad.bmp"), px), px);
}

// torchvision: offset = int(round((size - crop) / 2.0)) with Python's round-half-to-even.
TEST_F(ImageTest, CenterCropOffsetsRoundLikePython) {
  struct Case {
    int w, h, crop, ox, oy;
  };
  for (Case k : {Case{11, 7, 4, 4, 2},   // 3.5 -> 4, 1.5 -> 2
                 Case{9, 9, 4, 2, 2},    // 2.5 -> 2
                 Case{10, 6, 5, 2, 0}})  // 2.5 -> 2, 0.5 -> 0
  {
    Pixels px = gradient(k.w, k.h);
    std::string f = write_png(path("crop.png"), px);
    ImageOptions o;
    o.resize = 0;
    o.crop = k.crop;
    Tensor t = load_image(f, o);
    ASSERT_EQ(t.shape(), (quint::Shape{1, 3, k.crop, k.crop}));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < k.crop; ++y)
        for (int x = 0; x < k.crop; ++x)
          ASSERT_EQ(at(t, c, y, x), norm(px.at(x + k.ox, y + k.oy, c), c))
              << k.w << "x" << k.h << " crop " << k.crop << " at " << x << "," << y;
  }
}

// torchvision pads with zeros (left/top get the smaller half) when the crop is larger.
TEST_F(ImageTest, CropLargerThanImagePadsWithZeros) {
  Pixels px = gradient(3, 2);
  ImageOptions o;
  o.resize = 0;
  o.crop = 6;
  Tensor t = load_image(write_png(path("pad.png"), px), o);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 6, 6}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 6; ++x) {
        const int sx = x - 1, sy = y - 2;  // pad left (6-3)//2 = 1, top (6-2)//2 = 2
        const bool inside = sx >= 0 && sx < 3 && sy >= 0 && sy < 2;
        EXPECT_EQ(at(t, c, y, x), norm(inside ? px.at(sx, sy, c) : 0, c)) << x << "," << y;
      }
}

TEST_F(ImageTest, GrayscaleIsReplicated) {
  Pixels px(6, 5, 1);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) px.at(x, y, 0) = uint8_t(x * 40 + y);
  ImageOptions o;
  o.resize = 0;
  o.crop = 0;
  Tensor t = load_image(write_png(path("gray.png"), px), o);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 5, 6}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 6; ++x) EXPECT_EQ(at(t, c, y, x), norm(px.at(x, y, 0), c));
}

// PIL's convert('RGB') drops alpha without blending; so must we.
TEST_F(ImageTest, AlphaIsDropped) {
  Pixels px(4, 3, 4);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 4; ++c) px.at(x, y, c) = uint8_t(x * 50 + y * 20 + c * 30 + 1);
  px.at(0, 0, 3) = 0;  // fully transparent pixel keeps its color
  ImageOptions o;
  o.resize = 0;
  o.crop = 0;
  Tensor t = load_image(write_png(path("rgba.png"), px), o);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 3, 4}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) EXPECT_EQ(at(t, c, y, x), norm(px.at(x, y, c), c));
}

TEST_F(ImageTest, OneByOneImageIsResizedUp) {
  Pixels px(1, 1, 3);
  px.at(0, 0, 0) = 200;
  px.at(0, 0, 1) = 3;
  px.at(0, 0, 2) = 77;
  for (const std::string& f : {write_png(path("one.png"), px), write_bmp(path("one.bmp"), px)}) {
    Tensor t = load_image(f);
    ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 224, 224})) << f;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 224; ++y)
        for (int x = 0; x < 224; ++x) ASSERT_EQ(at(t, c, y, x), norm(px.at(0, 0, c), c)) << f;
  }
}

// Pillow's antialiased bilinear, worked by hand. 2x4 -> short side 1 gives 1x2 (torchvision:
// int(1 * 4 / 2) = 2). Horizontal: both columns weigh 1/2. Vertical (scale 2, support 2): output
// row 0 reads rows 0..2 with weights 3/7, 3/7, 1/7; row 1 reads rows 1..3 with 1/7, 3/7, 3/7.
TEST_F(ImageTest, AntialiasedBilinearByHand) {
  Pixels px(2, 4, 1);
  const uint8_t v[4][2] = {{0, 100}, {70, 170}, {140, 240}, {210, 30}};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 2; ++x) px.at(x, y, 0) = v[y][x];
  ImageOptions o;
  o.resize = 1;
  o.crop = 0;
  Tensor t = load_image(write_png(path("aa.png"), px), o);
  ASSERT_EQ(t.shape(), (quint::Shape{1, 3, 2, 1}));
  // Rows after the horizontal pass: 50, 120, 190, 120.
  // (3*50 + 3*120 + 190) / 7 = 100; (120 + 3*190 + 3*120) / 7 = 150.
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(at(t, c, 0, 0), norm(100, c));
    EXPECT_EQ(at(t, c, 1, 0), norm(150, c));
  }
}

TEST_F(ImageTest, ResizedShapeFollowsTorchvision) {
  struct Case {
    int w, h, resize, want_w, want_h;
  };
  for (Case k : {Case{300, 200, 256, 384, 256}, Case{200, 301, 256, 256, 385},
                 Case{481, 323, 256, 381, 256},  // int(256 * 481 / 323) = 381
                 Case{10, 10, 7, 7, 7}, Case{3, 1000, 2, 2, 666}}) {
    std::string f = write_png(path("shape.png"), gradient(k.w, k.h));
    ImageOptions o;
    o.resize = k.resize;
    o.crop = 0;
    EXPECT_EQ(load_image(f, o).shape(), (quint::Shape{1, 3, k.want_h, k.want_w})) << k.w << "x" << k.h;
  }
}

TEST_F(ImageTest, CustomMeanStd) {
  Pixels px(2, 2, 3);
  for (auto& b : px.v) b = 51;
  ImageOptions o;
  o.resize = 0;
  o.crop = 0;
  o.mean = {0.f, 0.5f, 1.f};
  o.std = {1.f, 0.5f, 2.f};
  Tensor t = load_image(write_png(path("ms.png"), px), o);
  EXPECT_FLOAT_EQ(at(t, 0, 0, 0), 0.2f);
  EXPECT_FLOAT_EQ(at(t, 1, 1, 1), -0.6f);
  EXPECT_FLOAT_EQ(at(t, 2, 1, 0), -0.4f);
}

TEST_F(ImageTest, ErrorMissingFile) {
  std::string f = path("does_not_exist.png");
  expect_error([&] { load_image(f); }, f, "cannot open");
}

TEST_F(ImageTest, ErrorDirectory) {
  std::string f = path("a_directory.png");
  fs::create_directory(f);
  expect_error([&] { load_image(f); }, f, "");
}

TEST_F(ImageTest, ErrorEmptyFile) {
  std::string f = write_bytes(path("empty.jpg"), "");
  expect_error([&] { load_image(f); }, f, "empty");
}

TEST_F(ImageTest, ErrorGarbage) {
  std::string junk;
  for (int i = 0; i < 1000; ++i) junk += char((i * 7919) % 251);
  std::string f = write_bytes(path("garbage.png"), junk);
  expect_error([&] { load_image(f); }, f, "not a JPEG, PNG or BMP image");
}

TEST_F(ImageTest, ErrorCorruptData) {
  // A valid header followed by truncated / garbled pixel data.
  Pixels px = gradient(64, 64);
  std::string png_file = write_png(path("full.png"), px);
  std::ifstream in(png_file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string f = write_bytes(path("truncated.png"), bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_image(f); }, f, "cannot decode PNG: ");

  std::string garbled = bytes;
  for (size_t i = 60; i < garbled.size(); i += 3) garbled[i] = char(garbled[i] ^ 0xa5);
  f = write_bytes(path("garbled.png"), garbled);
  expect_error([&] { load_image(f); }, f, "cannot decode PNG: ");

  // stb_image would fill the missing rows with zeros; PIL refuses the file, and so do we.
  f = write_bytes(path("truncated.bmp"), bmp_header(64, 64, 100));
  expect_error([&] { load_image(f); }, f, "truncated BMP");
  std::string bmp = bmp_header(5, 3, 16 * 2 + 15);  // rows of 15 bytes padded to 16: complete
  f = write_bytes(path("complete.bmp"), bmp);
  EXPECT_EQ(load_image(f).shape(), (quint::Shape{1, 3, 224, 224}));

  std::string jpg_file = path("full.jpg");
  ASSERT_TRUE(stbi_write_jpg(jpg_file.c_str(), px.w, px.h, 3, px.v.data(), 90));
  std::ifstream jin(jpg_file, std::ios::binary);
  std::string jpg((std::istreambuf_iterator<char>(jin)), std::istreambuf_iterator<char>());
  f = write_bytes(path("header_cut.jpg"), jpg.substr(0, 100));  // cut before the frame header
  expect_error([&] { load_image(f); }, f, "corrupt or truncated JPEG header");
  f = write_bytes(path("data_cut.jpg"), jpg.substr(0, jpg.size() * 2 / 3));
  expect_error([&] { load_image(f); }, f, "cannot decode JPEG: corrupt or truncated image data");
}

TEST_F(ImageTest, ErrorHugeClaimedSizeRefusedBeforeDecoding) {
  // Headers only: decoding would need gigabytes; the refusal must come from the header check.
  std::string f = write_bytes(path("huge.bmp"), bmp_header(20000, 20000, 16));
  expect_error([&] { load_image(f); }, f, "more than the limit");
  f = write_bytes(path("huge.png"), png_header(16384, 16385));  // 2^28 + 16384 pixels
  expect_error([&] { load_image(f); }, f, "more than the limit");
}

TEST_F(ImageTest, MaxPixelsOption) {
  std::string f = write_png(path("20x20.png"), gradient(20, 20));
  ImageOptions o;
  o.resize = 0;
  o.crop = 0;
  o.max_pixels = 399;
  expect_error([&] { load_image(f, o); }, f, "20x20 = 400 pixels, more than the limit of 399");
  o.max_pixels = 400;
  EXPECT_EQ(load_image(f, o).shape(), (quint::Shape{1, 3, 20, 20}));
}

// A thin image resized without a crop would be enormous: refused, not allocated.
TEST_F(ImageTest, MaxPixelsLimitsTheOutput) {
  std::string f = write_png(path("thin.png"), gradient(1, 3000));
  ImageOptions o;
  o.crop = 0;  // 256 x 768000 output
  o.max_pixels = int64_t{1} << 24;
  expect_error([&] { load_image(f, o); }, f, "the output would be 256x768000");
  o.crop = 224;  // only the crop is computed
  EXPECT_EQ(load_image(f, o).shape(), (quint::Shape{1, 3, 224, 224}));
}

TEST_F(ImageTest, ErrorZeroSize) {
  std::string f = write_bytes(path("zero.bmp"), bmp_header(0, 5, 16));
  expect_error([&] { load_image(f); }, f, "");
  f = write_bytes(path("zero.png"), png_header(0, 5));
  expect_error([&] { load_image(f); }, f, "");
}

TEST_F(ImageTest, ErrorBadOptions) {
  std::string f = write_png(path("opts.png"), gradient(4, 4));
  ImageOptions o;
  o.resize = -1;
  expect_error([&] { load_image(f, o); }, f, "resize");
  o = {};
  o.crop = -5;
  expect_error([&] { load_image(f, o); }, f, "crop");
  o = {};
  o.std[1] = 0.f;
  expect_error([&] { load_image(f, o); }, f, "std");
}

// ---- comparison with torchvision ----------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string python() { return env_or("QUINT_PYTHON", "/usr/bin/python3"); }

std::string reference_script() {
#ifdef QUINT_PREPROCESS_SCRIPT
  std::string built_in = QUINT_PREPROCESS_SCRIPT;
#else
  std::string built_in = (fs::path(__FILE__).parent_path() / "scripts" / "preprocess_reference.py").string();
#endif
  return env_or("QUINT_PREPROCESS_SCRIPT", built_in);
}

// Empty when the reference can be computed, else the reason to skip.
std::string reference_unavailable() {
  if (!fs::exists(python())) return "no Python at " + python() + " (set QUINT_PYTHON)";
  if (!fs::exists(reference_script()))
    return "reference script not found at " + reference_script() + " (set QUINT_PREPROCESS_SCRIPT)";
  std::string probe = shell_quote(python()) + " -c 'import numpy, PIL, torchvision' >/dev/null 2>&1";
  if (std::system(probe.c_str()) != 0) return python() + " cannot import numpy, PIL and torchvision";
  return "";
}

struct Compared {
  double max_abs = 0;
  double mean_abs = 0;
  double frac_diff = 0;
};

Compared compare(const Tensor& got, const Tensor& want) {
  Compared r;
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) {
    r.max_abs = INFINITY;
    return r;
  }
  auto a = got.values<float>();
  auto b = want.values<float>();
  int64_t n_diff = 0;
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    r.max_abs = std::max(r.max_abs, d);
    sum += d;
    n_diff += a[i] != b[i];
  }
  r.mean_abs = sum / double(a.size());
  r.frac_diff = double(n_diff) / double(a.size());
  return r;
}

bool is_jpeg(const std::string& f) {
  std::string e = fs::path(f).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ".jpg" || e == ".jpeg";
}

// Runs the reference script on `images` with `flags`, then compares load_image(·, opts).
// The reference tensors are written to `out_dir`.
void compare_with_torchvision(const std::vector<std::string>& images, const std::string& flags,
                              const ImageOptions& opts, const std::string& tag, const fs::path& out_dir) {
  std::string cmd = shell_quote(python()) + " " + shell_quote(reference_script()) + " " + flags;
  std::vector<std::string> refs;
  for (size_t i = 0; i < images.size(); ++i) {
    refs.push_back((out_dir / ("ref_" + tag + "_" + std::to_string(i) + ".npy")).string());
    cmd += " " + shell_quote(images[i]) + " " + shell_quote(refs.back());
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // JPEG: stb_image's decoder (IDCT, chroma upsampling, YCbCr->RGB rounding) is not libjpeg-turbo;
  // decoded pixels differ by up to a few levels, and after the resize by at most 2 levels in
  // the test images. Allow 3 levels and a bounded fraction of differing values.
  const double level = 1.0 / 255.0 / 0.224;  // one uint8 step after Normalize (smallest std)
  for (size_t i = 0; i < images.size(); ++i) {
    Tensor want = quint::tools::read_npy(refs[i]);
    Tensor got = load_image(images[i], opts);
    Compared c = compare(got, want);
    std::error_code ec;
    fs::remove(refs[i], ec);
    std::cout << "[ torchvision ] " << tag << " " << images[i] << " " << quint::shape_str(got.shape())
              << ": max abs diff " << c.max_abs << ", mean abs diff " << c.mean_abs
              << ", values differing " << 100.0 * c.frac_diff << "%\n";
    if (is_jpeg(images[i])) {
      EXPECT_LE(c.max_abs, 3 * level + 1e-6) << images[i];
      EXPECT_LE(c.frac_diff, 0.15) << images[i];
      EXPECT_LE(c.mean_abs, 0.15 * level) << images[i];
    } else {
      EXPECT_EQ(c.max_abs, 0.0) << images[i] << ": lossless formats must match torchvision exactly";
    }
  }
}

TEST_F(ImageTest, MatchesTorchvision) {
  std::string why = reference_unavailable();
  if (!why.empty()) GTEST_SKIP() << "torchvision reference unavailable: " << why;

  // Synthetic images: noise (worst case for rounding), gradients, odd sizes, gray, alpha, BMP.
  std::vector<std::string> images;
  uint32_t seed = 12345;
  auto rnd = [&] { return seed = seed * 1664525u + 1013904223u, uint8_t(seed >> 24); };
  Pixels noise(517, 389, 3);
  for (auto& b : noise.v) b = rnd();
  images.push_back(write_png(path("noise.png"), noise));
  images.push_back(write_png(path("tall.png"), gradient(230, 701)));
  Pixels gray(333, 257, 1);
  for (auto& b : gray.v) b = rnd();
  images.push_back(write_png(path("gray_noise.png"), gray));
  Pixels rgba(300, 300, 4);
  for (auto& b : rgba.v) b = rnd();
  images.push_back(write_png(path("rgba_noise.png"), rgba));
  images.push_back(write_bmp(path("noise.bmp"), noise));
  Pixels tiny(3, 2, 3);
  for (auto& b : tiny.v) b = rnd();
  images.push_back(write_png(path("tiny.png"), tiny));
  // JPEGs written by stb_image_write (baseline, 4:2:0 at quality 90).
  images.push_back(path("noise.jpg"));
  ASSERT_TRUE(stbi_write_jpg(images.back().c_str(), noise.w, noise.h, 3, noise.v.data(), 90));
  images.push_back(path("smooth.jpg"));
  Pixels smooth = gradient(640, 480);
  ASSERT_TRUE(stbi_write_jpg(images.back().c_str(), smooth.w, smooth.h, 3, smooth.v.data(), 90));

  // Real photographs, when present.
  const std::string testdata = quint::test::testdata_dir();
  std::vector<std::string> real = {testdata + "/images/cat.jpg", testdata + "/images/fish-bike.jpg",
                                   "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
                                   "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
                                   "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"};
  std::string extra = env_or("QUINT_TEST_IMAGES", "");
  for (size_t b = 0; b < extra.size();) {
    size_t e = extra.find(':', b);
    if (e == std::string::npos) e = extra.size();
    if (e > b) real.push_back(extra.substr(b, e - b));
    b = e + 1;
  }
  for (const std::string& f : real)
    if (fs::exists(f)) images.push_back(f);

  compare_with_torchvision(images, "", ImageOptions{}, "default", *dir_);

  // Other geometry: upscaling the short side, and a crop wider than the resized short side
  // (zero padding on one axis, rounded offset on the other).
  ImageOptions o;
  o.resize = 333;
  o.crop = 400;
  o.mean = {0.5f, 0.25f, 0.125f};
  o.std = {0.3f, 0.6f, 0.9f};
  compare_with_torchvision({images[0], images[1], images[2], images[5]},
                           "--resize 333 --crop 400 --mean 0.5 0.25 0.125 --std 0.3 0.6 0.9", o, "custom",
                           *dir_);
}

}  // namespace
