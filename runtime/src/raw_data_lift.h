// Reading a model's weights in place. Protobuf copies every TensorProto.raw_data into a fresh
// string, and on a VM every fresh 4 KiB page costs a fault of a few microseconds: parsing
// ResNet50's 25 MB took ~80 ms, most of the load. lift_raw_data walks the serialized ModelProto
// at the wire level and writes a skeleton copy whose large raw_data payloads (of initializers and
// of Constant-node tensors) are empty, remembering where each one lies in the original bytes; the
// loader parses the small skeleton and gives each tensor its bytes from the original buffer.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace quint::runtime {

struct LiftedModel {
  struct Span {
    size_t offset = 0, size = 0;  // in the original bytes
  };
  std::string skeleton;  // a ModelProto: the original with the lifted payloads emptied
  std::map<size_t, Span> initializers;                         // by GraphProto.initializer index
  std::map<std::pair<size_t, size_t>, Span> attribute_tensors; // by (node index, attribute index)
};

// Lifts every raw_data of at least `min_size` bytes. Returns nullopt when the lifted payloads
// would be less than half the bytes (the skeleton would be a second copy of most of the model),
// when the bytes are not plainly framed (truncated or malformed fields, groups), or when they
// repeat a singular field on the way to a raw_data (which protobuf would merge): the caller then
// parses the original bytes, whose meaning (and error) protobuf decides as usual.
std::optional<LiftedModel> lift_raw_data(const char* data, size_t size, size_t min_size);

}  // namespace quint::runtime
