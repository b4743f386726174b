// Differential tests: every SIMD variant of QLinearConv equals the reference kernel exactly, on
// random shapes, strides, pads, dilations, groups, zero points, types, and on the extremes where
// a saturating int16 multiply (AVX2's vpmaddubsw) would go wrong.
#include <cstdlib>
#include <gtest/gtest.h>

#include <random>

#include "op_harness.h"
#include "x86/cpu.h"

namespace quint::test {
namespace {

struct ConvCase {
  int64_t n = 1, c = 8, h = 9, w = 9, m = 16, kh = 3, kw = 3, group = 1;
  int64_t stride = 1, pad = 1, dil = 1;
  DType xt = DType::UInt8, wt = DType::Int8, yt = DType::UInt8;
  bool per_channel = true, bias = true, wzp_nonzero = false;
  enum class Fill { Random, Max, Min } fill = Fill::Random;
  int threads = 2;
  float y_scale_factor = 1;  // below 1: multipliers above 1 (the kernels' float-clamp epilogue)
};

Tensor random_q8(DType t, Shape shape, std::mt19937& rng, ConvCase::Fill fill) {
  Tensor out(t, std::move(shape));
  std::uniform_int_distribution<int> d(t == DType::Int8 ? -128 : 0, t == DType::Int8 ? 127 : 255);
  auto* p = static_cast<uint8_t*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) {
    int v = d(rng);
    if (fill == ConvCase::Fill::Max) v = t == DType::Int8 ? 127 : 255;
    if (fill == ConvCase::Fill::Min) v = t == DType::Int8 ? -128 : 0;
    p[i] = static_cast<uint8_t>(v);
  }
  return out;
}

Tensor q8_scalar(DType t, int v) {
  Tensor s(t, {});
  static_cast<uint8_t*>(s.raw())[0] = static_cast<uint8_t>(v);
  return s;
}

std::vector<Tensor> run_case(const ConvCase& cc, uint32_t seed, const std::string& isa, bool nhwc_input) {
  std::mt19937 rng(seed);
  const Tensor x = random_q8(cc.xt, {cc.n, cc.c, cc.h, cc.w}, rng, cc.fill);
  ConvCase::Fill wfill = cc.fill == ConvCase::Fill::Random ? ConvCase::Fill::Random
                         : (cc.fill == ConvCase::Fill::Max ? ConvCase::Fill::Min : ConvCase::Fill::Max);
  const Tensor w = random_q8(cc.wt, {cc.m, cc.c / cc.group, cc.kh, cc.kw}, rng, wfill);
  std::uniform_real_distribution<float> sd(0.001f, 0.05f);
  const int lo = cc.xt == DType::Int8 ? -128 : 0;
  std::uniform_int_distribution<int> zd(lo, lo + 255);
  const int wlo = cc.wt == DType::Int8 ? -128 : 0;
  std::uniform_int_distribution<int> wzd(wlo, wlo + 255);
  const int64_t ns = cc.per_channel ? cc.m : 1;
  std::vector<float> ws(static_cast<size_t>(ns));
  for (auto& v : ws) v = sd(rng) * 0.05f;
  Tensor wz(cc.wt, cc.per_channel ? Shape{cc.m} : Shape{});
  for (int64_t i = 0; i < wz.numel(); ++i)
    static_cast<uint8_t*>(wz.raw())[i] =
        static_cast<uint8_t>(cc.wzp_nonzero ? wzd(rng) : (cc.wt == DType::UInt8 ? 128 : 0));
  std::vector<int32_t> b(static_cast<size_t>(cc.m));
  std::uniform_int_distribution<int32_t> bd(-20000, 20000);
  for (auto& v : b) v = bd(rng);
  OpRun r;
  r.op_type = "QLinearConv";
  r.attrs.set("kernel_shape", std::vector<int64_t>{cc.kh, cc.kw});
  r.attrs.set("strides", std::vector<int64_t>{cc.stride, cc.stride});
  r.attrs.set("pads", std::vector<int64_t>{cc.pad, cc.pad, cc.pad, cc.pad});
  r.attrs.set("dilations", std::vector<int64_t>{cc.dil, cc.dil});
  r.attrs.set("group", cc.group);
  OpInput xin = dyn(x);
  xin.nhwc = nhwc_input;
  r.inputs = {xin,
              cst(Tensor::scalar<float>(sd(rng))),
              cst(q8_scalar(cc.xt, zd(rng))),
              cst(w),
              cst(cc.per_channel ? Tensor::from_vector<float>({cc.m}, ws) : Tensor::scalar<float>(ws[0])),
              cst(wz),
              cst(Tensor::scalar<float>(sd(rng) * 0.02f * cc.y_scale_factor)),
              cst(q8_scalar(cc.yt, cc.yt == DType::Int8 ? zd(rng) / 2 : 100))};
  if (cc.bias) r.inputs.push_back(cst(Tensor::from_vector<int32_t>({cc.m}, b)));
  r.options.isa = isa;
  r.threads = cc.threads;
  return run_op(r);
}

std::vector<std::string> fast_isas() {
  std::vector<std::string> out;
  for (auto isa : {ops::x86::Isa::Avx2, ops::x86::Isa::AvxVnni, ops::x86::Isa::Avx512Vnni})
    if (ops::x86::isa_supported(isa)) out.push_back(ops::x86::isa_name(isa));
  return out;
}

void expect_all_isas_match(const ConvCase& cc, uint32_t seed) {
  const Tensor ref = run_case(cc, seed, "ref", false).at(0);
  for (const std::string& isa : fast_isas())
    for (bool nhwc : {false, true}) {
      SCOPED_TRACE("isa " + isa + (nhwc ? " NHWC input" : " NCHW input") + " seed " + std::to_string(seed));
      EXPECT_TRUE(tensors_equal(run_case(cc, seed, isa, nhwc).at(0), ref));
    }
}

TEST(QLinearConvIsa, HasFastVariantsOnThisMachine) {
  // Under an emulated CPU (ctest qemu_avx2_only), the dispatcher must pick exactly that CPU's
  // best variant, or the emulated run would not test what it claims to.
  if (const char* want = std::getenv("QUINT_EXPECT_BEST_ISA")) {
    EXPECT_EQ(std::string(ops::x86::isa_name(ops::x86::best_isa())), want);
  }
  if (fast_isas().empty()) GTEST_SKIP() << "no AVX2 on this CPU: only the reference kernel exists";
  EXPECT_FALSE(fast_isas().empty());
}

TEST(QLinearConvIsa, RandomShapesMatchReference) {
  std::mt19937 rng(1234);
  for (uint32_t seed = 0; seed < 60; ++seed) {
    ConvCase cc;
    auto pick = [&](std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); };
    cc.group = pick({1, 1, 1, 2, 4});
    cc.c = cc.group * pick({1, 2, 3, 4, 5, 8, 12, 16});
    cc.m = cc.group * pick({1, 3, 8, 16, 17, 32, 33, 40});
    cc.h = pick({1, 3, 5, 7, 11, 14});
    cc.w = pick({1, 2, 5, 7, 13});
    cc.kh = pick({1, 1, 3, 5});
    cc.kw = pick({1, 3, 3, 2});
    cc.stride = pick({1, 1, 2, 3});
    cc.pad = pick({0, 0, 1, 2, 4});
    cc.dil = pick({1, 1, 1, 2});
    cc.n = pick({1, 1, 2});
    cc.xt = pick({0, 0, 1}) ? DType::Int8 : DType::UInt8;
    cc.wt = cc.xt == DType::Int8 ? DType::Int8 : (pick({0, 0, 1}) ? DType::UInt8 : DType::Int8);
    cc.yt = pick({0, 1}) ? DType::Int8 : DType::UInt8;
    cc.per_channel = pick({0, 1});
    cc.bias = pick({0, 1, 1});
    cc.wzp_nonzero = pick({0, 0, 1});
    cc.threads = seed % 2 ? 1 : 2;  // one thread: channel-chunk-major order; two: pixel bands
    // Skip geometries whose kernel does not fit the padded input.
    if ((cc.kh - 1) * cc.dil + 1 > cc.h + 2 * cc.pad || (cc.kw - 1) * cc.dil + 1 > cc.w + 2 * cc.pad) continue;
    expect_all_isas_match(cc, seed);
  }
}

// Groups narrower than a 32-column block are packed several to a block-diagonal block (the
// entries between groups at the weight zero point): ResNeXt's 32 groups of 8 and 16 of 16
// channels, group counts the packing factor does not divide, uneven output widths, nonzero and
// per-channel weight zero points, uint8 weights.
TEST(QLinearConvIsa, NarrowGroupsPackedTogetherMatchReference) {
  struct G {
    int64_t group, cg, mg;
  };
  const std::vector<G> shapes = {{32, 8, 8}, {16, 16, 16}, {12, 4, 5}, {6, 8, 3}, {8, 4, 12}, {5, 8, 8}, {3, 12, 20}};
  uint32_t seed = 500;
  for (const G& gs : shapes)
    for (int variant = 0; variant < 4; ++variant) {
      ConvCase cc;
      cc.group = gs.group;
      cc.c = gs.group * gs.cg;
      cc.m = gs.group * gs.mg;
      cc.h = cc.w = variant % 2 ? 7 : 10;
      cc.stride = variant == 3 ? 2 : 1;
      cc.pad = 1;
      cc.wt = variant == 2 ? DType::UInt8 : DType::Int8;
      cc.per_channel = variant != 1;
      cc.wzp_nonzero = variant >= 1;
      cc.threads = 1 + variant % 2;
      expect_all_isas_match(cc, seed++);
    }
}

TEST(QLinearConvIsa, SaturatingExtremesAreExact) {
  // 255 × −128 and 255 × 127 everywhere: int16 pair sums would overflow.
  for (auto fill : {ConvCase::Fill::Max, ConvCase::Fill::Min}) {
    ConvCase cc;
    cc.c = 64;
    cc.m = 32;
    cc.fill = fill;
    cc.wzp_nonzero = false;
    expect_all_isas_match(cc, 7);
    cc.wt = DType::UInt8;
    expect_all_isas_match(cc, 8);
  }
}

TEST(QLinearConvIsa, DepthwiseMatchesReference) {
  // One input and one output channel per group: the dedicated depthwise kernel.
  for (uint32_t seed = 0; seed < 72; ++seed) {
    ConvCase cc;
    cc.c = cc.m = cc.group = std::vector<int64_t>{1, 8, 17, 32, 96, 40, 65, 48}[seed % 8];
    cc.kh = cc.kw = seed % 3 == 0 ? 5 : 3;
    if (seed >= 24) {  // uneven kernels, even tap counts, long rows, windows wider than the input
      cc.kh = std::vector<int64_t>{1, 2, 3, 3, 5}[seed % 5];
      cc.kw = std::vector<int64_t>{3, 1, 2, 3, 5, 7}[seed % 6];
    }
    cc.stride = 1 + seed % (seed >= 24 ? 3 : 2);
    cc.pad = seed % 4 == 0 ? 0 : 1 + seed % 2;
    cc.pad = std::min(cc.pad, std::min(cc.kh, cc.kw) - 1);
    cc.dil = seed % 5 == 4 ? 2 : 1;
    cc.h = 9;
    cc.w = seed >= 24 ? std::vector<int64_t>{2, 5, 7, 19, 33}[(seed / 5) % 5] : 7;
    if ((cc.kw - 1) * cc.dil + 1 > cc.w + 2 * cc.pad) cc.w = (cc.kw - 1) * cc.dil + 1;
    cc.xt = seed % 6 == 5 ? DType::Int8 : DType::UInt8;
    cc.wt = seed % 4 == 3 ? DType::UInt8 : DType::Int8;
    if (cc.xt == DType::Int8) cc.wt = DType::Int8;
    cc.wzp_nonzero = seed % 3 == 1;
    cc.per_channel = seed % 2 == 0;
    if (seed >= 20) cc.fill = seed % 2 ? ConvCase::Fill::Max : ConvCase::Fill::Min;
    if (seed % 4 == 2) cc.y_scale_factor = 1e-3f;
    expect_all_isas_match(cc, seed);
  }
}

TEST(QLinearConvIsa, DepthwiseRunsOfEveryLengthMatchReference) {
  // The AVX-512 depthwise kernel computes a row's interior in groups of eight and four pixels,
  // the last group overlapping the one before, and single pixels at the borders and in runs
  // shorter than four; blocks of 32 channels are read whole, as a 16-channel half, or masked.
  // Every run length from 0 to 21 pixels, at strides 1 and 2, for each kind of block, with and
  // without weight zero points.
  for (int64_t w = 1; w <= 22; ++w)
    for (int64_t channels : {16, 48, 32, 21, 144, 96})
      for (int64_t stride : {1, 2})
        for (bool wzp : {false, true}) {
          ConvCase cc;
          cc.c = cc.m = cc.group = channels;
          cc.h = 3;
          cc.w = w;
          cc.stride = stride;
          cc.pad = 1;
          cc.threads = 1;
          cc.wzp_nonzero = wzp;
          cc.per_channel = w % 2 == 0;
          cc.y_scale_factor = channels == 21 ? 1e-3f : 1;  // the float-clamp epilogue too
          expect_all_isas_match(cc, static_cast<uint32_t>(w * 1000 + channels * 10 + stride * 2 + wzp));
        }
}

TEST(QLinearConvIsa, ResNetShapedLayersMatchReference) {
  struct L { int64_t c, h, m, k, s, p; };
  // The last one has 720 KiB of packed weights in two chunks: the next chunk's are prefetched.
  for (const L& l : {L{3, 32, 64, 7, 2, 3}, L{64, 14, 64, 3, 1, 1}, L{64, 14, 256, 1, 1, 0}, L{256, 14, 128, 1, 2, 0},
                     L{128, 7, 128, 3, 2, 1}, L{512, 7, 160, 3, 1, 1}}) {
    ConvCase cc;
    cc.c = l.c;
    cc.h = cc.w = l.h;
    cc.m = l.m;
    cc.kh = cc.kw = l.k;
    cc.stride = l.s;
    cc.pad = l.p;
    expect_all_isas_match(cc, static_cast<uint32_t>(l.c * 7 + l.m));
    if (l.c == 512) {  // one thread: the order in which one chunk's row tiles prefetch the next
      cc.threads = 1;
      expect_all_isas_match(cc, static_cast<uint32_t>(l.c * 7 + l.m));
    }
  }
}

TEST(QLinearConvIsa, RgbStemRowsMatchReference) {
  // Three input channels from NCHW: image rows are interleaved into pixels in vectors of 64, with
  // a shorter last one; int8 inputs are flipped to uint8 on the way. The kernel reads a window's
  // rows at a fixed stride from one pointer per pixel (QGemmArgs::tap_stride), and so do the row
  // sums that non-zero weight zero points need.
  uint32_t seed = 100;
  for (int64_t w : {64, 150, 227})
    for (DType xt : {DType::UInt8, DType::Int8})
      for (int64_t k : {3, 7})
        for (bool wzp : {false, true}) {
          ConvCase cc;
          cc.c = 3;
          cc.h = 9;
          cc.w = w;
          cc.m = 32;
          cc.kh = cc.kw = k;
          cc.stride = 2;
          cc.pad = k / 2;
          cc.xt = xt;
          cc.wt = wzp && xt == DType::UInt8 ? DType::UInt8 : DType::Int8;
          cc.wzp_nonzero = wzp;
          expect_all_isas_match(cc, seed++);
        }
}

}  // namespace
}  // namespace quint::test
