// privaudit train: train a built-in classifier and write a self-describing checkpoint.
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "privaudit/defense/dp_sgd.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/report/results.h"
#include "privaudit/train/trainer.h"

namespace privaudit::cli {
namespace {

struct TrainFlags {
  std::string arch;
  int epochs = 0;
  int64_t batch_size = 128;
  std::string optimizer = "adam";
  double learning_rate = 0;
  double weight_decay = 0;
  std::string schedule = "cosine";
  bool augment = false;
  double dropout = 0;
  bool batch_norm = false;
  bool group_norm = false;
  std::string activation;
  std::vector<int64_t> widths;
  // DP-SGD (defense/dp_sgd.h): on when --dp-noise or --dp-epsilon is given.
  defense::DpOptions dp;
  CLI::Option* dp_noise = nullptr;
  CLI::Option* dp_epsilon = nullptr;
  bool private_training() const { return dp_noise->count() > 0 || dp_epsilon->count() > 0; }
};

train::TrainOptions train_options(const TrainFlags& f, const models::ModelConfig& config,
                                  const CommonFlags& common) {
  train::TrainOptions options;
  options.epochs = f.epochs > 0 ? f.epochs : train::default_epochs(config.arch);
  options.batch_size = f.batch_size;
  options.optimizer = train::parse_optimizer(f.optimizer);
  options.learning_rate = f.learning_rate > 0
                              ? f.learning_rate
                              : (options.optimizer == train::OptimizerKind::kAdam ? 1e-3 : 0.05);
  options.weight_decay = f.weight_decay;
  options.schedule = train::parse_schedule(f.schedule);
  options.augment = f.augment;
  options.seed = common.seed;
  options.state_path = (std::filesystem::path(common.out) / "train_state.pt").string();
  return options;
}

nlohmann::json history_json(const train::TrainResult& result) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : result.history) {
    history.push_back({{"epoch", e.epoch},
                       {"loss", e.loss},
                       {"train_accuracy", e.train_accuracy},
                       {"test_accuracy", e.test_accuracy},
                       {"samples_per_second", e.samples_per_second},
                       {"seconds", e.seconds}});
  }
  return history;
}

int run_train(const TrainFlags& f, Context& ctx) {
  const auto& common = ctx.flags;
  const auto& splits = *ctx.splits;
  auto config = models::default_config(f.arch, model_input(splits), splits.train.num_classes());
  config.normalization = splits.normalization;
  config.dropout = f.dropout;
  config.batch_norm = f.batch_norm;
  config.group_norm = f.group_norm;
  if (!f.activation.empty()) config.activation = models::parse_activation(f.activation);
  if (!f.widths.empty()) config.widths = f.widths;
  config.validate();
  const auto options = train_options(f, config, common);

  torch::manual_seed(common.seed);
  models::BuiltinClassifier model(config);
  model.to(ctx.device);
  say(common, "training " + model.summary() + " (" + std::to_string(model.parameter_count()) +
                  " parameters) on " + splits.train.source + " (" +
                  std::to_string(splits.train.size()) + " images), " +
                  std::to_string(options.epochs) + " epochs");
  Progress progress("train", 0, !common.quiet);
  const auto on_epoch = [&](const train::EpochStats& e) {
    char line[200];
    std::snprintf(line, sizeof line,
                  "epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  %.0f samples/s", e.epoch,
                  options.epochs, e.loss, e.train_accuracy, e.test_accuracy, e.samples_per_second);
    say(common, line);
  };
  defense::PrivacyReport privacy;
  train::TrainResult result;
  if (f.private_training()) {
    if (f.dp_noise->count() > 0 && f.dp_epsilon->count() > 0)
      throw UsageError("--dp-noise and --dp-epsilon exclude each other: give one");
    if (f.dp_noise->count() > 0 && !(f.dp.noise_multiplier > 0))
      throw UsageError("--dp-noise must be positive");
    if (f.dp_epsilon->count() > 0 && !(f.dp.target_epsilon > 0))
      throw UsageError("--dp-epsilon must be positive");
    privacy =
        defense::plan_privacy(f.dp, model, splits.train.size(), options.batch_size, options.epochs);
    char line[240];
    std::snprintf(line, sizeof line,
                  "DP-SGD: noise multiplier %.4g, clip %.4g, Poisson rate %.4g, %lld steps: "
                  "epsilon %.3f at delta %g",
                  privacy.noise_multiplier, privacy.clip_norm, privacy.sample_rate,
                  static_cast<long long>(privacy.steps), privacy.epsilon, privacy.delta);
    say(common, line);
    result = defense::train_private(model, splits, options, f.dp, privacy, progress, on_epoch);
  } else {
    result = train::train_classifier(model, splits, options, progress, on_epoch);
  }
  if (result.resumed_from_epoch > 0)
    say(common, "resumed after epoch " + std::to_string(result.resumed_from_epoch));

  const auto model_path = (std::filesystem::path(common.out) / "model.pt").string();
  nlohmann::json meta = {{"dataset", report::dataset_json(common.data, splits)},
                         {"training", options.to_json()},
                         {"test_accuracy", result.test_accuracy},
                         {"train_accuracy", result.train_accuracy}};
  if (f.private_training()) meta["privacy"] = privacy.to_json();
  models::save_checkpoint(model_path, model, meta);
  double seconds = 0;
  for (const auto& e : result.history) seconds += e.seconds;
  auto& results = ctx.results;
  results["model"] = {{"file", model_path},
                      {"config", config.to_json()},
                      {"parameters", model.parameter_count()},
                      {"summary", model.summary()}};
  results["test_accuracy"] = result.test_accuracy;
  results["train_accuracy"] = result.train_accuracy;
  results["epochs"] = options.epochs;
  results["seconds"] = seconds;
  results["training"] = options.to_json();
  results["history"] = history_json(result);
  if (f.private_training()) results["privacy"] = privacy.to_json();
  char line[200];
  std::snprintf(line, sizeof line, "test accuracy %.4f, train accuracy %.4f; model written to %s",
                result.test_accuracy, result.train_accuracy, model_path.c_str());
  say(common, line);
  return 0;
}

Steps setup_train(CLI::App& app, CommonFlags&) {
  auto flags = std::make_shared<TrainFlags>();
  app.add_option("--arch", flags->arch, "Architecture: mlp, cnn, cnn-wide, vit, lenet")->required();
  app.add_option("--epochs", flags->epochs, "Epochs (0 = the architecture's default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", flags->batch_size, "Batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--optimizer", flags->optimizer, "adam or sgd")->capture_default_str();
  app.add_option("--lr", flags->learning_rate, "Learning rate (0 = 1e-3 for Adam, 0.05 for SGD)");
  app.add_option("--weight-decay", flags->weight_decay, "Weight decay")->capture_default_str();
  app.add_option("--schedule", flags->schedule, "Learning-rate schedule: cosine, step, constant")
      ->capture_default_str();
  app.add_flag("--augment", flags->augment, "Random shifts of up to 2 pixels");
  app.add_option("--dropout", flags->dropout, "Dropout rate in every block (0 = off)")
      ->capture_default_str();
  app.add_flag("--batch-norm", flags->batch_norm, "Batch normalisation in every block");
  app.add_flag("--group-norm", flags->group_norm,
               "Group normalisation in every block (per example: what DP-SGD uses instead of "
               "--batch-norm)");
  flags->dp_noise = app.add_option("--dp-noise", flags->dp.noise_multiplier,
                                   "DP-SGD: noise multiplier sigma (noise std = sigma * clip)");
  flags->dp_epsilon =
      app.add_option("--dp-epsilon", flags->dp.target_epsilon,
                     "DP-SGD: target epsilon; picks the smallest sigma that reaches it");
  app.add_option("--dp-clip", flags->dp.clip_norm, "DP-SGD: per-example gradient norm bound C")
      ->capture_default_str();
  app.add_option("--dp-delta", flags->dp.delta, "DP-SGD: delta (below 1/N)")->capture_default_str();
  app.add_option("--dp-physical-batch", flags->dp.physical_batch,
                 "DP-SGD: examples per backward pass (memory only)")
      ->capture_default_str();
  app.add_option("--activation", flags->activation,
                 "relu, leaky_relu, sigmoid, tanh, gelu (default: the architecture's)");
  app.add_option("--widths", flags->widths, "Layer widths (mlp) or conv channels (cnn)")
      ->delimiter(',');
  return {nullptr, [flags](Context& ctx) { return run_train(*flags, ctx); }};
}

const bool cmd_train_registered =
    register_command({"train", "Train a classifier (MLP, CNN, ViT) and write a checkpoint",
                      kData | kOutput | kResumable, setup_train});

}  // namespace
}  // namespace privaudit::cli
