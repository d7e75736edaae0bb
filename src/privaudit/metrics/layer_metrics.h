// Attack-free leakage figures of a classifier's intermediate outputs, after "Intermediate Outputs
// Are More Sensitive Than You Think" (arXiv 2412.00696): the degrees of freedom (DoF) of a layer's
// output over a sample of inputs and the rank of the layer's Jacobian with respect to the input,
// combined into one sensitivity figure in [0,1]. Definitions and tolerances: docs/layers.md.
#pragma once

#include "privaudit/metrics/statistics.h"

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::metrics {

struct LayerMetricsOptions {
  // Relative tolerance of the DoF rank: singular values of the centred n x d output matrix count
  // when sigma_k > dof_tolerance * sigma_1.
  double dof_tolerance = 1e-3;
  // Share of the variance the principal components of dof_99 hold.
  double variance_share = 0.99;
  // Inputs whose Jacobian rank is averaged (the first ones of the images handed in).
  int64_t jacobian_samples = 8;
  // Rows of the replicated batch one backward pass handles (memory vs. speed).
  int64_t jacobian_chunk = 256;
};

// The exact Jacobian d features(image, cut) / d image of one image (C x H x W or 1 x C x H x W):
// a d x D matrix (d = flattened output size, D = C*H*W). Built in whichever orientation needs
// fewer passes: for d <= D by d one-hot vector-Jacobian products (the image replicated d times in
// one batch, chunked), for d > D by D one-hot Jacobian-vector products done as double backward
// (the derivative of a VJP with respect to its cotangent). The model is evaluated in eval mode.
torch::Tensor layer_jacobian(models::Classifier& model, const torch::Tensor& image,
                             const std::string& cut, int64_t chunk = 256);

// Numerical rank of a matrix with NumPy's tolerance max(rows, cols) * eps(dtype) * sigma_1.
int64_t numerical_rank(const torch::Tensor& matrix);

// The rank above and the stable rank sum(sigma_k^2) / sigma_1^2 (in [1, rank]; 0 for a zero
// matrix) from one spectrum. The stable rank weighs directions by their gain, so it still moves
// where the rank saturates at the input dimension.
struct MatrixRanks {
  int64_t rank = 0;
  double stable_rank = 0;
};
MatrixRanks matrix_ranks(const torch::Tensor& matrix);

// Degrees of freedom of n outputs (n x ...; flattened to n x d).
struct DegreesOfFreedom {
  int64_t rank = 0;           // #{sigma_k > tolerance * sigma_1} of the centred matrix
  int64_t components_99 = 0;  // principal components holding `variance_share` of the variance
  double effective_rank = 0;  // exp(entropy of sigma / sum sigma)
};
DegreesOfFreedom degrees_of_freedom(const torch::Tensor& outputs, double tolerance = 1e-3,
                                    double variance_share = 0.99);

struct LayerMetrics {
  std::string name;
  int64_t output_dim = 0;  // d, flattened per-sample output size
  int64_t input_dim = 0;   // D = C*H*W
  int64_t samples = 0;     // n, inputs of the DoF
  DegreesOfFreedom dof;
  double jacobian_rank = 0;             // mean over the Jacobian samples
  double jacobian_rank_std = 0;         // population standard deviation over them
  double jacobian_rank_normalized = 0;  // jacobian_rank / D
  double jacobian_stable_rank = 0;      // mean stable rank (reported, not in the sensitivity)
  double dof_normalized = 0;            // min(1, dof.components_99 / components_99 of the input)
  double sensitivity = 0;               // sqrt(dof_normalized * jacobian_rank_normalized)
  // sqrt(dof_normalized * jacobian_stable_rank / D): the same with directions weighed by gain.
  double sensitivity_stable = 0;
  double dof_seconds = 0;
  double jacobian_seconds = 0;
};

// The figures of every cut point of `model` over `images` (n x C x H x W in [0,1]; all n give the
// DoF, the first options.jacobian_samples the Jacobian rank). Throws Error on empty input or bad
// options. Progress advances once per cut point.
std::vector<LayerMetrics> measure_layers(models::Classifier& model, const torch::Tensor& images,
                                         const LayerMetricsOptions& options, Progress& progress);
// One cut point; `input_components_99` is the input's own components_99 (normalises the DoF).
LayerMetrics measure_layer(models::Classifier& model, const std::string& cut,
                           const torch::Tensor& images, int64_t input_components_99,
                           const LayerMetricsOptions& options);

}  // namespace privaudit::metrics
