// The FedAvg threat model as data: what a federated-learning server receives when a client trains
// its model locally for a few SGD steps and sends the parameter difference (a model update), and,
// under secure aggregation, the mean of several clients' updates. The client's side that builds
// an update is attacks/gradients/fedavg.h's client_update (it runs the same local steps the
// unrolled attack differentiates).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "privaudit/threat/shared_update.h"

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

// Secure aggregation: the mean of the clients' deltas (same model, same N, same training).
ModelUpdate aggregate(const std::vector<ModelUpdate>& clients);

// The update read as one gradient of all its images: -delta / (learning rate * steps). With one
// step of plain SGD this is the client's batch gradient; the gradient attacks run on it as if the
// server had received a gradient of a batch of N * M.
Gradients update_as_gradient(const ModelUpdate& update);

}  // namespace privaudit::attacks
