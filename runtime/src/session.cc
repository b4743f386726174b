#include "quint/session.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "graph.h"
#include "graph_passes.h"
#include "layout.h"
#include "plan.h"
#include "thread_pool.h"

namespace quint {

using runtime::Graph;
using runtime::Plan;
using runtime::PlannedValue;

namespace {

std::vector<IoInfo> io_infos(const Graph& g, const std::vector<int>& ids) {
  std::vector<IoInfo> out;
  for (int v : ids) {
    const runtime::Value& val = g.values[v];
    out.push_back({val.name, val.dtype, val.dims, val.dim_params});
  }
  return out;
}

// Concrete shape of a declared input: symbolic dims from dim_values, else 1.
Shape default_shape(const IoInfo& in, const std::map<std::string, int64_t>& dim_values) {
  Shape s;
  for (size_t i = 0; i < in.dims.size(); ++i) {
    if (in.dims[i] >= 0) {
      s.push_back(in.dims[i]);
      continue;
    }
    auto it = dim_values.find(in.dim_params[i]);
    s.push_back(it != dim_values.end() ? it->second : 1);
  }
  return s;
}

// Loads and prepares the graph: constants folded, and QDQ units fused unless running in float.
struct PreparedGraph {
  Graph graph;
  runtime::FusionReport fusion;
  int folded = 0;
};

runtime::PlanOptions plan_options(const SessionOptions& o);

runtime::LoadLimits load_limits(const SessionOptions& options) {
  runtime::LoadLimits limits;
  limits.max_tensor_bytes = options.max_tensor_bytes;
  return limits;
}

PreparedGraph prepare_graph(Graph graph, const SessionOptions& options) {
  PreparedGraph p{std::move(graph), {}, 0};
  const bool fuse = options.qdq == QdqMode::Fused;
  p.folded = runtime::fold_constants(p.graph, plan_options(options).kernel, fuse);
  if (fuse) p.fusion = runtime::fuse_qdq(p.graph, plan_options(options).kernel);
  return p;
}

runtime::PlanOptions plan_options(const SessionOptions& o) {
  runtime::PlanOptions p;
  p.kernel.arith = o.arith;
  p.kernel.isa = o.isa;
  if (p.kernel.isa == "auto")
    if (const char* env = std::getenv("QUINT_ISA")) p.kernel.isa = env;
  p.max_tensor_bytes = o.max_tensor_bytes;
  p.kernel.max_tensor_bytes = o.max_tensor_bytes;
  return p;
}

// Memory of one run: the arena and the tensors that view it.
struct RunState {
  std::shared_ptr<void> arena;
  std::vector<Tensor> slots;              // one per value
  std::vector<ops::RunContext> contexts;  // one per step, pointing into slots
  ops::RunStatus status;                  // failures kernels report (run-time index values)
};

struct PlanEntry {
  Plan plan;
  std::mutex mutex;
  std::vector<std::unique_ptr<RunState>> idle;
};

}  // namespace

struct Session::Impl {
  // Prepares a loaded graph (folding, fusion) and plans it once for the default input shapes,
  // so that a bad model fails here, not at the first run.
  static std::unique_ptr<Impl> create(Graph graph, const SessionOptions& options);

  Graph graph;
  runtime::FusionReport fusion;
  SessionOptions options;
  runtime::PlanOptions plan_opts;
  std::vector<IoInfo> inputs, outputs;
  std::unique_ptr<runtime::ThreadPool> pool;
  std::mutex cache_mutex;
  std::map<std::vector<Shape>, std::shared_ptr<PlanEntry>> plans;

  std::shared_ptr<PlanEntry> plan_for(const std::vector<Shape>& shapes) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = plans.find(shapes);
    if (it != plans.end()) return it->second;
    auto entry = std::make_shared<PlanEntry>();
    try {
      entry->plan = runtime::make_plan(graph, shapes, plan_opts);
    } catch (const Error& e) {
      throw e.with_context({graph.path});  // e.g. an input too large for the limit: no node to name
    }
    // A model run with ever-changing shapes would otherwise grow this cache without bound.
    if (plans.size() >= 16) plans.clear();
    plans.emplace(shapes, entry);
    return entry;
  }

  std::unique_ptr<RunState> make_state(const Plan& plan) {
    auto st = std::make_unique<RunState>();
    if (plan.arena_bytes > 0) {
      // Whole 2 MiB pages, advised for transparent huge pages: activations of megabytes then
      // take a few TLB entries instead of hundreds.
      constexpr size_t kHuge = size_t{2} << 20;
      const size_t bytes = (plan.arena_bytes + kHuge - 1) / kHuge * kHuge;
      void* p = std::aligned_alloc(kHuge, bytes);
      if (!p) throw std::bad_alloc();
      madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure is harmless
      st->arena = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    }
    auto* base = static_cast<uint8_t*>(st->arena.get());
    st->slots.resize(plan.values.size());
    for (size_t v = 0; v < plan.values.size(); ++v) {
      const PlannedValue& pv = plan.values[v];
      if (pv.kind == PlannedValue::Kind::Constant) {
        st->slots[v] = *pv.constant;
      } else if (pv.kind == PlannedValue::Kind::Activation && pv.output_index < 0) {
        st->slots[v] = pv.dtype == DType::String ? Tensor(pv.dtype, pv.shape)
                                                 : Tensor::view(pv.dtype, pv.shape, base + pv.offset);
      }
    }
    st->contexts.resize(plan.steps.size());
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const auto& step = plan.steps[s];
      ops::RunContext& rc = st->contexts[s];
      for (int v : step.inputs) rc.inputs.push_back(v < 0 ? nullptr : &st->slots[v]);
      for (int v : step.outputs) rc.outputs.push_back(v < 0 ? nullptr : &st->slots[v]);
      rc.scratch = step.scratch_bytes ? base + step.scratch_offset : nullptr;
      rc.parallel = pool.get();
      rc.status = &st->status;
    }
    return st;
  }
};

Session::Session(const std::string& model_path, const SessionOptions& options)
    : impl_(Impl::create(runtime::load_graph(model_path, load_limits(options)), options)) {}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Session Session::from_bytes(const std::string& bytes, const std::string& name, const SessionOptions& options) {
  return Session(Impl::create(runtime::load_graph_from_bytes(bytes, name, "", load_limits(options)), options));
}

std::unique_ptr<Session::Impl> Session::Impl::create(Graph graph, const SessionOptions& options) {
  auto impl_ = std::make_unique<Impl>();
  const std::string path = graph.path;
  PreparedGraph prepared;
  try {
    prepared = prepare_graph(std::move(graph), options);
  } catch (const Error& e) {
    throw e.with_context({path});
  }
  impl_->graph = std::move(prepared.graph);
  impl_->fusion = std::move(prepared.fusion);
  impl_->options = options;
  impl_->plan_opts = plan_options(options);
  impl_->inputs = io_infos(impl_->graph, impl_->graph.inputs);
  impl_->outputs = io_infos(impl_->graph, impl_->graph.outputs);
  impl_->pool = std::make_unique<runtime::ThreadPool>(std::max(1, options.threads));
  // Plan once for the default shapes so that a bad model fails here, not at the first run.
  std::vector<Shape> shapes;
  for (const IoInfo& in : impl_->inputs) shapes.push_back(default_shape(in, options.dim_values));
  impl_->plan_for(shapes);
  return impl_;
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const std::vector<IoInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<IoInfo>& Session::outputs() const { return impl_->outputs; }
const SessionOptions& Session::options() const { return impl_->options; }
const std::string& Session::path() const { return impl_->graph.path; }

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs,
                                           const RunOptions& options) const {
  Impl& im = *impl_;
  const Graph& g = im.graph;
  std::vector<Shape> shapes;
  std::vector<const Tensor*> bound;
  for (const IoInfo& in : im.inputs) {
    auto it = inputs.find(in.name);
    if (it == inputs.end()) throw Error("missing input '" + in.name + "'", {g.path});
    const Tensor& t = it->second;
    if (t.dtype() != in.dtype)
      throw Error(cat("input '", in.name, "' must be ", dtype_name(in.dtype), ", got ", dtype_name(t.dtype())), {g.path});
    bool ok = t.rank() == in.dims.size();
    for (size_t i = 0; ok && i < in.dims.size(); ++i) ok = in.dims[i] < 0 || in.dims[i] == t.dim(i);
    if (!ok)
      throw Error(cat("input '", in.name, "' must have shape ", shape_str(in.dims), " (-1: any), got ",
                      shape_str(t.shape())), {g.path});
    shapes.push_back(t.shape());
    bound.push_back(&t);
  }
  for (const auto& given : inputs) {
    const std::string& name = given.first;  // (clang 14 cannot capture a structured binding)
    bool known = std::any_of(im.inputs.begin(), im.inputs.end(), [&](const IoInfo& i) { return i.name == name; });
    if (!known) {
      std::string names;
      for (const IoInfo& i : im.inputs) names += (names.empty() ? "'" : ", '") + i.name + "'";
      throw Error("the model has no input '" + name + "' (its inputs: " + names + ")", {g.path});
    }
  }
  std::shared_ptr<PlanEntry> entry = im.plan_for(shapes);
  const Plan& plan = entry->plan;

  std::unique_ptr<RunState> st;
  {
    std::lock_guard<std::mutex> lock(entry->mutex);
    if (!entry->idle.empty()) {
      st = std::move(entry->idle.back());
      entry->idle.pop_back();
    }
  }
  if (!st) st = im.make_state(plan);
  struct Return {
    PlanEntry& e;
    std::unique_ptr<RunState>& s;
    ~Return() {
      std::lock_guard<std::mutex> lock(e.mutex);
      e.idle.push_back(std::move(s));
    }
  } give_back{*entry, st};

  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const Tensor& t = *bound[k];
    st->slots[g.inputs[k]] = Tensor::view(t.dtype(), t.shape(), const_cast<void*>(t.raw()));
  }
  std::map<std::string, Tensor> result;
  for (int v : plan.outputs) {
    const PlannedValue& pv = plan.values[v];
    if (pv.kind == PlannedValue::Kind::Activation) st->slots[v] = Tensor(pv.dtype, pv.shape);
  }

  int observed = 0;
  if (options.observer) {
    for (int ni : plan.folded) {
      const runtime::Node& node = g.nodes[ni];
      ObservedNode on{observed++, node.name, node.op_type, node.domain, {}};
      for (int v : node.outputs)
        if (v >= 0) on.outputs.push_back({g.values[v].name, *plan.values[v].constant, plan.values[v].quant});
      options.observer->on_node(on);
    }
  }
  const bool watched = options.observer || options.replace;
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const auto& step = plan.steps[s];
    if (step.observe_only && !watched) continue;
    if (options.profile) {
      const auto t0 = std::chrono::steady_clock::now();
      step.kernel->run(st->contexts[s]);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (step.node >= 0)
        options.profile->push_back({g.nodes[step.node].label(), g.nodes[step.node].op_type, ms, step.kernel->macs()});
      else options.profile->push_back({"(layout)", "layout conversion", ms, 0});
    } else {
      step.kernel->run(st->contexts[s]);
    }
    if (st->status.failed()) {
      // Only operators that read indices from run-time data report (Gather): name the node.
      const std::string reason = st->status.take();
      if (step.node >= 0) throw Error(reason, runtime::node_context(g, step.node));
      throw Error(reason, {g.path});
    }
    if ((options.observer || options.replace) && step.node >= 0) {
      const runtime::Node& node = g.nodes[step.node];
      if (options.observer) {
        // Observers see the model's layout: NHWC values are converted for them.
        std::vector<Tensor> converted;
        converted.reserve(step.outputs.size());
        ObservedNode on{observed++, node.name, node.op_type, node.domain, {}};
        for (int v : step.outputs) {
          if (v < 0) continue;
          const Tensor* t = &st->slots[v];
          if (plan.values[v].layout == ops::Layout::NHWC) t = &converted.emplace_back(ops::to_nchw(*t));
          on.outputs.push_back({g.values[v].name, *t, plan.values[v].quant});
        }
        options.observer->on_node(on);
      }
      if (options.replace) {
        for (int v : step.outputs) {
          if (v < 0) continue;
          auto it = options.replace->find(g.values[v].name);
          if (it == options.replace->end()) continue;
          const Tensor& r = it->second;
          Tensor& slot = st->slots[v];
          if (r.dtype() != slot.dtype() || r.shape() != slot.shape())
            throw Error(cat("replacement for '", g.values[v].name, "' is ", dtype_name(r.dtype()), shape_str(r.shape()),
                            " but the model computes ", dtype_name(slot.dtype()), shape_str(slot.shape())),
                        runtime::node_context(g, step.node));
          if (plan.values[v].layout == ops::Layout::NHWC) ops::copy_nchw_to_nhwc(r, slot);
          else slot.copy_from(r);
        }
      }
    }
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    int v = plan.outputs[k];
    const PlannedValue& pv = plan.values[v];
    Tensor& slot = st->slots[v];
    // Outputs that are constants or inputs are returned as copies the caller owns.
    result[g.values[g.outputs[k]].name] = pv.kind == PlannedValue::Kind::Activation ? slot : slot.clone();
    if (pv.kind == PlannedValue::Kind::Activation) slot = Tensor();
  }
  return result;
}

namespace {
// Captures the named tensors as a run produces them (model layout).
class Capture final : public Observer {
 public:
  explicit Capture(std::set<std::string> names) : names_(std::move(names)) {}
  std::map<std::string, Tensor> tensors;
  void on_node(const ObservedNode& n) override {
    for (const auto& o : n.outputs)
      if (names_.count(o.name)) tensors[o.name] = o.value.clone();
  }

 private:
  std::set<std::string> names_;
};
}  // namespace

bool Session::can_explain(const std::string& tensor) const {
  const Graph& g = impl_->graph;
  const int v = g.find(tensor);
  if (v < 0 || g.values[v].producer < 0) return false;
  const runtime::Node& node = g.nodes[g.values[v].producer];
  const ops::OpDef* def = ops::Registry::builtin().find(node.domain, node.op_type, node.opset);
  return def && def->explain && !node.outputs.empty() && node.outputs[0] == v;
}

Explanation Session::explain(const std::map<std::string, Tensor>& inputs, const ExplainRequest& request,
                             const std::map<std::string, Tensor>* replace) const {
  return explain(inputs, request.tensor, {request.index}, replace).at(0);
}

std::vector<Explanation> Session::explain(const std::map<std::string, Tensor>& inputs, const std::string& tensor,
                                          const std::vector<std::vector<int64_t>>& indices,
                                          const std::map<std::string, Tensor>* replace) const {
  const Graph& g = impl_->graph;
  const ExplainRequest request{tensor, {}};
  const int v = g.find(request.tensor);
  if (v < 0 || g.values[v].producer < 0)
    throw Error("no node produces a tensor named '" + request.tensor + "' (quint dump lists the tensors)", {g.path});
  const int ni = g.values[v].producer;
  const runtime::Node& node = g.nodes[ni];
  const ops::OpDef* def = ops::Registry::builtin().find(node.domain, node.op_type, node.opset);
  if (!def || !def->explain) {
    // The operators that have an explain, from the registry (so the list cannot go stale).
    std::set<std::string> covered;
    for (const ops::OpDef& d : ops::Registry::builtin().all())
      if (d.explain && d.domain != "quint") covered.insert(d.op_type);
    std::string list;
    for (const std::string& op : covered) list += (list.empty() ? "" : ", ") + op;
    throw Error("explain covers " + list + "; '" + request.tensor + "' is produced by " + node.op_type,
                runtime::node_context(g, ni));
  }
  if (node.outputs.empty() || node.outputs[0] != v)
    throw Error("explain works on a node's first output; '" + request.tensor + "' is another output",
                runtime::node_context(g, ni));
  std::set<std::string> wanted{request.tensor};
  for (int in : node.inputs)
    if (in >= 0) wanted.insert(g.values[in].name);
  Capture cap(wanted);
  RunOptions ro;
  ro.observer = &cap;
  ro.replace = replace;
  run(inputs, ro);
  // Inputs come from the run (activations), the caller (graph inputs) or the plan (constants).
  std::vector<Shape> shapes;
  for (const IoInfo& in : impl_->inputs) shapes.push_back(inputs.at(in.name).shape());
  const Plan& plan = impl_->plan_for(shapes)->plan;
  std::vector<const Tensor*> tensors;
  for (int in : node.inputs) {
    if (in < 0) {
      tensors.push_back(nullptr);
      continue;
    }
    const std::string& name = g.values[in].name;
    if (replace && replace->count(name)) tensors.push_back(&replace->at(name));
    else if (cap.tensors.count(name)) tensors.push_back(&cap.tensors.at(name));
    else if (inputs.count(name)) tensors.push_back(&inputs.at(name));
    else if (plan.values[in].constant) tensors.push_back(&*plan.values[in].constant);
    else throw Error("input '" + name + "' of the node was not computed", runtime::node_context(g, ni));
  }
  ops::NodeInfo info{node.name, node.op_type, node.domain, node.opset};
  runtime::InitializerExtras extras(g, node.name);
  const Tensor& out = cap.tensors.at(request.tensor);
  std::vector<Explanation> result;
  result.reserve(indices.size());
  for (const auto& index : indices) {
    ops::ExplainContext ec{info, node.attrs, tensors, &extras, index};
    Explanation e;
    try {
      e = def->explain(ec);
    } catch (const Error& err) {
      throw err.with_context(runtime::node_context(g, ni));
    }
    e.tensor = request.tensor;
    e.node = node.label();
    e.session_arith = impl_->options.arith;
    int64_t off = 0;
    for (size_t i = 0; i < index.size(); ++i) off = off * out.dim(i) + index[i];
    e.actual = out.as_int64(off);
    result.push_back(std::move(e));
  }
  return result;
}

ModelSummary Session::summarize(const std::string& model_path, const SessionOptions& options) {
  // The model as written, for the histogram and parameter count.
  runtime::LoadLimits limits;
  limits.max_tensor_bytes = options.max_tensor_bytes;
  const Graph original = runtime::load_graph(model_path, limits);
  PreparedGraph prepared = prepare_graph(runtime::load_graph(model_path, limits), options);
  Graph& g = prepared.graph;
  ModelSummary s;
  s.fusions = prepared.fusion.fused;
  s.not_fused = prepared.fusion.not_fused;
  s.path = model_path;
  s.producer = g.producer_name + (g.producer_version.empty() ? "" : " " + g.producer_version);
  s.graph_name = g.graph_name;
  s.ir_version = g.ir_version;
  s.opsets = g.opsets;
  s.inputs = io_infos(g, g.inputs);
  s.outputs = io_infos(g, g.outputs);
  s.nodes = static_cast<int>(original.nodes.size()) + original.constant_nodes_folded;
  for (const auto& n : original.nodes)
    ++s.op_histogram[n.domain == "ai.onnx" ? n.op_type : n.domain + ":" + n.op_type];
  if (original.constant_nodes_folded) s.op_histogram["Constant"] += original.constant_nodes_folded;
  for (const auto& v : original.values)
    if (v.initializer) s.parameter_bytes += static_cast<int64_t>(v.initializer->nbytes());
  for (const auto& [k, v] : g.metadata) s.metadata.push_back(k + ": " + (v.size() > 200 ? v.substr(0, 200) + "…" : v));
  std::vector<Shape> shapes;
  for (const IoInfo& in : s.inputs) shapes.push_back(default_shape(in, options.dim_values));
  runtime::PlanOptions po = plan_options(options);
  po.collect_errors = true;
  Plan plan = runtime::make_plan(g, shapes, po);
  s.unsupported = plan.errors;
  s.unplanned_nodes = plan.unplanned_nodes;
  s.macs = plan.macs;
  s.planned_steps = static_cast<int>(std::count_if(plan.steps.begin(), plan.steps.end(),
                                                   [](const runtime::PlannedStep& st) { return st.node >= 0; }));
  s.layout_conversions = static_cast<int>(plan.steps.size()) - s.planned_steps;
  s.folded_nodes = plan.folded_nodes + prepared.folded + original.constant_nodes_folded;
  return s;
}

}  // namespace quint
