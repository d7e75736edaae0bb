#include "privaudit/metrics/reconstruction_score.h"

#include <algorithm>
#include <map>

#include "privaudit/metrics/assignment.h"
#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

// The per-image figures of `matched` (in target order) against `truth`.
void compare_matched(torch::Tensor matched, const torch::Tensor& truth,
                     ReconstructionScore& score) {
  score.matched = std::move(matched);
  score.mse = mse_per_image(score.matched, truth);
  score.psnr = psnr_per_image(score.matched, truth);
  score.ssim = ssim_per_image(score.matched, truth);
  score.mean_mse = score.mse.mean().item<double>();
  score.mean_psnr = score.psnr.mean().item<double>();
  score.mean_ssim = score.ssim.mean().item<double>();
}

}  // namespace

ReconstructionScore score_reconstruction(const torch::Tensor& reconstructions,
                                         const torch::Tensor& recovered_labels,
                                         const torch::Tensor& targets,
                                         const torch::Tensor& target_labels) {
  if (reconstructions.dim() != targets.dim() || reconstructions.dim() < 1 ||
      reconstructions.size(0) < targets.size(0) ||
      reconstructions.sizes().slice(1) != targets.sizes().slice(1)) {
    throw Error("scoring: reconstructions and targets differ in shape");
  }
  const auto recon = reconstructions.detach().to(torch::kCPU, torch::kFloat);
  const auto truth = targets.detach().to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(recon).all().item<bool>())
    throw Error("scoring: reconstructions hold NaN/inf");
  ReconstructionScore score;
  score.assignment = min_cost_assignment(mse_matrix(truth, recon));
  compare_matched(recon.index_select(0, torch::tensor(score.assignment, torch::kLong)), truth,
                  score);
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

ReconstructionScore score_candidates(const torch::Tensor& candidates,
                                     const torch::Tensor& targets) {
  if (candidates.dim() != targets.dim() || candidates.dim() < 1 || candidates.size(0) < 1 ||
      candidates.sizes().slice(1) != targets.sizes().slice(1)) {
    throw Error("scoring: candidates and targets differ in shape");
  }
  const auto recon = candidates.detach().to(torch::kCPU, torch::kFloat);
  const auto truth = targets.detach().to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(recon).all().item<bool>()) throw Error("scoring: candidates hold NaN/inf");
  ReconstructionScore score;
  const auto nearest = mse_matrix(truth, recon).argmin(1);
  score.assignment.assign(nearest.data_ptr<int64_t>(),
                          nearest.data_ptr<int64_t>() + nearest.numel());
  compare_matched(recon.index_select(0, nearest), truth, score);
  return score;
}

}  // namespace privaudit::metrics
