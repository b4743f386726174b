// PyTorch's quantized arithmetic beyond convolutions (arith::InputQuantizer, AddRequantizer,
// AvgPoolRequantizer, and Requantizer on a Linear), unit by unit against vectors that Debian's
// torch 1.13 computes at test time under the engines onednn and qnnpack, and the operators wired
// to them (QuantizeLinear, QLinearAdd, QLinearGlobalAveragePool, MaxPool, QGemm) run with
// SessionOptions::arith / KernelOptions::arith set to the engine. Every comparison is exact.
//
// The vectors (kGenerator below, also kept as /work/notes/pytorch-arith/gen_vectors.py) hold
// exact .5 ties (power-of-two scales and scale ratios), saturation, zero points at 0, 128 and
// 255, NaN/inf/huge inputs, QNNPACK's shift > 31 quirk, ATen's int32 wrap-around and its scalar
// tail. Each test also checks that the data tells the candidate formulas apart (the ONNX formula
// or the other engine's differs somewhere), so a pass means something.
// Skipped, with a message, when /usr/bin/python3 lacks torch.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "arith/requant.h"
#include "model_builder.h"
#include "npy.h"
#include "op_harness.h"
#include "quint/error.h"
#include "quint/session.h"
#include "test_paths.h"

namespace quint::test {
namespace {

namespace fs = std::filesystem;
using ops::arith::AddRequantizer;
using ops::arith::AvgPoolRequantizer;
using ops::arith::InputQuantizer;

const char* kGenerator = R"PYTHON(# Test vectors from Debian's torch 1.13 for tests/pytorch_arith_test.cc (this file is embedded
# there verbatim). Writes .npy files into argv[1]. Deterministic (seeded).
import os, sys
import numpy as np
import torch
import torch.ao.nn.quantized as nnq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(1)
f32 = np.float32
rng = np.random.default_rng(20261126)


def save(name, a):
    np.save(os.path.join(out, name + '.npy'), np.ascontiguousarray(a))


def qt(x, s, zp, dtype=torch.quint8):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(s), int(zp))


# ---- quantize_per_tensor (QuantStub) -------------------------------------------------------
n = 1024
specials = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30, 3e38, 9.3e18, 4e18, -0.0, 0.0], f32)
for engine in ['onednn', 'qnnpack']:
    torch.backends.quantized.engine = engine
    P, X, Y = [], [], []
    for k in range(48):
        if k % 3 == 0:
            s = f32(2.0 ** -int(rng.integers(2, 9)))
        else:
            s = f32(rng.uniform(0.002, 0.1))
        zp = int([0, 255, 128, 1, int(rng.integers(0, 256))][k % 5])
        x = (rng.standard_normal(n) * 100 * s).astype(f32)
        t = rng.integers(-300, 300, 400)
        x[:400] = ((t + 0.5) * np.float64(s)).astype(f32)           # x/s exact .5 ties (when exact in f32)
        x[400:600] = np.nextafter(x[:200], np.where(rng.random(200) < 0.5, -np.inf, np.inf).astype(f32))
        x[600:700] = (rng.uniform(-2000, 2000, 100) * s).astype(f32)   # saturation
        x[700:700 + len(specials)] = specials * (s if k % 2 else 1)
        y = torch.quantize_per_tensor(torch.from_numpy(x), float(s), zp, torch.quint8).int_repr().numpy()
        P.append([s, zp]); X.append(x); Y.append(y.astype(np.int32))
    save(f'quant_{engine}_p', np.array(P, f32)); save(f'quant_{engine}_x', np.array(X, f32)); save(f'quant_{engine}_y', np.array(Y))

# ---- add / add_relu --------------------------------------------------------------------------
A = np.repeat(np.arange(256), 256).astype(np.uint8)
B = np.tile(np.arange(256), 256).astype(np.uint8)


def add_params(k, engine):
    kind = k % 7
    if kind == 0:   # power-of-two scale ratios: many exact ties
        c = f32(2.0 ** -int(rng.integers(3, 8)))
        a, b = f32(c * 2.0 ** int(rng.integers(-3, 2))), f32(c * 2.0 ** int(rng.integers(-3, 2)))
    elif kind == 1:
        a, b, c = (f32(v) for v in rng.uniform(0.01, 0.2, 3))
    elif kind == 2:
        c = f32(rng.uniform(0.01, 0.1)); a = f32(c * rng.uniform(0.9, 1.1)); b = f32(c * rng.uniform(0.5, 2))
    elif kind == 3:  # saturation
        c = f32(rng.uniform(0.001, 0.01)); a = f32(c * rng.uniform(10, 200)); b = f32(c * rng.uniform(0.05, 1))
    elif kind == 4:
        a = b = c = f32(rng.uniform(0.01, 0.1))
    elif kind == 5 and engine == 'qnnpack':  # ratio below 2^-10: QNNPACK's shift exceeds 31
        c = f32(1.0); e = -int(rng.integers(11, 14)); a = f32(2.0 ** e * 1.5); b = f32(2.0 ** e * 1.2)
    elif kind == 5:  # huge ratio: v clipped at 2^31 - 128, then + zp wraps when zp >= 128
        a, b, c = f32(1.0), f32(0.5), f32(1e-7)
    else:
        a, b, c = (f32(v) for v in 10 ** rng.uniform(-3, -0.5, 3))
    zps = [0, 255, 128, int(rng.integers(0, 256))]
    a_zp, b_zp = int(rng.choice(zps)), int(rng.choice(zps))
    c_zp = int([0, 0, 128, 255, 200, int(rng.integers(0, 255))][k % 6])
    return [a, a_zp, b, b_zp, c, c_zp]


for engine in ['qnnpack', 'onednn']:
    torch.backends.quantized.engine = engine
    P, Y = [], []
    k = 0
    while len(P) < 42:
        p = add_params(k, engine); k += 1
        qa = qt(A.reshape(1, 256, 16, 16), p[0], p[1]); qb = qt(B.reshape(1, 256, 16, 16), p[2], p[3])
        op = torch.ops.quantized.add_relu if p[5] == 0 else torch.ops.quantized.add
        try:
            y = op(qa, qb, float(p[4]), int(p[5]))
        except RuntimeError:
            continue    # QNNPACK refuses some ratios
        P.append(p); Y.append(y.int_repr().numpy().reshape(-1).astype(np.int32))
    save(f'add_{engine}_p', np.array(P, f32)); save(f'add_{engine}_y', np.array(Y))

# ATen's scalar tail: rows of 100 elements = 64 vectorized + 36 scalar (one thread). Every byte
# pair sits in a tail position once (cols 64..99; cols 0..63 repeat pairs). The parameters were
# found by search: the vector and tail formulas differ for 3 byte pairs.
torch.backends.quantized.engine = 'onednn'
p = [f32(0.09141479432582855), 149, f32(0.0451836995780468), 134, f32(0.04855192080140114), 0]
rows = (65536 + 35) // 36
pairs = np.arange(rows * 36) % 65536
tail = pairs.reshape(rows, 36)
head = (np.arange(rows * 64) * 7919 % 65536).reshape(rows, 64)
idx = np.concatenate([head, tail], axis=1)
rows_a = (idx // 256).astype(np.uint8); rows_b = (idx % 256).astype(np.uint8)
Y = []
for r in range(rows):
    y = torch.ops.quantized.add_relu(qt(rows_a[r].copy(), p[0], p[1]), qt(rows_b[r].copy(), p[2], p[3]), float(p[4]), 0)
    Y.append(y.int_repr().numpy().astype(np.int32))
save('addtail_p', np.array(p, f32)); save('addtail_a', rows_a.astype(np.int32)); save('addtail_b', rows_b.astype(np.int32))
save('addtail_y', np.array(Y))

# ---- adaptive_avg_pool2d(1) and max_pool2d ---------------------------------------------------
# Window sums S = 0 .. 255·N (14x14: 0 .. 12000), one channel each, for several zero points and
# scales. 7x7 is the ResNet's; even N has exact .5 ties, where ATen's two layouts differ.
for engine in ['qnnpack', 'onednn']:
    torch.backends.quantized.engine = engine
    for hw in [(7, 7), (14, 14), (2, 4)]:
        npos = hw[0] * hw[1]
        S = np.arange((255 * npos if npos < 100 else 12000) + 1)
        x = np.repeat((S // npos)[:, None], npos, axis=1)
        x[:, :] += (np.arange(npos)[None, :] < (S % npos)[:, None])
        x = np.ascontiguousarray(rng.permuted(x, axis=1)).astype(np.uint8).reshape((1, len(S)) + hw)
        P, YC, YN = [], [], []
        for k, zp in enumerate([0, 128, 255, 37, 200]):
            s = f32([0.05, 0.0123, 0.3, 0.017, 0.11][k])
            q = qt(x, s, zp)
            yn = torch.nn.functional.adaptive_avg_pool2d(q, 1)
            yc = torch.nn.functional.adaptive_avg_pool2d(q.contiguous(memory_format=torch.channels_last), 1)
            assert float(yn.q_scale()) == float(s) and yn.q_zero_point() == zp
            P.append([s, zp])
            YN.append(yn.int_repr().numpy().reshape(-1).astype(np.int32))
            YC.append(yc.int_repr().numpy().reshape(-1).astype(np.int32))
        tag = f'avg_{engine}_{hw[0]}x{hw[1]}'
        save(tag + '_p', np.array(P, f32)); save(tag + '_x', x); save(tag + '_ycl', np.array(YC)); save(tag + '_ynchw', np.array(YN))
    x = rng.integers(0, 256, (2, 64, 112, 112)).astype(np.uint8)
    q = qt(x, 0.05, 17).contiguous(memory_format=torch.channels_last)
    y = torch.nn.MaxPool2d(3, 2, 1)(q)
    save(f'maxpool_{engine}_x', x); save(f'maxpool_{engine}_y', y.int_repr().contiguous().numpy())

# ---- quantized Linear (the ResNet fc) --------------------------------------------------------
# torch 1.13's oneDNN caches primitives without their zero points (intel/ideep#152): every case
# gets a shape of its own.
for engine in ['onednn', 'qnnpack']:
    torch.backends.quantized.engine = engine
    for k in range(12):
        K = 96 + k + (0 if engine == 'onednn' else 40); N = 64 + k; Bn = 64
        w = rng.integers(-127, 128, (N, K)).astype(np.int8)
        if k % 2 == 0:   # power-of-two scales: exact .5 ties
            x_s = f32(2.0 ** -5); w_s = np.full(N, f32(2.0 ** -7), f32); y_s = f32(x_s * w_s[0] * 2.0 ** int(rng.integers(2, 6)))
            b = ((rng.integers(-3000, 3000, N) + (k % 4) * 0.25) * np.float64(x_s) * np.float64(w_s[0])).astype(f32)
        else:
            x_s = f32(rng.uniform(0.01, 0.1)); y_s = f32(rng.uniform(0.02, 0.5))
            w_s = rng.uniform(0.001, 0.01, N).astype(f32) if engine == 'onednn' else np.full(N, f32(rng.uniform(0.001, 0.01)), f32)
            b = (rng.standard_normal(N) * 2).astype(f32)
        if engine == 'onednn':
            qw = torch._make_per_channel_quantized_tensor(torch.from_numpy(w), torch.from_numpy(w_s.astype(np.float64)), torch.zeros(N, dtype=torch.long), 0)
        else:
            qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(w_s[0]), 0)
        x_zp = int([0, 128, 37, 255][k % 4]); y_zp = int([0, 100, 128, 255, 3, 0][k % 6])
        x = rng.integers(0, 256, (Bn, K)).astype(np.uint8)
        lin = nnq.Linear(K, N); lin.set_weight_bias(qw, torch.from_numpy(b)); lin.scale = float(y_s); lin.zero_point = y_zp
        y = lin(qt(x, x_s, x_zp)).int_repr().numpy().astype(np.int32)
        tag = f'linear_{engine}_{k}'
        save(tag + '_w', w); save(tag + '_ws', w_s); save(tag + '_b', b); save(tag + '_x', x); save(tag + '_y', y)
        save(tag + '_p', np.array([x_s, x_zp, y_s, y_zp], f32))
print('ok')
)PYTHON";

// The generated vectors, made once per build folder (keyed by the script's hash; a file lock
// serialises test processes). "" when torch is missing.
std::string vectors_dir() {
  static const std::string dir = [] {
    const std::string py = python_with("torch, numpy");
    if (py.empty()) return std::string();
    const std::string key = std::to_string(std::hash<std::string>{}(kGenerator));
    const fs::path d = fs::path(binary_dir()) / "test-models" / ("pytorch-arith-" + key);
    fs::create_directories(d);
    const std::string lock_path = (d / ".lock").string();
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0) fail("cannot open ", lock_path);
    ::flock(fd, LOCK_EX);
    std::string err;
    if (!fs::exists(d / "done")) {
      const std::string script = (d / "gen_vectors.py").string();
      std::ofstream(script) << kGenerator;
      std::string log;
      if (run_command(py + " '" + script + "' '" + d.string() + "'", &log) == 0) std::ofstream(d / "done") << "ok\n";
      else err = "the torch vector generator failed: " + log;
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
    if (!err.empty()) fail(err);
    return d.string();
  }();
  return dir;
}

#define REQUIRE_TORCH()                                                                      \
  const std::string vec = vectors_dir();                                                     \
  if (vec.empty()) GTEST_SKIP() << "/usr/bin/python3 with torch and numpy is needed to make " \
                                   "the reference vectors"

Tensor npy(const std::string& dir, const std::string& name) { return tools::read_npy(dir + "/" + name + ".npy"); }

Arith engine_arith(const std::string& e) { return e == "onednn" ? Arith::OneDnn : Arith::Qnnpack; }

const char* const kEngines[] = {"onednn", "qnnpack"};

// ---- QuantStub: quantize_per_tensor -----------------------------------------------------------

TEST(PytorchArith, InputQuantizationMatchesTorch) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Tensor p = npy(vec, "quant_" + engine + "_p"), x = npy(vec, "quant_" + engine + "_x"),
                 y = npy(vec, "quant_" + engine + "_y");
    const int64_t K = p.dim(0), n = x.dim(1);
    int64_t bad = 0, onnx_differs = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float s = p.data<float>()[2 * k];
      const int32_t zp = static_cast<int32_t>(p.data<float>()[2 * k + 1]);
      const InputQuantizer q(engine_arith(engine), s, zp, DType::UInt8);
      const InputQuantizer onnx(Arith::Onnx, s, zp, DType::UInt8);
      for (int64_t i = 0; i < n; ++i) {
        const float xv = x.data<float>()[k * n + i];
        const int32_t want = y.data<int32_t>()[k * n + i];
        if (q.apply(xv) != want) {
          if (++bad <= 5) ADD_FAILURE() << "scale " << s << " zp " << zp << " x " << xv << ": torch " << want
                                        << ", quint " << q.apply(xv);
        }
        onnx_differs += onnx.apply(xv) != want;
      }
    }
    EXPECT_EQ(bad, 0) << "of " << K * n;
    EXPECT_GT(onnx_differs, 100) << "the vectors should tell division from multiplication apart";
  }
}

TEST(PytorchArith, QuantizeLinearOperatorUsesTheArithmetic) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Tensor p = npy(vec, "quant_" + engine + "_p"), x = npy(vec, "quant_" + engine + "_x"),
                 y = npy(vec, "quant_" + engine + "_y");
    const int64_t n = x.dim(1);
    for (int64_t k = 0; k < p.dim(0); k += 5) {
      std::vector<float> row(x.data<float>() + k * n, x.data<float>() + (k + 1) * n);
      OpRun r;
      r.op_type = "QuantizeLinear";
      r.options.arith = engine_arith(engine);
      r.inputs = {dyn(Tensor::from_vector<float>({1, 1, n}, row)), cst(Tensor::scalar<float>(p.data<float>()[2 * k])),
                  cst(Tensor::scalar<uint8_t>(static_cast<uint8_t>(p.data<float>()[2 * k + 1])))};
      const Tensor out = run_op(r)[0];
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(out.as_int64(i), y.data<int32_t>()[k * n + i]) << "row " << k << " element " << i << " x " << row[i];
    }
  }
}

// ---- add / add_relu ---------------------------------------------------------------------------

struct AddParams {
  float a_s, b_s, c_s;
  int32_t a_zp, b_zp, c_zp;
};
AddParams add_params(const Tensor& p, int64_t k) {
  const float* v = p.data<float>() + 6 * k;
  return {v[0], v[2], v[4], static_cast<int32_t>(v[1]), static_cast<int32_t>(v[3]), static_cast<int32_t>(v[5])};
}
AddRequantizer add_requantizer(Arith a, const AddParams& q, bool same_shape = true) {
  return AddRequantizer(a, q.a_s, q.a_zp, q.b_s, q.b_zp, q.c_s, q.c_zp, DType::UInt8, same_shape);
}

TEST(PytorchArith, AddMatchesTorchOnEveryBytePair) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Tensor p = npy(vec, "add_" + engine + "_p"), y = npy(vec, "add_" + engine + "_y");
    const Arith other = engine == "onednn" ? Arith::Qnnpack : Arith::OneDnn;
    int64_t bad = 0, other_differs = 0, onnx_differs = 0;
    for (int64_t k = 0; k < p.dim(0); ++k) {
      const AddParams q = add_params(p, k);
      const AddRequantizer add = add_requantizer(engine_arith(engine), q);
      EXPECT_EQ(add.kernel(), engine == "onednn" ? AddRequantizer::Kernel::AtenFloat : AddRequantizer::Kernel::QnnpackFixed);
      std::optional<AddRequantizer> alt;
      try {
        alt = add_requantizer(other, q);
      } catch (const Error&) {  // QNNPACK refuses scale ratios ATen takes
      }
      const AddRequantizer onnx = add_requantizer(Arith::Onnx, q);
      for (int32_t i = 0; i < 65536; ++i) {
        const int32_t a = i / 256, b = i % 256, want = y.data<int32_t>()[k * 65536 + i];
        if (add.apply(a, b) != want && ++bad <= 5)
          ADD_FAILURE() << "params " << k << " A " << a << " B " << b << ": torch " << want << ", quint " << add.apply(a, b);
        if (alt) other_differs += alt->apply(a, b) != want;
        onnx_differs += onnx.apply(a, b) != want;
      }
    }
    EXPECT_EQ(bad, 0) << "of " << p.dim(0) * 65536;
    EXPECT_GT(other_differs, 0) << "the vectors should tell the engines' adds apart";
    EXPECT_GT(onnx_differs, 0);
  }
}

TEST(PytorchArith, AddScalarTailMatchesTorch) {
  REQUIRE_TORCH();
  const Tensor p = npy(vec, "addtail_p"), a = npy(vec, "addtail_a"), b = npy(vec, "addtail_b"), y = npy(vec, "addtail_y");
  const float* v = p.data<float>();
  const AddRequantizer add(Arith::OneDnn, v[0], static_cast<int32_t>(v[1]), v[2], static_cast<int32_t>(v[3]), v[4],
                           static_cast<int32_t>(v[5]), DType::UInt8);
  int64_t bad = 0, tail_matters = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int32_t av = a.data<int32_t>()[i], bv = b.data<int32_t>()[i], want = y.data<int32_t>()[i];
    const bool tail = i % 100 >= 64;  // rows of 100: 64 vectorized, then ATen's scalar loop
    const int32_t got = tail ? add.apply_tail(av, bv) : add.apply(av, bv);
    if (got != want && ++bad <= 5) ADD_FAILURE() << "element " << i << (tail ? " (tail)" : "") << ": torch " << want << ", quint " << got;
    if (tail) tail_matters += add.apply(av, bv) != add.apply_tail(av, bv);
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(tail_matters, 0) << "the parameters should make the tail formula differ somewhere";
}

TEST(PytorchArith, AddKernelChoiceAndRefusals) {
  const AddParams q{0.05f, 0.07f, 0.06f, 3, 200, 0};
  EXPECT_EQ(add_requantizer(Arith::Qnnpack, q, true).kernel(), AddRequantizer::Kernel::QnnpackFixed);
  EXPECT_EQ(add_requantizer(Arith::Qnnpack, q, false).kernel(), AddRequantizer::Kernel::AtenFloat);  // broadcasting
  EXPECT_EQ(AddRequantizer(Arith::Qnnpack, 0.05f, 3, 0.07f, 9, 0.06f, 0, DType::Int8).kernel(),
            AddRequantizer::Kernel::AtenFloat);  // QNNPACK adds uint8 only
  EXPECT_EQ(add_requantizer(Arith::Fbgemm, q).kernel(), AddRequantizer::Kernel::AtenFloat);
  EXPECT_EQ(add_requantizer(Arith::Onnx, q).kernel(), AddRequantizer::Kernel::OnnxFma);
  // QNNPACK refuses A_s/C_s outside [2^-14, 2^8); ATen and ONNX take it.
  const AddParams wide{1.0f, 0.5f, 1.0f / 300, 0, 0, 0};
  EXPECT_THROW(add_requantizer(Arith::Qnnpack, wide), Error);
  EXPECT_NO_THROW(add_requantizer(Arith::OneDnn, wide));
  EXPECT_FALSE(add_requantizer(Arith::OneDnn, q).explain(17, 200).empty());
  EXPECT_FALSE(add_requantizer(Arith::Qnnpack, q).explain(17, 200).empty());
}

TEST(PytorchArith, QLinearAddOperatorUsesTheArithmetic) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Tensor p = npy(vec, "add_" + engine + "_p"), y = npy(vec, "add_" + engine + "_y");
    std::vector<uint8_t> av(65536), bv(65536);
    for (int i = 0; i < 65536; ++i) {
      av[i] = static_cast<uint8_t>(i / 256);
      bv[i] = static_cast<uint8_t>(i % 256);
    }
    for (int64_t k = 0; k < p.dim(0); k += 4) {
      const AddParams q = add_params(p, k);
      OpRun r;
      r.op_type = "QLinearAdd";
      r.domain = "com.microsoft";
      r.opset = 1;
      r.options.arith = engine_arith(engine);
      r.threads = 2;
      r.inputs = {dyn(Tensor::from_vector<uint8_t>({1, 256, 16, 16}, av)), cst(Tensor::scalar<float>(q.a_s)),
                  cst(Tensor::scalar<uint8_t>(static_cast<uint8_t>(q.a_zp))),
                  dyn(Tensor::from_vector<uint8_t>({1, 256, 16, 16}, bv)), cst(Tensor::scalar<float>(q.b_s)),
                  cst(Tensor::scalar<uint8_t>(static_cast<uint8_t>(q.b_zp))), cst(Tensor::scalar<float>(q.c_s)),
                  cst(Tensor::scalar<uint8_t>(static_cast<uint8_t>(q.c_zp)))};
      const Tensor out = run_op(r)[0];
      for (int64_t i = 0; i < 65536; ++i)
        ASSERT_EQ(out.as_int64(i), y.data<int32_t>()[k * 65536 + i]) << "params " << k << " element " << i;
    }
  }
}

// ---- AdaptiveAvgPool2d(1) -> QLinearGlobalAveragePool ------------------------------------------

// PyTorch keeps the input's scale and zero point; with y_s = x_s the onnx formula, QNNPACK's and
// ATen's channels-last one give the same result for every sum (measured on all sums for N = 4,
// 8, 15, 49, 196), so only ATen's two layouts can be told apart: at exact .5 ties (even N).
TEST(PytorchArith, GlobalAveragePoolMatchesTorch) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    for (const std::string hw : {"7x7", "14x14", "2x4"}) {
      SCOPED_TRACE(engine + " " + hw);
      const std::string tag = "avg_" + engine + "_" + hw;
      const Tensor p = npy(vec, tag + "_p"), x = npy(vec, tag + "_x"), ycl = npy(vec, tag + "_ycl"),
                   ynchw = npy(vec, tag + "_ynchw");
      const std::vector<int64_t> window = {x.dim(2), x.dim(3)};
      const int64_t npos = window[0] * window[1], rows = x.dim(1);
      int64_t bad = 0, total = 0, layouts_differ = 0, onnx_differs = 0;
      for (int64_t k = 0; k < p.dim(0); ++k) {
        const float s = p.data<float>()[2 * k];
        const int32_t zp = static_cast<int32_t>(p.data<float>()[2 * k + 1]);
        const Arith a = engine_arith(engine);
        const AvgPoolRequantizer cl(a, s, zp, s, zp, window, DType::UInt8, AvgPoolRequantizer::TorchLayout::ChannelsLast);
        const AvgPoolRequantizer nchw(a, s, zp, s, zp, window, DType::UInt8, AvgPoolRequantizer::TorchLayout::Contiguous);
        const AvgPoolRequantizer onnx(Arith::Onnx, s, zp, s, zp, window, DType::UInt8);
        for (int64_t r = 0; r < rows; ++r) {
          int64_t sum = 0;
          for (int64_t i = 0; i < npos; ++i) sum += x.data<uint8_t>()[r * npos + i];
          const int32_t want_cl = ycl.data<int32_t>()[k * rows + r], want_nchw = ynchw.data<int32_t>()[k * rows + r];
          bad += cl.apply(sum) != want_cl;
          bad += nchw.apply(sum) != want_nchw;
          total += 2;
          layouts_differ += want_cl != want_nchw;
          onnx_differs += onnx.apply(sum) != want_cl;
          if (bad && bad <= 2 && (cl.apply(sum) != want_cl || nchw.apply(sum) != want_nchw))
            ADD_FAILURE() << "params " << k << " row " << r << " sum " << sum << ": torch " << want_cl << "/" << want_nchw
                          << ", quint " << cl.apply(sum) << "/" << nchw.apply(sum);
        }
      }
      EXPECT_EQ(bad, 0) << "of " << total;
      EXPECT_EQ(onnx_differs, 0);
      if (engine == "onednn" && hw != "7x7") {
        EXPECT_GT(layouts_differ, 0) << "ATen's two layouts should round ties differently";
      } else {
        EXPECT_EQ(layouts_differ, 0) << "QNNPACK's pool does not depend on the layout; 7x7 has no ties";
      }
    }
  }
}

TEST(PytorchArith, QLinearGlobalAveragePoolOperatorUsesTheArithmetic) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const std::string tag = "avg_" + engine + "_7x7";
    const Tensor p = npy(vec, tag + "_p"), x = npy(vec, tag + "_x"), ycl = npy(vec, tag + "_ycl");
    const int64_t C = x.dim(1);
    for (int64_t k = 0; k < p.dim(0); ++k) {
      const uint8_t zp = static_cast<uint8_t>(p.data<float>()[2 * k + 1]);
      OpRun r;
      r.op_type = "QLinearGlobalAveragePool";
      r.domain = "com.microsoft";
      r.opset = 1;
      r.options.arith = engine_arith(engine);
      r.threads = 2;
      r.inputs = {dyn(x), cst(Tensor::scalar<float>(p.data<float>()[2 * k])),
                  cst(Tensor::scalar<uint8_t>(zp)), cst(Tensor::scalar<float>(p.data<float>()[2 * k])),
                  cst(Tensor::scalar<uint8_t>(zp))};
      const Tensor out = run_op(r)[0];
      ASSERT_EQ(out.numel(), C);
      for (int64_t i = 0; i < C; ++i) ASSERT_EQ(out.as_int64(i), ycl.data<int32_t>()[k * C + i]) << "params " << k << " sum " << i;
    }
  }
}

// ---- MaxPool2d(3, 2, 1): the exact window maximum under every engine --------------------------

TEST(PytorchArith, MaxPoolEqualsTorch) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Tensor x = npy(vec, "maxpool_" + engine + "_x"), y = npy(vec, "maxpool_" + engine + "_y");
    OpRun r;
    r.op_type = "MaxPool";
    r.options.arith = engine_arith(engine);
    r.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
    r.attrs.set("strides", std::vector<int64_t>{2, 2});
    r.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    r.inputs = {dyn(x)};
    EXPECT_TRUE(tensors_equal(run_op(r)[0], y));
  }
}

// ---- quantized Linear (the fc): ARITHMETIC.md's conv formulas, and QGemm with the float bias ---

struct LinearCase {
  Tensor w, ws, b, x, y;
  float x_s, y_s;
  int32_t x_zp, y_zp;
  int64_t N() const { return w.dim(0); }
  int64_t K() const { return w.dim(1); }
  ops::arith::LinearQuant quant() const {
    ops::arith::LinearQuant q;
    q.x_scale = x_s;
    q.w_scale.assign(ws.data<float>(), ws.data<float>() + N());
    q.y_scale = y_s;
    q.y_zero_point = y_zp;
    q.float_bias.assign(b.data<float>(), b.data<float>() + N());
    for (int64_t n = 0; n < N(); ++n)  // the exporter's int32 bias (models/README.md)
      q.bias.push_back(static_cast<int32_t>(std::nearbyint(static_cast<double>(q.float_bias[n]) /
                                                           (static_cast<double>(x_s) * q.w_scale[n]))));
    return q;
  }
};
LinearCase linear_case(const std::string& dir, const std::string& tag) {
  LinearCase c{npy(dir, tag + "_w"), npy(dir, tag + "_ws"), npy(dir, tag + "_b"), npy(dir, tag + "_x"), npy(dir, tag + "_y"), 0, 0, 0, 0};
  const Tensor p = npy(dir, tag + "_p");
  c.x_s = p.data<float>()[0];
  c.x_zp = static_cast<int32_t>(p.data<float>()[1]);
  c.y_s = p.data<float>()[2];
  c.y_zp = static_cast<int32_t>(p.data<float>()[3]);
  return c;
}

TEST(PytorchArith, LinearFollowsTheConvolutionFormulas) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    SCOPED_TRACE(engine);
    const Arith other = engine == "onednn" ? Arith::Qnnpack : Arith::OneDnn;
    int64_t bad = 0, total = 0, other_differs = 0;
    for (int k = 0; k < 12; ++k) {
      const LinearCase c = linear_case(vec, "linear_" + engine + "_" + std::to_string(k));
      const ops::arith::Requantizer rq(engine_arith(engine), c.quant(), c.N()), alt(other, c.quant(), c.N());
      EXPECT_TRUE(rq.note().empty()) << rq.note();
      for (int64_t m = 0; m < c.x.dim(0); ++m)
        for (int64_t n = 0; n < c.N(); ++n) {
          int32_t acc = 0;
          for (int64_t i = 0; i < c.K(); ++i)
            acc += (static_cast<int32_t>(c.x.data<uint8_t>()[m * c.K() + i]) - c.x_zp) *
                   static_cast<int32_t>(c.w.data<int8_t>()[n * c.K() + i]);
          const int32_t want = c.y.data<int32_t>()[m * c.N() + n];
          bad += rq.apply(n, acc) != want;
          other_differs += alt.apply(n, acc) != want;
          ++total;
        }
    }
    EXPECT_EQ(bad, 0) << "of " << total;
    EXPECT_GT(other_differs, 0) << "the vectors should tell the engines apart";
  }
}

// QGemm as the ResNet export writes the fc: transB=1, int32 C, and "<node>.bias_float".
TEST(PytorchArith, QGemmUsesTheFloatBias) {
  REQUIRE_TORCH();
  for (const std::string engine : kEngines) {
    int64_t onnx_differs = 0;
    for (int k = 0; k < 12; ++k) {
      SCOPED_TRACE(engine + " case " + std::to_string(k));
      const LinearCase c = linear_case(vec, "linear_" + engine + "_" + std::to_string(k));
      const ops::arith::LinearQuant q = c.quant();
      ModelBuilder mb;
      mb.opset("com.microsoft", 1);
      mb.input("x", DType::UInt8, {c.x.dim(0), c.K()});
      mb.initializer("x_scale", Tensor::scalar<float>(c.x_s));
      mb.initializer("x_zp", Tensor::scalar<uint8_t>(static_cast<uint8_t>(c.x_zp)));
      mb.initializer("w", c.w);
      if (engine == "qnnpack") mb.initializer("w_scale", Tensor::scalar<float>(q.w_scale[0]));
      else mb.initializer("w_scale", c.ws);
      mb.initializer("w_zp", engine == "qnnpack" ? Tensor::scalar<int8_t>(0)
                                                 : Tensor::from_vector<int8_t>({c.N()}, std::vector<int8_t>(c.N(), 0)));
      mb.initializer("bias", Tensor::from_vector<int32_t>({c.N()}, q.bias));
      mb.initializer("y_scale", Tensor::scalar<float>(c.y_s));
      mb.initializer("y_zp", Tensor::scalar<uint8_t>(static_cast<uint8_t>(c.y_zp)));
      mb.initializer("fc.bias_float", c.b);
      Attributes at;
      at.set("transB", int64_t{1});
      mb.node("QGemm", {"x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "bias", "y_scale", "y_zp"}, {"y"}, at,
              "com.microsoft", "fc");
      mb.output("y", DType::UInt8);
      const std::string path = mb.save("qgemm_" + engine + "_" + std::to_string(k) + ".onnx");
      SessionOptions so;
      so.arith = engine_arith(engine);
      Session s(path, so);
      const Tensor y = s.run({{"x", c.x}}).at("y");
      Tensor want(DType::UInt8, c.y.shape());
      for (int64_t i = 0; i < c.y.numel(); ++i) want.data<uint8_t>()[i] = static_cast<uint8_t>(c.y.data<int32_t>()[i]);
      EXPECT_TRUE(tensors_equal(y, want));
      const Tensor y_onnx = Session(path).run({{"x", c.x}}).at("y");  // int32 C, ONNX Runtime's formula
      for (int64_t i = 0; i < want.numel(); ++i) onnx_differs += y_onnx.as_int64(i) != want.as_int64(i);
    }
    std::printf("[ %s ] QGemm: ONNX Runtime's formula differs from torch in %lld outputs\n", engine.c_str(),
                static_cast<long long>(onnx_differs));
    if (engine == "onednn") {
      EXPECT_GT(onnx_differs, 0) << "the cases should need oneDNN's float bias";
    }
  }
}

}  // namespace
}  // namespace quint::test
