#include "privaudit/attacks/gradients/gradient_matching.h"

#include <limits>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::attacks {

torch::Tensor squared_l2_distance(const Gradients& a, const Gradients& b) {
  auto total = torch::zeros({}, a.front().options());
  for (size_t i = 0; i < a.size(); ++i) total = total + (a[i] - b[i]).pow(2).sum();
  return total;
}

torch::Tensor cosine_distance(const Gradients& a, const Gradients& b) {
  auto dot = torch::zeros({}, a.front().options());
  auto norm_a = dot, norm_b = dot;
  for (size_t i = 0; i < a.size(); ++i) {
    dot = dot + (a[i] * b[i]).sum();
    norm_a = norm_a + a[i].pow(2).sum();
    norm_b = norm_b + b[i].pow(2).sum();
  }
  return cosine_distance_from(dot, norm_a, norm_b);
}

torch::Tensor cosine_distance_from(const torch::Tensor& dot, const torch::Tensor& squared_norm_a,
                                   const torch::Tensor& squared_norm_b) {
  return 1 - dot / (squared_norm_a.sqrt() * squared_norm_b.sqrt() + 1e-30);
}

void check_shared_gradients(models::Classifier& model, const Gradients& shared,
                            int64_t batch_size) {
  if (batch_size < 1)
    throw Error("batch size must be at least 1, got " + std::to_string(batch_size));
  const auto parameters = model.parameters();
  if (shared.size() != parameters.size()) {
    throw Error("shared gradient has " + std::to_string(shared.size()) +
                " tensors, the model has " + std::to_string(parameters.size()) + " parameters");
  }
  for (size_t i = 0; i < shared.size(); ++i) {
    if (!shared[i].defined() || shared[i].sizes() != parameters[i].sizes()) {
      throw Error("shared gradient tensor " + std::to_string(i) +
                  " does not have the shape of the model's parameter");
    }
  }
}

bool all_finite(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (t.defined() && !torch::isfinite(t).all().item<bool>()) return false;
  }
  return true;
}

Reconstruction keep_best_trial(const std::string& name, int trials, int nan_retries, uint64_t seed,
                               int iterations, const models::InputShape& image, int64_t batch_size,
                               Progress& progress,
                               const std::function<AttackTrial(uint64_t)>& run) {
  Reconstruction result;
  int retries_left = nan_retries;
  int started = 0;
  bool have_result = false;
  double best = std::numeric_limits<double>::infinity();
  for (int kept = 0; kept < trials;) {
    progress.start(name + " trial " + std::to_string(started + 1), iterations);
    auto trial = run(seed + 1000003ULL * static_cast<uint64_t>(started));
    progress.finish();
    ++started;
    if (!trial.finite || !trial.images.defined()) {
      if (retries_left-- > 0) continue;
      break;
    }
    ++kept;
    if (!have_result || trial.score < best) {
      best = trial.score;
      result.images = trial.images;
      result.labels = trial.labels;
      result.distance_curve = std::move(trial.curve);
      result.final_distance = trial.final_distance;
      result.iterations = trial.iterations;
      have_result = true;
    }
  }
  result.restarts = started - 1;
  if (!have_result) {
    result.failed = true;
    result.failure =
        "every " + name + " trial produced NaN/inf (" + std::to_string(started) + " tried)";
    result.images = torch::zeros(image.with_batch(batch_size));
    result.labels = torch::full({batch_size}, -1, torch::kLong);
  }
  return result;
}

}  // namespace privaudit::attacks
