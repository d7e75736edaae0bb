#include "privaudit/data/idx.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <filesystem>

#include "data/error_of.h"
#include "data/idx_bytes.h"
#include "privaudit/data/loaders.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

// An IDX image file of n images of h x w whose pixel k is (k * 7 + i) % 256 for image i.
std::string idx_images(uint32_t n, uint32_t h, uint32_t w) {
  std::string bytes = testing::idx_images_header(n, h, w);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t k = 0; k < h * w; ++k) bytes.push_back(static_cast<char>((k * 7 + i) % 256));
  }
  return bytes;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string bytes = testing::idx_labels_header(static_cast<uint32_t>(labels.size()));
  for (uint8_t label : labels) bytes.push_back(static_cast<char>(label));
  return bytes;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

void expect_pixels_exact(const torch::Tensor& images, uint32_t n, uint32_t h, uint32_t w) {
  ASSERT_EQ(images.sizes(), torch::IntArrayRef({n, 1, h, w}));
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t k = 0; k < h * w; ++k) {
      const float expected = static_cast<float>((k * 7 + i) % 256) / 255.0f;
      ASSERT_EQ(images[i][0][k / w][k % w].item<float>(), expected)
          << "image " << i << " pixel " << k;
    }
  }
}

TEST(IdxReader, ReadsGzippedPairExactly) {
  TempDir dir;
  write_gzip(dir.file("images.gz"), idx_images(5, 4, 3));
  write_gzip(dir.file("labels.gz"), idx_labels({3, 1, 4, 1, 5}));
  const auto pair = read_idx_pair(dir.file("images.gz"), dir.file("labels.gz"));
  expect_pixels_exact(pair.images, 5, 4, 3);
  EXPECT_TRUE(pair.labels.equal(torch::tensor({3, 1, 4, 1, 5}, torch::kLong)));
}

TEST(IdxReader, ReadsRawPairExactly) {
  TempDir dir;
  write_bytes(dir.file("images"), idx_images(3, 2, 5));
  write_bytes(dir.file("labels"), idx_labels({0, 2, 1}));
  const auto pair = read_idx_pair(dir.file("images"), dir.file("labels"));
  expect_pixels_exact(pair.images, 3, 2, 5);
  EXPECT_TRUE(pair.labels.equal(torch::tensor({0, 2, 1}, torch::kLong)));
}

TEST(IdxReader, RejectsTruncatedImageFile) {
  TempDir dir;
  auto bytes = idx_images(4, 3, 3);
  bytes.resize(bytes.size() - 5);
  write_bytes(dir.file("images"), bytes);
  EXPECT_EQ(error_of([&] { read_idx(dir.file("images")); }),
            dir.file("images") + ": header says 36 values but the file holds 31 (truncated)");
}

TEST(IdxReader, RejectsTrailingBytesWhenHeaderSizesDisagreeWithLength) {
  TempDir dir;
  write_bytes(dir.file("images"), idx_images(2, 2, 2) + "extra");
  EXPECT_EQ(error_of([&] { read_idx(dir.file("images")); }),
            dir.file("images") + ": header says 8 values but the file holds 13 (trailing bytes)");
}

TEST(IdxReader, RejectsTruncatedHeader) {
  const std::string bytes("\0\0\x08\x03\0\0", 6);
  EXPECT_EQ(error_of([&] { parse_idx(bytes, "x.idx"); }), "x.idx: truncated IDX header");
}

TEST(IdxReader, RejectsBadMagicNumber) {
  EXPECT_EQ(error_of([&] { parse_idx("\x1f\x8b\x08\x03", "x.idx"); }),
            "x.idx: not an IDX file (bad magic number)");
}

TEST(IdxReader, RejectsCorruptGzip) {
  TempDir dir;
  write_gzip(dir.file("images.gz"), idx_images(20, 8, 8));
  auto bytes = read_file(dir.file("images.gz"));
  bytes[bytes.size() / 2] ^= 0x5a;
  bytes[bytes.size() / 2 + 1] ^= 0x33;
  write_bytes(dir.file("images.gz"), bytes);
  const auto message = error_of([&] { read_idx(dir.file("images.gz")); });
  EXPECT_EQ(message.rfind(dir.file("images.gz") + ": corrupt or truncated gzip data", 0), 0u)
      << message;
}

TEST(IdxReader, RejectsGzipThatEndsEarly) {
  TempDir dir;
  write_gzip(dir.file("images.gz"), idx_images(20, 8, 8));
  auto bytes = read_file(dir.file("images.gz"));
  bytes.resize(bytes.size() - 12);
  write_bytes(dir.file("images.gz"), bytes);
  const auto message = error_of([&] { read_idx(dir.file("images.gz")); });
  EXPECT_NE(message.find(dir.file("images.gz") + ": "), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(IdxReader, RejectsGzipWhoseBodyIsShorterThanItsHeaderSays) {
  TempDir dir;
  auto bytes = idx_images(4, 3, 3);
  bytes.resize(bytes.size() - 5);
  write_gzip(dir.file("images.gz"), bytes);
  EXPECT_EQ(error_of([&] { read_idx(dir.file("images.gz")); }),
            dir.file("images.gz") + ": header says 36 values but the file holds 31 (truncated)");
}

// Peak resident memory of this process in KiB.
long peak_memory_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A 256 KiB gzip file whose header says 10 images of 28x28 and whose stream inflates to 256 MiB
// of zeros: refused once the 7,841st byte arrives, never inflated whole.
TEST(IdxReader, GzipBombIsRefusedAfterTheBytesItsHeaderDeclaresWithoutInflatingTheRest) {
  TempDir dir;
  const auto path = dir.file("bomb.gz");
  {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    const auto header = testing::idx_images_header(10, 28, 28);
    ASSERT_EQ(gzwrite(file, header.data(), static_cast<unsigned>(header.size())),
              static_cast<int>(header.size()));
    const std::string zeros(1 << 20, '\0');
    for (int i = 0; i < 256; ++i) {
      ASSERT_EQ(gzwrite(file, zeros.data(), static_cast<unsigned>(zeros.size())),
                static_cast<int>(zeros.size()));
    }
    ASSERT_EQ(gzclose(file), Z_OK);
  }
  ASSERT_LT(std::filesystem::file_size(path), 1u << 20);
  const long before = peak_memory_kib();
  EXPECT_EQ(error_of([&] { read_idx(path); }),
            path + ": header says 7840 values but the file holds more (trailing bytes)");
  EXPECT_LT(peak_memory_kib() - before, 64 * 1024) << "KiB more at the peak";
}

TEST(IdxReader, HeaderOfAbsurdSizesIsRefusedBeforeAnythingIsAllocated) {
  TempDir dir;
  write_gzip(dir.file("huge.gz"),
             testing::idx_images_header(0xffffffffu, 0xffffffffu, 0xffffffffu));
  EXPECT_EQ(error_of([&] { read_idx(dir.file("huge.gz")); }),
            dir.file("huge.gz") +
                ": IDX header declares 4294967295x4294967295x4294967295 values, more than the "
                "1073741824 an IDX file may hold");
  write_bytes(dir.file("big"), testing::idx_images_header(60000, 1000, 1000));
  EXPECT_EQ(error_of([&] { read_idx(dir.file("big")); }),
            dir.file("big") +
                ": IDX header declares 60000x1000x1000 values, more than the 1073741824 an IDX "
                "file may hold");
}

TEST(IdxReader, RejectsLabelCountThatDiffersFromImageCount) {
  TempDir dir;
  write_bytes(dir.file("images"), idx_images(3, 2, 2));
  write_bytes(dir.file("labels"), idx_labels({0, 1}));
  EXPECT_EQ(error_of([&] { read_idx_pair(dir.file("images"), dir.file("labels")); }),
            dir.file("labels") + ": 2 labels for 3 images in " + dir.file("images"));
}

TEST(IdxReader, RejectsMissingFile) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { read_idx(dir.file("nothing.gz")); }),
            dir.file("nothing.gz") + ": file not found");
}

TEST(IdxFiles, SplitsOnePairIntoSeventhForTest) {
  TempDir dir;
  std::vector<uint8_t> labels;
  for (int i = 0; i < 14; ++i) labels.push_back(static_cast<uint8_t>(i % 3));
  write_bytes(dir.file("images"), idx_images(14, 2, 2));
  write_bytes(dir.file("labels"), idx_labels(labels));
  const auto splits = load_idx_files({dir.file("images"), dir.file("labels")});
  EXPECT_EQ(splits.train.size(), 12);
  EXPECT_EQ(splits.test.size(), 2);
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"0", "1", "2"}));
}

}  // namespace
}  // namespace privaudit::data
