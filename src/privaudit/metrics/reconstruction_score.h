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

// targets: N x C x H x W in [0,1]; reconstructions: M >= N images of the same shape (an attack
// may offer more candidates than targets: each target gets its own); labels: N class indices
// each (the recovered ones may be undefined; label accuracy needs M = N). Throws Error on shape
// mismatch or non-finite reconstructions.
ReconstructionScore score_reconstruction(const torch::Tensor& reconstructions,
                                         const torch::Tensor& recovered_labels,
                                         const torch::Tensor& targets,
                                         const torch::Tensor& target_labels);

// For an attack that returns a set of candidate images (the imprint server's one per bin), not
// one guess per target: each target is scored against its nearest candidate by MSE (a blend of
// two images may be the nearest of both). labels are not scored (label_accuracy -1).
ReconstructionScore score_candidates(const torch::Tensor& candidates, const torch::Tensor& targets);

}  // namespace privaudit::metrics
