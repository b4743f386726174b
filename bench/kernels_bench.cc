// Google Benchmark micro-benchmarks of quint's kernels, in GMAC/s next to this machine's peak
// (measured by the Peak benchmarks: independent vpdpbusd chains, no memory traffic).
//   build/bench/quint_kernels_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <chrono>
#include <random>

#include "quint/ops/op.h"
#include "thread_pool.h"
#include "x86/cpu.h"
#include "x86/qgemm.h"

namespace {

using namespace quint;

// ---- the machine's peak ------------------------------------------------------------------------

__attribute__((target("avx512f,avx512vnni"))) void peak_vnni512(benchmark::State& state) {
  if (!ops::x86::isa_supported(ops::x86::Isa::Avx512Vnni)) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  __m512i acc[12];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const __m512i x = _mm512_set1_epi32(0x01020304), w = _mm512_set1_epi32(0x01010101);
  const int64_t iters = 1 << 16;
  for (auto _ : state) {
    for (int64_t i = 0; i < iters; ++i)
      for (auto& a : acc) a = _mm512_dpbusd_epi32(a, x, w);
    benchmark::DoNotOptimize(acc);
  }
  // 12 instructions × 64 multiply-accumulates each.
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * iters * 12 * 64 / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(peak_vnni512);

// ---- the thread pool ---------------------------------------------------------------------------

// One parallel_for of 8 items, each spinning for range(0) ns: the pool's dispatch and join cost
// is the time above range(0) · 8 / threads.
void pool_dispatch(benchmark::State& state) {
  runtime::ThreadPool pool(static_cast<int>(state.range(1)));
  const auto ns = std::chrono::nanoseconds(state.range(0));
  for (auto _ : state)
    pool.parallel_for(8, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const auto until = std::chrono::steady_clock::now() + ns;
        while (std::chrono::steady_clock::now() < until) {
        }
      }
    });
}
BENCHMARK(pool_dispatch)->ArgsProduct({{0, 1000, 4000}, {1, 2}})->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- the GEMM microkernel alone ----------------------------------------------------------------

// One full tile (MR rows × NR columns, K = range(0)) of the machine's best microkernel, over and
// over on the same cached data: the kernel's own cost per call, without a layer's driver or
// memory traffic. range(1): the integer epilogue (QGemmArgs::clamp_free) or the float clamp.
void qgemm_tile(benchmark::State& state) {
  const ops::x86::QGemmKernel* g = ops::x86::qgemm_kernel(ops::x86::best_isa());
  if (!g) {
    state.SkipWithError("no SIMD microkernel on this CPU");
    return;
  }
  const int64_t K = state.range(0);
  std::mt19937 rng(3);
  std::vector<uint8_t> a(static_cast<size_t>(g->mr * K));
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  std::vector<const uint8_t*> rows(static_cast<size_t>(g->mr));
  for (int m = 0; m < g->mr; ++m) rows[static_cast<size_t>(m)] = a.data() + m * K;
  std::vector<int8_t> w(static_cast<size_t>(g->nr * K));
  for (auto& v : w) v = static_cast<int8_t>(rng());
  std::vector<int8_t> packed(g->packed_bytes(K) + 64);
  int8_t* b = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) / 64 * 64);
  g->pack(w.data(), K, K, g->nr, b);
  std::vector<int32_t> bias(static_cast<size_t>(g->nr), 100);
  std::vector<float> mult(static_cast<size_t>(g->nr), 0.0004f);
  std::vector<uint8_t> c(static_cast<size_t>(g->mr * g->nr));
  ops::x86::QGemmArgs p;
  p.mr = g->mr;
  p.nr = g->nr;
  p.k = K;
  p.a = rows.data();
  p.b = b;
  p.bias = bias.data();
  p.mult = mult.data();
  p.zp = 3;
  p.lo = -3;
  p.hi = 252;
  p.clamp_free = state.range(1) != 0;
  p.c = c.data();
  p.ldc = g->nr;
  for (auto _ : state) {
    g->run(p);
    benchmark::ClobberMemory();
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(g->mr * g->nr * K) / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(qgemm_tile)->ArgsProduct({{16, 64, 256, 1024}, {0, 1}});

// ---- QLinearConv layers ------------------------------------------------------------------------

struct Layer {
  const char* name;
  int64_t c, h, m, k, stride, pad, group;
};

const Layer kLayers[] = {
    {"resnet.conv1 7x7/2 3->64 224", 3, 224, 64, 7, 2, 3, 1},
    {"resnet.l1 1x1 64->64 56", 64, 56, 64, 1, 1, 0, 1},
    {"resnet.l1 3x3 64->64 56", 64, 56, 64, 3, 1, 1, 1},
    {"resnet.l1 1x1 64->256 56", 64, 56, 256, 1, 1, 0, 1},
    {"resnet.l2 3x3 128->128 28", 128, 28, 128, 3, 1, 1, 1},
    {"resnet.l2 1x1 128->512 28", 128, 28, 512, 1, 1, 0, 1},
    {"resnet.l3 1x1 1024->256 14", 1024, 14, 256, 1, 1, 0, 1},
    {"resnet.l3 3x3 256->256 14", 256, 14, 256, 3, 1, 1, 1},
    {"resnet.l4 3x3 512->512 7", 512, 7, 512, 3, 1, 1, 1},
    {"resnet.l4 1x1 512->2048 7", 512, 7, 2048, 1, 1, 0, 1},
    {"mobilenet.dw 3x3 144 56", 144, 56, 144, 3, 1, 1, 144},
    {"mobilenet.dw 3x3 384 14", 384, 14, 384, 3, 1, 1, 384},
    {"mobilenet.pw 1x1 64->384 14", 64, 14, 384, 1, 1, 0, 1},
    {"mobilenet.pw 1x1 16->96 112", 16, 112, 96, 1, 1, 0, 1},
    {"mobilenet.pw 1x1 32->16 112", 32, 112, 16, 1, 1, 0, 1},
    {"mobilenet.stem 3x3/2 3->32 224", 3, 224, 32, 3, 2, 1, 1},
};

// cold: the layer is built as many times as needed for 64 MiB of weights, and the iterations
// take the copies in turn, so every run reads its weights from memory as inside a whole model
// (ResNet50's 25 MB of weights do not stay in the caches between its layers).
void qconv(benchmark::State& state, Layer l, std::string isa, int threads, bool cold = false) {
  std::mt19937 rng(1);
  Tensor x(DType::UInt8, {1, l.c, l.h, l.h});
  Tensor w(DType::Int8, {l.m, l.c / l.group, l.k, l.k});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(rng());
  std::vector<float> ws(static_cast<size_t>(l.m), 0.001f);
  Tensor xs = Tensor::scalar<float>(0.02f), ys = Tensor::scalar<float>(0.05f);
  Tensor xz = Tensor::scalar<uint8_t>(120), yz = Tensor::scalar<uint8_t>(0);
  Tensor wsc = Tensor::from_vector<float>({l.m}, ws), wz(DType::Int8, {l.m});
  Tensor b(DType::Int32, {l.m});
  std::vector<Tensor*> in_t = {&x, &xs, &xz, &w, &wsc, &wz, &ys, &yz, &b};
  std::vector<ops::ValueInfo> infos;
  for (size_t i = 0; i < in_t.size(); ++i) infos.push_back({in_t[i]->dtype(), in_t[i]->shape(), i == 0 ? nullptr : in_t[i], {}});
  // The fast kernels get their input channels-last, as inside a model's convolution chain, so
  // the timing is the kernel's alone (no layout conversion); the reference reads NCHW.
  if (isa != "ref") infos[0].layout = ops::Layout::NHWC;
  std::vector<const ops::ValueInfo*> ptrs;
  for (auto& i : infos) ptrs.push_back(&i);
  Attributes attrs;
  attrs.set("kernel_shape", std::vector<int64_t>{l.k, l.k});
  attrs.set("strides", std::vector<int64_t>{l.stride, l.stride});
  attrs.set("pads", std::vector<int64_t>{l.pad, l.pad, l.pad, l.pad});
  attrs.set("group", l.group);
  ops::KernelOptions ko;
  ko.isa = isa;
  ops::NodeInfo info{"bench", "QLinearConv", "ai.onnx", 13};
  ops::BuildContext ctx(info, attrs, ptrs, 1, ko, nullptr);
  const auto* op = ops::Registry::builtin().find("ai.onnx", "QLinearConv", 13);
  std::vector<std::unique_ptr<ops::Kernel>> kernels;
  kernels.push_back(op->build(ctx));
  const int64_t copies = cold ? std::max<int64_t>(2, (int64_t{64} << 20) / std::max<int64_t>(1, w.numel())) : 1;
  while (static_cast<int64_t>(kernels.size()) < copies) {
    ops::BuildContext again(info, attrs, ptrs, 1, ko, nullptr);
    kernels.push_back(op->build(again));
  }
  const ops::Kernel* kernel = kernels[0].get();
  Tensor y(DType::UInt8, ctx.output(0).shape);
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  runtime::ThreadPool pool(threads);
  ops::RunContext rc;
  for (Tensor* t : in_t) rc.inputs.push_back(t);
  rc.outputs = {&y};
  rc.scratch = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  rc.parallel = &pool;
  size_t next = 0;
  for (auto _ : state) {
    kernels[next]->run(rc);
    next = next + 1 == kernels.size() ? 0 : next + 1;
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(kernel->macs()) / 1e9,
                                                benchmark::Counter::kIsRate);
}

int register_layers() {
  std::vector<std::string> isas = {"ref"};
  for (auto i : {ops::x86::Isa::Avx2, ops::x86::Isa::AvxVnni, ops::x86::Isa::Avx512Vnni})
    if (ops::x86::isa_supported(i)) isas.push_back(ops::x86::isa_name(i));
  for (const Layer& l : kLayers)
    for (const std::string& isa : isas)
      for (int threads : {1, 2}) {
        if (isa == "ref" && threads == 2) continue;
        benchmark::RegisterBenchmark((std::string("qconv/") + l.name + "/" + isa + "/t" + std::to_string(threads)).c_str(),
                                     [=](benchmark::State& s) { qconv(s, l, isa, threads); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime()  // the pool's other thread works too: GMAC/s per wall-clock second
            ->MinTime(isa == "ref" ? 0.05 : 0.2);
      }
  // The last stage's layers, whose weights (1-2.4 MB each) come from memory inside a model.
  if (ops::x86::isa_supported(ops::x86::Isa::Avx512Vnni))
    for (const Layer& l : kLayers)
      if (std::string(l.name).rfind("resnet.l4", 0) == 0 || std::string(l.name).rfind("resnet.l3", 0) == 0)
        for (int threads : {1, 2})
          benchmark::RegisterBenchmark((std::string("qconv/") + l.name + "/vnni/cold/t" + std::to_string(threads)).c_str(),
                                       [=](benchmark::State& s) { qconv(s, l, "vnni", threads, true); })
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime()
              ->MinTime(0.2);
  return 0;
}
const int registered = register_layers();

}  // namespace

BENCHMARK_MAIN();
