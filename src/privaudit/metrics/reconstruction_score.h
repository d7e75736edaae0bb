// Scoring a gradient attack: reconstructions are matched to the targets by optimal assignment on
// MSE (a batch's gradient says nothing about order), then compared image by image.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace privaudit::metrics {

struct ReconstructionScore {
  std::vector<int64_t> assignment;  // target i is matched with reconstruction assignment[i]
  torch::Tensor matched;            // reconstructions in target order, N x C x H x W
  torch::Tensor psnr, ssim, mse;    // per target
  double mean_psnr = 0, mean_ssim = 0, mean_mse = 0;
  // Share of the target labels recovered, order-free: sum_c min(n_c, n^_c) / N. -1 when no
  // labels were recovered (undefined or negative).
  double label_accuracy = -1;
};

// reconstructions, targets: N x C x H x W in [0,1]; labels: N class indices each (the recovered
// ones may be undefined). Throws Error on shape mismatch or non-finite reconstructions.
ReconstructionScore score_reconstruction(const torch::Tensor& reconstructions,
                                         const torch::Tensor& recovered_labels,
                                         const torch::Tensor& targets,
                                         const torch::Tensor& target_labels);

}  // namespace privaudit::metrics
