#include "graph_passes.h"

#include <cfloat>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "op_schema.h"
#include "plan.h"

namespace quint::runtime {

// ---- constant folding -------------------------------------------------------------------------

int fold_constants(Graph& g, const ops::KernelOptions& options, bool keep_dequantize) {
  const ops::Registry& registry = ops::Registry::builtin();
  SerialParallel serial;
  int folded = 0;
  std::vector<bool> remove(g.nodes.size(), false);
  // Nodes are visited in model order; a node whose inputs become constant later is queued again
  // when they do. (Sweeping the whole graph until nothing changes would take quadratic time on a
  // long chain written in reverse order.)
  std::vector<std::vector<size_t>> users(g.values.size());
  for (size_t ni = 0; ni < g.nodes.size(); ++ni)
    for (int v : g.nodes[ni].inputs)
      if (v >= 0) users[static_cast<size_t>(v)].push_back(ni);
  std::deque<size_t> work;
  std::vector<bool> queued(g.nodes.size(), true);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) work.push_back(ni);
  while (!work.empty()) {
    const size_t ni = work.front();
    work.pop_front();
    queued[ni] = false;
    if (remove[ni]) continue;
    const Node& n = g.nodes[ni];
    if (keep_dequantize && n.op_type == "DequantizeLinear") continue;
    bool all_const = std::all_of(n.inputs.begin(), n.inputs.end(),
                                 [&](int v) { return v < 0 || g.values[v].initializer.has_value(); });
    if (!all_const || n.outputs.empty()) continue;
    const ops::OpDef* def = registry.find(n.domain, n.op_type, n.opset);
    if (!def || !def->foldable) continue;
    ops::NodeInfo info{n.name, n.op_type, n.domain, n.opset};
    std::vector<ops::ValueInfo> infos(n.inputs.size());
    std::vector<const ops::ValueInfo*> ptrs(n.inputs.size(), nullptr);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k] < 0) continue;
      const Tensor& t = *g.values[n.inputs[k]].initializer;
      infos[k] = ops::ValueInfo{t.dtype(), t.shape(), &t, {}};
      ptrs[k] = &infos[k];
    }
    std::vector<Tensor> outs;
    try {
      check_input_types(n.domain, n.op_type, n.opset, ptrs);
      ops::BuildContext ctx(info, n.attrs, ptrs, n.outputs.size(), options, nullptr);
      std::unique_ptr<ops::Kernel> kernel = def->build(ctx);
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        if (ctx.output_constant(k)) outs.push_back(*ctx.output_constant(k));
        else outs.emplace_back(ctx.output(k).dtype, ctx.output(k).shape);
      }
      if (kernel) {
        if (kernel->scratch_bytes() > static_cast<size_t>(options.max_tensor_bytes))
          fail("the kernel needs ", kernel->scratch_bytes(), " bytes of scratch memory, more than the tensor size limit of ",
               options.max_tensor_bytes, " bytes");
        ops::RunContext rc;
        for (int v : n.inputs) rc.inputs.push_back(v < 0 ? nullptr : &*g.values[v].initializer);
        for (auto& t : outs) rc.outputs.push_back(&t);
        std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
        rc.scratch = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
        rc.parallel = &serial;
        kernel->run(rc);
      }
    } catch (const Error& e) {
      throw e.with_context(node_context(g, static_cast<int>(ni)));
    } catch (const ops::NeedPlainLayout&) {
      continue;  // constants are always in the model's layout; cannot happen
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      int v = n.outputs[k];
      if (v < 0) continue;
      Value& val = g.values[v];
      val.initializer = std::move(outs[k]);
      val.dtype = val.initializer->dtype();
      val.has_shape = true;
      val.dims = val.initializer->shape();
      val.dim_params.assign(val.dims.size(), "");
      val.producer = -1;
      for (size_t u : users[static_cast<size_t>(v)])
        if (!queued[u] && !remove[u]) {
          queued[u] = true;
          work.push_back(u);
        }
    }
    remove[ni] = true;
    ++folded;
  }
  if (folded == 0) return 0;
  std::vector<Node> kept;
  std::vector<int> remap(g.nodes.size(), -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    if (remove[ni]) continue;
    remap[ni] = static_cast<int>(kept.size());
    kept.push_back(std::move(g.nodes[ni]));
  }
  g.nodes = std::move(kept);
  for (Value& v : g.values)
    if (v.producer >= 0) v.producer = remap[static_cast<size_t>(v.producer)];
  return folded;
}

// ---- QDQ fusion -------------------------------------------------------------------------------

namespace {

// A Q or DQ node the fuser can use: its data input and output present. A malformed one (the
// fuzzer made a QuantizeLinear without outputs, which the fuser then read outputs[0] of) is left
// alone, and its build function reports it.
bool has_data_io(const Node* n) {
  return !n->inputs.empty() && n->inputs[0] >= 0 && !n->outputs.empty() && n->outputs[0] >= 0;
}
bool is_q(const Node* n) {
  return n && n->op_type == "QuantizeLinear" && (n->domain == "ai.onnx" || n->domain == "com.microsoft") &&
         has_data_io(n);
}
bool is_dq(const Node* n) {
  return n && n->op_type == "DequantizeLinear" && (n->domain == "ai.onnx" || n->domain == "com.microsoft") &&
         has_data_io(n);
}

// The graph with consumer lists, rebuilt after every change (graphs are small; clarity wins).
class FusionGraph {
 public:
  explicit FusionGraph(Graph& g) : g_(g) { refresh(); }

  Graph& g() { return g_; }
  void refresh() {
    consumers_.assign(g_.values.size(), {});
    for (Value& v : g_.values) v.producer = v.initializer ? -1 : v.producer;
    for (size_t ni = 0; ni < g_.nodes.size(); ++ni) {
      if (dead_.count(static_cast<int>(ni))) continue;
      const Node& n = g_.nodes[ni];
      for (size_t k = 0; k < n.inputs.size(); ++k)
        if (n.inputs[k] >= 0) consumers_[n.inputs[k]].push_back(static_cast<int>(ni));
      for (int v : n.outputs)
        if (v >= 0) g_.values[v].producer = static_cast<int>(ni);
    }
    outputs_.assign(g_.values.size(), false);
    for (int v : g_.outputs) outputs_[v] = true;
  }
  bool dead(int ni) const { return dead_.count(ni) != 0; }
  void kill(int ni) { dead_.insert(ni); }
  const std::vector<int>& consumers(int v) const { return consumers_[v]; }
  bool graph_output(int v) const { return outputs_[v]; }
  Node* producer(int v) {
    if (v < 0) return nullptr;
    int p = g_.values[v].producer;
    return p >= 0 && !dead(p) ? &g_.nodes[p] : nullptr;
  }
  const Tensor* cst(int v) const { return v >= 0 && g_.values[v].initializer ? &*g_.values[v].initializer : nullptr; }
  int input(const Node& n, size_t i) const { return i < n.inputs.size() ? n.inputs[i] : -1; }

  // A new initializer with a name not used yet.
  int add_constant(const std::string& base, Tensor t) {
    std::string name = base;
    for (int i = 1; g_.find(name) >= 0; ++i) name = base + "_" + std::to_string(i);
    int v = g_.add_value(name);
    Value& val = g_.values[v];
    val.dtype = t.dtype();
    val.has_shape = true;
    val.dims = t.shape();
    val.dim_params.assign(val.dims.size(), "");
    val.initializer = std::move(t);
    consumers_.emplace_back();
    outputs_.push_back(false);
    return v;
  }

  // Removes dead nodes and DequantizeLinear nodes nobody reads any more.
  void compact() {
    for (bool changed = true; changed;) {
      changed = false;
      refresh();
      for (size_t ni = 0; ni < g_.nodes.size(); ++ni) {
        const Node& n = g_.nodes[ni];
        if (dead(static_cast<int>(ni)) || !is_dq(&n)) continue;
        int out = n.outputs.empty() ? -1 : n.outputs[0];
        if (out >= 0 && consumers_[out].empty() && !outputs_[out]) {
          kill(static_cast<int>(ni));
          changed = true;
        }
      }
    }
    std::vector<Node> kept;
    for (size_t ni = 0; ni < g_.nodes.size(); ++ni)
      if (!dead(static_cast<int>(ni))) kept.push_back(std::move(g_.nodes[ni]));
    g_.nodes = std::move(kept);
    dead_.clear();
    for (Value& v : g_.values)
      if (!v.initializer) v.producer = -1;
    for (size_t ni = 0; ni < g_.nodes.size(); ++ni)
      for (int v : g_.nodes[ni].outputs)
        if (v >= 0) g_.values[v].producer = static_cast<int>(ni);
  }

 private:
  Graph& g_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> outputs_;
  std::set<int> dead_;
};

// Scale and zero point of a Q or DQ node when they are constants.
struct QParams {
  const Tensor* scale = nullptr;
  const Tensor* zp = nullptr;  // nullptr: absent (zero of the node's integer type)
  bool constant = false;
  bool scalar() const { return constant && scale->numel() == 1 && (!zp || zp->numel() == 1); }
  float s() const { return scale->values<float>()[0]; }
  int64_t z() const { return zp ? zp->as_int64(0) : 0; }
};

QParams qparams(FusionGraph& fg, const Node& n) {
  QParams p;
  p.scale = fg.cst(fg.input(n, 1));
  int zv = fg.input(n, 2);
  p.zp = fg.cst(zv);
  p.constant = p.scale && p.scale->dtype() == DType::Float32 && (zv < 0 || p.zp);
  return p;
}

bool same_scalar_params(FusionGraph& fg, const Node& a, const Node& b) {
  QParams pa = qparams(fg, a), pb = qparams(fg, b);
  if (!pa.scalar() || !pb.scalar()) return false;
  return pa.s() == pb.s() && pa.z() == pb.z() && (pa.zp == nullptr) == (pb.zp == nullptr) &&
         (!pa.zp || pa.zp->dtype() == pb.zp->dtype());
}

// The integer type a Q node produces.
DType q_output_type(FusionGraph& fg, const Node& q) {
  const Tensor* zp = fg.cst(fg.input(q, 2));
  if (fg.input(q, 2) < 0) return DType::UInt8;
  return zp ? zp->dtype() : fg.g().values[q.inputs[2]].dtype;
}

// The integer type a DQ node reads.
DType dq_input_type(FusionGraph& fg, const Node& dq) {
  if (fg.input(dq, 2) >= 0) {
    if (const Tensor* zp = fg.cst(dq.inputs[2])) return zp->dtype();
  }
  int x = fg.input(dq, 0);
  if (x < 0) return DType::Undefined;
  if (const Tensor* c = fg.cst(x)) return c->dtype();
  if (Node* p = fg.producer(x); is_q(p)) return q_output_type(fg, *p);
  return fg.g().values[x].dtype;
}

// ONNX Runtime on x86 cannot run int8 activations in its QLinear kernels; its
// QDQS8ToU8Transformer rewrites a Q(int8) → DQ(int8) pair to uint8 (zero point + 128) when the Q
// feeds only that DQ, is not a graph output, and both carry the same constant scalar parameters.
// The values are the same shifted by 128, so quint keeps int8 and only needs to know whether
// ONNX Runtime would see uint8 ("effective" type).
bool convertible_pair(FusionGraph& fg, const Node& q, const Node& dq) {
  int out = q.outputs.empty() ? -1 : q.outputs[0];
  return out >= 0 && q_output_type(fg, q) == DType::Int8 && fg.consumers(out).size() == 1 &&
         !fg.graph_output(out) && same_scalar_params(fg, q, dq);
}

DType effective_dq_type(FusionGraph& fg, const Node& dq) {
  DType t = dq_input_type(fg, dq);
  Node* q = fg.producer(fg.input(dq, 0));
  if (t == DType::Int8 && is_q(q) && convertible_pair(fg, *q, dq)) return DType::UInt8;
  return t;
}

DType effective_q_type(FusionGraph& fg, const Node& q) {
  DType t = q_output_type(fg, q);
  int out = q.outputs.empty() ? -1 : q.outputs[0];
  if (t == DType::Int8 && out >= 0 && fg.consumers(out).size() == 1) {
    Node& dq = fg.g().nodes[fg.consumers(out)[0]];
    if (is_dq(&dq) && convertible_pair(fg, q, dq)) return DType::UInt8;
  }
  return t;
}

// The outcome of examining one target node.
struct Match {
  bool unit = false;   // it is (part of) a QDQ unit at all
  std::string reason;  // why it was not fused ("" when fused)
};

class QdqFuser {
 public:
  QdqFuser(Graph& g, const ops::KernelOptions& options) : fg_(g), options_(options) {}

  FusionReport run() {
    remove_noop_casts();
    remove_activations_before_q();
    const size_t n = fg_.g().nodes.size();
    for (size_t ni = 0; ni < n; ++ni) {
      if (fg_.dead(static_cast<int>(ni))) continue;
      Node& node = fg_.g().nodes[ni];
      if (node.domain != "ai.onnx") continue;
      Match m = try_fuse(static_cast<int>(ni));
      if (m.unit && !m.reason.empty()) {
        report_.not_fused.push_back(node.op_type + " '" + node.label() + "': " + m.reason);
        not_fused_node_.push_back(static_cast<int>(ni));
      }
      // Only a fusion changes the graph (a unit left unfused returns before touching it; new
      // constants keep the tables themselves). Refreshing after every node made loading a long
      // chain quadratic: 32k plain nodes took 20 s.
      if (m.unit && m.reason.empty()) fg_.refresh();
    }
    remove_dq_q_pairs();
    fuse_pads_into_average_pools();
    fuse_lookup_tables();
    fg_.compact();
    return report_;
  }

 private:
  using Builder = std::function<void(Node&)>;

  Match try_fuse(int ni) {
    const std::string op = fg_.g().nodes[ni].op_type;
    if (op == "Conv") return fuse_conv(ni);
    if (op == "MatMul") return fuse_matmul(ni);
    if (op == "Gemm") return fuse_gemm(ni);
    if (op == "Add" || op == "Mul") return fuse_binary(ni);
    if (op == "Concat") return fuse_concat(ni);
    if (op == "AveragePool" || op == "GlobalAveragePool") return fuse_avg_pool(ni);
    if (op == "MaxPool" || op == "Reshape" || op == "Flatten" || op == "Transpose" || op == "Squeeze" ||
        op == "Unsqueeze" || op == "Expand" || op == "Gather" || op == "Slice" || op == "Tile")
      return fuse_drop_qdq(ni);
    if (op == "Softmax") return fuse_softmax(ni);
    if (op == "Sigmoid" || op == "LeakyRelu") return fuse_lookup_unary(ni);
    return {};
  }

  Node& node(int ni) { return fg_.g().nodes[ni]; }

  // DQ nodes feeding `n`'s present inputs (nullptr where an input is not from a DQ).
  // The DequantizeLinear producing each input (nullptr where none does), padded with nullptr to
  // at least `min_size` entries: a malformed node may have fewer inputs than its op needs.
  std::vector<Node*> dq_inputs(const Node& n, size_t min_size = 0) {
    std::vector<Node*> out;
    for (int v : n.inputs) {
      Node* p = v >= 0 ? fg_.producer(v) : nullptr;
      out.push_back(is_dq(p) ? p : nullptr);
    }
    if (out.size() < min_size) out.resize(min_size, nullptr);
    return out;
  }

  // The single Q consuming the node's only output. nullptr when no Q reads it (then the node may
  // not be a unit at all: `reason` stays empty), or when the output also goes elsewhere (then
  // `reason` says why ONNX Runtime would not fuse it).
  Node* single_q_output(const Node& n, std::string* reason) {
    for (size_t k = 1; k < n.outputs.size(); ++k)
      if (n.outputs[k] >= 0) {
        *reason = "the node has more than one output";
        return nullptr;
      }
    const int out = n.outputs.empty() ? -1 : n.outputs[0];
    if (out < 0) return nullptr;
    const auto& cons = fg_.consumers(out);
    const auto nq = std::count_if(cons.begin(), cons.end(), [&](int c) { return is_q(&node(c)); });
    if (nq == 0) return nullptr;
    if (fg_.graph_output(out)) {
      *reason = "its float output is also a graph output";
      return nullptr;
    }
    if (cons.size() != 1) {
      *reason = "its output has " + std::to_string(cons.size()) + " consumers, not one QuantizeLinear";
      return nullptr;
    }
    return &node(cons[0]);
  }

  // Checks shared by every unit; returns "" when fine.
  std::string check_dq_activation(Node* dq, const char* what) {
    if (!dq) return std::string(what) + " is not produced by a DequantizeLinear";
    QParams p = qparams(fg_, *dq);
    if (!p.constant) return std::string(what) + "'s scale or zero point is not a constant";
    if (!p.scalar()) return std::string(what) + " is quantized per axis (ONNX Runtime fuses it and then fails; quint keeps it in float)";
    return "";
  }
  std::string check_q(Node* q) {
    QParams p = qparams(fg_, *q);
    if (!p.scalar()) return "the QuantizeLinear's scale and zero point are not constant scalars";
    return "";
  }

  // Zero point input of a DQ/Q node, or a new zero of `type` when absent.
  int zp_or_zero(const Node& n, DType type, const std::string& base) {
    int v = fg_.input(n, 2);
    if (v >= 0) return v;
    Tensor z(type, {});
    return fg_.add_constant(base + ".zero_point_quint", z);
  }

  void record(const std::string& fused_op, int ni, const std::vector<Node*>& parts, const Node* q) {
    std::string chain;
    for (const Node* p : parts) chain += (chain.empty() ? "" : ", ") + p->op_type;
    const Node& t = node(ni);
    std::string out = fg_.g().values[(q ? q : &t)->outputs[0]].name;
    report_.fused.push_back(fused_op + " '" + t.label() + "' <- " + chain + (relu_folded_.count(q) ? " (+ " + relu_folded_[q] + ")" : "") +
                            " -> '" + out + "'");
  }

  // Replaces target `ni` with `fused`, whose output is the Q's; the Q dies. DQs die in compact()
  // once unused.
  void replace(int ni, Node fused, Node* q) {
    if (q) {
      fused.outputs = {q->outputs[0]};
      fg_.kill(static_cast<int>(q - fg_.g().nodes.data()));
    }
    fg_.g().nodes[ni] = std::move(fused);
  }

  Match fuse_conv(int ni) {
    Node& conv = node(ni);
    std::vector<Node*> dq = dq_inputs(conv, 3);
    std::string reason;
    Node* q = single_q_output(conv, &reason);
    if (!dq[0] && !q && reason.empty()) return {};
    Match m{true, ""};
    if (!reason.empty()) return {true, reason};
    if (!q) return {true, "its output is not quantized by a QuantizeLinear"};
    if (conv.inputs.size() < 2 || !dq[1]) return {true, "the weights are not produced by a DequantizeLinear"};
    if (!(m.reason = check_dq_activation(dq[0], "the input")).empty()) return m;
    if (!(m.reason = check_q(q)).empty()) return m;
    const DType xt = effective_dq_type(fg_, *dq[0]), yt = effective_q_type(fg_, *q);
    if (xt != yt) return {true, "input and output types differ after ONNX Runtime's int8→uint8 rewrite"};
    if (xt == DType::Int8)
      return {true, "int8 activations outside a Q→DQ pair ONNX Runtime rewrites to uint8: it runs this unit in float"};
    if (xt != DType::UInt8) return {true, "the activation is not 8-bit"};
    // Weights: constant 8-bit, per tensor or per output channel (axis 0).
    Node* wdq = dq[1];
    const Tensor* w = fg_.cst(wdq->inputs[0]);
    QParams wp = qparams(fg_, *wdq);
    if (!w || !wp.constant) return {true, "the weights or their scale/zero point are not constants"};
    if (!is_quant8(w->dtype())) return {true, "the weights are not 8-bit"};
    const DType w_type = w->dtype();
    if (wp.scale->numel() > 1) {
      int64_t axis = wdq->attrs.get_int("axis", 1);
      if (axis < 0) axis += static_cast<int64_t>(w->rank());
      if (axis != 0)
        return {true, "the weight DequantizeLinear is per axis " + std::to_string(axis) +
                          ", not per output channel (ONNX Runtime fuses it and then fails; quint keeps it in float)"};
    }
    const int64_t M = w->rank() > 0 ? w->dim(0) : 0;
    // Bias: absent, DQ(int32, zero point 0) with scale ≈ x_s·w_s[c], or a float constant that
    // ONNX Runtime quantizes itself (WeightBiasQuantization): rne(b / fl32(x_s·w_s[c])).
    const float xs = qparams(fg_, *dq[0]).s();
    auto prod = [&](int64_t c) { return xs * wp.scale->values<float>()[wp.scale->numel() > 1 ? c : 0]; };
    int bias_v = -1;
    std::vector<Node*> parts = {dq[0], dq[1]};
    if (conv.inputs.size() > 2 && conv.inputs[2] >= 0) {
      if (Node* bdq = dq[2]) {
        const Tensor* b = fg_.cst(bdq->inputs[0]);
        QParams bp = qparams(fg_, *bdq);
        if (!b || !bp.constant) return {true, "the bias or its scale is not a constant"};
        if (b->dtype() != DType::Int32) return {true, "the bias DequantizeLinear does not read int32"};
        if (bp.zp && bp.zp->numel() > 0)
          for (int64_t i = 0; i < bp.zp->numel(); ++i)
            if (bp.zp->as_int64(i) != 0) return {true, "the bias zero point is not 0"};
        for (int64_t c = 0; c < M; ++c) {
          const double want = prod(c);
          const double have = bp.scale->values<float>()[bp.scale->numel() > 1 ? c : 0];
          if (std::fabs(have - want) > 1e-6 + 0.01 * want)
            return {true, "the bias scale differs from x_scale·w_scale beyond ONNX Runtime's tolerance "
                          "(|b_s − x_s·w_s| <= 1e-6 + 0.01·x_s·w_s)"};
        }
        bias_v = bdq->inputs[0];
        parts.push_back(bdq);
      } else if (const Tensor* bf = fg_.cst(conv.inputs[2]); bf && bf->dtype() == DType::Float32 && bf->numel() == M) {
        Tensor bq(DType::Int32, {M});
        for (int64_t c = 0; c < M; ++c) {
          float r = std::nearbyint(bf->values<float>()[c] / prod(c));
          if (!(std::fabs(r) < 2147483520.0f)) return {true, "the float bias does not fit int32 at scale x_s·w_s"};
          bq.data<int32_t>()[c] = static_cast<int32_t>(r);
        }
        bias_v = fg_.add_constant(fg_.g().values[conv.inputs[2]].name + ".quantized_quint", bq);
      } else {
        return {true, "the bias is neither a DequantizeLinear of int32 nor a float constant"};
      }
    }
    parts.push_back(&conv);
    parts.push_back(q);
    // New constants may move the graph's values: read what is needed first.
    const DType x_type = dq_input_type(fg_, *dq[0]);
    const int x_zp = zp_or_zero(*dq[0], x_type, conv.name + ".x");
    const int w_zp = zp_or_zero(*wdq, w_type, conv.name + ".w");
    const int y_zp = zp_or_zero(*q, DType::UInt8, conv.name + ".y");
    Node f;
    f.name = conv.name;
    f.op_type = "QLinearConv";
    f.domain = "ai.onnx";
    f.opset = std::max(conv.opset, 10);
    f.attrs = conv.attrs;
    f.inputs = {dq[0]->inputs[0], dq[0]->inputs[1], x_zp, wdq->inputs[0], wdq->inputs[1], w_zp, q->inputs[1], y_zp};
    if (bias_v >= 0) f.inputs.push_back(bias_v);
    record("QLinearConv", ni, parts, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  Match fuse_matmul(int ni) {
    Node& mm = node(ni);
    std::vector<Node*> dq = dq_inputs(mm, 3);
    std::string reason;
    Node* q = single_q_output(mm, &reason);
    if (!dq[0] && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    if (!dq[0] || mm.inputs.size() < 2 || !dq[1]) return {true, "an input is not produced by a DequantizeLinear"};
    const DType at = effective_dq_type(fg_, *dq[0]), bt = effective_dq_type(fg_, *dq[1]);
    if (at == DType::Int8) return {true, "int8 activations: ONNX Runtime on x86 runs this unit in float"};
    if (!is_quant8(at) || !is_quant8(bt)) return {true, "the inputs are not 8-bit"};
    if (!q)
      return {true, "no QuantizeLinear follows: ONNX Runtime computes it as MatMulIntegerToFloat, quint in float "
                    "(equal within float rounding)"};
    Match m{true, ""};
    if (!(m.reason = check_dq_activation(dq[0], "input A")).empty()) return m;
    if (!(m.reason = check_q(q)).empty()) return m;
    if (effective_q_type(fg_, *q) != at) return {true, "input and output types differ"};
    QParams bp = qparams(fg_, *dq[1]);
    if (!bp.constant) return {true, "B's scale or zero point is not a constant"};
    if (bp.scale->numel() > 1) {
      const Value& bv = fg_.g().values[dq[1]->inputs[0]];
      int64_t rank = bv.initializer ? static_cast<int64_t>(bv.initializer->rank()) : static_cast<int64_t>(bv.dims.size());
      int64_t axis = dq[1]->attrs.get_int("axis", 1);
      if (axis < 0) axis += rank;
      if (rank != 2 || axis != 1)
        return {true, "B is quantized per axis other than its columns (ONNX Runtime fuses it and then fails; quint keeps it in float)"};
    }
    Node f;
    f.name = mm.name;
    f.op_type = "QLinearMatMul";
    f.domain = "ai.onnx";
    f.opset = std::max(mm.opset, 10);
    f.inputs = {dq[0]->inputs[0], dq[0]->inputs[1], zp_or_zero(*dq[0], dq_input_type(fg_, *dq[0]), mm.name + ".a"),
                dq[1]->inputs[0], dq[1]->inputs[1], zp_or_zero(*dq[1], dq_input_type(fg_, *dq[1]), mm.name + ".b"),
                q->inputs[1],     zp_or_zero(*q, DType::UInt8, mm.name + ".y")};
    record("QLinearMatMul", ni, {dq[0], dq[1], &mm, q}, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  Match fuse_gemm(int ni) {
    Node& gm = node(ni);
    std::vector<Node*> dq = dq_inputs(gm, 3);
    std::string reason;
    Node* q = single_q_output(gm, &reason);
    if (!dq[0] && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    const bool has_c = gm.inputs.size() > 2 && gm.inputs[2] >= 0;
    if (!dq[0] || gm.inputs.size() < 2 || !dq[1] || (has_c && !dq[2]))
      return {true, "an input is not produced by a DequantizeLinear"};
    const DType at = effective_dq_type(fg_, *dq[0]), bt = effective_dq_type(fg_, *dq[1]);
    if (!is_quant8(at) || !is_quant8(bt)) return {true, "the inputs are not 8-bit"};
    if (at == DType::Int8 && bt != DType::Int8) return {true, "A is int8 but B is not"};
    if (q && effective_q_type(fg_, *q) != at) return {true, "input and output types differ"};
    Match m{true, ""};
    if (!(m.reason = check_dq_activation(dq[0], "input A")).empty()) return m;
    if (q && !(m.reason = check_q(q)).empty()) return m;
    QParams bp = qparams(fg_, *dq[1]);
    if (!bp.constant) return {true, "B's scale or zero point is not a constant"};
    std::vector<Node*> parts = {dq[0], dq[1]};
    int c_v = -1;
    if (has_c) {
      if (gm.attrs.get_float("beta", 1.0f) != 1.0f) return {true, "beta is not 1"};
      if (dq_input_type(fg_, *dq[2]) != DType::Int32) return {true, "C's DequantizeLinear does not read int32"};
      c_v = dq[2]->inputs[0];
      parts.push_back(dq[2]);
    }
    parts.push_back(&gm);
    if (q) parts.push_back(q);
    Node f;
    f.name = gm.name;
    f.op_type = "QGemm";
    f.domain = "com.microsoft";
    f.opset = 1;
    for (const char* a : {"alpha", "transA", "transB"})
      if (gm.attrs.has(a)) f.attrs.set(a, gm.attrs.all().at(a));
    f.inputs = {dq[0]->inputs[0], dq[0]->inputs[1], zp_or_zero(*dq[0], dq_input_type(fg_, *dq[0]), gm.name + ".a"),
                dq[1]->inputs[0], dq[1]->inputs[1], zp_or_zero(*dq[1], dq_input_type(fg_, *dq[1]), gm.name + ".b"), c_v};
    if (q) {
      f.inputs.push_back(q->inputs[1]);
      f.inputs.push_back(zp_or_zero(*q, DType::UInt8, gm.name + ".y"));
    } else {
      f.outputs = gm.outputs;
    }
    record("QGemm", ni, parts, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  Match fuse_binary(int ni) {
    Node& bn = node(ni);
    std::vector<Node*> dq = dq_inputs(bn);
    std::string reason;
    Node* q = single_q_output(bn, &reason);
    if ((dq.empty() || (!dq[0] && (dq.size() < 2 || !dq[1]))) && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    if (!q) return {true, "its output is not quantized by a QuantizeLinear"};
    if (dq.size() != 2 || !dq[0] || !dq[1]) return {true, "an input is not produced by a DequantizeLinear"};
    Match m{true, ""};
    if (!(m.reason = check_dq_activation(dq[0], "input A")).empty()) return m;
    if (!(m.reason = check_dq_activation(dq[1], "input B")).empty()) return m;
    if (!(m.reason = check_q(q)).empty()) return m;
    const DType at = effective_dq_type(fg_, *dq[0]), bt = effective_dq_type(fg_, *dq[1]), yt = effective_q_type(fg_, *q);
    if (at != bt || at != yt) return {true, "inputs and output are not all the same type"};
    if (!is_quant8(at)) return {true, "the inputs are not 8-bit"};
    const DType actual = dq_input_type(fg_, *dq[0]);
    if (dq_input_type(fg_, *dq[1]) != actual || q_output_type(fg_, *q) != actual)
      return {true, "mixed int8/uint8 tensors (equal only after ONNX Runtime's int8→uint8 rewrite)"};
    const std::string op = bn.op_type == "Add" ? "QLinearAdd" : "QLinearMul";
    Node f;
    f.name = bn.name;
    f.op_type = op;
    f.domain = "com.microsoft";
    f.opset = 1;
    f.inputs = {dq[0]->inputs[0], dq[0]->inputs[1], zp_or_zero(*dq[0], actual, bn.name + ".a"),
                dq[1]->inputs[0], dq[1]->inputs[1], zp_or_zero(*dq[1], actual, bn.name + ".b"),
                q->inputs[1],     zp_or_zero(*q, actual, bn.name + ".c")};
    record(op, ni, {dq[0], dq[1], &bn, q}, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  Match fuse_concat(int ni) {
    Node& cn = node(ni);
    std::vector<Node*> dq = dq_inputs(cn);
    std::string reason;
    Node* q = single_q_output(cn, &reason);
    bool any_dq = std::any_of(dq.begin(), dq.end(), [](Node* d) { return d != nullptr; });
    if (!any_dq && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    if (!q) return {true, "its output is not quantized by a QuantizeLinear"};
    if (std::any_of(dq.begin(), dq.end(), [](Node* d) { return d == nullptr; }))
      return {true, "an input is not produced by a DequantizeLinear"};
    Match m{true, ""};
    if (!(m.reason = check_q(q)).empty()) return m;
    const DType yt = effective_q_type(fg_, *q), actual = q_output_type(fg_, *q);
    for (Node* d : dq) {
      if (!(m.reason = check_dq_activation(d, "an input")).empty()) return m;
      if (effective_dq_type(fg_, *d) != yt) return {true, "inputs and output are not all the same type"};
      if (dq_input_type(fg_, *d) != actual) return {true, "mixed int8/uint8 tensors"};
    }
    if (!is_quant8(actual)) return {true, "the tensors are not 8-bit"};
    Node f;
    f.name = cn.name;
    f.op_type = "QLinearConcat";
    f.domain = "com.microsoft";
    f.opset = 1;
    f.attrs = cn.attrs;
    f.inputs = {q->inputs[1], zp_or_zero(*q, actual, cn.name + ".y")};
    std::vector<Node*> parts;
    for (Node* d : dq) {
      f.inputs.push_back(d->inputs[0]);
      f.inputs.push_back(d->inputs[1]);
      f.inputs.push_back(zp_or_zero(*d, actual, cn.name + ".x"));
      parts.push_back(d);
    }
    parts.push_back(&cn);
    parts.push_back(q);
    record("QLinearConcat", ni, parts, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  // A DQ → op → Q unit of one 8-bit activation input whose output type is its input's (the
  // pooling units and Softmax): the DQ, the Q and the integer type, or why the unit does not fuse
  // (Match{} when the node is not in such a unit at all).
  struct UnaryUnit {
    Node* dq = nullptr;
    Node* q = nullptr;
    DType type = DType::Undefined;
  };
  Match unary_unit(Node& n, UnaryUnit& u) {
    std::vector<Node*> dq = dq_inputs(n);
    std::string reason;
    Node* q = single_q_output(n, &reason);
    if ((dq.empty() || !dq[0]) && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    if (!q) return {true, "its output is not quantized by a QuantizeLinear"};
    Match m{true, ""};
    if (dq.empty() || !(m.reason = check_dq_activation(dq[0], "the input")).empty())
      return dq.empty() ? Match{true, "no input"} : m;
    if (!(m.reason = check_q(q)).empty()) return m;
    if (effective_dq_type(fg_, *dq[0]) != effective_q_type(fg_, *q)) return {true, "input and output types differ"};
    const DType actual = dq_input_type(fg_, *dq[0]);
    if (q_output_type(fg_, *q) != actual) return {true, "mixed int8/uint8 tensors"};
    if (!is_quant8(actual)) return {true, "the input is not 8-bit"};
    u = {dq[0], q, actual};
    return {true, ""};
  }

  // Replaces the unit by the com.microsoft operator `op` (X, x_scale, x_zero_point, y_scale,
  // y_zero_point) with the given attributes.
  Match fuse_unary_unit(int ni, const UnaryUnit& u, const std::string& op, Attributes attrs) {
    Node& n = node(ni);
    Node f;
    f.name = n.name;
    f.op_type = op;
    f.domain = "com.microsoft";
    f.opset = 1;
    f.attrs = std::move(attrs);
    f.inputs = {u.dq->inputs[0], u.dq->inputs[1], zp_or_zero(*u.dq, u.type, n.name + ".x"), u.q->inputs[1],
                zp_or_zero(*u.q, u.type, n.name + ".y")};
    record(op, ni, {u.dq, &n, u.q}, u.q);
    replace(ni, std::move(f), u.q);
    return {true, ""};
  }

  Match fuse_avg_pool(int ni) {
    Node& pn = node(ni);
    UnaryUnit u;
    if (Match m = unary_unit(pn, u); !m.unit || !m.reason.empty()) return m;
    Attributes attrs = pn.attrs;
    attrs.set("channels_last", int64_t{0});
    return fuse_unary_unit(ni, u, pn.op_type == "GlobalAveragePool" ? "QLinearGlobalAveragePool" : "QLinearAveragePool",
                           std::move(attrs));
  }

  // DQ → Softmax → Q: ONNX Runtime's QLinearSoftmax (a table of exponentials in the input's
  // levels; not the float unit's arithmetic, see ops/qlinear_elementwise.cc), under the same
  // conditions as the pooling units.
  Match fuse_softmax(int ni) {
    Node& sn = node(ni);
    UnaryUnit u;
    if (Match m = unary_unit(sn, u); !m.unit || !m.reason.empty()) return m;
    Attributes attrs;
    if (sn.attrs.has("axis")) attrs.set("axis", sn.attrs.get_int("axis", -1));
    attrs.set("opset", int64_t{sn.opset});
    return fuse_unary_unit(ni, u, "QLinearSoftmax", std::move(attrs));
  }

  // MaxPool and data movement between a DQ and a Q with the same parameters run on the integers.
  Match fuse_drop_qdq(int ni) {
    Node& n = node(ni);
    std::vector<Node*> dq = dq_inputs(n);
    std::string reason;
    Node* q = single_q_output(n, &reason);
    if ((dq.empty() || !dq[0]) && !q && reason.empty()) return {};
    if (!reason.empty()) return {true, reason};
    if (!q) return {true, "its output is not quantized by a QuantizeLinear"};
    if (dq.empty() || !dq[0]) return {true, "its data input is not produced by a DequantizeLinear"};
    for (size_t k = 1; k < dq.size(); ++k)
      if (dq[k]) return {true, "a second input comes from a DequantizeLinear"};
    if (n.op_type == "MaxPool" && n.opset < 12) return {true, "MaxPool on 8-bit integers needs opset 12"};
    if (!same_scalar_params(fg_, *dq[0], *q) || fg_.input(*dq[0], 2) < 0 || fg_.input(*q, 2) < 0)
      return {true, "the DequantizeLinear and QuantizeLinear do not have the same constant scalar scale and zero point"};
    if (qparams(fg_, *q).s() <= 0) return {true, "the scale is not positive"};
    if (effective_dq_type(fg_, *dq[0]) != effective_q_type(fg_, *q)) return {true, "input and output types differ"};
    Node f = n;
    f.inputs[0] = dq[0]->inputs[0];
    record(n.op_type, ni, {dq[0], &n, q}, q);
    replace(ni, std::move(f), q);
    return {true, ""};
  }

  // DQ → LeakyRelu / Sigmoid → Q: ONNX Runtime's QLinearLeakyRelu / QLinearSigmoid, a table of
  // the unit's own float computation (DequantizeLinear, ONNX Runtime's float function,
  // QuantizeLinear: ops/qlinear_elementwise.cc), so the same integers as the float unit; under
  // the same conditions as the pooling units. A unit left out here may still become a table
  // (fuse_lookup_tables).
  Match fuse_lookup_unary(int ni) {
    Node& n = node(ni);
    UnaryUnit u;
    if (Match m = unary_unit(n, u); !m.unit || !m.reason.empty()) return m;
    Attributes attrs;
    if (n.op_type == "LeakyRelu") attrs.set("alpha", n.attrs.get_float("alpha", 0.01f));
    return fuse_unary_unit(ni, u, "QLinear" + n.op_type, std::move(attrs));
  }

  // ReluQuantFusion / ClipQuantFusion: a Relu or Clip whose only consumer is a Q that saturates
  // at the same place is redundant.
  // A Cast to the type its input already has copies the tensor and nothing else. PyTorch's
  // exporter writes Q(uint8) -> Cast(to uint8) -> DQ before every residual Add; ONNX Runtime's
  // level-1 CastElimination drops such casts before its QDQ selectors run, so the DQ is fused
  // with the Q's output directly. The input type is known here when it is a constant, a graph
  // input with a declared type, or the output of a QuantizeLinear.
  void remove_noop_casts() {
    Graph& g = fg_.g();
    bool changed = false;
    for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
      Node& n = g.nodes[ni];
      if (fg_.dead(static_cast<int>(ni)) || n.domain != "ai.onnx" || n.op_type != "Cast") continue;
      if (n.inputs.size() != 1 || n.inputs[0] < 0 || n.outputs.size() != 1 || n.outputs[0] < 0) continue;
      const int in = n.inputs[0], out = n.outputs[0];
      if (fg_.graph_output(out) || !n.attrs.has("to")) continue;
      DType t = DType::Undefined;
      if (const Tensor* c = fg_.cst(in)) t = c->dtype();
      else if (Node* p = fg_.producer(in); is_q(p)) t = q_output_type(fg_, *p);
      else if (g.values[static_cast<size_t>(in)].producer < 0) t = g.values[static_cast<size_t>(in)].dtype;
      if (t == DType::Undefined || static_cast<int64_t>(t) != n.attrs.get_int("to", -1)) continue;
      for (int ci : fg_.consumers(out))  // consumers of a Cast output stay current here
        for (int& v : g.nodes[static_cast<size_t>(ci)].inputs)
          if (v == out) v = in;
      fg_.kill(static_cast<int>(ni));
      changed = true;
    }
    if (changed) fg_.refresh();
  }

  void remove_activations_before_q() {
    for (size_t ni = 0; ni < fg_.g().nodes.size(); ++ni) {
      Node& n = fg_.g().nodes[ni];
      if (fg_.dead(static_cast<int>(ni)) || n.domain != "ai.onnx" || (n.op_type != "Relu" && n.op_type != "Clip"))
        continue;
      if (n.inputs.empty() || n.inputs[0] < 0 || n.outputs.size() != 1) continue;
      const int out = n.outputs[0];
      if (fg_.graph_output(out) || fg_.consumers(out).size() != 1) continue;
      Node& q = fg_.g().nodes[fg_.consumers(out)[0]];
      if (!is_q(&q)) continue;
      QParams qp = qparams(fg_, q);
      if (!qp.scalar()) continue;
      const DType t = q_output_type(fg_, q);
      if (!is_quant8(t)) continue;
      const int32_t lo = t == DType::Int8 ? -128 : 0, hi = t == DType::Int8 ? 127 : 255;
      bool redundant = false;
      if (n.op_type == "Relu") {
        redundant = qp.z() == lo;
      } else {
        float mn = -INFINITY, mx = INFINITY;
        bool known = true;
        if (n.opset < 11) {
          mn = n.attrs.get_float("min", -INFINITY);
          mx = n.attrs.get_float("max", INFINITY);
        } else {
          for (size_t k = 1; k < 3 && k < n.inputs.size(); ++k) {
            if (n.inputs[k] < 0) continue;
            const Tensor* c = fg_.cst(n.inputs[k]);
            if (!c || c->numel() != 1 || c->dtype() != DType::Float32) {
              known = false;
              continue;
            }
            (k == 1 ? mn : mx) = c->values<float>()[0];
          }
        }
        const float s = qp.s();
        redundant = known && mn <= s * static_cast<float>(lo - qp.z()) + FLT_EPSILON &&
                    mx >= s * static_cast<float>(hi - qp.z()) - FLT_EPSILON;
      }
      if (!redundant) continue;
      q.inputs[0] = n.inputs[0];
      relu_folded_[&q] = n.op_type;
      fg_.kill(static_cast<int>(ni));
      fg_.refresh();
    }
  }

  // A float Pad of zeros on the spatial dims only, read by nothing but an AveragePool without
  // pads of its own, is that pool with the pads and count_include_pad = 1 (what torch exports for
  // avg_pool2d(padding=p), as in Inception v3): the zeros add nothing to a window's sum (x + 0 is
  // x exactly, and the sum starts at +0), and the taps inside the padded extent are the taps of
  // the padded tensor, so every output is the same float; the pool then reads its (NHWC) input
  // directly, without a padded copy. Not a QDQ fusion (ONNX Runtime's PadFusion leaves average
  // pools alone; the unit around it stays float either way); done here, after the QDQ units are
  // settled, so that DequantizeLinear → AveragePool → QuantizeLinear is not fused afterwards.
  void fuse_pads_into_average_pools() {
    Graph& g = fg_.g();
    for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
      Node& pool = g.nodes[ni];
      if (fg_.dead(static_cast<int>(ni)) || pool.domain != "ai.onnx" || pool.op_type != "AveragePool" ||
          pool.inputs.empty() || pool.inputs[0] < 0 || !pool.attrs.has("kernel_shape"))
        continue;
      const int mid = pool.inputs[0];
      Node* pad = fg_.producer(mid);
      if (!pad || pad->domain != "ai.onnx" || pad->op_type != "Pad" || pad->inputs.empty() || pad->inputs[0] < 0 ||
          fg_.graph_output(mid) || fg_.consumers(mid).size() != 1 || pad->attrs.get_string("mode", "constant") != "constant")
        continue;
      // Only on a float input: integer zeros are not the zero point.
      const Node* src = fg_.producer(pad->inputs[0]);
      if (!is_dq(src) && g.values[static_cast<size_t>(pad->inputs[0])].dtype != DType::Float32) continue;
      std::vector<int64_t> pads;
      float value = 0;
      if (pad->opset < 11) {
        pads = pad->attrs.get_ints("pads");
        value = pad->attrs.get_float("value", 0.0f);
      } else {
        if (pad->inputs.size() > 3) continue;  // axes (opset 18)
        const Tensor* p = pad->inputs.size() > 1 ? fg_.cst(pad->inputs[1]) : nullptr;
        if (!p || p->dtype() != DType::Int64) continue;
        pads.assign(p->values<int64_t>().begin(), p->values<int64_t>().end());
        if (pad->inputs.size() > 2 && pad->inputs[2] >= 0) {
          const Tensor* v = fg_.cst(pad->inputs[2]);
          if (!v || v->dtype() != DType::Float32 || v->numel() != 1) continue;
          value = v->values<float>()[0];
        }
      }
      const std::vector<int64_t> kernel = pool.attrs.get_ints("kernel_shape");
      const size_t r = kernel.size();
      if (value != 0.0f || pads.size() != 2 * (r + 2) || pads[0] || pads[1] || pads[r + 2] || pads[r + 3]) continue;
      if (pool.attrs.get_string("auto_pad", "NOTSET") != "NOTSET") continue;
      const std::vector<int64_t> own = pool.attrs.get_ints("pads");
      if (std::any_of(own.begin(), own.end(), [](int64_t v) { return v != 0; })) continue;
      std::vector<int64_t> merged(2 * r);
      bool ok = true;
      for (size_t i = 0; i < r; ++i) {
        merged[i] = pads[i + 2];
        merged[i + r] = pads[i + r + 4];
        // Pads must stay smaller than the kernel (ONNX Runtime's rule, which quint's pools keep).
        ok = ok && merged[i] >= 0 && merged[i + r] >= 0 && merged[i] < kernel[i] && merged[i + r] < kernel[i];
      }
      if (!ok) continue;
      pool.inputs[0] = pad->inputs[0];
      pool.attrs.set("pads", merged);
      pool.attrs.set("count_include_pad", int64_t{1});
      report_.fused.push_back("AveragePool '" + pool.label() + "' <- Pad '" + pad->label() +
                              "' (its zeros as the pool's padding, counted)");
      fg_.kill(g.values[static_cast<size_t>(mid)].producer);
      fg_.refresh();
    }
  }

  // QDQFinalCleanup: DQ → Q with identical constant scalar parameters is the identity.
  void remove_dq_q_pairs() {
    for (size_t ni = 0; ni < fg_.g().nodes.size(); ++ni) {
      Node& q = fg_.g().nodes[ni];
      if (fg_.dead(static_cast<int>(ni)) || !is_q(&q) || q.inputs.empty()) continue;
      Node* dq = fg_.producer(q.inputs[0]);
      if (!is_dq(dq) || dq->outputs.empty()) continue;
      const int mid = dq->outputs[0];
      if (fg_.consumers(mid).size() != 1 || fg_.graph_output(mid)) continue;
      if (!same_scalar_params(fg_, *dq, q)) continue;
      if (dq_input_type(fg_, *dq) != q_output_type(fg_, q)) continue;
      Node id;
      id.name = q.name;
      id.op_type = "Identity";
      id.domain = "ai.onnx";
      id.opset = q.opset;
      id.inputs = {dq->inputs[0]};
      id.outputs = q.outputs;
      report_.fused.push_back("Identity '" + q.label() + "' <- DequantizeLinear, QuantizeLinear with equal parameters -> '" +
                              fg_.g().values[q.outputs[0]].name + "'");
      q = std::move(id);
      fg_.refresh();
    }
  }

  // A per-tensor DequantizeLinear of an 8-bit tensor, then float element-wise operators reading
  // only its output, each other and constant scalars (hard-swish, SiLU, GELU's pieces, ...),
  // then a per-tensor QuantizeLinear: every output integer is a function of one input byte. The
  // chain becomes quint.TableLookup holding what the chain's own nodes compute, folded by quint's
  // kernels on a constant tensor of all 256 byte values (the kernels are element-wise: an
  // element's bits do not depend on where it sits), so the integers are the same; one table read
  // per element instead of several float passes. After the QDQ units: none of these is one.
  void fuse_lookup_tables() {
    static const std::set<std::string> table_ops = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish",
                                                    "Tanh", "Exp", "Erf", "Neg", "Abs", "Sqrt", "Clip", "Add",
                                                    "Sub", "Mul", "Div", "Min", "Max", "Identity"};
    Graph& g = fg_.g();
    auto table_op = [&](const Node& n) { return n.domain == "ai.onnx" && table_ops.count(n.op_type) != 0; };
    // A constant scalar (rank 0, or one element of rank 1): it broadcasts without changing a shape.
    auto scalar_constant = [&](int v) {
      const Tensor* c = fg_.cst(v);
      return c && c->numel() == 1 && c->rank() <= 1;
    };
    auto producer_index = [&](int v) { return fg_.producer(v) ? g.values[static_cast<size_t>(v)].producer : -1; };
    for (size_t qi = 0; qi < g.nodes.size(); ++qi) {
      const Node& q = g.nodes[qi];
      if (fg_.dead(static_cast<int>(qi)) || !is_q(&q) || !qparams(fg_, q).scalar() || !is_quant8(q_output_type(fg_, q)))
        continue;
      const int root = producer_index(q.inputs[0]);
      if (root < 0 || !table_op(g.nodes[static_cast<size_t>(root)])) continue;
      // The chain back from the Q: table operators reading constant scalars, other members, or
      // the output of one per-tensor DequantizeLinear of an 8-bit tensor.
      std::set<int> members;
      int dq = -1;
      bool ok = true;
      std::vector<int> todo = {root};
      while (ok && !todo.empty()) {
        const int ni = todo.back();
        todo.pop_back();
        if (members.count(ni)) continue;
        const Node& n = g.nodes[static_cast<size_t>(ni)];
        if (!table_op(n) || members.size() >= 16 || n.outputs.size() != 1) {
          ok = false;
          break;
        }
        members.insert(ni);
        for (int v : n.inputs) {
          if (v < 0 || scalar_constant(v)) continue;
          const int p = producer_index(v);
          const Node* pn = p >= 0 ? &g.nodes[static_cast<size_t>(p)] : nullptr;
          if (!pn) {
            ok = false;
          } else if (is_dq(pn)) {
            ok = (dq < 0 || dq == p) && qparams(fg_, *pn).scalar() && is_quant8(dq_input_type(fg_, *pn));
            dq = p;
          } else {
            todo.push_back(p);
          }
        }
      }
      if (!ok || dq < 0) continue;
      // Nothing else may read the chain's values (the DequantizeLinear's output may be read
      // elsewhere: it then stays for those readers).
      for (int ni : members) {
        const int out = g.nodes[static_cast<size_t>(ni)].outputs[0];
        if (out < 0 || fg_.graph_output(out)) ok = false;
        for (int c : fg_.consumers(out))
          if (!members.count(c) && c != static_cast<int>(qi)) ok = false;
      }
      if (!ok) continue;
      const Node& d = g.nodes[static_cast<size_t>(dq)];
      // The table: the same nodes folded on a constant input holding every byte value.
      Graph t;
      t.opsets = g.opsets;
      auto copy_value = [&](int v) {
        if (v < 0) return -1;
        const std::string& name = g.values[static_cast<size_t>(v)].name;
        int nv = t.find(name);
        if (nv >= 0) return nv;
        nv = t.add_value(name);
        t.values[static_cast<size_t>(nv)].initializer = g.values[static_cast<size_t>(v)].initializer;
        return nv;
      };
      Tensor bytes(dq_input_type(fg_, d), {256});
      for (int i = 0; i < 256; ++i) static_cast<uint8_t*>(bytes.raw())[i] = static_cast<uint8_t>(i);
      const int x = t.add_value("(every byte value)");
      t.values[static_cast<size_t>(x)].initializer = bytes;
      std::vector<int> order(members.begin(), members.end());
      order.insert(order.begin(), dq);
      order.push_back(static_cast<int>(qi));
      for (int ni : order) {
        Node n = g.nodes[static_cast<size_t>(ni)];
        for (size_t k = 0; k < n.inputs.size(); ++k) n.inputs[k] = ni == dq && k == 0 ? x : copy_value(n.inputs[k]);
        for (int& v : n.outputs) v = copy_value(v);
        t.nodes.push_back(std::move(n));
      }
      try {
        fold_constants(t, options_, false);
      } catch (const Error&) {
        continue;  // the chain fails on some byte value: leave it to run (and report) as it is
      }
      const std::optional<Tensor>& table = t.values[static_cast<size_t>(t.find(g.values[q.outputs[0]].name))].initializer;
      if (!table || table->numel() != 256 || !is_quant8(table->dtype())) continue;
      // The Q becomes the lookup (same name and output), the chain's nodes go.
      std::string names = "DequantizeLinear";
      for (int ni : members) names += ", " + g.nodes[static_cast<size_t>(ni)].op_type;
      Node lookup;
      lookup.name = q.name;
      lookup.op_type = "TableLookup";
      lookup.domain = "quint";
      lookup.opset = 1;
      lookup.inputs = {d.inputs[0], fg_.add_constant(q.label() + " (table)", *table), q.inputs[1], fg_.input(q, 2)};
      lookup.outputs = q.outputs;
      report_.fused.push_back("TableLookup '" + q.label() + "' <- " + names +
                              ", QuantizeLinear (the chain's integers for all 256 inputs) -> '" +
                              g.values[static_cast<size_t>(q.outputs[0])].name + "'");
      g.nodes[qi] = std::move(lookup);
      g.opsets.emplace("quint", 1);
      for (int ni : members) fg_.kill(ni);
      // A member reported as a unit left in float is in the table now.
      for (size_t k = 0; k < not_fused_node_.size();) {
        if (members.count(not_fused_node_[k]) == 0) {
          ++k;
          continue;
        }
        report_.not_fused.erase(report_.not_fused.begin() + static_cast<std::ptrdiff_t>(k));
        not_fused_node_.erase(not_fused_node_.begin() + static_cast<std::ptrdiff_t>(k));
      }
      fg_.refresh();
    }
  }

  FusionGraph fg_;
  const ops::KernelOptions& options_;
  FusionReport report_;
  std::vector<int> not_fused_node_;  // the node of each report_.not_fused line
  std::map<const Node*, std::string> relu_folded_;
};

}  // namespace

FusionReport fuse_qdq(Graph& g, const ops::KernelOptions& options) { return QdqFuser(g, options).run(); }

}  // namespace quint::runtime
