// Federated averaging's local steps, unrolled: a client trains the server's model locally for a few
// SGD steps and sends the parameter difference (threat/model_update.h). `client_update` plays the
// client, whose images never leave it; the attack that unrolls the local steps inside Inverting
// Gradients' objective (breaching's multi-step gradient loss) works from the update and the local
// hyper-parameters alone. Both run the same UnrolledTraining, so the attacker's simulation of the
// steps is the client's.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/attacks/gradients/inverting_gradients.h"
#include "privaudit/models/classifier.h"
#include "privaudit/threat/model_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// Runs `training` on a copy of the model's parameters from the model's current values with
// `images` (N x C x H x W) and `labels` (N), model in eval mode, and returns the update the
// client sends. The model's parameters are restored before it returns. With `labels_known` the
// update carries the labels.
ModelUpdate client_update(models::Classifier& model, const torch::Tensor& images,
                          const torch::Tensor& labels, const LocalTraining& training,
                          bool labels_known);

// The local training as a differentiable function of the images, for attacks: forward() runs
// the steps from the model's current parameters (restored afterwards) and keeps each step's
// parameters; backward() returns d<adjoint, delta>/d images by reverse mode through the SGD
// steps (one double backward per step, momentum and weight decay included), so the memory is
// S parameter copies, not S autograd graphs. Any Classifier works, TorchScript included.
class UnrolledTraining {
 public:
  UnrolledTraining(models::Classifier& model, LocalTraining training);
  // images: N x C x H x W (may require grad; not recorded), labels: N class indices.
  Gradients forward(const torch::Tensor& images, const torch::Tensor& labels);
  // Needs a forward() first; adjoint: one tensor per parameter. Returns a tensor like images.
  torch::Tensor backward(const Gradients& adjoint);

 private:
  models::Classifier& model_;
  LocalTraining training_;
  torch::Tensor images_, labels_;
  std::vector<Gradients> before_step_;  // the parameters each step started from
};

// Inverting Gradients on an update with the local steps unrolled: dummy images for every client
// (M x N), each client's S steps simulated from the server's parameters, the mean delta matched
// in cosine distance to the received one. Needs the local hyper-parameters; with the labels
// unknown they are inferred from update_as_gradient (LLG-style count) and dealt to the images in
// order. Returns M * N images (client by client).
Reconstruction run_unrolled_inverting_gradients(models::Classifier& model,
                                                const ModelUpdate& update,
                                                const InvertingGradientsOptions& options,
                                                Progress& progress);

}  // namespace privaudit::attacks
