#include "privaudit/attacks/weights/stationarity.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "privaudit/attacks/image_priors.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::attacks {

void StationarityOptions::validate() const {
  require_usage(iterations >= 0, "--stationarity-steps must be non-negative");
  require_usage(learning_rate > 0 && std::isfinite(learning_rate),
                "--stationarity-lr must be a positive number");
  require_usage(lambda_learning_rate > 0 && std::isfinite(lambda_learning_rate),
                "stationarity lambda learning rate must be positive");
  require_usage(lambda_init > 0 && std::isfinite(lambda_init),
                "stationarity lambda init must be positive");
  require_usage(lambda_min >= 0 && std::isfinite(lambda_min),
                "stationarity lambda_min must be >= 0");
  require_usage(weight_range >= 0 && std::isfinite(weight_range),
                "stationarity range weight must be non-negative");
}

StationarityResult refine_by_stationarity(models::Classifier& model,
                                          const torch::Tensor& candidates,
                                          const torch::Tensor& labels,
                                          const StationarityOptions& options, Progress& progress) {
  options.validate();
  if (candidates.dim() != 4 || labels.dim() != 1 || labels.size(0) != candidates.size(0) ||
      candidates.size(0) < 1) {
    throw UsageError("stationarity refinement needs N x C x H x W candidates and N labels");
  }
  const auto device = model.device();
  models::TrainingModeGuard eval_mode(model, false);
  std::vector<torch::Tensor> theta, weights;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad() || !p.is_floating_point()) continue;
    weights.push_back(p);
    theta.push_back(p.detach());
  }
  if (weights.empty()) throw Error("stationarity refinement: the model has no trainable weights");
  double theta_norm = 0;
  for (const auto& t : theta) theta_norm += t.pow(2).sum().item<double>();
  if (!(theta_norm > 0)) throw Error("stationarity refinement: the model's weights are all zero");

  const int64_t n = candidates.size(0);
  const auto y = labels.to(device, torch::kLong);
  auto images = candidates.detach().to(device, torch::kFloat).clone().requires_grad_(true);
  torch::Generator rng = make_generator(options.seed);
  auto a = (torch::rand({n}, rng, torch::kFloat) * options.lambda_init)
               .sqrt()
               .to(device)
               .requires_grad_(true);
  torch::optim::Adam optimizer(
      std::vector<torch::optim::OptimizerParamGroup>{
          torch::optim::OptimizerParamGroup(
              {images}, std::make_unique<torch::optim::AdamOptions>(options.learning_rate)),
          torch::optim::OptimizerParamGroup(
              {a}, std::make_unique<torch::optim::AdamOptions>(options.lambda_learning_rate))},
      torch::optim::AdamOptions(options.learning_rate));

  StationarityResult result;
  result.residual.reserve(static_cast<size_t>(options.iterations));
  progress.start("stationarity", options.iterations);
  for (int it = 0; it < options.iterations; ++it) {
    const auto lambdas = a * a + options.lambda_min;
    const auto phi = classification_margin(model.forward(images), y);  // Phi_i
    const auto combination =
        torch::autograd::grad({(lambdas * phi).sum()}, weights, {}, /*retain_graph=*/true,
                              /*create_graph=*/true, /*allow_unused=*/true);
    auto residual = torch::zeros({}, images.options());
    for (size_t k = 0; k < theta.size(); ++k) {
      residual = residual + (combination[k].defined() ? (theta[k] - combination[k]).pow(2).sum()
                                                      : theta[k].pow(2).sum());
    }
    residual = residual / theta_norm;
    auto loss = residual;
    if (options.weight_range > 0) {
      loss = loss + options.weight_range *
                        (torch::relu(images - 1) + torch::relu(-images)).pow(2).sum() /
                        static_cast<double>(n);
    }
    const double value = residual.item<double>();
    if (!std::isfinite(value) || !std::isfinite(loss.item<double>())) {
      throw Error("stationarity refinement: the residual turned non-finite at iteration " +
                  std::to_string(it + 1));
    }
    // Gradients to the images and multipliers only: the classifier's .grad stays untouched.
    const auto grads = torch::autograd::grad({loss}, {images, a});
    images.mutable_grad() = grads[0];
    a.mutable_grad() = grads[1];
    optimizer.step();
    result.residual.push_back(value);
    char status[48];
    std::snprintf(status, sizeof status, "residual %.4f", value);
    progress.update(it + 1, status);
    if (time_budget_spent()) break;  // the images as refined so far
  }
  progress.finish();
  torch::NoGradGuard no_grad;
  result.images = images.detach().clamp(0, 1).cpu();
  result.lambdas = (a * a + options.lambda_min).detach().cpu();
  return result;
}

}  // namespace privaudit::attacks
