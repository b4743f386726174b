#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "quint/error.h"

namespace quint::tools {

double Json::number() const {
  if (type_ != Type::Number) fail("JSON value is not a number");
  return num_;
}
int64_t Json::integer() const {
  double d = number();
  if (d != std::floor(d) || std::fabs(d) > 9.007199254740992e15) fail("JSON number ", d, " is not an integer");
  return static_cast<int64_t>(d);
}
bool Json::boolean() const {
  if (type_ != Type::Bool) fail("JSON value is not a boolean");
  return bool_;
}
const std::string& Json::string() const {
  if (type_ != Type::String) fail("JSON value is not a string");
  return str_;
}
const std::vector<Json>& Json::items() const {
  if (type_ != Type::Array) fail("JSON value is not an array");
  return arr_;
}
const std::vector<std::pair<std::string, Json>>& Json::members() const {
  if (type_ != Type::Object) fail("JSON value is not an object");
  return obj_;
}
const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& [k, v] : obj_)
    if (k == key) return &v;
  return nullptr;
}
const Json& Json::at(const std::string& key) const {
  const Json* j = find(key);
  if (!j) fail("JSON object has no member '", key, "'");
  return *j;
}
Json& Json::push(Json v) {
  if (type_ == Type::Null) type_ = Type::Array;
  if (type_ != Type::Array) fail("push on a JSON non-array");
  arr_.push_back(std::move(v));
  return arr_.back();
}
Json& Json::set(const std::string& key, Json v) {
  if (type_ == Type::Null) type_ = Type::Object;
  if (type_ != Type::Object) fail("set on a JSON non-object");
  for (auto& [k, old] : obj_)
    if (k == key) return old = std::move(v);
  obj_.emplace_back(key, std::move(v));
  return obj_.back().second;
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (type_) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += bool_ ? "true" : "false"; break;
    case Type::Number: {
      if (!std::isfinite(num_)) {
        out += "null";  // JSON has no NaN/inf
      } else if (num_ == std::floor(num_) && std::fabs(num_) < 1e15) {
        out += std::to_string(static_cast<int64_t>(num_));
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", num_);
        out += buf;
      }
      break;
    }
    case Type::String: out += json_escape(str_); break;
    case Type::Array: {
      out += '[';
      for (size_t i = 0; i < arr_.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        arr_[i].dump_to(out, indent, depth + 1);
      }
      if (!arr_.empty()) newline(depth);
      out += ']';
      break;
    }
    case Type::Object: {
      out += '{';
      for (size_t i = 0; i < obj_.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        out += json_escape(obj_[i].first);
        out += ": ";
        obj_[i].second.dump_to(out, indent, depth + 1);
      }
      if (!obj_.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

namespace {

struct Parser {
  const std::string& s;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void error(const char* what) { fail("invalid JSON at offset ", i, ": ", what); }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  bool eat(const char* lit) {
    size_t n = std::strlen(lit);
    if (s.compare(i, n, lit) == 0) {
      i += n;
      return true;
    }
    return false;
  }
  Json value() {
    ws();
    if (i >= s.size()) error("unexpected end");
    if (++depth > 256) error("nested too deeply");
    Json v;
    char c = s[i];
    if (c == '{') {
      ++i;
      v = Json::object();
      ws();
      if (i < s.size() && s[i] == '}') {
        ++i;
      } else {
        for (;;) {
          ws();
          if (i >= s.size() || s[i] != '"') error("expected a key");
          std::string k = str();
          ws();
          if (i >= s.size() || s[i] != ':') error("expected ':'");
          ++i;
          v.set(k, value());
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == '}') { ++i; break; }
          error("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      ++i;
      v = Json::array();
      ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
      } else {
        for (;;) {
          v.push(value());
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == ']') { ++i; break; }
          error("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      v = Json(str());
    } else if (eat("true")) {
      v = Json(true);
    } else if (eat("false")) {
      v = Json(false);
    } else if (eat("null")) {
      v = Json();
    } else if (eat("NaN")) {
      v = Json(std::nan(""));
    } else {
      size_t start = i;
      if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
      if (eat("Infinity")) {
        v = Json(s[start] == '-' ? -INFINITY : INFINITY);
      } else {
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                                s[i] == 'E' || s[i] == '-' || s[i] == '+'))
          ++i;
        if (i == start) error("unexpected character");
        std::string num = s.substr(start, i - start);
        char* end = nullptr;
        double d = std::strtod(num.c_str(), &end);
        if (end != num.c_str() + num.size()) error("malformed number");
        v = Json(d);
      }
    }
    --depth;
    return v;
  }
  std::string str() {
    ++i;  // opening quote
    std::string out;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) error("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i + 4 > s.size()) error("short \\u escape");
          for (size_t k = i; k < i + 4; ++k)
            if (!std::isxdigit(static_cast<unsigned char>(s[k]))) error("bad \\u escape");
          unsigned cp = static_cast<unsigned>(std::stoul(s.substr(i, 4), nullptr, 16));
          i += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          }
          break;
        }
        default: error("bad escape");
      }
    }
    if (i >= s.size()) error("unterminated string");
    ++i;
    return out;
  }
};

}  // namespace

Json Json::parse(const std::string& text) {
  Parser p{text};
  Json v = p.value();
  p.ws();
  if (p.i != text.size()) p.error("trailing characters");
  return v;
}

}  // namespace quint::tools
