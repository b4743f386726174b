#include "qmatmul_fast.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "packed_memory.h"

namespace quint::ops {

namespace {

class FastQMatMul final : public Kernel {
 public:
  FastQMatMul(FastMatMulSpec s, const x86::QGemmKernel& g) : s_(std::move(s)), g_(g) {
    kpad_ = (s_.K + g_.k_unit - 1) / g_.k_unit * g_.k_unit;
    copy_rows_ = s_.a_type == DType::Int8 || kpad_ != s_.K;
    a_zp_ = s_.a_zp + (s_.a_type == DType::Int8 ? 128 : 0);
    nblocks_ = (s_.N + g_.nr - 1) / g_.nr;
    block_bytes_ = g_.packed_bytes(kpad_);
    packed_.allocate(block_bytes_ * static_cast<size_t>(nblocks_));  // the packer writes every byte
    const size_t padded = static_cast<size_t>(nblocks_ * g_.nr);
    bias_.assign(padded, 0);
    mult_.assign(padded, 0.0f);
    std::vector<int32_t> wzp(padded, 0);
    bool any_wzp = false;
    const bool b_unsigned = s_.b_type == DType::UInt8;
    const uint8_t* b_u8 = b_unsigned ? s_.b.data<uint8_t>() : nullptr;
    const int8_t* b_s8 = b_unsigned ? nullptr : s_.b.data<int8_t>();
    std::vector<int8_t> rowbuf(static_cast<size_t>(g_.nr * kpad_));
    for (int64_t nb = 0; nb < nblocks_; ++nb) {
      std::fill(rowbuf.begin(), rowbuf.end(), int8_t{0});
      const int ncols = static_cast<int>(std::min<int64_t>(g_.nr, s_.N - nb * g_.nr));
      for (int j = 0; j < ncols; ++j) {
        const int64_t n = nb * g_.nr + j;
        const int32_t bz = s_.b_zp[s_.b_zp.size() > 1 ? static_cast<size_t>(n) : 0] - (b_unsigned ? 128 : 0);
        int64_t bsum = 0;
        for (int64_t k = 0; k < s_.K; ++k) {
          const int64_t src = s_.b_transposed ? n * s_.K + k : k * s_.N + n;
          const int32_t v = b_u8 ? static_cast<int32_t>(b_u8[src]) - 128 : static_cast<int32_t>(b_s8[src]);
          rowbuf[static_cast<size_t>(j * kpad_ + k)] = static_cast<int8_t>(v);
          bsum += v;
        }
        const int64_t ch = s_.requant.channels() > 1 ? n : 0;
        // The model's C (QGemm) and any bias the arithmetic itself adds (QNNPACK's re-derived one).
        const int64_t bias = (s_.bias.empty() ? 0 : s_.bias[static_cast<size_t>(n)]) + s_.requant.int_bias(ch);
        const int64_t folded = bias + s_.K * int64_t{a_zp_} * bz - int64_t{a_zp_} * bsum;
        bias_[static_cast<size_t>(n)] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(folded)));
        mult_[static_cast<size_t>(n)] = s_.requant.multiplier(ch);
        wzp[static_cast<size_t>(n)] = bz;
        any_wzp = any_wzp || bz != 0;
      }
      g_.pack(rowbuf.data(), kpad_, kpad_, ncols, packed_.get() + nb * block_bytes_);
    }
    if (any_wzp) w_zp_ = std::move(wzp);
    zp_ = s_.requant.zero_point();
    lo_ = static_cast<float>(s_.requant.qmin() - zp_);
    clamp_free_ = x86::clamp_free_applies(s_.requant.qmin(), s_.requant.qmax(), mult_);
    hi_ = static_cast<float>(s_.requant.qmax() - zp_);
    s_.b = Tensor();  // packed now
  }

  int64_t macs() const override { return s_.rows * s_.K * s_.N; }
  // The first weights a run reads, at most 512 KiB (for the step before to prefetch).
  Bytes weights_head() const override {
    return {packed_.get(), std::min<size_t>(block_bytes_ * static_cast<size_t>(nblocks_), size_t{512} << 10)};
  }

  void run(const RunContext& ctx) const override {
    const auto* a = static_cast<const uint8_t*>(ctx.in(s_.a_input).raw());
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    const int64_t mtiles = (s_.rows + g_.mr - 1) / g_.mr;
    ctx.parallel->parallel_for(mtiles * nblocks_, 1, [&](int64_t begin, int64_t end) {
      static thread_local std::vector<const uint8_t*> rows;
      static thread_local std::vector<uint8_t> copies;
      static thread_local std::vector<int32_t> sums;
      rows.resize(static_cast<size_t>(g_.mr));
      sums.resize(static_cast<size_t>(g_.mr));
      if (copy_rows_) copies.resize(static_cast<size_t>(g_.mr * kpad_));
      int64_t prepared_tile = -1;
      // The arguments that do not change from call to call, set once (as the convolution's).
      x86::QGemmArgs args;
      args.taps = 1;
      args.k = kpad_;
      args.a = rows.data();
      args.row_sums = sums.data();
      args.lo = lo_;
      args.hi = hi_;
      args.zp = zp_;
      args.out_signed = s_.requant.qmin() < 0;
      args.clamp_free = clamp_free_;
      args.ldc = s_.N;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t mt = item / nblocks_, nb = item % nblocks_;
        const int64_t m0 = mt * g_.mr;
        const int mr = static_cast<int>(std::min<int64_t>(g_.mr, s_.rows - m0));
        if (mt != prepared_tile) {
          prepared_tile = mt;
          for (int r = 0; r < mr; ++r) {
            const uint8_t* src = a + (m0 + r) * s_.K;
            if (copy_rows_) {
              // int8 rows move to the uint8 domain; K is padded with zeros (zero weights).
              uint8_t* dst = copies.data() + r * kpad_;
              const uint8_t flip = s_.a_type == DType::Int8 ? 0x80 : 0;
              for (int64_t k = 0; k < s_.K; ++k) dst[k] = src[k] ^ flip;
              std::memset(dst + s_.K, 0, static_cast<size_t>(kpad_ - s_.K));
              src = dst;
            }
            rows[static_cast<size_t>(r)] = src;
            if (!w_zp_.empty()) {
              int32_t sum = 0;
              for (int64_t k = 0; k < s_.K; ++k) sum += src[k];
              sums[static_cast<size_t>(r)] = sum;
            }
          }
        }
        args.mr = mr;
        args.nr = static_cast<int>(std::min<int64_t>(g_.nr, s_.N - nb * g_.nr));
        args.b = packed_.get() + nb * block_bytes_;
        args.bias = bias_.data() + nb * g_.nr;
        args.mult = mult_.data() + nb * g_.nr;
        args.w_zp = w_zp_.empty() ? nullptr : w_zp_.data() + nb * g_.nr;
        args.c = y + m0 * s_.N + nb * g_.nr;
        g_.run(args);
      }
    });
  }

 private:
  FastMatMulSpec s_;
  const x86::QGemmKernel& g_;
  int64_t kpad_ = 0, nblocks_ = 0;
  bool copy_rows_ = false;
  int32_t a_zp_ = 0, zp_ = 0;
  float lo_ = 0, hi_ = 255;
  bool clamp_free_ = false;
  size_t block_bytes_ = 0;
  PackedMemory packed_;
  std::vector<int32_t> bias_, w_zp_;
  std::vector<float> mult_;
};

}  // namespace

std::unique_ptr<Kernel> make_fast_qmatmul(FastMatMulSpec spec, const x86::QGemmKernel& gemm) {
  return std::make_unique<FastQMatMul>(std::move(spec), gemm);
}

}  // namespace quint::ops
