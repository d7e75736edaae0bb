// Inverting Gradients (Geiping, Bauermeister, Droege & Moeller, NeurIPS 2020): match the shared
// gradient in cosine distance over all parameters jointly, with a total-variation prior, by Adam
// on signed gradients with a box constraint to [0,1] pixels and step decay x0.1 at 3/8, 5/8, 7/8.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

struct InvertingGradientsOptions {
  int iterations = 4800;       // the paper's budget for untrained LeNet (App. C.1)
  double learning_rate = 0.1;  // Adam step size, in [0,1] pixel units
  // The paper uses 1e-2 for 32x32 CIFAR LeNet; 28x28 grey images with flat backgrounds tolerate
  // and need less smoothing for exact recovery, so the default is 1e-4 (docs/gradients.md).
  double total_variation = 1e-4;
  bool signed_gradients = true;  // x.grad.sign_() before the Adam step
  // When the best cost has not fallen by `min_improvement` (relative) for `patience` iterations,
  // jump to the next learning-rate milestone; after the last one, stop. 0 = never.
  int patience = 400;
  double min_improvement = 1e-3;
  int trials = 1;       // independent starts, the lowest final cost kept ("restarts")
  int nan_retries = 2;  // fresh starts after a trial produced NaN/inf
  bool train_mode = false;
  uint64_t seed = 0;
  IterationObserver on_iteration;

  void validate() const;  // throws UsageError naming the option
};

// Runs Inverting Gradients against `shared`. `labels` (B class indices) as the attacker knows
// them; undefined means infer_labels (iDLG / LLG-style count). Starts from U(0,1) pixels and
// returns the images of the lowest cost seen.
Reconstruction run_inverting_gradients(models::Classifier& model, const Gradients& shared,
                                       int64_t batch_size, const torch::Tensor& labels,
                                       const InvertingGradientsOptions& options,
                                       Progress& progress);

// The objective of an Inverting Gradients run: the gradient distance at `images`. Either a tensor
// with a graph back to `images` (gradient undefined), or a detached value with its gradient
// with respect to `images` computed by the objective itself (the unrolled FedAvg attack).
struct DistanceAndGradient {
  torch::Tensor distance;  // scalar
  torch::Tensor gradient;  // like images, or undefined
};
using GradientDistance = std::function<DistanceAndGradient(const torch::Tensor& images)>;

// Inverting Gradients' optimisation (signed Adam, box, TV prior, step decay, restarts) on any
// gradient distance over `count` images of `shape`; labels are the caller's business.
Reconstruction run_inverting_gradients_on(const GradientDistance& objective,
                                          const models::InputShape& shape, int64_t count,
                                          torch::Device device,
                                          const InvertingGradientsOptions& options,
                                          Progress& progress);

}  // namespace privaudit::attacks
