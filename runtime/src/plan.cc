#include "plan.h"

#include "layout.h"
#include "op_schema.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>

namespace quint::runtime {

const Tensor* InitializerExtras::find(const std::string& key) const {
  if (key != "float_bias" || node_.empty()) return nullptr;
  int v = g_.find(node_ + ".bias_float");
  return v >= 0 && g_.values[v].initializer ? &*g_.values[v].initializer : nullptr;
}

ErrorContext node_context(const Graph& g, int ni) {
  const Node& n = g.nodes[static_cast<size_t>(ni)];
  return {g.path, n.name.empty() ? "#" + std::to_string(ni) + " (unnamed " + n.op_type + ")" : n.name,
          n.op_type, n.domain, n.opset};
}

namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Kahn's algorithm, keeping the model's order among ready nodes. Fails on a cycle.
std::vector<int> topological_order(const Graph& g) {
  const size_t n = g.nodes.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(g.values.size());
  for (size_t i = 0; i < n; ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0 && g.values[v].producer >= 0) {
        ++pending[i];
        users[v].push_back(static_cast<int>(i));
      }
  std::vector<int> order;
  std::vector<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  // A min-heap on the node index keeps the model's own order whenever it is already valid.
  std::make_heap(ready.begin(), ready.end(), std::greater<>());
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), std::greater<>());
    int ni = ready.back();
    ready.pop_back();
    order.push_back(ni);
    for (int v : g.nodes[ni].outputs) {
      if (v < 0) continue;
      for (int u : users[v])
        if (--pending[u] == 0) {
          ready.push_back(u);
          std::push_heap(ready.begin(), ready.end(), std::greater<>());
        }
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        throw Error("the graph has a cycle through this node", node_context(g, static_cast<int>(i)));
  }
  return order;
}

// Copies an NHWC value into the model's NCHW order for an operator that is not layout-aware.
class ToNchwKernel final : public ops::Kernel {
 public:
  void run(const ops::RunContext& ctx) const override {
    const Tensor& in = ctx.in(0);
    ops::nhwc_to_nchw(in.raw(), ctx.out(0).raw(), in.dim(0), in.dim(1), in.dim(2), in.dim(3),
                      dtype_size(in.dtype()));
  }
};

bool declared_shape_conflicts(const Value& v, const Shape& s) {
  if (!v.has_shape) return false;
  if (v.dims.size() != s.size()) return true;
  for (size_t i = 0; i < s.size(); ++i)
    if (v.dims[i] >= 0 && v.dims[i] != s[i]) return true;
  return false;
}

// Greedy arena layout: the largest buffers first, each at the lowest offset that does not
// overlap a placed buffer whose lifetime intersects its own.
struct Interval {
  size_t size;
  int first, last;
  size_t offset = 0;
};

// Finding the placed buffers whose lifetimes meet a new one must not scan every placed buffer:
// that made planning a long chain quadratic (a 100k-node model took 5 s in this function alone).
// The buffers sorted by first step are the leaves of a max-tree of `last` over the placed ones;
// those starting no later than the new buffer ends are a prefix of the leaves, and within it the
// tree is descended only where some placed `last` reaches the new buffer's first step. The cost is
// O((k + 1) log n) for k overlapping buffers.
class PlacedLifetimes {
 public:
  explicit PlacedLifetimes(const std::vector<Interval*>& items) : by_first_(items) {
    std::sort(by_first_.begin(), by_first_.end(), [](const Interval* a, const Interval* b) { return a->first < b->first; });
    for (size_t i = 0; i < by_first_.size(); ++i) leaf_[by_first_[i]] = i;
    while (width_ < by_first_.size()) width_ *= 2;
    max_last_.assign(2 * width_, kNone);
  }
  void place(const Interval* it) {
    size_t i = width_ + leaf_.at(it);
    max_last_[i] = it->last;
    for (i /= 2; i >= 1; i /= 2) max_last_[i] = std::max(max_last_[2 * i], max_last_[2 * i + 1]);
  }
  // Calls f(p) for every placed p with p->first <= it->last && it->first <= p->last.
  template <class F>
  void overlapping(const Interval* it, F&& f) const {
    const auto end = std::upper_bound(by_first_.begin(), by_first_.end(), it->last,
                                      [](int last, const Interval* p) { return last < p->first; });
    visit(1, 0, width_, static_cast<size_t>(end - by_first_.begin()), it->first, f);
  }

 private:
  static constexpr int kNone = std::numeric_limits<int>::min();
  template <class F>
  void visit(size_t node, size_t lo, size_t hi, size_t end, int first, F& f) const {
    if (lo >= end || max_last_[node] == kNone || max_last_[node] < first) return;
    if (hi - lo == 1) {
      f(by_first_[lo]);
      return;
    }
    const size_t mid = (lo + hi) / 2;
    visit(2 * node, lo, mid, end, first, f);
    visit(2 * node + 1, mid, hi, end, first, f);
  }
  std::vector<Interval*> by_first_;
  std::map<const Interval*, size_t> leaf_;
  size_t width_ = 1;
  std::vector<int> max_last_;  // 1-based heap; kNone where nothing is placed
};

size_t layout_arena(std::vector<Interval*>& items) {
  std::sort(items.begin(), items.end(), [](const Interval* a, const Interval* b) {
    return a->size != b->size ? a->size > b->size : a->first < b->first;
  });
  PlacedLifetimes placed(items);
  size_t total = 0;
  std::vector<std::pair<size_t, size_t>> busy;
  for (Interval* it : items) {
    busy.clear();
    placed.overlapping(it, [&](const Interval* p) { busy.emplace_back(p->offset, p->offset + p->size); });
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (offset + it->size <= b) break;
      offset = std::max(offset, e);
    }
    it->offset = offset;
    total = std::max(total, offset + it->size);
    placed.place(it);
  }
  return total;
}

}  // namespace

Plan make_plan(const Graph& g, const std::vector<Shape>& input_shapes, const PlanOptions& opts) {
  const ops::Registry& registry = ops::Registry::builtin();
  Plan plan;
  plan.values.resize(g.values.size());
  for (size_t i = 0; i < g.values.size(); ++i) plan.values[i].name = g.values[i].name;
  // The model-layout copy of each NHWC value, made once and shared by its consumers.
  std::map<int, int> plain_copy;
  auto plain_of = [&](int v) -> int {
    if (v < 0 || plan.values[v].layout == ops::Layout::Plain) return v;
    auto it = plain_copy.find(v);
    if (it != plain_copy.end()) return it->second;
    PlannedValue copy = plan.values[v];
    copy.name += " (NCHW)";
    copy.layout = ops::Layout::Plain;
    copy.kind = PlannedValue::Kind::Activation;
    copy.output_index = -1;
    const int nv = static_cast<int>(plan.values.size());
    plan.values.push_back(std::move(copy));
    PlannedStep step;
    step.kernel = std::make_unique<ToNchwKernel>();
    step.inputs = {v};
    step.outputs = {nv};
    plan.steps.push_back(std::move(step));
    plain_copy[v] = nv;
    return nv;
  };
  QUINT_CHECK(input_shapes.size() == g.inputs.size(), "expected ", g.inputs.size(),
              " input shapes, got ", input_shapes.size());

  auto check_size = [&](DType t, const Shape& s, const std::string& what) {
    int64_t n = shape_extent(s);  // an empty tensor's dims are bounded too
    int64_t es = static_cast<int64_t>(std::max<size_t>(1, dtype_size(t)));
    if (n > opts.max_tensor_bytes / es)
      fail(what, " of shape ", shape_str(s), " (", dtype_name(t), ") exceeds the tensor size limit of ",
           opts.max_tensor_bytes, " bytes");
  };

  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& v = g.values[i];
    if (v.initializer) {
      PlannedValue& p = plan.values[i];
      p.kind = PlannedValue::Kind::Constant;
      p.dtype = v.initializer->dtype();
      p.shape = v.initializer->shape();
      p.constant = *v.initializer;
    }
  }
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const Value& v = g.values[g.inputs[k]];
    PlannedValue& p = plan.values[g.inputs[k]];
    p.kind = PlannedValue::Kind::Input;
    p.dtype = v.dtype;
    p.shape = input_shapes[k];
    p.input_index = static_cast<int>(k);
    if (declared_shape_conflicts(v, p.shape))
      throw Error("input '" + v.name + "' must have shape " + shape_str(v.dims) + ", got " +
                      shape_str(p.shape), {g.path});
    check_size(p.dtype, p.shape, "input '" + v.name + "'");
  }

  SerialParallel serial;
  for (int ni : topological_order(g)) {
    const Node& node = g.nodes[ni];
    const ErrorContext ectx = node_context(g, ni);
    const ops::OpDef* def = registry.find(node.domain, node.op_type, node.opset);
    auto fail_unsupported = [&] {
      if (registry.knows(node.domain, node.op_type))
        fail("operator ", node.op_type, " is supported, but not at opset ", node.opset, " of domain ", node.domain);
      fail("unsupported operator ", node.op_type, " in domain ", node.domain);
    };
    // With collect_errors, a node downstream of a failed one cannot be built (its input shapes
    // are unknown), but a missing operator is still reported: every one, not just the first.
    bool inputs_known = std::all_of(node.inputs.begin(), node.inputs.end(), [&](int v) {
      return v < 0 || plan.values[v].kind != PlannedValue::Kind::Unplanned;
    });
    if (!inputs_known) {
      ++plan.unplanned_nodes;
      if (!def) {
        try {
          fail_unsupported();
        } catch (const Error& e) {
          plan.errors.push_back(e.with_context(ectx).what());
        }
      }
      continue;
    }
    try {
      if (!def) fail_unsupported();
      ops::NodeInfo info{node.name, node.op_type, node.domain, node.opset};
      std::vector<int> inputs = node.inputs;
      // An element-wise operator keeps NHWC inputs of one shape as they are (OpDef::elementwise).
      Shape nhwc_shape;
      if (!def->layout_aware && def->elementwise) {
        bool ok = true;
        for (int v : inputs) {
          if (v < 0) continue;
          const PlannedValue& pv = plan.values[v];
          if (shape_numel(pv.shape) <= 1 && pv.shape.size() <= 4) continue;  // broadcasts in any layout
          if (pv.layout != ops::Layout::NHWC || (!nhwc_shape.empty() && pv.shape != nhwc_shape)) ok = false;
          else nhwc_shape = pv.shape;
        }
        if (!ok) nhwc_shape.clear();
      }
      if (!def->layout_aware && nhwc_shape.empty())
        for (int& v : inputs) v = plain_of(v);
      std::vector<ops::ValueInfo> in_infos(inputs.size());
      std::vector<const ops::ValueInfo*> in_ptrs(inputs.size(), nullptr);
      auto describe_inputs = [&] {
        for (size_t k = 0; k < inputs.size(); ++k) {
          int v = inputs[k];
          if (v < 0) continue;
          const PlannedValue& pv = plan.values[v];
          in_infos[k] = ops::ValueInfo{pv.dtype, pv.shape, pv.constant ? &*pv.constant : nullptr, pv.quant, pv.layout};
          in_ptrs[k] = &in_infos[k];
        }
      };
      describe_inputs();
      check_input_types(node.domain, node.op_type, node.opset, in_ptrs);
      InitializerExtras extras(g, node.name);
      std::optional<ops::BuildContext> built;
      std::unique_ptr<ops::Kernel> kernel;
      try {
        built.emplace(info, node.attrs, in_ptrs, node.outputs.size(), opts.kernel, &extras);
        kernel = def->build(*built);
      } catch (const ops::NeedPlainLayout&) {
        // A layout-aware operator that cannot use NHWC inputs for this node.
        for (int& v : inputs) v = plain_of(v);
        describe_inputs();
        built.emplace(info, node.attrs, in_ptrs, node.outputs.size(), opts.kernel, &extras);
        kernel = def->build(*built);
      }
      if (!nhwc_shape.empty()) {
        // Only when every output has the inputs' shape (a one-element input of higher rank, say,
        // would broadcast the output to another shape): otherwise as any other operator.
        bool same = true;
        for (size_t k = 0; k < node.outputs.size(); ++k)
          same = same && (node.outputs[k] < 0 || (built->output(k).shape == nhwc_shape && !built->output_constant(k)));
        if (!same) {
          nhwc_shape.clear();
          for (int& v : inputs) v = plain_of(v);
          describe_inputs();
          built.emplace(info, node.attrs, in_ptrs, node.outputs.size(), opts.kernel, &extras);
          kernel = def->build(*built);
        }
      }
      ops::BuildContext& ctx = *built;
      // Scratch memory is sized by the node's shapes like a tensor, and bounded like one.
      if (kernel && kernel->scratch_bytes() > static_cast<size_t>(opts.max_tensor_bytes))
        fail("the kernel needs ", kernel->scratch_bytes(), " bytes of scratch memory, more than the tensor size limit of ",
             opts.max_tensor_bytes, " bytes");

      for (size_t k = 0; k < node.outputs.size(); ++k) {
        int v = node.outputs[k];
        if (v < 0) continue;
        const ops::ValueInfo& out = ctx.output(k);
        if (out.dtype == DType::Undefined) fail("output ", k, " ('", g.values[v].name, "') was not produced");
        const Value& declared = g.values[v];
        if (declared.dtype != DType::Undefined && declared.dtype != out.dtype)
          fail("output '", declared.name, "' is declared ", dtype_name(declared.dtype), " but the operator produces ",
               dtype_name(out.dtype));
        if (declared_shape_conflicts(declared, out.shape))
          fail("output '", declared.name, "' is declared with shape ", shape_str(declared.dims),
               " but the operator produces ", shape_str(out.shape));
        check_size(out.dtype, out.shape, "output '" + declared.name + "'");
        PlannedValue& pv = plan.values[v];
        pv.dtype = out.dtype;
        pv.shape = out.shape;
        pv.quant = out.quant;
        pv.layout = nhwc_shape.empty() ? out.layout : ops::Layout::NHWC;
        if (ctx.output_constant(k)) {
          pv.kind = PlannedValue::Kind::Constant;
          pv.constant = *ctx.output_constant(k);
        }
      }

      bool all_const_in = std::all_of(inputs.begin(), inputs.end(), [&](int v) {
        return v < 0 || plan.values[v].kind == PlannedValue::Kind::Constant;
      });
      if (kernel && def->foldable && all_const_in) {
        // Evaluate now: the outputs become constants and the node leaves the run.
        ops::RunContext rc;
        for (int v : inputs) rc.inputs.push_back(v < 0 ? nullptr : &*plan.values[v].constant);
        std::vector<Tensor> outs;
        outs.reserve(node.outputs.size());
        for (int v : node.outputs)
          outs.push_back(v < 0 ? Tensor() : Tensor(plan.values[v].dtype, plan.values[v].shape));
        for (auto& t : outs) rc.outputs.push_back(t.defined() ? &t : nullptr);
        std::vector<uint8_t> scratch(kernel->scratch_bytes() + kAlign);
        rc.scratch = reinterpret_cast<void*>(align_up(reinterpret_cast<uintptr_t>(scratch.data())));
        rc.parallel = &serial;
        kernel->run(rc);
        for (size_t k = 0; k < node.outputs.size(); ++k) {
          int v = node.outputs[k];
          if (v < 0) continue;
          PlannedValue& pv = plan.values[v];
          pv.kind = PlannedValue::Kind::Constant;
          // Constants are always kept in the model's layout.
          pv.constant = pv.layout == ops::Layout::NHWC ? ops::to_nchw(outs[k]) : std::move(outs[k]);
          pv.layout = ops::Layout::Plain;
        }
        kernel.reset();
      }
      bool any_runtime = std::any_of(node.outputs.begin(), node.outputs.end(), [&](int v) {
        return v >= 0 && plan.values[v].kind != PlannedValue::Kind::Constant;
      });
      if (!any_runtime) {
        ++plan.folded_nodes;
        plan.folded.push_back(ni);
        continue;
      }
      if (!kernel) fail("the operator declared runtime outputs but built no kernel");
      PlannedStep step;
      step.node = ni;
      step.inputs = inputs;
      step.outputs = node.outputs;
      step.scratch_bytes = kernel->scratch_bytes();
      plan.macs += kernel->macs();
      step.kernel = std::move(kernel);
      for (int v : node.outputs)
        if (v >= 0) plan.values[v].kind = PlannedValue::Kind::Activation;
      plan.steps.push_back(std::move(step));
    } catch (const Error& e) {
      Error full = e.with_context(ectx);
      if (!opts.collect_errors) throw full;
      plan.errors.push_back(full.what());
      for (int v : node.outputs)
        if (v >= 0) plan.values[v].kind = PlannedValue::Kind::Unplanned;
    }
  }
  if (!plan.errors.empty()) return plan;

  for (size_t k = 0; k < g.outputs.size(); ++k) {
    int v = g.outputs[k];
    if (plan.values[v].kind == PlannedValue::Kind::Unplanned)
      throw Error("graph output '" + g.values[v].name + "' is never computed", {g.path});
    v = plain_of(v);
    plan.values[v].output_index = static_cast<int>(k);
    plan.outputs.push_back(v);
  }

  // Steps no graph output depends on (a DequantizeLinear whose only reader, a Shape, was folded
  // at load) run only for observers and local comparisons, which see every node.
  {
    std::vector<bool> needed(plan.values.size(), false);
    for (int v : plan.outputs) needed[static_cast<size_t>(v)] = true;
    for (size_t s = plan.steps.size(); s-- > 0;) {
      PlannedStep& step = plan.steps[s];
      const bool any = std::any_of(step.outputs.begin(), step.outputs.end(),
                                   [&](int v) { return v >= 0 && needed[static_cast<size_t>(v)]; });
      step.observe_only = !any;
      if (any)
        for (int v : step.inputs)
          if (v >= 0) needed[static_cast<size_t>(v)] = true;
    }
  }

  // Each step learns the weights the next weighty step reads first, to fetch them ahead.
  {
    ops::Kernel::Bytes next;
    for (size_t s = plan.steps.size(); s-- > 0;) {
      if (!plan.steps[s].kernel) continue;
      plan.steps[s].kernel->set_next_weights(next);
      const ops::Kernel::Bytes head = plan.steps[s].kernel->weights_head();
      if (head.size) next = head;
    }
  }

  // Lifetimes and the arena. Graph outputs get their own buffers per run (they are returned).
  const int last = static_cast<int>(plan.steps.size());
  for (int s = 0; s < last; ++s) {
    for (int v : plan.steps[s].outputs)
      if (v >= 0 && plan.values[v].first_step < 0) plan.values[v].first_step = s;
    for (int v : plan.steps[s].inputs)
      if (v >= 0) plan.values[v].last_step = s;
  }
  std::vector<Interval> intervals;
  std::vector<int> owners;  // value index, or -1 - step for scratch
  for (size_t v = 0; v < plan.values.size(); ++v) {
    PlannedValue& pv = plan.values[v];
    // Graph outputs and string tensors (objects, not bytes) get their own storage per run.
    if (pv.kind != PlannedValue::Kind::Activation || pv.output_index >= 0 || pv.dtype == DType::String)
      continue;
    if (pv.last_step < pv.first_step) pv.last_step = pv.first_step;  // produced, never read
    size_t bytes = static_cast<size_t>(shape_numel(pv.shape)) * dtype_size(pv.dtype);
    intervals.push_back({align_up(std::max<size_t>(bytes, 1)), pv.first_step, pv.last_step});
    owners.push_back(static_cast<int>(v));
  }
  for (int s = 0; s < last; ++s) {
    if (plan.steps[s].scratch_bytes == 0) continue;
    intervals.push_back({align_up(plan.steps[s].scratch_bytes), s, s});
    owners.push_back(-1 - s);
  }
  std::vector<Interval*> ptrs;
  for (auto& it : intervals) ptrs.push_back(&it);
  plan.arena_bytes = layout_arena(ptrs);
  for (size_t i = 0; i < intervals.size(); ++i) {
    if (owners[i] >= 0) plan.values[owners[i]].offset = intervals[i].offset;
    else plan.steps[-1 - owners[i]].scratch_offset = intervals[i].offset;
  }
  return plan;
}

}  // namespace quint::runtime
