#include "privaudit/data/cifar10.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "privaudit/data/loaders.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kCifarClasses = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

// batches.meta.txt: one class name per line (the archive pads it with blank lines).
std::vector<std::string> read_class_names(const fs::path& path) {
  if (!fs::exists(path)) return kCifarClasses;
  std::ifstream in(path);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != kCifarClasses.size()) {
    throw Error(path.string() + ": holds " + std::to_string(names.size()) +
                " class names, expected 10 (one per line)");
  }
  return names;
}

}  // namespace

CifarBatch parse_cifar10_batch(const std::string& bytes, const std::string& name) {
  if (bytes.size() % kCifarRecordBytes != 0) {
    throw Error(name + ": truncated: " + std::to_string(bytes.size()) +
                " bytes is not a whole number of 3073-byte records");
  }
  const int64_t n = static_cast<int64_t>(bytes.size()) / kCifarRecordBytes;
  if (n == 0) throw Error(name + ": empty batch file");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  auto pixels = torch::empty({n, 3, kCifarSide, kCifarSide}, torch::kUInt8);
  auto labels = torch::empty({n}, torch::kLong);
  uint8_t* pixel_out = pixels.data_ptr<uint8_t>();
  int64_t* label_out = labels.data_ptr<int64_t>();
  constexpr int64_t kImageBytes = kCifarRecordBytes - 1;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* record = data + i * kCifarRecordBytes;
    if (record[0] > 9) {
      throw Error(name + ": record " + std::to_string(i) + " has label " +
                  std::to_string(record[0]) + ", outside 0..9");
    }
    label_out[i] = record[0];
    // The planes are already in C x H x W order.
    std::memcpy(pixel_out + i * kImageBytes, record + 1, kImageBytes);
  }
  return {pixels.to(torch::kFloat).div_(255.0f), labels};
}

CifarBatch read_cifar10_batch(const std::string& path) {
  if (!fs::is_regular_file(path)) throw Error(path + ": file not found");
  return parse_cifar10_batch(read_file(path), path);
}

Splits load_cifar10(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": CIFAR-10 folder not found");
  const fs::path root(dir);
  std::vector<torch::Tensor> images, labels;
  for (int b = 1; b <= 5; ++b) {
    auto batch = read_cifar10_batch((root / ("data_batch_" + std::to_string(b) + ".bin")).string());
    images.push_back(batch.images);
    labels.push_back(batch.labels);
  }
  const auto test = read_cifar10_batch((root / "test_batch.bin").string());
  const auto classes = read_class_names(root / "batches.meta.txt");
  Splits splits;
  splits.train = {torch::cat(images), torch::cat(labels), classes, dir + " (cifar10 train)"};
  splits.test = {test.images, test.labels, classes, dir + " (cifar10 test)"};
  return splits;
}

}  // namespace privaudit::data
