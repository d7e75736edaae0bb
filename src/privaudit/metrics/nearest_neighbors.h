// Scoring reconstructions against the data a model was trained on: for each reconstruction, the
// nearest training image and the nearest held-out image of its class, the share of
// reconstructions nearer to training data than to held-out data (training_likeness, equal pools),
// and the verbatim copies: reconstructions nearer to a training image (over the whole class pool)
// than all but 1 % of held-out images get (a threshold calibrated on held-out images).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>

#include "privaudit/data/dataset.h"

namespace privaudit::metrics {

// A similarity above which a reconstruction is a verbatim copy of its nearest training image.
// Split-conformal: of the m held-out calibration scores sorted ascending, the k-th with
// k = ceil((1 - rate) (m + 1)), capped at m (the maximum); a new held-out image exceeds it with
// probability (m + 1 - k) / (m + 1) <= rate when m >= 1 / rate - 1, else 1 / (m + 1).
struct CopyThreshold {
  double ssim = 0;
  int64_t held_out_images = 0;  // m
  int64_t order_statistic = 0;  // k
  double false_copy_rate = 0;   // (m + 1 - k) / (m + 1), the bound it gives
};

struct NearestNeighborOptions {
  // SSIM is exact on the `candidates` references of smallest MSE (a pre-filter); 0 = exact SSIM
  // against every reference of the class (slower: one all-pairs SSIM per class).
  int64_t candidates = 64;
  uint64_t seed = 0;  // draws the equal-size pools and the calibration images
  // The copy threshold: held-out images scored like reconstructions (their nearest training image
  // of their class); at most this many, drawn with the seed (0 = all of them).
  int64_t calibration_count = 1000;
  double copy_false_rate = 0.01;  // a held-out image passes the threshold with at most this rate
  // When set, used as is instead of calibrating (one calibration for several scorings).
  std::optional<CopyThreshold> copy_threshold;
};

// Per reconstruction (N of them), all N-vectors:
struct NearestNeighbors {
  // Over the whole class in each split. Nearest by SSIM (ssim, index) and by MSE (mse, psnr).
  torch::Tensor train_ssim, train_mse, train_psnr, train_index;  // index: row in the training split
  torch::Tensor test_ssim, test_mse, test_psnr, test_index;      // index: row in the held-out split
  // Over pools of equal size per class: the larger pool is cut into disjoint pools of the
  // smaller's size (a seeded permutation; the last one topped up from the first), so that every
  // image of it takes part; per pool 1 if the best training SSIM beats the best held-out SSIM,
  // 0.5 on a tie, 0 else; averaged over the pools.
  torch::Tensor nearer_to_train;
  int64_t pool_size_min = 0;   // smallest equalised pool over the classes present
  int64_t pools_compared = 0;  // most pools of the larger split in one class

  // Whether train_ssim (over the whole class pool) exceeds copy_threshold.ssim (bool N-vector).
  torch::Tensor copy_of_train;
  CopyThreshold copy_threshold;

  // Share of reconstructions nearer (by SSIM) to a training image than to any held-out image,
  // with equal pools: 0.5 means no leak beyond the class. A verbatim copy of one of T training
  // images scores only about 1/2 + 1/2 * (held-out pool) / T here: count copies with
  // verbatim_copies().
  double training_likeness() const { return nearer_to_train.mean().item<double>(); }
  int64_t verbatim_copies() const { return copy_of_train.sum().item<int64_t>(); }
};

// The copy threshold of `options` on the held-out split: each drawn held-out image's SSIM to its
// nearest training image of its class (classes without training images are skipped). Throws
// Error when no held-out image has a class in the training split.
CopyThreshold calibrate_copy_threshold(const data::Dataset& train, const data::Dataset& test,
                                       const NearestNeighborOptions& options = {});

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
