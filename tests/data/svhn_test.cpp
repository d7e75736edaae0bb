#include "privaudit/data/svhn.h"

#include <gtest/gtest.h>
#include <matio.h>

#include "data/error_of.h"
#include "privaudit/data/loaders.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

uint8_t svhn_pixel(size_t n, size_t row, size_t col, size_t channel) {
  return static_cast<uint8_t>(n * 41 + row * 7 + col * 3 + channel * 101);
}

struct MatVariable {
  std::string name;
  matio_classes class_type;
  matio_types data_type;
  std::vector<size_t> dims;
  const void* data;
};

// A MATLAB v5 file as SVHN ships it, written with matio itself.
void write_mat(const std::string& path, const std::vector<MatVariable>& variables,
               matio_compression compression = MAT_COMPRESSION_NONE) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  ASSERT_NE(mat, nullptr);
  for (const auto& v : variables) {
    auto dims = v.dims;
    matvar_t* var =
        Mat_VarCreate(v.name.c_str(), v.class_type, v.data_type, static_cast<int>(dims.size()),
                      dims.data(), const_cast<void*>(v.data), MAT_F_DONT_COPY_DATA);
    ASSERT_NE(var, nullptr);
    ASSERT_EQ(Mat_VarWrite(mat, var, compression), 0);
    Mat_VarFree(var);
  }
  Mat_Close(mat);
}

// X(row, col, channel, n) in MATLAB's column-major order.
std::vector<uint8_t> svhn_pixels(size_t n) {
  std::vector<uint8_t> x(32 * 32 * 3 * n);
  for (size_t i = 0; i < n; ++i)
    for (size_t ch = 0; ch < 3; ++ch)
      for (size_t col = 0; col < 32; ++col)
        for (size_t row = 0; row < 32; ++row)
          x[row + 32 * (col + 32 * (ch + 3 * i))] = svhn_pixel(i, row, col, ch);
  return x;
}

void write_svhn(const std::string& path, const std::vector<double>& labels,
                matio_compression compression = MAT_COMPRESSION_NONE) {
  const auto x = svhn_pixels(labels.size());
  write_mat(path,
            {{"X", MAT_C_UINT8, MAT_T_UINT8, {32, 32, 3, labels.size()}, x.data()},
             {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, {labels.size(), 1}, labels.data()}},
            compression);
}

void expect_pixels_exact(const torch::Tensor& images) {
  for (int64_t i = 0; i < images.size(0); ++i)
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t row = 0; row < 32; ++row)
        for (int64_t col = 0; col < 32; ++col)
          ASSERT_EQ(images[i][ch][row][col].item<float>(), svhn_pixel(i, row, col, ch) / 255.0f)
              << i << " " << ch << " " << row << " " << col;
}

TEST(SvhnReader, ReadsColumnMajorImagesAndMapsTenToZero) {
  TempDir dir;
  write_svhn(dir.file("train_32x32.mat"), {1, 10, 5, 9});
  const auto part = read_svhn_mat(dir.file("train_32x32.mat"));
  ASSERT_EQ(part.images.sizes(), torch::IntArrayRef({4, 3, 32, 32}));
  EXPECT_TRUE(part.labels.equal(torch::tensor({1, 0, 5, 9}, torch::kLong)));
  expect_pixels_exact(part.images);
}

TEST(SvhnReader, ReadsCompressedFileAndUint8Labels) {
  TempDir dir;
  const auto x = svhn_pixels(2);
  const std::vector<uint8_t> y = {10, 3};
  write_mat(dir.file("a.mat"),
            {{"X", MAT_C_UINT8, MAT_T_UINT8, {32, 32, 3, 2}, x.data()},
             {"y", MAT_C_UINT8, MAT_T_UINT8, {2, 1}, y.data()}},
            MAT_COMPRESSION_ZLIB);
  const auto part = read_svhn_mat(dir.file("a.mat"));
  EXPECT_TRUE(part.labels.equal(torch::tensor({0, 3}, torch::kLong)));
  expect_pixels_exact(part.images);
}

TEST(SvhnReader, LoadsTrainAndTestFiles) {
  TempDir dir;
  write_svhn(dir.file("train_32x32.mat"), {1, 2, 3});
  write_svhn(dir.file("test_32x32.mat"), {10, 4});
  const auto splits = load_svhn(dir.path().string());
  EXPECT_EQ(splits.train.size(), 3);
  EXPECT_EQ(splits.test.size(), 2);
  EXPECT_EQ(splits.test.class_names.size(), 10u);
  EXPECT_EQ(splits.test.labels[0].item<int64_t>(), 0);
}

TEST(SvhnReader, RejectsFileWithoutX) {
  TempDir dir;
  const std::vector<double> y = {1, 2};
  write_mat(dir.file("train_32x32.mat"), {{"y", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 1}, y.data()}});
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("train_32x32.mat")); }),
            dir.file("train_32x32.mat") + ": no variable X (not an SVHN cropped-digits file?)");
}

TEST(SvhnReader, RejectsFileWithoutY) {
  TempDir dir;
  const auto x = svhn_pixels(1);
  write_mat(dir.file("t.mat"), {{"X", MAT_C_UINT8, MAT_T_UINT8, {32, 32, 3, 1}, x.data()}});
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("t.mat")); }),
            dir.file("t.mat") + ": no variable y (not an SVHN cropped-digits file?)");
}

TEST(SvhnReader, RejectsImagesOfWrongSize) {
  TempDir dir;
  const std::vector<uint8_t> x(28 * 28 * 3 * 2);
  const std::vector<double> y = {1, 2};
  write_mat(dir.file("t.mat"), {{"X", MAT_C_UINT8, MAT_T_UINT8, {28, 28, 3, 2}, x.data()},
                                {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 1}, y.data()}});
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("t.mat")); }),
            dir.file("t.mat") + ": X is 28x28x3x2, expected 32x32x3xN");
}

TEST(SvhnReader, RejectsLabelCountThatDiffersFromImageCount) {
  TempDir dir;
  const auto x = svhn_pixels(3);
  const std::vector<double> y = {1, 2};
  write_mat(dir.file("t.mat"), {{"X", MAT_C_UINT8, MAT_T_UINT8, {32, 32, 3, 3}, x.data()},
                                {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 1}, y.data()}});
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("t.mat")); }),
            dir.file("t.mat") + ": y holds 2 labels but X holds 3 images");
}

TEST(SvhnReader, RejectsLabelOutOfRange) {
  TempDir dir;
  write_svhn(dir.file("t.mat"), {1, 11});
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("t.mat")); }),
            dir.file("t.mat") + ": label 11 at position 2 of y is outside 1..10");
}

TEST(SvhnReader, RejectsFileThatIsNotMat) {
  TempDir dir;
  write_bytes(dir.file("t.mat"), std::string(300, 'x'));
  EXPECT_EQ(error_of([&] { read_svhn_mat(dir.file("t.mat")); }),
            dir.file("t.mat") + ": not a MAT file (no MATLAB v5/v7.3 header)");
}

// Found by fuzzing: matio allocates whatever an element header claims.
TEST(SvhnReader, RejectsVariablePartClaimingMoreBytesThanFileHolds) {
  TempDir dir;
  write_svhn(dir.file("t.mat"), {1, 2});
  auto bytes = read_file(dir.file("t.mat"));
  ASSERT_EQ(bytes[128], 14);  // miMATRIX X; its array flags' size word is at byte 140
  bytes.replace(140, 4, std::string("\x08\xff\xff\xff", 4));
  write_bytes(dir.file("t.mat"), bytes);
  const auto message = error_of([&] { read_svhn_mat(dir.file("t.mat")); });
  EXPECT_EQ(message.rfind(dir.file("t.mat") +
                              ": corrupt MAT file (a part of a variable claims 4294967048 bytes, ",
                          0),
            0u)
      << message;
}

TEST(SvhnReader, RejectsMissingFile) {
  TempDir dir;
  write_svhn(dir.file("train_32x32.mat"), {1});
  EXPECT_EQ(error_of([&] { load_svhn(dir.path().string()); }),
            dir.file("test_32x32.mat") + ": file not found");
}

}  // namespace
}  // namespace privaudit::data
