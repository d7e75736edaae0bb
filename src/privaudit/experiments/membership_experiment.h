// The membership experiment (`privaudit membership`): K reference models of one architecture on
// seeded random halves of a pool, every attack scored leave-one-model-out on the K x N decisions,
// the shuffled-label null beside each, a log-log ROC plot and the most exposed pool images.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/attacks/weights/membership.h"
#include "privaudit/data/dataset.h"
#include "privaudit/defense/dp_sgd.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/metrics/membership_metrics.h"
#include "privaudit/models/model_config.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/train/reference_models.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments {

struct MembershipExperimentOptions {
  train::ReferenceOptions references;
  // Set (--dp-*): every reference model trains with DP-SGD on its half (the options join the
  // cache key), so the epsilon lower bound is measured on models the accountant's epsilon covers.
  std::optional<defense::DpOptions> dp;
  attacks::MembershipOptions attack;
  std::vector<attacks::MembershipAttack> attacks = attacks::all_membership_attacks();
  std::vector<double> fprs = {0.001, 0.01};
  metrics::EpsilonOptions epsilon;  // delta 1e-5 at 95 %
  double level = 0.95;              // of the AUC and TPR intervals
  uint64_t null_seed = 1;           // draws the shuffled labels of the null control
  int64_t exposed = 16;             // most exposed pool images in the grid
  // Images rebuilt from a model's weights (`--reconstructions FILE`, privaudit invert's
  // reconstructions.pt; M x C x H x W in [0,1]): each most exposed image is shown beside the one
  // nearest to it by SSIM. Undefined: no such view.
  torch::Tensor reconstructions;
  std::string reconstructions_source;  // the file, for results.json

  // Throws UsageError naming the flag.
  void validate(int64_t pool_size, int64_t classes) const;
};

struct AttackFigures {
  attacks::MembershipAttack attack = attacks::MembershipAttack::kLoss;
  metrics::MembershipFigures figures;
  metrics::MembershipFigures null;  // the same attack with the labels shuffled after training
  // The members it calls members at the last of the options' FPRs (1 %), as decision indices
  // k * N + i (target k, pool image i): models of one seed and pool train on the same halves, so
  // two architectures' detections pair up member by member (the audit's paired test).
  std::vector<int64_t> detected_members;
};

struct MembershipExperimentResult {
  std::vector<AttackFigures> attacks;
  int64_t pool_size = 0, population_size = 0, models = 0, references_per_target = 0;
  std::string model_summary;
  int64_t parameters = 0;
  int trained = 0, reused = 0;
  double training_seconds = 0;
  int64_t training_images = 0;
  double train_accuracy = 0, held_out_accuracy = 0;  // means over the models
  std::string cache_folder;
  std::optional<defense::PrivacyReport> privacy;  // DP-SGD references: what each one spent
  std::vector<std::string> reference_files;       // models the caller gave (`--references DIR`)
  // Pool positions with the highest LiRA (online) score averaged over the targets they trained,
  // most exposed first, and those scores.
  std::vector<int64_t> most_exposed;
  std::vector<double> most_exposed_scores;
  // With reconstructions: for each most exposed image, the nearest reconstruction (row in the
  // file) and its SSIM.
  std::vector<int64_t> nearest_reconstruction;
  std::vector<double> nearest_reconstruction_ssim;
};

// Reads privaudit invert's reconstructions.pt (images, labels) and checks the images are
// M x C x H x W finite values in [0,1] of the pool's shape; throws Error naming the file.
torch::Tensor load_reconstructions(const std::string& path, const data::Dataset& pool);

// Trains (or loads) the references, scores every attack and its null, and hands `sink` the ROC
// plot ("roc.svg") and the most exposed images ("most_exposed.png"). In a world of several
// processes every rank trains its share of the models into the cache (which it then needs), and
// the lead rank scores them all; the other ranks return an empty result.
MembershipExperimentResult run_membership_experiment(const models::ModelConfig& config,
                                                     const data::Dataset& pool,
                                                     const data::Dataset& population,
                                                     const MembershipExperimentOptions& options,
                                                     const Reporter& reporter, OutputSink& sink,
                                                     const dist::World& world = dist::single());

// The same on K re-initialised copies of a model file (`--model FILE`: TorchScript, or a
// checkpoint rebuilt from its description; train::train_reference_copies). One process.
MembershipExperimentResult run_membership_on_copies(const std::string& model_file,
                                                    const models::ModelFileOptions& file_options,
                                                    const data::Dataset& pool,
                                                    const data::Dataset& population,
                                                    const MembershipExperimentOptions& options,
                                                    const Reporter& reporter, OutputSink& sink);

// The same on models the caller has (`--references DIR`): `in_mask` (K x N) says which pool images
// trained each. The result's training figures stay 0. `pool_logits`: each model's logits on the
// pool when already measured (train::ReferenceModels::pool_logits).
MembershipExperimentResult evaluate_membership(const std::vector<models::Classifier*>& models,
                                               const torch::Tensor& in_mask,
                                               const data::Dataset& pool,
                                               const data::Dataset& population,
                                               const MembershipExperimentOptions& options,
                                               const Reporter& reporter, OutputSink& sink,
                                               const std::vector<torch::Tensor>& pool_logits = {});

// TPR against FPR on log-log axes, one line per attack and the chance diagonal.
report::Plot roc_plot(const MembershipExperimentResult& result);

// The result as results.json fields: "pool_size", "population_size", "models",
// "references_per_target", "decisions", "reference_models", "attacks" (per attack: "auc" with
// "auc_low"/"auc_high", "tpr_at_0_1_percent_fpr" and "tpr_at_1_percent_fpr" with their "_low" and
// "_high", "epsilon_lower_bound" with its details, "detected_at_1_percent_fpr": the members it
// detects there, and "null": the same for the control),
// "most_exposed".
nlohmann::json to_json(const MembershipExperimentResult& result,
                       const MembershipExperimentOptions& options);

}  // namespace privaudit::experiments
