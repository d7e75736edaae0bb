// Stationarity (KKT) reconstruction: Haim, Vardi, Yehudai, Shamir & Irani, "Reconstructing
// Training Data from Trained Neural Networks" (NeurIPS 2022), multi-class form of Buzaglo et al.
// (NeurIPS 2023). A classifier trained to convergence (to a max-margin KKT point, or to a
// stationary point of a weight-decayed loss) has weights that are a non-negative combination of
// the margin gradients of its training points:
//   theta ~= sum_i lambda_i grad_theta Phi_i(x_i),  Phi_i = z_{y_i}(x_i) - max_{j != y_i} z_j(x_i).
// Optimising candidate images x_i and multipliers lambda_i >= lambda_min so that the right-hand
// side reproduces theta pulls the candidates towards the training images themselves: information
// the weights hold about *which* images they were trained on, not only about the classes.
// docs/inversion.md, "Stationarity refinement".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

struct StationarityOptions {
  int iterations = 1000;
  double learning_rate = 0.004;        // Adam on the pixels, [0,1] units
  double lambda_learning_rate = 1e-3;  // Adam on a, lambda = a^2 + lambda_min
  double lambda_init = 1e-2;           // a^2 ~ U(0, lambda_init)
  double lambda_min = 1e-6;
  double weight_range = 1.0;  // sum of squared excursions outside [0,1], per image
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the option
};

struct StationarityResult {
  torch::Tensor images;          // like the candidates, clamped to [0,1], on the CPU
  torch::Tensor lambdas;         // N multipliers at the end
  std::vector<double> residual;  // ||theta - sum lambda grad Phi||^2 / ||theta||^2 per iteration
};

// Refines `candidates` (N x C x H x W in [0,1]) with class `labels` (N) against `model`'s weights,
// in eval mode (restored afterwards); the model's parameters and .grad fields are left untouched.
// Throws Error when the residual turns non-finite.
StationarityResult refine_by_stationarity(models::Classifier& model,
                                          const torch::Tensor& candidates,
                                          const torch::Tensor& labels,
                                          const StationarityOptions& options, Progress& progress);

}  // namespace privaudit::attacks
