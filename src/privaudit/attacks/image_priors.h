// What the optimisation attacks share about images and logits: the two total-variation priors
// and the classification margin.
#pragma once

#include <torch/torch.h>

namespace privaudit::attacks {

// Anisotropic L1 total variation, mean |dx| + mean |dy| (Inverting Gradients' prior).
torch::Tensor total_variation_l1(const torch::Tensor& images);
// Squared total variation, mean dx^2 + mean dy^2 (network inversion's smoothness prior: it
// punishes speckle more than edges).
torch::Tensor total_variation_squared(const torch::Tensor& images);

// z_y - max_{j != y} z_j per row of `logits` (N x K) with labels `labels` (N): positive when the
// label wins. The margin whose gradients span a KKT point's weights (stationarity) and whose
// shortfall network inversion punishes.
torch::Tensor classification_margin(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace privaudit::attacks
