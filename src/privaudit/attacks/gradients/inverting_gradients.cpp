#include "privaudit/attacks/gradients/inverting_gradients.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/attacks/image_priors.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::attacks {
namespace {

// The kept images are the ones with the lowest cost (distance + TV) seen; the trial's score.
AttackTrial run_trial(const GradientDistance& objective, const models::InputShape& shape,
                      int64_t batch_size, torch::Device device,
                      const InvertingGradientsOptions& options, uint64_t seed, Progress& progress) {
  auto generator = make_generator(seed);
  auto dummy = torch::rand(shape.with_batch(batch_size), generator).to(device);
  dummy.requires_grad_(true);
  torch::optim::Adam optimizer({dummy}, torch::optim::AdamOptions(options.learning_rate));
  const int milestones[] = {options.iterations * 3 / 8, options.iterations * 5 / 8,
                            options.iterations * 7 / 8};
  int next_milestone = 0;
  const auto set_learning_rate = [&](double lr) {
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    }
  };

  AttackTrial trial;
  double best_for_patience = std::numeric_limits<double>::infinity();
  int since_best = 0;
  for (int step = 1; step <= options.iterations; ++step) {
    optimizer.zero_grad();
    const auto evaluated = objective(dummy);
    const auto& distance = evaluated.distance;
    const auto cost = distance + options.total_variation * total_variation_l1(dummy);
    // An objective that brings its own gradient (distance detached) adds it to the prior's.
    auto grad = torch::autograd::grad({cost}, {dummy})[0];
    if (evaluated.gradient.defined()) grad = grad + evaluated.gradient;
    const double value = cost.item<double>();
    if (!std::isfinite(value) || !torch::isfinite(grad).all().item<bool>()) {
      trial.finite = false;
      return trial;
    }
    // The cost belongs to the images before this step: keep them if they are the best so far.
    if (value < trial.score) {
      trial.score = value;
      trial.images = dummy.detach().clone();
    }
    trial.curve.push_back(distance.item<double>());
    trial.iterations = step;
    if (options.on_iteration) options.on_iteration(step, trial.curve.back(), dummy.detach());
    dummy.mutable_grad() = options.signed_gradients ? grad.sign() : grad.clone();
    optimizer.step();
    {
      torch::NoGradGuard no_grad;
      dummy.clamp_(0, 1);
    }
    if (step % 10 == 0) {
      char status[64];
      std::snprintf(status, sizeof status, "cost %.3g", trial.score);
      progress.update(step, status);
    }

    bool advance = next_milestone < 3 && step >= milestones[next_milestone];
    if (options.patience > 0) {
      if (value < best_for_patience * (1 - options.min_improvement)) {
        best_for_patience = value;
        since_best = 0;
      } else if (++since_best >= options.patience) {
        if (next_milestone >= 3) break;
        advance = true;
      }
    }
    if (advance) {
      ++next_milestone;
      since_best = 0;
      set_learning_rate(options.learning_rate * std::pow(0.1, next_milestone));
    }
    if (time_budget_spent()) break;  // stop with the best images seen
  }
  if (!trial.curve.empty())
    trial.final_distance = *std::min_element(trial.curve.begin(), trial.curve.end());
  return trial;
}

}  // namespace

void InvertingGradientsOptions::validate() const {
  if (iterations < 1)
    throw UsageError("Inverting Gradients iterations must be at least 1, got " +
                     std::to_string(iterations));
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    throw UsageError("Inverting Gradients learning rate must be positive and finite, got " +
                     std::to_string(learning_rate));
  }
  if (!(total_variation >= 0) || !std::isfinite(total_variation)) {
    throw UsageError("Inverting Gradients total-variation weight must be non-negative, got " +
                     std::to_string(total_variation));
  }
  if (patience < 0) throw UsageError("Inverting Gradients patience must not be negative");
  if (!(min_improvement >= 0 && min_improvement < 1))
    throw UsageError("Inverting Gradients min improvement must be in [0, 1)");
  if (trials < 1)
    throw UsageError("Inverting Gradients trials must be at least 1, got " +
                     std::to_string(trials));
  if (nan_retries < 0) throw UsageError("Inverting Gradients NaN retries must not be negative");
}

Reconstruction run_inverting_gradients(models::Classifier& model, const Gradients& shared,
                                       int64_t batch_size, const torch::Tensor& labels,
                                       const InvertingGradientsOptions& options,
                                       Progress& progress) {
  options.validate();
  check_shared_gradients(model, shared, batch_size);
  if (labels.defined() && (labels.dim() != 1 || labels.size(0) != batch_size)) {
    throw Error("Inverting Gradients labels must be " + std::to_string(batch_size) +
                " class indices");
  }
  models::TrainingModeGuard mode(model, options.train_mode);
  const auto known =
      labels.defined() ? labels.to(torch::kLong) : infer_labels(model, shared, batch_size);
  const auto label_tensor = known.to(model.device());

  const GradientDistance objective = [&](const torch::Tensor& dummy) {
    return DistanceAndGradient{
        cosine_distance(parameter_gradients(model, dummy, label_tensor, true), shared), {}};
  };
  auto result = run_inverting_gradients_on(objective, model.input_shape(), batch_size,
                                           model.device(), options, progress);
  result.labels = known;
  return result;
}

Reconstruction run_inverting_gradients_on(const GradientDistance& objective,
                                          const models::InputShape& shape, int64_t count,
                                          torch::Device device,
                                          const InvertingGradientsOptions& options,
                                          Progress& progress) {
  options.validate();
  return keep_best_trial("Inverting Gradients", options.trials, options.nan_retries, options.seed,
                         options.iterations, shape, count, progress, [&](uint64_t seed) {
                           return run_trial(objective, shape, count, device, options, seed,
                                            progress);
                         });
}

}  // namespace privaudit::attacks
