// A malicious server: "Robbing the Fed" (Fowl, Geiping, Czaja, Goldblum & Goldstein, ICLR 2022).
// The server sends clients a model with an imprint block in front of the first layer:
//   h = ReLU(W x + b), W = K equal rows w (a fixed measurement), b_i = -c_i with c_i the i/K
//   quantiles of w.x on the server's own images (equal-mass bins); y = x + v 1^T h, then the
//   original network.
// Row i's gradient sums s_n x_n over the images with w.x_n > c_i, its bias gradient s_n, so the
// difference of adjacent rows divided by the difference of their biases is an image, exactly
// when one image of the batch fell in that bin: a fraction (1 - 1/K)^(B-1) of a batch of B
// i.i.d. images. It works the same on a gradient, a FedAvg update and a secure aggregate (the
// aggregate is one bigger batch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

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

// The fraction of a batch of `batch` i.i.d. images that lands alone in one of `bins` equal-mass
// bins: (1 - 1/K)^(B-1).
double imprint_expected_fraction(int64_t bins, int64_t batch);

// Recovers images from `shared` (gradient-like: a gradient, or update_as_gradient of an update
// or an aggregate) of a model whose first three parameters are an imprint block (K x D equal
// rows, K biases, D x K). Returns one candidate per bin whose bias difference is non-zero (a blank
// image when none), clamped to [0,1]. Not applicable when the model
// holds no imprint block. details: {"bins", "candidates", "expected_fraction"}.
// The result is a candidate set (Reconstruction::candidate_set): score it with
// metrics::score_candidates.
Reconstruction run_imprint_attack(models::Classifier& model, const Gradients& shared,
                                  int64_t batch_size, Progress& progress);

}  // namespace privaudit::attacks
