#include "privaudit/attacks/features/feature_decoder.h"

#include <algorithm>
#include <sstream>

#include "privaudit/data/dataset.h"
#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/timer.h"

namespace privaudit::attacks {
namespace nn = torch::nn;

int64_t FeatureShape::numel() const {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

std::string FeatureShape::describe() const {
  std::ostringstream out;
  out << (kind == FeatureKind::kVector   ? "vector "
          : kind == FeatureKind::kTokens ? "tokens "
                                         : "spatial ");
  for (size_t i = 0; i < dims.size(); ++i) out << (i ? "x" : "") << dims[i];
  return out.str();
}

FeatureShape feature_shape_of(const torch::Tensor& features) {
  if (!features.defined() || features.dim() < 2 || features.dim() > 4) {
    throw Error("feature decoder: features must be B x d, B x T x D or B x C x H x W");
  }
  FeatureShape shape;
  shape.dims.assign(features.sizes().begin() + 1, features.sizes().end());
  shape.kind = features.dim() == 2   ? FeatureKind::kVector
               : features.dim() == 3 ? FeatureKind::kTokens
                                     : FeatureKind::kSpatial;
  return shape;
}

void DecoderOptions::validate() const {
  if (hidden <= 0) throw UsageError("decoder hidden width must be positive");
  if (base_channels <= 0) throw UsageError("decoder base channels must be positive");
  if (epochs <= 0) throw UsageError("--decoder-epochs must be positive");
  if (batch_size <= 0) throw UsageError("decoder batch size must be positive");
  if (!(learning_rate > 0)) throw UsageError("decoder learning rate must be positive");
}

FeatureDecoderImpl::FeatureDecoderImpl(const FeatureShape& features,
                                       const models::InputShape& image,
                                       const DecoderOptions& options)
    : features_(features), image_(image) {
  options.validate();
  if (features.dims.empty() || features.numel() <= 0)
    throw Error("feature decoder: empty feature shape");
  start_channels_ = options.base_channels;
  stem_ = nn::Sequential();
  if (features.kind == FeatureKind::kSpatial) {
    start_height_ = features.dims[1];
    start_width_ = features.dims[2];
    stem_->push_back(
        nn::Conv2d(nn::Conv2dOptions(features.dims[0], start_channels_, 3).padding(1)));
  } else {
    // Two doublings reach the image from a quarter of its size (7x7 for 28x28).
    start_height_ = std::max<int64_t>(1, (image.height + 3) / 4);
    start_width_ = std::max<int64_t>(1, (image.width + 3) / 4);
    stem_->push_back(nn::Flatten());
    stem_->push_back(nn::Linear(features.numel(), options.hidden));
    stem_->push_back(nn::ReLU());
    stem_->push_back(nn::Linear(options.hidden, start_channels_ * start_height_ * start_width_));
  }
  stem_->push_back(nn::ReLU());
  register_module("stem", stem_);

  body_ = nn::Sequential();
  int64_t channels = start_channels_, height = start_height_, width = start_width_;
  while (height < image.height || width < image.width) {
    const int64_t next = std::max<int64_t>(16, channels / 2);
    body_->push_back(
        nn::ConvTranspose2d(nn::ConvTranspose2dOptions(channels, next, 4).stride(2).padding(1)));
    body_->push_back(nn::ReLU());
    channels = next;
    height *= 2;
    width *= 2;
  }
  register_module("body", body_);
  head_ = register_module("head",
                          nn::Conv2d(nn::Conv2dOptions(channels, image.channels, 3).padding(1)));
  if (features.kind != FeatureKind::kSpatial) {
    // A linear path straight to the pixels: what a linear-algebra attacker gets for free, and
    // what lets a short budget invert an (almost) linear layer instead of stalling at its blur.
    linear_ = register_module("linear", nn::Linear(features.numel(), image.numel()));
  }
}

torch::Tensor FeatureDecoderImpl::forward(const torch::Tensor& features) {
  auto x = stem_->forward(features);
  if (features_.kind != FeatureKind::kSpatial) {
    x = x.view({features.size(0), start_channels_, start_height_, start_width_});
  }
  if (!body_->is_empty()) x = body_->forward(x);
  if (x.size(2) != image_.height || x.size(3) != image_.width) {
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{image_.height, image_.width})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  auto logits = head_->forward(x);
  if (linear_) logits = logits + linear_->forward(features.flatten(1)).view_as(logits);
  return torch::sigmoid(logits);
}

FeatureDecoder build_decoder(const FeatureShape& features, const models::InputShape& image,
                             const DecoderOptions& options) {
  options.validate();
  const ScopedGlobalSeed initialisation(options.seed);
  return FeatureDecoder(features, image, options);
}

torch::Tensor reconstruction_loss(const torch::Tensor& reconstructions,
                                  const torch::Tensor& images) {
  return torch::mse_loss(reconstructions, images);
}

DecoderTrainer::DecoderTrainer(const FeatureShape& features, const models::InputShape& image,
                               const DecoderOptions& options)
    : decoder_(build_decoder(features, image, options)),
      optimizer_(std::make_unique<torch::optim::Adam>(
          decoder_->parameters(), torch::optim::AdamOptions(options.learning_rate))) {}

double DecoderTrainer::step(const torch::Tensor& features, const torch::Tensor& images) {
  decoder_->train(true);
  optimizer_->zero_grad();
  auto loss = reconstruction_loss(decoder_->forward(features.detach()), images.detach());
  loss.backward();
  optimizer_->step();
  return loss.item<double>();
}

torch::Tensor DecoderTrainer::reconstruct(const torch::Tensor& features) {
  torch::NoGradGuard no_grad;
  decoder_->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < features.size(0); start += 512) {
    parts.push_back(decoder_->forward(
        features.narrow(0, start, std::min<int64_t>(512, features.size(0) - start))));
  }
  return torch::cat(parts, 0);
}

void DecoderTrainer::to(torch::Device device) { decoder_->to(device); }

namespace {
void check_images(const torch::Tensor& images, const models::InputShape& shape,
                  const std::string& what) {
  if (!images.defined() || images.dim() != 4 || images.size(0) == 0) {
    throw Error("feature decoder: " + what + " must be a non-empty N x C x H x W batch");
  }
  if (images.size(1) != shape.channels || images.size(2) != shape.height ||
      images.size(3) != shape.width) {
    throw Error("feature decoder: " + what + " do not match the model's input shape");
  }
}
}  // namespace

TrainedDecoder train_decoder(models::Classifier& model, const std::string& cut,
                             const torch::Tensor& attacker_images, const DecoderOptions& options,
                             Progress& progress) {
  options.validate();
  check_images(attacker_images, model.input_shape(), "attacker images");
  const Stopwatch started;
  const auto features = observe_features(model, cut, attacker_images);
  const auto images = attacker_images.to(model.device());
  TrainedDecoder result;
  result.trainer =
      std::make_shared<DecoderTrainer>(feature_shape_of(features), model.input_shape(), options);
  result.trainer->to(model.device());
  progress.start("decoder " + cut, options.epochs);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    double total = 0;
    int64_t seen = 0;
    for (const auto& batch :
         data::batches(images.size(0), options.batch_size, true, options.seed + epoch)) {
      const auto index = batch.to(images.device());
      total +=
          result.trainer->step(features.index_select(0, index), images.index_select(0, index)) *
          batch.size(0);
      seen += batch.size(0);
    }
    result.loss_curve.push_back(total / static_cast<double>(seen));
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4f", result.loss_curve.back());
    progress.update(epoch + 1, status);
    if (time_budget_spent()) break;  // the decoder as trained so far
  }
  progress.finish();
  result.seconds = started.seconds();
  return result;
}

DecoderAttackResult run_decoder_attack(models::Classifier& model, const std::string& cut,
                                       const torch::Tensor& attacker_images,
                                       const torch::Tensor& target_images,
                                       const DecoderOptions& options, Progress& progress) {
  options.validate();
  model.check_cut(cut);
  check_images(attacker_images, model.input_shape(), "attacker images");
  check_images(target_images, model.input_shape(), "target images");
  const Stopwatch started;
  auto trained = train_decoder(model, cut, attacker_images, options, progress);
  // The attacker sees the targets' features only.
  const auto reconstructions =
      trained.trainer->reconstruct(observe_features(model, cut, target_images)).to(torch::kCPU);

  DecoderAttackResult result;
  result.cut = cut;
  const auto targets = target_images.to(torch::kCPU, torch::kFloat32);
  result.reconstructions = reconstructions;
  result.psnr_per_image = metrics::psnr_per_image(reconstructions, targets);
  result.ssim_per_image = metrics::ssim_per_image(reconstructions, targets);
  result.psnr = result.psnr_per_image.mean().item<double>();
  result.ssim = result.ssim_per_image.mean().item<double>();
  result.mse = metrics::mse_per_image(reconstructions, targets).mean().item<double>();
  const auto mean_image = attacker_images.to(torch::kCPU, torch::kFloat32)
                              .mean(0, true)
                              .expand_as(targets)
                              .contiguous();
  result.mean_image_psnr = metrics::psnr_per_image(mean_image, targets).mean().item<double>();
  result.mean_image_ssim = metrics::ssim_per_image(mean_image, targets).mean().item<double>();
  result.loss_curve = trained.loss_curve;
  result.seconds = started.seconds();
  return result;
}

}  // namespace privaudit::attacks
