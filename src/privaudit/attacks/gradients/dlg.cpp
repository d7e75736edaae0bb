#include "privaudit/attacks/gradients/dlg.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::attacks {
namespace {

AttackTrial run_trial(models::Classifier& model, const Gradients& shared, int64_t batch_size,
                      const torch::Tensor& labels, const DlgOptions& options, uint64_t seed,
                      Progress& progress) {
  auto generator = make_generator(seed);
  const auto shape = model.input_shape().with_batch(batch_size);
  auto dummy = torch::randn(shape, generator).to(model.device()).requires_grad_(true);
  std::vector<torch::Tensor> variables{dummy};
  torch::Tensor label_logits;
  if (!labels.defined()) {
    label_logits = torch::randn({batch_size, model.num_classes()}, generator).to(model.device());
    label_logits.requires_grad_(true);
    variables.push_back(label_logits);
  }
  const auto distance_of = [&]() {
    const auto targets = labels.defined() ? labels : torch::softmax(label_logits, 1);
    return squared_l2_distance(parameter_gradients(model, dummy, targets, true), shared);
  };

  AttackTrial trial;
  auto lbfgs_options = torch::optim::LBFGSOptions(options.learning_rate)
                           .max_iter(options.evaluations_per_step)
                           .history_size(options.history);
  if (options.strong_wolfe) lbfgs_options.line_search_fn("strong_wolfe");
  torch::optim::LBFGS optimizer(variables, lbfgs_options);
  // Each call sets fresh gradients, copied: autograd may hand back a view (a TorchScript
  // Flatten's backward does), and the optimiser's zero_grad cannot detach a view in place.
  const auto closure = [&]() -> torch::Tensor {
    auto distance = distance_of();
    const auto grads = torch::autograd::grad({distance}, variables);
    for (size_t i = 0; i < variables.size(); ++i) variables[i].mutable_grad() = grads[i].clone();
    return distance;
  };

  if (!std::isfinite(distance_of().item<double>())) {
    trial.finite = false;
    return trial;
  }
  double best = std::numeric_limits<double>::infinity();
  int since_best = 0;
  for (int step = 1; step <= options.iterations; ++step) {
    optimizer.step(closure);
    const double distance = distance_of().item<double>();
    if (!std::isfinite(distance) || !all_finite(variables)) {
      trial.finite = false;
      return trial;
    }
    trial.curve.push_back(distance);
    trial.iterations = step;
    if (options.on_iteration) options.on_iteration(step, distance, dummy.detach().clamp(0, 1));
    char status[64];
    std::snprintf(status, sizeof status, "distance %.3g", distance);
    progress.update(step, status);
    if (distance < best * (1 - options.min_improvement)) {
      best = distance;
      since_best = 0;
    } else if (++since_best >= options.patience) {
      break;
    }
    if (distance < options.tolerance) break;
    if (time_budget_spent()) break;  // stop with what this trial has
  }
  trial.score = trial.curve.empty() ? std::numeric_limits<double>::infinity() : trial.curve.back();
  trial.final_distance = trial.score;
  trial.images = dummy.detach().clamp(0, 1);
  trial.labels = labels.defined() ? labels : label_logits.detach().argmax(1);
  return trial;
}

}  // namespace

void DlgOptions::validate() const {
  if (iterations < 1)
    throw UsageError("DLG iterations must be at least 1, got " + std::to_string(iterations));
  if (evaluations_per_step < 1) throw UsageError("DLG evaluations per step must be at least 1");
  if (history < 1) throw UsageError("DLG L-BFGS history must be at least 1");
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    throw UsageError("DLG learning rate must be positive and finite, got " +
                     std::to_string(learning_rate));
  }
  if (patience < 1) throw UsageError("DLG patience must be at least 1");
  if (!(min_improvement >= 0 && min_improvement < 1))
    throw UsageError("DLG min improvement must be in [0, 1)");
  if (trials < 1) throw UsageError("DLG trials must be at least 1, got " + std::to_string(trials));
  if (nan_retries < 0) throw UsageError("DLG NaN retries must not be negative");
}

Reconstruction run_dlg(models::Classifier& model, const Gradients& shared, int64_t batch_size,
                       const torch::Tensor& labels, const DlgOptions& options, Progress& progress) {
  options.validate();
  check_shared_gradients(model, shared, batch_size);
  if (labels.defined() && (labels.dim() != 1 || labels.size(0) != batch_size)) {
    throw Error("DLG labels must be " + std::to_string(batch_size) + " class indices");
  }
  models::TrainingModeGuard mode(model, options.train_mode);
  const auto label_tensor = labels.defined() ? labels.to(torch::kLong).to(model.device()) : labels;
  return keep_best_trial(
      "DLG", options.trials, options.nan_retries, options.seed, options.iterations,
      model.input_shape(), batch_size, progress, [&](uint64_t seed) {
        return run_trial(model, shared, batch_size, label_tensor, options, seed, progress);
      });
}

}  // namespace privaudit::attacks
