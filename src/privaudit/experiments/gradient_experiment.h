// The gradients-leak experiment (`privaudit gradients`): test images drawn as targets, split
// into batches, each batch's shared update handed to every chosen attack, the reconstructions
// scored against the targets, and the gradient audit per batch size.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/data/dataset.h"
#include "privaudit/defense/update_defense.h"
#include "privaudit/experiments/gradient_audit.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/classifier.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments {

struct GradientExperimentOptions {
  std::vector<std::string> attacks = {"dlg", "idlg", "ig"};  // registry names, in order
  std::vector<int64_t> batch_sizes = {1};
  int64_t targets = 0;           // test images drawn by `seed`; 0 = the largest batch size
  std::vector<int64_t> indices;  // or these test images, by position
  attacks::AttackBudget budget;  // its seed is ignored: batch k of a run gets seed + k
  attacks::AttackerKnowledge knowledge;
  bool train_mode = false;  // clients compute their gradients in train mode
  // What the client does to its update before sending it (clip + noise, pruning, quantisation);
  // the attacks run on the defended update. Batch k's noise is seeded with seed + k.
  defense::UpdateDefense update_defense;
  bool audit = true;        // run the gradient audit after the attacks
  // Skip an attack on a batch whose every image an earlier attack (in --attack order: the
  // closed-form ones first) already recovered exactly and certified: none can do better.
  bool skip_certified = true;
  double attacker_distance = GradientAuditOptions().attacker_distance;
  int audit_probes = GradientAuditOptions().probes;
  int audit_probe_iterations = GradientAuditOptions().probe_iterations;
  int64_t audit_pool = 256;  // the first test images the audit draws its batches from
  uint64_t seed = 0;

  // Throws UsageError naming the flag (the command's flag names are the options' names).
  void validate() const;
};

// One attack at one batch size, averaged over the floor(N / B) batches it applies to.
struct GradientRun {
  std::string attack;
  int64_t batch_size = 1;
  int64_t batches = 0;
  // Batches whose update met the attack's preconditions (closed-form attacks); the figures
  // average over their targets only, and are NaN when there are none.
  int64_t applicable_batches = 0;
  std::string not_applicable;   // why, when no batch was applicable
  int64_t skipped_batches = 0;  // batches an earlier attack had certified whole (skip_certified)
  std::string skipped;          // by which attack
  double psnr = 0, ssim = 0, mse = 0;
  int64_t exact = 0;  // targets recovered exactly, self-certified without ground truth
  double label_accuracy = 0;
  double iterations = 0;  // mean per batch
  double seconds = 0;
  double gradient_distance = 0;  // mean final distance
  int restarts = 0;
  int failed_batches = 0;
  std::string grid;                         // the image grid's file name ("" without images)
  std::vector<std::string> attacker_knows;  // the threat model's knowledge
  nlohmann::json details = nlohmann::json::array();  // the attack's details, per batch
  // Per target (in target order, floor(N / B) * B of them): PSNR, SSIM (NaN where the attack
  // did not apply), certificate, and the matched reconstruction (N x C x H x W).
  std::vector<double> target_psnr, target_ssim;
  std::vector<bool> target_certified;
  torch::Tensor matched;

  // Appends `count` targets the attack did not score (not applicable, skipped): NaN, uncertified.
  void add_unscored(int64_t count);
  // Appends the targets of `score` in target order, each certified when the reconstruction it was
  // matched with was certified by `result`; returns whether all of them were.
  bool add_scored(const metrics::ReconstructionScore& score, const attacks::Reconstruction& result);
};

// The strongest attack per target at one batch size: what the audit reports (an audit never
// reports less than an attack of the same run achieved).
struct StrongestAttack {
  int64_t batch_size = 1;
  std::vector<std::string> attack;  // per target: the attack with the highest PSNR on it
  std::vector<double> psnr, ssim;   // per target: that attack's figures
  std::vector<bool> certified;      // per target: any attack certified it exact
  double mean_psnr = 0, median_psnr = 0, mean_ssim = 0;
  int64_t exact = 0;
  std::string grid;  // "grid_strongest_batch<B>.png"
};

// The audit at one batch size, with its wall time.
struct BatchAudit {
  int64_t batch_size = 1;
  GradientAudit audit;
  double seconds = 0;
  // The strongest attack's mean PSNR at this batch size and the risk it demonstrates through
  // the audit's PSNR-to-risk mapping; audit.predicted_psnr and audit.risk are never below them.
  double attack_psnr = std::numeric_limits<double>::quiet_NaN();
  double attack_risk = 0;
  // false when no attack ran at this batch size (none applied or scored): "not measured".
  bool attack_measured = true;
  // false when the audit could not run (its pool is smaller than two batches); then `audit`
  // is empty, `not_audited` says why, and the entry reads "not measured".
  bool audited = true;
  std::string not_audited;
};

struct GradientExperimentResult {
  std::vector<int64_t> target_indices;
  std::vector<GradientRun> runs;
  std::vector<StrongestAttack> strongest;  // one per batch size
  std::vector<BatchAudit> audits;
  double risk = 0;  // the largest audit risk over batch sizes
};

// Runs the experiment on `model` with targets from `test`. Writes one grid per run with images
// ("grid_<attack>_batch<B>.png"), one per batch size for the strongest attack
// ("grid_strongest_batch<B>.png") and "audit_relation.svg" to `sink`.
//
// In a world of P processes (util/distributed.h) every rank calls this with the same arguments:
// the batches (batch k of each batch size, its attacks' seed + k) and the audits (one per batch
// size) are shared out by image count, and every rank returns the whole result, the same figures
// a single process computes; give the ranks other than 0 a sink that discards.
GradientExperimentResult run_gradient_experiment(models::Classifier& model,
                                                 const data::Dataset& test,
                                                 const GradientExperimentOptions& options,
                                                 const Reporter& reporter, OutputSink& sink,
                                                 const dist::World& world = dist::single());

// Per target, the attack of `runs` at `batch` with the highest PSNR on it; certified when any
// attack certified it. Writes the grid of targets over those reconstructions as `grid`.
StrongestAttack strongest_attack(const std::vector<GradientRun>& runs, int64_t batch,
                                 const torch::Tensor& target_images, const std::string& grid,
                                 const Reporter& reporter, OutputSink& sink);

void to_json(nlohmann::json& j, const GradientRun& run);
void to_json(nlohmann::json& j, const BatchAudit& audit);
void to_json(nlohmann::json& j, const StrongestAttack& strongest);
// results.json's "targets", "train_mode", "runs" and "audit" fields.
nlohmann::json to_json(const GradientExperimentResult& result,
                       const GradientExperimentOptions& options);

}  // namespace privaudit::experiments
