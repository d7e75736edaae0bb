// The defense experiment (`privaudit defend`): one defended model per (lambda, loss) point, each
// attacked by a fresh, stronger decoder; side audits on each (layer metrics at every cut, a
// gradient attack at batch 1 with the same attacker knowledge as `privaudit gradients`); the
// utility-privacy trade-off curve.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/defense/adversarial_reconstruction.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments {

struct DefenseExperimentOptions {
  std::string arch = "cnn";
  std::vector<double> lambdas = {0, 1, 3, 10};
  std::vector<std::string> losses = {"pixel"};  // pixel, feature
  std::string cut;                              // empty: the middle cut point
  int epochs = 3;
  int attack_epochs = 10;  // the fresh evaluation attacker's
  int adversary_steps = defense::DefenseOptions().adversary_steps;
  int head_epochs = defense::DefenseOptions().head_epochs;
  std::string objective = "class-mean";
  double noise = 1.0;  // sigma of the noisy cut (0 = the paper's deterministic encoder)
  int64_t targets = 500;
  int64_t gradient_targets = 4;  // of the side audit's gradient attack (0 = skip)
  int gradient_iterations = 300;
  attacks::AttackerKnowledge knowledge;  // of the side audit's gradient attack
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the flag
};

struct DefensePoint {
  double lambda = 0;
  std::string loss;               // the curve it belongs to ("pixel", "feature")
  nlohmann::json figures;         // test_accuracy, attack_psnr, attack_ssim, side audits, ...
  torch::Tensor reconstructions;  // of the first targets (up to 8)
};

struct DefenseExperimentResult {
  std::vector<DefensePoint> points;
  int64_t targets = 0;
  attacks::DecoderOptions attacker;  // the fresh attacker, as run
};

// Trains and attacks every point on `splits` (the attacker's data is the test split's first
// half, the targets its second). With a sink that has a folder, each point is checkpointed
// (points/<loss>-lambda<L>/{model.pt,point.json,reconstructions.pt}) and a rerun skips finished
// points; the perceptual loss's feature network is kept there too. Writes "tradeoff.svg" and
// "reconstructions.png".
//
// In a world of P processes (util/distributed.h) every rank calls this with the same arguments
// and a sink with the same checkpoint folder: the points are shared out (each rank checkpoints its
// own, so a rerun skips every finished point), rank 0 trains the perceptual feature network the
// others load, and every rank returns the whole result, the figures of one process.
DefenseExperimentResult run_defense_experiment(const std::string& data_spec,
                                               const data::Splits& splits,
                                               const DefenseExperimentOptions& options,
                                               const Reporter& reporter, OutputSink& sink,
                                               torch::Device device = torch::kCPU,
                                               const dist::World& world = dist::single());

// results.json's "model", "points", "attacker" and "grid_rows" fields.
nlohmann::json to_json(const DefenseExperimentResult& result,
                       const DefenseExperimentOptions& options);

}  // namespace privaudit::experiments
