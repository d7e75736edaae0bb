// The malicious server's attack: "Robbing the Fed" (Fowl, Geiping, Czaja, Goldblum & Goldstein,
// ICLR 2022). The server sends clients a model with an imprint block in front of the first layer
// (threat/malicious_server.h: ImprintedClassifier).
// Row i's gradient sums s_n x_n over the images with w.x_n > c_i, its bias gradient s_n, so the
// difference of adjacent rows divided by the difference of their biases is an image, exactly
// when one image of the batch fell in that bin: a fraction (1 - 1/K)^(B-1) of a batch of B
// i.i.d. images. It works the same on a gradient, a FedAvg update and a secure aggregate (the
// aggregate is one bigger batch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// The fraction of a batch of `batch` i.i.d. images that lands alone in one of `bins` equal-mass
// bins: (1 - 1/K)^(B-1).
double imprint_expected_fraction(int64_t bins, int64_t batch);

// Recovers images from `shared` (gradient-like: a gradient, or update_as_gradient of an update
// or an aggregate) of a model whose first three parameters are an imprint block (K x D equal
// rows, K biases, D x K). Returns one candidate per bin whose bias difference is non-zero (a blank
// image when none), clamped to [0,1]. Not applicable when the model
// holds no imprint block. details: {"bins", "candidates", "expected_fraction"}.
// The result is a candidate set (Reconstruction::candidate_set): score it with
// metrics::score_candidates.
Reconstruction run_imprint_attack(models::Classifier& model, const Gradients& shared,
                                  int64_t batch_size, Progress& progress);

}  // namespace privaudit::attacks
