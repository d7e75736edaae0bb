// The federated-learning experiment (`privaudit federated`): M clients, each holding N test images,
// train the server's model locally (FedAvg: S SGD steps of b images) and send their updates. The
// server attacks what it sees: one client's update, and the mean of all M (what secure
// aggregation leaves it). An honest server runs the gradient attacks on the update read as a
// gradient and Inverting Gradients with the local steps unrolled; a malicious one sends a model
// with an imprint block (calibrated on its own images) and reads images off the update.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/data/dataset.h"
#include "privaudit/defense/update_defense.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/models/classifier.h"
#include "privaudit/threat/malicious_server.h"
#include "privaudit/threat/model_update.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments {

struct FederatedExperimentOptions {
  int64_t clients = 1;            // M
  int64_t images_per_client = 4;  // N
  attacks::LocalTraining training;
  bool secure_aggregation = false;  // the server sees only the mean of the M updates
  attacks::Server server = attacks::Server::kHonest;
  int64_t bins = 64;                  // imprint bins
  int64_t calibration_images = 1024;  // the server's own images (training split) for the bins
  // The server is given the local hyper-parameters and each step's labels (breaching's
  // provide_local_hyperparams); without the labels they are inferred from the update.
  bool labels_known = true;
  // Names in attacks::federated_attacks(): the gradient attacks (run on the update read as a
  // gradient), "unrolled-ig" and "imprint".
  std::vector<std::string> attacks = {"linear-layer", "positional", "ig", "unrolled-ig", "imprint"};
  attacks::AttackBudget budget;  // iterations, restarts, TV; seed ignored (from `seed`)
  // Under secure aggregation, also attack every client's own update (which the server cannot
  // see) to show what the aggregation bought.
  bool compare_with_one_client = true;
  // What each client does to its update before sending it (clip, prune, quantise, noise; off by
  // default): every attack then runs on the defended updates and on their secure aggregate.
  // Client m's noise is seeded with seed + m.
  defense::UpdateDefense update_defense;
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the flag
};

// The attacks on one thing the server sees: "client" (every client's own update, attacked one by
// one: per target the strongest attack on its client's update, over all M x N targets),
// "aggregate" (the mean of all M, present when M > 1), and with M > 1 each client's own
// ("client1", ..., "clientM", after those two).
struct FederatedView {
  std::string view;
  int64_t images = 0;  // the targets behind it
  std::vector<GradientRun> runs;
  StrongestAttack strongest;
  double recovered_fraction = 0;  // targets the strongest attack recovered (PSNR >= 40 dB)
  double expected_fraction = std::numeric_limits<double>::quiet_NaN();  // imprint's formula
};

struct FederatedExperimentResult {
  std::vector<int64_t> target_indices;  // client by client
  std::vector<FederatedView> views;
  std::string server_sees;  // "client" or "aggregate": the view the verdict rests on
  std::string model_summary;
  int64_t calibration_images = 0;  // the imprint server's: min(train split, requested); else 0
};

// `train` supplies the imprint calibration images (never targets); targets come from `test`.
//
// In a world of P > 1 processes (util/distributed.h) the round is real message passing: rank 0
// is the server and attacks what it receives, ranks 1..P-1 are the clients (client m on rank
// 1 + m mod (P - 1)), which receive the model by broadcast, train, and send their updates by a
// gather, or, under secure aggregation, into an all-reduce sum. The server's figures are those
// of one process; the clients return an empty result.
FederatedExperimentResult run_federated_experiment(models::Classifier& model,
                                                   const data::Dataset& train,
                                                   const data::Dataset& test,
                                                   const FederatedExperimentOptions& options,
                                                   const Reporter& reporter, OutputSink& sink,
                                                   const dist::World& world = dist::single());

nlohmann::json to_json(const FederatedExperimentResult& result,
                       const FederatedExperimentOptions& options);

// One FedAvg setting of a sweep: what the clients do and what the server sees.
struct FederatedSetting {
  std::string label;  // "steps2", "batch1", "clients8": prefixes its grids
  int64_t clients = 1;
  int64_t images_per_client = 4;
  attacks::LocalTraining training;
  bool secure_aggregation = false;
};

// The audit's grid, each against the plain gradient of 4 images (steps1):
//   local steps 1, 2, 5 of the full batch of 4 ("steps<S>");
//   local batch 1, 2 for one epoch over 4 images ("batch<b>");
//   1, 2, 4, 8 clients of 1 image, one step, under secure aggregation ("clients<M>"; 1 is the
//   plain batch-1 gradient).
// Learning rate, momentum and weight decay come from `base`.
std::vector<FederatedSetting> federated_audit_grid(const attacks::LocalTraining& base);

struct FederatedSweepEntry {
  FederatedSetting setting;
  FederatedExperimentResult result;
  double seconds = 0;
};

// Runs the experiment for each setting (attacks, budget, server, seed from `options`); grids are
// written as "<label>_<name>".
std::vector<FederatedSweepEntry> run_federated_sweep(
    models::Classifier& model, const data::Dataset& train, const data::Dataset& test,
    const FederatedExperimentOptions& options, const std::vector<FederatedSetting>& settings,
    const Reporter& reporter, OutputSink& sink, const dist::World& world = dist::single());

// results.json's "sweep": per setting its parameters, the view the server sees and its strongest
// attack's mean and median PSNR, recovered fraction and winning attacks.
nlohmann::json to_json(const std::vector<FederatedSweepEntry>& sweep);

}  // namespace privaudit::experiments
