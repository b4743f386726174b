// The quantized GEMM microkernels (ops/x86/qgemm.h) against a naive loop over their contract:
//   v = wrap32(Σ_t Σ_k a[m·taps+t][k] · b[t·K+k][n] + bias[n] − w_zp[n] · row_sum[m])
//   y = rne(clamp(fl32(fl32(v) · mult[n]), lo, hi)) + zp, stored as uint8 or int8,
// for every microkernel the CPU can run (including both AVX-512 epilogues, the integer-saturating
// one of QGemmArgs::clamp_free, and the 16-column AVX-512 kernel), on random tile sizes,
// segment counts and lengths, ties, clamps, int32 wrap-around, and the 255 × −128 / 255 × 127
// extremes. Bytes outside the mr × nr tile must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "x86/cpu.h"
#include "x86/qgemm.h"

namespace quint::test {
namespace {

using ops::x86::QGemmArgs;
using ops::x86::QGemmKernel;

struct Variant {
  std::string name;
  const QGemmKernel* kernel;
};

std::vector<Variant> runnable_variants() {
  using namespace ops::x86;
  std::vector<Variant> out;
  if (isa_supported(Isa::Avx2)) out.push_back({"avx2", &kQGemmAvx2});
  if (isa_supported(Isa::AvxVnni)) out.push_back({"avxvnni", &kQGemmAvxVnni});
  if (isa_supported(Isa::Avx512Vnni)) {
    out.push_back({"avx512vnni", &kQGemmAvx512Vnni});
    out.push_back({"avx512vnni 16 columns", &kQGemmAvx512VnniNarrow});
    if (cpu_features().avx512vbmi) out.push_back({"avx512vnni+vbmi", &kQGemmAvx512VnniVbmi});
  }
  return out;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

enum class Fill { Random, Extreme255xMin, Extreme255xMax };

struct Case {
  int mr, nr, taps, k;
  bool wzp, out_signed;
  Fill fill;
  int mult_kind;  // 0 random small, 1 exact 0.5 (ties), 2 huge (clamps), 3 mixed, 4 just below 1
  bool wrap;      // biases near INT32_MAX / INT32_MIN
  bool clamp_free = false;  // QGemmArgs::clamp_free (only with every mult below 1)
};

void check_case(const Variant& var, const Case& cs, std::mt19937& rng, const std::string& label) {
  const QGemmKernel& g = *var.kernel;
  const int MR = g.mr, NR = g.nr;
  ASSERT_LE(cs.mr, MR);
  ASSERT_LE(cs.nr, NR);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);

  // A: mr·taps segments of k bytes (each in its own allocation, so the kernel reads only them).
  std::vector<std::vector<uint8_t>> segs(static_cast<size_t>(cs.mr * cs.taps));
  std::vector<const uint8_t*> a(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    segs[i].resize(static_cast<size_t>(cs.k));
    for (auto& v : segs[i]) v = static_cast<uint8_t>(cs.fill == Fill::Random ? u8(rng) : 255);
    a[i] = segs[i].data();
  }
  // B as w[n][kk] with kk = t·k + k', the packer's input layout.
  const int64_t K = static_cast<int64_t>(cs.taps) * cs.k;
  std::vector<int8_t> w(static_cast<size_t>(cs.nr * K));
  for (auto& v : w)
    v = static_cast<int8_t>(cs.fill == Fill::Random ? s8(rng) : (cs.fill == Fill::Extreme255xMin ? -128 : 127));
  const size_t packed_bytes = g.packed_bytes(K);
  std::unique_ptr<int8_t, AlignedFree> packed(
      static_cast<int8_t*>(std::aligned_alloc(64, (packed_bytes + 63) / 64 * 64)));
  g.pack(w.data(), K, K, cs.nr, packed.get());

  std::vector<int32_t> bias(static_cast<size_t>(NR), 0), wzp(static_cast<size_t>(NR), 0);
  std::vector<float> mult(static_cast<size_t>(NR), 0.0f);
  std::uniform_int_distribution<int32_t> bd(-100000, 100000);
  std::uniform_real_distribution<float> md(1e-6f, 4e-3f);
  for (int n = 0; n < cs.nr; ++n) {
    const int32_t off = std::abs(bd(rng) % 1000);  // near the int32 limits, on the inside
    bias[n] = cs.wrap ? (n % 2 ? INT32_MAX - off : INT32_MIN + off) : bd(rng);
    if (cs.wzp) wzp[n] = s8(rng);
    switch (cs.mult_kind) {
      case 0: mult[n] = md(rng); break;
      case 1: mult[n] = 0.5f; break;
      case 2: mult[n] = 1e3f; break;
      case 3: mult[n] = n % 3 == 0 ? 0.5f : (n % 3 == 1 ? md(rng) : 1e3f); break;
      // The largest floats below 1: with |v| near 2^31, fl32(v)·mult is within 128 of ±2^31.
      default: mult[n] = n % 2 ? std::nextafter(1.0f, 0.0f) : 0.75f; break;
    }
  }
  std::vector<int32_t> row_sums(static_cast<size_t>(MR), 0);
  for (int m = 0; m < cs.mr; ++m) {
    int32_t s = 0;
    for (int t = 0; t < cs.taps; ++t)
      for (int kk = 0; kk < cs.k; ++kk) s += segs[static_cast<size_t>(m * cs.taps + t)][static_cast<size_t>(kk)];
    row_sums[static_cast<size_t>(m)] = s;
  }
  const int zp = cs.out_signed ? s8(rng) : u8(rng);
  const int qmin = cs.out_signed ? -128 : 0, qmax = cs.out_signed ? 127 : 255;

  const int64_t ldc = cs.nr + 5;
  std::vector<uint8_t> c(static_cast<size_t>((cs.mr + 1) * ldc + 64), 0xA5);
  QGemmArgs p;
  p.mr = cs.mr;
  p.nr = cs.nr;
  p.taps = cs.taps;
  p.k = cs.k;
  p.a = a.data();
  p.b = packed.get();
  p.bias = bias.data();
  p.mult = mult.data();
  p.w_zp = cs.wzp ? wzp.data() : nullptr;
  p.row_sums = row_sums.data();
  p.lo = static_cast<float>(qmin - zp);
  p.hi = static_cast<float>(qmax - zp);
  p.zp = zp;
  p.out_signed = cs.out_signed;
  p.clamp_free = cs.clamp_free;
  p.c = c.data();
  p.ldc = ldc;
  g.run(p);

  int bad = 0;
  for (int m = 0; m <= cs.mr; ++m)
    for (int64_t n = 0; n < ldc; ++n) {
      const uint8_t got = c[static_cast<size_t>(m * ldc + n)];
      if (m == cs.mr || n >= cs.nr) {
        if (got != 0xA5 && bad++ < 3) ADD_FAILURE() << label << ": wrote outside the tile at row " << m << " col " << n;
        continue;
      }
      int64_t dot = 0;
      for (int t = 0; t < cs.taps; ++t)
        for (int kk = 0; kk < cs.k; ++kk)
          dot += int64_t{segs[static_cast<size_t>(m * cs.taps + t)][static_cast<size_t>(kk)]} *
                 w[static_cast<size_t>(n * K + t * cs.k + kk)];
      const uint32_t v32 = static_cast<uint32_t>(dot) + static_cast<uint32_t>(bias[static_cast<size_t>(n)]) -
                           static_cast<uint32_t>(wzp[static_cast<size_t>(n)]) *
                               static_cast<uint32_t>(row_sums[static_cast<size_t>(m)]);
      const int32_t v = static_cast<int32_t>(v32);
      float f = static_cast<float>(v) * mult[static_cast<size_t>(n)];
      f = std::fmin(std::fmax(f, p.lo), p.hi);
      const int want = static_cast<int>(std::nearbyint(f)) + zp;
      const int have = cs.out_signed ? static_cast<int>(static_cast<int8_t>(got)) : static_cast<int>(got);
      if (have != want && bad++ < 3)
        ADD_FAILURE() << label << ": row " << m << " col " << n << " v=" << v << " mult=" << mult[static_cast<size_t>(n)]
                      << " zp=" << zp << ": want " << want << ", got " << have;
    }
  EXPECT_EQ(bad, 0) << label;
}

TEST(QGemmKernel, EveryVariantMatchesTheFormula) {
  const auto variants = runnable_variants();
  if (variants.empty()) GTEST_SKIP() << "no SIMD microkernel runs on this CPU";
  for (const Variant& var : variants) {
    std::mt19937 rng(1234);
    const int MR = var.kernel->mr, NR = var.kernel->nr, KU = var.kernel->k_unit;
    std::uniform_int_distribution<int> mr_d(1, MR), nr_d(1, NR), taps_d(1, 3), k_d(1, 24), kind_d(0, 4), b_d(0, 1);
    for (int it = 0; it < 600; ++it) {
      Case cs{mr_d(rng), nr_d(rng), taps_d(rng), k_d(rng) * KU, b_d(rng) == 1, b_d(rng) == 1, Fill::Random,
              kind_d(rng), it % 7 == 0 || it % 7 == 3};
      cs.clamp_free = (cs.mult_kind == 0 || cs.mult_kind == 1 || cs.mult_kind == 4) && b_d(rng) == 1;
      if (it % 5 == 0) cs.nr = NR;  // full-width tiles as well as partial ones
      if (it % 5 == 1) cs.mr = MR;
      check_case(var, cs, rng, var.name + " case " + std::to_string(it) + (cs.clamp_free ? " clamp_free" : ""));
      if (HasFailure()) return;
    }
  }
}

TEST(QGemmKernel, ExtremesDoNotSaturate) {
  const auto variants = runnable_variants();
  if (variants.empty()) GTEST_SKIP() << "no SIMD microkernel runs on this CPU";
  for (const Variant& var : variants) {
    std::mt19937 rng(99);
    const int MR = var.kernel->mr, NR = var.kernel->nr;
    for (Fill fill : {Fill::Extreme255xMin, Fill::Extreme255xMax})
      for (bool out_signed : {false, true}) {
        // 255 · (−128) · 2 · 64 per row: far beyond int16 (AVX2's vpmaddubsw pair sums saturate
        // at 32767), well within int32. Small multipliers keep the results off the clamps.
        for (bool clamp_free : {false, true}) {
          Case cs{MR, NR, 2, 64, false, out_signed, fill, 0, false, clamp_free};
          check_case(var, cs, rng, var.name + (fill == Fill::Extreme255xMin ? " 255x-128" : " 255x127"));
        }
      }
  }
}

}  // namespace
}  // namespace quint::test
