// QLinearConv's validated parameters, shared by the reference kernel (qlinear_conv.cc) and the
// fast NHWC kernel (qlinear_conv_fast.cc).
#pragma once

#include <memory>
#include <vector>

#include "arith/requant.h"
#include "conv_common.h"
#include "x86/qgemm.h"

namespace quint::ops {

struct QConvParams {
  ConvShape shape;
  DType x_type = DType::UInt8, w_type = DType::Int8;
  int32_t x_zp = 0;
  std::vector<int32_t> w_zp;  // one per output channel
  Tensor weights;             // [M, C/group, k...] as stored
  arith::Requantizer requant;
};

// True when the fast kernel can compute this convolution exactly: a 2-D convolution whose
// requantization adds an integer bias (schemes onnx and qnnpack).
bool fast_qconv_applies(const QConvParams& p);

// The fast kernel: NHWC output; input NHWC or NCHW (`input_nhwc`). Weights are packed here.
std::unique_ptr<Kernel> make_fast_qconv(const QConvParams& p, const x86::QGemmKernel& gemm, bool input_nhwc);

}  // namespace quint::ops
