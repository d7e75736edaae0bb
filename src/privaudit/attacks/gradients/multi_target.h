// Many independent gradient-inversion problems against one model, solved in one autograd graph.
// On small models most of an attack's time is per-operator overhead (a LeNet closure at batch 1
// costs ~2 ms on 2 cores, little of it arithmetic), so K reconstructions run one after another
// waste the machine. Here all K problems' images go through the model as one batch of K x B with
// the model's own parameters, and each problem's parameter gradient is formed from the layers'
// inputs and the gradients at their outputs (the per-example gradient identity: a Linear layer's
// weight gradient is delta^T a, a convolution's the delta times the input patches), one batched
// matrix product for all K. So one forward, backward and double backward serve all K, and the
// model's weights are read once, not K times. (Until 2026-12-02 the parameters were copied K
// times and each layer ran as K batched products; memory-bound on models beyond ~100 k
// parameters.)
//
// The optimisation stays per problem: Inverting Gradients' cost, Adam state, step size, step
// decay, patience stop and kept images are each problem's own; a problem that stops leaves the
// stack. Built-in MLP, CNN and LeNet models in eval mode can be stacked; anything else (ViT, a
// noisy cut, batch norm or dropout in train mode, TorchScript models) runs one problem at a time.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/attacks/gradients/inverting_gradients.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// A built-in model's forward pass and parameter gradients for K problems at once.
class StackedModel {
 public:
  // Whether `model`, in its current mode, can be stacked; when not, `why` (if given) says what
  // stands in the way.
  static bool supports(models::Classifier& model, std::string* why = nullptr);

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

  // The shared gradients the problems match: one K x shape tensor per parameter (stack_gradients).
  void set_target(const Gradients& target);

  // Per problem, Inverting Gradients' cosine distance between its gradient (as gradients() gives
  // it) and its target, differentiable with respect to `images`: K values. Linear layers' weight
  // gradients are not formed: their dot products and norms come from B x B Gram matrices.
  torch::Tensor cosine_distance(const torch::Tensor& images, const torch::Tensor& labels);

  // Keeps the problems listed in `keep` (indices into the current K), in that order.
  void keep_only(const torch::Tensor& keep);

  // A layer with parameters as one forward pass saw it: its input (for batch norm, the
  // normalised input) and output, and where its parameters sit in Classifier::parameters().
  struct Record {
    enum Kind { kLinear, kConv, kNorm } kind = kLinear;
    size_t weight = 0, bias = 0;
    bool has_bias = false;
    std::vector<int64_t> weight_shape;
    std::vector<int64_t> stride, padding, dilation;  // convolutions
    torch::Tensor input, output;
  };

 private:
  // One layer of the network applied to all K B images with the model's own (shared)
  // parameters, recording itself when `records` is given.
  using Layer = std::function<torch::Tensor(const torch::Tensor&, std::vector<Record>*)>;
  torch::Tensor run(const torch::Tensor& images, std::vector<Record>* records);
  // The summed loss's gradient with respect to every recorded layer output (each problem's own
  // rows are its own loss's gradient), filling `records`.
  std::vector<torch::Tensor> backpropagate(const torch::Tensor& images, const torch::Tensor& labels,
                                           bool create_graph, std::vector<Record>& records);

  models::Classifier& model_;
  int64_t problems_;
  size_t parameter_count_ = 0;
  std::vector<Layer> layers_;
  Gradients target_;
  torch::Tensor target_norm_;  // K squared norms of the targets
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
// not used. Models StackedModel does not support run one problem at a time.
std::vector<Reconstruction> run_inverting_gradients_many(
    models::Classifier& model, const std::vector<InversionProblem>& problems, int64_t batch_size,
    const InvertingGradientsOptions& options, int64_t stack, Progress& progress);

}  // namespace privaudit::attacks
