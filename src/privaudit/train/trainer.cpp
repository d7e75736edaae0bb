#include "privaudit/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/timer.h"

namespace privaudit::train {

std::string optimizer_name(OptimizerKind kind) {
  return kind == OptimizerKind::kAdam ? "adam" : "sgd";
}

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "sgd") return OptimizerKind::kSgd;
  throw UsageError("--optimizer " + name + ": unknown (adam, sgd)");
}

std::string schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::kCosine:
      return "cosine";
    case Schedule::kStep:
      return "step";
    case Schedule::kConstant:
      return "constant";
  }
  return "?";
}

Schedule parse_schedule(const std::string& name) {
  if (name == "cosine") return Schedule::kCosine;
  if (name == "step") return Schedule::kStep;
  if (name == "constant") return Schedule::kConstant;
  throw UsageError("--schedule " + name + ": unknown (cosine, step, constant)");
}

nlohmann::json TrainOptions::to_json() const {
  return {{"epochs", epochs},
          {"batch_size", batch_size},
          {"optimizer", optimizer_name(optimizer)},
          {"learning_rate", learning_rate},
          {"momentum", momentum},
          {"weight_decay", weight_decay},
          {"schedule", schedule_name(schedule)},
          {"augment", augment},
          {"seed", seed}};
}

int default_epochs(models::Arch arch) {
  switch (arch) {
    case models::Arch::kMlp:
      return 8;
    case models::Arch::kCnn:
      return 8;
    case models::Arch::kVit:
      return 10;
    case models::Arch::kLenet:
      return 6;
  }
  return 8;
}

double learning_rate_at(const TrainOptions& options, int epoch /*0-based*/) {
  const double base = options.learning_rate;
  switch (options.schedule) {
    case Schedule::kConstant:
      return base;
    case Schedule::kStep: {
      double lr = base;
      if (epoch >= options.epochs / 2) lr *= 0.1;
      if (epoch >= (3 * options.epochs) / 4) lr *= 0.1;
      return lr;
    }
    case Schedule::kCosine:
      return 0.5 * base * (1.0 + std::cos(M_PI * epoch / std::max(1, options.epochs)));
  }
  return base;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const TrainOptions& options) {
  if (options.optimizer == OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::Adam>(
        parameters,
        torch::optim::AdamOptions(options.learning_rate).weight_decay(options.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(parameters,
                                             torch::optim::SGDOptions(options.learning_rate)
                                                 .momentum(options.momentum)
                                                 .weight_decay(options.weight_decay));
}

namespace {

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// Random shifts of up to 2 pixels per image (zero padding), drawn from `rng`.
torch::Tensor shift_images(const torch::Tensor& images, std::mt19937_64& rng) {
  const int64_t pad = 2;
  auto padded = torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0.0);
  auto out = torch::empty_like(images);
  const int64_t h = images.size(2), w = images.size(3);
  for (int64_t i = 0; i < images.size(0); ++i) {
    const int64_t dy = static_cast<int64_t>(rng() % (2 * pad + 1));
    const int64_t dx = static_cast<int64_t>(rng() % (2 * pad + 1));
    out[i].copy_(padded[i].slice(1, dy, dy + h).slice(2, dx, dx + w));
  }
  return out;
}

nlohmann::json history_json(const std::vector<EpochStats>& history) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : history) {
    out.push_back({{"epoch", e.epoch},
                   {"loss", e.loss},
                   {"train_accuracy", e.train_accuracy},
                   {"test_accuracy", e.test_accuracy},
                   {"learning_rate", e.learning_rate},
                   {"samples_per_second", e.samples_per_second},
                   {"seconds", e.seconds}});
  }
  return out;
}

std::vector<EpochStats> history_from_json(const nlohmann::json& json) {
  std::vector<EpochStats> history;
  for (const auto& e : json) {
    history.push_back({e.at("epoch").get<int>(), e.at("loss").get<double>(),
                       e.at("train_accuracy").get<double>(), e.at("test_accuracy").get<double>(),
                       e.at("learning_rate").get<double>(),
                       e.at("samples_per_second").get<double>(), e.at("seconds").get<double>()});
  }
  return history;
}

}  // namespace

void save_train_state(const std::string& path, models::BuiltinClassifier& model,
                      torch::optim::Optimizer& optimizer, const nlohmann::json& options,
                      const std::vector<EpochStats>& history) {
  const nlohmann::json meta = {{"options", options},
                               {"model", model.config().to_json()},
                               {"history", history_json(history)}};
  write_atomic_with(path, [&](const std::string& temporary) {
    torch::serialize::OutputArchive archive;
    archive.write("privaudit_train_state", c10::IValue(meta.dump()));
    torch::serialize::OutputArchive weights, optimizer_state;
    model.net()->save(weights);
    optimizer.save(optimizer_state);
    archive.write("weights", weights);
    archive.write("optimizer", optimizer_state);
    archive.save_to(temporary);
  });
}

std::vector<EpochStats> load_train_state(const std::string& path, models::BuiltinClassifier& model,
                                         torch::optim::Optimizer& optimizer,
                                         const nlohmann::json& options) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue meta_value;
    archive.read("privaudit_train_state", meta_value);
    const auto meta = nlohmann::json::parse(meta_value.toStringRef());
    if (meta.at("model") != model.config().to_json()) {
      throw Error(path + ": training state is for a different model; remove it or use --force");
    }
    auto saved = meta.at("options");
    const auto& wanted = options;
    if (saved != wanted) {
      throw Error(path + ": training state was written with other options (" + saved.dump() +
                  "); rerun with the same flags, or --force to start over");
    }
    torch::serialize::InputArchive weights, optimizer_state;
    archive.read("weights", weights);
    archive.read("optimizer", optimizer_state);
    model.net()->load(weights);
    optimizer.load(optimizer_state);
    return history_from_json(meta.at("history"));
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot resume from this training state: " +
                first_line(e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": cannot resume from this training state: " + std::string(e.what()));
  }
}

TrainResult train_classifier(models::BuiltinClassifier& model, const data::Splits& splits,
                             const TrainOptions& options, Progress& progress,
                             const std::function<void(const EpochStats&)>& on_epoch) {
  if (options.epochs <= 0) throw UsageError("--epochs must be positive");
  if (options.stop_after_epoch < 0) throw UsageError("stop_after_epoch must not be negative");
  if (options.batch_size <= 0) throw UsageError("--batch-size must be positive");
  if (!(options.learning_rate > 0)) throw UsageError("--lr must be positive");
  const auto shape = model.input_shape();
  if (splits.train.channels() != shape.channels || splits.train.height() != shape.height ||
      splits.train.width() != shape.width) {
    throw Error(splits.train.source + ": images are " + std::to_string(splits.train.channels()) +
                "x" + std::to_string(splits.train.height()) + "x" +
                std::to_string(splits.train.width()) + " but the model takes " +
                std::to_string(shape.channels) + "x" + std::to_string(shape.height) + "x" +
                std::to_string(shape.width));
  }
  const auto device = model.device();
  auto optimizer = make_optimizer(model.parameters(), options);
  TrainResult result;
  if (!options.state_path.empty() && std::filesystem::exists(options.state_path)) {
    result.history = load_train_state(options.state_path, model, *optimizer, options.to_json());
    result.resumed_from_epoch = static_cast<int>(result.history.size());
  }
  const Stopwatch started;
  const int64_t n = splits.train.size();
  const int last_epoch = options.stop_after_epoch > 0
                             ? std::min(options.epochs, options.stop_after_epoch)
                             : options.epochs;
  // Dropout draws from LibTorch's global generator: seeded in this scope, given back afterwards.
  ScopedGlobalSeed global_seed(options.seed);
  for (int epoch = result.resumed_from_epoch; epoch < last_epoch; ++epoch) {
    // Every epoch reseeds from (seed, epoch): a resumed run draws exactly what an uninterrupted
    // one would have drawn.
    const uint64_t epoch_seed = options.seed * 1000003ULL + static_cast<uint64_t>(epoch);
    global_seed.reseed(epoch_seed);
    model.reseed_noise(epoch_seed);
    std::mt19937_64 augment_rng(epoch_seed);
    const double lr = learning_rate_at(options, epoch);
    set_learning_rate(*optimizer, lr);
    model.set_training(true);
    const Stopwatch epoch_start;
    const auto batches = data::batches(n, options.batch_size, /*shuffle=*/true, epoch_seed);
    progress.start("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                   static_cast<int64_t>(batches.size()));
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      auto images = splits.train.images.index_select(0, batches[b]);
      if (options.augment) images = shift_images(images, augment_rng);
      images = images.to(device);
      const auto labels = splits.train.labels.index_select(0, batches[b]).to(device);
      optimizer->zero_grad();
      const auto logits = model.forward(images);
      const auto loss = torch::nn::functional::cross_entropy(logits, labels);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) {
        throw Error("training diverged: loss is " + std::to_string(loss_value) + " at epoch " +
                    std::to_string(epoch + 1) + " (lower --lr)");
      }
      loss.backward();
      optimizer->step();
      loss_sum += loss_value * static_cast<double>(labels.size(0));
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      seen += labels.size(0);
      progress.update(static_cast<int64_t>(b + 1),
                      "loss " + std::to_string(loss_sum / seen).substr(0, 6));
    }
    progress.finish();
    const double seconds = epoch_start.seconds();
    EpochStats stats;
    stats.epoch = epoch + 1;
    stats.loss = loss_sum / static_cast<double>(seen);
    stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    stats.test_accuracy = options.evaluate
                              ? models::accuracy(model, splits.test.images, splits.test.labels)
                              : std::numeric_limits<double>::quiet_NaN();
    stats.learning_rate = lr;
    stats.seconds = seconds;
    stats.samples_per_second = static_cast<double>(seen) / std::max(seconds, 1e-9);
    result.history.push_back(stats);
    if (!options.state_path.empty())
      save_train_state(options.state_path, model, *optimizer, options.to_json(), result.history);
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

}  // namespace privaudit::train
