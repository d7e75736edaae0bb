#include "privaudit/defense/adversarial_reconstruction.h"

#include <chrono>
#include <cmath>

#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"

namespace privaudit::defense {

std::string loss_kind_name(ReconstructionLossKind kind) {
  return kind == ReconstructionLossKind::kPixel ? "pixel" : "feature";
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
  if (!(lambda >= 0) || !std::isfinite(lambda)) throw UsageError("--lambdas: each lambda must be >= 0");
  if (epochs <= 0) throw UsageError("--epochs must be positive");
  if (batch_size <= 0) throw UsageError("--batch-size must be positive");
  if (!(learning_rate > 0)) throw UsageError("--lr must be positive");
  if (adversary_steps <= 0) throw UsageError("--adversary-steps must be positive");
  adversary.validate();
}

std::string default_cut(const models::Classifier& model) {
  const auto cuts = model.cut_points();
  if (cuts.empty()) throw Error("the model has no cut points to defend");
  return cuts[cuts.size() / 2];
}

DefenseResult train_defended(models::BuiltinClassifier& model, const data::Dataset& train,
                             const DefenseOptions& options, const FeatureNetwork* feature_network,
                             Progress& progress) {
  options.validate();
  if (options.loss == ReconstructionLossKind::kFeature && (feature_network == nullptr || !feature_network->model)) {
    throw UsageError("--loss feature needs a feature network");
  }
  DefenseResult result;
  result.cut = options.cut.empty() ? default_cut(model) : options.cut;
  model.check_cut(result.cut);
  const auto device = model.device();
  const auto started = std::chrono::steady_clock::now();

  // The adversary's decoder is shaped by the encoder's output.
  torch::Tensor probe;
  {
    torch::NoGradGuard no_grad;
    models::TrainingModeGuard eval(model, false);
    probe = model.features(train.images.slice(0, 0, 2).to(device), result.cut);
  }
  attacks::DecoderTrainer adversary(attacks::feature_shape_of(probe), model.input_shape(), options.adversary);
  adversary.to(device);
  torch::optim::Adam optimizer(model.parameters(), torch::optim::AdamOptions(options.learning_rate));

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const uint64_t epoch_seed = options.seed * 1000003ULL + static_cast<uint64_t>(epoch);
    seed_everything(epoch_seed);
    const auto batches = data::batches(train.size(), options.batch_size, /*shuffle=*/true, epoch_seed);
    progress.start("defend epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
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
      {
        torch::Tensor features;
        {
          torch::NoGradGuard no_grad;
          features = model.features(images, result.cut);
        }
        for (int k = 0; k < options.adversary_steps; ++k) adversary_loss = adversary.step(features, images);
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
        const auto reconstruction = options.loss == ReconstructionLossKind::kPixel
                                        ? attacks::reconstruction_loss(rebuilt, images)
                                        : feature_network->distance(rebuilt, images);
        loss = task - options.lambda * reconstruction;
      }
      const double task_value = task.item<double>();
      if (!std::isfinite(task_value) || !std::isfinite(loss.item<double>())) {
        throw Error("defended training diverged (loss is not finite) at epoch " + std::to_string(epoch + 1) +
                    "; lower --lr or lambda");
      }
      loss.backward();
      optimizer.step();
      // The decoder's parameters received gradients from (b); its own step clears them.
      stats.task_loss += task_value * static_cast<double>(labels.size(0));
      stats.adversary_loss += adversary_loss * static_cast<double>(labels.size(0));
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      seen += labels.size(0);
      progress.update(static_cast<int64_t>(b + 1), "task " + std::to_string(stats.task_loss / seen).substr(0, 5) +
                                                       " adversary " + std::to_string(stats.adversary_loss / seen).substr(0, 6));
    }
    progress.finish();
    stats.task_loss /= static_cast<double>(seen);
    stats.adversary_loss /= static_cast<double>(seen);
    stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    result.history.push_back(stats);
  }
  model.set_training(false);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace privaudit::defense
