#include "compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "npy.h"
#include "text.h"

namespace quint::tools {

LoadedDump load_dump(const std::string& dir) {
  LoadedDump d;
  d.manifest = read_manifest(dir);
  for (const DumpEntry& e : d.manifest.tensors) {
    Tensor t = read_npy(dir + "/" + e.file);
    if (t.shape() != e.shape)
      throw Error(cat("'", e.file, "' holds shape ", shape_str(t.shape()), " but the manifest says ", shape_str(e.shape)),
                  {dir + "/manifest.json"});
    d.tensors[e.name] = std::move(t);
  }
  return d;
}

namespace {

std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    idx[i] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
  return idx;
}

// Element i as a real number: scale·(q − zero_point) for quantized tensors.
struct Dequantizer {
  const Tensor& t;
  const QuantParams& q;
  int64_t inner = 1, channels = 1;
  Dequantizer(const Tensor& tensor, const QuantParams& quant) : t(tensor), q(quant) {
    if (q.per_axis() && q.axis >= 0 && static_cast<size_t>(q.axis) < t.rank()) {
      channels = t.dim(static_cast<size_t>(q.axis));
      for (size_t d = static_cast<size_t>(q.axis) + 1; d < t.rank(); ++d) inner *= t.dim(d);
    }
  }
  double operator()(int64_t i) const {
    const double v = t.as_double(i);
    if (!q.present()) return v;
    const int64_t c = q.per_axis() ? (i / inner) % channels : 0;
    return static_cast<double>(q.scale_at(c)) * (v - q.zero_point_at(c));
  }
};

bool same_quant(const QuantParams& a, const QuantParams& b) {
  return a.present() && b.present() && a.scale == b.scale && a.zero_point == b.zero_point;
}

TensorStats compare_one(const DumpEntry& ea, const Tensor& ta, const DumpEntry& eb, const Tensor& tb,
                        const CompareOptions& o) {
  TensorStats s;
  s.name = ea.name;
  s.ref_name = eb.name;
  s.op = ea.op.empty() ? eb.op : ea.op;
  s.shape = tb.shape();
  s.dtype = dtype_name(tb.dtype());
  if (ta.shape() != tb.shape()) {
    s.note = "shapes differ: " + shape_str(ta.shape()) + " vs " + shape_str(tb.shape());
    s.pass = false;
    return s;
  }
  s.count = tb.numel();
  s.integer = ta.dtype() == tb.dtype() && is_quant8(ta.dtype()) && same_quant(ea.quant, eb.quant);
  if (!s.integer && is_quant8(ta.dtype()) && is_quant8(tb.dtype()))
    s.note = "quantization parameters or types differ: compared as real values";
  const Dequantizer da(ta, ea.quant), db(tb, eb.quant);
  const int32_t lo = tb.dtype() == DType::Int8 ? -128 : 0, hi = tb.dtype() == DType::Int8 ? 127 : 255;
  const size_t channel_axis = tb.rank() >= 2 ? 1 : 0;
  int64_t inner = 1;
  for (size_t d = channel_axis + 1; d < tb.rank(); ++d) inner *= tb.dim(d);
  const int64_t channels = tb.rank() >= 2 ? tb.dim(1) : 1;
  std::vector<int64_t> per_channel(static_cast<size_t>(std::max<int64_t>(channels, 1)), 0);
  double sum_err = 0, sum_err2 = 0, sum_b2 = 0, sum_a2 = 0, sum_ab = 0, max_b = 0;
  std::vector<std::pair<double, int64_t>> worst;  // (|diff|, flat index)
  // Largest difference first; among equal ones, the first element first.
  const auto worse = [](const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  };
  for (int64_t i = 0; i < s.count; ++i) {
    const double ra = da(i), rb = db(i);
    const double err = std::fabs(ra - rb);
    sum_err += err;
    sum_err2 += (ra - rb) * (ra - rb);
    sum_a2 += ra * ra;
    sum_b2 += rb * rb;
    sum_ab += ra * rb;
    max_b = std::max(max_b, std::fabs(rb));
    s.max_abs_err = std::max(s.max_abs_err, err);
    double key = err;
    if (s.integer) {
      const int64_t qa = ta.as_int64(i), qb = tb.as_int64(i);
      const int64_t d = std::llabs(qa - qb);
      key = static_cast<double>(d);
      s.max_diff = std::max(s.max_diff, d);
      if (d == 0) ++s.exact;
      else if (d == 1) ++s.diff1;
      else if (d == 2) ++s.diff2;
      else ++s.diff_more;
      s.sat_lo_a += qa == lo;
      s.sat_hi_a += qa == hi;
      s.sat_lo_b += qb == lo;
      s.sat_hi_b += qb == hi;
      if (d) ++per_channel[static_cast<size_t>(channels > 1 ? (i / inner) % channels : 0)];
    } else {
      if (err == 0) ++s.exact;
      else ++per_channel[static_cast<size_t>(channels > 1 ? (i / inner) % channels : 0)];
    }
    if (key > 0) {
      worst.emplace_back(key, i);
      if (worst.size() > 64) {
        // The same order as the final sort, so that among equal differences the first elements
        // (lowest flat index) are kept, not the last.
        std::nth_element(worst.begin(), worst.begin() + 5, worst.end(), worse);
        worst.resize(5);
      }
    }
  }
  std::sort(worst.begin(), worst.end(), worse);
  if (worst.size() > 5) worst.resize(5);
  for (auto& [k, i] : worst) s.worst.push_back({unravel(i, tb.shape()), s.integer ? ta.as_double(i) : da(i), s.integer ? tb.as_double(i) : db(i)});
  s.mean_abs_err = s.count ? sum_err / static_cast<double>(s.count) : 0;
  s.cosine = sum_a2 > 0 && sum_b2 > 0 ? sum_ab / std::sqrt(sum_a2 * sum_b2) : (sum_a2 == sum_b2 ? 1.0 : 0.0);
  s.sqnr_infinite = sum_err2 == 0;
  s.sqnr_db = s.sqnr_infinite ? 0 : 10.0 * std::log10(std::max(sum_b2, 1e-300) / sum_err2);
  for (size_t c = 0; c < per_channel.size(); ++c)
    if (per_channel[c]) s.channel_mismatches.emplace_back(static_cast<int64_t>(c), per_channel[c]);
  std::sort(s.channel_mismatches.begin(), s.channel_mismatches.end(),
            [](auto& x, auto& y) { return x.second != y.second ? x.second > y.second : x.first < y.first; });
  if (s.integer) {
    s.pass = s.max_diff <= o.tolerance_lsb;
  } else if (ea.quant.present() && eb.quant.present()) {
    const double step = std::max(ea.quant.scale_at(0), eb.quant.scale_at(0));
    s.pass = s.max_abs_err <= step * (static_cast<double>(o.tolerance_lsb) + 0.5) + 1e-12;
  } else {
    s.pass = s.max_abs_err <= o.float_atol + 1e-5 * max_b;
  }
  return s;
}

}  // namespace

CompareReport compare_dumps(const LoadedDump& a, const LoadedDump& b, const std::map<std::string, std::string>& name_map,
                            const CompareOptions& opts) {
  CompareReport r;
  r.a_label = a.manifest.producer;
  r.b_label = b.manifest.producer;
  std::map<std::string, std::string> b_to_a;
  for (const auto& [an, bn] : name_map) b_to_a[bn] = an;
  std::set<std::string> matched_a;
  for (const DumpEntry& eb : b.manifest.tensors) {
    auto m = b_to_a.find(eb.name);
    const std::string an = m != b_to_a.end() ? m->second : eb.name;
    const DumpEntry* ea = a.manifest.find(an);
    if (!ea) {
      r.only_b.push_back(eb.name);
      continue;
    }
    matched_a.insert(an);
    if (ea->op == "Input" && eb.op == "Input") continue;  // the inputs are the same by construction
    TensorStats s = compare_one(*ea, a.tensors.at(an), eb, b.tensors.at(eb.name), opts);
    if (!s.pass && r.first_divergent.empty()) r.first_divergent = s.name;
    r.pass = r.pass && s.pass;
    r.tensors.push_back(std::move(s));
  }
  for (const DumpEntry& ea : a.manifest.tensors)
    if (!matched_a.count(ea.name)) r.only_a.push_back(ea.name);
  return r;
}

void analyse_mismatches(CompareReport& report, const LoadedDump& a, const LoadedDump& b, const Session& session,
                        const std::map<std::string, Tensor>& inputs, const std::map<std::string, Tensor>* replace,
                        const CompareOptions& opts) {
  (void)a;
  for (TensorStats& s : report.tensors) {
    if (!s.integer || s.exact == s.count || !session.can_explain(s.name)) continue;
    const Tensor& ta = a.tensors.at(s.name);
    const Tensor& tb = b.tensors.at(s.ref_name);
    std::vector<std::vector<int64_t>> indices;
    std::vector<int64_t> ref_values;
    for (int64_t i = 0; i < tb.numel() && indices.size() < opts.max_explained; ++i)
      if (ta.as_int64(i) != tb.as_int64(i)) {
        indices.push_back(unravel(i, tb.shape()));
        ref_values.push_back(tb.as_int64(i));
      }
    const std::vector<Explanation> ex = session.explain(inputs, s.name, indices, replace);
    for (size_t k = 0; k < ex.size(); ++k) {
      ++s.analysed;
      for (const ExplainScheme& sc : ex[k].schemes) {
        if (sc.result == ref_values[k]) ++s.reproduced_by[arith_name(sc.arith)];
        if (sc.arith == ex[k].session_arith) {
          const double frac = sc.pre_round - std::floor(sc.pre_round);
          if (std::fabs(frac - 0.5) <= opts.tie_window) ++s.on_tie;
        }
      }
    }
  }
}

namespace {

Json shape_json(const Shape& s) {
  Json j = Json::array();
  for (int64_t d : s) j.push(Json(d));
  return j;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string sqnr_text(const TensorStats& s) { return s.sqnr_infinite ? "inf" : fmt("%.1f", s.sqnr_db); }

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

}  // namespace

Json report_to_json(const CompareReport& r) {
  Json j = Json::object();
  j.set("a", r.a_label);
  j.set("b", r.b_label);
  j.set("mode", r.mode);
  j.set("pass", r.pass);
  j.set("first_divergent", r.first_divergent.empty() ? Json() : Json(r.first_divergent));
  Json arr = Json::array();
  for (const TensorStats& s : r.tensors) {
    Json t = Json::object();
    t.set("name", s.name);
    t.set("reference_name", s.ref_name);
    t.set("op", s.op);
    t.set("shape", shape_json(s.shape));
    t.set("dtype", s.dtype);
    t.set("integer", s.integer);
    if (!s.note.empty()) t.set("note", s.note);
    t.set("count", s.count);
    t.set("exact", s.exact);
    t.set("exact_pct", s.exact_pct());
    Json h = Json::object();
    h.set("0", s.exact);
    h.set("1", s.diff1);
    h.set("2", s.diff2);
    h.set(">2", s.diff_more);
    t.set("diff_lsb_histogram", h);
    t.set("max_diff_lsb", s.max_diff);
    Json sat = Json::object();
    sat.set("a_qmin", s.sat_lo_a);
    sat.set("a_qmax", s.sat_hi_a);
    sat.set("b_qmin", s.sat_lo_b);
    sat.set("b_qmax", s.sat_hi_b);
    t.set("saturated", sat);
    t.set("max_abs_error", s.max_abs_err);
    t.set("mean_abs_error", s.mean_abs_err);
    t.set("cosine", s.cosine);
    t.set("sqnr_db", s.sqnr_infinite ? Json("inf") : Json(s.sqnr_db));
    Json ch = Json::array();
    for (size_t k = 0; k < s.channel_mismatches.size() && k < 16; ++k) {
      Json c = Json::object();
      c.set("channel", s.channel_mismatches[k].first);
      c.set("mismatches", s.channel_mismatches[k].second);
      ch.push(c);
    }
    t.set("worst_channels", ch);
    Json w = Json::array();
    for (const ElementDiff& e : s.worst) {
      Json x = Json::object();
      x.set("index", shape_json(e.index));
      x.set("a", e.a);
      x.set("b", e.b);
      w.push(x);
    }
    t.set("worst_elements", w);
    if (s.analysed) {
      Json an = Json::object();
      an.set("analysed", s.analysed);
      an.set("on_rounding_tie", s.on_tie);
      Json rb = Json::object();
      for (const auto& [k, v] : s.reproduced_by) rb.set(k, v);
      an.set("reference_reproduced_by", rb);
      t.set("mismatch_analysis", an);
    }
    t.set("pass", s.pass);
    arr.push(t);
  }
  j.set("tensors", arr);
  Json oa = Json::array(), ob = Json::array();
  for (const auto& n : r.only_a) oa.push(n);
  for (const auto& n : r.only_b) ob.push(n);
  j.set("only_in_a", oa);
  j.set("only_in_b", ob);
  return j;
}

std::string report_to_csv(const CompareReport& r) {
  std::string out =
      "name,reference_name,op,shape,dtype,integer,count,exact,exact_pct,diff_1,diff_2,diff_more,max_diff_lsb,"
      "a_qmin,a_qmax,b_qmin,b_qmax,max_abs_error,mean_abs_error,cosine,sqnr_db,analysed,on_tie,pass\n";
  auto q = [](const std::string& s) {
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
  };
  for (const TensorStats& s : r.tensors) {
    out += q(s.name) + "," + q(s.ref_name) + "," + q(s.op) + "," + q(shape_str(s.shape)) + "," + s.dtype + "," +
           (s.integer ? "1" : "0") + "," + std::to_string(s.count) + "," + std::to_string(s.exact) + "," +
           fmt("%.4f", s.exact_pct()) + "," + std::to_string(s.diff1) + "," + std::to_string(s.diff2) + "," +
           std::to_string(s.diff_more) + "," + std::to_string(s.max_diff) + "," + std::to_string(s.sat_lo_a) + "," +
           std::to_string(s.sat_hi_a) + "," + std::to_string(s.sat_lo_b) + "," + std::to_string(s.sat_hi_b) + "," +
           fmt("%.9g", s.max_abs_err) + "," + fmt("%.9g", s.mean_abs_err) + "," + fmt("%.9f", s.cosine) + "," +
           sqnr_text(s) + "," + std::to_string(s.analysed) + "," + std::to_string(s.on_tie) + "," +
           (s.pass ? "1" : "0") + "\n";
  }
  return out;
}

std::string report_to_text(const CompareReport& r, bool verbose) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "A: %s\nB: %s (reference)\nmode: %s\n\n", r.a_label.c_str(), r.b_label.c_str(),
                r.mode.c_str());
  out += line;
  // Padded by display width: '±' and '…' take two bytes but one column.
  out += pad_right("tensor", 44) + " " + pad_right("op", 22) + " " + pad_left("exact%", 9) + " " + pad_left("±1", 8) +
         " " + pad_left("±2", 6) + " " + pad_left(">2", 6) + " " + pad_left("max", 5) + " " + pad_left("SQNR dB", 8) +
         " " + pad_left("cosine", 7) + "  notes\n";
  for (const TensorStats& s : r.tensors) {
    std::string notes = s.note;
    if (s.analysed) {
      notes += (notes.empty() ? "" : "; ") + std::to_string(s.on_tie) + "/" + std::to_string(s.analysed) + " on a tie";
      for (const auto& [k, v] : s.reproduced_by) notes += ", " + k + " gives B in " + std::to_string(v);
    }
    if (!s.pass) notes = "FAIL " + notes;
    std::string name = s.name == s.ref_name ? s.name : s.name + " = " + s.ref_name;
    name = pad_right(keep_tail(name, 44), 44);
    std::snprintf(line, sizeof line, "%s %-22s %9.4f %8lld %6lld %6lld %5lld %8s %7.5f  %s\n", name.c_str(),
                  s.op.substr(0, 22).c_str(), s.exact_pct(), static_cast<long long>(s.diff1),
                  static_cast<long long>(s.diff2), static_cast<long long>(s.diff_more), static_cast<long long>(s.max_diff),
                  sqnr_text(s).c_str(), s.cosine, notes.c_str());
    out += line;
    if (verbose && s.exact != s.count) {
      for (const ElementDiff& e : s.worst) {
        std::string idx;
        for (size_t i = 0; i < e.index.size(); ++i) idx += (i ? "," : "") + std::to_string(e.index[i]);
        std::snprintf(line, sizeof line, "    at [%s]: A %.9g, B %.9g\n", idx.c_str(), e.a, e.b);
        out += line;
      }
      if (!s.channel_mismatches.empty()) {
        out += "    worst channels:";
        for (size_t k = 0; k < s.channel_mismatches.size() && k < 8; ++k)
          out += " " + std::to_string(s.channel_mismatches[k].first) + " (" + std::to_string(s.channel_mismatches[k].second) + ")";
        out += "\n";
      }
    }
  }
  int64_t total = 0, exact = 0;
  for (const TensorStats& s : r.tensors)
    if (s.integer) {
      total += s.count;
      exact += s.exact;
    }
  std::snprintf(line, sizeof line, "\n%zu tensors compared; integer elements exact: %lld of %lld (%.4f%%)\n",
                r.tensors.size(), static_cast<long long>(exact), static_cast<long long>(total),
                total ? 100.0 * static_cast<double>(exact) / static_cast<double>(total) : 100.0);
  out += line;
  if (!r.only_a.empty()) out += "only in A (" + std::to_string(r.only_a.size()) + "): " + r.only_a.front() + (r.only_a.size() > 1 ? ", …" : "") + "\n";
  if (!r.only_b.empty()) out += "only in B (" + std::to_string(r.only_b.size()) + "): " + r.only_b.front() + (r.only_b.size() > 1 ? ", …" : "") + "\n";
  if (r.mode == "chained" && !r.first_divergent.empty())
    out += "first tensor beyond tolerance: " + r.first_divergent + " (later differences may only be its consequence)\n";
  out += r.pass ? "PASS: every tensor within tolerance\n" : "FAIL: some tensors are beyond tolerance\n";
  return out;
}

std::string report_to_html(const CompareReport& r, const LoadedDump& a, const LoadedDump& b,
                           const std::map<std::string, std::string>& name_map) {
  (void)name_map;
  std::string h;
  h += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>quint compare</title><style>\n"
       "body{font-family:sans-serif;margin:24px;color:#222} table{border-collapse:collapse;font-size:12px}"
       "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td.l,th.l{text-align:left}"
       "tr.fail{background:#fde2e2} .pass{color:#080;font-weight:bold} .fail{color:#c00;font-weight:bold}"
       "h2{margin-top:28px}\n</style></head><body>\n";
  h += "<h1>quint compare</h1>\n<p>A: " + html_escape(r.a_label) + "<br>B (reference): " + html_escape(r.b_label) +
       "<br>mode: " + html_escape(r.mode) + "</p>\n";
  h += std::string("<p class=\"") + (r.pass ? "pass\">PASS: every tensor within tolerance" : "fail\">FAIL: some tensors are beyond tolerance") + "</p>\n";
  if (!r.first_divergent.empty()) h += "<p>first tensor beyond tolerance: <b>" + html_escape(r.first_divergent) + "</b></p>\n";

  // Chart: exact % (bars, left axis) and SQNR (line, right axis) per layer.
  const size_t n = r.tensors.size();
  const double W = 960, H = 260, L = 50, R = 50, T = 20, B = 40;
  const double step = n ? (W - L - R) / static_cast<double>(n) : 1;
  double max_sqnr = 10;
  for (const TensorStats& s : r.tensors)
    if (!s.sqnr_infinite) max_sqnr = std::max(max_sqnr, s.sqnr_db);
  max_sqnr = std::ceil(max_sqnr / 10) * 10;
  // The exact-% axis starts at a round value below the worst layer, so that 99.98 % and 100 %
  // look different when every layer is nearly exact.
  double min_pct = 100;
  for (const TensorStats& s : r.tensors) min_pct = std::min(min_pct, s.exact_pct());
  double floor_pct = 0;
  for (double f : {99.99, 99.9, 99.0, 90.0})
    if (min_pct >= f) {
      floor_pct = f;
      break;
    }
  auto pct_y = [&](double pct) { return (H - T - B) * std::clamp((pct - floor_pct) / (100.0 - floor_pct), 0.0, 1.0); };
  h += "<h2>Per layer</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", W) + "\" height=\"" +
       fmt("%.0f", H) + "\" role=\"img\" aria-label=\"exact percent and SQNR per layer\">\n";
  h += "<rect x=\"0\" y=\"0\" width=\"" + fmt("%.0f", W) + "\" height=\"" + fmt("%.0f", H) + "\" fill=\"#fff\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double y = T + (H - T - B) * (1 - k / 4.0);
    h += "<line x1=\"" + fmt("%.1f", L) + "\" x2=\"" + fmt("%.1f", W - R) + "\" y1=\"" + fmt("%.1f", y) + "\" y2=\"" +
         fmt("%.1f", y) + "\" stroke=\"#eee\"/>";
    h += "<text x=\"" + fmt("%.1f", L - 4) + "\" y=\"" + fmt("%.1f", y + 4) + "\" font-size=\"10\" text-anchor=\"end\">" +
         fmt(floor_pct >= 99 ? "%.3f" : "%.0f", floor_pct + (100.0 - floor_pct) * k / 4.0) + "%</text>";
    h += "<text x=\"" + fmt("%.1f", W - R + 4) + "\" y=\"" + fmt("%.1f", y + 4) + "\" font-size=\"10\" fill=\"#06c\">" +
         fmt("%.0f", max_sqnr * k / 4.0) + " dB</text>\n";
  }
  std::string poly;
  for (size_t i = 0; i < n; ++i) {
    const TensorStats& s = r.tensors[i];
    const double x = L + step * static_cast<double>(i);
    const double bh = std::max(pct_y(s.exact_pct()), 1.0);
    h += "<rect x=\"" + fmt("%.2f", x + step * 0.1) + "\" y=\"" + fmt("%.2f", H - B - bh) + "\" width=\"" +
         fmt("%.2f", std::max(step * 0.8, 0.5)) + "\" height=\"" + fmt("%.2f", bh) + "\" fill=\"" +
         (s.pass ? "#7cb87c" : "#e07070") + "\"><title>" + html_escape(s.name) + ": " + fmt("%.4f", s.exact_pct()) +
         "% exact</title></rect>\n";
    const double sq = s.sqnr_infinite ? max_sqnr : std::clamp(s.sqnr_db, 0.0, max_sqnr);
    poly += fmt("%.2f", x + step / 2) + "," + fmt("%.2f", T + (H - T - B) * (1 - sq / max_sqnr)) + " ";
  }
  if (!poly.empty())
    h += "<polyline points=\"" + poly + "\" fill=\"none\" stroke=\"#06c\" stroke-width=\"1.5\"/>\n";
  h += "<text x=\"" + fmt("%.1f", L) + "\" y=\"" + fmt("%.1f", H - 12) +
       "\" font-size=\"11\">layers in execution order — bars: exact % (green: within tolerance), line: SQNR "
       "(infinite drawn at the top)</text>\n</svg>\n";

  // Heat map of where the worst integer layer differs: mismatching channels per (h, w).
  const TensorStats* worst = nullptr;
  for (const TensorStats& s : r.tensors)
    if (s.integer && s.shape.size() == 4 && s.exact < s.count && (!worst || s.exact_pct() < worst->exact_pct())) worst = &s;
  if (worst) {
    const Tensor& ta = a.tensors.at(worst->name);
    const Tensor& tb = b.tensors.at(worst->ref_name);
    const int64_t C = worst->shape[1], Hh = worst->shape[2], Ww = worst->shape[3];
    std::vector<int64_t> grid(static_cast<size_t>(Hh * Ww), 0);
    int64_t mx = 1;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < Hh * Ww; ++i) {
        const int64_t off = c * Hh * Ww + i;
        if (ta.as_int64(off) != tb.as_int64(off)) mx = std::max(mx, ++grid[static_cast<size_t>(i)]);
      }
    const double cell = std::max(2.0, std::min(12.0, 480.0 / static_cast<double>(std::max(Hh, Ww))));
    h += "<h2>Where " + html_escape(worst->name) + " differs</h2>\n<p>Mismatching channels at each spatial position of image 0 (of " +
         std::to_string(C) + " channels; darker = more).</p>\n";
    h += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", cell * static_cast<double>(Ww) + 2) +
         "\" height=\"" + fmt("%.0f", cell * static_cast<double>(Hh) + 2) + "\" role=\"img\" aria-label=\"heat map\">\n";
    h += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\" stroke=\"#999\"/>\n";
    for (int64_t y = 0; y < Hh; ++y)
      for (int64_t x = 0; x < Ww; ++x) {
        const int64_t v = grid[static_cast<size_t>(y * Ww + x)];
        if (!v) continue;
        const int shade = 230 - static_cast<int>(200.0 * static_cast<double>(v) / static_cast<double>(mx));
        h += "<rect x=\"" + fmt("%.1f", 1 + cell * static_cast<double>(x)) + "\" y=\"" + fmt("%.1f", 1 + cell * static_cast<double>(y)) +
             "\" width=\"" + fmt("%.1f", cell) + "\" height=\"" + fmt("%.1f", cell) + "\" fill=\"rgb(255," +
             std::to_string(shade) + "," + std::to_string(shade) + ")\"><title>h " + std::to_string(y) + ", w " +
             std::to_string(x) + ": " + std::to_string(v) + " channels</title></rect>\n";
      }
    h += "</svg>\n";
  }

  h += "<h2>Tensors</h2>\n<table><tr><th class=\"l\">tensor</th><th class=\"l\">op</th><th class=\"l\">shape</th>"
       "<th>exact %</th><th>±1</th><th>±2</th><th>&gt;2</th><th>max LSB</th><th>sat A lo/hi</th><th>sat B lo/hi</th>"
       "<th>max abs err</th><th>SQNR dB</th><th>cosine</th><th class=\"l\">notes</th></tr>\n";
  for (const TensorStats& s : r.tensors) {
    std::string notes = s.note;
    if (s.analysed) {
      notes += (notes.empty() ? "" : "; ") + std::to_string(s.on_tie) + " of " + std::to_string(s.analysed) +
               " mismatches on a rounding tie";
      for (const auto& [k, v] : s.reproduced_by) notes += "; " + k + " gives B in " + std::to_string(v);
    }
    h += std::string("<tr") + (s.pass ? "" : " class=\"fail\"") + "><td class=\"l\">" + html_escape(s.name) +
         (s.name != s.ref_name ? " = " + html_escape(s.ref_name) : "") + "</td><td class=\"l\">" + html_escape(s.op) +
         "</td><td class=\"l\">" + shape_str(s.shape) + "</td><td>" + fmt("%.4f", s.exact_pct()) + "</td><td>" +
         std::to_string(s.diff1) + "</td><td>" + std::to_string(s.diff2) + "</td><td>" + std::to_string(s.diff_more) +
         "</td><td>" + std::to_string(s.max_diff) + "</td><td>" + std::to_string(s.sat_lo_a) + "/" + std::to_string(s.sat_hi_a) +
         "</td><td>" + std::to_string(s.sat_lo_b) + "/" + std::to_string(s.sat_hi_b) + "</td><td>" +
         fmt("%.4g", s.max_abs_err) + "</td><td>" + sqnr_text(s) + "</td><td>" + fmt("%.6f", s.cosine) +
         "</td><td class=\"l\">" + html_escape(notes) + "</td></tr>\n";
  }
  h += "</table>\n";
  if (!r.only_a.empty() || !r.only_b.empty()) {
    h += "<h2>Tensors on one side only</h2>\n<p>only in A: ";
    for (const auto& x : r.only_a) h += html_escape(x) + " ";
    h += "</p><p>only in B: ";
    for (const auto& x : r.only_b) h += html_escape(x) + " ";
    h += "</p>\n";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace quint::tools
