// Adversarial reconstruction learning (Xiao, Tsai, Sohn, Chandraker, Yang, "Adversarial Learning of
// Privacy-Preserving and Task-Oriented Representations", AAAI 2020): the encoder (the classifier up
// to a cut point) and the task head are trained together with a simulated adversary, a decoder that
// learns to rebuild the input from the encoder's output. Training alternates per batch:
//   decoder:        min_Dec  L_rec(x, Dec(Enc(x)))
//   encoder + head: min_{Enc,head}  CE(head(Enc(x)), y) - lambda * L_rec(x, Dec(Enc(x)))
// with L_rec in pixels (mean squared error) or in features (perceptual: mean squared distance of
// the images' features under a fixed feature network that the tool trains itself, since no
// pretrained network is available offline; see docs/defense.md).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "privaudit/attacks/features/feature_decoder.h"
#include "privaudit/data/dataset.h"
#include "privaudit/models/builtin.h"
#include "privaudit/util/progress.h"

namespace privaudit::defense {

enum class ReconstructionLossKind { kPixel, kFeature };

// What the encoder does to the simulated adversary (docs/defense.md):
//   kMaxError:  the paper's min_Enc CE - lambda * L_rec(x, Dec(Enc(x)))
//   kClassMean: min_Enc CE + lambda * L_rec(mean image of x's class, Dec(Enc(x))): the adversary's
//               best output is pulled to what the label alone tells (our choice, the default; it
//               removes the incentive to make reconstructions wrong in invertible ways).
enum class Objective { kClassMean, kMaxError };
std::string objective_name(Objective objective);
Objective parse_objective(const std::string& name);  // throws UsageError

std::string loss_kind_name(ReconstructionLossKind kind);
ReconstructionLossKind parse_loss_kind(const std::string& name);  // throws UsageError

// A fixed network whose intermediate features define the perceptual distance: the sum over its
// cut points of the mean squared difference of features.
struct FeatureNetwork {
  std::shared_ptr<models::BuiltinClassifier> model;  // frozen, eval mode
  std::vector<std::string> cuts;
  torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) const;
};

struct DefenseOptions {
  double lambda = 0.1;
  ReconstructionLossKind loss = ReconstructionLossKind::kPixel;
  std::string cut;           // empty: the middle cut point of the model (documented default)
  int epochs = 5;
  int64_t batch_size = 128;
  double learning_rate = 1e-3;  // Adam, encoder and head
  Objective objective = Objective::kClassMean;
  int adversary_steps = 3;      // decoder steps per encoder step
  int head_epochs = 1;          // afterwards: the head retrained on the frozen encoder
  attacks::DecoderOptions adversary;  // the simulated adversary's decoder
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the option
};

struct DefenseEpoch {
  int epoch = 0;
  double task_loss = 0;
  double adversary_loss = 0;  // the simulated decoder's reconstruction loss
  double train_accuracy = 0;
};

struct DefenseResult {
  std::string cut;
  std::vector<DefenseEpoch> history;
  double seconds = 0;
};

// The cut used when options.cut is empty: the middle one of model.cut_points().
std::string default_cut(const models::Classifier& model);

// Trains `model` (fresh or pre-trained) on `train` with the simulated adversary. `feature_network`
// is needed for ReconstructionLossKind::kFeature only. Throws Error on NaN.
DefenseResult train_defended(models::BuiltinClassifier& model, const data::Dataset& train,
                             const DefenseOptions& options, const FeatureNetwork* feature_network,
                             Progress& progress);

}  // namespace privaudit::defense
