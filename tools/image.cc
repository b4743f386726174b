// Image decoding (stb_image) and torchvision-compatible ImageNet preprocessing.
//
// The resize reproduces Pillow's Image.resize(BILINEAR) for 8-bit images, which is what
// torchvision's Resize does on PIL images: a separable convolution with a triangle filter whose
// support grows with the downscale factor (antialiasing), weights normalized to sum 1 in double
// precision and then rounded to 22-bit fixed point, the horizontal pass first, each pass rounding
// and clipping to uint8. Every output pixel depends only on its own taps, so only the pixels that
// survive the center crop are computed; the values are the same as resizing the whole image.
#include "image.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

// Private, static copy of stb_image restricted to the formats we accept: formats without a magic
// number (TGA) would otherwise "decode" arbitrary garbage, and a private copy keeps its global
// state (flip flag) away from any other user of stb_image in the process.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace quint::tools {
namespace {

[[noreturn]] void fail_in(const std::string& path, std::string reason) {
  throw Error(std::move(reason), ErrorContext{path});
}

// The whole file; stb_image decodes from memory (its length argument is an int).
std::vector<unsigned char> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail_in(path, cat("cannot open image: ", std::strerror(errno)));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  std::vector<unsigned char> data;
  constexpr size_t kChunk = size_t{1} << 20;
  constexpr size_t kMax = INT_MAX;
  for (;;) {
    size_t old = data.size();
    data.resize(old + kChunk);
    size_t got = std::fread(data.data() + old, 1, kChunk, f);
    data.resize(old + got);
    if (got < kChunk || data.size() > kMax) break;
  }
  if (std::ferror(f)) fail_in(path, cat("cannot read image: ", std::strerror(errno)));
  if (data.size() > kMax) fail_in(path, "image file is larger than 2 GiB");
  if (data.empty()) fail_in(path, "image file is empty");
  return data;
}

// stb_image's reason, made printable: some reasons quote bytes of the file (a PNG chunk type).
std::string stb_reason() {
  const char* r = stbi_failure_reason();
  std::string out;
  for (; r && *r; ++r) {
    const unsigned char c = static_cast<unsigned char>(*r);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out.empty() ? "corrupt data (stb_image gave no details)" : out;
}

struct StbFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};

// Interleaved 8-bit RGB, rows of `width * 3` bytes.
struct Rgb8 {
  int width = 0;
  int height = 0;
  std::unique_ptr<unsigned char, StbFree> pixels;
};

const char* sniff_format(const std::vector<unsigned char>& f) {
  auto starts = [&](const char* magic, size_t n) {
    return f.size() >= n && std::memcmp(f.data(), magic, n) == 0;
  };
  if (starts("\xff\xd8\xff", 3)) return "JPEG";
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (starts("BM", 2)) return "BMP";
  return nullptr;
}

uint32_t le(const std::vector<unsigned char>& f, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | f[at + i];
  return v;
}

// stb_image reads zeros past the end of an uncompressed BMP instead of failing (PIL refuses such
// files as truncated); check that the pixel rows are all there.
void check_bmp_complete(const std::string& path, const std::vector<unsigned char>& f) {
  if (f.size() < 30) return;  // stb_image has already judged the header
  const uint32_t offset = le(f, 10, 4), info_size = le(f, 14, 4);
  int64_t w, h;
  uint32_t bpp, compression = 0;
  if (info_size == 12) {  // OS/2 BITMAPCOREHEADER
    w = le(f, 18, 2);
    h = le(f, 20, 2);
    bpp = le(f, 24, 2);
  } else {
    if (f.size() < 34) return;
    w = static_cast<int32_t>(le(f, 18, 4));
    h = static_cast<int32_t>(le(f, 22, 4));
    bpp = le(f, 28, 2);
    compression = le(f, 30, 4);
  }
  // BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: fixed-size rows padded to 4 bytes.
  if (compression != 0 && compression != 3 && compression != 6) return;
  if (w <= 0 || bpp == 0 || bpp > 64 || h == 0) return;  // stb_image judges such headers
  h = h < 0 ? -h : h;
  const int64_t row = (w * bpp + 31) / 32 * 4;     // w < 2^31: no overflow
  const int64_t last_row = (w * bpp + 7) / 8;      // the last row's padding may be missing
  const int64_t avail = static_cast<int64_t>(f.size()) - offset;
  if (avail < last_row || (avail - last_row) / row < h - 1)
    fail_in(path, cat("truncated BMP: ", h, " rows of ", row, " bytes from offset ", offset,
                      " do not fit in the file's ", f.size(), " bytes"));
}

Rgb8 decode(const std::string& path, int64_t max_pixels) {
  std::vector<unsigned char> file = read_file(path);
  const int len = static_cast<int>(file.size());
  const char* format = sniff_format(file);
  int w = 0, h = 0, comp = 0;
  // Header only: refuse absurd sizes before allocating anything for the pixels.
  if (!stbi_info_from_memory(file.data(), len, &w, &h, &comp)) {
    if (!format) fail_in(path, "not a JPEG, PNG or BMP image (unrecognized file signature)");
    // stb_image tried every format; its last reason is not about this one.
    fail_in(path, cat("corrupt or truncated ", format, " header"));
  }
  if (w <= 0 || h <= 0) fail_in(path, cat("image has zero size (", w, "x", h, ")"));
  const int64_t pixels = int64_t{w} * h;
  if (pixels > max_pixels)
    fail_in(path, cat("image is ", w, "x", h, " = ", pixels, " pixels, more than the limit of ",
                      max_pixels, " (ImageOptions::max_pixels)"));
  if (format && std::strcmp(format, "BMP") == 0) check_bmp_complete(path, file);
  Rgb8 img;
  // Gray is replicated, alpha dropped (not blended) -- as PIL's convert('RGB').
  img.pixels.reset(stbi_load_from_memory(file.data(), len, &img.width, &img.height, &comp, 3));
  if (!img.pixels) {
    // After a failure inside one format, stb_image's reason can be another decoder's ("bad png
    // sig" for a truncated JPEG): name the format we know instead.
    if (format) fail_in(path, cat("cannot decode ", format, ": corrupt or truncated image data"));
    fail_in(path, cat("cannot decode image: ", stb_reason()));
  }
  if (img.width != w || img.height != h)
    fail_in(path, cat("decoded size ", img.width, "x", img.height, " differs from the header's ", w,
                      "x", h));
  return img;
}

// ---- Pillow-compatible bilinear resampling -------------------------------------------------

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images
constexpr int32_t kHalf = int32_t{1} << (kPrecisionBits - 1);

inline unsigned char clip8(int32_t acc) {
  int32_t v = acc >> kPrecisionBits;  // arithmetic shift (C++20)
  return static_cast<unsigned char>(v < 0 ? 0 : v > 255 ? 255 : v);
}

inline double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Filter taps of the outputs [out_begin, out_end) when resampling in_size samples to out_size.
// Output o reads inputs first[o]..first[o]+count[o]-1 with fixed-point weights
// weights[o * stride + i]. The double arithmetic follows Pillow's precompute_coeffs operation by
// operation so that the rounded weights are identical.
struct Taps {
  int stride = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
  int lo() const { return first.front(); }
  int hi() const {
    int h = 0;
    for (size_t i = 0; i < first.size(); ++i) h = std::max(h, first[i] + count[i]);
    return h;
  }
};

Taps bilinear_taps(int in_size, int out_size, int out_begin, int out_end) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle filter's support is 1
  const double inv_filterscale = 1.0 / filterscale;
  Taps t;
  t.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int n_out = out_end - out_begin;
  t.first.resize(n_out);
  t.count.resize(n_out);
  t.weights.assign(static_cast<size_t>(n_out) * t.stride, 0);
  std::vector<double> w(t.stride);
  for (int o = out_begin; o < out_end; ++o) {
    const double center = (o + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);  // truncation, as Pillow's (int) cast
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = std::min(hi - lo, t.stride);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      w[i] = triangle((i + lo - center + 0.5) * inv_filterscale);
      sum += w[i];
    }
    int32_t* k = &t.weights[static_cast<size_t>(o - out_begin) * t.stride];
    for (int i = 0; i < n; ++i) {
      double v = sum != 0.0 ? w[i] / sum : w[i];
      k[i] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits)
                                        : 0.5 + v * (1 << kPrecisionBits));
    }
    t.first[o - out_begin] = lo;
    t.count[o - out_begin] = std::max(n, 0);
  }
  return t;
}

// A read-only window of an interleaved RGB image.
struct View {
  const unsigned char* data;
  size_t stride;  // bytes per row
  int width, height;
  const unsigned char* row(int y) const { return data + static_cast<size_t>(y) * stride; }
};

struct Buffer {
  std::vector<unsigned char> bytes;
  int width = 0, height = 0;
  View view() const {
    return {bytes.data(), static_cast<size_t>(width) * 3, width, height};
  }
};

// Horizontal pass: rows [row_begin, row_end) of `src`, outputs described by `t`.
Buffer resample_horizontal(const View& src, int row_begin, int row_end, const Taps& t) {
  Buffer out;
  out.width = static_cast<int>(t.first.size());
  out.height = row_end - row_begin;
  out.bytes.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const unsigned char* s = src.row(row_begin + y);
    unsigned char* d = out.bytes.data() + static_cast<size_t>(y) * out.width * 3;
    for (int x = 0; x < out.width; ++x) {
      const int32_t* k = &t.weights[static_cast<size_t>(x) * t.stride];
      const unsigned char* p = s + static_cast<size_t>(t.first[x]) * 3;
      int32_t a0 = kHalf, a1 = kHalf, a2 = kHalf;
      for (int i = 0, n = t.count[x]; i < n; ++i) {
        a0 += p[3 * i + 0] * k[i];
        a1 += p[3 * i + 1] * k[i];
        a2 += p[3 * i + 2] * k[i];
      }
      d[3 * x + 0] = clip8(a0);
      d[3 * x + 1] = clip8(a1);
      d[3 * x + 2] = clip8(a2);
    }
  }
  return out;
}

// Vertical pass: `src` row r holds input row r + row_offset.
Buffer resample_vertical(const View& src, int row_offset, const Taps& t) {
  Buffer out;
  out.width = src.width;
  out.height = static_cast<int>(t.first.size());
  const size_t n_row = static_cast<size_t>(out.width) * 3;
  out.bytes.resize(n_row * out.height);
  std::vector<int32_t> acc(n_row);
  for (int y = 0; y < out.height; ++y) {
    std::fill(acc.begin(), acc.end(), kHalf);
    const int32_t* k = &t.weights[static_cast<size_t>(y) * t.stride];
    for (int i = 0, n = t.count[y]; i < n; ++i) {
      const unsigned char* s = src.row(t.first[y] + i - row_offset);
      const int32_t ki = k[i];
      for (size_t j = 0; j < n_row; ++j) acc[j] += s[j] * ki;
    }
    unsigned char* d = out.bytes.data() + n_row * y;
    for (size_t j = 0; j < n_row; ++j) d[j] = clip8(acc[j]);
  }
  return out;
}

// The pixels [x0,x1) x [y0,y1) of `src` resized to out_w x out_h.
Buffer resize_window(const View& src, int out_w, int out_h, int x0, int x1, int y0, int y1) {
  const bool need_h = out_w != src.width;
  const bool need_v = out_h != src.height;
  Taps tv;
  int row_begin = y0, row_end = y1;  // input rows the vertical pass reads
  if (need_v) {
    tv = bilinear_taps(src.height, out_h, y0, y1);
    row_begin = tv.lo();
    row_end = tv.hi();
  }
  Buffer horiz;
  View mid{};
  if (need_h) {
    horiz = resample_horizontal(src, row_begin, row_end, bilinear_taps(src.width, out_w, x0, x1));
    mid = horiz.view();
  } else {
    mid = View{src.row(row_begin) + static_cast<size_t>(x0) * 3, src.stride, x1 - x0,
               row_end - row_begin};
  }
  if (need_v) return resample_vertical(mid, row_begin, tv);
  Buffer out;
  out.width = mid.width;
  out.height = mid.height;
  out.bytes.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    std::memcpy(out.bytes.data() + static_cast<size_t>(y) * out.width * 3, mid.row(y),
                static_cast<size_t>(out.width) * 3);
  return out;
}

// Python's round(d / 2.0) for d >= 0: halves go to the even neighbour.
int half_round_even(int d) {
  int q = d / 2;
  if ((d & 1) && (q & 1)) ++q;
  return q;
}

}  // namespace

Tensor load_image(const std::string& path, const ImageOptions& opts) {
  if (opts.resize < 0) fail_in(path, cat("ImageOptions::resize must be >= 0, got ", opts.resize));
  if (opts.crop < 0) fail_in(path, cat("ImageOptions::crop must be >= 0, got ", opts.crop));
  for (int c = 0; c < 3; ++c)
    if (!(opts.std[c] != 0.0f) || !std::isfinite(opts.std[c]) || !std::isfinite(opts.mean[c]))
      fail_in(path, cat("ImageOptions: std must be finite and nonzero, mean finite (channel ", c,
                        ": mean ", opts.mean[c], ", std ", opts.std[c], ")"));

  Rgb8 img = decode(path, opts.max_pixels);
  const int w0 = img.width, h0 = img.height;

  // Size after Resize(resize), computed as torchvision's _compute_resized_output_size.
  int rw = w0, rh = h0;
  if (opts.resize > 0) {
    const bool w_short = w0 <= h0;
    const int64_t shorter = w_short ? w0 : h0, longer = w_short ? h0 : w0;
    const double new_long = static_cast<double>(int64_t{opts.resize} * longer) / shorter;
    if (new_long >= static_cast<double>(1 << 24))
      fail_in(path, cat("resizing the ", w0, "x", h0, " image to a short side of ", opts.resize,
                        " gives a long side of ", static_cast<int64_t>(new_long), " pixels"));
    const int short_side = opts.resize, long_side = static_cast<int>(new_long);
    rw = w_short ? short_side : long_side;
    rh = w_short ? long_side : short_side;
  }

  // CenterCrop geometry: zero padding when the crop is larger, then offsets rounded as Python does.
  const int cw = opts.crop > 0 ? opts.crop : rw;
  const int ch = opts.crop > 0 ? opts.crop : rh;
  if (int64_t{cw} * ch > opts.max_pixels)
    fail_in(path, cat("the output would be ", cw, "x", ch, " = ", int64_t{cw} * ch,
                      " pixels, more than the limit of ", opts.max_pixels,
                      " (ImageOptions::max_pixels)"));
  const int pad_left = cw > rw ? (cw - rw) / 2 : 0;
  const int pad_top = ch > rh ? (ch - rh) / 2 : 0;
  const int padded_w = cw > rw ? cw : rw;
  const int padded_h = ch > rh ? ch : rh;
  // Output pixel (x, y) is resized pixel (x + ox, y + oy); outside the resized image it is 0.
  const int ox = half_round_even(padded_w - cw) - pad_left;
  const int oy = half_round_even(padded_h - ch) - pad_top;
  const int x0 = std::max(ox, 0), x1 = std::min(ox + cw, rw);
  const int y0 = std::max(oy, 0), y1 = std::min(oy + ch, rh);

  View src{img.pixels.get(), static_cast<size_t>(w0) * 3, w0, h0};
  Buffer window;
  View win{};
  if (rw == w0 && rh == h0) {
    win = View{src.row(y0) + static_cast<size_t>(x0) * 3, src.stride, x1 - x0, y1 - y0};
  } else {
    window = resize_window(src, rw, rh, x0, x1, y0, y1);
    win = window.view();
  }

  // ToTensor (v / 255) then Normalize ((x - mean) / std), in float32 as torch computes them.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = (x - opts.mean[c]) / opts.std[c];
    }

  Tensor out(DType::Float32, {1, 3, ch, cw});
  float* o = out.data<float>();
  const size_t plane = static_cast<size_t>(cw) * ch;
  for (int c = 0; c < 3; ++c) {
    float* p = o + plane * c;
    std::fill(p, p + plane, lut[c][0]);
    for (int y = y0; y < y1; ++y) {
      const unsigned char* s = win.row(y - y0);
      float* d = p + static_cast<size_t>(y - oy) * cw;
      for (int x = x0; x < x1; ++x) d[x - ox] = lut[c][s[3 * (x - x0) + c]];
    }
  }
  return out;
}

}  // namespace quint::tools
