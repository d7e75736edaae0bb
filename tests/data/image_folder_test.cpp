#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <filesystem>

#include "data/error_of.h"
#include "privaudit/data/loaders.h"
#include "privaudit/data/spec.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

uint8_t folder_pixel(int seed, int y, int x, int c) {
  return static_cast<uint8_t>(seed * 13 + y * 11 + x * 5 + c * 70);
}

// Writes a PNG of `channels` channels whose values are folder_pixel(seed, ...), and returns its
// path.
std::string write_png(const fs::path& path, int seed, int width, int height, int channels) {
  fs::create_directories(path.parent_path());
  std::vector<uint8_t> data;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) data.push_back(folder_pixel(seed, y, x, c));
  EXPECT_NE(stbi_write_png(path.c_str(), width, height, channels, data.data(), width * channels),
            0);
  return path.string();
}

std::string big_endian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

// The first 33 bytes of a greyscale PNG of the given size: signature and IHDR chunk, with a valid
// CRC. No pixel data follows; a loader that trusts the header would allocate width x height.
std::string png_header(uint32_t width, uint32_t height) {
  const std::string ihdr = "IHDR" + big_endian(width) + big_endian(height) +
                           std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, no interlace
  const auto crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(ihdr.data()),
                         static_cast<uInt>(ihdr.size()));
  return std::string("\x89PNG\r\n\x1a\n", 8) + big_endian(13) + ihdr +
         big_endian(static_cast<uint32_t>(crc));
}

void expect_image_exact(const torch::Tensor& image, int seed, int channels) {
  ASSERT_EQ(image.size(0), channels);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < image.size(1); ++y)
      for (int x = 0; x < image.size(2); ++x)
        ASSERT_EQ(image[c][y][x].item<float>(), folder_pixel(seed, y, x, c) / 255.0f);
}

TEST(ImageFolder, SplitsEverySeventhImageOfEachClassToTest) {
  TempDir dir;
  // 8 cats (seeds 0..7) and 3 dogs (seeds 100..102); file names sort in seed order.
  for (int i = 0; i < 8; ++i)
    write_png(dir.path() / "cat" / ("c" + std::to_string(i) + ".png"), i, 5, 4, 1);
  for (int i = 0; i < 3; ++i)
    write_png(dir.path() / "dog" / ("d" + std::to_string(i) + ".png"), 100 + i, 5, 4, 1);
  write_bytes(dir.file("dog/notes.txt"), "ignored");
  const auto splits = load_image_folder(dir.path().string());
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(splits.train.images.sizes(), torch::IntArrayRef({8, 1, 4, 5}));
  ASSERT_EQ(splits.test.size(), 3);  // cat 0, cat 7, dog 0
  EXPECT_TRUE(splits.test.labels.equal(torch::tensor({0, 0, 1}, torch::kLong)));
  expect_image_exact(splits.test.images[0], 0, 1);
  expect_image_exact(splits.test.images[1], 7, 1);
  expect_image_exact(splits.test.images[2], 100, 1);
  expect_image_exact(splits.train.images[0], 1, 1);
  expect_image_exact(splits.train.images[7], 102, 1);
}

// A folder is listed class by class; as a dataset (`--data folder:DIR`) its splits come in a fixed
// shuffled order, so that any first part of a split (the attacker's half in `layers`) holds every
// class. The same images and labels, each image still with its own label.
TEST(ImageFolder, AsADatasetItsSplitsAreShuffledOnceSoEveryHalfHoldsEveryClass) {
  TempDir dir;
  for (const std::string split : {"train", "test"})
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 6; ++i)
        write_png(dir.path() / split / ("class" + std::to_string(c)) /
                      ("img" + std::to_string(i) + ".png"),
                  c * 10 + i, 4, 4, 1);
  const auto raw = load_image_folder(dir.path().string());
  ASSERT_TRUE(raw.test.labels.equal(torch::arange(3).repeat_interleave(6)));
  LoadOptions options;
  const auto splits = load_splits("folder:" + dir.path().string(), options);
  const auto again = load_splits("folder:" + dir.path().string(), options);
  EXPECT_TRUE(splits.test.images.equal(again.test.images));  // one fixed order
  for (const auto* split : {&splits.train, &splits.test}) {
    ASSERT_EQ(split->size(), 18);
    EXPECT_FALSE(split->labels.equal(torch::arange(3).repeat_interleave(6)));
    EXPECT_EQ(std::get<0>(at::_unique(split->labels.narrow(0, 0, 9))).numel(), 3);
    EXPECT_EQ(std::get<0>(at::_unique(split->labels.narrow(0, 9, 9))).numel(), 3);
    // Every image keeps its label: image seed c*10+i has pixel (0,0) = (c*10+i)*13 mod 256.
    for (int64_t k = 0; k < split->size(); ++k) {
      const int value =
          static_cast<int>(std::lround(split->images[k][0][0][0].item<float>() * 255));
      const int64_t label = split->labels[k].item<int64_t>();
      bool found = false;
      for (int i = 0; i < 6; ++i)
        found |= value == folder_pixel(static_cast<int>(label) * 10 + i, 0, 0, 0);
      EXPECT_TRUE(found) << k;
    }
  }
}

TEST(ImageFolder, LoadsTrainAndTestFoldersAsRgbWhenAnyImageIsColour) {
  TempDir dir;
  write_png(dir.path() / "train" / "a" / "1.png", 1, 3, 3, 3);
  write_png(dir.path() / "train" / "b" / "2.png", 2, 3, 3, 1);
  write_png(dir.path() / "test" / "a" / "3.png", 3, 3, 3, 3);
  write_png(dir.path() / "test" / "b" / "4.png", 4, 3, 3, 4);
  const auto splits = load_image_folder(dir.path().string());
  ASSERT_EQ(splits.train.images.sizes(), torch::IntArrayRef({2, 3, 3, 3}));
  ASSERT_EQ(splits.test.images.sizes(), torch::IntArrayRef({2, 3, 3, 3}));
  expect_image_exact(splits.train.images[0], 1, 3);
  expect_image_exact(splits.test.images[1], 4, 3);  // alpha dropped
  // A grey image becomes three equal channels.
  EXPECT_TRUE(splits.train.images[1][0].equal(splits.train.images[1][2]));
  EXPECT_EQ(splits.train.images[1][1][2][1].item<float>(), folder_pixel(2, 2, 1, 0) / 255.0f);
}

TEST(ImageFolder, RejectsImageOfDifferentSize) {
  TempDir dir;
  write_png(dir.path() / "a" / "1.png", 1, 28, 28, 1);
  const auto wrong = write_png(dir.path() / "b" / "2.png", 2, 32, 30, 1);
  EXPECT_EQ(error_of([&] { load_image_folder(dir.path().string()); }),
            wrong + ": is 32x30, expected 28x28 (the size of " + dir.file("a/1.png") +
                "): resize your images");
}

TEST(ImageFolder, RejectsEmptyClassFolder) {
  TempDir dir;
  write_png(dir.path() / "a" / "1.png", 1, 4, 4, 1);
  fs::create_directories(dir.path() / "b");
  write_bytes(dir.file("b/readme.txt"), "no images here");
  EXPECT_EQ(error_of([&] { load_image_folder(dir.path().string()); }),
            dir.file("b") + ": empty class folder (no PNG/JPEG/BMP images)");
}

TEST(ImageFolder, RejectsFolderWithoutClassFolders) {
  TempDir dir;
  write_png(dir.path() / "1.png", 1, 4, 4, 1);
  EXPECT_EQ(
      error_of([&] { load_image_folder(dir.path().string()); }),
      dir.path().string() + ": no class folders (expected one sub-folder of images per class)");
}

TEST(ImageFolder, RejectsUndecodableImage) {
  TempDir dir;
  write_png(dir.path() / "a" / "1.png", 1, 4, 4, 1);
  write_bytes(dir.file("a/2.png"), "not a png at all");
  const auto message = error_of([&] { load_image_folder(dir.path().string()); });
  EXPECT_EQ(message.rfind(dir.file("a/2.png") + ": cannot decode image (", 0), 0u) << message;
}

TEST(ImageFolder, RefusesImageDeclaringMoreThan8192PixelsASideBeforeDecodingIt) {
  TempDir dir;
  fs::create_directories(dir.path() / "a");
  write_bytes(dir.file("a/bomb.png"), png_header(20000, 20000));
  write_png(dir.path() / "b" / "1.png", 1, 4, 4, 1);
  EXPECT_EQ(error_of([&] { load_image_folder(dir.path().string()); }),
            dir.file("a/bomb.png") +
                ": declares an image of 20000x20000 pixels, more than privaudit decodes (at "
                "most 8192 a side and 64 million in all)");
}

TEST(ImageFolder, RefusesImageDeclaringMoreThan64MillionPixelsInAll) {
  TempDir dir;
  fs::create_directories(dir.path() / "a");
  write_bytes(dir.file("a/bomb.png"), png_header(8000, 8100));  // 64.8 million
  write_png(dir.path() / "b" / "1.png", 1, 4, 4, 1);
  EXPECT_EQ(error_of([&] { load_image_folder(dir.path().string()); }),
            dir.file("a/bomb.png") +
                ": declares an image of 8000x8100 pixels, more than privaudit decodes (at "
                "most 8192 a side and 64 million in all)");
}

TEST(ImageFolder, ChecksTheHeaderOfAnImageOfAllowedSizeAndThenItsPixels) {
  TempDir dir;
  fs::create_directories(dir.path() / "a");
  // 8000 x 8000 is allowed, so the decoder runs and finds the pixel data missing.
  write_bytes(dir.file("a/1.png"), png_header(8000, 8000));
  write_bytes(dir.file("a/2.png"), png_header(8000, 8000));
  const auto message = error_of([&] { load_image_folder(dir.path().string()); });
  EXPECT_EQ(message.rfind(dir.file("a/2.png") + ": cannot decode image (", 0), 0u) << message;
}

TEST(ImageFolder, RejectsMissingFolder) {
  EXPECT_EQ(error_of([] { load_image_folder("/nonexistent/images"); }),
            "/nonexistent/images: image folder not found");
}

}  // namespace
}  // namespace privaudit::data
