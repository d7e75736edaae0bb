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
//
// DP-SGD needs only each example's gradient norm and the sum of the clipped gradients, and a
// Linear or Conv2d weight gives both without its B x out x in per-example tensor ("ghost
// clipping": Goodfellow 2015 for T = 1, Li et al. 2022 and Bu et al. 2023 with tokens):
//   |g_i^T a_i|^2 = |g_i|^2 |a_i|^2 at T = 1, else sum_{t,s} (g_it . g_is)(a_it . a_is)
//   sum_i c_i g_i^T a_i = (c g)^T a: one matrix product over the batch
// clipped_gradient_sum takes the Gram route for a weight where it costs fewer products
// (T^2 (in + out) < in out: every Linear at T = 1, the ViT's patch projection) and the
// per-example tensor elsewhere.
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

// The clipped sum DP-SGD adds noise to.
struct ClippedGradients {
  std::vector<torch::Tensor> sum;  // per parameter (model.parameters() order): sum_i c_i grad_i
  torch::Tensor norms;             // B: every example's gradient norm before clipping
  torch::Tensor logits;            // B x K, detached
};

// c_i = min(1, C / (|grad_i| + 1e-6)): the factor that brings an example's gradient to norm C.
torch::Tensor clip_factors(const torch::Tensor& norms, double clip_norm);

// Scales every example's materialised gradient (one B x ... tensor per parameter) to norm at most
// C and sums: the reference clipped_gradient_sum equals (`logits` left undefined).
ClippedGradients clip_and_sum(const std::vector<torch::Tensor>& per_example, double clip_norm);

// sum_i c_i grad_i of every example's cross-entropy loss and the norms |grad_i|, from one forward
// and one backward pass, without materialising the weights' per-example gradients where their
// norms are cheaper from the factors (above). Equal to clipping per_example_gradients.
// `factors`: kCheaper as above; kAlways (every Linear and Conv2d weight from its factors) and
// kNever are for the tests and the benchmark.
enum class Factors { kCheaper, kAlways, kNever };
ClippedGradients clipped_gradient_sum(models::BuiltinClassifier& model, const torch::Tensor& images,
                                      const torch::Tensor& labels, double clip_norm,
                                      Factors factors = Factors::kCheaper);

// Throws Error when the model mixes the examples of a batch (BatchNorm), naming the option that
// replaces it.
void check_per_example_model(const models::BuiltinClassifier& model);

}  // namespace privaudit::train
