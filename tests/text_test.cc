// Terminal text layout (tools/text.h): tables of explain and compare line up when labels hold
// UTF-8 symbols, because they are padded by display columns rather than bytes.
#include "text.h"

#include <gtest/gtest.h>

namespace quint::test {
namespace {

using tools::display_width;
using tools::keep_tail;
using tools::pad_left;
using tools::pad_right;

TEST(Text, DisplayWidthCountsColumnsNotBytes) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("acc + bias"), 10u);
  EXPECT_EQ(display_width("x·w"), 3u);                // U+00B7, 2 bytes
  EXPECT_EQ(display_width("a → b"), 5u);              // U+2192, 3 bytes
  EXPECT_EQ(display_width("3×3 Σ (x − x_zp)"), 16u);  // ×, Σ, − (U+2212)
  EXPECT_EQ(display_width("e\xCC\x81"), 1u);          // e + combining acute accent
  EXPECT_EQ(display_width("\xE5\xAE\xBD"), 2u);       // 宽: East Asian wide
  EXPECT_EQ(display_width("\xFF\x61"), 2u);           // an invalid byte (then "a") counts as one column
  EXPECT_EQ(display_width("\xE2\x86"), 2u);           // a truncated sequence: one per byte
}

TEST(Text, PaddingUsesDisplayWidth) {
  EXPECT_EQ(pad_right("fl32(x·w)", 12), "fl32(x·w)   ");
  EXPECT_EQ(pad_right("a→b", 2), "a→b");  // never cut
  EXPECT_EQ(pad_left("±1", 4), "  ±1");
  EXPECT_EQ(display_width(pad_right("Σ (x − x_zp)·(w − w_zp)", 30)), 30u);
}

TEST(Text, KeepTailCutsWholeCodePoints) {
  EXPECT_EQ(keep_tail("layer1.0.conv1", 20), "layer1.0.conv1");
  EXPECT_EQ(keep_tail("layer1.0.conv1", 6), "…conv1");
  EXPECT_EQ(keep_tail("a·b·c·d", 4), "…c·d");
  EXPECT_EQ(display_width(keep_tail("/layer4/layer4.2/conv3/Conv_quant_output_0", 20)), 20u);
  EXPECT_EQ(keep_tail("abc", 0), "");
}

}  // namespace
}  // namespace quint::test
