// MatMul, Gemm, MatMulInteger, QLinearMatMul and com.microsoft QGemm against naive references
// written here from the formulas (numpy matmul broadcasting by index arithmetic; integer sums in
// int64; the requantization of ONNX Runtime 1.30 as shared/ARITHMETIC.md and
// docs/onnxruntime-semantics.md state it, spelled out with float32 operations one by one).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"

namespace quint::test {

namespace {

std::mt19937& rng() {
  static std::mt19937 g(20240607);
  return g;
}
int64_t rand_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}
float rand_float(float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng());
}

template <class T>
Tensor random_int_tensor(const Shape& s, bool extremes = false) {
  Tensor t(dtype_of<T>, s);
  const int64_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t v = rand_int(lo, hi);
    if (extremes) v = std::vector<int64_t>{lo, hi, lo + 1, hi - 1, 0}[rand_int(0, 4)];
    t.data<T>()[i] = static_cast<T>(v);
  }
  return t;
}
Tensor random_float_tensor(const Shape& s) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = rand_float(-1, 1);
  return t;
}
Tensor random_q(DType t, const Shape& s, bool extremes = false) {
  return t == DType::UInt8 ? random_int_tensor<uint8_t>(s, extremes) : random_int_tensor<int8_t>(s, extremes);
}
int64_t qlo(DType t) {
  return t == DType::UInt8 ? 0 : -128;
}
int64_t qhi(DType t) {
  return t == DType::UInt8 ? 255 : 127;
}
// A zero point at the type's extremes, 0, or anywhere.
int64_t random_zp(DType t) {
  switch (rand_int(0, 3)) {
    case 0:
      return qlo(t);
    case 1:
      return qhi(t);
    case 2:
      return 0;
    default:
      return rand_int(qlo(t), qhi(t));
  }
}
Tensor q_tensor(DType t, const Shape& s, const std::vector<int64_t>& v) {
  Tensor r(t, s);
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (t == DType::UInt8)
      r.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
    else
      r.data<int8_t>()[i] = static_cast<int8_t>(v[i]);
  }
  return r;
}
// Scales: random, or powers of two so that many products land on exact .5 ties.
float random_scale(bool pow2) {
  if (pow2) return std::ldexp(1.0f, static_cast<int>(rand_int(-9, -3)));
  return std::exp(rand_float(std::log(1e-3f), std::log(0.1f)));
}

OpRun op(const char* type, const char* domain = "ai.onnx", int opset = 13) {
  OpRun r;
  r.op_type = type;
  r.domain = domain;
  r.opset = opset;
  return r;
}

void expect_error(const OpRun& r, const std::string& what) {
  try {
    run_op(r);
    ADD_FAILURE() << r.op_type << ": no error, expected one mentioning '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what();
  }
}

// numpy matmul geometry, by index arithmetic: A's element [t][m][k] and B's [t][k][n] of output
// batch t, after 1-D promotion and broadcasting of the batch dims.
struct MatMulRef {
  Shape a2, b2, batch, out;
  int64_t M = 0, K = 0, N = 0;
  MatMulRef(const Shape& a, const Shape& b) {
    a2 = a.size() == 1 ? Shape{1, a[0]} : a;
    b2 = b.size() == 1 ? Shape{b[0], 1} : b;
    M = a2[a2.size() - 2];
    K = a2.back();
    N = b2.back();
    const size_t ra = a2.size() - 2, rb = b2.size() - 2, r = std::max(ra, rb);
    for (size_t d = 0; d < r; ++d) {
      int64_t da = d + ra >= r ? a2[d + ra - r] : 1, db = d + rb >= r ? b2[d + rb - r] : 1;
      batch.push_back(da == 1 ? db : da);
    }
    out = batch;
    if (a.size() > 1) out.push_back(M);
    if (b.size() > 1) out.push_back(N);
  }
  int64_t batches() const {
    int64_t n = 1;
    for (int64_t d : batch) n *= d;
    return n;
  }
  // Index of operand `op`'s matrix (op = a2 or b2) for output batch t.
  int64_t matrix(const Shape& op, int64_t t) const {
    const size_t r = op.size() - 2;
    std::vector<int64_t> coords(batch.size());
    for (size_t d = batch.size(); d-- > 0;) {
      coords[d] = t % batch[d];
      t /= batch[d];
    }
    int64_t flat = 0;
    for (size_t d = 0; d < r; ++d) {
      const int64_t dim = op[d];
      flat = flat * dim + (dim == 1 ? 0 : coords[batch.size() - r + d]);
    }
    return flat;
  }
  int64_t a_at(int64_t t, int64_t m, int64_t k) const { return (matrix(a2, t) * M + m) * K + k; }
  int64_t b_at(int64_t t, int64_t k, int64_t n) const { return (matrix(b2, t) * K + k) * N + n; }
  // Index into a per-column parameter of shape `p` ([], [1], [N] or B's shape with [-2] = 1).
  int64_t col_param(const Shape& p, int64_t t, int64_t n) const {
    int64_t numel = 1;
    for (int64_t d : p) numel *= d;
    if (numel == 1) return 0;
    if (p.size() == 1) return n;
    return matrix(b2, t) * N + n;
  }
  int64_t row_param(const Shape& p, int64_t t, int64_t m) const {
    int64_t numel = 1;
    for (int64_t d : p) numel *= d;
    if (numel == 1) return 0;
    if (p.size() == 1) return m;
    return matrix(a2, t) * M + m;
  }
};

// Σ_k (A − a_zp[m]) (B − b_zp[n]) in int64 for every output element.
std::vector<int64_t> int_matmul_ref(const Tensor& a, const Tensor& b, const Tensor* azp, const Tensor* bzp) {
  MatMulRef g(a.shape(), b.shape());
  std::vector<int64_t> acc;
  for (int64_t t = 0; t < g.batches(); ++t)
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        int64_t s = 0;
        const int64_t za = azp ? azp->as_int64(g.row_param(azp->shape(), t, m)) : 0;
        const int64_t zb = bzp ? bzp->as_int64(g.col_param(bzp->shape(), t, n)) : 0;
        for (int64_t k = 0; k < g.K; ++k)
          s += (a.as_int64(g.a_at(t, m, k)) - za) * (b.as_int64(g.b_at(t, k, n)) - zb);
        acc.push_back(s);
      }
  return acc;
}

// ONNX Runtime's requantization of one accumulator: fl32(fl32(acc) · M), round half to even,
// add the zero point, saturate.
int64_t requant_ref(int64_t acc, float multiplier, int64_t zp, DType t) {
  const float accf = static_cast<float>(static_cast<int32_t>(acc));
  const float v = accf * multiplier;
  double r = std::nearbyint(static_cast<double>(v)) + static_cast<double>(zp);
  r = std::min<double>(std::max<double>(r, static_cast<double>(qlo(t))), static_cast<double>(qhi(t)));
  return static_cast<int64_t>(r);
}

Attributes attrs_of(std::initializer_list<std::pair<const char*, AttributeValue>> list) {
  Attributes a;
  for (const auto& [k, v] : list) a.set(k, v);
  return a;
}

// ---------------------------------------------------------------------------------------------
// MatMul
// ---------------------------------------------------------------------------------------------

const std::vector<std::pair<Shape, Shape>> kMatMulShapes = {{{5, 7}, {7, 3}},
                                                            {{7}, {7, 3}},
                                                            {{5, 7}, {7}},
                                                            {{7}, {7}},
                                                            {{2, 3, 5, 7}, {7, 4}},
                                                            {{5, 7}, {2, 7, 4}},
                                                            {{2, 1, 5, 7}, {3, 7, 4}},
                                                            {{1, 1, 1}, {1, 1, 1}},
                                                            {{3, 1, 9}, {3, 9, 1}},
                                                            {{4, 70, 300}, {300, 130}},
                                                            {{1, 530}, {530, 257}},
                                                            {{2, 2, 3, 600}, {2, 1, 600, 9}},
                                                            {{9, 0}, {0, 4}},
                                                            {{0, 5}, {5, 3}}};

TEST(MatMul, MatchesNaiveReferenceWithBroadcasting) {
  for (const auto& [as, bs] : kMatMulShapes) {
    SCOPED_TRACE(shape_str(as) + " x " + shape_str(bs));
    Tensor a = random_float_tensor(as), b = random_float_tensor(bs);
    MatMulRef g(as, bs);
    Tensor want(DType::Float32, g.out);
    int64_t i = 0;
    for (int64_t t = 0; t < g.batches(); ++t)
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = 0; n < g.N; ++n, ++i) {
          double s = 0;
          for (int64_t k = 0; k < g.K; ++k)
            s += static_cast<double>(a.data<float>()[g.a_at(t, m, k)]) * b.data<float>()[g.b_at(t, k, n)];
          want.data<float>()[i] = static_cast<float>(s);
        }
    for (int threads : {1, 2}) {
      OpRun r = op("MatMul");
      r.inputs = {dyn(a), dyn(b)};
      r.threads = threads;
      auto got = run_op(r);
      EXPECT_TRUE(tensors_close(got[0], want, 1e-5, 1e-5));
    }
  }
}

TEST(MatMul, ResultDoesNotDependOnThreadCount) {
  Tensor a = random_float_tensor({300, 777}), b = random_float_tensor({777, 300});
  OpRun r = op("MatMul");
  r.inputs = {dyn(a), dyn(b)};
  auto one = run_op(r);
  r.threads = 2;
  auto two = run_op(r);
  EXPECT_TRUE(tensors_equal(one[0], two[0]));
}

TEST(MatMul, Errors) {
  OpRun r = op("MatMul");
  r.inputs = {dyn(random_float_tensor({2, 3})), dyn(random_float_tensor({4, 2}))};
  expect_error(r, "inner dimensions differ");
  r.inputs = {dyn(random_float_tensor({2, 2, 3})), dyn(random_float_tensor({3, 3, 2}))};
  expect_error(r, "cannot be broadcast");
  r.inputs = {dyn(Tensor::scalar<float>(1)), dyn(random_float_tensor({1}))};
  expect_error(r, "rank >= 1");
  r.inputs = {dyn(random_q(DType::UInt8, {2, 2})), dyn(random_float_tensor({2, 2}))};
  expect_error(r, "must be float32");
}

// ---------------------------------------------------------------------------------------------
// Gemm
// ---------------------------------------------------------------------------------------------

TEST(Gemm, AlphaBetaTransposesAndBiasBroadcasting) {
  const std::vector<std::optional<Shape>> c_shapes = {std::nullopt, Shape{},     Shape{1},   Shape{6},
                                                      Shape{1, 6},  Shape{5, 1}, Shape{5, 6}};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& cs : c_shapes) {
        const int64_t M = 5, K = 9, N = 6;
        const float alpha = ta ? 0.5f : 1.0f, beta = tb ? -2.0f : 1.0f;
        Tensor a = random_float_tensor(ta ? Shape{K, M} : Shape{M, K});
        Tensor b = random_float_tensor(tb ? Shape{N, K} : Shape{K, N});
        Tensor c = cs ? random_float_tensor(*cs) : Tensor();
        Tensor want(DType::Float32, {M, N});
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k)
              s += static_cast<double>(a.data<float>()[ta ? k * M + m : m * K + k]) *
                   b.data<float>()[tb ? n * K + k : k * N + n];
            double v = alpha * s;
            if (cs) {
              const Shape& sh = *cs;
              int64_t cm = sh.size() == 2 ? sh[0] : 1, cn = sh.empty() ? 1 : sh.back();
              v += beta * c.data<float>()[(cm == 1 ? 0 : m) * cn + (cn == 1 ? 0 : n)];
            }
            want.data<float>()[m * N + n] = static_cast<float>(v);
          }
        OpRun r = op("Gemm");
        r.attrs =
            attrs_of({{"alpha", alpha}, {"beta", beta}, {"transA", int64_t{ta}}, {"transB", int64_t{tb}}});
        r.inputs = {dyn(a), cst(b)};
        if (cs) r.inputs.push_back(cst(c));
        SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb) + " C " +
                     (cs ? shape_str(*cs) : "none"));
        EXPECT_TRUE(tensors_close(run_op(r)[0], want, 1e-5, 1e-5));
      }
}

TEST(Gemm, Errors) {
  OpRun r = op("Gemm");
  r.inputs = {dyn(random_float_tensor({2, 3})), dyn(random_float_tensor({3, 4})),
              dyn(random_float_tensor({3, 4}))};
  expect_error(r, "cannot be broadcast to [2,4]");
  r.inputs = {dyn(random_float_tensor({2, 3})), dyn(random_float_tensor({2, 4}))};
  expect_error(r, "inner dimensions differ");
  r.inputs = {dyn(random_float_tensor({1, 2, 3})), dyn(random_float_tensor({3, 4}))};
  expect_error(r, "A must be 2-D");
  r.inputs = {dyn(random_float_tensor({2, 3})), dyn(random_float_tensor({3, 4})),
              dyn(random_float_tensor({1, 1, 4}))};
  expect_error(r, "rank <= 2");
}

// ---------------------------------------------------------------------------------------------
// MatMulInteger
// ---------------------------------------------------------------------------------------------

struct ZpCase {
  Shape a, b;
  std::optional<Shape> azp, bzp;
};

const std::vector<ZpCase> kIntCases = {
    {{6, 40}, {40, 7}, Shape{}, Shape{}},
    {{6, 40}, {40, 7}, Shape{1}, Shape{7}},
    {{6, 40}, {40, 7}, Shape{6}, Shape{1, 7}},
    {{3, 6, 33}, {33, 17}, Shape{}, Shape{17}},
    {{2, 3, 5, 20}, {2, 3, 20, 9}, Shape{2, 3, 5, 1}, Shape{2, 3, 1, 9}},
    {{8, 33}, {2, 33, 17}, std::nullopt, Shape{2, 1, 17}},
    {{2, 1, 5, 40}, {3, 40, 16}, Shape{}, std::nullopt},
    {{40}, {40, 9}, Shape{}, Shape{9}},
    {{5, 40}, {40}, Shape{5}, Shape{}},
    {{3, 600}, {600, 300}, Shape{}, Shape{300}},
};

TEST(MatMulInteger, MatchesNaiveReference) {
  for (DType at : {DType::UInt8, DType::Int8})
    for (DType bt : {DType::UInt8, DType::Int8})
      for (const ZpCase& c : kIntCases)
        for (bool constant : {true, false}) {
          SCOPED_TRACE(std::string(dtype_name(at)) + " x " + dtype_name(bt) + " " + shape_str(c.a) + " x " +
                       shape_str(c.b) + (constant ? " constant B" : " run-time B"));
          Tensor a = random_q(at, c.a), b = random_q(bt, c.b, true);
          Tensor azp, bzp;
          OpRun r = op("MatMulInteger");
          r.inputs = {dyn(a), constant ? cst(b) : dyn(b)};
          if (c.azp) {
            std::vector<int64_t> v;
            for (int64_t i = 0; i < shape_numel(*c.azp); ++i) v.push_back(random_zp(at));
            azp = q_tensor(at, *c.azp, v);
            r.inputs.push_back(constant ? cst(azp) : dyn(azp));
          } else {
            r.inputs.push_back(OpInput::absent_input());
          }
          if (c.bzp) {
            std::vector<int64_t> v;
            for (int64_t i = 0; i < shape_numel(*c.bzp); ++i) v.push_back(random_zp(bt));
            bzp = q_tensor(bt, *c.bzp, v);
            r.inputs.push_back(constant ? cst(bzp) : dyn(bzp));
          }
          std::vector<int64_t> acc = int_matmul_ref(a, b, c.azp ? &azp : nullptr, c.bzp ? &bzp : nullptr);
          MatMulRef g(c.a, c.b);
          Tensor want(DType::Int32, g.out);
          for (size_t i = 0; i < acc.size(); ++i) want.data<int32_t>()[i] = static_cast<int32_t>(acc[i]);
          r.threads = constant ? 1 : 2;
          EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
        }
}

TEST(MatMulInteger, ExtremeProductsAndInt32Wraparound) {
  // 255 × (−128) and 255 × 127 terms; with K = 40000 the sum of 255·255 passes 2^31 and wraps
  // modulo 2^32, as ONNX Runtime's int32 accumulator does.
  const int64_t K = 40000;
  Tensor a = q_tensor(DType::UInt8, {1, K}, std::vector<int64_t>(K, 255));
  std::vector<int64_t> bv;
  for (int64_t k = 0; k < K; ++k) bv.insert(bv.end(), {-128, 127, -128});
  Tensor b = q_tensor(DType::Int8, {K, 3}, bv);
  Tensor bzp = q_tensor(DType::Int8, {3}, {0, 0, 127});  // column 2: (−128 − 127) = −255
  OpRun r = op("MatMulInteger");
  r.inputs = {dyn(a), cst(b), cst(Tensor::scalar<uint8_t>(0)), cst(bzp)};
  Tensor got = run_op(r)[0];
  auto wrap = [](int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); };
  EXPECT_EQ(got.data<int32_t>()[0], wrap(255 * -128 * K));
  EXPECT_EQ(got.data<int32_t>()[1], wrap(255 * 127 * K));
  EXPECT_EQ(got.data<int32_t>()[2], wrap(255 * -255 * K));
  EXPECT_NE(static_cast<int64_t>(got.data<int32_t>()[2]), 255 * -255 * K);  // it did wrap
}

TEST(MatMulInteger, Errors) {
  OpRun r = op("MatMulInteger");
  r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), dyn(random_q(DType::Int8, {3, 4})),
              cst(Tensor::scalar<int8_t>(0))};
  expect_error(r, "A's zero point must have A's type uint8");
  r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), dyn(random_q(DType::Int8, {3, 4})),
              cst(Tensor::scalar<uint8_t>(0)), cst(random_q(DType::Int8, {3}))};
  expect_error(r, "B's zero point must be a scalar, a vector of 4");
  r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), dyn(random_q(DType::Int8, {3, 4})),
              cst(random_q(DType::UInt8, {3}))};
  expect_error(r, "A's zero point must be a scalar, a vector of 2");
  r.inputs = {dyn(random_float_tensor({2, 3})), dyn(random_q(DType::Int8, {3, 4}))};
  expect_error(r, "A (input 0) must be uint8 or int8, got float32");
  r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), dyn(random_q(DType::Int8, {2, 4}))};
  expect_error(r, "inner dimensions differ");
}

// ---------------------------------------------------------------------------------------------
// QLinearMatMul
// ---------------------------------------------------------------------------------------------

struct QmmCase {
  Shape a, b, bq;  // bq: shape of b_scale / b_zero_point
};

const std::vector<QmmCase> kQmmCases = {
    {{16, 40}, {40, 24}, {}},
    {{16, 40}, {40, 24}, {24}},
    {{16, 40}, {40, 24}, {1, 24}},
    {{3, 8, 33}, {33, 17}, {17}},
    {{8, 33}, {2, 33, 17}, {}},
    {{2, 1, 5, 40}, {3, 40, 16}, {1}},
    {{2, 3, 7, 20}, {2, 3, 20, 9}, {2, 3, 1, 9}},
    {{40}, {40, 9}, {9}},
    {{5, 40}, {40}, {}},
    {{4, 1280}, {1280, 100}, {100}},  // MobileNetV2's classifier: per-column int8 weights
};

// One random QLinearMatMul case and its expected output.
struct QmmRun {
  OpRun run = op("QLinearMatMul");
  Tensor want;
};

QmmRun make_qmm(DType at, DType bt, const QmmCase& c, bool pow2, bool extremes, bool constant) {
  Tensor a = random_q(at, c.a, extremes), b = random_q(bt, c.b, extremes);
  const int64_t nq = shape_numel(c.bq);
  std::vector<float> bs(nq);
  std::vector<int64_t> bzv(nq);
  for (int64_t i = 0; i < nq; ++i) {
    bs[i] = random_scale(pow2);
    bzv[i] = random_zp(bt);
  }
  Tensor b_scale = Tensor::from_vector<float>(c.bq, bs), b_zp = q_tensor(bt, c.bq, bzv);
  const float a_s = random_scale(pow2);
  Tensor a_zp = q_tensor(at, {}, {random_zp(at)});
  std::vector<int64_t> acc = int_matmul_ref(a, b, &a_zp, &b_zp);
  // y_s so that most outputs fall inside the type's range; saturation happens too.
  double spread = 1;
  for (int64_t v : acc) spread = std::max(spread, std::fabs(static_cast<double>(v)));
  float y_s = static_cast<float>(a_s * bs[0] * spread / 200);
  if (pow2) y_s = std::ldexp(1.0f, static_cast<int>(std::lround(std::log2(y_s))));
  const DType yt = at;
  const int64_t yzp = random_zp(yt);
  MatMulRef g(c.a, c.b);
  QmmRun q;
  q.want = Tensor(yt, g.out);
  size_t i = 0;
  for (int64_t t = 0; t < g.batches(); ++t)
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n, ++i) {
        const float prod = a_s * bs[g.col_param(c.bq, t, n)];
        const float mult = prod / y_s;
        const int64_t y = requant_ref(acc[i], mult, yzp, yt);
        if (yt == DType::UInt8)
          q.want.data<uint8_t>()[i] = static_cast<uint8_t>(y);
        else
          q.want.data<int8_t>()[i] = static_cast<int8_t>(y);
      }
  auto in = [&](Tensor t) { return constant ? cst(std::move(t)) : dyn(std::move(t)); };
  q.run.inputs = {dyn(a),
                  in(Tensor::scalar<float>(a_s)),
                  in(a_zp),
                  in(b),
                  in(b_scale),
                  in(b_zp),
                  in(Tensor::scalar<float>(y_s)),
                  in(q_tensor(yt, {}, {yzp}))};
  return q;
}

TEST(QLinearMatMul, MatchesOnnxRuntimeFormula) {
  int ties = 0;
  for (auto [at, bt] : {std::pair{DType::UInt8, DType::UInt8}, std::pair{DType::UInt8, DType::Int8},
                        std::pair{DType::Int8, DType::Int8}, std::pair{DType::Int8, DType::UInt8}})
    for (const QmmCase& c : kQmmCases)
      for (int variant = 0; variant < 4; ++variant) {
        const bool pow2 = variant & 1, extremes = variant & 2, constant = variant != 3;
        SCOPED_TRACE(std::string(dtype_name(at)) + " x " + dtype_name(bt) + " " + shape_str(c.a) + " x " +
                     shape_str(c.b) + " b params " + shape_str(c.bq) + (pow2 ? " pow2" : "") +
                     (extremes ? " extremes" : "") + (constant ? "" : " run-time params"));
        QmmRun q = make_qmm(at, bt, c, pow2, extremes, constant);
        q.run.threads = 1 + variant % 2;
        EXPECT_TRUE(tensors_equal(run_op(q.run)[0], q.want));
        ties += pow2;
      }
  EXPECT_GT(ties, 0);
}

TEST(QLinearMatMul, ExactTiesRoundHalfToEven) {
  // a_s·b_s / y_s = 1/2: acc = 1, 3, 5, −1, −3 give 0.5, 1.5, 2.5, −0.5, −1.5 → 0, 2, 2, −0, −2.
  Tensor a = q_tensor(DType::UInt8, {5, 1}, {129, 131, 133, 127, 125});
  OpRun r = op("QLinearMatMul");
  r.inputs = {dyn(a),
              cst(Tensor::scalar<float>(0.25f)),
              cst(Tensor::scalar<uint8_t>(128)),
              cst(q_tensor(DType::Int8, {1, 1}, {1})),
              cst(Tensor::scalar<float>(0.5f)),
              cst(Tensor::scalar<int8_t>(0)),
              cst(Tensor::scalar<float>(0.25f)),
              cst(Tensor::scalar<uint8_t>(101))};
  Tensor got = run_op(r)[0];
  std::vector<int> want = {101, 103, 103, 101, 99};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got.data<uint8_t>()[i], want[i]) << "row " << i;
}

TEST(QLinearMatMul, Saturates) {
  // (255 − 0)·(−128 − 127) = −65025 per term: far below the range → 0 (uint8) / −128 (int8).
  for (DType yt : {DType::UInt8, DType::Int8}) {
    OpRun r = op("QLinearMatMul");
    Tensor a = yt == DType::UInt8 ? q_tensor(DType::UInt8, {1, 2}, {255, 255})
                                  : q_tensor(DType::Int8, {1, 2}, {127, 127});
    Tensor azp = yt == DType::UInt8 ? q_tensor(DType::UInt8, {}, {0}) : q_tensor(DType::Int8, {}, {-128});
    r.inputs = {dyn(a),
                cst(Tensor::scalar<float>(1)),
                cst(azp),
                cst(q_tensor(DType::Int8, {2, 2}, {-128, 127, -128, 127})),
                cst(Tensor::scalar<float>(1)),
                cst(Tensor::scalar<int8_t>(127)),
                cst(Tensor::scalar<float>(1)),
                cst(q_tensor(yt, {}, {yt == DType::UInt8 ? 128 : 0}))};
    Tensor got = run_op(r)[0];
    EXPECT_EQ(got.as_int64(0), qlo(yt));
    EXPECT_EQ(got.as_int64(1), yt == DType::UInt8 ? 128 : 0);  // (255·0) → zero point
  }
}

TEST(QLinearMatMul, PerColumnScaleWithOneZeroPointAndViceVersa) {
  // ONNX Runtime accepts b_scale and b_zero_point of different (valid) shapes.
  Tensor a = random_q(DType::UInt8, {3, 20}), b = random_q(DType::Int8, {20, 4});
  const std::vector<float> bs = {0.01f, 0.02f, 0.03f, 0.04f};
  for (int mode = 0; mode < 2; ++mode) {
    Tensor bzp = mode == 0 ? q_tensor(DType::Int8, {}, {-7}) : q_tensor(DType::Int8, {4}, {-7, 0, 5, 127});
    Tensor bsc = mode == 0 ? Tensor::from_vector<float>({4}, bs) : Tensor::scalar<float>(bs[0]);
    Tensor azp = q_tensor(DType::UInt8, {}, {130});
    std::vector<int64_t> acc = int_matmul_ref(a, b, &azp, &bzp);
    Tensor want(DType::UInt8, {3, 4});
    for (int64_t i = 0; i < 12; ++i) {
      const float prod = 0.05f * bs[mode == 0 ? i % 4 : 0];
      want.data<uint8_t>()[i] = static_cast<uint8_t>(requant_ref(acc[i], prod / 0.5f, 100, DType::UInt8));
    }
    OpRun r = op("QLinearMatMul");
    r.inputs = {dyn(a),
                cst(Tensor::scalar<float>(0.05f)),
                cst(azp),
                cst(b),
                cst(bsc),
                cst(bzp),
                cst(Tensor::scalar<float>(0.5f)),
                cst(Tensor::scalar<uint8_t>(100))};
    EXPECT_TRUE(tensors_equal(run_op(r)[0], want)) << "mode " << mode;
  }
}

TEST(QLinearMatMul, Errors) {
  auto base = [] {
    OpRun r = op("QLinearMatMul");
    r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<uint8_t>(1)),     cst(random_q(DType::Int8, {3, 4})),
                cst(Tensor::scalar<float>(0.1f)),    cst(Tensor::scalar<int8_t>(0)),
                cst(Tensor::scalar<float>(0.2f)),    cst(Tensor::scalar<uint8_t>(3))};
    return r;
  };
  for (float bad :
       {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    OpRun r = base();
    r.inputs[4] = cst(Tensor::scalar<float>(bad));
    expect_error(r, "b_scale must be finite and > 0");
    r = base();
    r.inputs[6] = cst(Tensor::scalar<float>(bad));
    expect_error(r, "y_scale must be finite and > 0");
  }
  OpRun r = base();
  r.inputs[4] = cst(Tensor::from_vector<float>({3}, {1, 1, 1}));
  r.inputs[5] = cst(q_tensor(DType::Int8, {3}, {0, 0, 0}));
  expect_error(r, "must be a scalar, a vector of 4");
  r = base();
  r.inputs[4] = cst(Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1}));
  r.inputs[5] = cst(q_tensor(DType::Int8, {4, 1}, {0, 0, 0, 0}));
  expect_error(r, "B's zero point must be a scalar, a vector of 4");
  r = base();
  r.inputs[1] = cst(Tensor::from_vector<float>({2}, {1, 1}));
  expect_error(r, "per-row scales are not supported");
  r = base();
  r.inputs[2] = cst(Tensor::scalar<int8_t>(1));
  expect_error(r, "A's zero point must have A's type uint8");
  r = base();
  r.inputs[7] = cst(Tensor::scalar<int32_t>(1));
  expect_error(r, "y_zero_point (input 7) must be uint8 or int8");
  r = base();
  r.inputs.pop_back();
  expect_error(r, "expects 8 inputs");
}

// ---------------------------------------------------------------------------------------------
// QGemm (com.microsoft)
// ---------------------------------------------------------------------------------------------

TEST(QGemm, MatchesOnnxRuntimeFormula) {
  const std::vector<std::optional<Shape>> c_shapes = {std::nullopt, Shape{},     Shape{7},
                                                      Shape{1, 7},  Shape{5, 1}, Shape{5, 7}};
  int count = 0;
  for (auto [at, bt] : {std::pair{DType::UInt8, DType::UInt8}, std::pair{DType::UInt8, DType::Int8},
                        std::pair{DType::Int8, DType::Int8}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (const auto& cs : c_shapes)
          for (int out_kind = 0; out_kind < 3; ++out_kind) {  // float, quantized, quantized without zp
            const bool per_col = (count++) % 2 == 1, pow2 = count % 3 == 0, b_const = count % 4 != 1;
            const int64_t M = 5, K = 33, N = 7;
            const float alpha = std::vector<float>{1.0f, 0.5f, 1.7f}[count % 3];
            Tensor a = random_q(at, ta ? Shape{K, M} : Shape{M, K}, count % 5 == 0);
            Tensor b = random_q(bt, tb ? Shape{N, K} : Shape{K, N}, count % 5 == 1);
            const int64_t nq = per_col ? N : 1;
            std::vector<float> bs(nq);
            std::vector<int64_t> bz(nq);
            for (int64_t i = 0; i < nq; ++i) {
              bs[i] = random_scale(pow2);
              bz[i] = random_zp(bt);
            }
            const float a_s = random_scale(pow2);
            const int64_t az = random_zp(at);
            Tensor c = cs ? Tensor(DType::Int32, *cs) : Tensor();
            for (int64_t i = 0; i < c.numel(); ++i)
              c.data<int32_t>()[i] = static_cast<int32_t>(rand_int(-30000, 30000));
            const DType yt = out_kind == 2 ? DType::UInt8 : at;
            const float y_s =
                pow2 ? std::ldexp(1.0f, -static_cast<int>(rand_int(0, 3))) * alpha * a_s * bs[0] * 64
                     : alpha * a_s * bs[0] * rand_float(40, 400);
            const int64_t yz = out_kind == 1 ? random_zp(yt) : 0;
            Tensor want(out_kind == 0 ? DType::Float32 : yt, {M, N});
            for (int64_t m = 0; m < M; ++m)
              for (int64_t n = 0; n < N; ++n) {
                int64_t acc = 0;
                for (int64_t k = 0; k < K; ++k)
                  acc += (a.as_int64(ta ? k * M + m : m * K + k) - az) *
                         (b.as_int64(tb ? n * K + k : k * N + n) - bz[per_col ? n : 0]);
                if (cs) {
                  const Shape& sh = *cs;
                  int64_t cm = sh.size() == 2 ? sh[0] : 1, cn = sh.empty() ? 1 : sh.back();
                  acc += c.data<int32_t>()[(cm == 1 ? 0 : m) * cn + (cn == 1 ? 0 : n)];
                }
                const float alpha_a = alpha * a_s;
                const float s = alpha_a * bs[per_col ? n : 0];
                if (out_kind == 0) {
                  want.data<float>()[m * N + n] = static_cast<float>(static_cast<int32_t>(acc)) * s;
                } else {
                  const float mult = s / y_s;
                  const int64_t y = requant_ref(acc, mult, yz, yt);
                  if (yt == DType::UInt8)
                    want.data<uint8_t>()[m * N + n] = static_cast<uint8_t>(y);
                  else
                    want.data<int8_t>()[m * N + n] = static_cast<int8_t>(y);
                }
              }
            OpRun r = op("QGemm", "com.microsoft", 1);
            r.attrs = attrs_of({{"alpha", alpha}, {"transA", int64_t{ta}}, {"transB", int64_t{tb}}});
            r.inputs = {dyn(a),
                        cst(Tensor::scalar<float>(a_s)),
                        cst(q_tensor(at, {}, {az})),
                        b_const ? cst(b) : dyn(b),
                        cst(per_col ? Tensor::from_vector<float>({N}, bs) : Tensor::scalar<float>(bs[0])),
                        cst(q_tensor(bt, per_col ? Shape{N} : Shape{}, bz))};
            r.inputs.push_back(cs ? cst(c) : OpInput::absent_input());
            if (out_kind >= 1) r.inputs.push_back(cst(Tensor::scalar<float>(y_s)));
            if (out_kind == 1) r.inputs.push_back(cst(q_tensor(yt, {}, {yz})));
            SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb) + " C " +
                         (cs ? shape_str(*cs) : "none") + " output kind " + std::to_string(out_kind) +
                         (per_col ? " per-column" : ""));
            EXPECT_TRUE(tensors_equal(run_op(r)[0], want));
          }
}

TEST(QGemm, Errors) {
  auto base = [] {
    OpRun r = op("QGemm", "com.microsoft", 1);
    r.inputs = {dyn(random_q(DType::UInt8, {2, 3})), cst(Tensor::scalar<float>(0.1f)),
                cst(Tensor::scalar<uint8_t>(1)),     cst(random_q(DType::Int8, {3, 4})),
                cst(Tensor::scalar<float>(0.1f)),    cst(Tensor::scalar<int8_t>(0))};
    return r;
  };
  OpRun r = base();
  r.inputs.push_back(cst(random_float_tensor({4})));
  expect_error(r, "C (input 6) must be int32");
  r = base();
  r.inputs.push_back(OpInput::absent_input());
  r.inputs.push_back(OpInput::absent_input());
  r.inputs.push_back(cst(Tensor::scalar<uint8_t>(0)));
  expect_error(r, "y_zero_point is given without y_scale");
  r = base();
  r.inputs[4] = cst(Tensor::scalar<float>(0.0f));
  expect_error(r, "B scale must be finite and > 0");
  r = base();
  r.inputs[4] = cst(Tensor::from_vector<float>({3}, {1, 1, 1}));
  expect_error(r, "B scale must be a scalar or have 4 elements");
  r = base();
  r.inputs.push_back(cst(Tensor(DType::Int32, {3, 4})));
  expect_error(r, "cannot be broadcast to [2,4]");
}

// ---------------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------------

// explain's onnx scheme recomputes exactly the kernel's element.
void expect_explain_matches(const OpRun& r, const Tensor& got) {
  const ops::OpDef* def = ops::Registry::builtin().find(r.domain, r.op_type, r.opset);
  ASSERT_TRUE(def && def->explain);
  ops::NodeInfo info{"n", r.op_type, r.domain, r.opset};
  std::vector<const Tensor*> inputs;
  for (const OpInput& in : r.inputs) inputs.push_back(in.absent ? nullptr : &in.value);
  for (int64_t flat : {int64_t{0}, got.numel() / 2, got.numel() - 1}) {
    std::vector<int64_t> idx(got.rank());
    int64_t rem = flat;
    for (size_t d = got.rank(); d-- > 0;) {
      idx[d] = rem % got.dim(d);
      rem /= got.dim(d);
    }
    ops::ExplainContext ec{info, r.attrs, inputs, nullptr, idx};
    Explanation e = def->explain(ec);
    ASSERT_FALSE(e.schemes.empty());
    EXPECT_EQ(e.schemes[0].arith, Arith::Onnx);
    EXPECT_EQ(e.schemes[0].result, got.as_int64(flat)) << r.op_type << " element " << flat;
  }
}

TEST(Explain, QLinearMatMulAndQGemmAgreeWithTheKernels) {
  for (const QmmCase& c : kQmmCases) {
    QmmRun q = make_qmm(DType::UInt8, DType::Int8, c, false, false, true);
    Tensor got = run_op(q.run)[0];
    SCOPED_TRACE(shape_str(c.a) + " x " + shape_str(c.b));
    expect_explain_matches(q.run, got);
  }
  OpRun r = op("QGemm", "com.microsoft", 1);
  r.attrs.set("alpha", 0.75f);
  r.attrs.set("transB", int64_t{1});
  r.inputs = {dyn(random_q(DType::UInt8, {4, 30})),
              cst(Tensor::scalar<float>(0.02f)),
              cst(Tensor::scalar<uint8_t>(120)),
              cst(random_q(DType::Int8, {6, 30})),
              cst(Tensor::from_vector<float>({6}, {0.01f, 0.02f, 0.03f, 0.01f, 0.02f, 0.03f})),
              cst(q_tensor(DType::Int8, {6}, {0, 1, -1, 5, 127, -128})),
              cst(Tensor::from_vector<int32_t>({1, 6}, {100, -2000, 30000, 0, 7, -7})),
              cst(Tensor::scalar<float>(0.3f)),
              cst(Tensor::scalar<uint8_t>(128))};
  expect_explain_matches(r, run_op(r)[0]);
  // A float-output QGemm has no requantization to explain.
  r.inputs.resize(7);
  const ops::OpDef* def = ops::Registry::builtin().find("com.microsoft", "QGemm", 1);
  ops::NodeInfo info{"n", "QGemm", "com.microsoft", 1};
  std::vector<const Tensor*> inputs;
  for (const OpInput& in : r.inputs) inputs.push_back(&in.value);
  ops::ExplainContext ec{info, r.attrs, inputs, nullptr, {0, 0}};
  EXPECT_THROW(def->explain(ec), Error);
}

}  // namespace

}  // namespace quint::test
