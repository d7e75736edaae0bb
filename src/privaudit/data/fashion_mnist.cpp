#include <filesystem>

#include "privaudit/data/idx.h"
#include "privaudit/data/loaders.h"
#include "privaudit/util/error.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

Dataset from_pair(const IdxPair& pair, std::vector<std::string> classes, std::string source) {
  Dataset dataset{pair.images, pair.labels, std::move(classes), std::move(source)};
  return dataset;
}

// Class names for IDX files: 0..K-1 where K is one more than the largest label.
std::vector<std::string> numbered_classes(const torch::Tensor& labels) {
  std::vector<std::string> names;
  const int64_t classes = labels.max().item<int64_t>() + 1;
  for (int64_t c = 0; c < classes; ++c) names.push_back(std::to_string(c));
  return names;
}

}  // namespace

Splits load_fashion_mnist(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    throw Error(dir +
                ": Fashion-MNIST folder not found (install Debian's dataset-fashion-mnist, "
                "or set PRIVAUDIT_FASHION_MNIST_DIR)");
  }
  const fs::path root(dir);
  Splits splits;
  splits.train = from_pair(read_idx_pair((root / "train-images-idx3-ubyte.gz").string(),
                                         (root / "train-labels-idx1-ubyte.gz").string()),
                           kFashionClasses, "fashion-mnist train");
  splits.test = from_pair(read_idx_pair((root / "t10k-images-idx3-ubyte.gz").string(),
                                        (root / "t10k-labels-idx1-ubyte.gz").string()),
                          kFashionClasses, "fashion-mnist test");
  return splits;
}

Splits load_idx_files(const std::vector<std::string>& paths) {
  const auto first = read_idx_pair(paths[0], paths[1]);
  Splits splits;
  if (paths.size() == 4) {
    const auto second = read_idx_pair(paths[2], paths[3]);
    if (first.images.sizes().slice(1) != second.images.sizes().slice(1)) {
      throw Error(paths[2] + ": image size differs from " + paths[0]);
    }
    auto classes = numbered_classes(torch::cat({first.labels, second.labels}));
    splits.train = from_pair(first, classes, paths[0]);
    splits.test = from_pair(second, classes, paths[2]);
    return splits;
  }
  auto classes = numbered_classes(first.labels);
  const int64_t n = first.images.size(0);
  if (n < 2) throw Error(paths[0] + ": need at least 2 images to split into train and test");
  const auto order = permutation(n, /*seed=*/7);
  const int64_t test_count = std::max<int64_t>(1, n / 7);
  Dataset all = from_pair(first, classes, paths[0]);
  splits.test = all.select(std::get<0>(order.slice(0, 0, test_count).sort()));
  splits.train = all.select(std::get<0>(order.slice(0, test_count).sort()));
  splits.train.source = paths[0] + " (train part)";
  splits.test.source = paths[0] + " (test part)";
  return splits;
}

}  // namespace privaudit::data
