// Supervised training of a built-in classifier, with per-epoch checkpoints that make an
// interrupted run resumable to the same final weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/models/builtin.h"
#include "privaudit/util/progress.h"

namespace privaudit::train {

enum class OptimizerKind { kAdam, kSgd };
enum class Schedule { kCosine, kStep, kConstant };

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 128;
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double learning_rate = 1e-3;
  double momentum = 0.9;  // SGD only
  double weight_decay = 0.0;
  Schedule schedule = Schedule::kCosine;  // kStep: x0.1 at 1/2 and 3/4 of the epochs
  bool augment = false;                   // random shifts of up to 2 pixels
  uint64_t seed = 0;
  // When set, the training state (weights, optimiser, history) is written here atomically after
  // every epoch, and an existing state file is continued from.
  std::string state_path;
  // Stop (with the state saved) once this many epochs are done, as an interrupted run would;
  // 0 runs to `epochs`. It says when to stop, not how to train, so it is not part of to_json()
  // and a later run with the same options resumes from the state.
  int stop_after_epoch = 0;
  // false: no test accuracy after each epoch (EpochStats::test_accuracy NaN) and no final
  // accuracies (TrainResult's NaN): for callers that measure the model themselves, such as the
  // reference models of membership inference, where these forward passes cost a third of the
  // training. Evaluation touches no weight and no generator, so it is not part of to_json().
  bool evaluate = true;

  // The options that decide the weights (a resumed run must match them).
  nlohmann::json to_json() const;
};

struct EpochStats {
  int epoch = 0;  // 1-based
  double loss = 0.0;
  double train_accuracy = 0.0;  // on the batches seen during the epoch
  double test_accuracy = 0.0;
  double learning_rate = 0.0;
  double samples_per_second = 0.0;
  double seconds = 0.0;
};

struct TrainResult {
  std::vector<EpochStats> history;
  double train_accuracy = 0.0;  // final model, eval mode, whole training split (NaN: !evaluate)
  double test_accuracy = 0.0;
  double seconds = 0.0;  // training time of this process (a resumed run counts its part)
  int resumed_from_epoch = 0;
};

// Default epochs of each architecture (reach the accuracy targets of the README on
// Fashion-MNIST in a few minutes on two cores).
int default_epochs(models::Arch arch);

// Trains `model` on splits.train, evaluating on splits.test after each epoch. `on_epoch` sees each
// epoch's figures (the command prints them). Throws Error when the loss turns NaN.
TrainResult train_classifier(models::BuiltinClassifier& model, const data::Splits& splits,
                             const TrainOptions& options, Progress& progress,
                             const std::function<void(const EpochStats&)>& on_epoch = {});

// The learning rate of 0-based `epoch` under the options' schedule, and the options' optimiser over
// `parameters` (also used to train models that are not built-in: train/reference_models).
double learning_rate_at(const TrainOptions& options, int epoch);
std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const TrainOptions& options);

// The training state of an interrupted run: weights, optimiser and history, written atomically,
// with `options` (the JSON of whatever decides the weights) that a resumed run must match.
void save_train_state(const std::string& path, models::BuiltinClassifier& model,
                      torch::optim::Optimizer& optimizer, const nlohmann::json& options,
                      const std::vector<EpochStats>& history);
// Restores a saved state into model and optimiser and returns its history; throws Error when it
// was written for another model or other options.
std::vector<EpochStats> load_train_state(const std::string& path, models::BuiltinClassifier& model,
                                         torch::optim::Optimizer& optimizer,
                                         const nlohmann::json& options);

std::string optimizer_name(OptimizerKind kind);
OptimizerKind parse_optimizer(const std::string& name);  // throws UsageError
std::string schedule_name(Schedule schedule);
Schedule parse_schedule(const std::string& name);  // throws UsageError

}  // namespace privaudit::train
