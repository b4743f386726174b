#include "explain_util.h"

namespace quint::ops {

ExplainBuild::ExplainBuild(const ExplainContext& ec, size_t num_outputs) {
  infos_.resize(ec.inputs.size());
  std::vector<const ValueInfo*> ptrs(ec.inputs.size(), nullptr);
  for (size_t i = 0; i < ec.inputs.size(); ++i) {
    if (!ec.inputs[i]) continue;
    infos_[i] = ValueInfo{ec.inputs[i]->dtype(), ec.inputs[i]->shape(), ec.inputs[i], {}};
    ptrs[i] = &infos_[i];
  }
  options_.isa = "ref";
  ctx_ = std::make_unique<BuildContext>(ec.node, ec.attrs, ptrs, num_outputs, options_, ec.extras);
}

std::string fmt_float(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string fmt_index(const std::vector<int64_t>& idx) {
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

int64_t checked_offset(const std::vector<int64_t>& idx, const Shape& shape) {
  if (idx.size() != shape.size())
    fail("the element index ", fmt_index(idx), " has ", idx.size(), " coordinates; the tensor has shape ",
         shape_str(shape));
  int64_t off = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] < 0 || idx[i] >= shape[i])
      fail("the element index ", fmt_index(idx), " is outside the tensor's shape ", shape_str(shape));
    off = off * shape[i] + idx[i];
  }
  return off;
}

std::vector<ExplainScheme> linear_schemes(const arith::LinearQuant& q, int64_t channels, int64_t c, int32_t acc) {
  std::vector<ExplainScheme> out;
  for (Arith a : {Arith::Onnx, Arith::OneDnn, Arith::Qnnpack, Arith::Fbgemm}) {
    arith::Requantizer r(a, q, channels);
    // pre_round() excludes the zero point except for oneDNN, which adds it before rounding.
    const double pre = static_cast<double>(r.pre_round(c, acc)) + (a == Arith::OneDnn ? 0 : r.zero_point());
    out.push_back({a, r.explain(c, acc), r.apply(c, acc), pre, r.note()});
  }
  return out;
}

}  // namespace quint::ops
