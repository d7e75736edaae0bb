// Decoder inversion of intermediate features (the adversary of Xiao et al., "Adversarial
// reconstruction learning", AAAI 2020, and the validation of the per-layer metrics of arXiv
// 2412.00696): a network trained on data the attacker holds maps a layer's output back to the
// image. Architectures by feature shape (docs/layers.md):
//   vector  B x d          Linear(d, hidden) ReLU Linear(hidden, base*h0*w0) ReLU, then up-sampling
//   tokens  B x T x D      flattened to a vector of T*D (keeps positions; one projection)
//   spatial B x c x h x w  Conv3x3(c, base) ReLU, then up-sampling
// up-sampling: [nearest x2, Conv3x3, ReLU] while smaller than the image (channels halve, at
// least 16), bilinear resize to H x W when the sizes do not divide, Conv3x3 to C; vectors and
// tokens add a direct Linear(d, C*H*W) path to these logits; sigmoid -> [0,1].
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/threat/cut_features.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

enum class FeatureKind { kVector, kTokens, kSpatial };

// The per-sample shape of a layer's output (batch dimension removed) and how it is read.
struct FeatureShape {
  std::vector<int64_t> dims;  // {d}, {T, D} or {c, h, w}
  FeatureKind kind = FeatureKind::kVector;
  int64_t numel() const;
  std::string describe() const;  // "vector 512", "tokens 17x64", "spatial 32x14x14"
};
// The shape of a batch of features (B x ...). Throws Error for a batch of rank < 2 or > 4.
FeatureShape feature_shape_of(const torch::Tensor& features);

// The decoder's size and training schedule. Defaults: 5 epochs over the attacker's images.
struct DecoderOptions {
  int64_t hidden = 512;        // width of the vector decoder's hidden layer
  int64_t base_channels = 32;  // channels at the smallest resolution
  int epochs = 5;
  int64_t batch_size = 64;
  double learning_rate = 3e-3;  // Adam; 1e-3 stays near the mean image for a budget this short
  uint64_t seed = 0;            // decoder initialisation and batch order

  void validate() const;  // throws UsageError naming the option
};

class FeatureDecoderImpl : public torch::nn::Module {
 public:
  FeatureDecoderImpl(const FeatureShape& features, const models::InputShape& image,
                     const DecoderOptions& options);
  // B x (feature dims) -> B x C x H x W in [0,1].
  torch::Tensor forward(const torch::Tensor& features);
  const FeatureShape& feature_shape() const { return features_; }
  const models::InputShape& image_shape() const { return image_; }

 private:
  FeatureShape features_;
  models::InputShape image_;
  int64_t start_height_ = 0;
  int64_t start_width_ = 0;
  int64_t start_channels_ = 0;
  torch::nn::Sequential stem_{nullptr};  // features -> start_channels x start_height x start_width
  torch::nn::Sequential body_{nullptr};  // up-sampling convolutions
  torch::nn::Conv2d head_{nullptr};      // -> C channels (before the sigmoid)
  torch::nn::Linear linear_{nullptr};  // vectors and tokens: features -> pixels, added to the head
};
TORCH_MODULE(FeatureDecoder);

// (a) A decoder for a feature shape, initialised from options.seed (this seeds LibTorch's global
// generator, as module initialisation draws from it).
FeatureDecoder build_decoder(const FeatureShape& features, const models::InputShape& image,
                             const DecoderOptions& options);

// The reconstruction loss: mean squared error over pixels (differentiable in both arguments, so a
// defense can push an encoder against it).
torch::Tensor reconstruction_loss(const torch::Tensor& reconstructions,
                                  const torch::Tensor& images);

// (b) A decoder with its Adam optimiser, for use inside another training loop (the defense's
// simulated adversary): step() trains the decoder only; the encoder never receives gradients from
// it because the features are detached.
class DecoderTrainer {
 public:
  DecoderTrainer(const FeatureShape& features, const models::InputShape& image,
                 const DecoderOptions& options);
  // One Adam step on a batch of (features, images); returns the loss before the step.
  double step(const torch::Tensor& features, const torch::Tensor& images);
  // Reconstructions without gradients, decoder in eval mode (chunked).
  torch::Tensor reconstruct(const torch::Tensor& features);
  FeatureDecoder& decoder() { return decoder_; }
  void to(torch::Device device);

 private:
  FeatureDecoder decoder_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

// Trains a fresh decoder on `attacker_images` (the attacker's own data, never the targets) pushed
// through the frozen `model` up to `cut`, for options.epochs epochs. Progress advances per epoch.
struct TrainedDecoder {
  std::shared_ptr<DecoderTrainer> trainer;
  std::vector<double> loss_curve;  // mean training loss per epoch
  double seconds = 0;
};
TrainedDecoder train_decoder(models::Classifier& model, const std::string& cut,
                             const torch::Tensor& attacker_images, const DecoderOptions& options,
                             Progress& progress);

// (c) The whole attack and its score: train a fresh decoder against the frozen encoder on the
// attacker's images, reconstruct the targets from their features alone, then compare with the
// targets (the targets reach only the scoring step).
struct DecoderAttackResult {
  std::string cut;
  torch::Tensor reconstructions;  // N x C x H x W in [0,1], one per target
  torch::Tensor psnr_per_image;   // N
  torch::Tensor ssim_per_image;   // N
  double psnr = 0;                // means over the targets
  double ssim = 0;
  double mse = 0;
  // The floor: PSNR/SSIM of predicting the attacker images' mean image for every target.
  double mean_image_psnr = 0;
  double mean_image_ssim = 0;
  std::vector<double> loss_curve;
  double seconds = 0;
};
DecoderAttackResult run_decoder_attack(models::Classifier& model, const std::string& cut,
                                       const torch::Tensor& attacker_images,
                                       const torch::Tensor& target_images,
                                       const DecoderOptions& options, Progress& progress);

}  // namespace privaudit::attacks
