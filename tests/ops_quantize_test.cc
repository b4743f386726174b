// QuantizeLinear from float32 on every kernel variant (the portable loop and each SIMD level this
// CPU has) against a naive reference of ONNX Runtime's formula (ops/quantize.cc):
//   y = sat(rne(fl32(x / scale)) + zp), a NaN giving the type's minimum,
// on lengths that leave vector tails, per tensor and per axis, uint8 and int8, and values chosen
// at the edges: exact .5 ties, the saturation bounds, ±inf, NaN, −0, denormals and huge values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"
#include "x86/cpu.h"

namespace quint::test {
namespace {

int32_t reference(float x, float s, int32_t zp, int32_t lo, int32_t hi) {
  const float v = x / s;  // one float32 division (the build has -ffp-contract=off)
  if (std::isnan(v)) return lo;
  const double r = std::nearbyint(static_cast<double>(v));  // round half to even (default mode)
  const double q = r + zp;
  return q < lo ? lo : q > hi ? hi : static_cast<int32_t>(q);
}

std::vector<std::string> isas() {
  std::vector<std::string> out = {"ref"};
  for (auto isa : {ops::x86::Isa::Avx2, ops::x86::Isa::AvxVnni, ops::x86::Isa::Avx512Vnni})
    if (ops::x86::isa_supported(isa)) out.push_back(ops::x86::isa_name(isa));
  return out;
}

TEST(QuantizeLinear, EveryIsaEqualsTheFormula) {
  std::mt19937 rng(20261127);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (DType t : {DType::UInt8, DType::Int8})
    for (int64_t channels : {1, 3})
      for (int64_t inner : {1, 7, 16, 31, 64, 1000}) {
        const int32_t lo = t == DType::Int8 ? -128 : 0, hi = t == DType::Int8 ? 127 : 255;
        std::vector<float> scales;
        std::vector<int32_t> zps;
        for (int64_t c = 0; c < channels; ++c) {
          scales.push_back(std::exp(std::uniform_real_distribution<float>(-8, 2)(rng)));
          zps.push_back(std::uniform_int_distribution<int32_t>(lo, hi)(rng));
        }
        Tensor x(DType::Float32, {1, channels, 1, inner});
        float* xp = x.data<float>();
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t i = 0; i < inner; ++i) {
            const float s = scales[static_cast<size_t>(c)];
            float v;
            switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
              case 0: v = (static_cast<float>(std::uniform_int_distribution<int>(-300, 300)(rng)) + 0.5f) * s; break;
              case 1: v = static_cast<float>(std::uniform_int_distribution<int>(-300, 300)(rng)) * s; break;
              case 2: v = std::vector<float>{inf, -inf, nan, -0.0f, 1e-40f, -1e-40f, 3e38f, -3e38f}[rng() % 8]; break;
              case 3: v = static_cast<float>(hi - zps[static_cast<size_t>(c)]) * s * std::nextafter(1.0f, 2.0f); break;
              default: v = std::uniform_real_distribution<float>(-400, 400)(rng) * s;
            }
            xp[c * inner + i] = v;
          }
        Tensor sc = channels == 1 ? Tensor::scalar<float>(scales[0]) : Tensor::from_vector<float>({channels}, scales);
        Tensor zp(t, channels == 1 ? Shape{} : Shape{channels});
        for (int64_t c = 0; c < channels; ++c) {
          if (t == DType::Int8) zp.data<int8_t>()[c] = static_cast<int8_t>(zps[static_cast<size_t>(c)]);
          else zp.data<uint8_t>()[c] = static_cast<uint8_t>(zps[static_cast<size_t>(c)]);
        }
        for (const std::string& isa : isas()) {
          SCOPED_TRACE("isa " + isa + " " + dtype_name(t) + " channels " + std::to_string(channels) + " inner " +
                       std::to_string(inner));
          OpRun r;
          r.op_type = "QuantizeLinear";
          r.inputs = {dyn(x), cst(sc), cst(zp)};
          r.options.isa = isa;
          const Tensor y = run_op(r).at(0);
          for (int64_t c = 0; c < channels; ++c)
            for (int64_t i = 0; i < inner; ++i) {
              const int64_t e = c * inner + i;
              const int32_t want = reference(xp[e], scales[static_cast<size_t>(c)], zps[static_cast<size_t>(c)], lo, hi);
              const int32_t got = t == DType::Int8 ? y.data<int8_t>()[e] : y.data<uint8_t>()[e];
              ASSERT_EQ(got, want) << "element " << e << " x " << xp[e];
            }
        }
      }
}

}  // namespace
}  // namespace quint::test
