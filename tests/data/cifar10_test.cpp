#include "privaudit/data/cifar10.h"

#include <gtest/gtest.h>

#include "data/error_of.h"
#include "privaudit/data/loaders.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

// The byte of image `seed` at channel c, row y, column x: distinct across all three.
uint8_t pixel(int seed, int c, int y, int x) {
  return static_cast<uint8_t>(seed * 31 + c * 97 + y * 5 + x * 3);
}

// A batch in the real layout: label byte, then the R, G and B planes, each row-major 32x32.
std::string cifar_batch(const std::vector<uint8_t>& labels, int first_seed) {
  std::string bytes;
  for (size_t i = 0; i < labels.size(); ++i) {
    bytes.push_back(static_cast<char>(labels[i]));
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) {
          bytes.push_back(static_cast<char>(pixel(first_seed + static_cast<int>(i), c, y, x)));
        }
      }
    }
  }
  return bytes;
}

void expect_image_exact(const torch::Tensor& image, int seed) {
  ASSERT_EQ(image.sizes(), torch::IntArrayRef({3, 32, 32}));
  const auto bytes = image.mul(255.0f).round().to(torch::kUInt8);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        ASSERT_EQ(bytes[c][y][x].item<uint8_t>(), pixel(seed, c, y, x))
            << c << "," << y << "," << x;
        ASSERT_EQ(image[c][y][x].item<float>(), pixel(seed, c, y, x) / 255.0f);
      }
    }
  }
}

// data_batch_b.bin holds two records of seeds 10b and 10b+1; test_batch.bin three of 100..102.
void write_cifar_folder(const TempDir& dir) {
  for (int b = 1; b <= 5; ++b) {
    write_bytes(dir.file("data_batch_" + std::to_string(b) + ".bin"),
                cifar_batch({static_cast<uint8_t>(b), static_cast<uint8_t>(9 - b)}, 10 * b));
  }
  write_bytes(dir.file("test_batch.bin"), cifar_batch({0, 9, 4}, 100));
}

TEST(Cifar10Reader, ParsesBatchRecordsPixelExactly) {
  const auto batch = parse_cifar10_batch(cifar_batch({7, 0, 9}, 3), "b.bin");
  ASSERT_EQ(batch.images.sizes(), torch::IntArrayRef({3, 3, 32, 32}));
  EXPECT_TRUE(batch.labels.equal(torch::tensor({7, 0, 9}, torch::kLong)));
  for (int i = 0; i < 3; ++i) expect_image_exact(batch.images[i], 3 + i);
}

TEST(Cifar10Reader, LoadsFolderOfBatchesInOrder) {
  TempDir dir;
  write_cifar_folder(dir);
  const auto splits = load_cifar10(dir.path().string());
  ASSERT_EQ(splits.train.size(), 10);
  ASSERT_EQ(splits.test.size(), 3);
  EXPECT_TRUE(
      splits.train.labels.equal(torch::tensor({1, 8, 2, 7, 3, 6, 4, 5, 5, 4}, torch::kLong)));
  EXPECT_TRUE(splits.test.labels.equal(torch::tensor({0, 9, 4}, torch::kLong)));
  expect_image_exact(splits.train.images[0], 10);
  expect_image_exact(splits.train.images[9], 51);
  expect_image_exact(splits.test.images[2], 102);
  EXPECT_EQ(splits.train.class_names.front(), "airplane");
  EXPECT_EQ(splits.train.class_names.back(), "truck");
}

TEST(Cifar10Reader, TakesClassNamesFromMetaFile) {
  TempDir dir;
  write_cifar_folder(dir);
  write_bytes(dir.file("batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
  const auto splits = load_cifar10(dir.path().string());
  EXPECT_EQ(splits.test.class_names,
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}));
}

TEST(Cifar10Reader, RejectsTruncatedBatch) {
  TempDir dir;
  write_cifar_folder(dir);
  auto bytes = cifar_batch({1, 2}, 0);
  bytes.resize(bytes.size() - 100);
  write_bytes(dir.file("data_batch_3.bin"), bytes);
  EXPECT_EQ(error_of([&] { load_cifar10(dir.path().string()); }),
            dir.file("data_batch_3.bin") +
                ": truncated: 6046 bytes is not a whole number of 3073-byte records");
}

TEST(Cifar10Reader, RejectsLabelAboveNine) {
  TempDir dir;
  write_cifar_folder(dir);
  write_bytes(dir.file("test_batch.bin"), cifar_batch({3, 10}, 0));
  EXPECT_EQ(error_of([&] { load_cifar10(dir.path().string()); }),
            dir.file("test_batch.bin") + ": record 1 has label 10, outside 0..9");
}

TEST(Cifar10Reader, RejectsMissingBatch) {
  TempDir dir;
  write_cifar_folder(dir);
  std::filesystem::remove(dir.file("data_batch_5.bin"));
  EXPECT_EQ(error_of([&] { load_cifar10(dir.path().string()); }),
            dir.file("data_batch_5.bin") + ": file not found");
}

TEST(Cifar10Reader, RejectsMissingFolder) {
  EXPECT_EQ(error_of([] { load_cifar10("/nonexistent/cifar"); }),
            "/nonexistent/cifar: CIFAR-10 folder not found");
}

}  // namespace
}  // namespace privaudit::data
