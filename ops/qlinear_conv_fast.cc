// The fast QLinearConv: NHWC activations, weights prepacked at load for the ISA's microkernel
// (x86/qgemm.h), no materialised im2col for convolutions whose channels per group fit the
// microkernel's k unit (an indirection of row pointers instead), requantization in the kernel's
// epilogue. Exactly the reference's integers: every term below is integer until the epilogue,
// which applies the same float operations in the same order as arith::Requantizer.
//
// The microkernel multiplies uint8 by int8. Other types are mapped exactly:
//   int8 x:  x' = x + 128, x_zp' = x_zp + 128      (x − x_zp = x' − x_zp')
//   uint8 w: w' = w − 128, w_zp' = w_zp − 128
// and the zero points leave the inner loop (gemmlowp's derivation):
//   Σ_k (x' − x_zp')(w' − w_zp') = Σ x'w' − w_zp'·Σ x' − x_zp'·Σ w' + K·x_zp'·w_zp'
// The last two terms depend only on the channel and join the bias at load; the second needs
// per-row sums Σ x' and is only computed when some w_zp' is non-zero. Padding positions read a
// row of x_zp' bytes, so they contribute (x_zp' − x_zp')·(…) = 0 like ONNX's zero padding.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "layout.h"
#include "qlinear_conv.h"
#include "packed_memory.h"
#include "x86/dwconv.h"
#include "x86/interleave.h"

namespace quint::ops {

namespace {

class FastQConv final : public Kernel {
 public:
  FastQConv(const QConvParams& p, const x86::QGemmKernel& gemm, x86::DwKernel dw, bool input_nhwc)
      : g_(gemm), interleave3_(x86::interleave3_kernel(gemm.isa)), input_nhwc_(input_nhwc) {
    const ConvShape& s = p.shape;
    const WindowGeometry& geo = s.geom;
    batch_ = s.batch;
    c_ = s.in_channels;
    m_ = s.out_channels;
    group_ = s.group;
    cg_ = s.c_per_group();
    mg_ = s.m_per_group();
    h_ = geo.in[1];
    w_ = geo.in[2];
    oh_ = geo.out[1];
    ow_ = geo.out[2];
    kh_ = geo.kernel[1];
    kw_ = geo.kernel[2];
    sh_ = geo.stride[1];
    sw_ = geo.stride[2];
    dh_ = geo.dilation[1];
    dw_ = geo.dilation[2];
    ph_ = geo.pad_begin[1];
    pw_ = geo.pad_begin[2];
    macs_ = s.macs();
    x_signed_ = p.x_type == DType::Int8;
    out_signed_ = p.requant.qmin() < 0;
    x_zp_ = p.x_zp + (x_signed_ ? 128 : 0);

    taps_total_ = kh_ * kw_;
    zp_ = p.requant.zero_point();
    lo_ = static_cast<float>(p.requant.qmin() - zp_);
    hi_ = static_cast<float>(p.requant.qmax() - zp_);
    if (dw && cg_ == 1 && mg_ == 1) {
      init_depthwise(p, dw);
      return;
    }
    // Groups narrower than the kernel's NR columns (ResNeXt's 8 and 16 channels per group) are
    // packed several to a group: m groups become one of m·Cg input and m·Mg output channels with
    // block-diagonal weights, the entries between groups at their output channel's weight zero
    // point, so that (w − w_zp) is 0 there and every sum is the grouped one, exactly. The same
    // multiply-adds as one mostly empty block per group, but one call, tap list and epilogue
    // for m groups, and m times the bytes per tap. m divides the group count.
    orig_cg_ = cg_;
    orig_mg_ = mg_;
    if (group_ > 1 && cg_ % g_.k_unit == 0 && mg_ < g_.nr) {
      int64_t m = g_.nr / mg_;
      while (group_ % m != 0) --m;
      group_ /= m;
      cg_ *= m;
      mg_ *= m;
    }
    const int64_t k_real = taps_total_ * cg_;
    auto round_up = [&](int64_t v) { return (v + g_.k_unit - 1) / g_.k_unit * g_.k_unit; };
    if (cg_ % g_.k_unit == 0) {
      path_ = Path::Indirect;
      kpad_ = k_real;
      taps_ = taps_total_;
      kseg_ = cg_;
    } else if (group_ == 1 && dw_ == 1) {
      // Few channels (the 3-channel stem): each kernel row is KW·C contiguous bytes of a padded
      // NHWC copy of the input; reading up to the k unit beyond it meets zero weights.
      path_ = Path::PaddedRows;
      kseg_ = round_up(kw_ * cg_);
      taps_ = kh_;
      kpad_ = kh_ * kseg_;
      const int64_t read_px = (kseg_ + c_ - 1) / c_;
      hp_ = std::max(h_ + ph_, (oh_ - 1) * sh_ + (kh_ - 1) * dh_ + 1);
      wp_ = std::max(w_ + pw_, (ow_ - 1) * sw_ + read_px);
    } else {
      path_ = Path::Im2col;
      kpad_ = round_up(k_real);
      taps_ = 1;
      kseg_ = kpad_;
    }
    nblocks_ = (mg_ + g_.nr - 1) / g_.nr;
    block_bytes_ = g_.packed_bytes(kpad_);
    packed_.allocate(block_bytes_ * static_cast<size_t>(nblocks_ * group_));  // the packers write every byte
    const size_t padded_m = static_cast<size_t>(group_ * nblocks_ * g_.nr);
    bias_.assign(padded_m, 0);
    mult_.assign(padded_m, 0.0f);
    std::vector<int32_t> wzp(padded_m, 0);
    bool any_wzp = false;

    // Reorder each channel's weights to k = tap·Cg + c (the order of the A rows) in the int8
    // domain, fold the zero-point terms into the bias and pack NR channels at a time.
    const bool w_unsigned = p.w_type == DType::UInt8;
    const uint8_t* w_u8 = w_unsigned ? p.weights.data<uint8_t>() : nullptr;
    const int8_t* w_s8 = w_unsigned ? nullptr : p.weights.data<int8_t>();
    std::vector<int8_t> row(static_cast<size_t>(kpad_ * g_.nr));
    for (int64_t grp = 0; grp < group_; ++grp)
      for (int64_t nb = 0; nb < nblocks_; ++nb) {
        std::fill(row.begin(), row.end(), int8_t{0});
        const int ncols = static_cast<int>(std::min<int64_t>(g_.nr, mg_ - nb * g_.nr));
        for (int j = 0; j < ncols; ++j) {
          const int64_t mch = grp * mg_ + nb * g_.nr + j;  // output channel
          const int32_t wz = p.w_zp[static_cast<size_t>(mch)] - (w_unsigned ? 128 : 0);
          int8_t* dst = row.data() + j * kpad_;
          int64_t wsum = 0;
          if (cg_ != orig_cg_) {  // merged groups: the other groups' entries at the zero point
            std::fill(dst, dst + kpad_, static_cast<int8_t>(wz));
            wsum = (k_real - taps_total_ * orig_cg_) * wz;
          }
          wsum += reorder_channel(w_u8, w_s8, mch, dst);
          const size_t slot = static_cast<size_t>((grp * nblocks_ + nb) * g_.nr + j);
          const int64_t folded = static_cast<int64_t>(p.requant.int_bias(mch)) + k_real * x_zp_ * wz - x_zp_ * wsum;
          bias_[slot] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(folded)));
          mult_[slot] = p.requant.multiplier(mch);
          wzp[slot] = wz;
          any_wzp = any_wzp || wz != 0;
        }
        g_.pack(row.data(), kpad_, kpad_, ncols, packed_.get() + (grp * nblocks_ + nb) * block_bytes_);
      }
    if (any_wzp) w_zp_ = std::move(wzp);
    contiguous_rows_ = path_ == Path::Indirect && kh_ == 1 && kw_ == 1 && sh_ == 1 && sw_ == 1 && ph_ == 0 && pw_ == 0 &&
                       oh_ == h_ && ow_ == w_;
    // Weights that do not stay in L2 between runs (ResNet50's last two stages: +5–12 % on their
    // layers in the kernels bench, weights cold).
    prefetch_ = block_bytes_ * static_cast<size_t>(nblocks_ * group_) >= (size_t{256} << 10);
    clamp_free_ = x86::clamp_free_applies(p.requant.qmin(), p.requant.qmax(), mult_);
    zp_row_.assign(static_cast<size_t>(std::max<int64_t>(cg_, 1)) + 64, static_cast<uint8_t>(x_zp_));
    // Byte offsets of the taps from the window's top-left input pixel (PaddedRows: of the kernel
    // rows in the padded input).
    tap_off_.resize(static_cast<size_t>(taps_total_));
    if (path_ == Path::PaddedRows) {
      for (int64_t kh = 0; kh < kh_; ++kh) tap_off_[static_cast<size_t>(kh)] = kh * dh_ * wp_ * c_;
    } else {
      for (int64_t kh = 0; kh < kh_; ++kh)
        for (int64_t kw = 0; kw < kw_; ++kw) tap_off_[static_cast<size_t>(kh * kw_ + kw)] = (kh * dh_ * w_ + kw * dw_) * c_;
    }
  }

  int64_t macs() const override { return macs_; }
  // The first chunk of channel blocks (what a run reads first), at most 512 KiB of it.
  Bytes weights_head() const override {
    if (dw_kernel_ || !packed_.get()) return {};
    const size_t bytes = std::min<size_t>(static_cast<size_t>(std::min<int64_t>(nblocks_, chunk_blocks())) * block_bytes_,
                                          size_t{512} << 10);
    return {packed_.get(), bytes};
  }
  void set_next_weights(Bytes next) override { next_weights_ = next; }
  size_t scratch_bytes() const override {
    if (path_ == Path::PaddedRows) return static_cast<size_t>(batch_ * hp_ * wp_ * c_);
    return needs_conversion() ? static_cast<size_t>(batch_ * c_ * h_ * w_) : 0;
  }

  // One output channel's weights in the order of the A rows (k = tap·Cg + c, or the padded-rows
  // order), as int8 (uint8 weights shifted by −128); returns their sum. Tap by tap, so that each
  // tap's Cg values are written contiguously (read with a stride of the tap count: contiguous
  // for 1×1 kernels, where the loop vectorizes). Bounds are read into locals first: int8 stores
  // may alias any member, which would keep the loop scalar.
  // With merged groups, the channel's own group's entries only, at that group's place in each
  // tap's segment.
  int64_t reorder_channel(const uint8_t* w_u8, const int8_t* w_s8, int64_t mch, int8_t* __restrict dst) const {
    const int64_t cg = orig_cg_, seg = cg_, taps = taps_total_, kw = kw_, kseg = kseg_;
    const int64_t place = (mch % mg_) / orig_mg_ * orig_cg_;
    const bool padded_rows = path_ == Path::PaddedRows;
    int64_t sum = 0;
    for (int64_t t = 0; t < taps; ++t) {
      int8_t* __restrict d = dst + place + (padded_rows ? (t / kw) * kseg + (t % kw) * cg : t * seg);
      const int64_t src = mch * cg * taps + t;
      sum += w_u8 ? copy_to_int8(w_u8 + src, taps, cg, d) : copy_to_int8(w_s8 + src, taps, cg, d);
    }
    return sum;
  }
  // d[c] = s[c·stride] as int8 (uint8 shifted by −128) for c < n; returns the sum of the values
  // written. A stride of 1 is a compile-time constant, so that contiguous rows vectorize.
  template <class S>
  static int64_t copy_to_int8(const S* s, int64_t stride, int64_t n, int8_t* __restrict d) {
    auto copy = [&](auto step) {
      int64_t sum = 0;
      for (int64_t c = 0; c < n; ++c) {
        const int32_t v = static_cast<int32_t>(s[c * step]) - (std::is_same_v<S, uint8_t> ? 128 : 0);
        d[c] = static_cast<int8_t>(v);
        sum += v;
      }
      return sum;
    };
    return stride == 1 ? copy(std::integral_constant<int64_t, 1>{}) : copy(stride);
  }

  void run(const RunContext& ctx) const override {
    const auto* x = static_cast<const uint8_t*>(ctx.in(0).raw());
    if (path_ == Path::PaddedRows) {
      x = pad_input(x, static_cast<uint8_t*>(ctx.scratch));
    } else if (needs_conversion()) {
      auto* buf = static_cast<uint8_t*>(ctx.scratch);
      if (!input_nhwc_) nchw_to_nhwc(x, buf, batch_, c_, h_, w_, 1);
      else std::memcpy(buf, x, static_cast<size_t>(batch_ * c_ * h_ * w_));
      if (x_signed_)
        for (int64_t i = 0, n = batch_ * c_ * h_ * w_; i < n; ++i) buf[i] ^= 0x80;
      x = buf;
    }
    auto* y = static_cast<uint8_t*>(ctx.out(0).raw());
    if (dw_kernel_) {
      run_depthwise(ctx, x, y);
      return;
    }
    const int64_t pixels = oh_ * ow_;
    if (pixels == 0) return;
    // Row tiles of equal height: 49 pixels (ResNet's last stage) run as 4 tiles of ≤ 13 rows
    // with a 14-row kernel, not 3 of 14 and one of 7, which would keep few accumulators busy for
    // the whole K.
    const int64_t mtiles = (pixels + g_.mr - 1) / g_.mr;
    const int64_t tile_rows = (pixels + mtiles - 1) / mtiles;
    // Channel blocks handled by one work item: enough to reuse the activation tile, few enough
    // to give both threads work on layers with few pixels.
    const int64_t per_chunk = chunk_blocks();
    const int64_t nchunks = (nblocks_ + per_chunk - 1) / per_chunk;
    const int64_t items = batch_ * group_ * nchunks * mtiles;
    // Item order. One thread: channel chunk outermost, so a chunk's weights stay in cache across
    // the row tiles. Several threads, whose parts are contiguous ranges of items, and weights that
    // fit in L2 anyway: row tiles outermost, so each thread gets a band of pixels, the band the
    // previous layer wrote on the same core (fetching it from the other core is slow).
    // (Measured on ResNet50 at 2 threads: always pixel-major, or whenever the weights are smaller
    // than the input, is slower; the last stage's megabytes of weights are better split.)
    const bool pixel_major = ctx.parallel->num_threads() > 1 &&
                             block_bytes_ * static_cast<size_t>(nblocks_ * group_) <= (size_t{512} << 10);
    ctx.parallel->parallel_for(items, 1, [&](int64_t begin, int64_t end) {
      static thread_local std::vector<const uint8_t*> rows;
      static thread_local std::vector<uint8_t> cols;
      static thread_local std::vector<int32_t> sums;
      rows.resize(static_cast<size_t>(g_.mr * taps_));
      sums.resize(static_cast<size_t>(g_.mr));
      if (path_ == Path::Im2col) cols.resize(static_cast<size_t>(g_.mr * kpad_));
      // The item's coordinates, decoded once and then advanced (no divisions per item).
      int64_t mt, nc, grp, n;
      {
        int64_t rest = begin;
        int64_t& inner = pixel_major ? nc : mt;
        int64_t& outer = pixel_major ? mt : nc;
        const int64_t n_inner = pixel_major ? nchunks : mtiles, n_outer = pixel_major ? mtiles : nchunks;
        inner = rest % n_inner;
        rest /= n_inner;
        outer = rest % n_outer;
        rest /= n_outer;
        grp = rest % group_;
        n = rest / group_;
      }
      auto advance = [&] {
        int64_t& inner = pixel_major ? nc : mt;
        int64_t& outer = pixel_major ? mt : nc;
        if (++inner < (pixel_major ? nchunks : mtiles)) return;
        inner = 0;
        if (++outer < (pixel_major ? mtiles : nchunks)) return;
        outer = 0;
        if (++grp < group_) return;
        grp = 0;
        ++n;
      };
      // The arguments that do not change from call to call, set once (a QGemmArgs built per item
      // was zero-filled by rep stos every time: 8 % of this loop's time).
      x86::QGemmArgs a;
      a.taps = taps_;
      a.k = kseg_;
      a.a = rows.data();
      a.row_sums = sums.data();
      a.lo = lo_;
      a.hi = hi_;
      a.zp = zp_;
      a.out_signed = out_signed_;
      a.clamp_free = clamp_free_;
      a.ldc = m_;
      for (int64_t item = begin; item < end; ++item, advance()) {
        const int64_t p0 = mt * tile_rows;
        const int mr = static_cast<int>(std::min(tile_rows, pixels - p0));
        const uint8_t* x_img =
            path_ == Path::PaddedRows ? x + n * hp_ * wp_ * c_ : x + n * h_ * w_ * c_ + grp * cg_;
        a.tap_offsets = gather_rows(x_img, p0, mr, rows.data(), cols.data());
        if (!w_zp_.empty()) row_sums(rows.data(), a.tap_offsets, mr, sums.data());
        a.mr = mr;
        a.prefetch = nullptr;
        a.prefetch_lines = 0;
        const int64_t nb_end = std::min(nblocks_, (nc + 1) * per_chunk);
        // Chunk-major order: while this chunk's weights are in cache (after its first row tile),
        // fetch the next chunk's into L2, a slice per call; after the last chunk of one thread
        // alone, the next layer's first weights.
        const int8_t* pf_base = nullptr;
        int64_t pf_lines = 0, pf_slices = 0, pf_slice0 = 0, pf_per = 0;
        if (!pixel_major && mt >= 1) {
          const int64_t next = item - mt + mtiles;
          if (prefetch_ && next < end) {
            const bool wraps = nc + 1 == nchunks;  // the next chunk is the next group's first
            const int64_t nc2 = wraps ? 0 : nc + 1, grp2 = wraps ? (grp + 1 == group_ ? 0 : grp + 1) : grp;
            const int64_t nb0 = nc2 * per_chunk, nb1 = std::min(nblocks_, nb0 + per_chunk);
            pf_base = packed_.get() + (grp2 * nblocks_ + nb0) * block_bytes_;
            pf_lines = static_cast<int64_t>((static_cast<size_t>(nb1 - nb0) * block_bytes_ + 63) / 64);
          } else if (next >= items && next_weights_.size) {
            pf_base = static_cast<const int8_t*>(next_weights_.data);
            pf_lines = static_cast<int64_t>((next_weights_.size + 63) / 64);
          }
          pf_slices = (mtiles - 1) * (nb_end - nc * per_chunk);
          pf_per = (pf_lines + pf_slices - 1) / pf_slices;  // lines per call
          pf_slice0 = (mt - 1) * (nb_end - nc * per_chunk);
        }
        for (int64_t nb = nc * per_chunk; nb < nb_end; ++nb) {
          if (pf_base) {
            const int64_t per = pf_per, slice = pf_slice0 + nb - nc * per_chunk;
            a.prefetch_lines = std::max<int64_t>(0, std::min(per, pf_lines - slice * per));
            a.prefetch = a.prefetch_lines > 0 ? pf_base + slice * per * 64 : nullptr;
          }
          const int64_t slot = (grp * nblocks_ + nb) * g_.nr;
          a.nr = static_cast<int>(std::min<int64_t>(g_.nr, mg_ - nb * g_.nr));
          a.b = packed_.get() + (grp * nblocks_ + nb) * block_bytes_;
          a.bias = bias_.data() + slot;
          a.mult = mult_.data() + slot;
          a.w_zp = w_zp_.empty() ? nullptr : w_zp_.data() + slot;
          a.c = y + (n * pixels + p0) * m_ + grp * mg_ + nb * g_.nr;
          g_.run(a);
        }
      }
    });
  }

 private:
  bool needs_conversion() const { return !input_nhwc_ || x_signed_; }
  int64_t chunk_blocks() const { return std::max<int64_t>(1, std::min<int64_t>(nblocks_, 128 / g_.nr)); }

  // Depthwise (one input and one output channel per group): weights centred (w − w_zp) as int32
  // lanes, tap-major, for the microkernel (x86/dwconv.h), and the x_zp term folded into the
  // bias: y[c] = requantize(Σ_t x_t[c]·w'[t][c] + bias[c] − x_zp·Σ_t w'[t][c]).
  void init_depthwise(const QConvParams& p, x86::DwKernel dw) {
    dw_kernel_ = dw;
    dw_channels_ = (m_ + 31) / 32 * 32;
    dw_w_.assign(static_cast<size_t>(taps_total_ * dw_channels_), 0);
    bias_.assign(static_cast<size_t>(dw_channels_), 0);
    mult_.assign(static_cast<size_t>(dw_channels_), 0.0f);
    for (int64_t c = 0; c < m_; ++c) {
      int64_t wsum = 0;
      for (int64_t t = 0; t < taps_total_; ++t) {
        const int64_t src = c * taps_total_ + t;
        const int32_t w = p.w_type == DType::UInt8 ? static_cast<int32_t>(p.weights.data<uint8_t>()[src])
                                                   : static_cast<int32_t>(p.weights.data<int8_t>()[src]);
        const int32_t wc = w - p.w_zp[static_cast<size_t>(c)];
        dw_w_[static_cast<size_t>(t * dw_channels_ + c)] = wc;
        wsum += wc;
      }
      const int64_t folded = static_cast<int64_t>(p.requant.int_bias(c)) - int64_t{x_zp_} * wsum;
      bias_[static_cast<size_t>(c)] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(folded)));
      mult_[static_cast<size_t>(c)] = p.requant.multiplier(c);
    }
    if (x86::DwPack pack = x86::dwconv_weight_packer(g_.isa)) {
      std::vector<int32_t> packed(dw_w_.size());
      pack(dw_w_.data(), static_cast<int>(taps_total_), dw_channels_, packed.data());
      dw_w_ = std::move(packed);
    }
    zp_row_.assign(static_cast<size_t>(dw_channels_) + 64, static_cast<uint8_t>(x_zp_));
    clamp_free_ = x86::clamp_free_applies(p.requant.qmin(), p.requant.qmax(), mult_);
  }

  void run_depthwise(const RunContext& ctx, const uint8_t* x, uint8_t* y) const {
    const int taps = static_cast<int>(taps_total_);
    // Output columns whose kernel window lies inside the input horizontally: along them every
    // tap's row pointer advances by stride·C per pixel, so one call covers the whole run.
    const int64_t ow_lo = std::min(ow_, (pw_ + sw_ - 1) / sw_);
    const int64_t last = w_ - 1 + pw_ - (kw_ - 1) * dw_;
    const int64_t ow_hi = last < 0 ? -1 : std::min(ow_ - 1, last / sw_);
    ctx.parallel->parallel_for(batch_ * oh_, 1, [&](int64_t begin, int64_t end) {
      static thread_local std::vector<const uint8_t*> rows;
      static thread_local std::vector<int64_t> steps;
      rows.resize(static_cast<size_t>(taps));
      steps.resize(static_cast<size_t>(taps));
      x86::DwArgs a;
      a.channels = m_;
      a.padded_channels = dw_channels_;
      a.taps = taps;
      a.rows = rows.data();
      a.w = dw_w_.data();
      a.bias = bias_.data();
      a.mult = mult_.data();
      a.lo = lo_;
      a.hi = hi_;
      a.zp = zp_;
      a.out_signed = out_signed_;
      a.clamp_free = clamp_free_;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / oh_, oh = item % oh_;
        const uint8_t* x_img = x + n * h_ * w_ * c_;
        uint8_t* y_row = y + item * ow_ * m_;
        // Row pointers of output pixel (oh, ow), padding taps at the x_zp row (step 0).
        auto gather = [&](int64_t ow) {
          const uint8_t** r = rows.data();
          int64_t* st = steps.data();
          for (int64_t kh = 0; kh < kh_; ++kh) {
            const int64_t ih = oh * sh_ - ph_ + kh * dh_;
            const bool row_ok = ih >= 0 && ih < h_;
            for (int64_t kw = 0; kw < kw_; ++kw) {
              const int64_t iw = ow * sw_ - pw_ + kw * dw_;
              const bool ok = row_ok && iw >= 0 && iw < w_;
              *r++ = ok ? x_img + (ih * w_ + iw) * c_ : zp_row_.data();
              *st++ = ok ? sw_ * c_ : 0;
            }
          }
        };
        auto single = [&](int64_t ow) {
          gather(ow);
          a.pixels = 1;
          a.steps = nullptr;
          a.out = y_row + ow * m_;
          dw_kernel_(a);
        };
        if (ow_lo > ow_hi) {
          for (int64_t ow = 0; ow < ow_; ++ow) single(ow);
          continue;
        }
        for (int64_t ow = 0; ow < ow_lo; ++ow) single(ow);
        gather(ow_lo);
        a.pixels = static_cast<int>(ow_hi - ow_lo + 1);
        a.steps = steps.data();
        a.out = y_row + ow_lo * m_;
        dw_kernel_(a);
        for (int64_t ow = ow_hi + 1; ow < ow_; ++ow) single(ow);
      }
    });
  }

  // The zero-point-padded NHWC copy of the input (PaddedRows): every kernel row of every output
  // pixel lies inside it.
  const uint8_t* pad_input(const uint8_t* x, uint8_t* buf) const {
    const uint8_t fill = static_cast<uint8_t>(x_zp_);
    const uint8_t flip = x_signed_ ? 0x80 : 0;
    const int64_t C = c_, H = h_, W = w_, HP = hp_, WP = wp_, PH = ph_, PW = pw_;
    const size_t row_bytes = static_cast<size_t>(WP * C);
    for (int64_t n = 0; n < batch_; ++n) {
      uint8_t* img = buf + n * HP * WP * C;
      // Only the border holds the zero point; the interior is overwritten below.
      std::memset(img, fill, static_cast<size_t>(PH) * row_bytes);
      std::memset(img + (PH + H) * WP * C, fill, static_cast<size_t>(HP - PH - H) * row_bytes);
      for (int64_t ih = 0; ih < H; ++ih) {
        uint8_t* row = img + (ih + PH) * WP * C;
        std::memset(row, fill, static_cast<size_t>(PW * C));
        std::memset(row + (PW + W) * C, fill, static_cast<size_t>((WP - PW - W) * C));
        uint8_t* dst = row + PW * C;
        if (input_nhwc_) flip_copy(x + (n * H + ih) * W * C, dst, W * C, flip);
        else nchw_row_to_nhwc(x + (n * C * H + ih) * W, H * W, C, W, flip, dst, interleave3_);
      }
    }
    return buf;
  }

  // dst = src ^ flip (flip 0x80 turns int8 into the uint8 the kernels read).
  static void flip_copy(const uint8_t* __restrict src, uint8_t* __restrict dst, int64_t n, uint8_t flip) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] ^ flip;
  }
  // One image row from C planes (`plane` bytes apart) into W pixels of C channels.
  static void nchw_row_to_nhwc(const uint8_t* __restrict src, int64_t plane, int64_t C, int64_t W, uint8_t flip,
                               uint8_t* __restrict dst, x86::Interleave3Kernel interleave3) {
    if (C == 3 && interleave3) {  // the RGB stem, in vectors
      interleave3(src, src + plane, src + 2 * plane, W, flip, dst);
      return;
    }
    if (C == 3) {  // the RGB stem: one pass
      const uint8_t* __restrict r = src;
      const uint8_t* __restrict g = src + plane;
      const uint8_t* __restrict b = src + 2 * plane;
      for (int64_t iw = 0; iw < W; ++iw) {
        dst[3 * iw] = r[iw] ^ flip;
        dst[3 * iw + 1] = g[iw] ^ flip;
        dst[3 * iw + 2] = b[iw] ^ flip;
      }
      return;
    }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t iw = 0; iw < W; ++iw) dst[iw * C + c] = src[c * plane + iw] ^ flip;
  }

  // Row pointers (indirection) or im2col rows for output pixels p0 .. p0+mr. Returns the tap
  // offsets when every row's window lies inside the input (or PaddedRows): then rows[m] is the
  // window's first tap and tap t is at rows[m] + offsets[t]; otherwise nullptr and rows holds
  // `taps` pointers per row.
  const int64_t* gather_rows(const uint8_t* x_img, int64_t p0, int mr, const uint8_t** rows, uint8_t* cols) const {
    // Output coordinates advance one pixel per row: one division per tile, not two per row.
    int64_t oh = p0 / ow_, ow = p0 % ow_;
    auto next = [&] {
      if (++ow == ow_) {
        ow = 0;
        ++oh;
      }
    };
    if (contiguous_rows_) {  // 1×1, stride 1, no padding: pixel p's channels are row p
      for (int m = 0; m < mr; ++m) rows[m] = x_img + (p0 + m) * c_;
      return nullptr;
    }
    if (path_ == Path::PaddedRows) {  // a pointer per row; its kernel rows follow at tap_off_
      for (int m = 0; m < mr; ++m, next()) rows[m] = x_img + (oh * sh_ * wp_ + ow * sw_) * c_;
      return tap_off_.data();
    }
    // Whether output pixel (oh, ow)'s window lies inside the input.
    const int64_t span_h = (kh_ - 1) * dh_, span_w = (kw_ - 1) * dw_;
    auto inside = [&](int64_t y, int64_t x) {
      const int64_t ih0 = y * sh_ - ph_, iw0 = x * sw_ - pw_;
      return ih0 >= 0 && ih0 + span_h < h_ && iw0 >= 0 && iw0 + span_w < w_;
    };
    if (path_ == Path::Indirect && taps_ > 1) {
      // A tile within one output row whose first and last windows are inside: so are those
      // between (a tile that wraps to the next row has a left or right border).
      const int64_t p1 = p0 + mr - 1;
      if (p1 / ow_ == oh && inside(oh, ow) && inside(oh, p1 % ow_)) {
        for (int m = 0; m < mr; ++m, next()) rows[m] = x_img + ((oh * sh_ - ph_) * w_ + ow * sw_ - pw_) * c_;
        return tap_off_.data();
      }
    }
    for (int m = 0; m < mr; ++m, next()) {
      uint8_t* col = path_ == Path::Im2col ? cols + m * kpad_ : nullptr;
      const int64_t ih0 = oh * sh_ - ph_, iw0 = ow * sw_ - pw_;
      if (!col && inside(oh, ow)) {
        // The whole window is inside the input: fixed offsets from its corner.
        const uint8_t* corner = x_img + (ih0 * w_ + iw0) * c_;
        const uint8_t** r = rows + m * taps_;
        for (int64_t t = 0; t < taps_total_; ++t) r[t] = corner + tap_off_[static_cast<size_t>(t)];
        continue;
      }
      for (int64_t kh = 0; kh < kh_; ++kh) {
        const int64_t ih = oh * sh_ - ph_ + kh * dh_;
        for (int64_t kw = 0; kw < kw_; ++kw) {
          const int64_t iw = ow * sw_ - pw_ + kw * dw_;
          const bool inside = ih >= 0 && ih < h_ && iw >= 0 && iw < w_;
          const uint8_t* src = inside ? x_img + (ih * w_ + iw) * c_ : zp_row_.data();
          const int64_t t = kh * kw_ + kw;
          if (col) std::memcpy(col + t * cg_, src, static_cast<size_t>(cg_));
          else rows[m * taps_ + t] = src;
        }
      }
      if (col) {
        std::memset(col + taps_total_ * cg_, 0, static_cast<size_t>(kpad_ - taps_total_ * cg_));
        rows[m] = col;
      }
    }
    return nullptr;
  }

  // Σ x' over each row's real K elements (padding bytes of a segment are excluded).
  void row_sums(const uint8_t* const* rows, const int64_t* tap_offsets, int mr, int32_t* sums) const {
    const int64_t seg = path_ == Path::Im2col ? taps_total_ * cg_ : (path_ == Path::PaddedRows ? kw_ * cg_ : cg_);
    for (int m = 0; m < mr; ++m) {
      int32_t s = 0;
      for (int64_t t = 0; t < taps_; ++t) {
        const uint8_t* r = tap_offsets ? rows[m] + tap_offsets[t] : rows[m * taps_ + t];
        for (int64_t i = 0; i < seg; ++i) s += r[i];
      }
      sums[m] = s;
    }
  }

  const x86::QGemmKernel& g_;
  x86::Interleave3Kernel interleave3_;  // nullptr: the scalar loop
  bool input_nhwc_;
  int64_t batch_, c_, m_, group_, cg_, mg_, h_, w_, oh_, ow_, kh_, kw_, sh_, sw_, dh_, dw_, ph_, pw_;
  int64_t orig_cg_ = 0, orig_mg_ = 0;  // the model's channels per group (group_, cg_, mg_: merged)
  int64_t macs_;
  bool x_signed_, out_signed_;
  int32_t x_zp_;
  int64_t taps_total_, taps_, kseg_, kpad_;
  enum class Path { Indirect, PaddedRows, Im2col };
  Path path_ = Path::Indirect;
  std::vector<int64_t> tap_off_;  // tap t's offset from the window's corner (PaddedRows: kernel row t's)
  int64_t hp_ = 0, wp_ = 0;  // PaddedRows: the padded input's height and width
  int64_t nblocks_;
  size_t block_bytes_;
  PackedMemory packed_;
  std::vector<int32_t> bias_;
  std::vector<float> mult_;
  std::vector<int32_t> w_zp_;
  int32_t zp_;
  float lo_, hi_;
  bool clamp_free_ = false;
  bool contiguous_rows_ = false;  // 1×1, stride 1, no padding: A rows are the input's pixels
  bool prefetch_ = false;  // fetch the next chunk's weights ahead (large weights)
  Bytes next_weights_;     // the next layer's first weights (set_next_weights)
  std::vector<uint8_t> zp_row_;
  // Depthwise path.
  x86::DwKernel dw_kernel_ = nullptr;
  int64_t dw_channels_ = 0;
  std::vector<int32_t> dw_w_;  // [taps][dw_channels_], w − w_zp
};

}  // namespace

bool fast_qconv_applies(const QConvParams& p) {
  return p.shape.geom.spatial_rank == 2 && p.requant.integer_bias();
}

std::unique_ptr<Kernel> make_fast_qconv(const QConvParams& p, const x86::QGemmKernel& gemm, bool input_nhwc) {
  return std::make_unique<FastQConv>(p, gemm, x86::dwconv_kernel(gemm.isa), input_nhwc);
}

}  // namespace quint::ops
