#include "privaudit/defense/dp_sgd.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "privaudit/train/per_example.h"
#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/timer.h"

namespace privaudit::defense {

nlohmann::json DpOptions::to_json() const {
  return {{"noise_multiplier", noise_multiplier},
          {"clip_norm", clip_norm},
          {"delta", delta},
          {"target_epsilon", target_epsilon},
          {"physical_batch", physical_batch},
          {"conversion", conversion_name(conversion)},
          {"sampling", "poisson"}};
}

nlohmann::json PrivacyReport::to_json() const {
  return {{"mechanism", "dp-sgd"},
          {"sampling", "poisson"},
          {"accountant", "rdp"},
          {"conversion", conversion_name(conversion)},
          {"noise_multiplier", noise_multiplier},
          {"clip_norm", clip_norm},
          {"sample_rate", sample_rate},
          {"steps", steps},
          {"delta", delta},
          {"epsilon", epsilon},
          {"rdp_order", order}};
}

int64_t dp_steps_per_epoch(int64_t train_size, int64_t batch_size) {
  return std::max<int64_t>(1, std::llround(double(train_size) / double(batch_size)));
}

PrivacyReport plan_privacy(const DpOptions& options, const models::BuiltinClassifier& model,
                           int64_t train_size, int64_t batch_size, int epochs) {
  if (!(options.clip_norm > 0) || !std::isfinite(options.clip_norm))
    throw UsageError("--dp-clip must be positive, got " + std::to_string(options.clip_norm));
  if (options.target_epsilon < 0) throw UsageError("--dp-epsilon must be positive");
  if (options.target_epsilon == 0 &&
      (!(options.noise_multiplier > 0) || !std::isfinite(options.noise_multiplier))) {
    throw UsageError("--dp-noise must be positive (or give --dp-epsilon), got " +
                     std::to_string(options.noise_multiplier));
  }
  if (options.physical_batch <= 0) throw UsageError("--dp-physical-batch must be positive");
  if (batch_size > train_size) {
    throw UsageError("--batch-size " + std::to_string(batch_size) +
                     " is larger than the training set (" + std::to_string(train_size) + ")");
  }
  if (!(options.delta > 0) || !(options.delta * double(train_size) < 1.0)) {
    char line[200];
    std::snprintf(line, sizeof line,
                  "--dp-delta %g must be positive and below 1/N = %g (N = %lld training images)",
                  options.delta, 1.0 / double(train_size), static_cast<long long>(train_size));
    throw UsageError(line);
  }
  train::check_per_example_model(model);
  PrivacyReport report;
  report.clip_norm = options.clip_norm;
  report.sample_rate = double(batch_size) / double(train_size);
  report.steps = dp_steps_per_epoch(train_size, batch_size) * epochs;
  report.delta = options.delta;
  report.conversion = options.conversion;
  report.noise_multiplier = options.target_epsilon > 0
                                ? noise_for_epsilon(options.target_epsilon, report.sample_rate,
                                                    report.steps, options.delta, options.conversion)
                                : options.noise_multiplier;
  const auto spent = dp_sgd_epsilon(report.sample_rate, report.noise_multiplier, report.steps,
                                    options.delta, options.conversion);
  report.epsilon = spent.epsilon;
  report.order = spent.order;
  return report;
}

namespace {

void set_dp_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// One DP-SGD step on the examples `indices` (a Poisson sample): returns their summed loss and
// count of correct predictions.
std::pair<double, int64_t> dp_step(models::BuiltinClassifier& model, const data::Dataset& train,
                                   const torch::Tensor& indices, const DpOptions& dp,
                                   double noise_multiplier, double expected_batch,
                                   torch::optim::Optimizer& optimizer, torch::Generator& noise) {
  const auto parameters = model.parameters();
  const auto device = model.device();
  std::vector<torch::Tensor> sum;
  for (const auto& p : parameters) sum.push_back(torch::zeros_like(p));
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t start = 0; start < indices.size(0); start += dp.physical_batch) {
    const auto chunk = indices.slice(0, start, start + dp.physical_batch);
    const auto images = train.images.index_select(0, chunk).to(device);
    const auto labels = train.labels.index_select(0, chunk).to(device);
    const auto clipped = train::clipped_gradient_sum(model, images, labels, dp.clip_norm);
    for (size_t p = 0; p < sum.size(); ++p) sum[p] += clipped.sum[p];
    loss_sum += torch::nn::functional::cross_entropy(
                    clipped.logits, labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += clipped.logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  const double noise_std = noise_multiplier * dp.clip_norm;
  for (size_t p = 0; p < parameters.size(); ++p) {
    auto gradient = (sum[p] + noise_std * randn_on(sum[p].sizes(), noise, device)) / expected_batch;
    parameters[p].mutable_grad() = gradient.to(parameters[p].dtype());
  }
  optimizer.step();
  return {loss_sum, correct};
}

}  // namespace

train::TrainResult train_private(models::BuiltinClassifier& model, const data::Splits& splits,
                                 const train::TrainOptions& options, const DpOptions& dp,
                                 PrivacyReport& report, Progress& progress,
                                 const std::function<void(const train::EpochStats&)>& on_epoch) {
  if (options.epochs <= 0) throw UsageError("--epochs must be positive");
  if (options.batch_size <= 0) throw UsageError("--batch-size must be positive");
  if (!(options.learning_rate > 0)) throw UsageError("--lr must be positive");
  if (options.augment) throw UsageError("--augment is not supported with DP-SGD");
  const int64_t n = splits.train.size();
  report = plan_privacy(dp, model, n, options.batch_size, options.epochs);
  const double q = report.sample_rate;
  const int64_t steps_per_epoch = dp_steps_per_epoch(n, options.batch_size);
  auto optimizer = train::make_optimizer(model.parameters(), options);
  // What decides the weights: the trainer's options and the resolved DP settings.
  nlohmann::json state_options = options.to_json();
  state_options["dp"] = dp.to_json();
  state_options["dp"]["noise_multiplier"] = report.noise_multiplier;
  train::TrainResult result;
  if (!options.state_path.empty() && std::filesystem::exists(options.state_path)) {
    result.history = train::load_train_state(options.state_path, model, *optimizer, state_options);
    result.resumed_from_epoch = static_cast<int>(result.history.size());
  }
  const int last_epoch = options.stop_after_epoch > 0
                             ? std::min(options.epochs, options.stop_after_epoch)
                             : options.epochs;
  const Stopwatch started;
  ScopedGlobalSeed global_seed(options.seed);
  for (int epoch = result.resumed_from_epoch; epoch < last_epoch; ++epoch) {
    // Poisson samples and noise are drawn from (seed, epoch): a resumed run draws what an
    // uninterrupted one would have drawn.
    const uint64_t epoch_seed = options.seed * 1000003ULL + static_cast<uint64_t>(epoch);
    global_seed.reseed(epoch_seed);
    model.reseed_noise(epoch_seed);
    auto sampler = make_generator(epoch_seed ^ 0x5eed5a3b1e5ULL);
    auto noise = make_generator(epoch_seed ^ 0x9015e0ULL);
    const double lr = train::learning_rate_at(options, epoch);
    set_dp_learning_rate(*optimizer, lr);
    model.set_training(true);
    const Stopwatch epoch_start;
    progress.start("DP epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                   steps_per_epoch);
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      const auto chosen = (rand_on({n}, sampler, torch::kCPU) < q).nonzero().flatten();
      const auto [loss, right] = dp_step(model, splits.train, chosen, dp, report.noise_multiplier,
                                         q * double(n), *optimizer, noise);
      if (!std::isfinite(loss)) {
        throw Error("DP-SGD diverged: loss is " + std::to_string(loss) + " at epoch " +
                    std::to_string(epoch + 1) + " (lower --lr)");
      }
      loss_sum += loss;
      correct += right;
      seen += chosen.size(0);
      progress.update(step + 1,
                      "loss " + std::to_string(loss_sum / std::max<int64_t>(seen, 1)).substr(0, 6));
    }
    progress.finish();
    train::EpochStats stats;
    stats.epoch = epoch + 1;
    stats.seconds = epoch_start.seconds();
    stats.loss = loss_sum / double(std::max<int64_t>(seen, 1));
    stats.train_accuracy = double(correct) / double(std::max<int64_t>(seen, 1));
    stats.test_accuracy = options.evaluate
                              ? models::accuracy(model, splits.test.images, splits.test.labels)
                              : std::numeric_limits<double>::quiet_NaN();
    stats.learning_rate = lr;
    stats.samples_per_second = double(seen) / std::max(stats.seconds, 1e-9);
    result.history.push_back(stats);
    if (!options.state_path.empty())
      train::save_train_state(options.state_path, model, *optimizer, state_options, result.history);
    if (on_epoch) on_epoch(stats);
  }
  model.set_training(false);
  result.seconds = started.seconds();
  if (options.evaluate) {
    result.test_accuracy = models::accuracy(model, splits.test.images, splits.test.labels);
    result.train_accuracy = models::accuracy(model, splits.train.images, splits.train.labels);
  } else {
    result.test_accuracy = result.train_accuracy = std::numeric_limits<double>::quiet_NaN();
  }
  return result;
}

}  // namespace privaudit::defense
