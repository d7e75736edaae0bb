// What the gradient-inversion attacks (DLG, iDLG, Inverting Gradients) share: the distances between
// gradients and the result every attack returns. The gradient itself (Gradients,
// parameter_gradients) is the threat model's: threat/shared_update.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// DLG's distance: sum over parameters of the squared L2 norm of the difference.
torch::Tensor squared_l2_distance(const Gradients& a, const Gradients& b);
// Inverting Gradients' distance: 1 - <a, b> / (|a| |b|) over all parameters jointly (one long
// vector), in [0, 2]. A zero gradient has no direction: the distance is then 1.
torch::Tensor cosine_distance(const Gradients& a, const Gradients& b);
// The same distance from its parts, elementwise (one value per problem when stacked):
// 1 - dot / (sqrt(squared_norm_a) sqrt(squared_norm_b) + 1e-30). The epsilon keeps a zero gradient
// from dividing by zero (then the distance is 1). Every cosine distance is finished here, so the
// single, stacked and implicit forms round alike.
torch::Tensor cosine_distance_from(const torch::Tensor& dot, const torch::Tensor& squared_norm_a,
                                   const torch::Tensor& squared_norm_b);

// Called after each outer iteration with the iteration number (1-based), the current gradient
// distance and the current reconstruction in [0,1]; used by benchmarks and the audit to follow a
// run. It sees only what the attacker has.
using IterationObserver =
    std::function<void(int iteration, double distance, const torch::Tensor& images)>;

// What every gradient attack returns.
struct Reconstruction {
  torch::Tensor images;                // B x C x H x W in [0,1] (zeros when failed)
  torch::Tensor labels;                // B recovered (or given) class indices
  std::vector<double> distance_curve;  // gradient distance after each iteration of the kept trial
  double final_distance = 0;           // the kept trial's last (DLG) or lowest (IG) distance
  int iterations = 0;                  // outer iterations run by the kept trial
  int restarts = 0;                    // trials started after the first (NaN or by option)
  bool failed = false;                 // every trial produced NaN/inf: no image to score
  std::string failure;                 // why, when failed
  // A closed-form attack whose preconditions do not hold (no bias, no learned positional
  // embedding, rank too low, batch too large): no images to score, `failure` says why.
  bool not_applicable = false;
  // Per image, whether the attack proved it exact without ground truth (closed-form attacks:
  // the gradient of the reconstruction matches the shared one, or several rows of a layer's
  // gradient agree on it). Empty for attacks that cannot certify.
  std::vector<bool> certified;
  // Cosine distance between the shared gradient and the gradient the reconstruction yields
  // (batch 1 closed-form attacks; NaN when not computed).
  double self_check = std::numeric_limits<double>::quiet_NaN();
  nlohmann::json details;  // attack-specific figures (layer, rank, residuals)
  // `images` is a set of candidates, not one guess per image (the imprint attack): each target
  // is scored against its nearest candidate (metrics::score_candidates).
  bool candidate_set = false;
};

// One optimisation run of an attack from one random start, as the restart loop sees it.
struct AttackTrial {
  torch::Tensor images;       // B x C x H x W in [0,1]; undefined when nothing usable was found
  torch::Tensor labels;       // recovered labels; undefined when the attack does not recover them
  std::vector<double> curve;  // gradient distance per iteration
  double score = std::numeric_limits<double>::infinity();  // lower is better: picks the kept trial
  double final_distance = 0;
  int iterations = 0;
  bool finite = true;  // false: NaN/inf appeared
};

// The restarts of DLG and Inverting Gradients: starts trials (the k-th started gets seed
// seed + 1000003 k; progress shows "<name> trial k") until `trials` of them ended finite, retrying
// a NaN/inf trial up to `nan_retries` times in all, and keeps the finite trial with the lowest
// score. When none is finite the result is failed, with zero images and labels -1.
Reconstruction keep_best_trial(const std::string& name, int trials, int nan_retries, uint64_t seed,
                               int iterations, const models::InputShape& image, int64_t batch_size,
                               Progress& progress, const std::function<AttackTrial(uint64_t)>& run);

// Checks shared against the model: one tensor per parameter with matching shapes, all finite
// sizes; throws Error naming the mismatch.
void check_shared_gradients(models::Classifier& model, const Gradients& shared, int64_t batch_size);

// Whether every value of every tensor is finite.
bool all_finite(const std::vector<torch::Tensor>& tensors);

}  // namespace privaudit::attacks
