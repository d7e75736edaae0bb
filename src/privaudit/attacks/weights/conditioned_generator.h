// One generator for all classes, conditioned on the target label, as in Suhail & Sethi's network
// inversion (arXiv 2407.18002, 2411.17777) and TLDR (arXiv 2410.16884): (latent z, conditioning)
// -> image in [0,1] of the classifier's input shape (any C x H x W).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// How the generator is told which class to draw (TLDR Sections 3.2.1-3.2.4):
//   kLabel:        a learned embedding of the label, concatenated with z;
//   kVector:       c = softmax(v), v ~ N(0, I_K); the label is argmax c; the generator sees c;
//   kMatrix:       a K x K "hot" matrix (row y set to 1, zeros elsewhere) injected as an extra
//                  channel at K x K resolution inside the generator; the label is uniform;
//   kVectorMatrix: both c and the hot matrix (the papers' choice).
enum class Conditioning { kLabel, kVector, kMatrix, kVectorMatrix };

std::string conditioning_name(Conditioning conditioning);
Conditioning parse_conditioning(const std::string& name);  // throws UsageError

struct GeneratorOptions {
  Conditioning conditioning = Conditioning::kVectorMatrix;
  int64_t latent_dim = 64;
  int64_t channels = 32;  // width of the last up-sampling block; earlier blocks have twice this
  // Dropout after every up-sampling block, on during training and generation alike (the papers'
  // source of diversity).
  double dropout = 0.3;

  void validate() const;  // throws UsageError
};

// A batch of conditioning inputs: what the generator sees and what the losses target.
struct ConditionBatch {
  torch::Tensor latent;  // B x latent_dim
  torch::Tensor vector;  // B x K: softmax(v) for vector conditionings, one-hot otherwise
  torch::Tensor labels;  // B int64: argmax of `vector`
};

// Draws B conditionings with `generator`. Vector conditionings draw v ~ N(0, I) and take the label
// from argmax softmax(v); the others draw labels uniformly.
ConditionBatch sample_conditions(Conditioning conditioning, int64_t batch, int64_t latent_dim,
                                 int64_t classes, torch::Generator& generator);
// Conditionings for given labels: vector conditionings draw v and swap its largest entry onto
// the label so that argmax c = label.
ConditionBatch conditions_for_labels(Conditioning conditioning, const torch::Tensor& labels,
                                     int64_t latent_dim, int64_t classes,
                                     torch::Generator& generator);

// Layout (up-sampling by bilinear resize + 3x3 convolution instead of the papers' transposed
// convolutions, so any H x W works and no checkerboard appears):
//   [z, cond] -> Linear -> 2c x ceil(H/4) x ceil(W/4), BN, ReLU
//   -> resize K x K, [+ hot matrix channel] -> conv 2c, BN, ReLU, Dropout
//   -> resize ceil(H/2) x ceil(W/2) -> conv 2c->c, BN, ReLU, Dropout
//   -> resize H x W -> conv c->c/2, BN, ReLU, Dropout -> conv -> C channels, sigmoid.
class ConditionedGeneratorImpl : public torch::nn::Module {
 public:
  ConditionedGeneratorImpl(const models::InputShape& output, int64_t classes,
                           const GeneratorOptions& options);

  // The pre-sigmoid output, B x C x H x W (the pixel-range prior acts on it); the image is its
  // sigmoid. Dropout masks are drawn from `generator` whatever the module's train/eval mode.
  torch::Tensor forward_logits(const ConditionBatch& condition, torch::Generator& generator);
  // B x C x H x W in [0,1].
  torch::Tensor forward(const ConditionBatch& condition, torch::Generator& generator) {
    return torch::sigmoid(forward_logits(condition, generator));
  }

  const GeneratorOptions& options() const { return options_; }

 private:
  torch::Tensor hot_matrix(const torch::Tensor& labels) const;

  models::InputShape output_;
  int64_t classes_;
  GeneratorOptions options_;
  int64_t start_h_, start_w_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear project_{nullptr};
  torch::nn::BatchNorm2d project_norm_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, to_image_{nullptr};
  torch::nn::BatchNorm2d norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
};
TORCH_MODULE(ConditionedGenerator);

}  // namespace privaudit::attacks
