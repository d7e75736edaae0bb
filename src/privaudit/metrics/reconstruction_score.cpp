#include "privaudit/metrics/reconstruction_score.h"

#include <algorithm>
#include <map>

#include "privaudit/metrics/assignment.h"
#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"

namespace privaudit::metrics {

ReconstructionScore score_reconstruction(const torch::Tensor& reconstructions,
                                         const torch::Tensor& recovered_labels,
                                         const torch::Tensor& targets,
                                         const torch::Tensor& target_labels) {
  if (reconstructions.sizes() != targets.sizes()) {
    throw Error("scoring: reconstructions and targets differ in shape");
  }
  const auto recon = reconstructions.detach().to(torch::kCPU, torch::kFloat);
  const auto truth = targets.detach().to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(recon).all().item<bool>())
    throw Error("scoring: reconstructions hold NaN/inf");
  ReconstructionScore score;
  score.assignment = min_cost_assignment(mse_matrix(truth, recon));
  score.matched = recon.index_select(0, torch::tensor(score.assignment, torch::kLong));
  score.mse = mse_per_image(score.matched, truth);
  score.psnr = psnr_per_image(score.matched, truth);
  score.ssim = ssim_per_image(score.matched, truth);
  score.mean_mse = score.mse.mean().item<double>();
  score.mean_psnr = score.psnr.mean().item<double>();
  score.mean_ssim = score.ssim.mean().item<double>();
  if (recovered_labels.defined() && target_labels.defined() &&
      recovered_labels.numel() == target_labels.numel() &&
      recovered_labels.min().item<int64_t>() >= 0) {
    std::map<int64_t, int64_t> wanted, found;
    const auto t = target_labels.to(torch::kCPU, torch::kLong);
    const auto r = recovered_labels.to(torch::kCPU, torch::kLong);
    for (int64_t i = 0; i < t.numel(); ++i) {
      ++wanted[t[i].item<int64_t>()];
      ++found[r[i].item<int64_t>()];
    }
    int64_t hits = 0;
    for (const auto& [c, n] : wanted) hits += std::min(n, found[c]);
    score.label_accuracy = static_cast<double>(hits) / static_cast<double>(t.numel());
  }
  return score;
}

}  // namespace privaudit::metrics
