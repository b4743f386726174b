// Matrix products.
//   MatMul         (ai.onnx 1+)   Y = A·B, numpy's matmul: batch dims broadcast, a 1-D A is a row
//                                  [1, K] and a 1-D B a column [K, 1] whose unit dim is dropped.
//   Gemm           (ai.onnx 1+)   Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A (likewise B), C
//                                  unidirectionally broadcast to [M, N].
//   MatMulInteger  (ai.onnx 10+)  Y[m][n] = Σ_k (A[m][k] − a_zp[m]) · (B[k][n] − b_zp[n])  (int32)
//   QLinearMatMul  (ai.onnx 10+)  acc as MatMulInteger, y = requantize(acc) with ONNX Runtime's
//                                  M[n] = fl32(fl32(a_s · b_s[n]) / y_s),
//                                  y = sat(rne(fl32(fl32(acc) · M[n])) + y_zp)  (arith/requant.h)
//   QGemm          (com.microsoft) acc = Σ_k (A' − a_zp)(B' − b_zp[n]) + C[m][n]  (int32),
//                                  s[n] = fl32(fl32(alpha · a_s) · b_s[n]);
//                                  float Y = fl32(fl32(acc) · s[n]) without y_scale, else
//                                  y = sat(rne(fl32(fl32(acc) · fl32(s[n] / y_s))) + y_zp).
// Zero points are per tensor, per row of A (MatMulInteger) or per column of B, in the shapes
// ONNX allows: a vector for 2-D operands, or the operand's shape with the reduced dim set to 1
// ([..., M, 1] for A, [..., 1, N] for B).
//
// Integer accumulation: |A − a_zp| <= 255 and |B − b_zp| <= 255, so every product is below 2^16
// in magnitude and the int32 sum is exact for K <= 32768; longer sums wrap modulo 2^32, as ONNX
// Runtime's int32 accumulators do (computed in uint32 here, where wrapping is defined).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "arith/requant.h"
#include "common.h"
#include "explain_util.h"
#include "register.h"
#include "qmatmul_fast.h"
#include "sgemm.h"
#include "x86/cpu.h"

namespace quint::ops {

// ---------------------------------------------------------------------------------------------
// sgemm (declared in sgemm.h)
// ---------------------------------------------------------------------------------------------
namespace {

constexpr int64_t kMR = 4;    // rows of the register tile
constexpr int64_t kNR = 8;    // columns of the register tile (two 4-float vectors)
constexpr int64_t kKC = 256;  // depth of a packed block
constexpr int64_t kMC = 64;   // rows of A per task
constexpr int64_t kNC = 128;  // columns of B per task

using v4f = float __attribute__((vector_size(16)));

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Rows [m0, m0 + mc) and depth [k0, k0 + kc) of A as panels of kMR rows: dst[panel][k][r].
void pack_a(const FloatMatrix& a, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t p = 0; p < mc; p += kMR) {
    const int64_t rows = std::min(kMR, mc - p);
    const float* base = a.data + (m0 + p) * a.row_stride + k0 * a.col_stride;
    for (int64_t k = 0; k < kc; ++k, dst += kMR) {
      const float* src = base + k * a.col_stride;
      int64_t r = 0;
      for (; r < rows; ++r) dst[r] = src[r * a.row_stride];
      for (; r < kMR; ++r) dst[r] = 0.0f;
    }
  }
}

// Depth [k0, k0 + kc) and columns [n0, n0 + nc) of B as panels of kNR columns: dst[panel][k][j].
void pack_b(const FloatMatrix& b, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  for (int64_t p = 0; p < nc; p += kNR) {
    const int64_t cols = std::min(kNR, nc - p);
    const float* base = b.data + k0 * b.row_stride + (n0 + p) * b.col_stride;
    for (int64_t k = 0; k < kc; ++k, dst += kNR) {
      const float* src = base + k * b.row_stride;
      if (b.col_stride == 1 && cols == kNR) {
        std::memcpy(dst, src, kNR * sizeof(float));
        continue;
      }
      int64_t j = 0;
      for (; j < cols; ++j) dst[j] = src[j * b.col_stride];
      for (; j < kNR; ++j) dst[j] = 0.0f;
    }
  }
}

// c[r][j] (+)= Σ_k ap[k][r] · bp[k][j] for r < rows, j < cols.
void micro_tile(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, bool accumulate,
                int64_t rows, int64_t cols) {
  v4f c00{}, c01{}, c10{}, c11{}, c20{}, c21{}, c30{}, c31{};
  for (int64_t k = 0; k < kc; ++k, ap += kMR, bp += kNR) {
    const v4f b0 = load4(bp), b1 = load4(bp + 4);
    c00 += ap[0] * b0;
    c01 += ap[0] * b1;
    c10 += ap[1] * b0;
    c11 += ap[1] * b1;
    c20 += ap[2] * b0;
    c21 += ap[2] * b1;
    c30 += ap[3] * b0;
    c31 += ap[3] * b1;
  }
  alignas(16) float t[kMR][kNR];
  std::memcpy(&t[0][0], &c00, 16);
  std::memcpy(&t[0][4], &c01, 16);
  std::memcpy(&t[1][0], &c10, 16);
  std::memcpy(&t[1][4], &c11, 16);
  std::memcpy(&t[2][0], &c20, 16);
  std::memcpy(&t[2][4], &c21, 16);
  std::memcpy(&t[3][0], &c30, 16);
  std::memcpy(&t[3][4], &c31, 16);
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      for (int64_t j = 0; j < cols; ++j) cr[j] += t[r][j];
    } else {
      for (int64_t j = 0; j < cols; ++j) cr[j] = t[r][j];
    }
  }
}

}  // namespace

void sgemm(int64_t M, int64_t N, int64_t K, FloatMatrix a, FloatMatrix b, float* c, int64_t ldc,
           bool accumulate, Parallel* parallel) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
    return;
  }
  const int64_t mb = (M + kMC - 1) / kMC, nb = (N + kNC - 1) / kNC;
  auto tasks = [&](int64_t begin, int64_t end) {
    alignas(64) float apack[kMC * kKC];
    alignas(64) float bpack[kKC * kNC];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ni = t / mb, mi = t % mb;
      const int64_t m0 = mi * kMC, mc = std::min(kMC, M - m0);
      const int64_t n0 = ni * kNC, nc = std::min(kNC, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        pack_b(b, k0, kc, n0, nc, bpack);
        pack_a(a, m0, mc, k0, kc, apack);
        const bool acc = accumulate || k0 > 0;
        // A B micro-panel (kc × 8) stays in L1 while every A micro-panel of the block passes.
        for (int64_t j = 0; j < nc; j += kNR)
          for (int64_t i = 0; i < mc; i += kMR)
            micro_tile(kc, apack + i * kc, bpack + j * kc, c + (m0 + i) * ldc + n0 + j, ldc, acc,
                       std::min(kMR, mc - i), std::min(kNR, nc - j));
      }
    }
  };
  if (parallel && mb * nb > 1)
    parallel->parallel_for(mb * nb, 1, tasks);
  else
    tasks(0, mb * nb);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

// numpy matmul geometry. Operand matrices are contiguous M×K (A) and K×N (B) blocks; output
// batch t multiplies A's matrix a_index[t] by B's matrix b_index[t].
struct MatMulShape {
  int64_t M = 1, K = 1, N = 1;
  Shape a2, b2;  // the operands after 1-D promotion (rank >= 2)
  Shape out;
  std::vector<int64_t> a_index, b_index;
  int64_t batch() const { return static_cast<int64_t>(a_index.size()); }
  int64_t a_matrices() const { return shape_numel(Shape(a2.begin(), a2.end() - 2)); }
  int64_t b_matrices() const { return shape_numel(Shape(b2.begin(), b2.end() - 2)); }
  // True when B is one matrix and A's matrices are in batch order: the batch folds into M.
  bool folds_into_m() const {
    for (int64_t t = 0; t < batch(); ++t)
      if (b_index[t] != 0 || a_index[t] != t) return false;
    return true;
  }
};

MatMulShape matmul_shape(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    fail("operands must have rank >= 1, A has shape ", shape_str(a), ", B ", shape_str(b));
  MatMulShape s;
  s.a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  s.b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  s.M = s.a2[s.a2.size() - 2];
  s.K = s.a2.back();
  s.N = s.b2.back();
  if (s.b2[s.b2.size() - 2] != s.K)
    fail("inner dimensions differ: A ", shape_str(a), " has K = ", s.K, " but B ", shape_str(b), " has ",
         s.b2[s.b2.size() - 2], " rows");
  Shape a_batch(s.a2.begin(), s.a2.end() - 2), b_batch(s.b2.begin(), s.b2.end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch);
  s.out = batch;
  if (a.size() > 1) s.out.push_back(s.M);
  if (b.size() > 1) s.out.push_back(s.N);
  shape_numel(s.out);
  const int64_t count = shape_numel(batch);
  const std::vector<int64_t> as = broadcast_strides(a_batch, batch), bs = broadcast_strides(b_batch, batch);
  s.a_index.resize(static_cast<size_t>(count));
  s.b_index.resize(static_cast<size_t>(count));
  for (int64_t t = 0; t < count; ++t) {
    int64_t rem = t, ai = 0, bi = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t coord = rem % batch[d];
      rem /= batch[d];
      ai += coord * as[d];
      bi += coord * bs[d];
    }
    s.a_index[t] = ai;
    s.b_index[t] = bi;
  }
  return s;
}

// Where a per-row (A) or per-column (B) quantization parameter keeps the value of operand
// matrix i, row or column r: at i·batch_stride + r·vec_stride.
struct ParamLayout {
  int64_t batch_stride = 0, vec_stride = 0;
  int64_t at(int64_t matrix, int64_t r) const { return matrix * batch_stride + r * vec_stride; }
};

// Validates the shape of a parameter of an operand of shape `op` (rank >= 2 after promotion):
// a scalar, a vector (2-D operands), or the operand's shape with the reduced dim set to 1.
ParamLayout param_layout(const Shape& p, const Shape& op, bool per_column, bool allow_vector,
                         const char* what) {
  const int64_t len = per_column ? op.back() : op[op.size() - 2];
  if (shape_numel(p) == 1 && p.size() <= 1) return {};
  if (allow_vector) {
    if (op.size() == 2 && p.size() == 1 && p[0] == len) return {0, 1};
    Shape want = op;
    want[op.size() - (per_column ? 2 : 1)] = 1;
    if (p == want) return {len, 1};
    fail(what, " must be a scalar, a vector of ", len, " (one per ", per_column ? "column" : "row",
         ") or have shape ", shape_str(want), "; has shape ", shape_str(p));
  }
  fail(what, " must be a scalar, has shape ", shape_str(p));
}

// Values of a small parameter tensor as int32 / float.
std::vector<int32_t> int_values(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<int32_t>(t.as_int64(i));
  return v;
}
std::vector<float> float_values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

void check_scales(const Tensor& t, const char* what) {
  for (float v : t.values<float>())
    if (!std::isfinite(v) || v <= 0) fail(what, " must be finite and > 0, got ", v);
}

// ---------------------------------------------------------------------------------------------
// Float MatMul and Gemm
// ---------------------------------------------------------------------------------------------

class MatMulFloat final : public Kernel {
 public:
  explicit MatMulFloat(MatMulShape s) : s_(std::move(s)), fold_(s_.folds_into_m()) {}
  int64_t macs() const override { return s_.batch() * s_.M * s_.N * s_.K; }

  void run(const RunContext& ctx) const override {
    const float* a = ctx.in(0).data<float>();
    const float* b = ctx.in(1).data<float>();
    float* y = ctx.out(0).data<float>();
    const int64_t M = s_.M, N = s_.N, K = s_.K;
    if (fold_) {
      sgemm(s_.batch() * M, N, K, {a, K, 1}, {b, N, 1}, y, N, false, ctx.parallel);
      return;
    }
    for (int64_t t = 0; t < s_.batch(); ++t)
      sgemm(M, N, K, {a + s_.a_index[t] * M * K, K, 1}, {b + s_.b_index[t] * K * N, N, 1}, y + t * M * N, N,
            false, ctx.parallel);
  }

 private:
  MatMulShape s_;
  bool fold_;
};

std::unique_ptr<Kernel> build_matmul(BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_dtype(0, {DType::Float32}, "A");
  ctx.expect_dtype(1, {DType::Float32}, "B");
  MatMulShape s = matmul_shape(ctx.input(0).shape, ctx.input(1).shape);
  ctx.set_output(0, DType::Float32, s.out);
  return std::make_unique<MatMulFloat>(std::move(s));
}

struct GemmParams {
  int64_t M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1, beta = 1;
  bool has_c = false;
  int64_t c_row_stride = 0, c_col_stride = 0;  // C read as c[m·row + n·col] (0 where broadcast)
};

// Gemm's operand geometry, shared with QGemm: A [M, K] (or [K, M] with transA), B [K, N]
// (or [N, K]), C unidirectionally broadcastable to [M, N].
void gemm_geometry(const BuildContext& ctx, GemmParams& p, size_t a_idx, size_t b_idx, size_t c_idx) {
  const Shape& a = ctx.input(a_idx).shape;
  const Shape& b = ctx.input(b_idx).shape;
  if (a.size() != 2) fail("A must be 2-D, has shape ", shape_str(a));
  if (b.size() != 2) fail("B must be 2-D, has shape ", shape_str(b));
  p.trans_a = ctx.attrs().get_int("transA", 0) != 0;
  p.trans_b = ctx.attrs().get_int("transB", 0) != 0;
  p.M = p.trans_a ? a[1] : a[0];
  p.K = p.trans_a ? a[0] : a[1];
  p.N = p.trans_b ? b[0] : b[1];
  const int64_t kb = p.trans_b ? b[1] : b[0];
  if (kb != p.K)
    fail("inner dimensions differ: A", p.trans_a ? "ᵀ" : "", " ", shape_str(a), " has K = ", p.K, " but B",
         p.trans_b ? "ᵀ" : "", " ", shape_str(b), " has ", kb);
  p.has_c = ctx.has_input(c_idx);
  if (p.has_c) {
    const Shape& c = ctx.input(c_idx).shape;
    if (c.size() > 2) fail("C must have rank <= 2, has shape ", shape_str(c));
    const int64_t cm = c.size() == 2 ? c[0] : 1, cn = c.empty() ? 1 : c.back();
    if ((cm != 1 && cm != p.M) || (cn != 1 && cn != p.N))
      fail("C of shape ", shape_str(c), " cannot be broadcast to [", p.M, ",", p.N, "]");
    p.c_row_stride = cm == 1 ? 0 : cn;
    p.c_col_stride = cn == 1 ? 0 : 1;
  }
}

class GemmFloat final : public Kernel {
 public:
  explicit GemmFloat(GemmParams p) : p_(p) {}
  int64_t macs() const override { return p_.M * p_.N * p_.K; }

  void run(const RunContext& ctx) const override {
    const float* a = ctx.in(0).data<float>();
    const float* b = ctx.in(1).data<float>();
    float* y = ctx.out(0).data<float>();
    const int64_t M = p_.M, N = p_.N, K = p_.K;
    FloatMatrix am = p_.trans_a ? FloatMatrix{a, 1, M} : FloatMatrix{a, K, 1};
    FloatMatrix bm = p_.trans_b ? FloatMatrix{b, 1, K} : FloatMatrix{b, N, 1};
    sgemm(M, N, K, am, bm, y, N, false, ctx.parallel);
    const float* c = p_.has_c ? ctx.in(2).data<float>() : nullptr;
    if (!c && p_.alpha == 1.0f) return;
    ctx.parallel->parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1)),
                               [&](int64_t m0, int64_t m1) {
                                 for (int64_t m = m0; m < m1; ++m) {
                                   float* yr = y + m * N;
                                   for (int64_t n = 0; n < N; ++n) {
                                     float v = p_.alpha * yr[n];
                                     if (c) v += p_.beta * c[m * p_.c_row_stride + n * p_.c_col_stride];
                                     yr[n] = v;
                                   }
                                 }
                               });
  }

 private:
  GemmParams p_;
};

std::unique_ptr<Kernel> build_gemm(BuildContext& ctx) {
  ctx.expect_inputs(2, 3);
  ctx.expect_dtype(0, {DType::Float32}, "A");
  ctx.expect_dtype(1, {DType::Float32}, "B");
  if (ctx.has_input(2)) ctx.expect_dtype(2, {DType::Float32}, "C");
  GemmParams p;
  gemm_geometry(ctx, p, 0, 1, 2);
  p.alpha = ctx.attrs().get_float("alpha", 1.0f);
  p.beta = ctx.attrs().get_float("beta", 1.0f);
  ctx.set_output(0, DType::Float32, {p.M, p.N});
  return std::make_unique<GemmFloat>(p);
}

// ---------------------------------------------------------------------------------------------
// Integer products
// ---------------------------------------------------------------------------------------------

// B − b_zp as int16 (|value| <= 255), K×N row-major, for one operand matrix.
template <class B>
void prepare_b(const B* b, int64_t b_rs, int64_t b_cs, int64_t K, int64_t N, const int32_t* zp,
               int64_t zp_stride, int16_t* out) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      out[k * N + n] = static_cast<int16_t>(static_cast<int32_t>(b[k * b_rs + n * b_cs]) - zp[n * zp_stride]);
}

constexpr int64_t kTileRows = 4;
constexpr int64_t kTileCols = 256;

// One tile of an integer product: rows [m0, m0 + rows), columns [n0, n0 + cols) of
//   acc[m][n] = Σ_k (A(m, k) − a_zp[m]) · bs[k][n]      (wrapping int32)
// with A(m, k) = a[m·a_rs + k·a_cs]; a_zp[m] = azp[m·azp_stride]. Calls
// epilogue(m, n0, cols, acc_row) for each row.
template <class A, class Epilogue>
void int_gemm_tile(int64_t m0, int64_t rows, int64_t n0, int64_t cols, int64_t N, int64_t K, const A* a,
                   int64_t a_rs, int64_t a_cs, const int32_t* azp, int64_t azp_stride, const int16_t* bs,
                   Epilogue&& epilogue) {
  alignas(64) uint32_t acc[kTileRows][kTileCols];
  for (int64_t r = 0; r < rows; ++r) std::fill(acc[r], acc[r] + cols, 0u);
  for (int64_t k = 0; k < K; ++k) {
    const int16_t* brow = bs + k * N + n0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t m = m0 + r;
      const int32_t av = static_cast<int32_t>(a[m * a_rs + k * a_cs]) - azp[m * azp_stride];
      if (av == 0) continue;
      uint32_t* ar = acc[r];
      for (int64_t j = 0; j < cols; ++j) ar[j] += static_cast<uint32_t>(av * static_cast<int32_t>(brow[j]));
    }
  }
  for (int64_t r = 0; r < rows; ++r) epilogue(m0 + r, n0, cols, acc[r]);
}

// Everything an integer matrix product of (possibly batched) operands needs, validated at load.
struct IntMatMul {
  MatMulShape s;
  DType a_type = DType::UInt8, b_type = DType::UInt8;
  ParamLayout a_zp_layout, b_zp_layout;
  // Zero points as int32, when constant (otherwise read at run time).
  bool zp_constant = true;
  std::vector<int32_t> a_zp{0}, b_zp{0};
  // B − b_zp for every B matrix when B and its zero point are constant.
  std::vector<int16_t> b_prepared;

  size_t scratch_bytes() const {
    return b_prepared.empty() ? static_cast<size_t>(s.b_matrices() * s.K * s.N) * sizeof(int16_t) : 0;
  }

  // Runs the product; epilogue(t, m, n0, cols, acc) receives output batch t, row m.
  template <class Epilogue>
  void run(const RunContext& ctx, size_t a_idx, size_t a_zp_idx, size_t b_idx, size_t b_zp_idx,
           const Epilogue& epilogue) const {
    std::vector<int32_t> dyn_azp, dyn_bzp;
    const int32_t* azp = a_zp.data();
    const int32_t* bzp = b_zp.data();
    if (!zp_constant) {
      if (ctx.has_in(a_zp_idx)) {
        dyn_azp = int_values(ctx.in(a_zp_idx));
        azp = dyn_azp.data();
      }
      if (ctx.has_in(b_zp_idx)) {
        dyn_bzp = int_values(ctx.in(b_zp_idx));
        bzp = dyn_bzp.data();
      }
    }
    const int64_t M = s.M, K = s.K, N = s.N;
    const int16_t* bs = b_prepared.data();
    if (b_prepared.empty()) {
      int16_t* scratch = static_cast<int16_t*>(ctx.scratch);
      visit_quant8(b_type, [&](auto bt) {
        using B = decltype(bt);
        const B* b = ctx.in(b_idx).data<B>();
        ctx.parallel->parallel_for(s.b_matrices(), 1, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            prepare_b(b + i * K * N, N, 1, K, N, bzp + b_zp_layout.at(i, 0), b_zp_layout.vec_stride,
                      scratch + i * K * N);
        });
        return 0;
      });
      bs = scratch;
    }
    const int64_t row_tiles = (M + kTileRows - 1) / kTileRows;
    const int64_t col_tiles = (N + kTileCols - 1) / kTileCols;
    const int64_t tiles = row_tiles * col_tiles;
    visit_quant8(a_type, [&](auto at) {
      using A = decltype(at);
      const A* a = ctx.in(a_idx).data<A>();
      ctx.parallel->parallel_for(s.batch() * tiles, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t t = i / tiles, tile = i % tiles;
          const int64_t m0 = (tile / col_tiles) * kTileRows, n0 = (tile % col_tiles) * kTileCols;
          const int64_t ai = s.a_index[t], bi = s.b_index[t];
          int_gemm_tile(m0, std::min(kTileRows, M - m0), n0, std::min(kTileCols, N - n0), N, K,
                        a + ai * M * K, K, 1, azp + a_zp_layout.at(ai, 0), a_zp_layout.vec_stride,
                        bs + bi * K * N, [&](int64_t m, int64_t c0, int64_t cols, const uint32_t* acc) {
                          epilogue(t, bi, m, c0, cols, acc);
                        });
        }
      });
      return 0;
    });
  }
};

// Validates A, B and their zero points (inputs a_idx, a_zp_idx, b_idx, b_zp_idx).
IntMatMul int_matmul(const BuildContext& ctx, size_t a_idx, size_t a_zp_idx, size_t b_idx, size_t b_zp_idx,
                     bool per_row_a) {
  ctx.expect_dtype(a_idx, {DType::UInt8, DType::Int8}, "A");
  ctx.expect_dtype(b_idx, {DType::UInt8, DType::Int8}, "B");
  IntMatMul p;
  p.a_type = ctx.input(a_idx).dtype;
  p.b_type = ctx.input(b_idx).dtype;
  p.s = matmul_shape(ctx.input(a_idx).shape, ctx.input(b_idx).shape);
  if (ctx.has_input(a_zp_idx)) {
    const ValueInfo& z = ctx.input(a_zp_idx);
    if (z.dtype != p.a_type)
      fail("A's zero point must have A's type ", dtype_name(p.a_type), ", got ", dtype_name(z.dtype));
    p.a_zp_layout = param_layout(z.shape, p.s.a2, false, per_row_a, "A's zero point");
    if (z.constant)
      p.a_zp = int_values(*z.constant);
    else
      p.zp_constant = false;
  }
  if (ctx.has_input(b_zp_idx)) {
    const ValueInfo& z = ctx.input(b_zp_idx);
    if (z.dtype != p.b_type)
      fail("B's zero point must have B's type ", dtype_name(p.b_type), ", got ", dtype_name(z.dtype));
    p.b_zp_layout = param_layout(z.shape, p.s.b2, true, true, "B's zero point");
    if (z.constant)
      p.b_zp = int_values(*z.constant);
    else
      p.zp_constant = false;
  }
  const ValueInfo& b = ctx.input(b_idx);
  if (b.constant && p.zp_constant) {
    const int64_t K = p.s.K, N = p.s.N;
    p.b_prepared.resize(static_cast<size_t>(p.s.b_matrices() * K * N));
    visit_quant8(p.b_type, [&](auto bt) {
      using B = decltype(bt);
      const B* data = b.constant->data<B>();
      for (int64_t i = 0; i < p.s.b_matrices(); ++i)
        prepare_b(data + i * K * N, N, 1, K, N, p.b_zp.data() + p.b_zp_layout.at(i, 0),
                  p.b_zp_layout.vec_stride, p.b_prepared.data() + i * K * N);
      return 0;
    });
  }
  return p;
}

class MatMulIntegerKernel final : public Kernel {
 public:
  explicit MatMulIntegerKernel(IntMatMul p) : p_(std::move(p)) {}
  int64_t macs() const override { return p_.s.batch() * p_.s.M * p_.s.N * p_.s.K; }
  size_t scratch_bytes() const override { return p_.scratch_bytes(); }

  void run(const RunContext& ctx) const override {
    int32_t* y = ctx.out(0).data<int32_t>();
    const int64_t M = p_.s.M, N = p_.s.N;
    p_.run(ctx, 0, 2, 1, 3,
           [&](int64_t t, int64_t, int64_t m, int64_t n0, int64_t cols, const uint32_t* acc) {
             int32_t* yr = y + (t * M + m) * N + n0;
             for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<int32_t>(acc[j]);
           });
  }

 private:
  IntMatMul p_;
};

std::unique_ptr<Kernel> build_matmul_integer(BuildContext& ctx) {
  ctx.expect_inputs(2, 4);
  IntMatMul p = int_matmul(ctx, 0, 2, 1, 3, true);
  ctx.set_output(0, DType::Int32, p.s.out);
  return std::make_unique<MatMulIntegerKernel>(std::move(p));
}

// ---------------------------------------------------------------------------------------------
// QLinearMatMul
// ---------------------------------------------------------------------------------------------

class QLinearMatMulKernel final : public Kernel {
 public:
  QLinearMatMulKernel(IntMatMul p, ParamLayout b_scale_layout, DType y_type, Arith arith,
                      std::optional<arith::Requantizer> requant)
      : p_(std::move(p)),
        bsl_(b_scale_layout),
        y_type_(y_type),
        arith_(arith),
        requant_(std::move(requant)) {}
  int64_t macs() const override { return p_.s.batch() * p_.s.M * p_.s.N * p_.s.K; }
  size_t scratch_bytes() const override { return p_.scratch_bytes(); }

  void run(const RunContext& ctx) const override {
    std::optional<arith::Requantizer> dyn;
    if (!requant_) dyn = make_requantizer(arith_, ctx.in(1), ctx.in(4), ctx.in(6), ctx.in(7), y_type_);
    const arith::Requantizer& rq = requant_ ? *requant_ : *dyn;
    const int64_t M = p_.s.M, N = p_.s.N;
    visit_quant8(y_type_, [&](auto yt) {
      using Y = decltype(yt);
      Y* y = ctx.out(0).data<Y>();
      p_.run(ctx, 0, 2, 3, 5,
             [&](int64_t t, int64_t bi, int64_t m, int64_t n0, int64_t cols, const uint32_t* acc) {
               Y* yr = y + (t * M + m) * N + n0;
               for (int64_t j = 0; j < cols; ++j)
                 yr[j] = static_cast<Y>(rq.apply(bsl_.at(bi, n0 + j), static_cast<int32_t>(acc[j])));
             });
      return 0;
    });
  }

  // M[i] = fl32(fl32(a_s · b_s[i]) / y_s) for each b scale i (arith/requant.h, no bias).
  static arith::Requantizer make_requantizer(Arith scheme, const Tensor& a_s, const Tensor& b_s,
                                             const Tensor& y_s, const Tensor& y_zp, DType y_type) {
    arith::LinearQuant q;
    q.x_scale = a_s.data<float>()[0];
    q.w_scale = float_values(b_s);
    q.y_scale = y_s.data<float>()[0];
    q.y_zero_point = static_cast<int32_t>(y_zp.as_int64(0));
    q.y_type = y_type;
    return arith::Requantizer(scheme, q, static_cast<int64_t>(q.w_scale.size()));
  }

 private:
  IntMatMul p_;
  ParamLayout bsl_;
  DType y_type_;
  Arith arith_;
  std::optional<arith::Requantizer> requant_;
};

std::unique_ptr<Kernel> build_qlinear_matmul(BuildContext& ctx) {
  ctx.expect_inputs(8, 8);
  IntMatMul p = int_matmul(ctx, 0, 2, 3, 5, false);
  for (size_t i : {1, 4, 6}) {
    const char* what = i == 1 ? "a_scale" : i == 4 ? "b_scale" : "y_scale";
    ctx.expect_dtype(i, {DType::Float32}, what);
    if (ctx.input(i).constant) check_scales(*ctx.input(i).constant, what);
  }
  param_layout(ctx.input(1).shape, p.s.a2, false, false, "a_scale (per-row scales are not supported)");
  // The spec wants b_scale and b_zero_point of one shape; ONNX Runtime accepts any valid pair
  // (say per-column scales with one zero point), and so does quint: each has its own layout.
  ParamLayout bsl = param_layout(ctx.input(4).shape, p.s.b2, true, true, "b_scale");
  param_layout(ctx.input(6).shape, p.s.a2, false, false, "y_scale");
  param_layout(ctx.input(7).shape, p.s.a2, false, false, "y_zero_point");
  ctx.expect_dtype(7, {DType::UInt8, DType::Int8}, "y_zero_point");
  const DType y_type = ctx.input(7).dtype;

  std::optional<arith::Requantizer> rq;
  QuantParams yq;
  const ValueInfo &as = ctx.input(1), &bs = ctx.input(4), &ys = ctx.input(6), &yz = ctx.input(7);
  if (as.constant && bs.constant && ys.constant && yz.constant) {
    rq = QLinearMatMulKernel::make_requantizer(ctx.options().arith, *as.constant, *bs.constant, *ys.constant,
                                               *yz.constant, y_type);
    yq.scale = {ys.constant->data<float>()[0]};
    yq.zero_point = {static_cast<int32_t>(yz.constant->as_int64(0))};
  }
  ctx.set_output(0, y_type, p.s.out, yq);
  // The fast path: one constant B, constant parameters, an integer-bias arithmetic.
  const x86::QGemmKernel* gemm = x86::qgemm_kernel(x86::resolve_isa(ctx.options().isa));
  if (gemm && rq && rq->integer_bias() && ctx.input(3).constant && p.s.b_matrices() == 1 && p.s.folds_into_m() &&
      p.zp_constant && p.a_zp.size() == 1 && p.b_zp_layout.batch_stride == 0 && bsl.batch_stride == 0) {
    FastMatMulSpec spec;
    spec.rows = p.s.batch() * p.s.M;
    spec.K = p.s.K;
    spec.N = p.s.N;
    spec.a_type = p.a_type;
    spec.b_type = p.b_type;
    spec.a_zp = p.a_zp[0];
    for (int64_t n = 0; n < (p.b_zp_layout.vec_stride ? p.s.N : 1); ++n)
      spec.b_zp.push_back(p.b_zp[static_cast<size_t>(p.b_zp_layout.at(0, n))]);
    spec.b = *ctx.input(3).constant;
    spec.requant = *rq;
    spec.a_input = 0;
    return make_fast_qmatmul(std::move(spec), *gemm);
  }
  return std::make_unique<QLinearMatMulKernel>(std::move(p), bsl, y_type, ctx.options().arith, std::move(rq));
}

// ---------------------------------------------------------------------------------------------
// QGemm (com.microsoft)
// ---------------------------------------------------------------------------------------------

class QGemmKernel final : public Kernel {
 public:
  QGemmKernel(GemmParams g, DType a_type, DType b_type, int32_t a_zp, std::vector<int32_t> b_zp,
              std::vector<int16_t> b_prepared, std::vector<float> scale, bool quantized,
              arith::Requantizer requant, DType y_type)
      : g_(g),
        a_type_(a_type),
        b_type_(b_type),
        a_zp_(a_zp),
        b_zp_(std::move(b_zp)),
        b_prepared_(std::move(b_prepared)),
        scale_(std::move(scale)),
        quantized_(quantized),
        requant_(std::move(requant)),
        y_type_(y_type) {}
  int64_t macs() const override { return g_.M * g_.N * g_.K; }
  size_t scratch_bytes() const override {
    return b_prepared_.empty() ? static_cast<size_t>(g_.K * g_.N) * sizeof(int16_t) : 0;
  }

  void run(const RunContext& ctx) const override {
    const int64_t M = g_.M, N = g_.N, K = g_.K;
    const int16_t* bs = b_prepared_.data();
    if (b_prepared_.empty()) {
      int16_t* scratch = static_cast<int16_t*>(ctx.scratch);
      visit_quant8(b_type_, [&](auto bt) {
        using B = decltype(bt);
        const B* b = ctx.in(3).data<B>();
        prepare_b(b, g_.trans_b ? 1 : N, g_.trans_b ? K : 1, K, N, b_zp_.data(), b_zp_.size() > 1 ? 1 : 0,
                  scratch);
        return 0;
      });
      bs = scratch;
    }
    const int32_t* c = g_.has_c ? ctx.in(6).data<int32_t>() : nullptr;
    const int64_t row_tiles = (M + kTileRows - 1) / kTileRows;
    const int64_t col_tiles = (N + kTileCols - 1) / kTileCols;
    visit_quant8(a_type_, [&](auto at) {
      using A = decltype(at);
      const A* a = ctx.in(0).data<A>();
      const int64_t a_rs = g_.trans_a ? 1 : K, a_cs = g_.trans_a ? M : 1;
      ctx.parallel->parallel_for(row_tiles * col_tiles, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t m0 = (i / col_tiles) * kTileRows, n0 = (i % col_tiles) * kTileCols;
          int_gemm_tile(m0, std::min(kTileRows, M - m0), n0, std::min(kTileCols, N - n0), N, K, a, a_rs, a_cs,
                        &a_zp_, 0, bs, [&](int64_t m, int64_t c0, int64_t cols, const uint32_t* acc) {
                          epilogue(ctx, c, m, c0, cols, acc);
                        });
        }
      });
      return 0;
    });
  }

 private:
  void epilogue(const RunContext& ctx, const int32_t* c, int64_t m, int64_t n0, int64_t cols,
                const uint32_t* acc) const {
    const int64_t N = g_.N;
    auto total = [&](int64_t j) {
      uint32_t v = acc[j];
      if (c) v += static_cast<uint32_t>(c[m * g_.c_row_stride + (n0 + j) * g_.c_col_stride]);
      return static_cast<int32_t>(v);
    };
    const bool per_col = scale_.size() > 1;
    if (!quantized_) {
      float* y = ctx.out(0).data<float>() + m * N + n0;
      for (int64_t j = 0; j < cols; ++j) y[j] = static_cast<float>(total(j)) * scale_[per_col ? n0 + j : 0];
      return;
    }
    visit_quant8(y_type_, [&](auto yt) {
      using Y = decltype(yt);
      Y* y = ctx.out(0).data<Y>() + m * N + n0;
      for (int64_t j = 0; j < cols; ++j)
        y[j] = static_cast<Y>(requant_.apply(per_col ? n0 + j : 0, total(j)));
      return 0;
    });
  }

  GemmParams g_;
  DType a_type_, b_type_;
  int32_t a_zp_;
  std::vector<int32_t> b_zp_;
  std::vector<int16_t> b_prepared_;
  std::vector<float> scale_;  // s[n] = fl32(fl32(alpha·a_s)·b_s[n]) (float output)
  bool quantized_;
  arith::Requantizer requant_;
  DType y_type_;
};

std::unique_ptr<Kernel> build_qgemm(BuildContext& ctx) {
  ctx.expect_inputs(6, 9);
  ctx.expect_dtype(0, {DType::UInt8, DType::Int8}, "A");
  ctx.expect_dtype(3, {DType::UInt8, DType::Int8}, "B");
  GemmParams g;
  gemm_geometry(ctx, g, 0, 3, 6);
  if (g.has_c) ctx.expect_dtype(6, {DType::Int32}, "C");
  const float alpha = ctx.attrs().get_float("alpha", 1.0f);
  if (!std::isfinite(alpha)) fail("alpha must be finite, got ", alpha);
  const DType a_type = ctx.input(0).dtype, b_type = ctx.input(3).dtype;
  QuantInput aq = read_quant_input(ctx, 1, 2, 0, "A", a_type);
  QuantInput bq = read_quant_input(ctx, 4, 5, g.N, "B", b_type);
  if (ctx.has_input(5) && ctx.input(4).shape != ctx.input(5).shape)
    fail("b_scale has shape ", shape_str(ctx.input(4).shape), " but b_zero_point ",
         shape_str(ctx.input(5).shape));
  const bool quantized = ctx.has_input(7);
  if (!quantized && ctx.has_input(8)) fail("y_zero_point is given without y_scale");

  std::vector<float> scale;
  const float alpha_a = alpha * aq.scale[0];
  for (float bs : bq.scale) scale.push_back(alpha_a * bs);

  arith::Requantizer requant;
  DType y_type = DType::Float32;
  QuantParams yq;
  if (quantized) {
    QuantInput y = read_quant_input(ctx, 7, 8, 0, "Y");
    y_type = ctx.has_input(8) ? y.zp_dtype : DType::UInt8;
    if (!is_quant8(y_type)) fail("y_zero_point must be uint8 or int8, got ", dtype_name(y_type));
    arith::LinearQuant lq;
    lq.x_scale = alpha_a;  // fl32(alpha · a_s): the multiplier becomes fl32(fl32(alpha_a · b_s) / y_s)
    lq.w_scale = bq.scale;
    lq.y_scale = y.scale[0];
    lq.y_zero_point = y.zero_point[0];
    lq.y_type = y_type;
    // [pytorch-arith] PyTorch's engines requantize from the bias themselves (oneDNN adds its float
    // bias in float, QNNPACK re-derives the int32 one from it), so under their arithmetics a
    // constant per-column C moves into the Requantizer, with the float bias the model may carry
    // ("<node>.bias_float", models/README.md), and the kernel no longer adds C itself.
    if (ctx.options().arith != Arith::Onnx && g.has_c && g.c_row_stride == 0 && ctx.input(6).constant) {
      const int32_t* c = ctx.input(6).constant->data<int32_t>();
      for (int64_t n = 0; n < g.N; ++n) lq.bias.push_back(c[n * g.c_col_stride]);
      if (const Tensor* fb = ctx.extra("float_bias");
          fb && fb->dtype() == DType::Float32 && fb->numel() == g.N)
        lq.float_bias.assign(fb->data<float>(), fb->data<float>() + g.N);
      if (lq.w_scale.size() == 1) lq.w_scale.assign(static_cast<size_t>(g.N), lq.w_scale[0]);
      if (scale.size() == 1)
        scale.assign(static_cast<size_t>(g.N), scale[0]);  // one requantizer channel per column
      g.has_c = false;
    }
    requant = arith::Requantizer(ctx.options().arith, lq, static_cast<int64_t>(lq.w_scale.size()));
    yq = to_quant_params(y);
  }

  std::vector<int16_t> b_prepared;
  if (const Tensor* b = ctx.input(3).constant) {
    b_prepared.resize(static_cast<size_t>(g.K * g.N));
    visit_quant8(b_type, [&](auto bt) {
      using B = decltype(bt);
      prepare_b(b->data<B>(), g.trans_b ? 1 : g.N, g.trans_b ? g.K : 1, g.K, g.N, bq.zero_point.data(),
                bq.zero_point.size() > 1 ? 1 : 0, b_prepared.data());
      return 0;
    });
  }
  ctx.set_output(0, y_type, {g.M, g.N}, yq);
  // The fast path: quantized output, constant B, A not transposed, C absent or one int32 per
  // column, an integer-bias arithmetic.
  const x86::QGemmKernel* gemm = x86::qgemm_kernel(x86::resolve_isa(ctx.options().isa));
  const bool c_per_column = !g.has_c || (g.c_row_stride == 0 && ctx.input(6).constant);
  if (gemm && quantized && requant.integer_bias() && ctx.input(3).constant && !g.trans_a && c_per_column) {
    FastMatMulSpec spec;
    spec.rows = g.M;
    spec.K = g.K;
    spec.N = g.N;
    spec.a_type = a_type;
    spec.b_type = b_type;
    spec.a_zp = aq.zero_point[0];
    spec.b_zp = bq.zero_point;
    spec.b = *ctx.input(3).constant;
    spec.b_transposed = g.trans_b;
    if (g.has_c) {
      const int32_t* c = ctx.input(6).constant->data<int32_t>();
      for (int64_t n = 0; n < g.N; ++n) spec.bias.push_back(c[n * g.c_col_stride]);
    }
    spec.requant = requant;
    spec.a_input = 0;
    return make_fast_qmatmul(std::move(spec), *gemm);
  }
  return std::make_unique<QGemmKernel>(g, a_type, b_type, aq.zero_point[0], bq.zero_point,
                                       std::move(b_prepared), std::move(scale), quantized, std::move(requant),
                                       y_type);
}

// ---------------------------------------------------------------------------------------------
// explain: one output element of QLinearMatMul / QGemm, recomputed from the inputs
// ---------------------------------------------------------------------------------------------

// Up to `limit` values of a strided vector of 8-bit integers, as text.
std::string int_row(const Tensor& t, int64_t base, int64_t stride, int64_t count, int64_t limit = 24) {
  std::string s;
  for (int64_t i = 0; i < std::min(count, limit); ++i)
    s += (i ? " " : "") + std::to_string(t.as_int64(base + i * stride));
  if (count > limit) s += cat(" … (", count - limit, " more)");
  return s;
}

// The sums behind acc = Σ_k (a_k − a_zp)(b_k − b_zp) and the pitfalls they reveal.
struct DotTerms {
  int64_t sum_ab = 0, sum_a = 0, sum_b = 0, k = 0, acc = 0;
};
DotTerms dot_terms(const Tensor& a, int64_t a_base, int64_t a_stride, int32_t a_zp, const Tensor& b,
                   int64_t b_base, int64_t b_stride, int32_t b_zp, int64_t K) {
  DotTerms d;
  d.k = K;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t av = a.as_int64(a_base + k * a_stride), bv = b.as_int64(b_base + k * b_stride);
    d.sum_ab += av * bv;
    d.sum_a += av;
    d.sum_b += bv;
  }
  d.acc = d.sum_ab - int64_t{b_zp} * d.sum_a - int64_t{a_zp} * d.sum_b + K * a_zp * b_zp;
  return d;
}

int32_t wrap32(int64_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
}

void explain_linear(Explanation& e, const DotTerms& d, int64_t extra, const char* extra_name,
                    const arith::LinearQuant& lq, int64_t channels, int64_t c, int32_t a_zp, int32_t b_zp) {
  const int64_t total = d.acc + extra;
  const int32_t acc = wrap32(total);
  e.details.push_back(
      cat("K = ", d.k, " products; Σ a·b = ", d.sum_ab, ", Σ a = ", d.sum_a, ", Σ b = ", d.sum_b));
  e.details.push_back(
      cat("accumulator = Σ (a − a_zp)(b − b_zp) = Σ a·b − b_zp·Σ a − a_zp·Σ b + K·a_zp·b_zp = ", d.sum_ab,
          " − ", b_zp, "·", d.sum_a, " − ", a_zp, "·", d.sum_b, " + ", d.k, "·", a_zp, "·", b_zp, " = ",
          d.acc, extra_name ? cat(", + ", extra_name, " ", extra, " = ", total) : std::string(),
          total != acc ? cat(" (wraps to ", acc, " in int32)") : std::string()));
  e.schemes = linear_schemes(lq, channels, c, acc);
  arith::Requantizer onnx(Arith::Onnx, lq, channels);
  auto add = [&](std::string label, std::string formula, int64_t v) {
    e.pitfalls.push_back({std::move(label), std::move(formula), std::to_string(v)});
  };
  add("zero points not subtracted",
      cat("Σ a·b = ", d.sum_ab, extra_name ? cat(" + ", extra_name) : std::string(),
          " used as the accumulator"),
      onnx.apply(c, wrap32(d.sum_ab + extra)));
  if (lq.w_scale.size() > 1) {
    arith::LinearQuant pt = lq;
    pt.w_scale = {lq.w_scale[0]};
    arith::Requantizer r(Arith::Onnx, pt, channels);
    add("one b scale for every column",
        cat("column 0's scale ", fmt_float(lq.w_scale[0]), " instead of this one's"), r.apply(c, acc));
  }
  const float ws = lq.w_scale[lq.w_scale.size() == 1 ? 0 : static_cast<size_t>(c)];
  const double real = static_cast<double>(acc) * (static_cast<double>(lq.x_scale) * ws / lq.y_scale);
  const int64_t lo = lq.y_type == DType::Int8 ? -128 : 0, hi = lq.y_type == DType::Int8 ? 127 : 255;
  add("float64 multiplier, rounding half away from zero",
      cat("round(", fmt_float(real), ") + y_zp, saturated"),
      std::clamp<int64_t>(static_cast<int64_t>(std::round(real)) + lq.y_zero_point, lo, hi));
}

Explanation explain_qlinear_matmul(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  build_qlinear_matmul(eb.ctx());  // validates the node exactly as a run does
  const Tensor &a = *ec.inputs[0], &b = *ec.inputs[3];
  const MatMulShape s = matmul_shape(a.shape(), b.shape());
  const int64_t off = checked_offset(ec.index, s.out);
  const int64_t n = off % s.N, m = (off / s.N) % s.M, t = off / (s.M * s.N);
  const int64_t ai = s.a_index[t], bi = s.b_index[t];
  const ParamLayout bsl = param_layout(ec.inputs[4]->shape(), s.b2, true, true, "b_scale");
  const ParamLayout bzl = param_layout(ec.inputs[5]->shape(), s.b2, true, true, "b_zero_point");
  const int32_t a_zp = static_cast<int32_t>(ec.inputs[2]->as_int64(0));
  const int32_t b_zp = static_cast<int32_t>(ec.inputs[5]->as_int64(bzl.at(bi, n)));
  arith::LinearQuant lq;
  lq.x_scale = ec.inputs[1]->data<float>()[0];
  lq.w_scale = float_values(*ec.inputs[4]);
  lq.y_scale = ec.inputs[6]->data<float>()[0];
  lq.y_zero_point = static_cast<int32_t>(ec.inputs[7]->as_int64(0));
  lq.y_type = ec.inputs[7]->dtype();
  const int64_t c = bsl.at(bi, n);

  Explanation e;
  e.op_type = "QLinearMatMul";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("output ", fmt_index(ec.index), " = row ", m, " of A's matrix ", ai,
                          " times column ", n, " of B's matrix ", bi, " (A ", shape_str(a.shape()), ", B ",
                          shape_str(b.shape()), ")"));
  e.details.push_back(
      cat("a: ", dtype_name(a.dtype()), ", scale ", fmt_float(lq.x_scale), ", zero point ", a_zp));
  e.details.push_back(cat("b: ", dtype_name(b.dtype()), ", scale ",
                          fmt_float(lq.w_scale[static_cast<size_t>(c)]),
                          lq.w_scale.size() > 1 ? " (per column)" : " (per tensor)", ", zero point ", b_zp));
  e.details.push_back(
      cat("y: ", dtype_name(lq.y_type), ", scale ", fmt_float(lq.y_scale), ", zero point ", lq.y_zero_point));
  const int64_t a_base = (ai * s.M + m) * s.K, b_base = bi * s.K * s.N + n;
  e.details.push_back("A row:    " + int_row(a, a_base, 1, s.K));
  e.details.push_back("B column: " + int_row(b, b_base, s.N, s.K));
  const DotTerms d = dot_terms(a, a_base, 1, a_zp, b, b_base, s.N, b_zp, s.K);
  explain_linear(e, d, 0, nullptr, lq, static_cast<int64_t>(lq.w_scale.size()), c, a_zp, b_zp);
  return e;
}

Explanation explain_qgemm(const ExplainContext& ec) {
  ExplainBuild eb(ec);
  build_qgemm(eb.ctx());
  if (ec.inputs.size() < 8 || !ec.inputs[7])
    fail("explain covers QGemm with a quantized output; this node has no y_scale, its output is float32");
  GemmParams g;
  gemm_geometry(eb.ctx(), g, 0, 3, 6);
  const std::vector<int64_t> out{g.M, g.N};
  checked_offset(ec.index, out);
  const int64_t m = ec.index[0], n = ec.index[1];
  const Tensor &a = *ec.inputs[0], &b = *ec.inputs[3];
  const float alpha = ec.attrs.get_float("alpha", 1.0f);
  const int32_t a_zp = ec.inputs[2] ? static_cast<int32_t>(ec.inputs[2]->as_int64(0)) : 0;
  const bool per_col = ec.inputs[4]->numel() > 1;
  const int32_t b_zp = ec.inputs[5] ? static_cast<int32_t>(ec.inputs[5]->as_int64(per_col ? n : 0)) : 0;
  int64_t c_val = 0;
  if (g.has_c) c_val = ec.inputs[6]->as_int64(m * g.c_row_stride + n * g.c_col_stride);
  arith::LinearQuant lq;
  const float a_s = ec.inputs[1]->data<float>()[0];
  lq.x_scale = alpha * a_s;
  lq.w_scale = float_values(*ec.inputs[4]);
  lq.y_scale = ec.inputs[7]->data<float>()[0];
  lq.y_zero_point =
      ec.inputs.size() > 8 && ec.inputs[8] ? static_cast<int32_t>(ec.inputs[8]->as_int64(0)) : 0;
  lq.y_type = ec.inputs.size() > 8 && ec.inputs[8] ? ec.inputs[8]->dtype() : DType::UInt8;

  Explanation e;
  e.op_type = "QGemm";
  e.node = ec.node.name;
  e.index = ec.index;
  e.details.push_back(cat("output ", fmt_index(ec.index), " = row ", m, " of A", g.trans_a ? "ᵀ" : "",
                          " times column ", n, " of B", g.trans_b ? "ᵀ" : "", ", plus C[", m, "][", n, "]"));
  e.details.push_back(cat("a: ", dtype_name(a.dtype()), ", scale ", fmt_float(a_s), ", zero point ", a_zp,
                          "; alpha ", fmt_float(alpha),
                          ": the multiplier uses fl32(alpha·a_s) = ", fmt_float(lq.x_scale)));
  e.details.push_back(cat("b: ", dtype_name(b.dtype()), ", scale ",
                          fmt_float(lq.w_scale[per_col ? static_cast<size_t>(n) : 0]),
                          per_col ? " (per column)" : " (per tensor)", ", zero point ", b_zp));
  e.details.push_back(
      cat("y: ", dtype_name(lq.y_type), ", scale ", fmt_float(lq.y_scale), ", zero point ", lq.y_zero_point));
  const int64_t a_base = g.trans_a ? m : m * g.K, a_stride = g.trans_a ? g.M : 1;
  const int64_t b_base = g.trans_b ? n * g.K : n, b_stride = g.trans_b ? 1 : g.N;
  e.details.push_back("A row:    " + int_row(a, a_base, a_stride, g.K));
  e.details.push_back("B column: " + int_row(b, b_base, b_stride, g.K));
  const DotTerms d = dot_terms(a, a_base, a_stride, a_zp, b, b_base, b_stride, b_zp, g.K);
  explain_linear(e, d, c_val, g.has_c ? "C" : nullptr, lq, static_cast<int64_t>(lq.w_scale.size()),
                 per_col ? n : 0, a_zp, b_zp);
  return e;
}

}  // namespace

void register_matmul(Registry& r) {
  r.add({"ai.onnx", "MatMul", 1, 1000, build_matmul});
  r.add({"ai.onnx", "Gemm", 1, 1000, build_gemm});
  r.add({"ai.onnx", "MatMulInteger", 10, 1000, build_matmul_integer});
  OpDef qlmm{"ai.onnx", "QLinearMatMul", 10, 1000, build_qlinear_matmul};
  qlmm.explain = explain_qlinear_matmul;
  r.add(qlmm);
  OpDef qgemm{"com.microsoft", "QGemm", 1, 1000, build_qgemm};
  qgemm.explain = explain_qgemm;
  r.add(qgemm);
}

}  // namespace quint::ops
