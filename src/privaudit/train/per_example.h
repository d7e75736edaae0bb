// Per-example gradients of a built-in classifier in one forward and one backward pass per batch,
// the way Opacus computes them (Yousefpour et al. 2021): each layer with parameters records its
// input a and, after one backward pass of the summed loss, the gradient g of its output; the
// example's gradient follows from (a, g) alone:
//   Linear      dW_i = g_i^T a_i (summed over tokens for B x T x D inputs), db_i = sum_t g_i
//   Conv2d      dW_i = g_i unfold(a_i)^T (g_i: O x L, unfold(a_i): C k k x L), db_i = sum_l g_i
//   LayerNorm,  dgamma_i = sum of g_i * x_hat_i over all but the normalised (channel) axis,
//   GroupNorm   dbeta_i = sum of g_i over the same axes (x_hat_i: the normalised input)
//   ViT embed   dpositions_i = g_i (T x D), dclass_token_i = g_i[0]
// BatchNorm mixes the examples of a batch, so a model with it has no per-example gradients.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "privaudit/models/builtin.h"

namespace privaudit::train {

struct PerExampleGradients {
  // One tensor per parameter, in model.parameters() order, each B x the parameter's shape.
  std::vector<torch::Tensor> gradients;
  torch::Tensor logits;  // B x K, detached
};

// Gradients of every example's cross-entropy loss, from one backward pass. Throws Error naming
// the layer when the model has BatchNorm (use group_norm) or a layer this does not know.
PerExampleGradients per_example_gradients(models::BuiltinClassifier& model,
                                          const torch::Tensor& images, const torch::Tensor& labels);

// The same by one backward pass per example (batch of one): the reference the tests and the
// benchmark compare with.
PerExampleGradients per_example_gradients_by_loop(models::BuiltinClassifier& model,
                                                  const torch::Tensor& images,
                                                  const torch::Tensor& labels);

// Throws Error when the model mixes the examples of a batch (BatchNorm), naming the option that
// replaces it.
void check_per_example_model(const models::BuiltinClassifier& model);

}  // namespace privaudit::train
