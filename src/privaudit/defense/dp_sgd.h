// DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy", Algorithm 1): every step
// takes a Poisson sample of the training set (each example with probability q = batch / N, what
// the accountant assumes), clips every example's gradient to L2 norm C, adds N(0, σ²C²) noise to
// the sum, divides by the expected batch size qN and hands that to the optimiser. Per-example
// gradients come from one backward pass per physical batch (train/per_example).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/defense/accountant.h"
#include "privaudit/models/builtin.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/progress.h"

namespace privaudit::defense {

struct DpOptions {
  double noise_multiplier = 0.0;  // σ; 0 with target_epsilon > 0: chosen by the accountant
  double clip_norm = 1.0;         // C
  double delta = 1e-5;            // must be below 1 / N
  double target_epsilon = 0.0;    // > 0: the smallest σ whose ε over the run is at most this
  int64_t physical_batch = 128;   // examples per backward pass (memory, not privacy)
  Conversion conversion = Conversion::kImproved;

  nlohmann::json to_json() const;
};

// What the run spent: σ used, the sampling rate, steps and ε at δ.
struct PrivacyReport {
  double noise_multiplier = 0.0;
  double clip_norm = 0.0;
  double sample_rate = 0.0;
  int64_t steps = 0;
  double delta = 0.0;
  double epsilon = 0.0;
  double order = 0.0;
  Conversion conversion = Conversion::kImproved;

  nlohmann::json to_json() const;
};

// Steps per epoch: round(N / batch), at least 1.
int64_t dp_steps_per_epoch(int64_t train_size, int64_t batch_size);

// Checks the options against the run (σ or C not positive, δ not below 1/N, a model with batch
// norm, an unreachable ε) and resolves σ: throws Error naming the flag.
PrivacyReport plan_privacy(const DpOptions& options, const models::BuiltinClassifier& model,
                           int64_t train_size, int64_t batch_size, int epochs);

// Trains `model` with DP-SGD: the options of train_classifier (epochs, batch = expected Poisson
// batch, optimiser, lr schedule, seed, state_path for --resume; augment is refused) plus the DP
// options. `report` receives the privacy spent.
train::TrainResult train_private(
    models::BuiltinClassifier& model, const data::Splits& splits,
    const train::TrainOptions& options, const DpOptions& dp, PrivacyReport& report,
    Progress& progress, const std::function<void(const train::EpochStats&)>& on_epoch = {});

}  // namespace privaudit::defense
