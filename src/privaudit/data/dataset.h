// A labelled image dataset held in memory, and the ways attacks and training draw from it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace privaudit::data {

// Per-channel mean and standard deviation. Attacks work in [0,1] pixel space; the model applies
// this normalisation to its input itself (it travels with the model's checkpoint).
struct Normalization {
  std::vector<float> mean;  // one per channel
  std::vector<float> std;   // one per channel

  // (x - mean) / std for an N x C x H x W tensor.
  torch::Tensor apply(const torch::Tensor& images) const;
  static Normalization identity(int64_t channels);
};

struct Dataset {
  torch::Tensor images;  // N x C x H x W, float32 in [0,1]
  torch::Tensor labels;  // N, int64 in [0, class_names.size())
  std::vector<std::string> class_names;
  std::string source;  // where it came from, for reports ("fashion-mnist train", a path...)

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  // Rows picked by position (int64 index tensor).
  Dataset select(const torch::Tensor& indices) const;
};

struct Splits {
  Dataset train;
  Dataset test;
  Normalization normalization;  // computed on the training split
};

// Throws Error naming `where` if images are not N x C x H x W in [0,1], labels not N int64 within
// range, or the class names empty.
void validate(const Dataset& dataset, const std::string& where);

// Per-channel mean/std of a dataset's images.
Normalization compute_normalization(const Dataset& dataset);

// A seeded, class-balanced subset of `size` rows (classes share evenly, the remainder going to
// the lowest class indices; a class with too few images gives all it has). size >= dataset size
// returns the dataset unchanged.
Dataset balanced_subset(const Dataset& dataset, int64_t size, uint64_t seed);

// Positions of `count` images of class `label`, drawn without replacement by `seed`. Throws Error
// if the class has fewer images.
torch::Tensor sample_class(const Dataset& dataset, int64_t label, int64_t count, uint64_t seed);

// A seeded permutation of 0..n-1 (the same on every platform for one seed).
torch::Tensor permutation(int64_t n, uint64_t seed);

// Splits 0..n-1 into batches of `batch_size` (the last may be smaller), in a seeded random order
// when `shuffle`, in order otherwise.
std::vector<torch::Tensor> batches(int64_t n, int64_t batch_size, bool shuffle, uint64_t seed);

}  // namespace privaudit::data
