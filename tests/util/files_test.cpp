#include "privaudit/util/files.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace privaudit {
namespace {

TEST(LoadJsonOrNull, NullForAMissingFileOrOneThatIsNotJson) {
  testing::TempDir dir;
  EXPECT_TRUE(load_json_or_null(dir.file("missing.json")).is_null());
  testing::write_bytes(dir.file("half.json"), "{\"stage\": ");
  EXPECT_TRUE(load_json_or_null(dir.file("half.json")).is_null());
  write_file_atomic(dir.file("done.json"), "{\"stage\": \"train\"}");
  EXPECT_EQ(load_json_or_null(dir.file("done.json")), nlohmann::json({{"stage", "train"}}));
}

}  // namespace
}  // namespace privaudit
