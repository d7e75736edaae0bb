// The gradients experiment's attacks: each chosen attack on a rank's batches
// (one shared update per batch), scored against the batch's targets, and the
// per-batch outcomes assembled into one GradientRun per (attack, batch size).
// Internal to experiments/gradient_experiment.cpp and its pieces;
// strongest_attack (gradient_experiment.h) lives beside them.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/models/classifier.h"

namespace privaudit::experiments::gradients {

// Per batch of one batch size, the attack that recovered every image of it
// exactly and certified it ("" while none has). Only the batches this rank
// attacks are filled in.
using CertifiedBatches = std::map<int64_t, std::string>;

// One attack on batch k of one batch size: the unit of work ranks share
// (util/distributed.h) and exchange. Its random stream is seed + k, whichever
// rank runs it.
struct BatchOutcome {
  int64_t run = 0;  // which (attack, batch size) run, in run order
  int64_t k = 0;
  std::string skipped_by;  // an earlier attack certified the whole batch: not attacked
  bool not_applicable = false;
  std::string failure;
  nlohmann::json details = nlohmann::json::object();
  // Scored batches: per target of the batch, in target order.
  std::vector<double> psnr, ssim, mse;
  std::vector<bool> certified;
  double label_accuracy = 0, iterations = 0, distance = 0;
  int restarts = 0, failed = 0;
  torch::Tensor matched;  // B x C x H x W: the reconstruction matched with each target
};

// Runs `attack` on this rank's batches `mine` of size `batch` (all at once
// where the attack can: one graph for many problems, attacks/multi_target.h),
// scores each against its targets and marks the batches it certified whole in
// `certified_by`.
std::vector<BatchOutcome> attack_batches(models::Classifier &model,
                                         const attacks::GradientAttack &attack, int64_t run,
                                         int64_t batch, const std::vector<int64_t> &mine,
                                         const torch::Tensor &target_images,
                                         const torch::Tensor &target_labels,
                                         const GradientExperimentOptions &options,
                                         CertifiedBatches &certified_by, const Reporter &reporter);

// The run of `attack` at `batch` from every batch's outcome (`by_k[k]`, all
// ranks'), in batch order; writes its grid and says its line.
GradientRun assemble_run(const attacks::GradientAttack &attack, int64_t batch,
                         const std::vector<const BatchOutcome *> &by_k, double seconds,
                         const torch::Tensor &target_images,
                         const GradientExperimentOptions &options, const Reporter &reporter,
                         OutputSink &sink);

}  // namespace privaudit::experiments::gradients
