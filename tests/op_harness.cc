#include "op_harness.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "layout.h"
#include "thread_pool.h"

namespace quint::test {

std::vector<Tensor> run_op(const OpRun& r) {
  const ops::OpDef* def = ops::Registry::builtin().find(r.domain, r.op_type, r.opset);
  if (!def) fail("no operator ", r.domain, ":", r.op_type, " at opset ", r.opset);
  ops::NodeInfo info{"test_node", r.op_type, r.domain, r.opset};
  std::vector<ops::ValueInfo> infos(r.inputs.size());
  std::vector<const ops::ValueInfo*> ptrs(r.inputs.size(), nullptr);
  std::vector<Tensor> data(r.inputs.size());
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const OpInput& in = r.inputs[i];
    if (in.absent) continue;
    data[i] = in.value;
    if (in.nhwc) {
      if (!def->layout_aware) fail("operator ", r.op_type, " is not layout-aware; it cannot take NHWC inputs");
      data[i] = Tensor(in.value.dtype(), in.value.shape());
      ops::copy_nchw_to_nhwc(in.value, data[i]);
    }
    infos[i] = ops::ValueInfo{in.value.dtype(), in.value.shape(), in.constant ? &in.value : nullptr, {},
                              in.nhwc ? ops::Layout::NHWC : ops::Layout::Plain};
    ptrs[i] = &infos[i];
  }
  std::optional<ops::BuildContext> built;
  std::unique_ptr<ops::Kernel> kernel;
  try {
    built.emplace(info, r.attrs, ptrs, r.num_outputs, r.options, nullptr);
    kernel = def->build(*built);
  } catch (const ops::NeedPlainLayout&) {
    // As the planner does: hand the operator its inputs in the model's layout.
    for (size_t i = 0; i < r.inputs.size(); ++i)
      if (!r.inputs[i].absent) {
        data[i] = r.inputs[i].value;
        infos[i].layout = ops::Layout::Plain;
      }
    built.emplace(info, r.attrs, ptrs, r.num_outputs, r.options, nullptr);
    kernel = def->build(*built);
  }
  ops::BuildContext& ctx = *built;
  std::vector<Tensor> outs(r.num_outputs);
  bool all_constant = true;
  for (size_t k = 0; k < r.num_outputs; ++k) {
    if (ctx.output_constant(k)) {
      outs[k] = *ctx.output_constant(k);
    } else {
      all_constant = false;
      outs[k] = Tensor(ctx.output(k).dtype, ctx.output(k).shape);
    }
  }
  if (all_constant && !kernel) return outs;
  if (!kernel) fail("operator built no kernel but declared runtime outputs");
  ops::RunContext rc;
  for (size_t i = 0; i < r.inputs.size(); ++i) rc.inputs.push_back(r.inputs[i].absent ? nullptr : &data[i]);
  for (auto& t : outs) rc.outputs.push_back(&t);
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  rc.scratch = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  runtime::ThreadPool pool(r.threads);
  rc.parallel = &pool;
  ops::RunStatus status;
  rc.status = &status;
  kernel->run(rc);
  if (status.failed()) fail(status.take());
  for (size_t k = 0; k < r.num_outputs; ++k)
    if (ctx.output(k).layout == ops::Layout::NHWC) outs[k] = ops::to_nchw(outs[k]);
  return outs;
}

::testing::AssertionResult tensors_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(a.dtype()) << " vs " << dtype_name(b.dtype());
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  if (a.dtype() == DType::String) {
    for (int64_t i = 0; i < a.numel(); ++i)
      if (a.data<std::string>()[i] != b.data<std::string>()[i])
        return ::testing::AssertionFailure() << "at flat index " << i << ": '" << a.data<std::string>()[i]
                                             << "' vs '" << b.data<std::string>()[i] << "'";
    return ::testing::AssertionSuccess();
  }
  const size_t es = dtype_size(a.dtype());
  const auto* pa = static_cast<const uint8_t*>(a.raw());
  const auto* pb = static_cast<const uint8_t*>(b.raw());
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(pa + i * es, pb + i * es, es) != 0) {
      if (first < 0) first = i;
      ++mismatches;
    }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << a.numel() << " elements differ; first at flat index "
                                       << first << ": " << a.as_double(first) << " vs " << b.as_double(first);
}

::testing::AssertionResult tensors_close(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = a.as_double(i), y = b.as_double(i);
    bool both_nan = std::isnan(x) && std::isnan(y);
    bool same_inf = std::isinf(x) && x == y;
    if (!both_nan && !same_inf && !(std::fabs(x - y) <= atol + rtol * std::fabs(y))) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.numel() << " elements differ beyond rtol " << rtol
                                       << " atol " << atol << "; first at flat index " << first << ": "
                                       << a.as_double(first) << " vs " << b.as_double(first);
}

}  // namespace quint::test
