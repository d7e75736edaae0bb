#include "privaudit/util/text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace privaudit {
namespace {

// A missing number is a plain en dash, not an HTML entity: claims and findings go into
// results.json as they are, and the report escapes them.
TEST(Text, FormatNumberWritesPlainTextForAMissingNumber) {
  EXPECT_EQ(format_number(12.345, "%.1f dB"), "12.3 dB");
  EXPECT_EQ(format_number(NAN, "%.1f"), "\xE2\x80\x93");
  EXPECT_EQ(format_number(INFINITY), "\xE2\x80\x93");
  EXPECT_EQ(format_number(NAN).find('&'), std::string::npos);
}

TEST(Text, SplitListKeepsEmptyPartsAndGivesNoneForEmptyText) {
  EXPECT_EQ(split_list("a,,b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(split_list("").empty());
  EXPECT_EQ(split_list("x y", ' '), (std::vector<std::string>{"x", "y"}));
}

}  // namespace
}  // namespace privaudit
