// Membership inference on released weights: was this image in the training set? Reference models
// of the target's architecture are trained on seeded random halves of a pool of N images, and
// every model in turn is the target while the others are its references (leave-one-model-out), so
// the figures rest on K x N decisions. Attacks: LOSS (Yeom et al. 2018), LiRA offline and online
// with per-example or fixed variance (Carlini et al. 2022, "Membership Inference Attacks From
// First Principles"), and RMIA offline (Zarifzadeh et al. 2024, "Low-Cost High-Power Membership
// Inference Attacks"). The figures come from metrics/membership_metrics.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// LiRA's logit-scaled confidence on the true label, phi = log p_y - log(1 - p_y), one per image
// (float64, N). Computed as z_y - logsumexp_{j != y} z_j from the logits z, which stays finite
// where p_y rounds to 1 in float32.
torch::Tensor logit_confidence(models::Classifier& model, const torch::Tensor& images,
                               const torch::Tensor& labels);
// The same from logits already computed (N x classes).
torch::Tensor confidence_of_logits(const torch::Tensor& logits, const torch::Tensor& labels);

enum class MembershipAttack {
  kLoss,                      // Yeom et al.: the target's own confidence, no references
  kLiraOffline,               // one-sided test against N(mu_out, sigma_out^2) of the example
  kLiraOfflineFixedVariance,  // the same with one sigma_out for every example
  kLiraOnline,                // N(mu_in, sigma_in^2) against N(mu_out, sigma_out^2)
  kLiraOnlineFixedVariance,   // the same with one sigma_in and one sigma_out
  kRmiaOffline,               // RMIA: likelihood ratio against population samples z
};
// "loss", "lira_offline", "lira_offline_fixed", "lira_online", "lira_online_fixed", "rmia_offline"
std::string membership_attack_name(MembershipAttack attack);
MembershipAttack parse_membership_attack(const std::string& name);  // throws UsageError
std::vector<MembershipAttack> all_membership_attacks();

struct MembershipOptions {
  // Reference models per target: the ones after it in cyclic order (k+1, k+2, ... mod K); 0 uses
  // all K - 1 others.
  int references = 0;
  // Offline RMIA approximates p(x) from the OUT references as ((1 + a) p_OUT(x) + (1 - a)) / 2,
  // i.e. p_IN = a p_OUT + 1 - a (Zarifzadeh et al., Sec. 4, "offline"). The paper tunes a on
  // reference models; 0.3 is ML Privacy Meter's default.
  double rmia_a = 0.3;
  // RMIA's gamma: x beats z when (p(x|t)/p(x)) / (p(z|t)/p(z)) >= gamma.
  double rmia_gamma = 1.0;
  // A per-example mean and variance needs at least this many reference scores of its kind (IN or
  // OUT); an example with fewer falls back to the pooled figures (see membership.cpp).
  int min_per_example = 2;

  // Throws UsageError naming the option.
  void validate(int64_t models) const;
};

// What the attacker measures: phi of every model on every pool image and on population images
// that trained no model (RMIA's z). Rows are models.
struct ConfidenceMatrix {
  torch::Tensor pool;        // K x N float64
  torch::Tensor population;  // K x M float64 (M may be 0 when RMIA is not run)
};

// phi of each model on `pool` and `population` (logit_confidence, row by row). `pool_logits`, when
// given, holds each model's logits on the pool already (ReferenceModels::pool_logits), which are
// then not measured again.
ConfidenceMatrix measure_confidences(const std::vector<models::Classifier*>& models,
                                     const data::Dataset& pool, const data::Dataset& population,
                                     const std::vector<torch::Tensor>& pool_logits = {});

// One target as the attacker sees it: the target's phi, the references' phi and which pool images
// trained each reference. The target's own membership is not part of it.
struct TargetView {
  torch::Tensor target_pool;           // N
  torch::Tensor target_population;     // M
  torch::Tensor reference_pool;        // R x N
  torch::Tensor reference_in;          // R x N bool
  torch::Tensor reference_population;  // R x M
};

// The membership score of each pool image against the target (N, float64; higher: member).
// Throws Error when the attack needs references and there are none, or RMIA has no population.
torch::Tensor score_target(const TargetView& view, MembershipAttack attack,
                           const MembershipOptions& options);

// Leave-one-model-out: row k scores the pool against model k with its references (options), K x N.
// Row k of `in_mask` (K x N bool) never reaches the scoring of target k.
torch::Tensor score_leave_one_out(const ConfidenceMatrix& confidences, const torch::Tensor& in_mask,
                                  MembershipAttack attack, const MembershipOptions& options);

// The null control: each row of `in_mask` replaced by a seeded random set of the same size, as if
// the membership labels had been shuffled after training. An attack run with it (as the
// references' labels and as the truth it is scored against) has nothing to find.
torch::Tensor shuffled_membership(const torch::Tensor& in_mask, uint64_t seed);

// The K x N decisions as flat lists for metrics/membership_metrics.h (row by row).
struct Decisions {
  std::vector<double> scores;
  std::vector<bool> members;
};
Decisions flatten_decisions(const torch::Tensor& scores, const torch::Tensor& in_mask);

// Reference models a user trained: FOLDER/membership.json lists each model file (a checkpoint or a
// TorchScript module, relative to FOLDER) and the pool positions it trained on,
//   {"models": [{"file": "m0.pt", "members": [0, 3, 4, ...]}, ...]}
// where the pool is the one the command's data flags select. Every model must take the pool's
// input shape and class count and be of one kind (the first file's kind and parameter count).
struct LoadedReferences {
  std::vector<std::unique_ptr<models::Classifier>> models;
  torch::Tensor in_mask;  // K x N bool
  std::vector<std::string> files;
};
// Throws Error naming the folder or the file: no or bad membership.json, a file that cannot be
// read, a model of another kind, input shape or class count, a position outside the pool, or
// fewer than 2 models.
LoadedReferences load_reference_folder(const std::string& folder, const data::Dataset& pool,
                                       const models::ModelFileOptions& options = {});

}  // namespace privaudit::attacks
