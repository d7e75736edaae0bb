// Closed-form gradient attacks: what the shared gradient gives away by algebra, in milliseconds,
// before any optimisation (docs/gradients.md, "Closed-form attacks").
//
//  - linear-layer: for one input, row i of a Linear layer's weight gradient is delta_i x and its
//    bias gradient delta_i, so x = dW_i / db_i exactly (Phong et al. 2017; Geiping et al. 2020
//    for any fully connected layer). In a batch, the first layer's gradient is disaggregated
//    (disaggregation.h): rows of one sample alone give it, and peeling it off with the model's
//    own gradient for it isolates the next.
//  - positional: a ViT's learned positional embedding receives each patch token's upstream
//    gradient g_p, and the patch projection's weight gradient is sum_p g_p x_p^T: the patches
//    solve a least-squares system when the width is at least the number of patches (the idea
//    behind APRIL, Lu et al. 2022).
//  - features-then-invert: where the first exactly recovered layer input is a feature map (a
//    CNN's fully connected layer), invert the features to an image through the layers below
//    (L-BFGS with a strong-Wolfe line search, restarts, a box penalty).
//
// Each attack receives only the SharedUpdate and the model, finds its layers by parameter
// shapes (a Linear weight/bias pair; a 1 x T x D parameter beside a D x C x k x k projection),
// learns how a layer's input relates to the pixels by probing the model with its own inputs
// (zeros, ones, noise: never the targets), and certifies its result without ground truth where
// algebra allows it (kCertifiedDistance below).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/budget.h"
#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/models/classifier.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// A Linear layer found among the parameters: a 2-D out x in weight followed by an `out` bias.
struct LinearLayer {
  size_t weight = 0;  // index into Classifier::parameters()
  size_t bias = 0;
  int64_t in = 0, out = 0;
};
std::vector<LinearLayer> find_linear_layers(const std::vector<torch::Tensor>& parameters);

// What the bias ratio gives for one Linear layer's gradient (dW: out x in, db: out).
struct BiasRatio {
  torch::Tensor mixture;    // in, float64: sum_i db_i dW_i / sum_i db_i^2 (least squares)
  double residual = 1;      // |dW - db mixture^T| / |dW|: 0 when one input explains every row
  int64_t active_rows = 0;  // rows with a non-zero bias gradient
  // Distinct inputs, each agreed on by `support` rows (most supported first; support 1 = one
  // row's ratio, a guess that may mix samples); at most `max_inputs`.
  std::vector<torch::Tensor> inputs;
  std::vector<int64_t> support;
};
// Rows are grouped when their ratios agree to `agreement` (relative); by default 1e-5 (float32
// gradients agree to ~1e-7).
BiasRatio bias_ratio(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                     int64_t max_inputs, double agreement = 1e-5);

// Cosine distance, in float64, between the shared gradient and the gradient of `images` with
// `labels` (computed in the update's mode); tensors the update leaves undefined are skipped.
double gradient_self_check(models::Classifier& model, const SharedUpdate& update,
                           const torch::Tensor& images, const torch::Tensor& labels);

// Certificates: algebra, never optimisation. A closed-form recovery (linear-layer, positional)
// of one image is certified exact when it reproduces the observed update: the gradient of the
// recovered image with the recovered label (the server's, else read off the last layer) lies
// within this cosine distance of the shared one (the self-check, in float64). At batch > 1 a
// linear-layer image is certified when rows of the layer's gradient agree on it and the model's
// own gradient for it lies in the update's column space (disaggregation.h). An
// optimisation or inversion (features-then-invert, DLG, iDLG, Inverting Gradients) is never
// certified, whatever its self-check: matching the update is what it optimises, and where the
// layers below what it matched are not injective (a crop, a pooling, a frozen first layer)
// another image matches as well, so a small distance says nothing about the pixels.
constexpr double kCertifiedDistance = 1e-6;

// How a reconstruction was obtained; decides whether it can be certified.
enum class Recovery {
  kClosedForm,   // read off the update by algebra
  kOptimisation  // found by an optimisation or an inversion
};

struct Certificate {
  // gradient_self_check of the image; NaN without a label.
  double self_check = std::numeric_limits<double>::quiet_NaN();
  bool certified = false;
};

// The certificate of a batch-1 reconstruction `image` (1 x C x H x W) with `label` (one class
// index, -1 when unknown): certified only for Recovery::kClosedForm with a self-check of at most
// kCertifiedDistance.
Certificate certify_recovery(models::Classifier& model, const SharedUpdate& update,
                             const torch::Tensor& image, const torch::Tensor& label, Recovery how);

struct FeatureInversionOptions {
  int starts = 3;                // grey, then uniform-noise starts
  int explore_iterations = 100;  // L-BFGS iterations of every start
  int iterations = 2000;         // further iterations of the start with the lowest loss
  double box_penalty = 10;
  // Weight of the squared total variation (mean dx^2 + dy^2): max-pooling and ReLUs leave the
  // features blind to some pixels, and a smooth fill is nearer to a real image than noise.
  // Our choice, from the CNN test's 8 images: 1e-3 gave a median of 29.6 dB, 0 gave 24.8,
  // 3e-4 / 3e-3 / 1e-2 gave 24.0 / 25.4 / 23.4.
  double smoothness = 1e-3;
  uint64_t seed = 0;
};

// The image (1 x C x H x W in [0,1]) whose features at `cut`, flattened, are closest to
// `features` (F values), and the relative squared feature error it reaches.
struct FeatureInversion {
  torch::Tensor image;
  double relative_error = 1;
};
FeatureInversion invert_features(models::Classifier& model, const std::string& cut,
                                 const torch::Tensor& features,
                                 const FeatureInversionOptions& options, Progress& progress);

Reconstruction run_linear_layer_attack(models::Classifier& model, const SharedUpdate& update,
                                       const AttackBudget& budget, Progress& progress);
Reconstruction run_positional_attack(models::Classifier& model, const SharedUpdate& update,
                                     const AttackBudget& budget, Progress& progress);
// features-then-invert's answer on a ViT, without spending an iteration: not_applicable, why.
inline constexpr const char* kFeaturesNotInvertibleOnVit =
    "the ViT's exact features lie past attention blocks that mix the patches' tokens, so "
    "inverting them is no easier than gradient matching; the positional solve is this model's "
    "closed-form attack";
// The same on a ViT whose positional table is fixed (no gradient to solve from).
inline constexpr const char* kFeaturesNotInvertibleOnFixedTableVit =
    "the ViT's exact features lie past attention blocks that mix the patches' tokens, so "
    "inverting them is no easier than gradient matching; its positional table is fixed (no "
    "gradient), so the positional solve does not apply either: the optimisation attacks are "
    "this model's";
Reconstruction run_features_then_invert(models::Classifier& model, const SharedUpdate& update,
                                        const AttackBudget& budget, Progress& progress);

}  // namespace privaudit::attacks
