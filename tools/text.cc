#include "text.h"

#include <cstdint>
#include <vector>

namespace quint::tools {

namespace {

// One decoded code point and the bytes it took; an invalid byte decodes as itself (len 1,
// valid = false) so that broken text still gets a width.
struct CodePoint {
  uint32_t cp;
  size_t len;
  bool valid;
};

CodePoint decode(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 1) return {b, 1, true};
  if (len == 0 || i + len > s.size()) return {b, 1, false};
  uint32_t cp = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) return {b, 1, false};
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, len, true};
}

bool in(uint32_t cp, uint32_t lo, uint32_t hi) {
  return cp >= lo && cp <= hi;
}

int columns(uint32_t cp) {
  // Combining marks and zero-width characters (Unicode categories Mn, Me, Cf in these blocks).
  if (in(cp, 0x0300, 0x036F) || in(cp, 0x0483, 0x0489) || in(cp, 0x0591, 0x05BD) || in(cp, 0x1AB0, 0x1AFF) ||
      in(cp, 0x1DC0, 0x1DFF) || in(cp, 0x200B, 0x200F) || in(cp, 0x202A, 0x202E) || in(cp, 0x2060, 0x2064) ||
      in(cp, 0x20D0, 0x20FF) || in(cp, 0xFE00, 0xFE0F) || in(cp, 0xFE20, 0xFE2F) || cp == 0xFEFF)
    return 0;
  // East Asian Wide and Fullwidth.
  if (in(cp, 0x1100, 0x115F) || in(cp, 0x2E80, 0x303E) || in(cp, 0x3041, 0x33FF) || in(cp, 0x3400, 0x4DBF) ||
      in(cp, 0x4E00, 0x9FFF) || in(cp, 0xA000, 0xA4CF) || in(cp, 0xAC00, 0xD7A3) || in(cp, 0xF900, 0xFAFF) ||
      in(cp, 0xFE30, 0xFE4F) || in(cp, 0xFF00, 0xFF60) || in(cp, 0xFFE0, 0xFFE6) ||
      in(cp, 0x1F300, 0x1F64F) || in(cp, 0x1F900, 0x1F9FF) || in(cp, 0x20000, 0x3FFFD))
    return 2;
  return 1;
}

}  // namespace

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    const CodePoint c = decode(s, i);
    w += c.valid ? static_cast<size_t>(columns(c.cp)) : 1;
    i += c.len;
  }
  return w;
}

std::string pad_right(std::string_view s, size_t width) {
  std::string out(s);
  const size_t w = display_width(s);
  if (w < width) out.append(width - w, ' ');
  return out;
}

std::string pad_left(std::string_view s, size_t width) {
  const size_t w = display_width(s);
  return std::string(w < width ? width - w : 0, ' ') + std::string(s);
}

std::string keep_tail(std::string_view s, size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return {};
  // The longest suffix of whole code points that fits in width - 1 columns after the '…'.
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); i += decode(s, i).len) starts.push_back(i);
  size_t cut = s.size(), used = 0;
  for (size_t k = starts.size(); k-- > 0;) {
    used += display_width(s.substr(starts[k], cut - starts[k]));
    if (used > width - 1) break;
    cut = starts[k];
  }
  return "…" + std::string(s.substr(cut));
}

}  // namespace quint::tools
