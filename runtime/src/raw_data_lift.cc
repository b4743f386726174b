#include "raw_data_lift.h"

#include <cstdint>

namespace quint::runtime {

namespace {

// Field numbers in onnx.proto.
constexpr uint32_t kModelGraph = 7;       // ModelProto.graph
constexpr uint32_t kGraphNode = 1;        // GraphProto.node
constexpr uint32_t kGraphInitializer = 5; // GraphProto.initializer
constexpr uint32_t kNodeAttribute = 5;    // NodeProto.attribute
constexpr uint32_t kAttributeTensor = 5;  // AttributeProto.t
constexpr uint32_t kTensorRawData = 9;    // TensorProto.raw_data

constexpr int kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5;

struct Field {
  uint32_t number = 0;
  int wire = 0;
  const char* begin = nullptr;  // the whole field, tag included
  const char* payload = nullptr;  // kLen: the bytes after the length
  size_t length = 0;              // kLen: the payload's size
  const char* end = nullptr;
};

// A varint of at most `max_bytes` bytes.
bool read_varint(const char*& p, const char* end, uint64_t& v, int max_bytes) {
  v = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (p == end) return false;
    const uint8_t b = static_cast<uint8_t>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return true;
  }
  return false;
}

// The next field of a message spanning [p, end); false on anything protobuf might read
// differently or refuse (groups, field number 0, lengths past the end).
bool next_field(const char*& p, const char* end, Field& f) {
  f.begin = p;
  uint64_t tag;
  if (!read_varint(p, end, tag, 5) || tag > 0xffffffffu) return false;
  f.number = static_cast<uint32_t>(tag >> 3);
  f.wire = static_cast<int>(tag & 7);
  if (f.number == 0) return false;
  uint64_t v;
  switch (f.wire) {
    case kVarint:
      if (!read_varint(p, end, v, 10)) return false;
      break;
    case kFixed64:
      if (end - p < 8) return false;
      p += 8;
      break;
    case kFixed32:
      if (end - p < 4) return false;
      p += 4;
      break;
    case kLen:
      if (!read_varint(p, end, v, 5) || v > 0x7fffffffu || v > static_cast<uint64_t>(end - p)) return false;
      f.payload = p;
      f.length = static_cast<size_t>(v);
      p += v;
      break;
    default:
      return false;  // groups and invalid wire types
  }
  f.end = p;
  return true;
}

void write_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Writes the field (nothing in a counting pass, out == nullptr).
void write_message_field(std::string* out, uint32_t number, const std::string& payload) {
  if (!out) return;
  write_varint(*out, uint64_t{number} << 3 | kLen);
  write_varint(*out, payload.size());
  *out += payload;
}

void copy_field(std::string* out, const Field& f) {
  if (out) out->append(f.begin, f.end);
}

class Lifter {
 public:
  Lifter(const char* base, size_t min_size, LiftedModel& result)
      : base_(base), min_size_(min_size), result_(result) {}

  bool model(const char* p, const char* end, std::string* out) {
    bool seen_graph = false;
    Field f;
    while (p < end) {
      if (!next_field(p, end, f)) return false;
      if (f.number == kModelGraph && f.wire == kLen) {
        if (seen_graph) return false;  // protobuf would merge the two graphs
        seen_graph = true;
        std::string sub;
        if (!graph(f.payload, f.payload + f.length, out ? &sub : nullptr)) return false;
        write_message_field(out, f.number, sub);
      } else {
        copy_field(out, f);
      }
    }
    return true;
  }

 private:
  bool graph(const char* p, const char* end, std::string* out) {
    size_t node = 0, initializer = 0;
    Field f;
    while (p < end) {
      if (!next_field(p, end, f)) return false;
      if (f.number == kGraphInitializer && f.wire == kLen) {
        std::string sub;
        LiftedModel::Span span;
        if (!tensor(f.payload, f.payload + f.length, out ? &sub : nullptr, span)) return false;
        if (span.size) result_.initializers[initializer] = span;
        ++initializer;
        write_message_field(out, f.number, sub);
      } else if (f.number == kGraphNode && f.wire == kLen) {
        std::string sub;
        if (!node_proto(f.payload, f.payload + f.length, node, out ? &sub : nullptr)) return false;
        ++node;
        write_message_field(out, f.number, sub);
      } else {
        copy_field(out, f);
      }
    }
    return true;
  }

  bool node_proto(const char* p, const char* end, size_t node, std::string* out) {
    size_t attribute = 0;
    Field f;
    while (p < end) {
      if (!next_field(p, end, f)) return false;
      if (f.number == kNodeAttribute && f.wire == kLen) {
        std::string sub;
        LiftedModel::Span span;
        if (!attribute_proto(f.payload, f.payload + f.length, out ? &sub : nullptr, span)) return false;
        if (span.size) result_.attribute_tensors[{node, attribute}] = span;
        ++attribute;
        write_message_field(out, f.number, sub);
      } else {
        copy_field(out, f);
      }
    }
    return true;
  }

  bool attribute_proto(const char* p, const char* end, std::string* out, LiftedModel::Span& span) {
    bool seen_tensor = false;
    Field f;
    while (p < end) {
      if (!next_field(p, end, f)) return false;
      if (f.number == kAttributeTensor && f.wire == kLen) {
        if (seen_tensor) return false;  // protobuf would merge the two tensors
        seen_tensor = true;
        std::string sub;
        if (!tensor(f.payload, f.payload + f.length, out ? &sub : nullptr, span)) return false;
        write_message_field(out, f.number, sub);
      } else {
        copy_field(out, f);
      }
    }
    return true;
  }

  bool tensor(const char* p, const char* end, std::string* out, LiftedModel::Span& span) {
    bool seen_raw = false;
    Field f;
    while (p < end) {
      if (!next_field(p, end, f)) return false;
      if (f.number == kTensorRawData && f.wire == kLen) {
        if (seen_raw) return false;  // the last one would win: keep protobuf's reading
        seen_raw = true;
        if (f.length >= min_size_) {
          span = {static_cast<size_t>(f.payload - base_), f.length};
          write_message_field(out, f.number, std::string());  // raw_data present, empty
          continue;
        }
      }
      copy_field(out, f);
    }
    return true;
  }

  const char* base_;
  size_t min_size_;
  LiftedModel& result_;
};

}  // namespace

std::optional<LiftedModel> lift_raw_data(const char* data, size_t size, size_t min_size) {
  if (min_size == 0) min_size = 1;  // an empty payload is never worth lifting
  LiftedModel result;
  Lifter lifter(data, min_size, result);
  // A counting pass first: the skeleton is written only when it is much smaller than the model
  // (otherwise it would be a second copy of it, for nothing).
  if (!lifter.model(data, data + size, nullptr)) return std::nullopt;
  size_t lifted = 0;
  for (const auto& [k, span] : result.initializers) lifted += span.size;
  for (const auto& [k, span] : result.attribute_tensors) lifted += span.size;
  if (lifted < size / 2) return std::nullopt;
  result.initializers.clear();
  result.attribute_tensors.clear();
  if (!lifter.model(data, data + size, &result.skeleton)) return std::nullopt;
  return result;
}

}  // namespace quint::runtime
