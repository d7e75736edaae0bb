// Network inversion and training-like data reconstruction from the weights alone (Suhail &
// Sethi: arXiv 2407.18002, 2411.17777, TLDR 2410.16884): train one conditioned generator so that
// the classifier assigns its images to the conditioning label (stage 1), then push the images
// towards what training data looks like to the classifier (stage 2). docs/inversion.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "privaudit/attacks/weights/conditioned_generator.h"
#include "privaudit/attacks/weights/stationarity.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// Every term has a weight; 0 switches it off. With p = softmax(f(x)), y the label, c the
// conditioning vector, phi the features at `feature_cut`:
struct InversionOptions {
  GeneratorOptions generator;
  int steps = 1500;
  int64_t batch_size = 64;
  double learning_rate = 2e-3;  // Adam
  uint64_t seed = 0;
  std::string feature_cut;  // empty: the classifier's last cut point (penultimate features)

  // Stage 1 (inversion).
  double weight_ce = 1.0;             // -log p_y
  double weight_kl = 1.0;             // KL(c || p); in stage 2 the target becomes one-hot(y)
  double weight_cosine = 1.0;         // mean_{i!=j} cos(phi_i, phi_j), minimised for diversity
  double weight_orthogonality = 0.1;  // mean((Phi Phi^T - I)^2) of L2-normalised features

  // Stage 2 (training-like), from step `stage_two_from * steps` on; all off when !training_like.
  bool training_like = true;
  double stage_two_from = 0.1;
  double weight_confidence = 0.1;  // mean relu(margin - (z_y - max_{j!=y} z_j)) on logits z
  double confidence_margin = 20.0;
  double weight_perturbation = 2.0;  // -log p_y(clamp(x + eps*sign(n), 0, 1))
  double perturbation_epsilon = 0.05;
  double weight_dropout = 1.0;   // -log p_y with the classifier's dropout on (BN kept in eval)
  double weight_gradient = 2.0;  // ||grad_theta CE(f(x), y)||_2 of the batch (double backprop)
  double weight_tv = 0.1;        // mean squared neighbour differences
  double weight_range = 0.01;    // mean relu(|u| - 6) of the generator's pre-sigmoid output u
  // Stage 3 (training-like): the generated images are refined in pixel space until the
  // classifier's weights are best explained as a stationary (KKT) combination of their margin
  // gradients (stationarity.h). `stationarity.iterations` 0 switches it off; off when
  // !training_like.
  StationarityOptions stationarity;

  // Images generated at the end, per class.
  int64_t per_class = 8;
  // When set, the generator, optimiser and random state are written here atomically every
  // `checkpoint_every` steps, and an existing file is continued from.
  std::string state_path;
  int checkpoint_every = 250;

  void validate() const;  // throws UsageError naming the option
};

struct InversionResult {
  torch::Tensor images;      // (K * per_class) x C x H x W in [0,1], class-major
  torch::Tensor labels;      // the conditioning labels
  torch::Tensor confidence;  // the classifier's softmax probability of the label (eval mode)
  torch::Tensor generated;   // the generator's images before the stationarity refinement
  std::vector<double> stationarity_residual;  // per refinement iteration (empty when off)
  double stationarity_seconds = 0.0;
  std::vector<double> loss_curve;  // total loss of every step
  int resumed_from_step = 0;
  double seconds = 0.0;  // generator training and refinement time of this process
};

// Trains the generator against `model` (whose weights are left untouched and whose train/eval
// mode is restored), generates `per_class` images per class and, in training-like mode, refines
// them by stationarity (seeded with `seed`; the generator's checkpoint does not cover the
// refinement: a resumed run repeats it).
InversionResult run_network_inversion(models::Classifier& model, const InversionOptions& options,
                                      Progress& progress);

}  // namespace privaudit::attacks
