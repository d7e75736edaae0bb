// A malicious server's threat model: "Robbing the Fed" (Fowl, Geiping, Czaja, Goldblum &
// Goldstein, ICLR 2022). The server sends clients a model with an imprint block in front of the
// first layer:
//   h = ReLU(W x + b), W = K equal rows w (a fixed measurement), b_i = -c_i with c_i the i/K
//   quantiles of w.x on the server's own images (equal-mass bins); y = x + v 1^T h, then the
//   original network.
// The attack that reads images off the block's gradient is attacks/gradients/imprint.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// Which server the clients face: one that runs the protocol as agreed, or one that sends them an
// imprinted model. Chosen once at the command line (`--server honest|imprint`).
enum class Server { kHonest, kImprint };

// "honest" or "imprint", as results.json records it.
std::string server_name(Server server);

// The model a malicious server sends: an imprint block, then the wrapped classifier (which
// must outlive it). parameters() = {W, b, v} followed by the wrapped model's.
class ImprintedClassifier : public models::Classifier {
 public:
  // `calibration`: the server's own images (never the targets), N x C x H x W, N >= bins; the
  // measurement is the mean pixel; `seed` draws v.
  ImprintedClassifier(models::Classifier& inner, int64_t bins, const torch::Tensor& calibration,
                      uint64_t seed);

  torch::Tensor forward(const torch::Tensor& images) override;
  std::vector<torch::Tensor> parameters() override;
  models::InputShape input_shape() const override { return inner_.input_shape(); }
  int64_t num_classes() const override { return inner_.num_classes(); }
  std::vector<std::string> cut_points() const override { return inner_.cut_points(); }
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override;
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override {
    return inner_.forward_from(features, cut);
  }
  void set_training(bool training) override { inner_.set_training(training); }
  bool is_training() const override { return inner_.is_training(); }
  void to(torch::Device device) override;
  torch::Device device() const override { return inner_.device(); }
  bool has_batch_norm() const override { return inner_.has_batch_norm(); }
  std::string kind() const override { return inner_.kind(); }
  std::string summary() const override;

  int64_t bins() const { return weight_.size(0); }

 private:
  torch::Tensor imprint(const torch::Tensor& images) const;

  models::Classifier& inner_;
  torch::Tensor weight_;  // K x D, every row the measurement
  torch::Tensor bias_;    // K, -c_i
  torch::Tensor back_;    // D x K, every column v
};

}  // namespace privaudit::attacks
