// Federated averaging as a threat model: a client trains the server's model locally for a few
// SGD steps and sends the parameter difference (an update), and secure aggregation shows the
// server only the mean of several clients' updates. What the server receives is built here from
// the clients' images, which never leave `client_update`; the attack that unrolls the local
// steps inside Inverting Gradients' objective (breaching's multi-step gradient loss) works from
// the update and the local hyper-parameters alone.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/attacks/gradients/inverting_gradients.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// One client's local training. Step s (0-based) takes the `batch` images at positions
// (s * batch + j) mod N of the client's N images, in order: with batch * steps = N every image
// is used once; more steps make epochs.
struct LocalTraining {
  int64_t steps = 0;  // 0: one epoch, ceil(N / batch) steps
  int64_t batch = 1;
  double learning_rate = 1e-3;
  double momentum = 0;      // PyTorch SGD's: buffer = momentum * buffer + gradient
  double weight_decay = 0;  // added to the gradient: + weight_decay * parameter

  // Throws UsageError naming the flag (--local-steps, --local-batch, --lr, --momentum,
  // --weight-decay).
  void validate() const;
  // This training with `steps` fixed for a client of `images` (0 becomes one epoch).
  LocalTraining for_client(int64_t images) const;
  // Positions of the client's images used at `step`, for a client holding `images` of them.
  std::vector<int64_t> step_positions(int64_t step, int64_t images) const;
};

nlohmann::json to_json(const LocalTraining& training);

// What the server receives from one client (or, under secure aggregation, from the mean of M).
struct ModelUpdate {
  Gradients delta;      // theta_local - theta_server, one tensor per Classifier::parameters()
  int64_t images = 1;   // N per client
  int64_t clients = 1;  // M updates averaged into `delta`
  LocalTraining training;
  // Per client, the labels of its N images in the order its steps use them (M x N), when the
  // server is given them with the local hyper-parameters; undefined otherwise.
  torch::Tensor labels;
};

// Runs `training` on a copy of the model's parameters from the model's current values with
// `images` (N x C x H x W) and `labels` (N), model in eval mode, and returns the update the
// client sends. The model's parameters are restored before it returns. With `labels_known` the
// update carries the labels.
ModelUpdate client_update(models::Classifier& model, const torch::Tensor& images,
                          const torch::Tensor& labels, const LocalTraining& training,
                          bool labels_known);

// Secure aggregation: the mean of the clients' deltas (same model, same N, same training).
ModelUpdate aggregate(const std::vector<ModelUpdate>& clients);

// The update read as one gradient of all its images: -delta / (learning rate * steps). With one
// step of plain SGD this is the client's batch gradient; the gradient attacks run on it as if the
// server had received a gradient of a batch of N * M.
Gradients update_as_gradient(const ModelUpdate& update);

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
