#include "privaudit/defense/adversarial_reconstruction.h"

#include <algorithm>
#include <cmath>

#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/timer.h"

namespace privaudit::defense {

std::string loss_kind_name(ReconstructionLossKind kind) {
  return kind == ReconstructionLossKind::kPixel ? "pixel" : "feature";
}

std::string objective_name(Objective objective) {
  return objective == Objective::kClassMean ? "class-mean" : "max-error";
}

Objective parse_objective(const std::string& name) {
  if (name == "class-mean") return Objective::kClassMean;
  if (name == "max-error") return Objective::kMaxError;
  throw UsageError("--objective " + name + ": unknown (class-mean, max-error)");
}

ReconstructionLossKind parse_loss_kind(const std::string& name) {
  if (name == "pixel") return ReconstructionLossKind::kPixel;
  if (name == "feature") return ReconstructionLossKind::kFeature;
  throw UsageError("--loss " + name + ": unknown (pixel, feature)");
}

torch::Tensor FeatureNetwork::distance(const torch::Tensor& a, const torch::Tensor& b) const {
  torch::Tensor total;
  for (const auto& cut : cuts) {
    const auto term = (model->features(a, cut) - model->features(b, cut)).pow(2).mean();
    total = total.defined() ? total + term : term;
  }
  return total;
}

void DefenseOptions::validate() const {
  if (!(lambda >= 0) || !std::isfinite(lambda))
    throw UsageError("--lambdas: each lambda must be >= 0");
  if (epochs <= 0) throw UsageError("--epochs must be positive");
  if (batch_size <= 0) throw UsageError("--batch-size must be positive");
  if (!(learning_rate > 0)) throw UsageError("--lr must be positive");
  if (adversary_steps <= 0) throw UsageError("--adversary-steps must be positive");
  if (head_epochs < 0) throw UsageError("--head-epochs must be >= 0");
  adversary.validate();
}

std::string default_cut(const models::Classifier& model) {
  const auto cuts = model.cut_points();
  if (cuts.empty()) throw Error("the model has no cut points to defend");
  return cuts[cuts.size() / 2];
}

namespace {

// Retrains the part after the cut on the frozen encoder's (noisy) output: the head chased a moving
// encoder during the game; the released encoder, and so the privacy figure, is not touched.
void fine_tune_head(models::BuiltinClassifier& model, const data::Dataset& train,
                    const DefenseOptions& options, const std::string& cut, Progress& progress) {
  if (options.head_epochs <= 0) return;
  std::vector<torch::Tensor> head;
  const auto& names = model.net()->stage_names();
  const size_t first = model.net()->stage_index(cut) + 1;
  for (const auto& child : model.net()->named_children()) {
    if (std::find(names.begin() + static_cast<std::ptrdiff_t>(first), names.end(), child.key()) ==
        names.end())
      continue;
    for (const auto& p : child.value()->parameters()) head.push_back(p);
  }
  if (head.empty()) return;
  torch::optim::Adam optimizer(head, torch::optim::AdamOptions(options.learning_rate));
  const auto device = model.device();
  ScopedGlobalSeed global_seed(options.seed);
  for (int epoch = 0; epoch < options.head_epochs; ++epoch) {
    const uint64_t epoch_seed =
        options.seed * 1000003ULL + 500009ULL + static_cast<uint64_t>(epoch);
    global_seed.reseed(epoch_seed);
    model.reseed_noise(epoch_seed);
    const auto batches =
        data::batches(train.size(), options.batch_size, /*shuffle=*/true, epoch_seed);
    progress.start(
        "head epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.head_epochs),
        static_cast<int64_t>(batches.size()));
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto images = train.images.index_select(0, batches[b]).to(device);
      const auto labels = train.labels.index_select(0, batches[b]).to(device);
      model.set_training(true);
      torch::Tensor features;
      {
        torch::NoGradGuard no_grad;
        features = model.features(images, cut);
      }
      optimizer.zero_grad();
      const auto loss =
          torch::nn::functional::cross_entropy(model.forward_from(features, cut), labels);
      if (!std::isfinite(loss.item<double>()))
        throw Error("head fine-tuning diverged (loss is not finite)");
      loss.backward();
      optimizer.step();
      progress.update(static_cast<int64_t>(b + 1));
    }
    progress.finish();
  }
}

}  // namespace

DefenseResult train_defended(models::BuiltinClassifier& model, const data::Dataset& train,
                             const DefenseOptions& options, const FeatureNetwork* feature_network,
                             Progress& progress) {
  options.validate();
  if (options.loss == ReconstructionLossKind::kFeature &&
      (feature_network == nullptr || !feature_network->model)) {
    throw UsageError("--loss feature needs a feature network");
  }
  DefenseResult result;
  result.cut = options.cut.empty() ? default_cut(model) : options.cut;
  model.check_cut(result.cut);
  const auto device = model.device();
  const Stopwatch started;

  // The adversary's decoder is shaped by the encoder's output.
  torch::Tensor probe;
  {
    torch::NoGradGuard no_grad;
    models::TrainingModeGuard eval(model, false);
    probe = model.features(train.images.slice(0, 0, 2).to(device), result.cut);
  }
  attacks::DecoderTrainer adversary(attacks::feature_shape_of(probe), model.input_shape(),
                                    options.adversary);
  adversary.to(device);
  torch::optim::Adam optimizer(model.parameters(),
                               torch::optim::AdamOptions(options.learning_rate));
  std::vector<torch::Tensor> means;
  for (int64_t c = 0; c < model.num_classes(); ++c) {
    const auto members = train.labels.eq(c).nonzero().flatten();
    means.push_back(members.numel() > 0 ? train.images.index_select(0, members).mean(0)
                                        : train.images.mean(0));
  }
  const auto class_means = torch::stack(means).to(device);

  // Dropout and the adversary's initialisation draw from LibTorch's global generator: seeded in
  // this scope (per epoch), given back afterwards.
  ScopedGlobalSeed global_seed(options.seed);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const uint64_t epoch_seed = options.seed * 1000003ULL + static_cast<uint64_t>(epoch);
    global_seed.reseed(epoch_seed);
    model.reseed_noise(epoch_seed);
    const auto batches =
        data::batches(train.size(), options.batch_size, /*shuffle=*/true, epoch_seed);
    progress.start(
        "defend epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
        static_cast<int64_t>(batches.size()));
    DefenseEpoch stats;
    stats.epoch = epoch + 1;
    int64_t correct = 0, seen = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto images = train.images.index_select(0, batches[b]).to(device);
      const auto labels = train.labels.index_select(0, batches[b]).to(device);
      model.set_training(true);
      // (a) The simulated adversary catches up with the current encoder.
      double adversary_loss = 0;
      if (options.lambda > 0) {  // at lambda 0 the adversary cannot change the encoder: skip it
        torch::Tensor features;
        {
          torch::NoGradGuard no_grad;
          features = model.features(images, result.cut);
        }
        for (int k = 0; k < options.adversary_steps; ++k)
          adversary_loss = adversary.step(features, images);
      }
      // (b) Encoder and head: do the task, and make the adversary's reconstruction bad.
      optimizer.zero_grad();
      const auto features = model.features(images, result.cut);
      const auto logits = model.forward_from(features, result.cut);
      const auto task = torch::nn::functional::cross_entropy(logits, labels);
      auto loss = task;
      if (options.lambda > 0) {
        auto& decoder = adversary.decoder();
        decoder->eval();
        const auto rebuilt = decoder->forward(features);
        decoder->train();
        const auto distance = [&](const torch::Tensor& a, const torch::Tensor& b) {
          return options.loss == ReconstructionLossKind::kPixel ? attacks::reconstruction_loss(a, b)
                                                                : feature_network->distance(a, b);
        };
        if (options.objective == Objective::kClassMean) {
          // Pull the adversary's reconstruction towards the mean image of the sample's class.
          loss = task + options.lambda * distance(rebuilt, class_means.index_select(0, labels));
        } else {
          loss = task - options.lambda * distance(rebuilt, images);
        }
      }
      const double task_value = task.item<double>();
      if (!std::isfinite(task_value) || !std::isfinite(loss.item<double>())) {
        throw Error("defended training diverged (loss is not finite) at epoch " +
                    std::to_string(epoch + 1) + "; lower --lr or lambda");
      }
      loss.backward();
      optimizer.step();
      // The decoder's parameters received gradients from (b); its own step clears them.
      stats.task_loss += task_value * static_cast<double>(labels.size(0));
      stats.adversary_loss += adversary_loss * static_cast<double>(labels.size(0));
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      seen += labels.size(0);
      progress.update(static_cast<int64_t>(b + 1),
                      "task " + std::to_string(stats.task_loss / seen).substr(0, 5) +
                          " adversary " + std::to_string(stats.adversary_loss / seen).substr(0, 6));
    }
    progress.finish();
    stats.task_loss /= static_cast<double>(seen);
    stats.adversary_loss /= static_cast<double>(seen);
    stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    result.history.push_back(stats);
  }
  fine_tune_head(model, train, options, result.cut, progress);
  model.set_training(false);
  result.seconds = started.seconds();
  return result;
}

}  // namespace privaudit::defense
