// Many independent gradient-inversion problems against one model, solved in one autograd graph.
// On small models most of an attack's time is per-operator overhead (a LeNet closure at batch 1
// costs ~2 ms on 2 cores, little of it arithmetic), so K reconstructions run one after another
// waste the machine. Here the model's parameters are stacked K times (K x shape) and the forward
// pass runs all K problems at once: Linear layers as batched matrix products, convolutions as one
// convolution with K groups, element-wise layers on all K x B images. The gradient of the summed
// losses with respect to the stacked parameters is, slice by slice, each problem's own parameter
// gradient, so one forward, backward and double backward serve all K.
//
// The optimisation stays per problem: Inverting Gradients' cost, Adam state, step size, step
// decay, patience stop and kept images are each problem's own; a problem that stops leaves the
// stack. Built-in MLP, CNN and LeNet models in eval mode can be stacked; anything else (ViT, a
// noisy cut, batch norm or dropout in train mode, TorchScript models) runs one problem at a time,
// and so do models too large for stacking to pay (StackedModel::worthwhile).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "privaudit/attacks/gradient_matching.h"
#include "privaudit/attacks/inverting_gradients.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// A built-in model's forward pass and parameter gradients for K problems at once.
class StackedModel {
 public:
  // Whether `model`, in its current mode, can be stacked; when not, `why` (if given) says what
  // stands in the way.
  static bool supports(models::Classifier& model, std::string* why = nullptr);

  // Whether stacking pays on this machine's kind: models of at most kMaxStackedParameters.
  // Larger ones are memory-bound at batch 1 (each problem's parameter gradient is as large as the
  // model), so K at once only adds allocation and page-fault cost: the built-in CNN (421 k
  // parameters) ran at 0.1-0.7x and the MLP (535 k) at 0.16x the one-at-a-time speed, LeNet
  // (13 k) at 3-5x (bench/RESULTS.md, multi-target, 2026-12-02).
  static constexpr int64_t kMaxStackedParameters = 100000;
  static bool worthwhile(models::Classifier& model);

  // Throws Error when !supports(model). The model must outlive this object and keep its mode.
  StackedModel(models::Classifier& model, int64_t problems);

  int64_t problems() const { return problems_; }

  // `images`: (K B) x C x H x W in [0,1], problem k's batch in rows [k B, (k+1) B). Returns the
  // logits, (K B) x classes.
  torch::Tensor forward(const torch::Tensor& images);

  // Per problem k, the gradient of the mean cross-entropy of its B images (labels: K x B class
  // indices) with respect to each parameter: one tensor per Classifier::parameters() entry, of
  // shape K x (that parameter's shape), slice k being problem k's gradient. With `create_graph`
  // the result can be differentiated again.
  Gradients gradients(const torch::Tensor& images, const torch::Tensor& labels, bool create_graph);

  // Keeps the problems listed in `keep` (indices into the current K), in that order.
  void keep_only(const torch::Tensor& keep);

 private:
  using Layer = std::function<torch::Tensor(const torch::Tensor&, const std::vector<torch::Tensor>&,
                                            int64_t problems)>;
  models::Classifier& model_;
  int64_t problems_;
  std::vector<Layer> layers_;
  std::vector<torch::Tensor> stacked_;  // K x shape leaves, one per model parameter
};

// Stacks `gradients` (one list per problem, all alike) into one K x shape tensor per parameter.
Gradients stack_gradients(const std::vector<Gradients>& gradients);

// Per problem, Inverting Gradients' cosine distance (gradient_matching.h) between slice k of `a`
// and slice k of `b` over all parameters jointly: K values.
torch::Tensor stacked_cosine_distance(const Gradients& a, const Gradients& b);

// One reconstruction problem: the shared gradient of one batch, the labels the attacker uses
// (B class indices) and the seed of its first trial.
struct InversionProblem {
  Gradients shared;
  torch::Tensor labels;
  uint64_t seed = 0;
};

// Inverting Gradients (inverting_gradients.h) on every problem against `model`, at most `stack`
// problems (trials included) in one graph. Each problem's result is what run_inverting_gradients
// with options.seed = problem.seed would return, up to floating-point summation order: the same
// start, steps, step decay, patience stop, kept images and restarts, except that a trial with
// NaN/inf does not stop the problem's other trials. `options.seed` and `options.on_iteration` are
// not used. Models StackedModel does not support, and with `only_where_faster` those it does not
// find worthwhile, run one problem at a time.
std::vector<Reconstruction> run_inverting_gradients_many(
    models::Classifier& model, const std::vector<InversionProblem>& problems, int64_t batch_size,
    const InvertingGradientsOptions& options, int64_t stack, Progress& progress,
    bool only_where_faster = true);

}  // namespace privaudit::attacks
