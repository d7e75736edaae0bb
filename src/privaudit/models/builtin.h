// The built-in classifiers (MLP, CNN, ViT, and the DLG paper's LeNet) as a chain of named stages;
// every stage boundary is a cut point.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/models/model_config.h"

namespace privaudit::models {

// A network as stages run one after another on normalised input. Stage names:
//   mlp:   fc1 .. fcN, logits            (fcI: Linear [BatchNorm] activation [Dropout])
//   cnn:   conv1 .. convN, [fc1], logits (convI: Conv kxk [BatchNorm] activation MaxPool2
//   [Dropout]) lenet: conv1, conv2, conv3, logits   (stride 2, 2, 1; no pooling) vit:   embed,
//   block1 .. blockN, cls, logits
//          (embed: patches + class token + positions, B x T x D; blockI: pre-norm transformer
//           block; cls: final LayerNorm of the class token, B x D)
class StagedNetImpl : public torch::nn::Module {
 public:
  explicit StagedNetImpl(const ModelConfig& config);

  torch::Tensor forward(const torch::Tensor& images);
  torch::Tensor normalise(const torch::Tensor& images) const { return (images - mean_) / std_; }
  torch::Tensor run_stages(torch::Tensor x, size_t first, size_t last);  // stages [first, last)
  const std::vector<std::string>& stage_names() const { return names_; }
  size_t stage_index(const std::string& name) const;
  const ModelConfig& config() const { return config_; }

 private:
  void add_stage(const std::string& name, torch::nn::Sequential stage);

  ModelConfig config_;
  std::vector<std::string> names_;
  std::vector<torch::nn::Sequential> stages_;
  torch::Tensor mean_;  // 1 x C x 1 x 1 buffers: normalisation travels with the weights
  torch::Tensor std_;
};
TORCH_MODULE(StagedNet);

class BuiltinClassifier : public Classifier {
 public:
  explicit BuiltinClassifier(const ModelConfig& config);

  torch::Tensor forward(const torch::Tensor& images) override;
  std::vector<torch::Tensor> parameters() override;
  InputShape input_shape() const override { return config().input; }
  int64_t num_classes() const override { return config().classes; }
  std::vector<std::string> cut_points() const override;
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override;
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override;
  void set_training(bool training) override { net_->train(training); }
  bool is_training() const override { return net_->is_training(); }
  void to(torch::Device device) override;
  torch::Device device() const override { return device_; }
  bool has_batch_norm() const override { return config().batch_norm; }
  void reseed_noise(uint64_t seed) override;
  std::string kind() const override { return arch_name(config().arch); }
  std::string summary() const override;

  const ModelConfig& config() const { return net_->config(); }
  StagedNet& net() { return net_; }

 private:
  StagedNet net_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace privaudit::models
