// Deep Leakage from Gradients (Zhu, Liu & Han, NeurIPS 2019): optimise dummy images (and, when
// the labels are unknown, soft dummy labels) so that their gradient matches the shared one in
// squared L2 distance, with L-BFGS.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

struct DlgOptions {
  int iterations = 300;           // outer L-BFGS steps, as in the official code
  int evaluations_per_step = 20;  // L-BFGS max_iter (PyTorch's default)
  int history = 100;              // L-BFGS history size (PyTorch's default)
  double learning_rate = 1.0;
  // The official code runs plain L-BFGS; on 28x28 inputs its fixed steps stall or diverge, a
  // strong-Wolfe line search converges (docs/gradients.md).
  bool strong_wolfe = true;
  // Stop when the best distance has not fallen by `min_improvement` (relative) for `patience`
  // steps, or once it is below `tolerance`.
  int patience = 25;
  double min_improvement = 1e-3;
  double tolerance = 1e-12;
  int trials = 1;           // independent initialisations; the lowest final distance is kept
  int nan_retries = 2;      // fresh initialisations after a trial produced NaN/inf
  bool train_mode = false;  // run the model in train mode (dropout/batch-norm batch statistics)
  uint64_t seed = 0;
  IterationObserver on_iteration;

  void validate() const;  // throws UsageError naming the option
};

// Runs DLG against `shared` (the gradient of a batch of `batch_size` images). `labels` (B class
// indices) are optional: undefined means the labels are recovered too, as soft labels whose
// arg-max is reported. Dummy images live in unconstrained pixel space (N(0,1) start, as in the
// official code) and are clamped to [0,1] only in the returned images.
Reconstruction run_dlg(models::Classifier& model, const Gradients& shared, int64_t batch_size,
                       const torch::Tensor& labels, const DlgOptions& options, Progress& progress);

}  // namespace privaudit::attacks
