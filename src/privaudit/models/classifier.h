// The one interface every attack and metric is written against: a vision classifier that maps
// [0,1] pixel images to logits and can be split at named cut points.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace privaudit::models {

struct InputShape {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  int64_t numel() const { return channels * height * width; }
  std::vector<int64_t> with_batch(int64_t batch) const { return {batch, channels, height, width}; }
};

class Classifier {
 public:
  virtual ~Classifier() = default;

  // images: B x C x H x W in [0,1] pixel space (normalisation happens inside) -> B x K logits.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  // Every trainable tensor, in a fixed order (gradient attacks rely on the order).
  virtual std::vector<torch::Tensor> parameters() = 0;
  virtual InputShape input_shape() const = 0;
  virtual int64_t num_classes() const = 0;

  // Names of the places the network can be split, from input to output. The last one is the
  // penultimate representation (the input of the final linear layer) where one exists.
  virtual std::vector<std::string> cut_points() const = 0;
  // The network up to and including `cut`: images -> features.
  virtual torch::Tensor features(const torch::Tensor& images, const std::string& cut) = 0;
  // The rest of the network after `cut`: features -> logits.
  virtual torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) = 0;

  // Train mode turns on dropout and batch-norm batch statistics.
  virtual void set_training(bool training) = 0;
  virtual bool is_training() const = 0;
  virtual void to(torch::Device device) = 0;
  virtual torch::Device device() const = 0;
  // Whether the model holds batch-norm layers (their running statistics are a prior).
  virtual bool has_batch_norm() const = 0;
  // Restarts the noise stream of a model whose forward draws noise (a defended model's noisy
  // cut) from `seed`, so that a figure measured after it does not depend on what ran before.
  // Models without noise ignore it.
  virtual void reseed_noise(uint64_t seed) {}

  // "mlp", "cnn", "vit", "lenet" or "torchscript".
  virtual std::string kind() const = 0;
  // One human-readable line: architecture and sizes.
  virtual std::string summary() const = 0;

  int64_t parameter_count();
  // Throws Error if `cut` is not one of cut_points().
  void check_cut(const std::string& cut) const;
};

// Logits of `images` computed in chunks without gradients (evaluation of whole datasets).
torch::Tensor predict_logits(Classifier& model, const torch::Tensor& images, int64_t chunk = 512);
// Share of `images` whose arg-max prediction equals `labels`.
double accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels);

// Keeps a classifier in the given mode for a scope and restores the previous mode afterwards.
class TrainingModeGuard {
 public:
  TrainingModeGuard(Classifier& model, bool training)
      : model_(model), previous_(model.is_training()) {
    model_.set_training(training);
  }
  ~TrainingModeGuard() { model_.set_training(previous_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  Classifier& model_;
  bool previous_;
};

}  // namespace privaudit::models
