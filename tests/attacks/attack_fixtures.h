// Models and targets the gradient-attack tests share: the DLG paper's LeNet, a small untrained
// ReLU CNN, and real Fashion-MNIST test images (toy blobs when Fashion-MNIST is absent).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "privaudit/data/spec.h"
#include "privaudit/models/builtin.h"
#include "test_util.h"

namespace privaudit::testing {

inline std::unique_ptr<models::BuiltinClassifier> make_model(const std::string& arch, uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_unique<models::BuiltinClassifier>(models::default_config(arch, {1, 28, 28}, 10));
}

// Untrained ReLU CNN small enough for a many-iteration attack in a test: 8 and 16 channels.
inline std::unique_ptr<models::BuiltinClassifier> make_small_cnn(uint64_t seed) {
  torch::manual_seed(seed);
  auto config = models::default_config("cnn", {1, 28, 28}, 10);
  config.widths = {8, 16};
  config.fc_width = 32;
  return std::make_unique<models::BuiltinClassifier>(config);
}

struct Targets {
  torch::Tensor images;  // N x 1 x 28 x 28
  torch::Tensor labels;
};

// `count` test images starting at `first` (Fashion-MNIST when installed).
inline Targets test_images(int64_t count, int64_t first = 0) {
  if (have_fashion_mnist()) {
    static const data::Splits splits = data::load_splits("fashion-mnist", {100, 200, 0});
    return {splits.test.images.slice(0, first, first + count).clone(),
            splits.test.labels.slice(0, first, first + count).clone()};
  }
  const auto splits = toy_splits(10, 20);
  const auto order = torch::arange(first, first + count) * 7 % splits.test.size();
  return {splits.test.images.index_select(0, order), splits.test.labels.index_select(0, order)};
}

}  // namespace privaudit::testing
