// Scoring reconstructions against the data a model was trained on: for each reconstruction, the
// nearest training image and the nearest held-out image of its class, and the share of
// reconstructions nearer to training data than to held-out data (training_likeness).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "privaudit/data/dataset.h"

namespace privaudit::metrics {

struct NearestNeighborOptions {
  // SSIM is exact on the `candidates` references of smallest MSE (a pre-filter); 0 = exact SSIM
  // against every reference of the class (slower: one all-pairs SSIM per class).
  int64_t candidates = 64;
  uint64_t seed = 0;  // draws the equal-size pools for training_likeness
};

// Per reconstruction (N of them), all N-vectors:
struct NearestNeighbors {
  // Over the whole class in each split. Nearest by SSIM (ssim, index) and by MSE (mse, psnr).
  torch::Tensor train_ssim, train_mse, train_psnr, train_index;  // index: row in the training split
  torch::Tensor test_ssim, test_mse, test_psnr, test_index;      // index: row in the held-out split
  // Over pools of equal size per class (the larger pool subsampled to the smaller's size with
  // the seed): 1 if the best training SSIM beats the best held-out SSIM, 0.5 on a tie, 0 else.
  torch::Tensor nearer_to_train;
  int64_t pool_size_min = 0;  // smallest equalised pool over the classes present

  // Share of reconstructions nearer (by SSIM) to a training image than to any held-out image,
  // with equal pools: 0.5 means no leak beyond the class.
  double training_likeness() const { return nearer_to_train.mean().item<double>(); }
};

// `images`: N x C x H x W in [0,1]; `labels`: N class indices. Throws Error if a class of a
// reconstruction has no image in either split, or shapes disagree.
NearestNeighbors nearest_neighbors(const torch::Tensor& images, const torch::Tensor& labels,
                                   const data::Dataset& train, const data::Dataset& test,
                                   const NearestNeighborOptions& options = {});

// What a similarity figure is worth when nothing leaks, measured on the dataset in use (the
// report shows these next to every figure instead of a fixed "0.1 = unrelated"). Each from
// `count` held-out images drawn with `seed`:
struct SimilarityBaselines {
  // Against a training image of another class: unrelated images.
  double unrelated_ssim = 0, unrelated_psnr = 0;
  // Against the mean training image of its class: what a class prototype scores.
  double class_mean_ssim = 0, class_mean_psnr = 0;
  // Against its nearest training image of its class (SSIM, 64 MSE candidates): the nearest-train
  // SSIM of an image the model never saw.
  double unseen_nearest_train_ssim = 0;
  int64_t count = 0;
};
// Throws Error when the splits have no image or no class with images in both.
SimilarityBaselines similarity_baselines(const data::Dataset& train, const data::Dataset& test,
                                         int64_t count = 200, uint64_t seed = 0);

}  // namespace privaudit::metrics
