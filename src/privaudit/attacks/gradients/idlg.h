// iDLG (Zhao, Mopuri & Bilen 2020): read the labels off the last layer's gradient, then run DLG
// with the labels fixed. Exact at batch 1; for larger batches an LLG-style greedy count
// (Wainakh et al. 2022) that also finds repeated labels (docs/gradients.md).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "privaudit/attacks/gradients/dlg.h"
#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// The labels of a batch of `batch_size` from its shared gradient (B class indices, sorted).
// The model's last parameters must be its final linear layer: a K x F weight, optionally followed
// by a K bias (K = num_classes); throws Error otherwise.
//   batch 1: argmin_c sum_j dW[c, j] (iDLG; exact for non-negative features) or argmin_c db[c].
//   batch B: with mean cross-entropy, db[c] = mean_b p_bc - n_c / B, so every label lowers its
//   class's entry by 1/B. Greedily give the next label to the class with the lowest residual and
//   add 1/B to it, B times. Without a bias the weight-row sums play the same part with an
//   estimated per-label impact. Exact while the model's mean probabilities stay below 1/B.
torch::Tensor infer_labels(models::Classifier& model, const Gradients& shared, int64_t batch_size);

// Batch 1 with a reconstruction `image` in hand (a closed-form attack's): infer_labels, except
// where the last-layer signal ties at its minimum. That happens when the model is certain of the
// image to float32 precision: the true class's entry p - 1 rounds to 0, as does the entry of every
// class whose probability underflowed, and argmin would take the first of them. A model that
// certain predicts the label, so the tie goes to the tied class the model scores highest on
// `image` (the recovered image: when it is exact, its logits are the target's).
torch::Tensor infer_label_of(models::Classifier& model, const Gradients& shared,
                             const torch::Tensor& image);

// Whether the update of one image comes from a saturated softmax: the last layer's bias gradient
// (p - onehot) has no negative entry, i.e. the true class's p - 1 rounded to 0 in float32. False
// where the last layer has no bias. Meaningful for an update of batch 1.
bool saturated_softmax(models::Classifier& model, const Gradients& shared);

// iDLG: infer_labels, then DLG (options as for DLG) with those labels fixed.
Reconstruction run_idlg(models::Classifier& model, const Gradients& shared, int64_t batch_size,
                        const DlgOptions& options, Progress& progress);

}  // namespace privaudit::attacks
