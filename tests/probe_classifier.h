// A tiny Classifier for tests of per-layer metrics and feature attacks: its cut points are maps
// whose leakage is known by hand.
//   identity   B x C x H x W   the image itself (a spatial feature map)
//   flat       B x D           the flattened image (a vector)
//   low_rank   B x d           W x with W (d x D) of a chosen rank
//   expand     B x e           relu(A x) with A (e x D), e > D, of a chosen rank
//   constant   B x 16          zeros: nothing about the input
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/util/error.h"

namespace privaudit::testing {

// A d x D Gaussian matrix of rank `rank` (product of d x rank and rank x D factors).
inline torch::Tensor random_rank_matrix(int64_t rows, int64_t cols, int64_t rank, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  return torch::mm(torch::randn({rows, rank}, generator), torch::randn({rank, cols}, generator)) /
         std::sqrt(static_cast<double>(rank * cols));
}

class ProbeClassifier : public models::Classifier {
 public:
  ProbeClassifier(models::InputShape input, torch::Tensor low_rank, torch::Tensor expand)
      : input_(input), low_rank_(std::move(low_rank)), expand_(std::move(expand)) {
    head_ = torch::zeros({2, input_.numel()});
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    return torch::mm(images.flatten(1), head_.t());
  }
  std::vector<torch::Tensor> parameters() override { return {head_}; }
  models::InputShape input_shape() const override { return input_; }
  int64_t num_classes() const override { return 2; }
  std::vector<std::string> cut_points() const override {
    return {"identity", "flat", "low_rank", "expand", "constant"};
  }
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override {
    check_cut(cut);
    if (cut == "identity") return images * 1.0;
    if (cut == "flat") return images.flatten(1);
    if (cut == "low_rank") return torch::mm(images.flatten(1), low_rank_.t());
    if (cut == "expand") return torch::relu(torch::mm(images.flatten(1) - 0.5, expand_.t()));
    return torch::zeros({images.size(0), 16}, images.options().requires_grad(false));
  }
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override {
    check_cut(cut);
    return torch::zeros({features.size(0), 2});
  }
  void set_training(bool training) override { training_ = training; }
  bool is_training() const override { return training_; }
  void to(torch::Device) override {}
  torch::Device device() const override { return torch::kCPU; }
  bool has_batch_norm() const override { return false; }
  std::string kind() const override { return "probe"; }
  std::string summary() const override { return "probe"; }

  const torch::Tensor& low_rank() const { return low_rank_; }
  const torch::Tensor& expand() const { return expand_; }

 private:
  models::InputShape input_;
  torch::Tensor low_rank_;
  torch::Tensor expand_;
  torch::Tensor head_;
  bool training_ = false;
};

}  // namespace privaudit::testing
