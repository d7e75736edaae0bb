#include "privaudit/data/tensor_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/error_of.h"
#include "privaudit/data/spec.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

Dataset tiny(int64_t n, int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  Dataset d;
  d.images = torch::rand({n, 1, 4, 4});
  d.labels = torch::arange(n, torch::kLong) % 3;
  d.class_names = {"a", "b", "c"};
  return d;
}

// What the Python module writes, `--data tensors:FILE` reads back bit for bit, with the subsets
// and normalisation every other spec gets.
TEST(TensorFile, RoundTripsThroughTheDataSpec) {
  TempDir dir;
  const auto path = dir.file("data.pt");
  const auto train = tiny(12, 1), test = tiny(6, 2);
  save_tensor_file(path, train, test);
  const auto splits = load_splits("tensors:" + path, {});
  EXPECT_TRUE(torch::equal(splits.train.images, train.images));
  EXPECT_TRUE(torch::equal(splits.train.labels, train.labels));
  EXPECT_TRUE(torch::equal(splits.test.images, test.images));
  EXPECT_TRUE(torch::equal(splits.test.labels, test.labels));
  EXPECT_EQ(splits.train.class_names, train.class_names);
  EXPECT_NEAR(splits.normalization.mean[0], train.images.mean().item<double>(), 1e-6);
  const auto subset = load_splits("tensors:" + path, {6, 3, 0});
  EXPECT_EQ(subset.train.size(), 6);
  EXPECT_EQ(subset.test.size(), 3);
  // Nothing but the file is left in the folder (the write is atomic).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(TensorFile, BadFilesFailInOneLineNamingTheFile) {
  TempDir dir;
  const auto text = dir.file("notes.txt");
  write_bytes(text, "not an archive");
  const auto message = error_of([&] { load_tensor_file(text); });
  EXPECT_EQ(message.rfind(text + ": not a privaudit tensors file", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(error_of([&] { load_tensor_file(dir.file("missing.pt")); }),
            dir.file("missing.pt") + ": no such file");
  // A LibTorch archive without privaudit's header entry.
  const auto other = dir.file("other.pt");
  torch::serialize::OutputArchive archive;
  archive.write("train_images", torch::rand({2, 1, 4, 4}));
  archive.save_to(other);
  EXPECT_EQ(error_of([&] { load_tensor_file(other); }),
            other + ": not a privaudit tensors file (no 'privaudit_tensors' entry)");
  // Truncated: the archive's directory is gone.
  const auto good = dir.file("good.pt");
  save_tensor_file(good, tiny(4, 1), tiny(4, 2));
  const auto size = std::filesystem::file_size(good);
  std::filesystem::resize_file(good, size / 2);
  const auto truncated = error_of([&] { load_tensor_file(good); });
  EXPECT_EQ(truncated.rfind(good + ": not a privaudit tensors file", 0), 0u) << truncated;
  // Labels outside the class names, and splits of other shapes, are refused when written.
  auto wrong = tiny(4, 1);
  wrong.labels[0] = 7;
  EXPECT_NE(error_of([&] { save_tensor_file(dir.file("x.pt"), wrong, tiny(4, 2)); }), "(no error)");
  auto wide = tiny(4, 2);
  wide.images = torch::rand({4, 1, 5, 5});
  EXPECT_EQ(error_of([&] { save_tensor_file(dir.file("y.pt"), tiny(4, 1), wide); }),
            "train and test images differ in shape");
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.pt")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("y.pt")));
}

}  // namespace
}  // namespace privaudit::data
