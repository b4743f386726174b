// Text layout for terminal tables: widths in display columns, not bytes, so that labels with
// UTF-8 symbols ('·', '→', '×', '±', '…') line up with plain ASCII ones.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace quint::tools {

// Columns `s` takes on a terminal: one per code point, none for combining marks and zero-width
// characters, two for East Asian wide ones. A byte that is not valid UTF-8 counts as one column.
// python/quint/__init__.py's _width() mirrors this, so format_explanation() prints as the CLI does.
size_t display_width(std::string_view s);

// `s` followed by spaces up to `width` columns (as printf's "%-Ns" does for ASCII); never cut.
std::string pad_right(std::string_view s, size_t width);

// Spaces up to `width` columns, then `s` (as printf's "%Ns" does for ASCII); never cut.
std::string pad_left(std::string_view s, size_t width);

// The last `width` columns of `s`, led by '…' when anything was cut.
std::string keep_tail(std::string_view s, size_t width);

}  // namespace quint::tools
