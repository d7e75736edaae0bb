// Models and targets the gradient-attack tests share: the DLG paper's LeNet, a small untrained
// ReLU CNN, and real Fashion-MNIST test images.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/data/spec.h"
#include "privaudit/models/builtin.h"
#include "test_util.h"

namespace privaudit::testing {

inline std::unique_ptr<models::BuiltinClassifier> make_model(const std::string& arch,
                                                             uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_unique<models::BuiltinClassifier>(models::default_config(arch, {1, 28, 28}, 10));
}

// A Sequential of 1x28x28 -> 10 logits as a Classifier, for test models with no cut points.
class SequentialClassifier : public models::Classifier {
 public:
  SequentialClassifier(torch::nn::Sequential net, std::string kind, std::string summary)
      : net_(std::move(net)), kind_(std::move(kind)), summary_(std::move(summary)) {}
  torch::Tensor forward(const torch::Tensor& images) override { return net_->forward(images); }
  std::vector<torch::Tensor> parameters() override { return net_->parameters(); }
  models::InputShape input_shape() const override { return {1, 28, 28}; }
  int64_t num_classes() const override { return 10; }
  std::vector<std::string> cut_points() const override { return {}; }
  torch::Tensor features(const torch::Tensor&, const std::string&) override {
    throw std::logic_error("no cuts");
  }
  torch::Tensor forward_from(const torch::Tensor&, const std::string&) override {
    throw std::logic_error("no cuts");
  }
  void set_training(bool training) override { net_->train(training); }
  bool is_training() const override { return net_->is_training(); }
  void to(torch::Device) override {}
  torch::Device device() const override { return torch::kCPU; }
  bool has_batch_norm() const override { return false; }
  std::string kind() const override { return kind_; }
  std::string summary() const override { return summary_; }

 private:
  torch::nn::Sequential net_;
  std::string kind_;
  std::string summary_;
};

// Untrained ReLU CNN small enough for a many-iteration attack in a test: two 5x5 stride-1 convs
// (4, 8 channels, no pooling) and one linear layer, PyTorch's default initialisation. (With
// max-pooling, as in the built-in "cnn", Inverting Gradients stalls near 20 dB at batch 4.)
class SmallReluCnn : public SequentialClassifier {
 public:
  explicit SmallReluCnn(uint64_t seed)
      : SequentialClassifier(make_net(seed), "test-cnn", "test CNN 4-8, stride 1, ReLU") {}

 private:
  static torch::nn::Sequential make_net(uint64_t seed) {
    torch::manual_seed(seed);
    return torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 5).padding(2)), torch::nn::ReLU(),
        torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 8, 5).padding(2)), torch::nn::ReLU(),
        torch::nn::Flatten(), torch::nn::Linear(8 * 28 * 28, 10));
  }
};

// Zeroes every parameter before the last layer's weight and bias: the last layer then sees constant
// features, so the gradient is the same for every input and carries nothing about it.
inline void zero_all_but_last_layer(models::Classifier& model) {
  torch::NoGradGuard no_grad;
  auto parameters = model.parameters();
  for (size_t i = 0; i + 2 < parameters.size(); ++i) parameters[i].zero_();
}

inline std::unique_ptr<SmallReluCnn> make_small_cnn(uint64_t seed) {
  return std::make_unique<SmallReluCnn>(seed);
}

struct Targets {
  torch::Tensor images;  // N x 1 x 28 x 28
  torch::Tensor labels;
};

// `count` Fashion-MNIST test images starting at `first`. Never other data: a suite that calls it
// derives from RequiresFashionMnist, which skips (or, under CI, fails) when the dataset is missing.
inline Targets test_images(int64_t count, int64_t first = 0) {
  if (!have_fashion_mnist())
    throw std::runtime_error("test_images: dataset-fashion-mnist is not installed");
  static const data::Splits splits = data::load_splits("fashion-mnist", {100, 200, 0});
  return {splits.test.images.slice(0, first, first + count).clone(),
          splits.test.labels.slice(0, first, first + count).clone()};
}

}  // namespace privaudit::testing
