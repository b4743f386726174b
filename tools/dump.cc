#include "dump.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "cli.h"
#include "npy.h"

namespace quint::tools {

const DumpEntry* DumpManifest::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

DumpWriter::DumpWriter(std::string dir, std::string model, std::string arith) : dir_(std::move(dir)) {
  make_dirs(dir_);
  // A manifest from an earlier dump must not describe this one's partial files.
  std::error_code ec;
  std::filesystem::remove(dir_ + "/manifest.json", ec);
  manifest_.producer = std::string("quint ") + QUINT_VERSION;
  manifest_.model = std::move(model);
  manifest_.arith = std::move(arith);
}

void DumpWriter::write(const std::string& name, const std::string& op, const std::string& node, const Tensor& t,
                       const QuantParams& q) {
  std::string file = sanitize_name(name);
  // Two names may sanitize to the same file name; keep both.
  if (int n = used_files_[file]++; n > 0) file += "__" + std::to_string(n);
  file += ".npy";
  write_npy(t, dir_ + "/" + file);
  manifest_.tensors.push_back({name, file, op, node, t.shape(), t.dtype(), q});
}

void DumpWriter::add_input(const std::string& name, const Tensor& t) { pending_inputs_.emplace_back(name, t); }

void DumpWriter::write_pending_inputs() {
  for (const auto& [name, t] : pending_inputs_) write(name, "Input", "", t, {});
  pending_inputs_.clear();
}

void DumpWriter::on_node(const ObservedNode& node) {
  write_pending_inputs();
  for (const auto& o : node.outputs) write(o.name, node.op_type, node.name, o.value, o.quant);
}

Json manifest_to_json(const DumpManifest& m) {
  Json j = Json::object();
  j.set("format", "quint-dump/1");
  j.set("producer", m.producer);
  j.set("model", m.model);
  j.set("arith", m.arith);
  Json arr = Json::array();
  for (const auto& t : m.tensors) {
    Json e = Json::object();
    e.set("name", t.name);
    e.set("file", t.file);
    e.set("op", t.op);
    e.set("node", t.node);
    Json shape = Json::array();
    for (int64_t d : t.shape) shape.push(Json(d));
    e.set("shape", shape);
    e.set("dtype", dtype_name(t.dtype));
    if (!t.quant.present()) {
      e.set("scale", nullptr);
      e.set("zero_point", nullptr);
      e.set("axis", nullptr);
    } else if (!t.quant.per_axis()) {
      e.set("scale", Json(static_cast<double>(t.quant.scale[0])));
      e.set("zero_point", Json(t.quant.zero_point[0]));
      e.set("axis", nullptr);
    } else {
      Json s = Json::array(), z = Json::array();
      for (float v : t.quant.scale) s.push(Json(static_cast<double>(v)));
      for (int32_t v : t.quant.zero_point) z.push(Json(v));
      e.set("scale", s);
      e.set("zero_point", z);
      e.set("axis", Json(t.quant.axis));
    }
    arr.push(e);
  }
  j.set("tensors", arr);
  return j;
}

void DumpWriter::finish() {
  write_pending_inputs();
  write_file_atomic(dir_ + "/manifest.json", manifest_to_json(manifest_).dump(1) + "\n");
}

DumpManifest read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  try {
    std::ifstream f(path);
    if (!f) fail("cannot open (is '", dir, "' a quint or PyTorch dump folder?)");
    std::stringstream ss;
    ss << f.rdbuf();
    Json j = Json::parse(ss.str());
    DumpManifest m;
    const Json* list = &j;
    if (j.is_object()) {
      if (const Json* p = j.find("producer"); p && p->is_string()) m.producer = p->string();
      if (const Json* p = j.find("model"); p && p->is_string()) m.model = p->string();
      if (const Json* p = j.find("arith"); p && p->is_string()) m.arith = p->string();
      list = &j.at("tensors");
    }
    for (const Json& e : list->items()) {
      DumpEntry d;
      d.name = e.at("name").string();
      d.file = e.at("file").string();
      if (d.file.find('/') != std::string::npos || d.file.find('\\') != std::string::npos || d.file == "..")
        fail("tensor '", d.name, "' names a file outside the dump folder: '", d.file, "'");
      if (const Json* p = e.find("op"); p && p->is_string()) d.op = p->string();
      if (const Json* p = e.find("node"); p && p->is_string()) d.node = p->string();
      for (const Json& s : e.at("shape").items()) d.shape.push_back(s.integer());
      d.dtype = dtype_from_name(e.at("dtype").string());
      if (d.dtype == DType::Undefined) fail("tensor '", d.name, "' has unknown dtype '", e.at("dtype").string(), "'");
      const Json* s = e.find("scale");
      const Json* z = e.find("zero_point");
      if (s && !s->is_null()) {
        if (s->is_array()) {
          for (const Json& v : s->items()) d.quant.scale.push_back(static_cast<float>(v.number()));
        } else {
          d.quant.scale.push_back(static_cast<float>(s->number()));
        }
        if (z && !z->is_null()) {
          if (z->is_array()) {
            for (const Json& v : z->items()) d.quant.zero_point.push_back(static_cast<int32_t>(v.integer()));
          } else {
            d.quant.zero_point.push_back(static_cast<int32_t>(z->integer()));
          }
        }
        if (d.quant.zero_point.size() != d.quant.scale.size())
          fail("tensor '", d.name, "' has ", d.quant.scale.size(), " scales but ", d.quant.zero_point.size(),
               " zero points");
        if (const Json* a = e.find("axis"); a && !a->is_null()) d.quant.axis = static_cast<int>(a->integer());
      }
      m.tensors.push_back(std::move(d));
    }
    return m;
  } catch (const Error& e) {
    throw e.with_context({path});
  }
}

}  // namespace quint::tools
